//! Notifications: the only code that makes outgoing HTTP requests.
//!
//! Events are written to the outbox (`events`) in the transaction of the change that caused
//! them. The [`Notifier`] — one loop owned by `server::run` — fans each event out into one
//! message per endpoint that wants it (in one transaction that also advances its cursor, so a
//! crash neither loses nor doubles a fan-out), then delivers due messages: urgent ones first,
//! at most `max_in_flight` at a time per endpoint (one per robot, paced to its rate limit), each
//! attempt with a timeout. Outcomes are written in batches. A message's body and `webhook-id`
//! are fixed when it is made, so retries send the same bytes under the same id
//! (at-least-once; receivers deduplicate by id).

pub mod model;
pub mod render;
pub mod sign;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::NotifyConfig;
use crate::registry::Station;
use crate::registry::region::RegionCode;
use crate::schedule::{Event, EventData, EventKind};
use crate::store::{Store, StoreError, WriteTx};
use model::{Attempt, Endpoint, EndpointKind, Message, MessageState, Owner};

/// The retry schedule after each failed attempt (Standard Webhooks' own): immediately, 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; then the message is dead.
pub const RETRY_SECS: [i64; 10] = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];
/// Attempts kept in a message's log.
const LOG_KEPT: usize = 50;
/// Events fanned out per transaction.
const FAN_OUT_BATCH: usize = 512;
/// Attempts in flight at once, over all endpoints.
const GLOBAL_IN_FLIGHT: usize = 256;

/// Why an endpoint URL is refused.
pub fn check_url(kind: EndpointKind, url: &str, cfg: &NotifyConfig) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("is not a URL ({e}): give https://…"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    match parsed.scheme() {
        "https" => {}
        "http" if cfg.allow_http => {}
        "http" => {
            return Err(
                "must be https:// (an intranet receiver without TLS needs [notify] allow_http = true)"
                    .into(),
            );
        }
        other => return Err(format!("has scheme {other}: only https:// is sent to")),
    }
    let Some(host) = parsed.host_str() else {
        return Err("has no host".into());
    };
    let robot = |base: &str, path: &str, key: &str| -> Result<(), String> {
        let prefix = format!("{}{path}", base.trim_end_matches('/'));
        if !url.starts_with(&prefix)
            || !parsed.query_pairs().any(|(k, v)| k == key && !v.is_empty())
        {
            return Err(format!(
                "is not a robot URL: it must look like {prefix}?{key}=… (copy it from the group robot's settings)"
            ));
        }
        Ok(())
    };
    match kind {
        EndpointKind::Wecom => robot(&cfg.wecom_base, "/cgi-bin/webhook/send", "key")?,
        EndpointKind::Dingtalk => robot(&cfg.dingtalk_base, "/robot/send", "access_token")?,
        EndpointKind::Webhook => {}
    }
    if !cfg.allow_private_addresses {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>()
            && internal(ip)
        {
            return Err(format!(
                "points at an internal address ({ip}); a receiver on the intranet needs [notify] allow_private_addresses = true"
            ));
        }
        if bare.eq_ignore_ascii_case("localhost") || bare.ends_with(".localhost") {
            return Err("points at this machine (localhost)".into());
        }
    }
    Ok(())
}

/// Loopback, private, link-local, shared, documentation, multicast and unspecified addresses.
pub fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A resolver that drops internal addresses (so a name cannot be pointed at the intranet after
/// the endpoint was checked).
struct Guarded;

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !internal(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct NotifyMetrics {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead: AtomicU64,
    pub throttled: AtomicU64,
}

/// Whether `endpoint` should hear of `event`; for a station's digest, only its communities.
fn route(
    endpoint: &Endpoint,
    event: &Event,
    stations: &HashMap<u64, Station>,
) -> Option<Option<EventData>> {
    if !endpoint.enabled || !endpoint.wants(event.kind) {
        return None;
    }
    let within =
        |region: &str, code: &str| RegionCode::parse(region).is_ok_and(|r| r.contains(code));
    match &endpoint.owner {
        Owner::Station(id) => {
            let station = stations.get(id).filter(|s| s.active)?;
            if let Some(EventData::Tasks {
                scheduled_at,
                communities,
            }) = &event.data
            {
                let mine: Vec<_> = communities
                    .iter()
                    .filter(|c| station.serves(&c.community))
                    .cloned()
                    .collect();
                return (!mine.is_empty()).then_some(Some(EventData::Tasks {
                    scheduled_at: *scheduled_at,
                    communities: mine,
                }));
            }
            if let Some(c) = &event.community {
                return station.serves(c).then(|| event.data.clone());
            }
            let region = event.region.as_deref()?;
            station
                .communities
                .iter()
                .any(|c| within(region, c))
                .then(|| event.data.clone())
        }
        Owner::Bureau(code) => {
            let about = event.community.as_deref().or(event.region.as_deref())?;
            within(code, about).then(|| event.data.clone())
        }
    }
}

/// The body an endpoint gets for an event, and whether it goes in the urgent lane: a test, or
/// news of an urgent task that needs someone (made, unstaffed, declined, let expire).
fn body_for(
    w: &WriteTx,
    endpoint: &Endpoint,
    event: &Event,
    base: Option<&str>,
) -> Result<(String, bool), StoreError> {
    let task = match event.task {
        Some(id) => w.task(id)?,
        None => None,
    };
    let urgent = event.kind == EventKind::EndpointTest
        || (task
            .as_ref()
            .is_some_and(|t| t.priority == crate::task::Priority::Urgent)
            && matches!(
                event.kind,
                EventKind::TaskCreated
                    | EventKind::TaskUnstaffed
                    | EventKind::TaskDeclined
                    | EventKind::TaskExpired
            ));
    let mut names: HashMap<String, String> = HashMap::new();
    let mut codes: Vec<String> = Vec::new();
    if let Some(t) = &task {
        codes.push(t.community.clone());
    }
    if let Some(EventData::Tasks { communities, .. }) = &event.data {
        codes.extend(communities.iter().map(|c| c.community.clone()));
    }
    for c in codes {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(c) {
            let name = w
                .region(slot.key())?
                .map_or_else(|| slot.key().clone(), |r| r.name);
            slot.insert(name);
        }
    }
    let name = |c: &str| names.get(c).cloned().unwrap_or_else(|| c.to_owned());
    let cx = render::Context {
        task: task.as_ref(),
        name: &name,
        base_url: base,
    };
    let body = match endpoint.kind {
        EndpointKind::Webhook => render::webhook(event, &cx),
        EndpointKind::Wecom => render::wecom(event, &cx),
        EndpointKind::Dingtalk => render::dingtalk(event, &cx),
    };
    Ok((body, urgent))
}

/// A new message for `endpoint`, due now.
fn message(
    id: u64,
    endpoint: &Endpoint,
    event: &Event,
    (body, urgent): (String, bool),
    now: DateTime<Utc>,
) -> Message {
    Message {
        id,
        endpoint: endpoint.id,
        event: event.seq,
        kind: event.kind,
        urgent,
        state: MessageState::Pending,
        tries: 0,
        attempts: Vec::new(),
        next_at: Some(now),
        delivered_at: None,
        last_error: None,
        created_at: now,
        body: Some(body),
    }
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    /// Try again later (at the schedule's next step, or not before `at`).
    Failed {
        not_before: Option<DateTime<Utc>>,
    },
    /// The robot's rate limit: wait, without counting an attempt.
    Throttled {
        until: DateTime<Utc>,
    },
    /// 410 Gone: the endpoint is disabled.
    Gone,
}

struct Done {
    id: u64,
    endpoint: u64,
    attempt: Attempt,
    outcome: Outcome,
}

/// Per endpoint: attempts in flight, and when a robot may next be sent to.
#[derive(Default)]
struct Gate {
    in_flight: u32,
    next_send: Option<Instant>,
}

/// The delivery loop and what the API asks of it.
pub struct Notifier {
    store: Store,
    clock: SharedClock,
    cfg: NotifyConfig,
    client: reqwest::Client,
    wake: tokio::sync::Notify,
    fan_wake: tokio::sync::Notify,
    pub metrics: NotifyMetrics,
    gates: Mutex<HashMap<u64, Gate>>,
    in_flight: Mutex<HashSet<u64>>,
}

impl Notifier {
    pub fn new(store: Store, clock: SharedClock, cfg: NotifyConfig) -> Result<Arc<Self>, String> {
        // One TLS provider for the process (ring); a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.min(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("linli/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(16);
        if !cfg.allow_private_addresses {
            builder = builder.dns_resolver(Arc::new(Guarded));
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        Ok(Arc::new(Self {
            store,
            clock,
            cfg,
            client,
            wake: tokio::sync::Notify::new(),
            fan_wake: tokio::sync::Notify::new(),
            metrics: NotifyMetrics::default(),
            gates: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
        }))
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.cfg
    }

    /// Looks at the outbox and the queue now rather than at the next poll.
    pub fn nudge(&self) {
        self.fan_wake.notify_one();
        self.wake.notify_one();
    }

    /// Fans out events after the cursor into messages; returns how many events it read.
    pub fn fan_out(&self) -> Result<usize, StoreError> {
        // Most polls find nothing new: a read says so without a write transaction.
        let fresh = self.store.read(|r| {
            let cursor = r.meta("notify_cursor")?.unwrap_or(0);
            Ok::<_, StoreError>(r.events_visible(cursor, 1, 1, |_| true)?.1 != cursor)
        })?;
        if !fresh {
            return Ok(0);
        }
        let now = self.clock.now();
        let base = self.cfg.public_base_url.clone();
        self.store.write(|w| {
            let cursor = w.meta("notify_cursor")?.unwrap_or(0);
            let (events, last) =
                w.events_visible(cursor, FAN_OUT_BATCH, FAN_OUT_BATCH, |_| true)?;
            if last == cursor {
                return Ok(0);
            }
            let endpoints: Vec<Endpoint> =
                w.endpoints()?.into_iter().filter(|e| e.enabled).collect();
            if !endpoints.is_empty() {
                let stations: HashMap<u64, Station> =
                    w.all_stations()?.into_iter().map(|s| (s.id, s)).collect();
                for event in &events {
                    for endpoint in &endpoints {
                        let Some(data) = route(endpoint, event, &stations) else {
                            continue;
                        };
                        let mut scoped = event.clone();
                        scoped.data = data;
                        let body = body_for(w, endpoint, &scoped, base.as_deref())?;
                        let id = w.reserve_ids("message", 1)?;
                        w.put_message(&message(id, endpoint, &scoped, body, now))?;
                    }
                }
            }
            w.set_meta("notify_cursor", last)?;
            Ok(events.len().max(1))
        })
    }

    /// Queues a test message for an endpoint, urgent; returns it.
    pub fn test_message(&self, endpoint: u64) -> Result<Option<Message>, StoreError> {
        let now = self.clock.now();
        let base = self.cfg.public_base_url.clone();
        let m = self.store.write(|w| {
            let Some(e) = w.endpoint(endpoint)? else {
                return Ok::<_, StoreError>(None);
            };
            let event = Event {
                seq: 0,
                kind: EventKind::EndpointTest,
                at: now,
                task: None,
                duty: None,
                community: None,
                region: None,
                detail: "linli 邻里：测试消息，收到即表示通知已接通。".into(),
                data: None,
            };
            let body = body_for(w, &e, &event, base.as_deref())?;
            let id = w.reserve_ids("message", 1)?;
            let m = message(id, &e, &event, body, now);
            w.put_message(&m)?;
            Ok(Some(m))
        })?;
        self.nudge();
        Ok(m)
    }

    /// Puts a message back in the queue for a new round of attempts (same `webhook-id`).
    pub fn replay(
        &self,
        w: &mut WriteTx,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError> {
        let Some(mut m) = w.message(id)? else {
            return Ok(None);
        };
        if m.body.is_none() {
            return Ok(Some(m));
        }
        m.state = MessageState::Pending;
        m.tries = 0;
        m.next_at = Some(now);
        w.put_message(&m)?;
        Ok(Some(m))
    }

    /// The loop: fan out, deliver what is due, record outcomes, prune; until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // Fanning out runs beside delivery, so a large fan-out never holds back an urgent
        // message already queued.
        let fan = tokio::spawn(self.clone().fan_out_loop(stop.clone()));
        let mut running: tokio::task::JoinSet<Done> = tokio::task::JoinSet::new();
        loop {
            self.start_due(&mut running);
            // Wait for an attempt to finish, a nudge, or the next poll.
            let poll = tokio::time::sleep(Duration::from_millis(200));
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = poll => {}
                Some(first) = running.join_next(), if !running.is_empty() => {
                    let mut done: Vec<Done> = first.into_iter().collect();
                    while let Some(more) = running.try_join_next() {
                        done.extend(more);
                    }
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.record(done)).await;
                }
            }
        }
        // Attempts in flight are abandoned: their messages stay pending and go out again on
        // the next start, under the same id.
        running.abort_all();
        let _ = fan.await;
    }

    /// Fans out new events as they come, and prunes hourly (by the daemon's clock).
    async fn fan_out_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut last_prune: Option<DateTime<Utc>> = None;
        while !stop.is_cancelled() {
            let me = self.clone();
            let more = match tokio::task::spawn_blocking(move || me.fan_out()).await {
                Ok(Ok(n)) => n > 0,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "fanning out events failed");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fanning out events stopped");
                    false
                }
            };
            if more {
                self.wake.notify_one();
            }
            let now = self.clock.now();
            if last_prune.is_none_or(|t| now - t >= chrono::Duration::hours(1)) {
                last_prune = Some(now);
                let me = self.clone();
                let _ = tokio::task::spawn_blocking(move || me.prune()).await;
            }
            if more {
                // A breath between batches: redb's writer lock is not fair, and recording
                // deliveries or queueing an urgent message must not wait out a long fan-out.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.fan_wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Starts attempts for due messages, within the per-endpoint and global limits.
    fn start_due(self: &Arc<Self>, running: &mut tokio::task::JoinSet<Done>) {
        if running.len() >= GLOBAL_IN_FLIGHT {
            return;
        }
        let now = self.clock.now();
        let endpoints: HashMap<u64, Endpoint> = match self.store.read(|r| r.endpoints()) {
            Ok(list) => list.into_iter().map(|e| (e.id, e)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading endpoints failed");
                return;
            }
        };
        let pace = Duration::from_millis(60_000 / u64::from(self.cfg.robot_per_minute.max(1)));
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let room = GLOBAL_IN_FLIGHT - running.len();
        let mut chosen = 0usize;
        let mut scanned = 0usize;
        let mut chosen_ids: Vec<(u64, u64)> = Vec::new();
        let limit_of = |e: &Endpoint| match e.kind {
            EndpointKind::Webhook => self.cfg.max_in_flight,
            _ => 1,
        };
        // Endpoints that can take one more now: once none can, the scan stops.
        let mut open = endpoints
            .values()
            .filter(|e| {
                gates.get(&e.id).is_none_or(|g| {
                    g.in_flight < limit_of(e) && g.next_send.is_none_or(|t| t <= Instant::now())
                })
            })
            .count();
        let clock = Instant::now();
        let picked = self.store.read(|r| {
            r.due_messages(now.timestamp_millis(), |id, endpoint| {
                scanned += 1;
                // Enough chosen, or far enough down a queue whose endpoints are all busy.
                if chosen >= room || open == 0 || scanned > 50_000 {
                    return std::ops::ControlFlow::Break(());
                }
                let Some(e) = endpoints.get(&endpoint) else {
                    return std::ops::ControlFlow::Continue(false);
                };
                if in_flight.contains(&id) {
                    return std::ops::ControlFlow::Continue(false);
                }
                let gate = gates.entry(endpoint).or_default();
                let limit = limit_of(e);
                if gate.in_flight >= limit || gate.next_send.is_some_and(|t| t > clock) {
                    return std::ops::ControlFlow::Continue(false);
                }
                if e.kind != EndpointKind::Webhook {
                    gate.next_send = Some(clock + pace);
                }
                gate.in_flight += 1;
                if gate.in_flight >= limit || e.kind != EndpointKind::Webhook {
                    open = open.saturating_sub(1);
                }
                in_flight.insert(id);
                chosen_ids.push((id, endpoint));
                chosen += 1;
                std::ops::ControlFlow::Continue(true)
            })
        });
        let picked = picked.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading due messages failed");
            Vec::new()
        });
        // Whatever was chosen but not read (an error, a message gone) is not in flight.
        for (id, endpoint) in chosen_ids {
            if !picked.iter().any(|m| m.id == id) {
                in_flight.remove(&id);
                if let Some(g) = gates.get_mut(&endpoint) {
                    g.in_flight = g.in_flight.saturating_sub(1);
                }
            }
        }
        for m in picked {
            let Some(e) = endpoints.get(&m.endpoint).cloned() else {
                continue;
            };
            let me = self.clone();
            running.spawn(async move { me.attempt(m, e).await });
        }
    }

    /// One attempt.
    async fn attempt(self: Arc<Self>, m: Message, e: Endpoint) -> Done {
        let now = self.clock.now();
        let started = Instant::now();
        let body = m.body.clone().unwrap_or_default();
        let (status, outcome, error) = match self.send(&m, &e, body, now).await {
            Ok(x) => x,
            Err(err) => (None, Outcome::Failed { not_before: None }, Some(err)),
        };
        Done {
            id: m.id,
            endpoint: e.id,
            attempt: Attempt {
                at: now,
                status,
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                error,
            },
            outcome,
        }
    }

    async fn send(
        &self,
        m: &Message,
        e: &Endpoint,
        body: String,
        now: DateTime<Utc>,
    ) -> Result<(Option<u16>, Outcome, Option<String>), String> {
        if !self.cfg.allow_private_addresses {
            check_url(e.kind, &e.url, &self.cfg)?;
        }
        let mut url = reqwest::Url::parse(&e.url).map_err(|x| x.to_string())?;
        let mut req = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        match e.kind {
            EndpointKind::Webhook => {
                let id = m.webhook_id();
                let ts = now.timestamp();
                let sig = sign::webhook_signature(e.live_secrets(now), &id, ts, body.as_bytes());
                req = req
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", sig);
            }
            EndpointKind::Dingtalk => {
                if let Some(secret) = e.live_secrets(now).next() {
                    let ms = now.timestamp_millis();
                    url.query_pairs_mut()
                        .append_pair("timestamp", &ms.to_string())
                        .append_pair("sign", &sign::dingtalk_sign(secret, ms));
                    req = self
                        .client
                        .post(url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json");
                }
            }
            EndpointKind::Wecom => {}
        }
        let resp = req.body(body).send().await.map_err(|x| {
            if x.is_timeout() {
                format!("no answer within {} s", self.cfg.timeout_secs)
            } else {
                format!("could not reach the receiver: {x}")
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        if status == 410 {
            return Ok((Some(status), Outcome::Gone, Some("410 Gone".into())));
        }
        if !(200..300).contains(&status) {
            let outcome = Outcome::Failed {
                not_before: retry_after,
            };
            return Ok((Some(status), outcome, Some(format!("HTTP {status}"))));
        }
        if e.kind == EndpointKind::Webhook {
            return Ok((Some(status), Outcome::Delivered, None));
        }
        // The robots answer 200 with their own code.
        let text = resp.text().await.unwrap_or_default();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let code = answer["errcode"].as_i64();
        let msg = answer["errmsg"].as_str().unwrap_or("").to_owned();
        Ok(match code {
            Some(0) => (Some(status), Outcome::Delivered, None),
            // WeCom 45009 and DingTalk 130101: too many messages; wait a minute.
            Some(45009 | 130101) => {
                self.metrics.throttled.fetch_add(1, Ordering::Relaxed);
                (
                    Some(status),
                    Outcome::Throttled {
                        until: now + chrono::Duration::seconds(60),
                    },
                    Some(format!(
                        "rate limited (errcode {}: {msg})",
                        code.unwrap_or(0)
                    )),
                )
            }
            Some(c) => (
                Some(status),
                Outcome::Failed { not_before: None },
                Some(format!("robot refused: errcode {c} {msg}")),
            ),
            None => (
                Some(status),
                Outcome::Failed { not_before: None },
                Some(format!(
                    "robot answered without an errcode: {}",
                    render::cap(text, 200)
                )),
            ),
        })
    }

    /// Writes finished attempts in one transaction.
    fn record(&self, done: Vec<Done>) {
        let now = self.clock.now();
        let mut rng = rand::rng();
        let result = self.store.write(|w| {
            for d in &done {
                let Some(mut m) = w.message(d.id)? else {
                    continue;
                };
                m.attempts.push(d.attempt.clone());
                if m.attempts.len() > LOG_KEPT {
                    m.attempts.remove(0);
                }
                m.last_error = d.attempt.error.clone();
                match &d.outcome {
                    Outcome::Delivered => {
                        m.state = MessageState::Delivered;
                        m.delivered_at = Some(now);
                        m.next_at = None;
                        self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Throttled { until } => {
                        m.next_at = Some(*until);
                    }
                    Outcome::Failed { not_before } => {
                        self.metrics.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        m.tries += 1;
                        match RETRY_SECS.get(m.tries as usize) {
                            Some(&secs) => {
                                // ±10% jitter, so a county's retries do not arrive together.
                                let jitter = rng.random_range(0.9..1.1);
                                #[allow(clippy::cast_possible_truncation)]
                                let ms = (secs as f64 * 1000.0 * jitter) as i64;
                                let mut at = now + chrono::Duration::milliseconds(ms);
                                if let Some(nb) = not_before {
                                    at = at.max((*nb).min(now + chrono::Duration::hours(24)));
                                }
                                m.next_at = Some(at);
                            }
                            None => {
                                m.state = MessageState::Dead;
                                m.next_at = None;
                                self.metrics.dead.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Outcome::Gone => {
                        m.state = MessageState::Dead;
                        m.next_at = None;
                        self.metrics.dead.fetch_add(1, Ordering::Relaxed);
                        if let Some(mut e) = w.endpoint(d.endpoint)?
                            && e.enabled
                        {
                            e.enabled = false;
                            e.disabled_reason = Some(format!(
                                "the receiver answered 410 Gone at {}",
                                now.to_rfc3339()
                            ));
                            e.updated_at = now;
                            w.put_endpoint(&e)?;
                        }
                    }
                }
                w.put_message(&m)?;
            }
            // An endpoint that went away takes its queue with it (dead, for replay).
            for d in done.iter().filter(|d| matches!(d.outcome, Outcome::Gone)) {
                let page = w.messages_of_endpoint(d.endpoint, u64::MAX, 10_000, |m| {
                    m.state == MessageState::Pending
                })?;
                for mut m in page.items {
                    m.state = MessageState::Dead;
                    m.next_at = None;
                    m.last_error = Some("the endpoint was disabled (410 Gone)".into());
                    w.put_message(&m)?;
                }
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording deliveries failed; they will be retried");
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        for d in &done {
            in_flight.remove(&d.id);
            if let Some(g) = gates.get_mut(&d.endpoint) {
                g.in_flight = g.in_flight.saturating_sub(1);
            }
        }
    }

    /// Drops delivered events and message bodies past the retention period.
    fn prune(&self) {
        let before = self.clock.now() - chrono::Duration::days(i64::from(self.cfg.retention_days));
        let result = self.store.write(|w| {
            let cursor = w.meta("notify_cursor")?.unwrap_or(0);
            let events = w.prune_events(cursor, before, 100_000)?;
            let bodies = w.prune_message_bodies(before, 100_000)?;
            Ok::<_, StoreError>((events, bodies))
        });
        match result {
            Ok((events, bodies)) if events + bodies > 0 => {
                tracing::info!(
                    events,
                    bodies,
                    "pruned delivered notifications past retention"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning notifications failed"),
        }
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as an instant.
fn retry_after(v: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(secs) = v.trim().parse::<i64>() {
        return Some(now + chrono::Duration::seconds(secs.clamp(0, 86_400)));
    }
    DateTime::parse_from_rfc2822(v.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "101.226.103.106", "2001:4860:4860::8888"] {
            assert!(!internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_by_kind() {
        let cfg = NotifyConfig::default();
        let ok = |k, u: &str| check_url(k, u, &cfg);
        assert!(
            ok(
                EndpointKind::Webhook,
                "https://it.county.gov.cn/hooks/linli"
            )
            .is_ok()
        );
        assert!(ok(EndpointKind::Webhook, "http://it.county.gov.cn/hooks").is_err());
        assert!(ok(EndpointKind::Webhook, "https://127.0.0.1/x").is_err());
        assert!(ok(EndpointKind::Webhook, "https://[::1]/x").is_err());
        assert!(ok(EndpointKind::Webhook, "https://localhost/x").is_err());
        assert!(ok(EndpointKind::Webhook, "https://user:pw@example.com/x").is_err());
        assert!(ok(EndpointKind::Webhook, "ftp://example.com/x").is_err());
        assert!(
            ok(
                EndpointKind::Wecom,
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"
            )
            .is_ok()
        );
        assert!(
            ok(
                EndpointKind::Wecom,
                "https://evil.example/cgi-bin/webhook/send?key=abc"
            )
            .is_err()
        );
        assert!(
            ok(
                EndpointKind::Wecom,
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
            )
            .is_err()
        );
        assert!(
            ok(
                EndpointKind::Dingtalk,
                "https://oapi.dingtalk.com/robot/send?access_token=abc"
            )
            .is_ok()
        );
        assert!(
            ok(
                EndpointKind::Dingtalk,
                "https://oapi.dingtalk.com.evil.example/robot/send?access_token=abc"
            )
            .is_err()
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after("120", now),
            Some(now + chrono::Duration::seconds(120))
        );
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 00:05:00 GMT", now),
            Some(now + chrono::Duration::seconds(300))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
