//! The web console: server-rendered pages at `/` for station staff, bureaus and volunteers
//! (the API stays under `/v1`). Chinese first, with an English switch.
//!
//! The pages call the API's own handlers (and through them the same services), so a page and
//! the API share one scope check, one audit log and one copy of every rule: a page is a form
//! and a rendering around a handler call.
//!
//! Security: sessions are random 256-bit secrets in an HttpOnly, SameSite=Lax cookie (Secure
//! when `[console] secure_cookies` or an HTTPS public URL says so) whose SHA-256 is stored;
//! every POST carries the session's form token (`_csrf`), checked before anything runs; the
//! login form carries a token bound to a cookie of its own; every page is sent with a
//! Content-Security-Policy that admits only this server's own stylesheet and script. Markup is
//! maud, which escapes every value.

pub mod accounts;
mod bureau;
mod charts;
mod login;
pub mod station;
mod volunteer;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

use crate::api::auth::{Caller, Scope};
use crate::api::problem::ApiError;
use crate::api::{AppState, off_executor, resolve_caller};
use accounts::Session;

pub(crate) const SESSION_COOKIE: &str = "linli_session";
pub(crate) const LANG_COOKIE: &str = "linli_lang";
/// The login form's own token, before there is a session.
pub(crate) const LOGIN_COOKIE: &str = "linli_login";

/// The policy every console page is sent with: only this server's stylesheet, script and
/// images (and inline SVG charts, which are markup, not script).
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The text in this language.
    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// A `Set-Cookie` value. `max_age` `None`: a session cookie; `Some(0)`: delete it.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Who is looking at a page.
#[derive(Clone)]
pub(crate) struct Web {
    pub lang: Lang,
    pub session: Option<Session>,
    pub caller: Option<Caller>,
    /// The path and query asked for (to come back to after logging in).
    pub here: String,
    /// The client's address (for login rate limits).
    pub address: String,
    /// The session cookie's secret (to log out with).
    pub secret: Option<String>,
    /// The login form's cookie token.
    pub login_cookie: Option<String>,
    /// Why a live session no longer works (its station, volunteer or region was deactivated).
    pub blocked: Option<String>,
}

impl Web {
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.t(zh, en)
    }

    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }
}

impl FromRequestParts<AppState> for Web {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let lang = match cookie(&parts.headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        };
        let secret = cookie(&parts.headers, SESSION_COOKIE);
        let session = secret
            .as_ref()
            .and_then(|secret| off_executor(|| st.accounts.session(secret)).ok().flatten());
        // A session whose station, volunteer or region was deactivated stops working, as a
        // token does.
        let mut blocked = None;
        let caller = session.as_ref().and_then(|s| {
            let who = match &s.user {
                Some(u) => format!("user:{u}"),
                None => format!("session:{}", s.id),
            };
            resolve_caller(st, s.scope.clone(), who)
                .map_err(|e| blocked = Some(e.detail))
                .ok()
        });
        let address = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(
                || "unknown".to_owned(),
                |c| {
                    let forwarded: Vec<&str> = parts
                        .headers
                        .get_all("x-forwarded-for")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    accounts::address_key(accounts::client_ip(
                        c.0.ip(),
                        &forwarded,
                        &st.accounts.settings().trusted_proxies,
                    ))
                },
            );
        Ok(Web {
            lang,
            session: if caller.is_some() { session } else { None },
            caller,
            here: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            address,
            secret,
            login_cookie: cookie(&parts.headers, LOGIN_COOKIE),
            blocked,
        })
    }
}

/// A staff member (admin, bureau or station) on a page; anyone else is sent to log in.
pub(crate) struct Staff {
    pub web: Web,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Ok(web) = Web::from_request_parts(parts, st).await;
        match web.caller.clone() {
            Some(caller) if !caller.is_volunteer() => Ok(Staff { web, caller }),
            Some(_) => Err(Redirect::to("/v").into_response()),
            None => Err(blocked_or_login(&web)),
        }
    }
}

/// A volunteer on a phone page; anyone else is sent to log in.
pub(crate) struct Vol {
    pub web: Web,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Vol {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Ok(web) = Web::from_request_parts(parts, st).await;
        match web.caller.clone() {
            Some(caller) if caller.is_volunteer() => Ok(Vol { web, caller }),
            Some(_) => Err(Redirect::to("/").into_response()),
            None => Err(blocked_or_login(&web)),
        }
    }
}

/// A session whose station, volunteer or region was deactivated is told so (logging in again
/// would not help); anyone else is sent to log in.
fn blocked_or_login(web: &Web) -> Response {
    match &web.blocked {
        Some(why) => message_page(
            web,
            StatusCode::FORBIDDEN,
            web.t("账号已停用", "Account deactivated"),
            &format!(
                "{} ({why})",
                web.t(
                    "您所在的社工站、志愿者登记或地区已停用，请联系社工站或民政局。",
                    "Your station, volunteer record or region has been deactivated; ask your station or the civil-affairs bureau."
                )
            ),
        ),
        None => to_login(&web.here),
    }
}

fn to_login(here: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// A local path to go to after a form (never another site: `//host` and `/\host` are refused).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2000
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A posted form of a logged-in user, its form token checked before the handler runs.
pub(crate) struct Form {
    pub web: Web,
    pub caller: Caller,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A trimmed, non-empty value.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Constant-time comparison of two tokens.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl FromRequest<AppState> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(web) = Web::from_request_parts(&mut parts, st).await;
        let Some(caller) = web.caller.clone() else {
            return Err(to_login("/"));
        };
        let bytes = axum::body::to_bytes(body, 1 << 20).await.map_err(|_| {
            message_page(
                &web,
                StatusCode::PAYLOAD_TOO_LARGE,
                web.t("表单太大", "Form too large"),
                web.t("提交的内容超过 1 MB。", "The form is larger than 1 MB."),
            )
        })?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let sent = fields
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !same_token(sent, web.csrf()) {
            return Err(csrf_refused(&web));
        }
        Ok(Form {
            web,
            caller,
            fields,
        })
    }
}

pub(crate) fn csrf_refused(web: &Web) -> Response {
    message_page(
        web,
        StatusCode::FORBIDDEN,
        web.t("表单已失效", "Form expired"),
        web.t(
            "这个表单缺少有效的安全令牌（可能页面已过期或来自别的网站）。请返回、刷新页面后重新提交。",
            "This form was sent without a valid security token (the page may be old, or the form came from another site). Go back, reload the page and send it again.",
        ),
    )
}

/// The fields of a multipart form (an upload), read only after its first field — the form
/// token — proved to be this session's: nothing of a forged upload is read into memory.
pub(crate) async fn read_upload(
    web: &Web,
    mp: &mut axum::extract::Multipart,
) -> Result<std::collections::HashMap<String, axum::body::Bytes>, Response> {
    let unreadable = |status: StatusCode, kind: &'static str, e: &dyn std::fmt::Display| {
        error_page(
            web,
            &ApiError::new(status, kind, format!("the upload could not be read: {e}")),
        )
    };
    let mut fields = std::collections::HashMap::new();
    let mut csrf = String::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(unreadable(StatusCode::BAD_REQUEST, "bad-request", &e)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "_csrf" && !same_token(&csrf, web.csrf()) {
            return Err(csrf_refused(web));
        }
        let data = field
            .bytes()
            .await
            .map_err(|e| unreadable(StatusCode::PAYLOAD_TOO_LARGE, "too-large", &e))?;
        if name == "_csrf" {
            csrf = String::from_utf8_lossy(&data).into_owned();
        } else {
            fields.insert(name, data);
        }
    }
    if !same_token(&csrf, web.csrf()) {
        return Err(csrf_refused(web));
    }
    Ok(fields)
}

/// The hidden form-token field every form carries.
pub(crate) fn csrf_field(web: &Web) -> Markup {
    html! { input type="hidden" name="_csrf" value=(web.csrf()); }
}

/// The links at the top of every page, by who is looking.
fn nav(web: &Web) -> Markup {
    let links: Vec<(&str, &str)> = match web.caller.as_ref().map(|c| &c.scope) {
        Some(Scope::Station(_)) => vec![
            ("/station", web.t("本月工作台", "This month")),
            ("/station/tasks", web.t("任务", "Tasks")),
            ("/station/requests/new", web.t("接诉即办", "Phone request")),
            ("/station/persons", web.t("服务对象", "Residents")),
            ("/station/volunteers", web.t("志愿者", "Volunteers")),
            ("/station/import", web.t("导入", "Import")),
        ],
        Some(Scope::Bureau(_) | Scope::Admin) => vec![
            ("/bureau", web.t("覆盖率", "Coverage")),
            ("/bureau/shortage", web.t("人手缺口", "Shortage")),
            ("/bureau/duties", web.t("常规任务", "Duties")),
            ("/bureau/plugins", web.t("插件", "Plugins")),
        ],
        Some(Scope::Volunteer(_)) => vec![
            ("/v", web.t("我的任务", "My tasks")),
            ("/v/me", web.t("时长与证书", "Hours")),
        ],
        None => vec![],
    };
    let other = match web.lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    let back: String = form_urlencoded::byte_serialize(web.here.as_bytes()).collect();
    html! {
        header.top {
            a.brand href="/" { "邻里 linli" }
            nav {
                @for (href, label) in &links {
                    a href=(href) { (label) }
                }
            }
            span.right {
                a.lang href=(format!("/lang/{}?back={back}", other.0)) { (other.1) }
                @if let Some(s) = &web.session {
                    span.who { (s.user.clone().unwrap_or_else(|| web.t("志愿者", "volunteer").to_owned())) }
                    form.inline method="post" action="/logout" {
                        (csrf_field(web))
                        button.link type="submit" { (web.t("退出", "Log out")) }
                    }
                }
            }
        }
    }
}

/// A whole page.
pub(crate) fn page(web: &Web, title: &str, body: Markup) -> Response {
    page_with(web, StatusCode::OK, title, body)
}

pub(crate) fn page_with(web: &Web, status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang=(web.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 邻里" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                (nav(web))
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page that only says something (an error, a refusal).
pub(crate) fn message_page(web: &Web, status: StatusCode, title: &str, text: &str) -> Response {
    page_with(
        web,
        status,
        title,
        html! {
            p.notice.error { (text) }
            p { a href="/" { (web.t("返回首页", "Home")) } }
        },
    )
}

/// The problems of an API error, as a box on a page.
pub(crate) fn problems(web: &Web, e: &ApiError) -> Markup {
    html! {
        div.notice.error role="alert" {
            p { (web.t("未能完成：", "Could not do that: ")) (e.detail) }
            @if !e.errors.is_empty() {
                ul {
                    @for f in &e.errors {
                        li { @if !f.field.is_empty() { code { (f.field) } " — " } (f.message) }
                    }
                }
            }
        }
    }
}

/// An API error as a page of its own.
pub(crate) fn error_page(web: &Web, e: &ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => web.t("找不到", "Not found"),
        StatusCode::FORBIDDEN => web.t("无权访问", "Not allowed"),
        _ => web.t("未能完成", "Could not do that"),
    };
    let status = e.status;
    page_with(
        web,
        status,
        title,
        html! {
            (problems(web, e))
            p { a href="/" { (web.t("返回首页", "Home")) } }
        },
    )
}

/// After a form: back to a page (303, so a reload does not post again).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The current month as `2026-11`.
pub(crate) fn this_month(st: &AppState) -> String {
    crate::clock::local_date(st.clock.now())
        .format("%Y-%m")
        .to_string()
}

/// A time in the daemon's zone, as people read it.
pub(crate) fn local_time(t: chrono::DateTime<chrono::FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

pub(crate) fn local_utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&crate::clock::local_zone())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A task status in words.
pub(crate) fn status_name(web: &Web, s: crate::schedule::TaskStatus) -> &'static str {
    use crate::schedule::TaskStatus as S;
    let (zh, en) = match s {
        S::Open => ("待派", "open"),
        S::Offered => ("已派单", "offered"),
        S::Accepted => ("已接单", "accepted"),
        S::CheckedIn => ("走访中", "checked in"),
        S::Visited => ("待审核", "visited"),
        S::Done => ("已完成", "done"),
        S::Unstaffed => ("无人可派", "unstaffed"),
        S::Cancelled => ("已取消", "cancelled"),
    };
    match web.lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

pub(crate) fn priority_name(web: &Web, p: crate::schedule::Priority) -> &'static str {
    use crate::schedule::Priority as P;
    let (zh, en) = match p {
        P::Urgent => ("紧急", "urgent"),
        P::High => ("高", "high"),
        P::Normal => ("普通", "normal"),
        P::Low => ("低", "low"),
    };
    match web.lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

pub(crate) fn reason_text(web: &Web, r: &crate::task::Reason) -> String {
    match web.lang {
        Lang::Zh => r.describe_zh(),
        Lang::En => r.describe_en(),
    }
}

/// A vocabulary slug (category, circumstance, skill, role) as people read it: the Chinese name
/// on Chinese pages when linli knows it.
pub(crate) fn label(web: &Web, slug: &str) -> String {
    match (web.lang, crate::registry::vocabulary::zh(slug)) {
        (Lang::Zh, Some(zh)) => zh.to_owned(),
        _ => slug.to_owned(),
    }
}

/// Several slugs, joined for a table cell.
pub(crate) fn labels(web: &Web, slugs: &[String]) -> String {
    let sep = web.t("、", ", ");
    slugs
        .iter()
        .map(|s| label(web, s))
        .collect::<Vec<_>>()
        .join(sep)
}

/// An offer's state in words.
pub(crate) fn offer_state(web: &Web, s: crate::schedule::OfferState) -> &'static str {
    use crate::schedule::OfferState as O;
    let (zh, en) = match s {
        O::Offered => ("待答复", "waiting for an answer"),
        O::Accepted => ("已接单", "accepted"),
        O::Declined => ("已婉拒", "declined"),
        O::Expired => ("已过期", "expired"),
        O::Withdrawn => ("已撤回", "withdrawn"),
        O::CheckedIn => ("走访中", "checked in"),
        O::CheckedOut => ("已签退", "checked out"),
    };
    match web.lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// A reason code of the shortage report in words.
pub(crate) fn reason_code(web: &Web, code: &str) -> String {
    let zh = match code {
        "no_volunteers" => "没有在岗志愿者",
        "other_station" => "不属可服务的社工站",
        "missing_skill" => "缺少技能",
        "expired_certificate" => "证书过期",
        "missing_clearance" => "缺少资质",
        "not_available" => "时段内无空",
        "too_far" => "距离太远",
        "wrong_gender" => "性别不符",
        "no_language" => "语言不符",
        "missing_role" => "缺少角色",
        "at_capacity" => "服务量已满",
        "taken_by_other_tasks" => "被更优先的任务占用",
        "team_incomplete" => "组队人数不足",
        other => return other.replace('_', " "),
    };
    match web.lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => code.replace('_', " "),
    }
}

/// A resident ID as staff see it by default: the first 6 and last 4 characters.
pub(crate) fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}********{tail}")
}

async fn home(web: Web) -> Response {
    match web.caller.as_ref().map(|c| &c.scope) {
        Some(Scope::Station(_)) => see_other("/station"),
        Some(Scope::Bureau(_) | Scope::Admin) => see_other("/bureau"),
        Some(Scope::Volunteer(_)) => see_other("/v"),
        None => see_other("/login"),
    }
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// Switches the language and goes back.
async fn switch_lang(
    State(st): State<AppState>,
    axum::extract::Path(code): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<Back>,
) -> Response {
    let value = if code == "en" { "en" } else { "zh" };
    let mut r = see_other(&safe_next(q.back.as_deref()));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LANG_COOKIE,
            value,
            Some(400 * 24 * 3600),
            st.accounts.settings().secure_cookies,
        ),
    );
    r
}

/// A page for a person who followed a link that goes nowhere.
pub fn not_found_page(headers: &HeaderMap) -> Response {
    let web = bare_web(headers);
    harden_headers(message_page(
        &web,
        StatusCode::NOT_FOUND,
        web.t("找不到这个页面", "Page not found"),
        web.t(
            "地址有误，或这条记录不存在。",
            "The address is wrong, or the record does not exist.",
        ),
    ))
}

/// The viewer as far as a request's headers tell, without a session (error pages).
fn bare_web(headers: &HeaderMap) -> Web {
    Web {
        lang: match cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        },
        session: None,
        caller: None,
        here: "/".into(),
        address: String::new(),
        secret: None,
        login_cookie: None,
        blocked: None,
    }
}

/// Console routes answer people: an API problem on the way out (a path parameter that is not
/// a number, a method the route does not take) becomes a page in their language.
async fn pages_not_problems(req: Request, next: axum::middleware::Next) -> Response {
    let headers = req.headers().clone();
    let r = next.run(req).await;
    let problem = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/problem+json"));
    if !problem {
        return harden_headers(r);
    }
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let e = ApiError {
        status,
        kind: "problem",
        detail: v["detail"].as_str().unwrap_or_default().to_owned(),
        errors: v["errors"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|f| crate::registry::FieldError {
                        field: f["field"].as_str().unwrap_or_default().to_owned(),
                        message: f["message"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    harden_headers(error_page(&bare_web(&headers), &e))
}

/// Security headers on every console response.
fn harden_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Login links carry their code in the path: never pass it on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Body limits of the console's uploads: the API's own.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub import: usize,
    pub plugin: usize,
}

/// The console's routes (merged beside `/v1`).
pub fn router(limits: UploadLimits) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/lang/{code}", get(switch_lang))
        .route("/login", get(login::login_page).post(login::login_post))
        .route("/logout", post(login::logout))
        .route(
            "/login/v/{code}",
            get(login::link_page).post(login::link_post),
        )
        .merge(station::routes(limits.import))
        .merge(bureau::routes(limits.plugin))
        .merge(volunteer::routes())
        .layer(axum::middleware::from_fn(pages_not_problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_ids_are_masked_six_eight_four() {
        assert_eq!(mask_id("620802194501011234"), "620802********1234");
        assert_eq!(mask_id("62080219450101123X"), "620802********123X");
        assert_eq!(mask_id("123"), "***");
    }

    #[test]
    fn next_pages_stay_on_this_site() {
        assert_eq!(
            safe_next(Some("/station?month=2026-11")),
            "/station?month=2026-11"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:x",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", ""));
    }
}
