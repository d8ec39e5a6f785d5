//! The bureau's pages: coverage against the plan's targets (charts of the trend and of the
//! townships, the ten communities furthest behind), the shortage of volunteers, duties with
//! their next fire times and history, and the plugin catalog (deploy, roll back, resume).

use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::{
    Form, Staff, Web, charts, csrf_field, error_page, local_utc, page, problems, see_other,
};
use crate::api::auth::Scope;
use crate::api::extract::{Body, Path as ApiPath, Query as ApiQuery, Upload};
use crate::api::{
    AppState, duties as api_duties, plugins as api_plugins, records as api_records,
    tasks as api_tasks,
};
use crate::records::coverage::{CoverageReport, Rate};

pub(super) fn routes(plugin_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/bureau", get(coverage))
        .route("/bureau/coverage.csv", get(coverage_csv))
        .route("/bureau/shortage", get(shortage))
        .route("/bureau/shortage.csv", get(shortage_csv))
        .route("/bureau/duties", get(duties))
        .route("/bureau/duties/{id}", get(duty))
        .route(
            "/bureau/plugins",
            get(plugins)
                .post(deploy)
                .layer(axum::extract::DefaultBodyLimit::max(plugin_limit)),
        )
        .route("/bureau/plugins/{id}/rollback", post(rollback))
        .route("/bureau/plugins/{id}/resume", post(resume))
}

#[derive(Deserialize)]
struct CoverageQuery {
    region: Option<String>,
    month: Option<String>,
}

/// The region a page is about: asked for, else the caller's own (an administrator's: the
/// first county).
fn default_region(st: &AppState, staff: &Staff, asked: Option<String>) -> Option<String> {
    if let Some(r) = asked.filter(|r| !r.trim().is_empty()) {
        return Some(r.trim().to_owned());
    }
    match &staff.caller.scope {
        Scope::Bureau(code) => Some(code.clone()),
        Scope::Station(_) => staff.caller.station.as_ref().map(|s| s.township.clone()),
        _ => st
            .read(|r| {
                r.regions("", None, 1, |g| {
                    g.active && g.level == crate::registry::RegionLevel::County
                })
            })
            .ok()
            .and_then(|p| p.items.into_iter().next())
            .map(|g| g.code),
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn rate_cell(rate: &Rate) -> Markup {
    html! {
        td.num.bad[rate.met == Some(false)].good[rate.met == Some(true)] {
            (pct(rate.rate)) br; small { (rate.reached) "/" (rate.eligible) }
        }
    }
}

fn coverage_body(web: &Web, c: &CoverageReport) -> Markup {
    let months: Vec<String> = c.trend.iter().map(|p| p.month.clone()).collect();
    let series = vec![
        (
            web.t("特困老人走访率", "Elders visited").to_owned(),
            c.trend.iter().map(|p| p.elder_rate).collect::<Vec<_>>(),
        ),
        (
            web.t("困境儿童走访率", "Children visited").to_owned(),
            c.trend.iter().map(|p| p.child_rate).collect(),
        ),
        (
            web.t("残疾人照护率", "Disability care").to_owned(),
            c.trend.iter().map(|p| p.disability_rate).collect(),
        ),
    ];
    let trend_svg = charts::trend(&months, &series, Some(c.targets.elder_visit_rate));
    let bars: Vec<(String, Option<f64>)> = c
        .rows
        .iter()
        .map(|r| (r.name.clone(), r.elders.rate))
        .collect();
    let bars_svg = charts::bars(&bars, c.targets.elder_visit_rate);
    let t = &c.total;
    html! {
        form.bar method="get" action="/bureau" {
            label { (web.t("地区代码", "Region code")) input type="text" name="region" value=(c.region.code) pattern="[0-9]{12}"; }
            label { (web.t("月份", "Month")) input type="month" name="month" value=(c.month); }
            button type="submit" { (web.t("查看", "Show")) }
            a.button href=(format!("/bureau/coverage.csv?region={}&month={}", c.region.code, c.month)) download { (web.t("导出 CSV", "Export CSV")) }
        }
        p.summary { (c.region.name) " · " (c.month) }
        div.cards {
            div.card.kpi.bad[t.elders.met == Some(false)] { span { (web.t("特困老人月走访率", "Elders visited this month")) } strong { (pct(t.elders.rate)) } small { (web.t("目标 ", "target ")) (pct(Some(c.targets.elder_visit_rate))) } }
            div.card.kpi.bad[t.children.met == Some(false)] { span { (web.t("困境儿童走访率", "Children visited")) } strong { (pct(t.children.rate)) } small { (web.t("目标 ", "target ")) (pct(Some(c.targets.child_visit_rate))) } }
            div.card.kpi.bad[t.disability.met == Some(false)] { span { (web.t("残疾人照护率", "Disability care")) } strong { (pct(t.disability.rate)) } small { (web.t("目标 ", "target ")) (pct(Some(c.targets.disability_care_rate))) } }
            div.card.kpi.bad[t.drills.met == Some(false)] { span { (web.t("应急演练覆盖", "Communities drilled")) } strong { (pct(t.drills.rate)) } small { (web.t("目标 ", "target ")) (pct(Some(c.targets.drill_rate))) } }
            div.card.kpi.bad[t.info_officers.met == Some(false)] { span { (web.t("灾害信息员覆盖", "Info officers")) } strong { (pct(t.info_officers.rate)) } small { (web.t("目标 ", "target ")) (pct(Some(c.targets.info_officer_rate))) } }
            div.card.kpi { span { (web.t("志愿服务时长", "Volunteer hours")) } strong { (format!("{:.1}", t.volunteer_hours)) } small { (web.t("小时", "hours")) } }
        }
        section {
            h2 { (web.t("走访率趋势", "Visit rates over the months")) }
            figure.chart { (PreEscaped(trend_svg)) }
        }
        section {
            h2 { (web.t("各地特困老人走访率", "Elders visited, by area")) }
            figure.chart { (PreEscaped(bars_svg)) }
            div.scroll { table {
                thead { tr {
                    th { (web.t("地区", "Area")) }
                    th.num { (web.t("特困老人", "Elders")) }
                    th.num { (web.t("困境儿童", "Children")) }
                    th.num { (web.t("残疾人照护", "Disability")) }
                    th.num { (web.t("演练", "Drills")) }
                    th.num { (web.t("信息员", "Info officers")) }
                    th.num { (web.t("无人可派", "Unstaffed")) }
                    th.num { (web.t("逾期", "Overdue")) }
                } }
                tbody { @for r in &c.rows { tr {
                    td { a href=(format!("/bureau?region={}&month={}", r.code, c.month)) { (r.name) } }
                    (rate_cell(&r.elders)) (rate_cell(&r.children)) (rate_cell(&r.disability))
                    (rate_cell(&r.drills)) (rate_cell(&r.info_officers))
                    td.num { (r.tasks.unstaffed) } td.num { (r.tasks.overdue) }
                } } }
            } }
        }
        section {
            h2 { (web.t("离目标最远的十个村（社区）", "The ten communities furthest behind")) }
            @if c.behind.is_empty() { p.ok { (web.t("全部达标。", "All on target.")) } }
            @else {
                ol.behind { @for b in &c.behind {
                    li { (b.name) " — " (format!("{:.1}%", b.rate * 100.0)) " (" (b.visited) "/" (b.eligible) ", " (web.t("未访 ", "unvisited ")) (b.unvisited) ")" }
                } }
            }
        }
    }
}

async fn coverage(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<CoverageQuery>,
) -> Response {
    let web = &staff.web;
    let region = default_region(&st, &staff, q.region);
    match api_records::coverage_of(
        &st,
        &staff.caller,
        region,
        q.month.as_deref().filter(|m| !m.is_empty()),
        Some(12),
    )
    .await
    {
        Ok(c) => page(web, web.t("覆盖率", "Coverage"), coverage_body(web, &c)),
        Err(e) => error_page(web, &e),
    }
}

async fn coverage_csv(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<CoverageQuery>,
) -> Response {
    let region = default_region(&st, &staff, q.region);
    let mut pairs = vec![("format", "csv".to_owned())];
    if let Some(r) = region {
        pairs.push(("region", r));
    }
    if let Some(m) = q.month.filter(|m| !m.is_empty()) {
        pairs.push(("month", m));
    }
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let parsed = match serde_urlencoded::from_str(&qs) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                &staff.web,
                &crate::api::extract::query_error("", e.to_string()),
            );
        }
    };
    match api_records::coverage_report(State(st.clone()), staff.caller.clone(), ApiQuery(parsed))
        .await
    {
        Ok(mut r) => {
            r.headers_mut().insert(
                axum::http::header::CONTENT_DISPOSITION,
                axum::http::HeaderValue::from_static("attachment; filename=\"coverage.csv\""),
            );
            r
        }
        Err(e) => error_page(&staff.web, &e),
    }
}

#[derive(Deserialize)]
struct RegionQuery {
    region: Option<String>,
}

async fn shortage(
    State(st): State<AppState>,
    staff: Staff,
    Query(q): Query<RegionQuery>,
) -> Response {
    let web = &staff.web;
    let report = match api_tasks::shortage_of(
        &st,
        &staff.caller,
        q.region.as_deref().filter(|r| !r.is_empty()),
    ) {
        Ok(r) => r,
        Err(e) => return error_page(web, &e),
    };
    let body = html! {
        p.summary { (web.t("无人可派的任务：", "Unstaffed tasks: ")) strong { (report.unstaffed) } " · "
            a href="/bureau/shortage.csv" download { (web.t("导出 CSV", "Export CSV")) } }
        div.scroll { table {
            thead { tr { th { (web.t("乡镇（街道）", "Township")) } th { (web.t("原因", "Reason")) } th { (web.t("缺什么", "Missing")) } th.num { (web.t("任务数", "Tasks")) } } }
            tbody { @for r in &report.rows { tr {
                td { (r.township_name) } td { (super::reason_code(web, &r.reason)) } td { (r.what.as_deref().map(|w| super::label(web, w)).unwrap_or_default()) } td.num { (r.tasks) }
            } } }
        } }
    };
    page(web, web.t("人手缺口", "Where volunteers are missing"), body)
}

async fn shortage_csv(State(st): State<AppState>, staff: Staff) -> Response {
    let parsed = match serde_urlencoded::from_str("format=csv") {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                &staff.web,
                &crate::api::extract::query_error("", e.to_string()),
            );
        }
    };
    match api_tasks::shortage(State(st.clone()), staff.caller.clone(), ApiQuery(parsed)).await {
        Ok(r) => r,
        Err(e) => error_page(&staff.web, &e),
    }
}

async fn duties(State(st): State<AppState>, staff: Staff) -> Response {
    let web = &staff.web;
    let parsed = match serde_urlencoded::from_str("limit=1000") {
        Ok(p) => p,
        Err(e) => return error_page(web, &crate::api::extract::query_error("", e.to_string())),
    };
    let list =
        match api_duties::list_duties(State(st.clone()), staff.caller.clone(), ApiQuery(parsed))
            .await
        {
            Ok(Json(p)) => p.items,
            Err(e) => return error_page(web, &e),
        };
    let body = html! {
        div.scroll { table {
            thead { tr { th { (web.t("名称", "Name")) } th { (web.t("插件 / 动作", "Plugin / action")) } th { (web.t("周期", "Schedule")) } th { (web.t("下次执行", "Next fire")) } th { (web.t("上次", "Last")) } th { (web.t("状态", "State")) } } }
            tbody { @for d in &list { tr {
                td { a href=(format!("/bureau/duties/{}", d.duty.id)) { (d.duty.name) } }
                td { (d.duty.plugin) " / " (d.duty.action) }
                td.mono { (d.duty.cron) }
                td { (d.duty.next_fire.map(local_utc).unwrap_or_default()) }
                td { (d.duty.last_fire.map(local_utc).unwrap_or_default()) }
                td { @if d.duty.paused { span.tag { (web.t("已暂停", "paused")) } } @else { (web.t("运行中", "running")) }
                     @if let Some(e) = &d.duty.last_error { " " span.tag.bad title=(e) { (web.t("出错", "error")) } } }
            } } }
        } }
    };
    page(web, web.t("常规任务", "Duties"), body)
}

async fn duty(State(st): State<AppState>, staff: Staff, ApiPath(id): ApiPath<u64>) -> Response {
    let web = &staff.web;
    let d = match api_duties::get_duty(State(st.clone()), staff.caller.clone(), ApiPath(id)).await {
        Ok(Json(d)) => d,
        Err(e) => return error_page(web, &e),
    };
    let parsed = match serde_urlencoded::from_str("limit=100") {
        Ok(p) => p,
        Err(e) => return error_page(web, &crate::api::extract::query_error("", e.to_string())),
    };
    let history = api_duties::list_occurrences(
        State(st.clone()),
        staff.caller.clone(),
        ApiPath(id),
        ApiQuery(parsed),
    )
    .await
    .map(|Json(p)| p.items)
    .unwrap_or_default();
    let body = html! {
        dl.facts {
            dt { (web.t("插件 / 动作", "Plugin / action")) } dd { (d.duty.plugin) " / " (d.duty.action) }
            dt { (web.t("周期", "Schedule")) } dd.mono { (d.duty.cron) " (" (d.duty.time_zone) ")" }
            dt { (web.t("对象类别", "Categories")) } dd { (d.categories.join("、")) }
            dt { (web.t("下次执行", "Next fire")) } dd { (d.duty.next_fire.map(local_utc).unwrap_or_default()) }
            @if let Some(e) = &d.duty.last_error { dt { (web.t("上次错误", "Last error")) } dd.bad { (e) } }
        }
        h2 { (web.t("执行记录", "History")) }
        div.scroll { table {
            thead { tr { th { (web.t("计划时间", "Scheduled")) } th { (web.t("状态", "Status")) } th.num { (web.t("对象", "Targets")) } th.num { (web.t("新任务", "New tasks")) } th { (web.t("说明", "Note")) } } }
            tbody { @for o in &history { tr {
                td { (local_utc(o.scheduled_at)) }
                td { (format!("{:?}", o.status).to_lowercase()) }
                td.num { (o.targets) }
                td.num { (o.tasks_created) }
                td { (o.error.clone().unwrap_or_default()) }
            } } }
        } }
    };
    page(web, &d.duty.name.clone(), body)
}

async fn plugins_view(
    st: &AppState,
    web: &Web,
    caller: &crate::api::auth::Caller,
    note: Markup,
    status: StatusCode,
) -> Response {
    let list = match api_plugins::list_plugins(State(st.clone()), caller.clone()).await {
        Ok(Json(l)) => l,
        Err(e) => return error_page(web, &e),
    };
    let body = html! {
        (note)
        form.card method="post" action="/bureau/plugins" enctype="multipart/form-data" data-progress="1" {
            (csrf_field(web))
            label { (web.t("部署新插件或新版本（.wasm 组件）", "Deploy a plugin or a new version (.wasm component)"))
                input type="file" name="file" accept=".wasm,application/wasm" required; }
            progress hidden max="100" value="0" {}
            button type="submit" { (web.t("上传并部署", "Upload and deploy")) }
        }
        @for p in &list.plugins {
            section.card.plugin id=(format!("plugin-{}", p.id)) {
                h2 { (p.id) " " small { (p.active_version) } " "
                    @if p.status == "quarantined" { span.tag.bad { (web.t("已隔离", "quarantined")) } }
                    @else { span.tag { (p.status) } } }
                @if let Some(r) = &p.reason { p.bad { (r) } }
                @if p.status == "quarantined" {
                    form.inline method="post" action=(format!("/bureau/plugins/{}/resume", p.id)) {
                        (csrf_field(web))
                        button type="submit" { (web.t("恢复运行", "Resume")) }
                    }
                }
                div.scroll { table {
                    thead { tr { th { (web.t("版本", "Version")) } th { (web.t("上传时间", "Uploaded")) } th { (web.t("上传者", "By")) } th { "KB" } th {} } }
                    tbody { @for v in p.versions.iter().rev() { tr {
                        td { (v.version) @if v.version == p.active_version { " " span.tag { (web.t("当前", "active")) } } }
                        td { (local_utc(v.uploaded_at)) }
                        td { (v.uploaded_by) }
                        td.num { (v.size / 1024) }
                        td { @if v.version != p.active_version {
                            form.inline method="post" action=(format!("/bureau/plugins/{}/rollback", p.id)) {
                                (csrf_field(web))
                                input type="hidden" name="version" value=(v.version);
                                button type="submit" { (web.t("回滚到此版本", "Roll back to this")) }
                            }
                        } }
                    } } }
                } }
            }
        }
    };
    let mut r = page(web, web.t("插件", "Plugins"), body);
    *r.status_mut() = status;
    r
}

async fn plugins(State(st): State<AppState>, staff: Staff) -> Response {
    plugins_view(&st, &staff.web, &staff.caller, html! {}, StatusCode::OK).await
}

async fn deploy(State(st): State<AppState>, staff: Staff, mut mp: Multipart) -> Response {
    let web = &staff.web;
    let file = match super::read_upload(web, &mut mp).await {
        Ok(mut f) => f.remove("file").unwrap_or_default(),
        Err(r) => return r,
    };
    match api_plugins::deploy_plugin(State(st.clone()), staff.caller.clone(), Upload(file)).await {
        Ok((_, Json(p))) => {
            let note = html! { p.notice.ok role="status" { (web.t("已部署 ", "Deployed ")) (p.id) " " (p.active_version) } };
            plugins_view(&st, web, &staff.caller, note, StatusCode::OK).await
        }
        Err(e) => {
            let status = e.status;
            plugins_view(&st, web, &staff.caller, problems(web, &e), status).await
        }
    }
}

async fn rollback(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    form: Form,
) -> Response {
    let req = api_plugins::RollbackRequest {
        version: form.get("version").unwrap_or("").to_owned(),
    };
    match api_plugins::rollback_plugin(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id.clone()),
        Body(req),
    )
    .await
    {
        Ok(_) => see_other(&format!("/bureau/plugins#plugin-{id}")),
        Err(e) => {
            let status = e.status;
            plugins_view(
                &st,
                &form.web,
                &form.caller,
                problems(&form.web, &e),
                status,
            )
            .await
        }
    }
}

async fn resume(State(st): State<AppState>, ApiPath(id): ApiPath<String>, form: Form) -> Response {
    match api_plugins::resume_plugin(State(st.clone()), form.caller.clone(), ApiPath(id.clone()))
        .await
    {
        Ok(_) => see_other(&format!("/bureau/plugins#plugin-{id}")),
        Err(e) => {
            let status = e.status;
            plugins_view(
                &st,
                &form.web,
                &form.caller,
                problems(&form.web, &e),
                status,
            )
            .await
        }
    }
}
