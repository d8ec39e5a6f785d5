//! The township station's pages: the month at a glance, tasks (re-offer, assign by hand,
//! cancel), a resident's phone request (接诉即办), residents (ID masked unless revealed, which is
//! audited), volunteers with their login QR codes, and spreadsheet imports.

use std::collections::BTreeMap;

use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Datelike, Duration};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::{
    Form, Staff, Web, csrf_field, error_page, local_time, local_utc, mask_id, page, priority_name,
    problems, reason_text, see_other, status_name,
};
use crate::api::extract::{Body, Path as ApiPath, Query as ApiQuery};
use crate::api::problem::ApiError;
use crate::api::{AppState, registry as reg, tasks as api_tasks, users};
use crate::records::model::{AuditAction, TaskCounts, month_start};
use crate::registry::{Person, Station};
use crate::schedule::{Priority, Task, TaskStatus, TaskTarget};

pub(super) fn routes(import_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/station", get(dashboard_route))
        .route("/station/tasks", get(task_list))
        .route("/station/tasks/{id}", get(task_page))
        .route("/station/tasks/{id}/reoffer", post(reoffer))
        .route("/station/tasks/{id}/assign", post(assign))
        .route("/station/tasks/{id}/cancel", post(cancel))
        .route("/station/requests/new", get(request_form))
        .route("/station/requests", post(request_post))
        .route("/station/persons", get(persons))
        .route("/station/persons/{id}", get(person_page))
        .route("/station/persons/{id}/reveal", post(reveal))
        .route("/station/volunteers", get(volunteers))
        .route("/station/volunteers/{id}", get(volunteer_page))
        .route("/station/volunteers/{id}/login-link", post(login_link))
        .route("/station/volunteers/{id}/end-sessions", post(end_sessions))
        .route(
            "/station/import",
            get(import_form)
                .post(import_post)
                .layer(axum::extract::DefaultBodyLimit::max(import_limit)),
        )
}

/// The station a staff member works for (bureaus and administrators have the bureau pages).
#[allow(clippy::result_large_err)]
fn station_of(s: &Staff) -> Result<Station, Response> {
    s.caller.station.clone().ok_or_else(|| see_other("/bureau"))
}

// ------------------------------------------------------------------------------- dashboard

/// One community's row on the dashboard.
#[derive(Debug, Default, Clone)]
pub struct CommunityRow {
    pub code: String,
    pub name: String,
    /// Active tasks due by the end of the month, by status.
    pub active: BTreeMap<&'static str, u32>,
    /// The month's tasks by how they stand (from the records' counts).
    pub month: TaskCounts,
    pub overdue: u32,
}

/// What the station dashboard shows.
#[derive(Debug, Default)]
pub struct Dashboard {
    pub month: String,
    pub rows: Vec<CommunityRow>,
    /// Urgent tasks still to do (follow-ups first).
    pub urgent: Vec<Task>,
    pub unstaffed: Vec<Task>,
    pub unstaffed_total: u32,
    pub overdue: Vec<Task>,
    pub overdue_total: u32,
    pub active_total: u32,
}

const LISTED: usize = 50;

fn status_key(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Open => "open",
        TaskStatus::Offered => "offered",
        TaskStatus::Accepted => "accepted",
        TaskStatus::CheckedIn => "checked_in",
        TaskStatus::Visited => "visited",
        TaskStatus::Done => "done",
        TaskStatus::Unstaffed => "unstaffed",
        TaskStatus::Cancelled => "cancelled",
    }
}

/// The month of a station, from the active-task index (which summarises every task still to
/// do: nothing finished is read) and the month's counts (from the records' index). Only the
/// tasks listed (at most 50 a list) are read in full.
pub fn dashboard(
    r: &crate::store::ReadTx,
    station: &Station,
    month: u32,
) -> Result<Dashboard, crate::store::StoreError> {
    let start = month_start(month).unwrap_or_default();
    let next = start
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(start);
    // Due by the end of the month: started before the next month's first midnight (local).
    let until = next
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(crate::clock::local_zone()).earliest())
        .map_or(i64::MAX, |t| t.timestamp());
    let mut d = Dashboard {
        month: format!("{}-{:02}", start.year(), start.month()),
        ..Default::default()
    };
    let (mut urgent, mut unstaffed, mut overdue) = (Vec::new(), Vec::new(), Vec::new());
    for c in &station.communities {
        let mut row = CommunityRow {
            code: c.clone(),
            name: r.region(c)?.map(|g| g.name).unwrap_or_default(),
            ..Default::default()
        };
        for t in r.active_tasks(c)? {
            if t.due_start >= until {
                continue;
            }
            *row.active.entry(status_key(t.status)).or_default() += 1;
            d.active_total += 1;
            if t.overdue {
                row.overdue += 1;
                d.overdue_total += 1;
                overdue.push((t.due_end, t.id));
            }
            if t.status == TaskStatus::Unstaffed {
                d.unstaffed_total += 1;
                unstaffed.push((t.due_end, t.id));
            }
            if t.priority == Priority::Urgent {
                urgent.push((!t.follow_up, t.due_end, t.id));
            }
        }
        for (_community, _action, counts) in r.task_counts(month, c)? {
            row.month.add(&counts);
        }
        d.rows.push(row);
    }
    urgent.sort_unstable();
    unstaffed.sort_unstable();
    overdue.sort_unstable();
    let read = |ids: &mut dyn Iterator<Item = u64>| -> Result<Vec<Task>, crate::store::StoreError> {
        let mut out = Vec::new();
        for id in ids.take(LISTED) {
            if let Some(t) = r.task(id)? {
                out.push(t);
            }
        }
        Ok(out)
    };
    d.urgent = read(&mut urgent.iter().map(|x| x.2))?;
    d.unstaffed = read(&mut unstaffed.iter().map(|x| x.1))?;
    d.overdue = read(&mut overdue.iter().map(|x| x.1))?;
    d.rows.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(d)
}

#[derive(Deserialize)]
struct MonthQuery {
    month: Option<String>,
}

#[allow(clippy::result_large_err)]
fn parse_month(web: &Web, st: &AppState, m: Option<&str>) -> Result<u32, Response> {
    let m = m
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map_or_else(|| super::this_month(st), str::to_owned);
    crate::records::coverage::parse_month(&m).map_err(|e| {
        error_page(
            web,
            &crate::api::extract::query_error("month", e.to_string()),
        )
    })
}

async fn dashboard_page(
    st: AppState,
    staff: Staff,
    month: Option<String>,
) -> Result<Response, Response> {
    let station = station_of(&staff)?;
    let web = &staff.web;
    let m = parse_month(web, &st, month.as_deref())?;
    let d = st
        .read(|r| dashboard(r, &station, m))
        .map_err(|e| error_page(web, &ApiError::from(e)))?;
    let total = |f: fn(&CommunityRow) -> u32| d.rows.iter().map(f).sum::<u32>();
    let names: BTreeMap<String, String> = d
        .rows
        .iter()
        .map(|r| (r.code.clone(), r.name.clone()))
        .collect();
    let body = html! {
        form.bar method="get" action="/station" {
            label { (web.t("月份", "Month")) input type="month" name="month" value=(d.month); }
            button type="submit" { (web.t("查看", "Show")) }
            a.button href="/station/requests/new" { (web.t("＋ 登记居民诉求", "+ Phone request")) }
        }
        p.summary {
            (station.name) " · "
            (web.t("进行中", "active")) " " strong { (d.active_total) } " · "
            (web.t("无人可派", "unstaffed")) " " strong.bad { (d.unstaffed_total) } " · "
            (web.t("逾期", "overdue")) " " strong.bad { (d.overdue_total) }
        }
        @if !d.urgent.is_empty() {
            section.urgent {
                h2 { (web.t("紧急（回访优先）", "Urgent (follow-ups first)")) }
                (task_table(web, &d.urgent, &names))
            }
        }
        section {
            h2 { (web.t("各村（社区）本月任务", "This month by community")) }
            div.scroll { table.dash {
                thead {
                    tr {
                        th rowspan="2" { (web.t("村（社区）", "Community")) }
                        th.group colspan="4" { (web.t("本月截止的任务", "Due this month")) }
                        th.group colspan="6" { (web.t("目前待办（含往月遗留）", "Still to do now (earlier months too)")) }
                    }
                    tr {
                        th.num { (web.t("应办", "Due")) }
                        th.num { (web.t("已完成", "Done")) }
                        th.num { (web.t("无人可派", "Unstaffed")) }
                        th.num { (web.t("逾期", "Overdue")) }
                        th.num { (web.t("待派", "Open")) }
                        th.num { (web.t("已派单", "Offered")) }
                        th.num { (web.t("已接单", "Accepted")) }
                        th.num { (web.t("走访中/待审", "Visiting")) }
                        th.num { (web.t("无人可派", "Unstaffed")) }
                        th.num { (web.t("逾期", "Overdue")) }
                    }
                }
                tbody {
                    @for row in &d.rows {
                        @let n = |k: &str| row.active.get(k).copied().unwrap_or(0);
                        tr {
                            td { a href=(format!("/station/tasks?community={}", row.code)) { (row.name) } }
                            td.num { (row.month.due) }
                            td.num { (row.month.done) }
                            td.num.bad[row.month.unstaffed > 0] { (row.month.unstaffed) }
                            td.num.bad[row.month.overdue > 0] { (row.month.overdue) }
                            td.num { (n("open")) }
                            td.num { (n("offered")) }
                            td.num { (n("accepted")) }
                            td.num { (n("checked_in") + n("visited")) }
                            td.num.bad[n("unstaffed") > 0] { (n("unstaffed")) }
                            td.num.bad[row.overdue > 0] { (row.overdue) }
                        }
                    }
                }
                tfoot { tr {
                    th { (web.t("合计", "Total")) }
                    th.num { (total(|r| r.month.due)) }
                    th.num { (total(|r| r.month.done)) }
                    th.num { (total(|r| r.month.unstaffed)) }
                    th.num { (total(|r| r.month.overdue)) }
                    th.num { (total(|r| r.active.get("open").copied().unwrap_or(0))) }
                    th.num { (total(|r| r.active.get("offered").copied().unwrap_or(0))) }
                    th.num { (total(|r| r.active.get("accepted").copied().unwrap_or(0))) }
                    th.num { (total(|r| r.active.get("checked_in").copied().unwrap_or(0) + r.active.get("visited").copied().unwrap_or(0))) }
                    th.num { (total(|r| r.active.get("unstaffed").copied().unwrap_or(0))) }
                    th.num { (total(|r| r.overdue)) }
                } }
            } }
        }
        section {
            h2 { (web.t("无人可派的任务及原因", "Unstaffed tasks and why")) }
            @if d.unstaffed.is_empty() { p.ok { (web.t("没有。", "None.")) } }
            @else {
                ul.reasons {
                    @for t in &d.unstaffed {
                        li {
                            a href=(format!("/station/tasks/{}", t.id)) { (title(web, t)) }
                            " — "
                            @for (i, rc) in t.unstaffed.iter().enumerate() {
                                @if i > 0 { "；" }
                                (reason_text(web, &rc.reason))
                            }
                        }
                    }
                }
                @if d.unstaffed_total as usize > d.unstaffed.len() {
                    p { a href="/station/tasks?status=unstaffed" { (web.t("全部无人可派任务 →", "All unstaffed tasks →")) } }
                }
            }
        }
        section {
            h2 { (web.t("逾期未访", "Overdue visits")) }
            @if d.overdue.is_empty() { p.ok { (web.t("没有。", "None.")) } }
            @else {
                (task_table(web, &d.overdue, &names))
                @if d.overdue_total as usize > d.overdue.len() {
                    p { a href="/station/tasks?status=overdue" { (web.t("全部逾期任务 →", "All overdue tasks →")) } }
                }
            }
        }
    };
    Ok(page(web, web.t("本月工作台", "This month"), body))
}

async fn dashboard_route(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<MonthQuery>,
) -> Response {
    dashboard_page(st, staff, q.month)
        .await
        .unwrap_or_else(|r| r)
}

fn title<'a>(web: &Web, t: &'a Task) -> &'a str {
    match web.lang {
        super::Lang::Zh => &t.title.zh,
        super::Lang::En => &t.title.en,
    }
}

/// The names of the communities of `tasks`.
fn community_names(st: &AppState, tasks: &[Task]) -> BTreeMap<String, String> {
    let codes: std::collections::BTreeSet<&str> =
        tasks.iter().map(|t| t.community.as_str()).collect();
    st.read(|r| {
        let mut out = BTreeMap::new();
        for c in codes {
            if let Some(g) = r.region(c)? {
                out.insert(c.to_owned(), g.name);
            }
        }
        Ok::<_, crate::store::StoreError>(out)
    })
    .unwrap_or_default()
}

fn task_table(web: &Web, tasks: &[Task], names: &BTreeMap<String, String>) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th { "#" }
                th { (web.t("任务", "Task")) }
                th { (web.t("村（社区）", "Community")) }
                th { (web.t("状态", "Status")) }
                th { (web.t("优先级", "Priority")) }
                th { (web.t("截止", "Due")) }
            } }
            tbody {
                @for t in tasks {
                    tr.overdue[t.overdue] {
                        td { (t.id) }
                        td { a href=(format!("/station/tasks/{}", t.id)) { (title(web, t)) } }
                        td { (names.get(&t.community).map_or(t.community.as_str(), String::as_str)) }
                        td { (status_name(web, t.status)) @if t.overdue { " " span.tag.bad { (web.t("逾期", "overdue")) } } }
                        td { (priority_name(web, t.priority)) }
                        td { (local_time(t.due_end)) }
                    }
                }
            }
        } }
    }
}

// ----------------------------------------------------------------------------------- tasks

#[derive(Deserialize)]
struct TaskListQuery {
    status: Option<String>,
    community: Option<String>,
    cursor: Option<String>,
}

async fn task_list(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<TaskListQuery>,
) -> Response {
    let web = &staff.web;
    let mut query = vec![("limit", "100".to_owned())];
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        query.push(("status", s.to_owned()));
    }
    if let Some(c) = q.community.as_deref().filter(|s| !s.is_empty()) {
        query.push(("region", c.to_owned()));
    }
    if let Some(c) = q.cursor.as_deref().filter(|s| !s.is_empty()) {
        query.push(("cursor", c.to_owned()));
    }
    let qs = serde_urlencoded::to_string(&query).unwrap_or_default();
    let parsed = match serde_urlencoded::from_str(&qs) {
        Ok(p) => p,
        Err(e) => return error_page(web, &crate::api::extract::query_error("", e.to_string())),
    };
    let page_result =
        crate::api::duties::list_tasks(State(st.clone()), staff.caller.clone(), ApiQuery(parsed))
            .await;
    let Json(tasks) = match page_result {
        Ok(p) => p,
        Err(e) => return error_page(web, &e),
    };
    let statuses = [
        ("", web.t("全部", "all")),
        ("unstaffed", web.t("无人可派", "unstaffed")),
        ("overdue", web.t("逾期", "overdue")),
        ("open", web.t("待派", "open")),
        ("offered", web.t("已派单", "offered")),
        ("accepted", web.t("已接单", "accepted")),
        ("checked_in", web.t("走访中", "checked in")),
        ("done", web.t("已完成", "done")),
        ("cancelled", web.t("已取消", "cancelled")),
    ];
    let current = q.status.clone().unwrap_or_default();
    let community = q.community.clone().unwrap_or_default();
    let body = html! {
        nav.tabs {
            @for (key, label) in statuses {
                a.active[current == key] href=(format!("/station/tasks?status={key}&community={community}")) { (label) }
            }
        }
        @if tasks.items.is_empty() { p { (web.t("没有符合条件的任务。", "No tasks match.")) } }
        @else { (task_table(web, &tasks.items, &community_names(&st, &tasks.items))) }
        @if let Some(next) = &tasks.next_cursor {
            p { a href=(format!("/station/tasks?status={current}&community={community}&cursor={next}")) { (web.t("下一页 →", "Next page →")) } }
        }
    };
    page(web, web.t("任务", "Tasks"), body)
}

async fn task_page(
    State(st): State<AppState>,
    staff: Staff,
    ApiPath(id): ApiPath<u64>,
) -> Response {
    task_view(&st, &staff.web, &staff.caller, id, None).await
}

async fn task_view(
    st: &AppState,
    web: &Web,
    caller: &crate::api::auth::Caller,
    id: u64,
    failed: Option<ApiError>,
) -> Response {
    let detail =
        match crate::api::duties::get_task(State(st.clone()), caller.clone(), ApiPath(id)).await {
            Ok(Json(d)) => d,
            Err(e) => return error_page(web, &e),
        };
    let task = &detail.task;
    // The person's name through the person route, so that the read is audited as any other.
    let person: Option<Person> = match task.target {
        TaskTarget::Person { id: pid } => {
            reg::get_person(State(st.clone()), caller.clone(), ApiPath(pid))
                .await
                .ok()
                .map(|Json(p)| p)
        }
        TaskTarget::Community { .. } => None,
    };
    let names: BTreeMap<u64, String> = st
        .read(|r| {
            let mut m = BTreeMap::new();
            for o in &task.offers {
                if let Some(v) = r.volunteer(o.volunteer)? {
                    m.insert(o.volunteer, v.name);
                }
            }
            Ok::<_, crate::store::StoreError>(m)
        })
        .unwrap_or_default();
    let candidates: Vec<(u64, String)> = match &caller.station {
        Some(s) => st
            .read(|r| {
                Ok::<_, crate::store::StoreError>(
                    r.volunteers_of_station(s.id, 0, 500, |v| {
                        v.status == crate::registry::VolunteerStatus::Active
                    })?
                    .items
                    .into_iter()
                    .map(|v| (v.id, v.name))
                    .collect(),
                )
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let active = task.status.is_active();
    // The visit reports, through the report route (audited there like any read of them).
    let mut reports =
        crate::api::records::task_reports(State(st.clone()), caller.clone(), ApiPath(id))
            .await
            .map(|Json(r)| r)
            .unwrap_or_default();
    reports.sort_by_key(|r| std::cmp::Reverse(r.version));
    let question = |item: &str| {
        detail.questions.iter().find(|q| q.id == item).map_or_else(
            || item.to_owned(),
            |q| match web.lang {
                super::Lang::Zh => q.question.zh.clone(),
                super::Lang::En => q.question.en.clone(),
            },
        )
    };
    let community_name = st
        .read(|r| r.region(&task.community))
        .ok()
        .flatten()
        .map_or_else(|| task.community.clone(), |g| g.name);
    let body = html! {
        @if let Some(e) = &failed { (problems(web, e)) }
        @if let Some(orig) = task.follows_up {
            p.notice { (web.t("这是对任务 ", "This follows up task ")) a href=(format!("/station/tasks/{orig}")) { "#" (orig) } (web.t(" 走访记录的跟进；原因见该任务的审核结果。", "'s visit report; the review there says why.")) }
        }
        dl.facts {
            dt { (web.t("状态", "Status")) } dd { (status_name(web, task.status)) @if task.overdue { " " span.tag.bad { (web.t("逾期", "overdue")) } } }
            dt { (web.t("优先级", "Priority")) } dd { (priority_name(web, task.priority)) }
            dt { (web.t("时间", "Due")) } dd { (local_time(task.due_start)) " — " (local_time(task.due_end)) }
            @if let Some(p) = &person {
                dt { (web.t("服务对象", "Resident")) } dd { a href=(format!("/station/persons/{}", p.id)) { (p.name) } }
                @if let Some(a) = &p.address { dt { (web.t("地址", "Address")) } dd { (a) } }
            }
            dt { (web.t("村（社区）", "Community")) } dd { (community_name) }
            dt { (web.t("要求", "Requirements")) } dd {
                (web.t("人数", "team")) " " (task.requirements.team_size)
                @for s in &task.requirements.skills { " · " (super::label(web, s)) }
                @for s in &task.requirements.roles { " · " (super::label(web, s)) }
                @for s in &task.requirements.clearances { " · " (s) }
                @if let Some(km) = task.requirements.max_distance_km { " · ≤ " (km) " km" }
            }
        }
        @if !task.unstaffed.is_empty() {
            section {
                h2 { (web.t("为什么无人可派", "Why nobody could take it")) }
                ul.reasons {
                    @for rc in &task.unstaffed {
                        li { (reason_text(web, &rc.reason))
                            @if rc.volunteers > 0 { " (" (rc.volunteers) " " (web.t("人", "volunteers")) ")" } }
                    }
                }
            }
        }
        section {
            h2 { (web.t("派单", "Offers")) }
            @if task.offers.is_empty() { p { (web.t("尚未派单。", "No offers yet.")) } }
            @else {
                div.scroll { table {
                    thead { tr { th { (web.t("志愿者", "Volunteer")) } th { (web.t("状态", "State")) } th { (web.t("派单时间", "Offered")) } th { (web.t("答复期限", "Answer by")) } th { (web.t("说明", "Note")) } } }
                    tbody { @for o in &task.offers { tr {
                        td { a href=(format!("/station/volunteers/{}", o.volunteer)) { (names.get(&o.volunteer).cloned().unwrap_or_else(|| o.volunteer.to_string())) } }
                        td { (super::offer_state(web, o.state)) }
                        td { (local_utc(o.offered_at)) }
                        td { (local_utc(o.respond_by)) }
                        td { (o.reason.clone().unwrap_or_default()) }
                    } } }
                } }
            }
        }
        @if !reports.is_empty() {
            section {
                h2 { (web.t("走访记录", "Visit reports")) }
                @for r in &reports {
                    div.card.report {
                        p {
                            strong { (web.t("第 ", "Version ")) (r.version) (web.t(" 版", "")) } " · "
                            (report_state_name(web, r.state)) " · "
                            (local_utc(r.filed_at)) " · " (r.filed_by)
                        }
                        p.small {
                            (web.t("走访 ", "Visit ")) (local_utc(r.checked_in_at)) " — " (local_utc(r.checked_out_at))
                            " · " @if r.reached { (web.t("见到本人", "reached")) } @else { strong.bad { (web.t("未见到本人", "not reached")) } }
                        }
                        @if !r.answers.is_empty() {
                            dl.facts {
                                @for a in &r.answers { dt { (question(&a.item)) } dd { (choice_text(web, &detail.questions, &a.item, &a.value)) } }
                            }
                        }
                        @if !r.notes.is_empty() { p { (web.t("备注：", "Notes: ")) (r.notes) } }
                        @if let Some(rv) = &r.review {
                            p {
                                (web.t("审核：", "Review: ")) (outcome_name(web, rv.outcome))
                                " (" (rv.by) ")"
                                @if let Some(f) = rv.follow_up_task { " · " a href=(format!("/station/tasks/{f}")) { (web.t("跟进任务 #", "follow-up #")) (f) } }
                            }
                            @if !rv.reasons.is_empty() { ul { @for why in &rv.reasons { li { (why) } } } }
                        }
                        @if let Some(e) = &r.review_error { p.bad { (web.t("等待插件审核：", "Waiting for the plugin's review: ")) (e) } }
                    }
                }
            }
        }
        @if active {
            section.actions {
                h2 { (web.t("操作", "Actions")) }
                form.inline method="post" action=(format!("/station/tasks/{id}/reoffer")) {
                    (csrf_field(web))
                    button type="submit" { (web.t("重新派单", "Re-offer")) }
                }
                form.inline method="post" action=(format!("/station/tasks/{id}/assign")) {
                    (csrf_field(web))
                    label { (web.t("指定志愿者", "Assign by hand"))
                        select name="volunteer" required {
                            option value="" { (web.t("— 选择 —", "— choose —")) }
                            @for (vid, name) in &candidates { option value=(vid) { (name) " (#" (vid) ")" } }
                        }
                    }
                    button type="submit" { (web.t("派给此人", "Offer to them")) }
                }
                form.inline method="post" action=(format!("/station/tasks/{id}/cancel")) {
                    (csrf_field(web))
                    input type="text" name="reason" maxlength="200" placeholder=(web.t("取消原因", "Reason"));
                    button.danger type="submit" { (web.t("取消任务", "Cancel task")) }
                }
            }
        }
        section {
            h2 { (web.t("经过", "History")) }
            ul.history { @for h in &task.history {
                li { (local_utc(h.at)) " · " (status_name(web, h.status)) " · " (h.by) @if let Some(n) = &h.note { " · " (n) } }
            } }
        }
    };
    let status = failed.as_ref().map_or(StatusCode::OK, |e| e.status);
    super::page_with(web, status, title(web, task), body)
}

fn report_state_name(web: &Web, s: crate::records::model::ReportState) -> &'static str {
    use crate::records::model::ReportState as R;
    match s {
        R::Submitted => web.lang.t("待审核", "waiting for review"),
        R::Accepted => web.lang.t("已通过", "accepted"),
        R::Rejected => web.lang.t("已退回", "returned"),
        R::Superseded => web.lang.t("已被更正", "superseded"),
    }
}

fn outcome_name(web: &Web, o: crate::records::model::Outcome) -> &'static str {
    use crate::records::model::Outcome as O;
    match o {
        O::Accepted => web.lang.t("通过", "accepted"),
        O::FollowUp => web.lang.t("通过，需跟进", "accepted, follow-up needed"),
        O::Rejected => web.lang.t("退回", "returned"),
    }
}

/// An answer as people read it: a choice by its label, yes/no in words.
fn choice_text(
    web: &Web,
    questions: &[crate::schedule::ChecklistItem],
    item: &str,
    v: &str,
) -> String {
    questions
        .iter()
        .find(|q| q.id == item)
        .and_then(|q| {
            let i = q.choices.iter().position(|c| c == v)?;
            q.choice_labels
                .get(i)
                .map(|l| web.t(&l.zh, &l.en).to_owned())
        })
        .unwrap_or_else(|| answer_text(web, v))
}

fn answer_text(web: &Web, v: &str) -> String {
    match v {
        "yes" => web.t("是", "yes").to_owned(),
        "no" => web.t("否", "no").to_owned(),
        other => other.to_owned(),
    }
}

async fn reoffer(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    match api_tasks::reoffer(State(st.clone()), form.caller.clone(), ApiPath(id)).await {
        Ok(_) => see_other(&format!("/station/tasks/{id}")),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

async fn assign(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let Some(volunteer) = form
        .get("volunteer")
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        let e = ApiError::invalid(vec![crate::registry::FieldError {
            field: "volunteer".into(),
            message: "choose a volunteer".into(),
        }]);
        return task_view(&st, &form.web, &form.caller, id, Some(e)).await;
    };
    let req = api_tasks::Assign { volunteer };
    match api_tasks::assign(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id),
        Body(req),
    )
    .await
    {
        Ok(_) => see_other(&format!("/station/tasks/{id}")),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

async fn cancel(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let req = api_tasks::Cancel {
        reason: form.text("reason"),
    };
    match api_tasks::cancel(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id),
        Body(req),
    )
    .await
    {
        Ok(_) => see_other(&format!("/station/tasks/{id}")),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

// -------------------------------------------------------------------------- phone requests

#[derive(Deserialize)]
struct RequestQuery {
    person: Option<u64>,
}

fn request_body(
    web: &Web,
    person: Option<&Person>,
    form: Option<&Form>,
    failed: Option<&ApiError>,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Markup {
    let value = |k: &str, d: String| form.and_then(|f| f.text(k)).unwrap_or(d);
    let start = now.format("%Y-%m-%dT%H:%M").to_string();
    let end = (now + Duration::days(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let skills = crate::registry::vocabulary::SKILLS;
    html! {
        @if let Some(e) = failed { (problems(web, e)) }
        form.card method="post" action="/station/requests" {
            (csrf_field(web))
            @if let Some(p) = person {
                p { (web.t("服务对象：", "Resident: ")) strong { (p.name) } " (#" (p.id) ")" }
                input type="hidden" name="person" value=(p.id);
            } @else {
                label { (web.t("服务对象编号", "Resident number"))
                    input type="number" name="person" min="1" required value=(value("person", String::new()));
                    small { (web.t("不知道编号？先在", "Not sure? Find them under ")) a href="/station/persons" { (web.t("服务对象", "Residents")) } (web.t("里查找。", ".")) }
                }
            }
            label { (web.t("诉求（标题）", "Request (title)"))
                input type="text" name="title" maxlength="100" required value=(value("title", String::new())) placeholder=(web.t("例如：老人来电需要代购药品", "e.g. needs medicine fetched")); }
            div.row {
                label { (web.t("开始", "From")) input type="datetime-local" name="due_start" required value=(value("due_start", start)); }
                label { (web.t("截止", "By")) input type="datetime-local" name="due_end" required value=(value("due_end", end)); }
            }
            div.row {
                label { (web.t("优先级", "Priority"))
                    select name="priority" {
                        @for (v, zh, en) in [("urgent", "紧急", "urgent"), ("high", "高", "high"), ("normal", "普通", "normal"), ("low", "低", "low")] {
                            option value=(v) selected[value("priority", "high".into()) == v] { (web.t(zh, en)) }
                        }
                    }
                }
                label { (web.t("人数", "Team size")) input type="number" name="team_size" min="1" max="20" value=(value("team_size", "1".into())); }
                label { (web.t("最远距离（公里）", "Max distance (km)")) input type="number" name="max_distance_km" min="1" max="500" step="any" value=(value("max_distance_km", String::new())); }
            }
            fieldset {
                legend { (web.t("需要的技能", "Skills needed")) }
                @for s in skills {
                    label.check { input type="checkbox" name="skills" value=(s.0) checked[form.is_some_and(|f| f.all("skills").iter().any(|x| x == s.0))]; (web.t(s.1, s.0)) }
                }
            }
            button type="submit" { (web.t("登记并派单", "Record and offer")) }
        }
    }
}

async fn request_form(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<RequestQuery>,
) -> Response {
    let web = &staff.web;
    let person = match q.person {
        Some(id) => {
            match reg::get_person(State(st.clone()), staff.caller.clone(), ApiPath(id)).await {
                Ok(Json(p)) => Some(p),
                Err(e) => return error_page(web, &e),
            }
        }
        None => None,
    };
    let now = st
        .clock
        .now()
        .with_timezone(&crate::clock::local_zone())
        .fixed_offset();
    page(
        web,
        web.t("登记居民诉求（接诉即办）", "Record a resident's request"),
        request_body(web, person.as_ref(), None, None, now),
    )
}

fn local_input(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let naive = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M").ok()?;
    naive
        .and_local_timezone(crate::clock::local_zone())
        .single()
        .map(|t| t.fixed_offset())
}

async fn request_post(State(st): State<AppState>, form: Form) -> Response {
    let web = &form.web;
    let now = st
        .clock
        .now()
        .with_timezone(&crate::clock::local_zone())
        .fixed_offset();
    let mut errs = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errs.push(crate::registry::FieldError {
            field: field.into(),
            message: message.into(),
        })
    };
    let person = form
        .get("person")
        .and_then(|p| p.trim().parse::<u64>().ok());
    if person.is_none() {
        bad("person", "enter the resident's number");
    }
    let due_start = form.get("due_start").and_then(local_input);
    let due_end = form.get("due_end").and_then(local_input);
    if due_start.is_none() {
        bad("due_start", "a date and time like 2026-12-01 09:00");
    }
    if due_end.is_none() {
        bad("due_end", "a date and time like 2026-12-02 18:00");
    }
    let priority = match form.get("priority").unwrap_or("normal") {
        "urgent" => Priority::Urgent,
        "high" => Priority::High,
        "low" => Priority::Low,
        "normal" => Priority::Normal,
        _ => {
            bad("priority", "choose urgent, high, normal or low");
            Priority::Normal
        }
    };
    if due_end.is_some_and(|e| e <= now) {
        bad("due_end", "is already past: a request is due from now on");
    }
    let team_size = form
        .get("team_size")
        .map_or(Some(1), |t| t.trim().parse::<u8>().ok());
    if team_size.is_none() {
        bad("team_size", "a number from 1 to 20");
    }
    let max_distance_km = match form.text("max_distance_km") {
        None => None,
        Some(t) => match t.parse::<f32>() {
            Ok(v) => Some(v),
            Err(_) => {
                bad("max_distance_km", "a number of kilometres");
                None
            }
        },
    };
    let title = form.text("title").unwrap_or_default();
    let fail = |e: ApiError| {
        super::page_with(
            web,
            e.status,
            web.t("登记居民诉求（接诉即办）", "Record a resident's request"),
            request_body(web, None, Some(&form), Some(&e), now),
        )
    };
    if !errs.is_empty() {
        return fail(ApiError::invalid(errs));
    }
    let (Some(pid), Some(due_start), Some(due_end), Some(team_size)) =
        (person, due_start, due_end, team_size)
    else {
        return fail(ApiError::invalid(Vec::new()));
    };
    let input = crate::schedule::staffing::NewTask {
        kind: "phone-request".into(),
        title: crate::schedule::Names {
            zh: title.clone(),
            en: title,
        },
        target: TaskTarget::Person { id: pid },
        due_start,
        due_end,
        priority,
        requirements: crate::task::Requirements {
            team_size,
            skills: form.all("skills"),
            max_distance_km,
            clearances: Vec::new(),
            gender: None,
            languages: Vec::new(),
            roles: Vec::new(),
        },
    };
    match api_tasks::create_task(State(st.clone()), form.caller.clone(), Body(input)).await {
        Ok((_, Json(task))) => see_other(&format!("/station/tasks/{}", task.id)),
        Err(e) => fail(e),
    }
}

// --------------------------------------------------------------------------------- persons

#[derive(Deserialize)]
struct PersonSearch {
    q: Option<String>,
    cursor: Option<String>,
}

async fn persons(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<PersonSearch>,
) -> Response {
    let web = &staff.web;
    let query = reg::PersonQuery {
        region: None,
        name: q.q.clone().filter(|s| !s.trim().is_empty()),
        category: None,
        need: None,
        include_inactive: false,
        limit: Some(50),
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
    };
    let found =
        match reg::list_persons(State(st.clone()), staff.caller.clone(), ApiQuery(query)).await {
            Ok(Json(p)) => p,
            Err(e) => return error_page(web, &e),
        };
    let search = q.q.clone().unwrap_or_default();
    let body = html! {
        form.bar method="get" action="/station/persons" {
            input type="search" name="q" value=(search) placeholder=(web.t("姓名或身份证号", "Name or resident ID"));
            button type="submit" { (web.t("查找", "Search")) }
        }
        div.scroll { table {
            thead { tr { th { (web.t("姓名", "Name")) } th { (web.t("身份证号", "Resident ID")) } th { (web.t("村（社区）", "Community")) } th { (web.t("类别", "Categories")) } th {} } }
            tbody { @for p in &found.items { tr {
                td { a href=(format!("/station/persons/{}", p.id)) { (p.name) } }
                td.mono { (mask_id(&p.resident_id)) }
                td { (p.community) }
                td { @for c in &p.categories { span.tag { (super::label(web, c.as_str())) } " " } }
                td { a href=(format!("/station/requests/new?person={}", p.id)) { (web.t("登记诉求", "Request")) } }
            } } }
        } }
        @if let Some(next) = &found.next_cursor {
            p { a href=(format!("/station/persons?q={}&cursor={next}", form_urlencoded::byte_serialize(search.as_bytes()).collect::<String>())) { (web.t("下一页 →", "Next page →")) } }
        }
    };
    page(web, web.t("服务对象", "Residents"), body)
}

fn person_body(web: &Web, p: &Person, revealed: bool) -> Markup {
    html! {
        dl.facts {
            dt { (web.t("姓名", "Name")) } dd { (p.name) }
            dt { (web.t("身份证号", "Resident ID")) } dd {
                @if revealed { span.mono { (p.resident_id) } " " span.tag { (web.t("已记录查看", "view logged")) } }
                @else {
                    span.mono { (mask_id(&p.resident_id)) } " "
                    form.inline method="post" action=(format!("/station/persons/{}/reveal", p.id)) {
                        (csrf_field(web))
                        button.link type="submit" { (web.t("显示完整号码（将记入审计日志）", "Show in full (logged)")) }
                    }
                }
            }
            dt { (web.t("出生日期", "Born")) } dd { (p.birth_date) }
            @if let Some(a) = &p.address { dt { (web.t("地址", "Address")) } dd { (a) } }
            @if let Some(ph) = &p.phone { dt { (web.t("电话", "Phone")) } dd { (ph) } }
            dt { (web.t("村（社区）", "Community")) } dd { (p.community) }
            dt { (web.t("类别", "Categories")) } dd { @for c in &p.categories { span.tag { (super::label(web, c.as_str())) } " " } }
            @if !p.circumstances.is_empty() { dt { (web.t("情况", "Circumstances")) } dd { @for c in &p.circumstances { span.tag { (super::label(web, c.as_str())) } " " } } }
            @if let Some(g) = &p.guardian { dt { (web.t("监护人", "Guardian")) } dd { (g.name) "（" (g.relation) "）" @if let Some(ph) = &g.phone { " " a href=(format!("tel:{ph}")) { (ph) } } } }
            @if let Some(dis) = &p.disability { dt { (web.t("残疾", "Disability")) } dd { (format!("{:?}", dis.kind).to_lowercase()) " · " (web.t("等级 ", "grade ")) (dis.grade) } }
            @if !p.needs.is_empty() { dt { (web.t("需求", "Needs")) } dd { (p.needs.join("、")) } }
        }
        p { a.button href=(format!("/station/requests/new?person={}", p.id)) { (web.t("＋ 为此人登记诉求", "+ Record a request for them")) } }
    }
}

async fn person_page(
    State(st): State<AppState>,
    staff: Staff,
    ApiPath(id): ApiPath<u64>,
) -> Response {
    let web = &staff.web;
    match reg::get_person(State(st.clone()), staff.caller.clone(), ApiPath(id)).await {
        Ok(Json(p)) => page(web, &p.name.clone(), person_body(web, &p, false)),
        Err(e) => error_page(web, &e),
    }
}

async fn reveal(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let web = &form.web;
    let p = match reg::get_person(State(st.clone()), form.caller.clone(), ApiPath(id)).await {
        Ok(Json(p)) => p,
        Err(e) => return error_page(web, &e),
    };
    if let Err(e) = crate::api::records::audit(
        &st,
        &form.caller,
        AuditAction::Reveal,
        format!("person:{id}"),
        None,
        "POST /station/persons/{id}/reveal",
        Some(p.community.clone()),
    )
    .await
    {
        return error_page(web, &e);
    }
    page(web, &p.name.clone(), person_body(web, &p, true))
}

// ------------------------------------------------------------------------------ volunteers

async fn volunteers(State(st): State<AppState>, staff: Staff) -> Response {
    let web = &staff.web;
    let station = match station_of(&staff) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let list = match st.read(|r| r.volunteers_of_station(station.id, 0, 2000, |_| true)) {
        Ok(p) => p.items,
        Err(e) => return error_page(web, &ApiError::from(e)),
    };
    let body = html! {
        p { (list.len()) " " (web.t("名志愿者", "volunteers")) }
        div.scroll { table {
            thead { tr { th { (web.t("姓名", "Name")) } th { (web.t("技能", "Skills")) } th { (web.t("角色", "Roles")) } th { (web.t("月服务量", "Monthly capacity")) } th { (web.t("状态", "Status")) } } }
            tbody { @for v in &list { tr {
                td { a href=(format!("/station/volunteers/{}", v.id)) { (v.name) } }
                td { (super::labels(web, &v.skills)) }
                td { (super::labels(web, &v.roles)) }
                td.num { (v.monthly_capacity) }
                td { (format!("{:?}", v.status).to_lowercase()) }
            } } }
        } }
    };
    page(web, web.t("志愿者", "Volunteers"), body)
}

async fn volunteer_view(
    st: &AppState,
    web: &Web,
    caller: &crate::api::auth::Caller,
    id: u64,
    extra: Markup,
) -> Response {
    let v = match reg::get_volunteer(State(st.clone()), caller.clone(), ApiPath(id)).await {
        Ok(Json(v)) => v,
        Err(e) => return error_page(web, &e),
    };
    let hours =
        crate::api::records::volunteer_hours(State(st.clone()), caller.clone(), ApiPath(id))
            .await
            .ok()
            .map(|Json(h)| h);
    let body = html! {
        (extra)
        dl.facts {
            dt { (web.t("电话", "Phone")) } dd { (v.phone) }
            dt { (web.t("技能", "Skills")) } dd { (super::labels(web, &v.skills)) }
            dt { (web.t("角色", "Roles")) } dd { (super::labels(web, &v.roles)) }
            dt { (web.t("月服务量", "Monthly capacity")) } dd { (v.monthly_capacity) }
            @if let Some(h) = &hours {
                dt { (web.t("服务时长", "Service hours")) } dd { (format!("{:.1}", h.hours)) }
            }
        }
        section.actions {
            h2 { (web.t("手机登录", "Phone login")) }
            p { (web.t("生成一次性登录二维码，打印或让志愿者用手机扫码。", "Make a one-time login QR code to print or scan with the volunteer's phone.")) }
            form.inline method="post" action=(format!("/station/volunteers/{id}/login-link")) {
                (csrf_field(web))
                button type="submit" { (web.t("生成登录二维码", "Make a login QR code")) }
            }
            form.inline method="post" action=(format!("/station/volunteers/{id}/end-sessions")) {
                (csrf_field(web))
                button.danger type="submit" { (web.t("让其所有手机退出登录", "Log out all their phones")) }
            }
        }
    };
    page(web, &v.name.clone(), body)
}

async fn volunteer_page(
    State(st): State<AppState>,
    staff: Staff,
    ApiPath(id): ApiPath<u64>,
) -> Response {
    volunteer_view(&st, &staff.web, &staff.caller, id, html! {}).await
}

async fn login_link(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let web = &form.web;
    let link = match users::login_link(State(st.clone()), form.caller.clone(), ApiPath(id)).await {
        Ok((_, Json(l))) => l,
        Err(e) => return error_page(web, &e),
    };
    let svg = qrcode::QrCode::new(link.url.as_bytes())
        .map(|q| {
            q.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .build()
        })
        .unwrap_or_default();
    let extra = html! {
        div.card.qr {
            div.qrcode { (PreEscaped(svg)) }
            p.mono.wrap { (link.url) }
            p { (web.t("只能使用一次，有效期至 ", "Works once, until ")) (local_utc(link.expires_at)) }
        }
    };
    volunteer_view(&st, web, &form.caller, id, extra).await
}

async fn end_sessions(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    form: Form,
) -> Response {
    let web = &form.web;
    match users::end_sessions(State(st.clone()), form.caller.clone(), ApiPath(id)).await {
        Ok(Json(n)) => {
            let extra = html! { p.notice { (web.t("已退出的手机会话：", "Phone sessions ended: ")) (n.ended) } };
            volunteer_view(&st, web, &form.caller, id, extra).await
        }
        Err(e) => error_page(web, &e),
    }
}

// ---------------------------------------------------------------------------------- import

fn import_body(
    web: &Web,
    report: Option<(&str, &crate::registry::import::ImportReport)>,
) -> Markup {
    html! {
        @if let Some((kind, r)) = report {
            div.notice.ok[r.error_count == 0].error[r.error_count > 0] role="status" {
                p { (kind) ": " (web.t("读取", "read")) " " (r.rows) " " (web.t("行，导入", "rows, imported")) " " (r.imported)
                    @if r.skipped > 0 { "，" (web.t("跳过", "skipped")) " " (r.skipped) }
                    @if r.error_count > 0 { "，" (web.t("错误", "errors")) " " (r.error_count) }
                }
            }
            @if !r.errors.is_empty() {
                div.scroll { table {
                    thead { tr { th { (web.t("行号", "Row")) } th { (web.t("列", "Column")) } th { (web.t("问题", "Problem")) } } }
                    tbody { @for e in &r.errors { tr {
                        td.num { (e.row) } td { (e.field) } td { (e.message) }
                    } } }
                } }
            }
        }
        form.card method="post" action="/station/import" enctype="multipart/form-data" data-progress="1" {
            (csrf_field(web))
            label { (web.t("导入内容", "What")) select name="kind" {
                option value="persons" { (web.t("服务对象（居民）", "Residents")) }
                option value="volunteers" { (web.t("志愿者", "Volunteers")) }
            } }
            label { (web.t("表格文件（CSV，UTF-8）", "Spreadsheet (CSV, UTF-8)")) input type="file" name="file" accept=".csv,text/csv" required; }
            label.check { input type="checkbox" name="skip_invalid" value="true"; (web.t("跳过有错的行，导入其余", "Skip invalid rows and import the rest")) }
            progress hidden max="100" value="0" {}
            button type="submit" { (web.t("上传并导入", "Upload and import")) }
        }
    }
}

async fn import_form(staff: Staff) -> Response {
    let web = &staff.web;
    page(
        web,
        web.t("导入表格", "Import a spreadsheet"),
        import_body(web, None),
    )
}

async fn import_post(State(st): State<AppState>, staff: Staff, mut mp: Multipart) -> Response {
    let web = &staff.web;
    let mut fields = match super::read_upload(web, &mut mp).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let text = |v: &axum::body::Bytes| String::from_utf8_lossy(v).into_owned();
    let kind = fields
        .get("kind")
        .map_or_else(|| "persons".to_owned(), text);
    let skip_invalid = fields.contains_key("skip_invalid");
    let file = fields.remove("file").unwrap_or_default();
    let query: reg::ImportQuery = match serde_urlencoded::from_str(if skip_invalid {
        "skip_invalid=true"
    } else {
        ""
    }) {
        Ok(q) => q,
        Err(e) => return error_page(web, &crate::api::extract::query_error("", e.to_string())),
    };
    let label = if kind == "volunteers" {
        web.t("志愿者", "Volunteers")
    } else {
        web.t("服务对象", "Residents")
    };
    match reg::import_csv(
        State(st.clone()),
        staff.caller.clone(),
        ApiPath(kind.clone()),
        ApiQuery(query),
        crate::api::extract::Upload(file),
    )
    .await
    {
        Ok((status, Json(report))) => super::page_with(
            web,
            if status.is_success() {
                StatusCode::OK
            } else {
                status
            },
            web.t("导入表格", "Import a spreadsheet"),
            import_body(web, Some((label, &report))),
        ),
        Err(e) => super::page_with(
            web,
            e.status,
            web.t("导入表格", "Import a spreadsheet"),
            html! { (problems(web, &e)) (import_body(web, None)) },
        ),
    }
}
