//! Notification endpoints (a station's or a bureau's), their delivery logs, replays and tests.
//! Secrets are shown once, when made; reads never return them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::extract::{Body, Path, Query};
use super::problem::{ApiError, Problem};
use super::{AppState, blocking};
use crate::notify::model::{Endpoint, EndpointKind, Message, MessageState, Owner, Secret};
use crate::notify::{check_url, sign};
use crate::registry::FieldError;
use crate::registry::region::{RegionCode, RegionLevel};
use crate::schedule::EventKind;
use crate::service::Guard;
use crate::store::ReadTx;

/// An endpoint as the API shows it: no secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: u64,
    pub owner: Owner,
    pub kind: EndpointKind,
    pub url: String,
    pub description: String,
    /// Kinds wanted; empty: every kind.
    pub events: Vec<EventKind>,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Whether a signing secret is set (webhooks always; DingTalk when its robot signs).
    pub signed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id,
            owner: e.owner.clone(),
            kind: e.kind,
            url: redact(e),
            description: e.description.clone(),
            events: e.events.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            signed: !e.secrets.is_empty(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A URL's query values (a robot's key is as good as a password) are shown only in part.
fn redact(e: &Endpoint) -> String {
    match reqwest::Url::parse(&e.url) {
        Ok(mut u) => {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    // Query values may be credentials (a robot's key, a receiver's token).
                    let v = if !v.is_empty() {
                        let tail: String = v
                            .chars()
                            .rev()
                            .take(4)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        format!("…{tail}")
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => String::new(),
    }
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub owner: Owner,
    pub kind: EndpointKind,
    /// Webhook: your receiver (https://). WeCom: the group robot's address
    /// (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`). DingTalk: the custom robot's
    /// (`https://oapi.dingtalk.com/robot/send?access_token=…`).
    #[schema(max_length = 2048)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// Kinds wanted; empty or absent: every kind.
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// DingTalk only: the robot's signing secret (`SEC…`), when its security setting is 加签.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A change to an endpoint (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
    pub events: Option<Vec<EventKind>>,
    /// Enabling again clears why it was disabled.
    pub enabled: Option<bool>,
    /// DingTalk only: the robot's new signing secret.
    #[schema(max_length = 200)]
    pub secret: Option<String>,
}

/// A made endpoint, with its webhook secret — shown only now.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCreated {
    pub endpoint: EndpointView,
    /// Webhook: the `whsec_…` secret to verify signatures with (shown only now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A new webhook secret; the old one keeps signing until `old_expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    pub secret: String,
    pub old_expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub items: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<Message>,
    /// Pass as `before` for older messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// Only messages in this state.
    pub state: Option<MessageState>,
    /// Messages older than this id (the `next` of the previous page).
    pub before: Option<u64>,
    /// At most this many (1–500, default 100).
    pub limit: Option<usize>,
}

/// Which failed messages to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaySince {
    /// Messages made at or after this instant that are dead or still failing.
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: usize,
}

fn field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

/// May the caller see and change endpoints of `owner`? (`station` reads a station.)
fn covers(
    caller: &Caller,
    owner: &Owner,
    station: impl FnOnce(u64) -> Result<Option<crate::registry::Station>, crate::store::StoreError>,
) -> Result<bool, ApiError> {
    Ok(match owner {
        Owner::Station(id) => station(*id)?.is_some_and(|s| caller.station(&s)),
        Owner::Bureau(code) => !caller.is_volunteer() && caller.region(code),
    })
}

fn disabled(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("endpoint {id} is disabled: enable it first (PATCH {{\"enabled\": true}})"),
    )
}

/// Endpoints one station or bureau may have.
const MAX_PER_OWNER: usize = 20;

fn one_line(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn check_secret(kind: EndpointKind, secret: Option<&str>) -> Result<(), ApiError> {
    match (kind, secret) {
        (_, None) => Ok(()),
        (EndpointKind::Dingtalk, Some(s))
            if s.starts_with("SEC") && one_line(s, 200) && s.len() > 3 =>
        {
            Ok(())
        }
        (EndpointKind::Dingtalk, Some(_)) => Err(field(
            "secret",
            "a DingTalk signing secret starts with SEC (copy it from the robot's 加签 setting)",
        )),
        (_, Some(_)) => Err(field(
            "secret",
            "only a DingTalk robot takes a secret; webhook secrets are made by linli (rotate to get a new one)",
        )),
    }
}

#[utoipa::path(post, path = "/v1/endpoints", tag = "notifications", request_body = NewEndpoint,
    description = "Adds where a station (its communities' events) or a bureau (its region's) hears about its work: a signed webhook, a WeCom group robot or a DingTalk robot. A webhook's secret is in the answer, and only there.",
    responses((status = 201, body = EndpointCreated), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Body(req): Body<NewEndpoint>,
) -> Result<(StatusCode, Json<EndpointCreated>), ApiError> {
    if caller.is_volunteer() {
        return Err(ApiError::forbidden(
            "a volunteer token cannot manage notifications",
        ));
    }
    let cfg = st.notifier.config().clone();
    check_url(req.kind, &req.url, &cfg).map_err(|m| field("url", format!("the URL {m}")))?;
    if !one_line(&req.description, 200) {
        return Err(field("description", "at most 200 characters of one line"));
    }
    check_secret(req.kind, req.secret.as_deref())?;
    let now = st.clock.now();
    blocking(move || {
        let created = st.store.write(|w| {
            match &req.owner {
                Owner::Station(id) => {
                    let s = w.station(*id)?.filter(|s| caller.station(s));
                    match s {
                        None => return Err(ApiError::not_found(format!("station {id}"))),
                        Some(s) if !s.active => {
                            return Err(field("owner", format!("station {id} is deactivated")));
                        }
                        Some(_) => {}
                    }
                }
                Owner::Bureau(code) => {
                    let level = RegionCode::parse(code).map(|c| c.level);
                    if !matches!(level, Ok(RegionLevel::County | RegionLevel::City)) {
                        return Err(field(
                            "owner",
                            "a bureau endpoint belongs to a county or city region code",
                        ));
                    }
                    if !caller.region(code) {
                        return Err(ApiError::forbidden(format!(
                            "region {code} is outside this token's scope"
                        )));
                    }
                    if w.region(code)?.is_none() {
                        return Err(ApiError::not_found(format!("region {code}")));
                    }
                }
            }
            if w.endpoints()?.iter().filter(|e| e.owner == req.owner).count() >= MAX_PER_OWNER {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("at most {MAX_PER_OWNER} endpoints per station or bureau; change or disable one"),
                ));
            }
            let id = w.reserve_ids("endpoint", 1)?;
            let secret = match req.kind {
                EndpointKind::Webhook => Some(sign::new_webhook_secret()),
                _ => None,
            };
            let mut events = req.events.clone();
            events.sort();
            events.dedup();
            let e = Endpoint {
                id,
                owner: req.owner.clone(),
                kind: req.kind,
                url: req.url.clone(),
                description: req.description.clone(),
                events,
                enabled: req.enabled,
                disabled_reason: None,
                secrets: secret
                    .iter()
                    .chain(req.secret.iter())
                    .map(|v| Secret {
                        value: v.clone(),
                        expires_at: None,
                    })
                    .collect(),
                created_at: now,
                updated_at: now,
            };
            w.put_endpoint(&e)?;
            Ok(EndpointCreated {
                endpoint: (&e).into(),
                secret,
            })
        })?;
        Ok((StatusCode::CREATED, Json(created)))
    })
    .await
}

#[utoipa::path(get, path = "/v1/endpoints", tag = "notifications",
    description = "The endpoints this token covers.",
    responses((status = 200, body = EndpointList)))]
pub async fn list_endpoints(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<EndpointList>, ApiError> {
    let items = st.read(|r| {
        let mut out = Vec::new();
        for e in r.endpoints()? {
            if covers(&caller, &e.owner, |i| r.station(i))? {
                out.push(EndpointView::from(&e));
            }
        }
        Ok::<_, ApiError>(out)
    })?;
    Ok(Json(EndpointList { items }))
}

/// The endpoint, if the caller covers it.
fn visible(r: &ReadTx, caller: &Caller, id: u64) -> Result<Endpoint, ApiError> {
    match r.endpoint(id)? {
        Some(e) if covers(caller, &e.owner, |i| r.station(i))? => Ok(e),
        _ => Err(ApiError::not_found(format!("endpoint {id}"))),
    }
}

#[utoipa::path(get, path = "/v1/endpoints/{id}", tag = "notifications",
    params(("id" = u64, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
pub async fn get_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<EndpointView>, ApiError> {
    let e = st.read(|r| visible(r, &caller, id))?;
    Ok(Json((&e).into()))
}

#[utoipa::path(patch, path = "/v1/endpoints/{id}", tag = "notifications", request_body = EndpointPatch,
    params(("id" = u64, Path, description = "Endpoint id")),
    description = "Changes the URL, description, kinds wanted, or enabled flag (disable: `{\"enabled\": false}`); a DingTalk robot's new secret.",
    responses((status = 200, body = EndpointView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    let cfg = st.notifier.config().clone();
    let now = st.clock.now();
    let e = blocking(move || {
        let view = st.store.write(|w| {
            let mut e = match w.endpoint(id)? {
                Some(e) if covers(&caller, &e.owner, |i| w.station(i))? => e,
                _ => return Err(ApiError::not_found(format!("endpoint {id}"))),
            };
            if let Some(url) = &req.url {
                check_url(e.kind, url, &cfg).map_err(|m| field("url", format!("the URL {m}")))?;
                e.url = url.clone();
            }
            if let Some(d) = &req.description {
                if !one_line(d, 200) {
                    return Err(field("description", "at most 200 characters of one line"));
                }
                e.description = d.clone();
            }
            if let Some(ev) = &req.events {
                let mut ev = ev.clone();
                ev.sort();
                ev.dedup();
                e.events = ev;
            }
            if let Some(s) = &req.secret {
                check_secret(e.kind, Some(s))?;
                e.secrets = vec![Secret {
                    value: s.clone(),
                    expires_at: None,
                }];
            }
            let disabling = req.enabled == Some(false) && e.enabled;
            if let Some(on) = req.enabled {
                if on {
                    e.disabled_reason = None;
                }
                e.enabled = on;
            }
            e.updated_at = now;
            w.put_endpoint(&e)?;
            if disabling {
                // Nothing more goes out: what was queued waits, dead, for a replay.
                crate::notify::disable(w, id, &format!("disabled by {}", caller.scope), now)?;
                e = w.endpoint(id)?.unwrap_or(e);
            }
            Ok(EndpointView::from(&e))
        })?;
        Ok(view)
    })
    .await?;
    Ok(Json(e))
}

#[utoipa::path(post, path = "/v1/endpoints/{id}/rotate", tag = "notifications",
    params(("id" = u64, Path, description = "Endpoint id")),
    description = "Makes a new webhook secret (shown only now). Until `old_expires_at` both secrets sign, so the receiver can switch without losing a message.",
    responses((status = 200, body = Rotated), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Rotated>, ApiError> {
    let now = st.clock.now();
    let overlap = chrono::Duration::hours(i64::from(st.notifier.config().rotation_overlap_hours));
    let r = blocking(move || {
        let r = st.store.write(|w| {
            let mut e = match w.endpoint(id)? {
                Some(e) if covers(&caller, &e.owner, |i| w.station(i))? => e,
                _ => return Err(ApiError::not_found(format!("endpoint {id}"))),
            };
            if e.kind != EndpointKind::Webhook {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "only a webhook's secret is made by linli; give a DingTalk robot its new secret with PATCH",
                ));
            }
            let secret = sign::new_webhook_secret();
            let old_expires_at = now + overlap;
            // The new secret and the one before it sign during the overlap; older ones stop.
            let mut kept: Vec<Secret> = e
                .secrets
                .iter()
                .filter(|s| s.expires_at.is_none_or(|x| x > now))
                .take(1)
                .map(|s| Secret {
                    value: s.value.clone(),
                    expires_at: Some(s.expires_at.map_or(old_expires_at, |x| x.min(old_expires_at))),
                })
                .collect();
            kept.insert(
                0,
                Secret {
                    value: secret.clone(),
                    expires_at: None,
                },
            );
            e.secrets = kept;
            e.updated_at = now;
            w.put_endpoint(&e)?;
            Ok(Rotated {
                secret,
                old_expires_at,
            })
        })?;
        Ok(r)
    })
    .await?;
    Ok(Json(r))
}

#[utoipa::path(post, path = "/v1/endpoints/{id}/test", tag = "notifications",
    params(("id" = u64, Path, description = "Endpoint id")),
    description = "Sends a test message now (ahead of routine traffic); its delivery shows in the message's log. One per endpoint every 10 seconds; not to a disabled endpoint.",
    responses((status = 202, body = Message), (status = 404, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
pub async fn test_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let e = st.read(|r| visible(r, &caller, id))?;
    if !e.enabled {
        return Err(disabled(id));
    }
    if !st.notifier.may_test(id) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "one test message per endpoint every 10 seconds; look at the last one's log",
        ));
    }
    let n = st.notifier.clone();
    let m = blocking(move || Ok(n.test_message(id)?)).await?;
    let m = m.ok_or_else(|| ApiError::not_found(format!("endpoint {id}")))?;
    Ok((StatusCode::ACCEPTED, Json(m)))
}

#[utoipa::path(get, path = "/v1/endpoints/{id}/messages", tag = "notifications",
    params(("id" = u64, Path, description = "Endpoint id"), MessageQuery),
    description = "The endpoint's messages, newest first, each with its delivery log (attempts, status codes, latency, last error).",
    responses((status = 200, body = MessageList), (status = 404, body = Problem)))]
pub async fn list_messages(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<MessageQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 500"));
    }
    let page = st.read(|r| {
        visible(r, &caller, id)?;
        Ok::<_, ApiError>(
            r.messages_of_endpoint(id, q.before.unwrap_or(u64::MAX), limit, |m| {
                q.state.is_none_or(|s| m.state == s)
            })?,
        )
    })?;
    Ok(Json(MessageList {
        items: page.items,
        next: page.next,
    }))
}

/// The message, if the caller covers its endpoint.
fn visible_message(r: &ReadTx, caller: &Caller, id: u64) -> Result<Message, ApiError> {
    let m = r
        .message(id)?
        .ok_or_else(|| ApiError::not_found(format!("message {id}")))?;
    visible(r, caller, m.endpoint).map_err(|_| ApiError::not_found(format!("message {id}")))?;
    Ok(m)
}

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "notifications",
    params(("id" = u64, Path, description = "Message id")),
    responses((status = 200, body = Message), (status = 404, body = Problem)))]
pub async fn get_message(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(st.read(|r| visible_message(r, &caller, id))?))
}

#[utoipa::path(post, path = "/v1/messages/{id}/replay", tag = "notifications",
    params(("id" = u64, Path, description = "Message id")),
    description = "Sends a message again, under the same `webhook-id` (a new round of retries). A message whose body was pruned after the retention period cannot be replayed (409).",
    responses((status = 202, body = Message), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn replay_message(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let now = st.clock.now();
    let n = st.notifier.clone();
    let m = blocking(move || {
        let m = st.store.write(|w| {
            let m = w
                .message(id)?
                .ok_or_else(|| ApiError::not_found(format!("message {id}")))?;
            match w.endpoint(m.endpoint)? {
                Some(e) if covers(&caller, &e.owner, |i| w.station(i))? => {
                    if !e.enabled {
                        return Err(disabled(e.id));
                    }
                }
                _ => return Err(ApiError::not_found(format!("message {id}"))),
            }
            if m.body.is_none() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "the message's body was pruned after the retention period; it cannot be sent again",
                ));
            }
            Ok(n.replay(w, id, now)?.unwrap_or(m))
        })?;
        n.nudge();
        Ok(m)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(m)))
}

#[utoipa::path(post, path = "/v1/endpoints/{id}/replay", tag = "notifications", request_body = ReplaySince,
    params(("id" = u64, Path, description = "Endpoint id")),
    description = "Sends again every message of the endpoint made since `since` that is dead or has failed at least once and is still waiting.",
    responses((status = 202, body = Replayed), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn replay_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(req): Body<ReplaySince>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let now = st.clock.now();
    let n = st.notifier.clone();
    let replayed = blocking(move || {
        let count = st.store.write(|w| {
            match w.endpoint(id)? {
                Some(e) if covers(&caller, &e.owner, |i| w.station(i))? => {
                    if !e.enabled {
                        return Err(disabled(id));
                    }
                }
                _ => return Err(ApiError::not_found(format!("endpoint {id}"))),
            }
            let page = w.messages_of_endpoint(id, u64::MAX, 100_000, |m| {
                m.created_at >= req.since
                    && m.body.is_some()
                    && (m.state == MessageState::Dead
                        || (m.state == MessageState::Pending && m.tries > 0))
            })?;
            let mut count = 0;
            for m in page.items {
                n.replay(w, m.id, now)?;
                count += 1;
            }
            Ok(count)
        })?;
        n.nudge();
        Ok(count)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed })))
}
