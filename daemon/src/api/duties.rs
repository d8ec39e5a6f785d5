//! Duty and task routes: create and change duties, pause and resume, trigger now, backfill,
//! list occurrences with their outcome, preview fire times; list tasks and the event outbox.
//! Administrators and bureaus manage duties (a bureau within its county); stations read the
//! tasks of the communities they serve.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Scope};
use super::extract::{Body, Path, Query, query_error};
use super::problem::{ApiError, Problem};
use super::registry::{Page, bad_cursor, id_cursor, limit, limit_or, region_cursor};
use super::{AppState, blocking};
use crate::schedule::{Duty, DutyInput, Event, Occurrence, Task, TaskStatus};
use crate::service::Guard;

fn manager(caller: &Caller) -> Result<Option<String>, ApiError> {
    match &caller.scope {
        Scope::Admin => Ok(None),
        Scope::Bureau(code) => Ok(Some(code.clone())),
        _ => Err(ApiError::forbidden(
            "only an administrator or a bureau manages duties",
        )),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DutyQuery {
    /// 1 to 1000 (default 50).
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Cursor from `next_cursor`.
    cursor: Option<String>,
}

/// A duty with the categories of people it really selects.
#[derive(Debug, Serialize, ToSchema)]
pub struct DutyView {
    #[serde(flatten)]
    pub duty: Duty,
    /// The selector's categories, else the action's (what the next occurrence will use).
    pub categories: Vec<String>,
}

fn view(st: &AppState, duty: Duty) -> DutyView {
    DutyView {
        categories: st.scheduler.categories_of(&duty),
        duty,
    }
}

#[utoipa::path(get, path = "/v1/duties", tag = "duties", params(DutyQuery),
    description = "The duties the token covers, by id, a page at a time, each with the categories it selects.",
    responses((status = 200, body = Page<DutyView>)))]
pub async fn list_duties(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<DutyQuery>,
) -> Result<Json<Page<DutyView>>, ApiError> {
    if caller.is_volunteer() {
        return Err(ApiError::forbidden("a volunteer token cannot list duties"));
    }
    let limit = super::registry::limit(q.limit)?;
    let after = id_cursor(q.cursor.as_deref())?;
    let page =
        st.read(|r| r.duties_page(after, limit, |d: &Duty| caller.region(&d.selector.region)))?;
    Ok(Json(Page {
        items: page.items.into_iter().map(|d| view(&st, d)).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(post, path = "/v1/duties", tag = "duties", request_body = DutyInput,
    responses((status = 201, body = Duty), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_duty(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<DutyInput>,
) -> Result<(StatusCode, Json<Duty>), ApiError> {
    let owner = manager(&caller)?;
    let duty = blocking(move || Ok(st.scheduler.create(input, &caller, owner)?)).await?;
    Ok((StatusCode::CREATED, Json(duty)))
}

#[utoipa::path(post, path = "/v1/duties/dry-run", tag = "duties", request_body = DutyInput,
    description = "What the duty would do, creating nothing: the categories it selects, the targets it finds now, and the plugin's drafts for its next fire (the action's own time), with a sample draft and its checklist. The plugin's `plan` runs for real.",
    responses((status = 200, body = crate::schedule::DryRun), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn dry_run_duty(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<DutyInput>,
) -> Result<Json<crate::schedule::DryRun>, ApiError> {
    manager(&caller)?;
    Ok(Json(
        blocking(move || Ok(st.scheduler.dry_run(input, &caller)?)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/duties/{id}",
    params(("id" = u64, Path, description = "Duty id")), tag = "duties",
    description = "The duty, with the categories of people it selects (`categories`).",
    responses((status = 200, body = DutyView), (status = 404, body = Problem)))]
pub async fn get_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<DutyView>, ApiError> {
    let duty = st.scheduler.get(id, &caller)?;
    Ok(Json(view(&st, duty)))
}

#[utoipa::path(patch, path = "/v1/duties/{id}",
    params(("id" = u64, Path, description = "Duty id")), tag = "duties",
    request_body(content = Object, description = "JSON merge patch (RFC 7396) of DutyInput"),
    responses((status = 200, body = Duty), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(patch): Body<Value>,
) -> Result<Json<Duty>, ApiError> {
    manager(&caller)?;
    blocking(move || Ok(Json(st.scheduler.update(id, &patch, &caller)?))).await
}

#[utoipa::path(post, path = "/v1/duties/{id}/pause",
    params(("id" = u64, Path, description = "Duty id")), tag = "duties", responses((status = 200, body = Duty)))]
pub async fn pause_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Duty>, ApiError> {
    manager(&caller)?;
    blocking(move || Ok(Json(st.scheduler.set_paused(id, true, &caller)?))).await
}

#[utoipa::path(post, path = "/v1/duties/{id}/resume",
    params(("id" = u64, Path, description = "Duty id")), tag = "duties",
    description = "Resumes a paused duty from now: occurrences missed while paused do not run.",
    responses((status = 200, body = Duty)))]
pub async fn resume_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Duty>, ApiError> {
    manager(&caller)?;
    blocking(move || Ok(Json(st.scheduler.set_paused(id, false, &caller)?))).await
}

#[utoipa::path(post, path = "/v1/duties/{id}/trigger",
    params(("id" = u64, Path, description = "Duty id")), tag = "duties",
    description = "Queues an occurrence for now, outside the schedule; the scheduler loop runs it. The answer is the queued occurrence, and `Location` names where to watch it.",
    responses((status = 202, body = Occurrence, headers(("Location" = String, description = "The occurrence's URL")))))]
pub async fn trigger_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<Occurrence>,
    ),
    ApiError,
> {
    manager(&caller)?;
    let occ = blocking(move || Ok(st.scheduler.trigger(id, &caller)?)).await?;
    let location = format!(
        "/v1/duties/{}/occurrences/{}",
        occ.duty,
        occ.scheduled_at.timestamp()
    );
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(occ),
    ))
}

#[utoipa::path(get, path = "/v1/duties/{id}/occurrences/{at}", tag = "duties",
    params(("id" = u64, Path, description = "The duty"), ("at" = i64, Path, description = "The occurrence's scheduled instant, in Unix seconds")),
    description = "One occurrence: queued, planning, done or failed, with its outcome.",
    responses((status = 200, body = Occurrence), (status = 404, body = Problem)))]
pub async fn get_occurrence(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, at)): Path<(u64, i64)>,
) -> Result<Json<Occurrence>, ApiError> {
    st.scheduler.get(id, &caller)?;
    st.read(|r| r.occurrence(id, at))?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("occurrence {id}@{at}")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// RFC 3339; the first scheduled instant at or after this runs.
    pub from: DateTime<Utc>,
    /// RFC 3339; the last scheduled instant at or before this runs.
    pub to: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/duties/{id}/backfill",
    params(("id" = u64, Path, description = "Duty id")), tag = "duties", request_body = BackfillRequest,
    description = "Queues every scheduled occurrence in [from, to] (at most 1,000) for the scheduler loop. Occurrences already done are kept; failed ones run again. Watch them at /v1/duties/{id}/occurrences.",
    responses((status = 202, body = Vec<Occurrence>), (status = 422, body = Problem)))]
pub async fn backfill_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<BackfillRequest>,
) -> Result<(StatusCode, Json<Vec<Occurrence>>), ApiError> {
    manager(&caller)?;
    let queued =
        blocking(move || Ok(st.scheduler.backfill(id, req.from, req.to, &caller)?)).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OccurrenceQuery {
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Cursor from `next_cursor`.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/duties/{id}/occurrences", tag = "duties", params(("id" = u64, Path, description = "Duty id"), OccurrenceQuery),
    description = "Occurrences, newest first, with their outcome (planned, tasks created, plugin error).",
    responses((status = 200, body = Page<Occurrence>)))]
pub async fn list_occurrences(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<OccurrenceQuery>,
) -> Result<Json<Page<Occurrence>>, ApiError> {
    st.scheduler.get(id, &caller)?;
    let before = match q.cursor.as_deref() {
        None => i64::MAX,
        Some(c) => c.parse().map_err(|_| bad_cursor())?,
    };
    let limit = limit(q.limit)?;
    let page = st.read(|r| r.occurrences_of(id, before, limit))?;
    Ok(Json(page.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// How many fire times (1-100, default 5).
    #[param(minimum = 1, maximum = 100)]
    count: Option<u32>,
    /// RFC 3339 (default: now).
    after: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub time_zone: String,
    /// RFC 3339 with the duty's offset.
    pub fire_times: Vec<String>,
}

#[utoipa::path(get, path = "/v1/duties/{id}/preview", tag = "duties", params(("id" = u64, Path, description = "Duty id"), PreviewQuery), responses((status = 200, body = Preview)))]
pub async fn preview_duty(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<PreviewQuery>,
) -> Result<Json<Preview>, ApiError> {
    let duty = st.scheduler.get(id, &caller)?;
    let count = match q.count {
        None => 5,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(query_error("count", "must be 1 to 100")),
    };
    let times = st.scheduler.preview(id, q.after, count, &caller)?;
    let tz: chrono_tz::Tz = duty.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    Ok(Json(Preview {
        time_zone: duty.time_zone,
        fire_times: times
            .iter()
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Only tasks of this duty.
    duty: Option<u64>,
    /// Only tasks with this status (`open`, `offered`, `accepted`, `checked_in`, `done`,
    /// `unstaffed`, `cancelled`), or `overdue` for those past their due end and not done.
    status: Option<String>,
    /// Only tasks flagged overdue (`true`) or not (`false`).
    overdue: Option<bool>,
    /// Only tasks in this region's subtree.
    region: Option<String>,
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskQuery), responses((status = 200, body = Page<Task>)))]
pub async fn list_tasks(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<TaskQuery>,
) -> Result<Json<Page<Task>>, ApiError> {
    if caller.is_volunteer() {
        return Err(ApiError::forbidden(
            "a volunteer token does not list tasks: a volunteer's own are under me/tasks",
        ));
    }
    let limit = limit(q.limit)?;
    let region = q
        .region
        .as_deref()
        .map(super::registry::subtree)
        .transpose()?;
    // `status=overdue` (a status before it became a flag) still means the overdue ones.
    let (status, overdue) = match q.status.as_deref() {
        None => (None, q.overdue),
        Some("overdue") => (None, Some(true)),
        Some(s) => (
            Some(
                serde_json::from_value::<TaskStatus>(Value::String(s.to_owned())).map_err(
                    |_| {
                        query_error(
                            "status",
                            "must be open, offered, accepted, checked_in, done, unstaffed, \
                             cancelled or overdue",
                        )
                    },
                )?,
            ),
            q.overdue,
        ),
    };
    let keep = |t: &Task| {
        caller.community(&t.community)
            && status.is_none_or(|s| t.status == s)
            && overdue.is_none_or(|o| t.overdue == o)
            && q.duty.is_none_or(|d| t.duty == d)
            && region.as_deref().is_none_or(|p| t.community.starts_with(p))
    };
    let page = match (q.duty, caller.person_prefixes()) {
        (Some(duty), _) => {
            let after = id_cursor(q.cursor.as_deref())?;
            st.read(|r| r.tasks_of_duty(duty, after, limit, keep))?
        }
        (None, Some(prefixes)) => {
            let after = region_cursor(q.cursor.as_deref())?;
            let mut prefixes = prefixes;
            prefixes.sort();
            st.read(|r| {
                r.tasks_in_regions(
                    &prefixes,
                    after.as_ref().map(|(c, i)| (c.as_str(), *i)),
                    limit,
                    keep,
                )
            })?
        }
        (None, None) => {
            let after = id_cursor(q.cursor.as_deref())?;
            match status {
                Some(status) => st.read(|r| r.tasks_in_status(status, after, limit, keep))?,
                None => st.read(|r| r.tasks(after, limit, keep))?,
            }
        }
    };
    Ok(Json(page.into()))
}

/// A task with the questions its visit report answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    /// The checklist's questions (`checklist` is its id), in order.
    pub questions: Vec<crate::schedule::ChecklistItem>,
}

#[utoipa::path(get, path = "/v1/tasks/{id}",
    params(("id" = u64, Path, description = "Task id")), tag = "tasks",
    description = "The task, its offers and history, and `questions`: the checklist its visit report answers.",
    responses((status = 200, body = TaskDetail), (status = 404, body = Problem)))]
pub async fn get_task(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<TaskDetail>, ApiError> {
    st.read(|r| {
        let Some(task) = r.task(id)?.filter(|t| caller.community(&t.community)) else {
            return Ok(None);
        };
        let questions = match task.checklist {
            0 => Vec::new(),
            c => r.checklist(c)?.unwrap_or_default(),
        };
        Ok::<_, crate::store::StoreError>(Some(TaskDetail { task, questions }))
    })?
    .map(Json)
    .ok_or_else(|| ApiError::not_found(format!("task {id}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Events after this sequence number.
    #[serde(default)]
    after: u64,
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Events of the caller's regions, and where to go on from.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `after` for the next page: the last event read, whether or not it was the
    /// caller's, so a bureau that sees few events still moves through the outbox.
    pub next_after: u64,
}

#[utoipa::path(get, path = "/v1/events", tag = "tasks", params(EventQuery),
    description = "The event outbox (task.overdue, occurrence.failed), oldest first, limited to the caller's regions; webhooks deliver from it.",
    responses((status = 200, body = EventPage)))]
pub async fn list_events(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    manager(&caller)?;
    let limit = limit_or(q.limit, 100)?;
    let admin = caller.is_admin();
    let visible = |e: &Event| match e.region.as_deref().or(e.community.as_deref()) {
        Some(region) => caller.community(region),
        None => admin,
    };
    let (items, next_after) = st.read(|r| r.events_visible(q.after, limit, limit * 50, visible))?;
    Ok(Json(EventPage { items, next_after }))
}
