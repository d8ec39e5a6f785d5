//! The volunteer's phone pages (360 px wide and up; WeChat's built-in browser included): my
//! offers (accept, decline with a reason), today's visits with the address and a map link,
//! check in and out, the visit report form made from the task's checklist, my hours, stars and
//! certificates.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};

use super::{
    Form, Vol, Web, csrf_field, error_page, local_time, local_utc, page, page_with, problems,
    see_other, status_name,
};
use crate::api::extract::{Body, Path as ApiPath, Query as ApiQuery};
use crate::api::problem::ApiError;
use crate::api::tasks::{self as api_tasks, MyTask};
use crate::api::{AppState, records as api_records};
use crate::records::model::{Outcome, Report, ReportAnswer, ReportInput, ReportState};
use crate::registry::GeoPoint;
use crate::schedule::{AnswerKind, OfferState, TaskStatus};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v", get(home))
        .route("/v/tasks/{id}", get(task_page))
        .route("/v/tasks/{id}/accept", post(accept))
        .route("/v/tasks/{id}/decline", post(decline))
        .route("/v/tasks/{id}/check-in", post(check_in))
        .route("/v/tasks/{id}/check-out", post(check_out))
        .route("/v/tasks/{id}/report", get(report_form).post(report_post))
        .route("/v/me", get(me))
        .route("/v/certificates", post(certificate))
}

fn title<'a>(web: &Web, t: &'a MyTask) -> &'a str {
    match web.lang {
        super::Lang::Zh => &t.title.zh,
        super::Lang::En => &t.title.en,
    }
}

/// All my tasks (a volunteer holds hundreds a year at most), through the API's own route.
async fn my_tasks(st: &AppState, vol: &Vol) -> Result<Vec<MyTask>, ApiError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let qs = match &cursor {
            Some(c) => format!("limit=1000&cursor={c}"),
            None => "limit=1000".to_owned(),
        };
        let q = serde_urlencoded::from_str(&qs)
            .map_err(|e| crate::api::extract::query_error("", e.to_string()))?;
        let Json(page) =
            api_tasks::my_tasks(State(st.clone()), vol.caller.clone(), ApiQuery(q)).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

fn task_card(web: &Web, t: &MyTask) -> Markup {
    html! {
        a.card.task href=(format!("/v/tasks/{}", t.id)) {
            strong { (title(web, t)) }
            @if let Some(p) = &t.person { span { (p.name) } }
            span.small { (local_time(t.due_start)) " — " (local_time(t.due_end)) }
            span.tag { (super::offer_state(web, t.offer.state)) }
            @if t.overdue { span.tag.bad { (web.t("逾期", "overdue")) } }
        }
    }
}

async fn home(State(st): State<AppState>, vol: Vol) -> Response {
    let web = &vol.web;
    let tasks = match my_tasks(&st, &vol).await {
        Ok(t) => t,
        Err(e) => return error_page(web, &e),
    };
    let today = crate::clock::local_date(st.clock.now());
    let offers: Vec<&MyTask> = tasks
        .iter()
        .filter(|t| t.offer.state == OfferState::Offered && t.status.is_active())
        .collect();
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for t in tasks.iter().filter(|t| {
        matches!(t.offer.state, OfferState::Accepted | OfferState::CheckedIn)
            && t.status.is_active()
    }) {
        if t.due_start.date_naive() <= today {
            now.push(t);
        } else {
            later.push(t);
        }
    }
    let to_report: Vec<&MyTask> = tasks
        .iter()
        .filter(|t| {
            t.offer.state == OfferState::CheckedOut
                && t.status != TaskStatus::Done
                && t.status.is_active()
        })
        .collect();
    let body = html! {
        section {
            h2 { (web.t("新派单", "New offers")) " (" (offers.len()) ")" }
            @if offers.is_empty() { p.small { (web.t("暂时没有。", "None just now.")) } }
            @for t in &offers { (task_card(web, t)) }
        }
        section {
            h2 { (web.t("今天要走访", "To visit today")) }
            @if now.is_empty() && to_report.is_empty() { p.small { (web.t("今天没有安排。", "Nothing for today.")) } }
            @for t in &now { (task_card(web, t)) }
            @for t in &to_report { (task_card(web, t)) }
        }
        @if !later.is_empty() {
            section {
                h2 { (web.t("之后", "Later")) }
                @for t in &later { (task_card(web, t)) }
            }
        }
    };
    page(web, web.t("我的任务", "My tasks"), body)
}

async fn task_view(
    st: &AppState,
    web: &Web,
    caller: &crate::api::auth::Caller,
    id: u64,
    failed: Option<ApiError>,
) -> Response {
    let t = match api_tasks::my_task_detail(State(st.clone()), caller.clone(), ApiPath(id)).await {
        Ok(Json(t)) => t,
        Err(e) => return error_page(web, &e),
    };
    let reports: Vec<Report> =
        api_records::task_reports(State(st.clone()), caller.clone(), ApiPath(id))
            .await
            .map(|Json(r)| r)
            .unwrap_or_default();
    let last = reports.iter().max_by_key(|r| r.version);
    let state = t.offer.state;
    let body = html! {
        @if let Some(e) = &failed { (problems(web, e)) }
        dl.facts {
            dt { (web.t("状态", "Status")) } dd { (super::offer_state(web, state)) " · " (status_name(web, t.status)) }
            dt { (web.t("时间", "When")) } dd { (local_time(t.due_start)) " — " (local_time(t.due_end)) }
            @if state == OfferState::Offered {
                dt { (web.t("请在此前答复", "Answer by")) } dd { (local_utc(t.offer.respond_by)) }
            }
            @if let Some(p) = &t.person {
                dt { (web.t("服务对象", "Resident")) } dd { (p.name) }
                @if let Some(a) = &p.address { dt { (web.t("地址", "Address")) } dd { (a) } }
                @if let Some(ph) = &p.phone { dt { (web.t("电话", "Phone")) } dd { a href=(format!("tel:{ph}")) { (ph) } } }
                @if !p.needs.is_empty() { dt { (web.t("需求", "Needs")) } dd { (p.needs.join("、")) } }
                dd.full { a.button href=(map_link(&p.location, &p.name)) rel="noreferrer" target="_blank" { (web.t("在地图上打开", "Open in a map")) } }
            }
        }
        @if let Some(r) = last {
            (report_state(web, r))
        }
        div.actions {
            @if state == OfferState::Offered {
                form method="post" action=(format!("/v/tasks/{id}/accept")) {
                    (csrf_field(web))
                    button.big type="submit" { (web.t("接单", "Accept")) }
                }
                form method="post" action=(format!("/v/tasks/{id}/decline")) {
                    (csrf_field(web))
                    label { (web.t("婉拒原因", "Reason to decline"))
                        select name="reason" {
                            option { (web.t("时间冲突", "Not free then")) }
                            option { (web.t("距离太远", "Too far")) }
                            option { (web.t("身体不适", "Unwell")) }
                            option { (web.t("其他", "Other")) }
                        }
                    }
                    input type="text" name="note" maxlength="150" placeholder=(web.t("补充说明（可选）", "More (optional)"));
                    button.secondary type="submit" { (web.t("婉拒", "Decline")) }
                }
            }
            @if state == OfferState::Accepted {
                form method="post" action=(format!("/v/tasks/{id}/check-in")) data-geo="1" {
                    (csrf_field(web))
                    input type="hidden" name="lat";
                    input type="hidden" name="lon";
                    button.big type="submit" { (web.t("到达签到", "Check in")) }
                }
            }
            @if state == OfferState::CheckedIn {
                form method="post" action=(format!("/v/tasks/{id}/check-out")) data-geo="1" {
                    (csrf_field(web))
                    input type="hidden" name="lat";
                    input type="hidden" name="lon";
                    button.big type="submit" { (web.t("离开签退", "Check out")) }
                }
            }
            @if matches!(state, OfferState::CheckedIn | OfferState::CheckedOut) && t.status != TaskStatus::Done && t.status.is_active() {
                a.button.big href=(format!("/v/tasks/{id}/report")) { (web.t("填写走访记录", "File the visit report")) }
            }
        }
    };
    let status = failed.as_ref().map_or(StatusCode::OK, |e| e.status);
    page_with(web, status, title(web, &t), body)
}

fn report_state(web: &Web, r: &Report) -> Markup {
    let (class, text) = match r.state {
        ReportState::Accepted => match r.review.as_ref().map(|v| v.outcome) {
            Some(Outcome::FollowUp) => (
                "ok",
                web.t(
                    "记录已通过，已安排回访",
                    "Report accepted; a follow-up was arranged",
                ),
            ),
            _ => ("ok", web.t("记录已通过", "Report accepted")),
        },
        ReportState::Rejected => (
            "error",
            web.t(
                "记录被退回，请修改后重新提交",
                "Report returned: fix it and file again",
            ),
        ),
        ReportState::Submitted => (
            "",
            web.t("记录已提交，等待审核", "Report filed, waiting for review"),
        ),
        ReportState::Superseded => (
            "",
            web.t("记录已被更正版本取代", "Report superseded by a correction"),
        ),
    };
    html! {
        div.notice.(class) role="status" {
            p { (text) " (" (web.t("第", "version ")) (r.version) (web.t("版", "")) ")" }
            @if let Some(rv) = &r.review { @if !rv.reasons.is_empty() {
                ul { @for why in &rv.reasons { li { (why) } } }
            } }
        }
    }
}

/// A map link that opens in the phone's map app or the browser (AMap's public URI scheme).
fn map_link(at: &GeoPoint, name: &str) -> String {
    let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!(
        "https://uri.amap.com/marker?position={:.6},{:.6}&name={name}&coordinate=wgs84&callnative=1",
        at.lon, at.lat
    )
}

async fn task_page(State(st): State<AppState>, vol: Vol, ApiPath(id): ApiPath<u64>) -> Response {
    task_view(&st, &vol.web, &vol.caller, id, None).await
}

async fn accept(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    match api_tasks::accept(State(st.clone()), form.caller.clone(), ApiPath(id)).await {
        Ok(_) => see_other(&format!("/v/tasks/{id}")),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

async fn decline(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let mut reason = form.text("reason").unwrap_or_default();
    if let Some(note) = form.text("note") {
        reason = if reason.is_empty() {
            note
        } else {
            format!("{reason}：{note}")
        };
    }
    let req = api_tasks::Decline { reason };
    match api_tasks::decline(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id),
        Body(req),
    )
    .await
    {
        Ok(_) => see_other("/v"),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

fn position(form: &Form) -> Option<GeoPoint> {
    let lat = form.text("lat")?.parse::<f64>().ok()?;
    let lon = form.text("lon")?.parse::<f64>().ok()?;
    (lat.is_finite() && lon.is_finite()).then_some(GeoPoint { lat, lon })
}

async fn check_in(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let req = api_tasks::CheckIn {
        position: position(&form),
    };
    match api_tasks::check_in(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id),
        Body(req),
    )
    .await
    {
        Ok(_) => see_other(&format!("/v/tasks/{id}")),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

async fn check_out(State(st): State<AppState>, ApiPath(id): ApiPath<u64>, form: Form) -> Response {
    let req = api_tasks::CheckIn {
        position: position(&form),
    };
    match api_tasks::check_out(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id),
        Body(req),
    )
    .await
    {
        Ok(_) => see_other(&format!("/v/tasks/{id}/report")),
        Err(e) => task_view(&st, &form.web, &form.caller, id, Some(e)).await,
    }
}

// ------------------------------------------------------------------------- the report form

/// A time as a `datetime-local` input shows it, in the daemon's zone.
fn local_input(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| {
        t.with_timezone(&crate::clock::local_zone())
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    })
    .unwrap_or_default()
}

/// A time the volunteer changed on the form (unchanged times are left to the check-in and
/// check-out, so that only corrections count as stated times).
fn stated(
    form: &Form,
    field: &str,
) -> Result<Option<chrono::DateTime<chrono::FixedOffset>>, ApiError> {
    let (Some(v), original) = (form.text(field), form.text(&format!("{field}0"))) else {
        return Ok(None);
    };
    if original.as_deref() == Some(v.as_str()) {
        return Ok(None);
    }
    chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|n| n.and_local_timezone(crate::clock::local_zone()).single())
        .map(|t| Some(t.fixed_offset()))
        .ok_or_else(|| {
            ApiError::invalid(vec![crate::registry::FieldError {
                field: field.into(),
                message: "a date and time like 2026-12-01T09:30".into(),
            }])
        })
}

fn question(
    web: &Web,
    q: &crate::schedule::ChecklistItem,
    all: &[crate::schedule::ChecklistItem],
) -> String {
    let text = match web.lang {
        super::Lang::Zh => q.question.zh.clone(),
        super::Lang::En => q.question.en.clone(),
    };
    let Some(w) = &q.required_when else {
        return text;
    };
    // The condition in the words of the question and answer it names.
    let on = all.iter().find(|x| x.id == w.item);
    let asked = on.map_or_else(
        || w.item.clone(),
        |x| web.t(&x.question.zh, &x.question.en).to_owned(),
    );
    let answer = match w.equals.as_str() {
        "yes" => web.t("是", "yes").to_owned(),
        "no" => web.t("否", "no").to_owned(),
        other => on
            .and_then(|x| {
                let i = x.choices.iter().position(|c| c == other)?;
                x.choice_labels
                    .get(i)
                    .map(|l| web.t(&l.zh, &l.en).to_owned())
            })
            .unwrap_or_else(|| other.to_owned()),
    };
    match web.lang {
        super::Lang::Zh => format!("{text}（「{asked}」答「{answer}」时必答）"),
        super::Lang::En => format!("{text} (required when “{asked}” is {answer})"),
    }
}

fn report_body(web: &Web, t: &MyTask, form: Option<&Form>, failed: Option<&ApiError>) -> Markup {
    let value = |k: &str| form.and_then(|f| f.get(k)).unwrap_or("").to_owned();
    let reached = form.is_none_or(|f| f.get("reached") != Some("no"));
    html! {
        @if let Some(e) = failed { (problems(web, e)) }
        form.card method="post" action=(format!("/v/tasks/{}/report", t.id)) {
            (csrf_field(web))
            fieldset {
                legend { (web.t("见到本人了吗？", "Did you reach them?")) }
                label.check { input type="radio" name="reached" value="yes" checked[reached]; (web.t("见到了", "Yes")) }
                label.check { input type="radio" name="reached" value="no" checked[!reached]; (web.t("没见到", "No")) }
            }
            p.small { (web.t("带 * 的问题必答（没见到本人时可不答）。", "Questions marked * must be answered (unless you did not reach them).")) }
            @for q in &t.checklist {
                @let name = format!("a.{}", q.id);
                @let v = value(&name);
                @match q.kind {
                    AnswerKind::YesNo => fieldset {
                        legend { (question(web, q, &t.checklist)) @if q.required { span.req { " *" } } }
                        label.check { input type="radio" name=(name) value="yes" checked[v == "yes"]; (web.t("是", "Yes")) }
                        label.check { input type="radio" name=(name) value="no" checked[v == "no"]; (web.t("否", "No")) }
                    },
                    AnswerKind::Number => label {
                        (question(web, q, &t.checklist)) @if q.required { span.req { " *" } }
                        input type="number" step="any" inputmode="decimal" name=(name) value=(v);
                    },
                    AnswerKind::Choice => label {
                        (question(web, q, &t.checklist)) @if q.required { span.req { " *" } }
                        select name=(name) {
                            option value="" { (web.t("— 请选择 —", "— choose —")) }
                            @for (i, c) in q.choices.iter().enumerate() {
                                option value=(c) selected[&v == c] {
                                    (q.choice_labels.get(i).map_or(c.as_str(), |l| web.t(&l.zh, &l.en)))
                                }
                            }
                        }
                    },
                    AnswerKind::Text => label {
                        (question(web, q, &t.checklist)) @if q.required { span.req { " *" } }
                        textarea name=(name) maxlength="2000" { (v) }
                    },
                }
            }
            fieldset {
                legend { (web.t("走访时间（默认取签到、签退时间；忘记签退时可更正）", "Visit times (from your check-in and check-out; correct them if you forgot)")) }
                div.row {
                    label { (web.t("到达", "Arrived")) input type="datetime-local" name="visit_start" value=(form.and_then(|f| f.get("visit_start")).map_or_else(|| local_input(t.offer.checked_in_at), str::to_owned)); }
                    label { (web.t("离开", "Left")) input type="datetime-local" name="visit_end" value=(form.and_then(|f| f.get("visit_end")).map_or_else(|| local_input(t.offer.checked_out_at), str::to_owned)); }
                }
                input type="hidden" name="visit_start0" value=(local_input(t.offer.checked_in_at));
                input type="hidden" name="visit_end0" value=(local_input(t.offer.checked_out_at));
            }
            label { (web.t("备注", "Notes")) textarea name="notes" maxlength="4000" { (value("notes")) } }
            button.big type="submit" { (web.t("提交走访记录", "File the report")) }
        }
    }
}

async fn report_form(State(st): State<AppState>, vol: Vol, ApiPath(id): ApiPath<u64>) -> Response {
    let web = &vol.web;
    match api_tasks::my_task_detail(State(st.clone()), vol.caller.clone(), ApiPath(id)).await {
        Ok(Json(t)) => page(
            web,
            web.t("走访记录", "Visit report"),
            report_body(web, &t, None, None),
        ),
        Err(e) => error_page(web, &e),
    }
}

async fn report_post(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    form: Form,
) -> Response {
    let web = &form.web;
    let t = match api_tasks::my_task_detail(State(st.clone()), form.caller.clone(), ApiPath(id))
        .await
    {
        Ok(Json(t)) => t,
        Err(e) => return error_page(web, &e),
    };
    // Only answered questions are sent: the service says which required ones are missing.
    let answers: Vec<ReportAnswer> = t
        .checklist
        .iter()
        .filter_map(|q| {
            form.text(&format!("a.{}", q.id)).map(|value| ReportAnswer {
                item: q.id.clone(),
                value,
            })
        })
        .collect();
    let times = stated(&form, "visit_start").and_then(|a| Ok((a, stated(&form, "visit_end")?)));
    let (checked_in_at, checked_out_at) = match times {
        Ok(t) => t,
        Err(e) => {
            return page_with(
                web,
                e.status,
                web.t("走访记录", "Visit report"),
                report_body(web, &t, Some(&form), Some(&e)),
            );
        }
    };
    let input = ReportInput {
        checked_in_at,
        checked_out_at,
        position: None,
        reached: form.get("reached") != Some("no"),
        answers,
        notes: form.get("notes").unwrap_or("").trim().to_owned(),
        visitors: Vec::new(),
    };
    match api_records::file_report(
        State(st.clone()),
        form.caller.clone(),
        ApiPath(id),
        Body(input),
    )
    .await
    {
        Ok((_, Json(report))) if report.state == ReportState::Rejected => page_with(
            web,
            StatusCode::OK,
            web.t("走访记录", "Visit report"),
            html! { (report_state(web, &report)) (report_body(web, &t, Some(&form), None)) },
        ),
        Ok(_) => see_other(&format!("/v/tasks/{id}")),
        Err(e) => page_with(
            web,
            e.status,
            web.t("走访记录", "Visit report"),
            report_body(web, &t, Some(&form), Some(&e)),
        ),
    }
}

// ----------------------------------------------------------------- hours and certificates

async fn me_view(
    st: &AppState,
    web: &Web,
    caller: &crate::api::auth::Caller,
    extra: Markup,
) -> Response {
    let hours = match api_records::my_hours(State(st.clone()), caller.clone()).await {
        Ok(Json(h)) => h,
        Err(e) => return error_page(web, &e),
    };
    let certs = api_records::my_certificates(State(st.clone()), caller.clone())
        .await
        .map(|Json(c)| c)
        .unwrap_or_default();
    let stars =
        "★".repeat(usize::from(hours.stars)) + &"☆".repeat(5 - usize::from(hours.stars.min(5)));
    let body = html! {
        (extra)
        div.card.center {
            p.big { (format!("{:.1}", hours.hours)) " " (web.t("小时", "hours")) }
            p.stars aria-label=(format!("{} stars", hours.stars)) { (stars) }
            @if let Some(n) = hours.next_star_in { p.small { (web.t("距下一星还差 ", "Next star in ")) (format!("{n:.1}")) (web.t(" 小时", " hours")) } }
            p.small { (hours.records) " " (web.t("条服务记录", "service records")) }
        }
        section {
            h2 { (web.t("服务证明", "Certificates")) }
            @for c in &certs {
                p { a href=(format!("/certificates/{}", c.code)) { (c.from) " — " (c.to) " · " (format!("{:.1}", c.hours)) (web.t(" 小时", " h")) }
                    @if c.revoked_at.is_some() { " " span.tag.bad { (web.t("已撤销", "revoked")) } } }
            }
            form method="post" action="/v/certificates" {
                (csrf_field(web))
                button type="submit" { (web.t("开具服务时长证明", "Issue a certificate of my hours")) }
            }
        }
    };
    page(web, web.t("时长与证书", "Hours and certificates"), body)
}

async fn me(State(st): State<AppState>, vol: Vol) -> Response {
    me_view(&st, &vol.web, &vol.caller, html! {}).await
}

async fn certificate(State(st): State<AppState>, form: Form) -> Response {
    let req = crate::records::model::CertificateRequest {
        from: None,
        to: None,
    };
    match api_records::issue_my_certificate(State(st.clone()), form.caller.clone(), Body(req)).await
    {
        Ok((_, Json(c))) => see_other(&format!("/certificates/{}", c.code)),
        Err(e) => me_view(&st, &form.web, &form.caller, problems(&form.web, &e)).await,
    }
}
