//! Logging in and out: staff with a username and password, volunteers with the one-time link
//! (or QR code) their station printed. A link's page asks for a tap before spending the code,
//! so a chat app's link preview fetching the page does not use it up.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use maud::html;
use rand::RngCore;

use super::accounts::{Issued, LoginError};
use super::{
    Form, LOGIN_COOKIE, SESSION_COOKIE, Web, csrf_refused, message_page, page, page_with,
    safe_next, same_token, see_other, set_cookie,
};
use crate::api::AppState;

fn new_login_token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The login form's token: the one in its cookie, or a new one to set.
fn login_token(req_token: Option<String>) -> (String, bool) {
    match req_token.filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(t) => (t, false),
        None => (new_login_token(), true),
    }
}

fn with_login_cookie(mut r: Response, token: &str, fresh: bool, secure: bool) -> Response {
    if fresh {
        r.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, token, Some(3600), secure),
        );
    }
    r
}

fn login_form(web: &Web, token: &str, next: &str, name: &str, error: Option<&str>) -> maud::Markup {
    html! {
        @if let Some(e) = error { p.notice.error role="alert" { (e) } }
        form.card.narrow method="post" action="/login" {
            input type="hidden" name="_csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label { (web.t("用户名", "Username"))
                input type="text" name="name" value=(name) autocomplete="username" required autofocus; }
            label { (web.t("密码", "Password"))
                input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { (web.t("登录", "Log in")) }
        }
        p.hint { (web.t("志愿者请用社工站发给您的登录链接或二维码登录。", "Volunteers: log in with the link or QR code your station gave you.")) }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

pub(super) async fn login_page(
    State(st): State<AppState>,
    web: Web,
    axum::extract::Query(q): axum::extract::Query<Next>,
) -> Response {
    if web.caller.is_some() {
        return see_other(&safe_next(q.next.as_deref()));
    }
    let (token, fresh) = login_token(web.login_cookie.clone());
    let next = safe_next(q.next.as_deref());
    let r = page(
        &web,
        web.t("登录", "Log in"),
        login_form(&web, &token, &next, "", None),
    );
    with_login_cookie(r, &token, fresh, st.accounts.settings().secure_cookies)
}

/// The fields of a form posted before there is a session, its token checked against the
/// login cookie.
async fn pre_session_form(web: &Web, req: Request) -> Result<Vec<(String, String)>, Response> {
    let cookie = super::cookie(req.headers(), LOGIN_COOKIE).unwrap_or_default();
    let bytes = axum::body::to_bytes(req.into_body(), 64 << 10)
        .await
        .map_err(|_| message_page(web, StatusCode::PAYLOAD_TOO_LARGE, "413", "form too large"))?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let sent = fields
        .iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !same_token(&sent, &cookie) {
        return Err(csrf_refused(web));
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn logged_in(issued: &Issued, to: &str, st: &AppState) -> Response {
    let mut r = see_other(to);
    let age = (issued.session.expires_at - st.clock.now())
        .num_seconds()
        .max(0);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &issued.secret,
            Some(age),
            st.accounts.settings().secure_cookies,
        ),
    );
    r
}

pub(super) async fn login_post(State(st): State<AppState>, web: Web, req: Request) -> Response {
    let fields = match pre_session_form(&web, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = field(&fields, "name").trim().to_lowercase();
    let password = field(&fields, "password").to_owned();
    let next = safe_next(Some(field(&fields, "next")));
    let accounts = st.accounts.clone();
    let (n2, addr) = (name.clone(), web.address.clone());
    let outcome = tokio::task::spawn_blocking(move || accounts.login(&n2, &password, &addr))
        .await
        .unwrap_or(Err(LoginError::Wrong));
    match outcome {
        Ok(issued) => logged_in(&issued, &next, &st),
        Err(e) => {
            let (status, text) = match &e {
                LoginError::Locked { minutes } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    match web.lang {
                        super::Lang::Zh => format!("登录失败次数过多，请 {minutes} 分钟后再试。"),
                        super::Lang::En => e.to_string(),
                    },
                ),
                LoginError::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    web.t(
                        "同时登录的人太多，请稍候再试。",
                        "Too many logins at once; try again in a moment.",
                    )
                    .to_owned(),
                ),
                LoginError::Store(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    web.t(
                        "暂时无法登录，请稍后再试。",
                        "Logging in is not possible just now; try again shortly.",
                    )
                    .to_owned(),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    web.t(
                        "用户名或密码不对，或账号已停用。",
                        "Wrong username or password, or the account is disabled.",
                    )
                    .to_owned(),
                ),
            };
            let (token, fresh) = login_token(web.login_cookie.clone());
            let r = page_with(
                &web,
                status,
                web.t("登录", "Log in"),
                login_form(&web, &token, &next, &name, Some(&text)),
            );
            with_login_cookie(r, &token, fresh, st.accounts.settings().secure_cookies)
        }
    }
}

pub(super) async fn logout(State(st): State<AppState>, form: Form) -> Response {
    if let Some(secret) = form.web.secret.clone() {
        let accounts = st.accounts.clone();
        let _ = tokio::task::spawn_blocking(move || accounts.logout(&secret)).await;
    }
    let mut r = see_other("/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            "",
            Some(0),
            st.accounts.settings().secure_cookies,
        ),
    );
    r
}

pub(super) async fn link_page(
    State(st): State<AppState>,
    web: Web,
    Path(code): Path<String>,
) -> Response {
    let (token, fresh) = login_token(web.login_cookie.clone());
    let body = html! {
        form.card.narrow method="post" action=(format!("/login/v/{code}")) {
            input type="hidden" name="_csrf" value=(token);
            p { (web.t("点下面的按钮，在这部手机上登录邻里志愿者页面。链接只能用一次。", "Tap the button to log in to linli on this phone. The link works once.")) }
            button type="submit" { (web.t("在本机登录", "Log in on this phone")) }
        }
    };
    let r = page(&web, web.t("志愿者登录", "Volunteer login"), body);
    with_login_cookie(r, &token, fresh, st.accounts.settings().secure_cookies)
}

pub(super) async fn link_post(
    State(st): State<AppState>,
    web: Web,
    Path(code): Path<String>,
    req: Request,
) -> Response {
    if let Err(r) = pre_session_form(&web, req).await {
        return r;
    }
    let accounts = st.accounts.clone();
    let addr = web.address.clone();
    let outcome = tokio::task::spawn_blocking(move || accounts.redeem_login_link(&code, &addr))
        .await
        .unwrap_or(Err(LoginError::BadLink));
    match outcome {
        Ok(issued) => logged_in(&issued, "/v", &st),
        Err(LoginError::Locked { .. }) => message_page(
            &web,
            StatusCode::TOO_MANY_REQUESTS,
            web.t("请稍后再试", "Try again later"),
            web.t(
                "失败次数过多，请 15 分钟后再试。",
                "Too many failed attempts; try again in 15 minutes.",
            ),
        ),
        Err(_) => message_page(
            &web,
            StatusCode::GONE,
            web.t("链接已失效", "Link no longer valid"),
            web.t(
                "这个登录链接不存在、已用过或已过期。请向社工站要一个新的。",
                "This login link is unknown, used or expired. Ask your station for a new one.",
            ),
        ),
    }
}
