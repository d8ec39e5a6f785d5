//! Record routes: visit reports, service records and hours, certificates (issue, list, revoke,
//! the public verification and the printable page), ratings (by a station or a family's
//! one-time link), coverage reports and the audit log. Handlers check the scope and call
//! `records::Records`; every read of personal data is written to the audit log here.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Caller, Scope};
use super::extract::{Body, Path, Query};
use super::problem::{ApiError, Problem};
use super::registry::{Page, id_cursor, limit};
use super::{AppState, blocking};
use crate::records::coverage::{self, CoverageReport};
use crate::records::model::{
    AuditAction, AuditEntry, Certificate, CertificateRequest, Hours, Rating, RatingInput, Report,
    ReportInput, ServiceRecord, ServiceRecordInput, Verification,
};
use crate::records::ratings::{Rater, RatingLink};
use crate::records::{Actor, certificates};
use crate::service::Guard;

/// Writes an audit entry for the caller (off the executor).
pub(crate) async fn audit(
    st: &AppState,
    caller: &Caller,
    action: AuditAction,
    subject: String,
    count: Option<u64>,
    route: &'static str,
    region: Option<String>,
) -> Result<(), ApiError> {
    let records = st.records.clone();
    let who = caller.who();
    blocking(move || {
        records.audit(&who, action, subject, count, route, region)?;
        Ok(())
    })
    .await
}

fn actor(caller: &Caller) -> Actor<'_> {
    match caller.scope {
        Scope::Volunteer(id) => Actor::Volunteer(id),
        _ => Actor::Staff {
            guard: caller,
            by: caller.scope.to_string(),
        },
    }
}

fn staff_only(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.is_volunteer() {
        Err(ApiError::forbidden(format!(
            "a volunteer token cannot {what}; a volunteer's own are under the me/ routes"
        )))
    } else {
        Ok(())
    }
}

/// The volunteer a `/me/…` route is for.
fn me(caller: &Caller) -> Result<u64, ApiError> {
    match caller.scope {
        Scope::Volunteer(id) => Ok(id),
        _ => Err(ApiError::forbidden(
            "these routes are for a volunteer's own token",
        )),
    }
}

// ------------------------------------------------------------------------------- reports

#[utoipa::path(post, path = "/v1/tasks/{id}/reports", tag = "records", request_body = ReportInput,
    params(("id" = u64, Path, description = "Task id")),
    description = "Files a visit report (a visitor of the task, or a station worker on their behalf). The answers are checked against the task's checklist (422 names each bad answer); then the task's plugin reviews it: `accepted` closes the task, a follow-up also creates a follow-up task (urgent ones notify first), `rejected` lists what to fix — file again. A report the plugin could not review yet is answered as `submitted` with `review_error`, and is reviewed later. Filing on a done task files a correction: a new version that replaces the accepted one once accepted.",
    responses((status = 201, body = Report), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn file_report(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(input): Body<ReportInput>,
) -> Result<(StatusCode, Json<Report>), ApiError> {
    let records = st.records.clone();
    let c = caller.clone();
    let report = blocking(move || Ok(records.file_report(id, input, &actor(&c))?)).await?;
    audit(
        &st,
        &caller,
        AuditAction::Create,
        format!("report:{}", report.id),
        None,
        "POST /v1/tasks/{id}/reports",
        Some(report.community.clone()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(report)))
}

#[utoipa::path(get, path = "/v1/tasks/{id}/reports", tag = "records",
    params(("id" = u64, Path, description = "Task id")),
    description = "Every report on a task, oldest first (versions, rejections and superseded ones kept).",
    responses((status = 200, body = Vec<Report>), (status = 404, body = Problem)))]
pub async fn task_reports(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Vec<Report>>, ApiError> {
    let records = st.records.clone();
    let c = caller.clone();
    let reports = blocking(move || Ok(records.reports_of_task(id, &actor(&c))?)).await?;
    audit(
        &st,
        &caller,
        AuditAction::Read,
        format!("task:{id}:reports"),
        Some(reports.len() as u64),
        "GET /v1/tasks/{id}/reports",
        reports.first().map(|r| r.community.clone()),
    )
    .await?;
    Ok(Json(reports))
}

#[utoipa::path(get, path = "/v1/reports/{id}", tag = "records",
    params(("id" = u64, Path, description = "Report id")),
    responses((status = 200, body = Report), (status = 404, body = Problem)))]
pub async fn get_report(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Report>, ApiError> {
    let records = st.records.clone();
    let c = caller.clone();
    let report = blocking(move || Ok(records.report(id, &actor(&c))?)).await?;
    audit(
        &st,
        &caller,
        AuditAction::Read,
        format!("report:{id}"),
        None,
        "GET /v1/reports/{id}",
        Some(report.community.clone()),
    )
    .await?;
    Ok(Json(report))
}

// ----------------------------------------------------------------------- service records

#[utoipa::path(post, path = "/v1/service-records", tag = "records", request_body = ServiceRecordInput,
    description = "A station records service outside tasks (training, a drill, an event) for one of its volunteers. Entered more than 10 working days after the activity, it is flagged `late` (China's working-day calendar, holidays and adjusted days included).",
    responses((status = 201, body = ServiceRecord), (status = 409, body = Problem, description = "The same activity is already recorded for the volunteer"), (status = 422, body = Problem)))]
pub async fn enter_record(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<ServiceRecordInput>,
) -> Result<(StatusCode, Json<ServiceRecord>), ApiError> {
    staff_only(&caller, "enter service records")?;
    let by = caller.scope.to_string();
    let records = st.records.clone();
    let rec = blocking(move || Ok(records.enter_record(input, &caller, &by)?)).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn records_page(
    st: AppState,
    volunteer: u64,
    guard: Option<Caller>,
    q: RecordQuery,
) -> Result<Json<Page<ServiceRecord>>, ApiError> {
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor.as_deref())?;
    let records = st.records.clone();
    let page = blocking(move || {
        Ok(records.records_of(
            volunteer,
            guard.as_ref().map(|g| g as &dyn Guard),
            after,
            limit,
        )?)
    })
    .await?;
    Ok(Json(page.into()))
}

#[utoipa::path(get, path = "/v1/volunteers/{id}/service-records", tag = "records", params(("id" = u64, Path, description = "Volunteer id"), RecordQuery),
    responses((status = 200, body = Page<ServiceRecord>), (status = 404, body = Problem)))]
pub async fn volunteer_records(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<RecordQuery>,
) -> Result<Json<Page<ServiceRecord>>, ApiError> {
    staff_only(&caller, "read other volunteers' records")?;
    records_page(st, id, Some(caller), q).await
}

#[utoipa::path(get, path = "/v1/me/service-records", tag = "volunteers", params(RecordQuery),
    responses((status = 200, body = Page<ServiceRecord>)))]
pub async fn my_records(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<RecordQuery>,
) -> Result<Json<Page<ServiceRecord>>, ApiError> {
    let me = me(&caller)?;
    records_page(st, me, None, q).await
}

#[utoipa::path(get, path = "/v1/volunteers/{id}/hours", tag = "records",
    params(("id" = u64, Path, description = "Volunteer id")),
    description = "Recorded hours and the star level (一星 at 100 hours, then 300, 600, 1000, 1500).",
    responses((status = 200, body = Hours), (status = 404, body = Problem)))]
pub async fn volunteer_hours(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Hours>, ApiError> {
    staff_only(&caller, "read other volunteers' hours")?;
    let records = st.records.clone();
    Ok(Json(
        blocking(move || Ok(records.hours(id, Some(&caller))?)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/me/hours", tag = "volunteers",
    responses((status = 200, body = Hours)))]
pub async fn my_hours(State(st): State<AppState>, caller: Caller) -> Result<Json<Hours>, ApiError> {
    let me = me(&caller)?;
    let records = st.records.clone();
    Ok(Json(blocking(move || Ok(records.hours(me, None)?)).await?))
}

// ------------------------------------------------------------------------------ certificates

#[utoipa::path(post, path = "/v1/volunteers/{id}/certificates", tag = "records", request_body = CertificateRequest,
    params(("id" = u64, Path, description = "Volunteer id")),
    description = "The station issues a certificate of service for a period (default: everything recorded). Its `code` verifies at `/v1/verify/{code}`; the printable A4 page with the QR code is `/certificates/{code}`.",
    responses((status = 201, body = Certificate), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn issue_certificate(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<CertificateRequest>,
) -> Result<(StatusCode, Json<Certificate>), ApiError> {
    staff_only(&caller, "issue another volunteer's certificate")?;
    let by = caller.scope.to_string();
    let records = st.records.clone();
    let cert =
        blocking(move || Ok(records.issue_certificate(id, req, Some(&caller), &by)?)).await?;
    Ok((StatusCode::CREATED, Json(cert)))
}

#[utoipa::path(post, path = "/v1/me/certificates", tag = "volunteers", request_body = CertificateRequest,
    description = "A volunteer issues their own certificate of service.",
    responses((status = 201, body = Certificate), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn issue_my_certificate(
    State(st): State<AppState>,
    caller: Caller,
    Body(req): Body<CertificateRequest>,
) -> Result<(StatusCode, Json<Certificate>), ApiError> {
    let me = me(&caller)?;
    let by = caller.scope.to_string();
    let records = st.records.clone();
    let cert = blocking(move || Ok(records.issue_certificate(me, req, None, &by)?)).await?;
    Ok((StatusCode::CREATED, Json(cert)))
}

#[utoipa::path(get, path = "/v1/volunteers/{id}/certificates", tag = "records",
    params(("id" = u64, Path, description = "Volunteer id")),
    responses((status = 200, body = Vec<Certificate>), (status = 404, body = Problem)))]
pub async fn volunteer_certificates(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Vec<Certificate>>, ApiError> {
    staff_only(&caller, "read another volunteer's certificates")?;
    let records = st.records.clone();
    Ok(Json(
        blocking(move || Ok(records.certificates_of(id, Some(&caller))?)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/me/certificates", tag = "volunteers",
    responses((status = 200, body = Vec<Certificate>)))]
pub async fn my_certificates(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Certificate>>, ApiError> {
    let me = me(&caller)?;
    let records = st.records.clone();
    Ok(Json(
        blocking(move || Ok(records.certificates_of(me, None)?)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/certificates/{code}/revoke", tag = "records",
    params(("code" = String, Path, description = "The certificate's code")),
    description = "Revokes a certificate: verification then says `revoked`.",
    responses((status = 200, body = Certificate), (status = 404, body = Problem)))]
pub async fn revoke_certificate(
    State(st): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<Certificate>, ApiError> {
    staff_only(&caller, "revoke certificates")?;
    let records = st.records.clone();
    Ok(Json(
        blocking(move || Ok(records.revoke_certificate(&code, &caller)?)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/verify/{code}", tag = "records", security(()),
    params(("code" = String, Path, description = "The code printed on the certificate")),
    description = "Public: verifies a certificate without a token. Answers what the certificate states (name, period, hours, content, recording unit) — never a resident ID or phone.",
    responses((status = 200, body = Verification), (status = 404, body = Problem)))]
pub async fn verify(
    State(st): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Verification>, ApiError> {
    let records = st.records.clone();
    Ok(Json(blocking(move || Ok(records.verify(&code)?)).await?))
}

fn html(status: StatusCode, body: maud::Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(body.into_string()),
    )
        .into_response()
}

/// `GET /verify/{code}`: the verification page the QR code opens.
#[utoipa::path(get, path = "/verify/{code}", tag = "records", security(()),
    params(("code" = String, Path, description = "The code printed on the certificate")),
    description = "Public: the verification page a certificate's QR code opens (HTML).",
    responses((status = 200, description = "Valid or revoked", content_type = "text/html"), (status = 404, description = "No certificate has this code", content_type = "text/html")))]
pub async fn verify_page(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    let records = st.records.clone();
    let found = blocking(move || Ok(records.verify(&code).ok()))
        .await
        .ok()
        .flatten();
    let status = if found.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    html(status, certificates::verification_page(found.as_ref()))
}

/// `GET /certificates/{code}`: the printable A4 certificate (the code is the credential, as on
/// paper).
#[utoipa::path(get, path = "/certificates/{code}", tag = "records", security(()),
    params(("code" = String, Path, description = "The certificate's code")),
    description = "The printable A4 certificate with the QR code of its verification address (HTML).",
    responses((status = 200, description = "The certificate", content_type = "text/html"), (status = 404, description = "No certificate has this code", content_type = "text/html")))]
pub async fn certificate_page(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    let records = st.records.clone();
    let found = blocking(move || {
        Ok(records
            .verify(&code)
            .ok()
            .map(|v| (records.verify_url(&v.certificate.code), v)))
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((url, v)) => html(
            StatusCode::OK,
            certificates::certificate_page(&v.certificate, &url),
        ),
        None => html(StatusCode::NOT_FOUND, certificates::verification_page(None)),
    }
}

// ----------------------------------------------------------------------------------- ratings

#[utoipa::path(post, path = "/v1/tasks/{id}/rating", tag = "records", request_body = RatingInput,
    params(("id" = u64, Path, description = "Task id")),
    description = "The station records the person's rating of a done visit (好差评). One per task; `dissatisfied` creates a routine follow-up task.",
    responses((status = 201, body = Rating), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rate_task(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(input): Body<RatingInput>,
) -> Result<(StatusCode, Json<Rating>), ApiError> {
    staff_only(&caller, "record ratings")?;
    let records = st.records.clone();
    let rating = blocking(move || {
        let rater = Rater::Staff {
            guard: &caller,
            by: caller.scope.to_string(),
        };
        Ok(records.rate(Some(id), input, &rater)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(rating)))
}

#[utoipa::path(get, path = "/v1/tasks/{id}/rating", tag = "records",
    params(("id" = u64, Path, description = "Task id")),
    description = "The visit's rating, with the comment (from the station or the family).",
    responses((status = 200, body = Rating), (status = 404, body = Problem)))]
pub async fn get_rating(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Rating>, ApiError> {
    staff_only(&caller, "read ratings")?;
    let records = st.records.clone();
    Ok(Json(
        blocking(move || Ok(records.rating_of(id, &caller)?)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/tasks/{id}/rating-link", tag = "records",
    params(("id" = u64, Path, description = "Task id")),
    description = "A one-time link for the person's family to rate a done visit, valid `[records] rating_link_days`.",
    responses((status = 201, body = RatingLink), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rating_link(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<RatingLink>), ApiError> {
    staff_only(&caller, "make rating links")?;
    let records = st.records.clone();
    let link = blocking(move || Ok(records.rating_link(id, &caller)?)).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

#[utoipa::path(post, path = "/v1/rate/{code}", tag = "records", security(()), request_body = RatingInput,
    params(("code" = String, Path, description = "The code of a one-time rating link")),
    description = "Public: a family rates a visit through its one-time link (then the link is spent).",
    responses((status = 201, body = Rating), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rate_by_link(
    State(st): State<AppState>,
    Path(code): Path<String>,
    Body(input): Body<RatingInput>,
) -> Result<(StatusCode, Json<Rating>), ApiError> {
    let records = st.records.clone();
    let rating = blocking(move || Ok(records.rate(None, input, &Rater::Link(code))?)).await?;
    Ok((StatusCode::CREATED, Json(rating)))
}

/// `GET /rate/{code}`: the family's rating form (no token; the link is the credential).
#[utoipa::path(get, path = "/rate/{code}", tag = "records", security(()),
    params(("code" = String, Path, description = "The code of a one-time rating link")),
    description = "Public: the rating form a family opens from its one-time link (HTML).",
    responses((status = 200, description = "The form", content_type = "text/html"), (status = 404, description = "Unknown, used or expired link", content_type = "text/html"), (status = 409, description = "The visit is already rated", content_type = "text/html")))]
pub async fn rate_page(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    let records = st.records.clone();
    let c = code.clone();
    let found = blocking(move || {
        let task = records.link_task(&c)?;
        let rated = match &task {
            Some(t) => records.store().read(|r| r.rating(t.id))?.is_some(),
            None => false,
        };
        Ok((task, rated))
    })
    .await
    .ok();
    match found {
        Some((Some(_), true)) => html(
            StatusCode::CONFLICT,
            rating_done(
                "这次服务已经评价过了，谢谢！ · This visit has already been rated. Thank you.",
            ),
        ),
        // A plugin's title, never a station's free text (it may name the resident: the link is
        // forwarded by text message).
        Some((Some(t), false)) => {
            let title = if t.plugin.is_empty() {
                "上门服务 · Home visit".to_owned()
            } else {
                t.title.zh.clone()
            };
            html(StatusCode::OK, rating_form(&code, &title, None))
        }
        _ => html(
            StatusCode::NOT_FOUND,
            rating_done("链接无效或已使用 · This link is no longer valid"),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct RatingForm {
    rating: String,
    #[serde(default)]
    comment: String,
}

/// `POST /rate/{code}` (a form): records the family's rating.
#[utoipa::path(post, path = "/rate/{code}", tag = "records", security(()),
    params(("code" = String, Path, description = "The code of a one-time rating link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "rating=satisfied|neutral|dissatisfied&comment=…"),
    description = "Public: the rating form's submission (HTML answer).",
    responses((status = 200, description = "Recorded", content_type = "text/html"), (status = 404, description = "Unknown, used or expired link", content_type = "text/html"), (status = 409, description = "Already rated", content_type = "text/html"), (status = 413, description = "The form is too large", content_type = "text/html"), (status = 422, description = "No rating chosen, or the comment is too long", content_type = "text/html")))]
pub async fn rate_form_post(
    State(st): State<AppState>,
    Path(code): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return html(
            StatusCode::PAYLOAD_TOO_LARGE,
            rating_done("内容过长 · The form is too large"),
        );
    };
    let form: Option<RatingForm> = serde_urlencoded::from_bytes(&body).ok();
    let rating = form.as_ref().and_then(|f| match f.rating.as_str() {
        "satisfied" => Some(crate::records::model::Satisfaction::Satisfied),
        "neutral" => Some(crate::records::model::Satisfaction::Neutral),
        "dissatisfied" => Some(crate::records::model::Satisfaction::Dissatisfied),
        _ => None,
    });
    let Some(rating) = rating else {
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            rating_form(&code, "", Some("请选择一项评价 · Choose one")),
        );
    };
    let comment = form.map(|f| f.comment).unwrap_or_default();
    let records = st.records.clone();
    let done = blocking(move || {
        Ok(records.rate(None, RatingInput { rating, comment }, &Rater::Link(code))?)
    })
    .await;
    match done {
        Ok(_) => html(
            StatusCode::OK,
            rating_done("感谢您的评价！ · Thank you for your rating."),
        ),
        Err(e) if e.status == StatusCode::CONFLICT && e.detail.contains("already been rated") => {
            html(
                StatusCode::CONFLICT,
                rating_done(
                    "这次服务已经评价过了，谢谢！ · This visit has already been rated. Thank you.",
                ),
            )
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            rating_done(
                "留言过长（最多 500 字）· The comment is too long (500 characters at most)",
            ),
        ),
        Err(_) => html(
            StatusCode::NOT_FOUND,
            rating_done("链接无效或已使用 · This link is no longer valid"),
        ),
    }
}

const FORM_CSS: &str = "body{font-family:sans-serif;max-width:28rem;margin:1rem auto;padding:0 1rem;font-size:18px}label{display:block;margin:.6rem 0;padding:.6rem;border:1px solid #ccc;border-radius:6px}textarea{width:100%;min-height:5rem;font-size:16px}button{font-size:18px;padding:.6rem 1.2rem;margin-top:1rem}.err{color:#b00}";

fn rating_form(code: &str, title: &str, error: Option<&str>) -> maud::Markup {
    use maud::{DOCTYPE, PreEscaped, html};
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "服务评价 · Rate the visit" }
                style { (PreEscaped(FORM_CSS)) }
            }
            body {
                h1 { "服务评价" }
                p { "您对这次上门服务满意吗？ How was the visit?" }
                @if !title.is_empty() { p { strong { (title) } } }
                @if let Some(e) = error { p.err { (e) } }
                form method="post" action={ "/rate/" (code) } {
                    label { input type="radio" name="rating" value="satisfied"; " 满意 Satisfied" }
                    label { input type="radio" name="rating" value="neutral"; " 一般 Neutral" }
                    label { input type="radio" name="rating" value="dissatisfied"; " 不满意 Dissatisfied" }
                    p { "留言（可选） Comment (optional)" }
                    textarea name="comment" maxlength="500" {}
                    button type="submit" { "提交 Submit" }
                }
            }
        }
    }
}

fn rating_done(message: &str) -> maud::Markup {
    use maud::{DOCTYPE, PreEscaped, html};
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "服务评价 · Rate the visit" }
                style { (PreEscaped(FORM_CSS)) }
            }
            body { h1 { "服务评价" } p { (message) } }
        }
    }
}

// ---------------------------------------------------------------------------------- coverage

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    /// A city, county, township or community code (a province code such as 620000000000 for
    /// administrators); default: the caller's own region.
    region: Option<String>,
    /// `2026-11`; default: this month.
    month: Option<String>,
    /// Months of trend, this one included (1 to 24, default 6).
    #[param(minimum = 1, maximum = 24)]
    months: Option<u32>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/reports/coverage", tag = "records", params(CoverageQuery),
    description = "Coverage against the plan's targets for one region and month: special-difficulty elders visited (the plan: 100%), children, disability care, drills and information officers per community, tasks unstaffed and overdue, volunteer hours, satisfaction; rows one level down, the ten communities furthest behind, the trend. `rules` says how each figure is counted. `format=csv` answers spreadsheet-safe text/csv.",
    responses((status = 200, description = "The report", content((CoverageReport = "application/json"), (String = "text/csv"))), (status = 404, body = Problem, description = "A region outside the caller's reach"), (status = 422, body = Problem)))]
pub async fn coverage_report(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<CoverageQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(super::extract::query_error("format", "must be json or csv")),
    };
    let report = coverage_of(&st, &caller, q.region.clone(), q.month.as_deref(), q.months).await?;
    let region = report.region.code.clone();
    if !csv {
        return Ok(Json(report).into_response());
    }
    let region_code = region.clone();
    audit(
        &st,
        &caller,
        AuditAction::Export,
        format!("coverage:{region}:{}", report.month),
        Some(report.rows.len() as u64 + 1),
        "GET /v1/reports/coverage?format=csv",
        Some(region),
    )
    .await?;
    // A byte-order mark, so Excel on Chinese Windows reads the file as UTF-8.
    let disposition = format!(
        "attachment; filename=\"coverage-{region_code}-{}.csv\"",
        report.month
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        format!("\u{feff}{}", coverage::to_csv(&report)),
    )
        .into_response())
}

/// The coverage report the caller asks for (the API's and the console's one way to it).
pub(crate) async fn coverage_of(
    st: &AppState,
    caller: &Caller,
    region: Option<String>,
    month: Option<&str>,
    months: Option<u32>,
) -> Result<coverage::CoverageReport, ApiError> {
    staff_only(caller, "read coverage reports")?;
    let own = match (&caller.scope, &caller.station) {
        (Scope::Bureau(code), _) => Some(code.clone()),
        (Scope::Station(_), Some(s)) => Some(s.township.clone()),
        _ => None,
    };
    let region = region
        .or(own)
        .ok_or_else(|| super::extract::query_error("region", "name a region code"))?;
    let allowed = match &caller.scope {
        Scope::Admin => true,
        Scope::Bureau(_) => caller.can_read_region(&region) && Guard::region(caller, &region),
        Scope::Station(_) => caller
            .station
            .as_ref()
            .is_some_and(|s| region == s.township || s.communities.contains(&region)),
        Scope::Volunteer(_) => false,
    };
    if !allowed {
        return Err(ApiError::not_found(format!("region {region}")));
    }
    let month = match month {
        Some(m) => coverage::parse_month(m)
            .map_err(|e| super::extract::query_error("month", e.to_string()))?,
        None => crate::records::model::month_key(crate::clock::local_date(st.clock.now())),
    };
    let months = months.unwrap_or(6);
    if !(1..=24).contains(&months) {
        return Err(super::extract::query_error("months", "must be 1 to 24"));
    }
    let records = st.records.clone();
    let r2 = region.clone();
    blocking(move || {
        let cfg = records.config();
        records
            .store()
            .read(|r| {
                coverage::report(r, &r2, month, months, &cfg.targets, cfg.drill_window_months)
            })
            .map_err(|e| match e {
                coverage::CoverageError::Store(s) => ApiError::from(s),
                other => super::extract::query_error("region", other.to_string()),
            })
    })
    .await
}

// ------------------------------------------------------------------------------------- audit

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "records", params(AuditQuery),
    description = "The audit log of personal data, oldest first: administrators see all of it, a bureau the entries of its region. Append-only: no route changes or deletes an entry; entries go only after `[records] audit_retention_days`.",
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem)))]
pub async fn audit_log(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let prefix = match &caller.scope {
        Scope::Admin => None,
        Scope::Bureau(code) => Some(
            crate::registry::region::subtree_prefix(code)
                .unwrap_or(code)
                .to_owned(),
        ),
        _ => {
            return Err(ApiError::forbidden(
                "the audit log is for administrators and bureaus",
            ));
        }
    };
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor.as_deref())?;
    let records = st.records.clone();
    let (items, next) =
        blocking(move || Ok(records.audit_log(prefix.as_deref(), after, limit)?)).await?;
    Ok(Json(Page {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}
