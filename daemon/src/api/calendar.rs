//! A volunteer's accepted tasks as an iCalendar feed (RFC 5545) at a secret URL that phone
//! calendars subscribe to. The secret is the only credential (calendar apps send no headers);
//! it is shown once, stored as its SHA-256, and a new one replaces it.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Caller, Scope};
use super::extract::Path;
use super::problem::{ApiError, Problem};
use super::{AppState, blocking};
use crate::schedule::{OfferState, Task, TaskTarget};
use crate::service::Guard;

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarFeed {
    /// Subscribe to this path on the daemon's address (shown only now; a new one replaces it).
    pub path: String,
}

#[utoipa::path(post, path = "/v1/volunteers/{id}/calendar", tag = "volunteers",
    params(("id" = u64, Path, description = "Volunteer id")),
    description = "Makes (or replaces) the volunteer's calendar feed: an iCalendar of their accepted tasks at a secret URL. The previous URL stops working.",
    responses((status = 201, body = CalendarFeed), (status = 404, body = Problem)))]
pub async fn rotate(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<CalendarFeed>), ApiError> {
    let allowed = match caller.scope {
        Scope::Volunteer(me) => me == id,
        _ => st.read(|r| {
            Ok::<_, crate::store::StoreError>(match r.volunteer(id)? {
                Some(v) => r.station(v.station)?.is_some_and(|s| caller.station(&s)),
                None => false,
            })
        })?,
    };
    if !allowed {
        return Err(ApiError::not_found(format!("volunteer {id}")));
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = super::auth::hash(&secret);
    blocking(move || Ok(st.store.write(|w| w.set_calendar(id, &hash))?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CalendarFeed {
            path: format!("/calendar/{secret}.ics"),
        }),
    ))
}

/// Text escaped for an iCalendar value (RFC 5545 §3.3.11).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A content line folded at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The feed of a volunteer's accepted (and checked-in) tasks.
pub fn ics(volunteer: u64, tasks: &[(Task, Option<String>)], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//linli//volunteer tasks//ZH");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(
        &mut out,
        &format!("X-WR-CALNAME:{}", text("邻里 · 我的探访任务")),
    );
    for (t, address) in tasks {
        line(&mut out, "BEGIN:VEVENT");
        line(
            &mut out,
            &format!("UID:task-{}-volunteer-{volunteer}@linli", t.id),
        );
        line(&mut out, &format!("DTSTAMP:{}", stamp(now)));
        line(
            &mut out,
            &format!("DTSTART:{}", stamp(t.due_start.to_utc())),
        );
        line(&mut out, &format!("DTEND:{}", stamp(t.due_end.to_utc())));
        line(&mut out, &format!("SUMMARY:{}", text(&t.title.zh)));
        if let Some(a) = address {
            line(&mut out, &format!("LOCATION:{}", text(a)));
        }
        line(
            &mut out,
            &format!(
                "DESCRIPTION:{}",
                text(&format!("{} ({})", t.title.en, t.kind))
            ),
        );
        line(&mut out, &format!("LAST-MODIFIED:{}", stamp(t.updated_at)));
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// `GET /calendar/{secret}.ics` — no token: the secret in the path is the credential.
#[utoipa::path(get, path = "/calendar/{file}", tag = "volunteers", security(()),
    params(("file" = String, Path, description = "`<secret>.ics`, as the calendar route gave it")),
    description = "A volunteer's accepted tasks as iCalendar (RFC 5545), for phone calendars to subscribe to.",
    responses((status = 200, content_type = "text/calendar", body = String), (status = 404, body = Problem)))]
pub async fn feed(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let not_found = || ApiError::not_found("calendar").into_response();
    let Some(secret) = file.strip_suffix(".ics") else {
        return not_found();
    };
    let hash = super::auth::hash(secret);
    let now = st.clock.now();
    let found = st.read(|r| {
        let Some(volunteer) = r.calendar_owner(&hash)? else {
            return Ok::<_, crate::store::StoreError>(None);
        };
        if !r
            .volunteer(volunteer)?
            .is_some_and(|v| v.status != crate::registry::VolunteerStatus::Inactive)
        {
            return Ok(None);
        }
        let mut tasks = Vec::new();
        // Only accepted tasks are read (at most 2,000), however long the volunteer's history.
        let accepted = |t: &Task| {
            t.offers
                .iter()
                .rev()
                .find(|o| o.volunteer == volunteer)
                .is_some_and(|o| matches!(o.state, OfferState::Accepted | OfferState::CheckedIn))
        };
        for t in r.tasks_of_volunteer(volunteer, 0, 2000, accepted)?.items {
            let address = match t.target {
                TaskTarget::Person { id } => r.person(id)?.and_then(|p| p.address),
                TaskTarget::Community { .. } => None,
            };
            tasks.push((t, address));
        }
        Ok(Some((volunteer, tasks)))
    });
    match found {
        Ok(Some((volunteer, tasks))) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            ics(volunteer, &tasks, now),
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
