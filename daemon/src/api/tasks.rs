//! Task routes beyond listing: one-off tasks, cancelling, and the volunteer's side — my tasks,
//! accept, decline, check in and out. A volunteer token sees its own tasks only, and of the
//! person only what the visit needs (name, address, needs; the phone once the offer is
//! accepted) — never the resident ID.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Scope};
use super::extract::{Body, Path, Query};
use super::problem::{ApiError, Problem};
use super::registry::{Page, id_cursor, limit};
use super::{AppState, blocking};
use crate::registry::GeoPoint;
use crate::schedule::staffing::NewTask;
use crate::schedule::{ChecklistItem, Names, Offer, Priority, Task, TaskStatus, TaskTarget};

/// The person a visit is for, as the visitor needs them.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitPerson {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub location: GeoPoint,
    pub needs: Vec<String>,
}

/// A task as its volunteer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyTask {
    pub id: u64,
    pub kind: String,
    pub title: Names,
    pub status: TaskStatus,
    pub overdue: bool,
    pub priority: Priority,
    pub due_start: chrono::DateTime<chrono::FixedOffset>,
    pub due_end: chrono::DateTime<chrono::FixedOffset>,
    pub community: String,
    pub target: TaskTarget,
    /// My offer: its state, deadline and check-in times.
    pub offer: Offer,
    /// The person visited (only while I hold the task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<VisitPerson>,
    /// The questions the visit report answers.
    pub checklist: Vec<ChecklistItem>,
}

fn volunteer_of(caller: &Caller) -> Result<u64, ApiError> {
    match caller.scope {
        Scope::Volunteer(id) => Ok(id),
        _ => Err(ApiError::forbidden(
            "these routes are for a volunteer's own token",
        )),
    }
}

/// The volunteer's view of a task they were offered; `None` when they were not.
fn my_task(
    r: &crate::store::ReadTx,
    task: Task,
    me: u64,
) -> Result<Option<MyTask>, crate::store::StoreError> {
    let Some(offer) = task
        .offers
        .iter()
        .rev()
        .find(|o| o.volunteer == me)
        .cloned()
    else {
        return Ok(None);
    };
    // Offered: enough to decide (who, where, what for); the phone once the offer is accepted.
    let committed = matches!(
        offer.state,
        crate::schedule::OfferState::Accepted | crate::schedule::OfferState::CheckedIn
    );
    let person = match (&task.target, offer.state.holds()) {
        (TaskTarget::Person { id }, true) => r.person(*id)?.map(|p| VisitPerson {
            name: p.name,
            address: p.address,
            phone: p.phone.filter(|_| committed),
            location: p.location,
            needs: p.needs,
        }),
        _ => None,
    };
    let checklist = if task.checklist == 0 {
        Vec::new()
    } else {
        r.checklist(task.checklist)?.unwrap_or_default()
    };
    Ok(Some(MyTask {
        id: task.id,
        kind: task.kind,
        title: task.title,
        status: task.status,
        overdue: task.overdue,
        priority: task.priority,
        due_start: task.due_start,
        due_end: task.due_end,
        community: task.community,
        target: task.target,
        offer,
        person,
        checklist,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MyTaskQuery {
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/me/tasks", tag = "volunteers", params(MyTaskQuery),
    description = "A volunteer's offers and tasks (volunteer tokens only).",
    responses((status = 200, body = Page<MyTask>)))]
pub async fn my_tasks(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<MyTaskQuery>,
) -> Result<Json<Page<MyTask>>, ApiError> {
    let me = volunteer_of(&caller)?;
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor.as_deref())?;
    let page = st.read(|r| {
        let page = r.tasks_of_volunteer(me, after, limit, |_| true)?;
        let mut items = Vec::new();
        for t in page.items {
            if let Some(m) = my_task(r, t, me)? {
                items.push(m);
            }
        }
        Ok::<_, crate::store::StoreError>(Page {
            items,
            next_cursor: page.next,
        })
    })?;
    let shown = page.items.iter().filter(|t| t.person.is_some()).count() as u64;
    if shown > 0 {
        super::records::audit(
            &st,
            &caller,
            crate::records::model::AuditAction::List,
            "persons".into(),
            Some(shown),
            "GET /v1/me/tasks",
            page.items.first().map(|t| t.community.clone()),
        )
        .await?;
    }
    Ok(Json(page))
}

#[utoipa::path(get, path = "/v1/me/tasks/{id}", tag = "volunteers",
    params(("id" = u64, Path, description = "Task id")),
    responses((status = 200, body = MyTask), (status = 404, body = Problem)))]
pub async fn my_task_detail(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<MyTask>, ApiError> {
    let me = volunteer_of(&caller)?;
    let view = st
        .read(|r| match r.task(id)? {
            Some(t) => my_task(r, t, me),
            None => Ok(None),
        })?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    if view.person.is_some()
        && let TaskTarget::Person { id: person } = view.target
    {
        super::records::audit(
            &st,
            &caller,
            crate::records::model::AuditAction::Read,
            format!("person:{person}"),
            None,
            "GET /v1/me/tasks/{id}",
            Some(view.community.clone()),
        )
        .await?;
    }
    Ok(Json(view))
}

async fn answer(
    st: AppState,
    caller: &Caller,
    me: u64,
    id: u64,
    route: &'static str,
    f: impl FnOnce(&crate::schedule::Scheduler) -> Result<Task, crate::service::ServiceError>
    + Send
    + 'static,
) -> Result<Json<MyTask>, ApiError> {
    let scheduler = st.scheduler.clone();
    let store = st.store.clone();
    let view = blocking(move || {
        let task = f(&scheduler)?;
        let view = store.read(|r| my_task(r, task, me))?;
        view.ok_or_else(|| ApiError::not_found(format!("task {id}")))
    })
    .await?;
    // The answer shows the person (name, address, phone) while the volunteer holds the task.
    if view.person.is_some()
        && let TaskTarget::Person { id: person } = view.target
    {
        super::records::audit(
            &st,
            caller,
            crate::records::model::AuditAction::Read,
            format!("person:{person}"),
            None,
            route,
            Some(view.community.clone()),
        )
        .await?;
    }
    Ok(Json(view))
}

#[utoipa::path(post, path = "/v1/tasks/{id}/accept", tag = "volunteers",
    params(("id" = u64, Path, description = "Task id")),
    description = "The volunteer accepts the task offered to them (before the offer's `respond_by`).",
    responses((status = 200, body = MyTask), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn accept(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<MyTask>, ApiError> {
    let me = volunteer_of(&caller)?;
    answer(
        st,
        &caller,
        me,
        id,
        "POST /v1/tasks/{id}/accept",
        move |s| s.accept(id, me),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decline {
    /// Why (the station reads it), e.g. 本周在外地.
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/tasks/{id}/decline", tag = "volunteers", request_body = Decline,
    params(("id" = u64, Path, description = "Task id")),
    description = "The volunteer declines with a reason; the task is offered to someone else at once.",
    responses((status = 200, body = MyTask), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn decline(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<Decline>,
) -> Result<Json<MyTask>, ApiError> {
    let me = volunteer_of(&caller)?;
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::invalid(vec![crate::registry::FieldError {
            field: "reason".into(),
            message: "say why in 1 to 200 characters of one line".into(),
        }]));
    }
    answer(
        st,
        &caller,
        me,
        id,
        "POST /v1/tasks/{id}/decline",
        move |s| s.decline(id, me, reason),
    )
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// Where the volunteer is (from the phone), if shared.
    #[serde(default)]
    pub position: Option<GeoPoint>,
}

fn checked_position(p: Option<GeoPoint>) -> Result<Option<GeoPoint>, ApiError> {
    if let Some(g) = p
        && (!(-90.0..=90.0).contains(&g.lat) || !(-180.0..=180.0).contains(&g.lon))
    {
        return Err(ApiError::invalid(vec![crate::registry::FieldError {
            field: "position".into(),
            message: "latitude -90 to 90, longitude -180 to 180".into(),
        }]));
    }
    Ok(p)
}

#[utoipa::path(post, path = "/v1/tasks/{id}/check-in", tag = "volunteers", request_body = CheckIn,
    params(("id" = u64, Path, description = "Task id")),
    responses((status = 200, body = MyTask), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn check_in(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<CheckIn>,
) -> Result<Json<MyTask>, ApiError> {
    visit(st, &caller, id, req, false).await
}

#[utoipa::path(post, path = "/v1/tasks/{id}/check-out", tag = "volunteers", request_body = CheckIn,
    params(("id" = u64, Path, description = "Task id")),
    responses((status = 200, body = MyTask), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn check_out(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<CheckIn>,
) -> Result<Json<MyTask>, ApiError> {
    visit(st, &caller, id, req, true).await
}

/// Check in (`out` false) or out: the volunteer's own offer, at the position given.
async fn visit(
    st: AppState,
    caller: &Caller,
    id: u64,
    req: CheckIn,
    out: bool,
) -> Result<Json<MyTask>, ApiError> {
    let me = volunteer_of(caller)?;
    let position = checked_position(req.position)?;
    let route = if out {
        "POST /v1/tasks/{id}/check-out"
    } else {
        "POST /v1/tasks/{id}/check-in"
    };
    answer(st, caller, me, id, route, move |s| {
        s.check_in_out(id, me, position, out)
    })
    .await
}

fn staff_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_volunteer() {
        Err(ApiError::forbidden(
            "this route is for station, bureau and administrator tokens; a volunteer's own tasks are under me/tasks",
        ))
    } else {
        Ok(())
    }
}

#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", request_body = NewTask,
    description = "Records a one-off task (a resident's phone request, 接诉即办) and offers it at once: the answer shows the offer made, or why nobody could take it.",
    responses((status = 201, body = Task), (status = 422, body = Problem)))]
pub async fn create_task(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    staff_only(&caller)?;
    let by = caller.scope.to_string();
    let task = blocking(move || Ok(st.scheduler.create_task(input, &caller, &by)?)).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks", request_body = Cancel,
    params(("id" = u64, Path, description = "Task id")),
    description = "Cancels a task still to do; its offers are withdrawn.",
    responses((status = 200, body = Task), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<Cancel>,
) -> Result<Json<Task>, ApiError> {
    staff_only(&caller)?;
    if req
        .reason
        .as_deref()
        .is_some_and(|r| r.chars().count() > 200 || r.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(vec![crate::registry::FieldError {
            field: "reason".into(),
            message: "at most 200 characters of one line".into(),
        }]));
    }
    let by = caller.scope.to_string();
    let task = blocking(move || Ok(st.scheduler.cancel(id, &caller, &by, req.reason)?)).await?;
    Ok(Json(task))
}

#[utoipa::path(post, path = "/v1/tasks/{id}/reoffer", tag = "tasks",
    params(("id" = u64, Path, description = "Task id")),
    description = "Matches the task's open seats again now (after declines, expiries or new volunteers); volunteers who declined are not asked again. The answer shows the offers made, or why nobody could take it.",
    responses((status = 200, body = Task), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn reoffer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Task>, ApiError> {
    staff_only(&caller)?;
    let by = caller.scope.to_string();
    let task = blocking(move || Ok(st.scheduler.reoffer(id, &caller, &by)?)).await?;
    Ok(Json(task))
}

/// A volunteer chosen by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    pub volunteer: u64,
}

#[utoipa::path(post, path = "/v1/tasks/{id}/assign", tag = "tasks", request_body = Assign,
    params(("id" = u64, Path, description = "Task id")),
    description = "Offers the task to a volunteer the station chose by hand. The hard constraints still apply: a volunteer who breaks one is refused (422) with the constraint named (skill, clearance, availability, distance, capacity, station, …).",
    responses((status = 200, body = Task), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn assign(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<Assign>,
) -> Result<Json<Task>, ApiError> {
    staff_only(&caller)?;
    let by = caller.scope.to_string();
    let task = blocking(move || Ok(st.scheduler.assign(id, req.volunteer, &caller, &by)?)).await?;
    Ok(Json(task))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShortageQuery {
    /// Only this region's subtree (a county or township code).
    region: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Unstaffed tasks of one township for one reason (and the skill, role or clearance missing).
#[derive(Debug, Serialize, ToSchema)]
pub struct ShortageRow {
    pub township: String,
    pub township_name: String,
    /// The reason code, as on the tasks (`missing_skill`, `too_far`, `at_capacity`, …).
    pub reason: String,
    /// The skill, role or clearance the reason names, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    pub tasks: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Shortage {
    /// Unstaffed tasks counted.
    pub unstaffed: u64,
    /// Most tasks first.
    pub rows: Vec<ShortageRow>,
}

#[utoipa::path(get, path = "/v1/reports/shortage", tag = "tasks", params(ShortageQuery),
    description = "Where volunteers are missing: the caller's unstaffed tasks counted by township and reason (and the skill, role or clearance missing), so the bureau knows whom to recruit and where. `format=csv` answers text/csv.",
    responses((status = 200, description = "The report", content((Shortage = "application/json"), (String = "text/csv")))))]
pub async fn shortage(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ShortageQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(super::extract::query_error("format", "must be json or csv")),
    };
    let report = shortage_of(&st, &caller, q.region.as_deref())?;
    if !csv {
        return Ok(Json(report).into_response());
    }
    use crate::registry::import::spreadsheet_safe as safe;
    let mut out = String::from("township,township_name,reason,what,tasks\n");
    for row in &report.rows {
        let cells = [
            row.township.clone(),
            row.township_name.clone(),
            row.reason.clone(),
            row.what.clone().unwrap_or_default(),
            row.tasks.to_string(),
        ];
        let line: Vec<String> = cells
            .iter()
            .map(|c| {
                let c = safe(c);
                if c.contains([',', '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.into_owned()
                }
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        out,
    )
        .into_response())
}

/// The shortage report for the caller (the API's and the console's one way to it).
pub(crate) fn shortage_of(
    st: &AppState,
    caller: &Caller,
    region: Option<&str>,
) -> Result<Shortage, ApiError> {
    staff_only(caller)?;
    let prefix = region.map(super::registry::subtree).transpose()?;
    Ok(st.read(|r| {
        let mut counts: std::collections::BTreeMap<(String, String, Option<String>), u64> =
            Default::default();
        let mut unstaffed = 0u64;
        let mut after = 0;
        loop {
            let page = r.tasks_in_status(TaskStatus::Unstaffed, after, 1000, |t: &Task| {
                crate::service::Guard::community(caller, &t.community)
                    && prefix.as_deref().is_none_or(|p| t.community.starts_with(p))
            })?;
            for t in &page.items {
                unstaffed += 1;
                let township = format!("{}000", t.community.get(..9).unwrap_or(""));
                for rc in &t.unstaffed {
                    let v = serde_json::to_value(&rc.reason).unwrap_or_default();
                    let code = v["code"].as_str().unwrap_or("").to_owned();
                    let what = ["skill", "role", "clearance"]
                        .iter()
                        .find_map(|k| v[*k].as_str().map(str::to_owned));
                    *counts.entry((township.clone(), code, what)).or_default() += 1;
                }
            }
            match page.next.and_then(|n| n.parse().ok()) {
                Some(n) => after = n,
                None => break,
            }
        }
        let mut rows = Vec::new();
        for ((township, reason, what), tasks) in counts {
            let township_name = r.region(&township)?.map(|g| g.name).unwrap_or_default();
            rows.push(ShortageRow {
                township,
                township_name,
                reason,
                what,
                tasks,
            });
        }
        rows.sort_by(|a, b| b.tasks.cmp(&a.tasks).then(a.township.cmp(&b.township)));
        Ok::<_, crate::store::StoreError>(Shortage { unstaffed, rows })
    })?)
}
