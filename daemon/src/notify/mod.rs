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
/// Rate-limit answers in a row a message bears before it is given up.
const MAX_THROTTLES: u32 = 100;
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
                || o[0] >= 240
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48) addresses
            // reach IPv4 hosts: judge the IPv4 address.
            let embedded = || {
                let o = v6.octets();
                IpAddr::V4(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            };
            if s[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                return internal(embedded());
            }
            if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
                return internal(embedded()) || s[2] == 1;
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
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
/// news of an urgent task that needs someone (made, unstaffed, declined, let expire), or an
/// urgent follow-up of a visit.
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
        || matches!(
            &event.data,
            Some(EventData::Review {
                severity: Some(crate::task::Severity::Urgent),
                ..
            })
        )
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
        throttles: 0,
        attempts: Vec::new(),
        next_at: Some(now),
        delivered_at: None,
        last_error: None,
        created_at: now,
        webhook_id: String::new(),
        body: Some(body),
    }
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    /// The receiver says the endpoint is gone or misconfigured (410, a robot's invalid key):
    /// the endpoint is disabled with this reason.
    Refused {
        reason: String,
    },
    /// Try again later (at the schedule's next step, or not before `at`).
    Failed {
        not_before: Option<DateTime<Utc>>,
    },
    /// The robot's rate limit: the endpoint waits, and the attempt does not count.
    Throttled {
        pause: Duration,
    },
}

struct Done {
    id: u64,
    endpoint: u64,
    attempt: Attempt,
    outcome: Outcome,
}

/// Attempts running, and which message and endpoint each task holds.
struct Running {
    set: tokio::task::JoinSet<Done>,
    tasks: HashMap<tokio::task::Id, (u64, u64)>,
}

/// Per endpoint: attempts in flight, and when a robot may next be sent to.
#[derive(Default)]
struct Gate {
    in_flight: u32,
    /// Pacing of a robot (real time).
    next_send: Option<Instant>,
    /// A rate limit's pause, or a failed write's (the daemon's clock).
    paused_until: Option<DateTime<Utc>>,
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
    /// When each endpoint was last sent a test message.
    tests: Mutex<HashMap<u64, Instant>>,
    /// This process's random prefix for the `webhook-id`s of the messages it makes (each
    /// message keeps its id for good): ids never repeat for a receiver, even after the
    /// database is restored from a backup and message numbers run again.
    prefix: String,
}

impl Notifier {
    pub fn new(store: Store, clock: SharedClock, cfg: NotifyConfig) -> Result<Arc<Self>, String> {
        // One TLS provider for the process (ring); a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.min(10)))
            .redirect(reqwest::redirect::Policy::none())
            // No proxy from the environment: a proxy would resolve names itself, past the
            // guard against internal addresses.
            .no_proxy()
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
            tests: Mutex::new(HashMap::new()),
            prefix: format!("{:08x}_", rand::rng().random::<u32>()),
        }))
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.cfg
    }

    /// Whether `endpoint` may have a test message now (one every 10 seconds); notes it if so.
    pub fn may_test(&self, endpoint: u64) -> bool {
        let mut tests = self.tests.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if tests
            .get(&endpoint)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(10))
        {
            return false;
        }
        tests.insert(endpoint, now);
        true
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
            let install = &self.prefix;
            if !endpoints.is_empty() {
                let stations: HashMap<u64, Station> =
                    w.all_stations()?.into_iter().map(|s| (s.id, s)).collect();
                for event in &events {
                    for endpoint in &endpoints {
                        // An endpoint hears of what happened after it was made.
                        if event.at < endpoint.created_at {
                            continue;
                        }
                        let Some(data) = route(endpoint, event, &stations) else {
                            continue;
                        };
                        let mut scoped = event.clone();
                        if let Some(EventData::Tasks { communities, .. }) = &data {
                            // The digest's summary counts only what this endpoint is told of.
                            let n: usize = communities.iter().map(|c| c.tasks.len()).sum();
                            scoped.detail = format!("{n} new tasks");
                        }
                        scoped.data = data;
                        // One event that cannot be rendered (a record that no longer reads)
                        // is logged and passed over; it does not hold up the rest.
                        let body = match body_for(w, endpoint, &scoped, base.as_deref()) {
                            Ok(b) => b,
                            Err(e) => {
                                tracing::warn!(event = event.seq, endpoint = endpoint.id, error = %e, "an event could not be rendered; skipped");
                                continue;
                            }
                        };
                        let id = w.reserve_ids("message", 1)?;
                        let mut m = message(id, endpoint, &scoped, body, now);
                        m.webhook_id = format!("msg_{install}{id}");
                        w.put_message(&m)?;
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
            let mut m = message(id, &e, &event, body, now);
            m.webhook_id = format!("msg_{}{id}", self.prefix);
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
        let mut running = Running {
            set: tokio::task::JoinSet::new(),
            tasks: HashMap::new(),
        };
        loop {
            self.start_due(&mut running);
            // Wait for an attempt to finish, a nudge, or the next poll.
            let poll = tokio::time::sleep(Duration::from_millis(200));
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = poll => {}
                Some(first) = running.set.join_next_with_id(), if !running.set.is_empty() => {
                    let mut done: Vec<Done> = Vec::new();
                    let mut finished = Some(first);
                    while let Some(result) = finished.take() {
                        match result {
                            Ok((task, d)) => {
                                running.tasks.remove(&task);
                                done.push(d);
                            }
                            Err(e) => {
                                // An attempt that panicked or was cancelled: its message stays
                                // pending and its endpoint gets its slot back.
                                if let Some((id, endpoint)) = running.tasks.remove(&e.id()) {
                                    tracing::warn!(message = id, endpoint, error = %e, "a delivery attempt ended abnormally");
                                    self.release(id, endpoint);
                                }
                            }
                        }
                        finished = running.set.try_join_next_with_id();
                    }
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.record(done)).await;
                }
            }
        }
        // Attempts in flight are abandoned: their messages stay pending and go out again on
        // the next start, under the same id.
        running.set.abort_all();
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

    /// Starts attempts for due messages: each enabled endpoint with room takes its own next
    /// messages (urgent first), so no endpoint's backlog holds back another's.
    fn start_due(self: &Arc<Self>, running: &mut Running) {
        if running.set.len() >= GLOBAL_IN_FLIGHT {
            return;
        }
        let now = self.clock.now();
        let clock = Instant::now();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let picked = self.store.read(|r| {
            let mut out: Vec<(Message, Endpoint)> = Vec::new();
            for e in r.endpoints()? {
                if !e.enabled {
                    continue;
                }
                let gate = gates.entry(e.id).or_default();
                let limit = match e.kind {
                    EndpointKind::Webhook => self.cfg.max_in_flight,
                    _ => 1,
                };
                if gate.in_flight >= limit
                    || gate.next_send.is_some_and(|t| t > clock)
                    || gate.paused_until.is_some_and(|t| t > now)
                {
                    continue;
                }
                let room = (limit - gate.in_flight) as usize;
                let room = room.min(GLOBAL_IN_FLIGHT.saturating_sub(running.set.len() + out.len()));
                for m in r.due_for_endpoint(e.id, now.timestamp_millis(), room, |id| {
                    in_flight.contains(&id)
                })? {
                    out.push((m, e.clone()));
                }
            }
            Ok::<_, StoreError>(out)
        });
        let picked = picked.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading due messages failed");
            Vec::new()
        });
        let pace = Duration::from_millis(60_000 / u64::from(self.cfg.robot_per_minute.max(1)));
        for (m, e) in picked {
            let gate = gates.entry(e.id).or_default();
            gate.in_flight += 1;
            if e.kind != EndpointKind::Webhook {
                gate.next_send = Some(clock + pace);
            }
            in_flight.insert(m.id);
            let (id, endpoint) = (m.id, e.id);
            let me = self.clone();
            let handle = running.set.spawn(async move { me.attempt(m, e).await });
            running.tasks.insert(handle.id(), (id, endpoint));
        }
    }

    /// Releases what an attempt held (its message and its endpoint's slot).
    fn release(&self, id: u64, endpoint: u64) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(g) = self
            .gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&endpoint)
        {
            g.in_flight = g.in_flight.saturating_sub(1);
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
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        match e.kind {
            EndpointKind::Webhook => {
                let id = m.webhook_id();
                let ts = now.timestamp();
                let sig = sign::webhook_signature(e.live_secrets(now), &id, ts, body.as_bytes());
                if sig.is_empty() {
                    return Err("the endpoint has no usable secret: rotate it".into());
                }
                for (k, v) in [
                    ("webhook-id", id),
                    ("webhook-timestamp", ts.to_string()),
                    ("webhook-signature", sig),
                ] {
                    let v =
                        reqwest::header::HeaderValue::from_str(&v).map_err(|x| x.to_string())?;
                    headers.insert(k, v);
                }
            }
            EndpointKind::Dingtalk => {
                if let Some(secret) = e.live_secrets(now).next() {
                    let ms = now.timestamp_millis();
                    // A pasted address may carry an old signature: ours replaces it.
                    let kept: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != "timestamp" && k != "sign")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    url.query_pairs_mut()
                        .clear()
                        .extend_pairs(kept)
                        .append_pair("timestamp", &ms.to_string())
                        .append_pair("sign", &sign::dingtalk_sign(secret, ms));
                }
            }
            EndpointKind::Wecom => {}
        }
        let resp = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|x| describe(&x, self.cfg.timeout_secs))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        // Read what came back (a little of it): the connection can then be reused.
        let text = read_some(resp, 64 * 1024).await;
        if status == 410 {
            let reason = format!("the receiver answered 410 Gone at {}", now.to_rfc3339());
            return Ok((
                Some(status),
                Outcome::Refused { reason },
                Some("410 Gone".into()),
            ));
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
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let code = answer["errcode"].as_i64();
        let msg = render::cap(answer["errmsg"].as_str().unwrap_or("").to_owned(), 200);
        Ok(match code {
            Some(0) => (Some(status), Outcome::Delivered, None),
            // Too many messages: WeCom 45009 (wait a minute), DingTalk 130101 (it blocks the
            // robot for ten).
            Some(c @ (45009 | 130101)) => {
                self.metrics.throttled.fetch_add(1, Ordering::Relaxed);
                let pause = if c == 130101 { 600 } else { 60 };
                (
                    Some(status),
                    Outcome::Throttled {
                        pause: Duration::from_secs(pause),
                    },
                    Some(format!("rate limited (errcode {c}: {msg})")),
                )
            }
            // The robot is gone or refuses us for good: WeCom 93000 (invalid key), DingTalk
            // 300001 (no such token) and 310000 (signature, keyword or address refused).
            Some(c @ (93000 | 300001 | 310000)) => (
                Some(status),
                Outcome::Refused {
                    reason: format!(
                        "the robot refused the messages (errcode {c}: {msg}) at {}; check its address and security settings, then enable it again",
                        now.to_rfc3339()
                    ),
                },
                Some(format!("robot refused: errcode {c} {msg}")),
            ),
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
        let mut pauses: Vec<(u64, Duration)> = Vec::new();
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
                let enabled = w.endpoint(d.endpoint)?.is_some_and(|e| e.enabled);
                match &d.outcome {
                    Outcome::Delivered => {
                        m.state = MessageState::Delivered;
                        m.delivered_at = Some(now);
                        m.next_at = None;
                        self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    // Disabled meanwhile: nothing more goes there.
                    _ if !enabled => {
                        m.state = MessageState::Dead;
                        m.next_at = None;
                        self.metrics.dead.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Throttled { pause } => {
                        // The whole endpoint waits, not just this message; a throttle is not
                        // a failed attempt, but only so many in a row are borne.
                        m.throttles += 1;
                        if m.throttles > MAX_THROTTLES {
                            m.state = MessageState::Dead;
                            m.next_at = None;
                            m.last_error = Some(format!(
                                "rate limited {MAX_THROTTLES} times in a row; given up"
                            ));
                            self.metrics.dead.fetch_add(1, Ordering::Relaxed);
                        } else {
                            m.next_at = Some(
                                now + chrono::Duration::from_std(*pause)
                                    .unwrap_or(chrono::Duration::minutes(1)),
                            );
                        }
                        pauses.push((d.endpoint, *pause));
                    }
                    Outcome::Failed { not_before } => {
                        self.metrics.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        m.tries += 1;
                        m.throttles = 0;
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
                    Outcome::Refused { reason } => {
                        m.state = MessageState::Dead;
                        m.next_at = None;
                        self.metrics.dead.fetch_add(1, Ordering::Relaxed);
                        w.put_message(&m)?;
                        disable(w, d.endpoint, reason, now)?;
                        continue;
                    }
                }
                w.put_message(&m)?;
            }
            Ok::<_, StoreError>(())
        });
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording deliveries failed; they will be retried in a minute");
            // Not at once: the store may be full, and the receivers should not pay for it.
            for d in &done {
                gates.entry(d.endpoint).or_default().paused_until =
                    Some(now + chrono::Duration::seconds(60));
            }
        }
        for (endpoint, pause) in pauses {
            gates.entry(endpoint).or_default().paused_until = Some(
                now + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::minutes(1)),
            );
        }
        drop(gates);
        for d in &done {
            self.release(d.id, d.endpoint);
        }
    }

    /// Past their retention: delivered events and message bodies (`retention_days`), and
    /// whole messages with their logs (`log_retention_days`). In small transactions, so the
    /// writer is never held long.
    fn prune(&self) {
        let now = self.clock.now();
        let bodies = now - chrono::Duration::days(i64::from(self.cfg.retention_days));
        let rows = now - chrono::Duration::days(i64::from(self.cfg.log_retention_days));
        let (mut events, mut dropped, mut removed) = (0, 0, 0);
        for _ in 0..1000 {
            let step = self.store.write(|w| {
                let cursor = w.meta("notify_cursor")?.unwrap_or(0);
                let e = w.prune_events(cursor, bodies, 2_000)?;
                let (b, r) = w.prune_messages(bodies, rows, 2_000)?;
                Ok::<_, StoreError>((e, b, r))
            });
            match step {
                Ok((e, b, r)) => {
                    events += e;
                    dropped += b;
                    removed += r;
                    if e + b + r == 0 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning notifications failed");
                    break;
                }
            }
        }
        if events + dropped + removed > 0 {
            tracing::info!(
                events,
                bodies = dropped,
                messages = removed,
                "pruned notifications past retention"
            );
        }
    }
}

/// Disables an endpoint, saying why, and gives up its pending messages (kept, for replay once
/// it is enabled again).
pub fn disable(
    w: &mut WriteTx,
    endpoint: u64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(mut e) = w.endpoint(endpoint)?
        && e.enabled
    {
        e.enabled = false;
        e.disabled_reason = Some(reason.to_owned());
        e.updated_at = now;
        w.put_endpoint(&e)?;
    }
    for id in w.pending_of_endpoint(endpoint)? {
        if let Some(mut m) = w.message(id)? {
            m.state = MessageState::Dead;
            m.next_at = None;
            m.last_error = Some(format!("the endpoint was disabled: {reason}"));
            w.put_message(&m)?;
        }
    }
    Ok(())
}

/// Why a request failed, without its URL (a robot's key is in it) but with the causes.
fn describe(e: &reqwest::Error, timeout_secs: u64) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout_secs} s");
    }
    let mut text = String::from("could not reach the receiver");
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    // Whatever a cause says, no query string (a key) goes in the log.
    match text.find('?') {
        Some(i) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Up to `max` bytes of a reply's body, as text.
async fn read_some(mut resp: reqwest::Response, max: usize) -> String {
    let mut out: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        for ip in [
            "8.8.8.8",
            "101.226.103.106",
            "2001:4860:4860::8888",
            "64:ff9b::8.8.8.8",
        ] {
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
