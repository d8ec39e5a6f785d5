//! Console accounts through the API (the CLI's `linlid user …` does the same on the server),
//! and volunteers' login links and phone sessions.
//!
//! An administrator manages every account; a bureau the accounts of its own region (its bureau
//! and the stations of its townships). Stations issue their volunteers' login links.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Scope};
use super::extract::{Body, Path};
use super::problem::{ApiError, Problem};
use super::{AppState, blocking};
use crate::console::accounts::{LoginLink, UserInfo, generate_password};
use crate::service::Guard;

/// A new console account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 3 to 32 lower-case letters, digits, `.`, `_` or `-`.
    #[schema(example = "wang.fang")]
    pub name: String,
    /// `admin`, `bureau:<code>` or `station:<id>` (volunteers log in with links instead).
    #[schema(example = "station:1")]
    pub scope: String,
    /// Who the account is for, e.g. 东关街道社工站 王芳.
    #[serde(default)]
    pub label: Option<String>,
    /// 10 to 256 characters; leave out to have one generated (and answered once).
    #[serde(default)]
    pub password: Option<String>,
}

/// An account, with its password when the daemon generated it (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreated {
    #[serde(flatten)]
    pub user: UserInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A change to an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// `true` disables the account and ends its sessions; `false` enables it again.
    pub disabled: bool,
}

/// May the caller manage an account of this scope?
fn manages(st: &AppState, caller: &Caller, scope: &str) -> Result<bool, ApiError> {
    Ok(match (&caller.scope, scope.parse::<Scope>()) {
        (Scope::Admin, _) => true,
        (Scope::Bureau(_), Ok(Scope::Bureau(code))) => caller.region(&code),
        (Scope::Bureau(_), Ok(Scope::Station(id))) => st
            .read(|r| r.station(id))?
            .is_some_and(|s| caller.station(&s)),
        _ => false,
    })
}

fn managers_only(caller: &Caller) -> Result<(), ApiError> {
    match caller.scope {
        Scope::Admin | Scope::Bureau(_) => Ok(()),
        _ => Err(ApiError::forbidden(
            "console accounts are managed by administrators and bureaus",
        )),
    }
}

#[utoipa::path(get, path = "/v1/users", tag = "console",
    description = "Console accounts the caller manages (never their passwords).",
    responses((status = 200, body = Vec<UserInfo>), (status = 403, body = Problem)))]
pub async fn list_users(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    managers_only(&caller)?;
    let users = super::off_executor(|| st.accounts.users())?;
    let mut out = Vec::new();
    for u in users {
        if manages(&st, &caller, &u.scope)? {
            out.push(u);
        }
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/v1/users", tag = "console", request_body = NewUser,
    description = "Creates a console account (argon2id password). Without `password`, one is generated and answered this once.",
    responses((status = 201, body = UserCreated), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(st): State<AppState>,
    caller: Caller,
    Body(req): Body<NewUser>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    managers_only(&caller)?;
    if req.scope.parse::<Scope>().is_ok() && !manages(&st, &caller, &req.scope)? {
        return Err(ApiError::forbidden(
            "a bureau creates accounts for its own region and its stations only",
        ));
    }
    let generated = req.password.is_none().then(generate_password);
    let password = req
        .password
        .or_else(|| generated.clone())
        .unwrap_or_default();
    let accounts = st.accounts.clone();
    let user =
        blocking(move || Ok(accounts.create_user(&req.name, &req.scope, req.label, &password)?))
            .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            user,
            password: generated,
        }),
    ))
}

/// The account `name`, if the caller manages it (else 404: no telling who exists).
fn managed(st: &AppState, caller: &Caller, name: &str) -> Result<UserInfo, ApiError> {
    managers_only(caller)?;
    match super::off_executor(|| st.accounts.user_info(name))? {
        Some(u) if manages(st, caller, &u.scope)? => Ok(u),
        _ => Err(ApiError::not_found(format!("user {name}"))),
    }
}

#[utoipa::path(patch, path = "/v1/users/{name}", tag = "console", request_body = UserChange,
    params(("name" = String, Path, description = "Username")),
    description = "Disables an account (its sessions end at once) or enables it again.",
    responses((status = 200, body = UserInfo), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn update_user(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<UserChange>,
) -> Result<Json<UserInfo>, ApiError> {
    managed(&st, &caller, &name)?;
    let accounts = st.accounts.clone();
    Ok(Json(
        blocking(move || Ok(accounts.set_disabled(&name, req.disabled)?)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/users/{name}/reset", tag = "console",
    params(("name" = String, Path, description = "Username")),
    description = "Gives the account a new generated password (answered this once); its sessions end.",
    responses((status = 200, body = UserCreated), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn reset_user(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserCreated>, ApiError> {
    managed(&st, &caller, &name)?;
    let password = generate_password();
    let accounts = st.accounts.clone();
    let p2 = password.clone();
    let user = blocking(move || Ok(accounts.reset_password(&name, &p2)?)).await?;
    Ok(Json(UserCreated {
        user,
        password: Some(password),
    }))
}

/// The volunteer `id`, if the caller's station (or bureau, or admin) covers them.
pub(crate) fn covered_volunteer(
    st: &AppState,
    caller: &Caller,
    id: u64,
) -> Result<crate::registry::Volunteer, ApiError> {
    if caller.is_volunteer() {
        return Err(ApiError::forbidden(
            "stations issue login links and end volunteers' sessions",
        ));
    }
    st.read(|r| {
        let Some(v) = r.volunteer(id)? else {
            return Ok::<_, ApiError>(None);
        };
        let covered = r.station(v.station)?.is_some_and(|s| caller.station(&s));
        Ok(covered.then_some(v))
    })?
    .ok_or_else(|| ApiError::not_found(format!("volunteer {id}")))
}

#[utoipa::path(post, path = "/v1/volunteers/{id}/login-link", tag = "console",
    params(("id" = u64, Path, description = "Volunteer id")),
    description = "A one-time link (print its QR code) with which the volunteer logs in on their phone; it expires after `[console] login_link_days` and works once. The code is answered this once.",
    responses((status = 201, body = LoginLink), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn login_link(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<LoginLink>), ApiError> {
    let v = covered_volunteer(&st, &caller, id)?;
    if v.status == crate::registry::VolunteerStatus::Inactive {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the volunteer is deactivated: reactivate them first",
        ));
    }
    let base = st.records.base_url().to_owned();
    let by = caller.scope.to_string();
    let accounts = st.accounts.clone();
    let link = blocking(move || Ok(accounts.issue_login_link(id, &by, &base)?)).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    pub ended: usize,
}

#[utoipa::path(delete, path = "/v1/volunteers/{id}/sessions", tag = "console",
    params(("id" = u64, Path, description = "Volunteer id")),
    description = "Logs the volunteer out on every phone (a lost phone, a volunteer who left).",
    responses((status = 200, body = SessionsEnded), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn end_sessions(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<SessionsEnded>, ApiError> {
    covered_volunteer(&st, &caller, id)?;
    let accounts = st.accounts.clone();
    let ended = blocking(move || Ok(accounts.end_volunteer_sessions(id)?)).await?;
    Ok(Json(SessionsEnded { ended }))
}
