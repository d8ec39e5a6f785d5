//! Deployed plugins. Uploaded versions are kept in the store (the newest `keep_versions`, and
//! always the live one and the one before it); one version per plugin is live. A new version is
//! checked completely before it replaces anything, and calls already running keep the version
//! they started with (they hold an `Arc` of it), so a hot replacement loses no call. Compiled
//! artifacts are cached by component hash, so a restart or rollback compiles nothing.
//!
//! Start-up never waits on a plugin: `open` returns at once and a loader thread the catalog owns
//! brings each live version up; a call to a plugin still loading waits for it. Compiling and
//! `describe` run outside any lock that management of another plugin needs.
//!
//! A plugin whose calls keep faulting (3 in a row, or 5 of its last 10 judged calls) is
//! quarantined — it says why — until a new version is deployed or someone resumes it. Its own
//! polite errors and the host's "busy" are not faults and are not judged.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checks;
use super::host::LogLine;
use super::model::{
    Description, Occurrence, PlanOutput, ReviewOutcome, Target, TaskInfo, VisitReport,
};
use super::runtime::{CallError, Limits, LoadError, Loaded, Runtime};
use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

/// A deployed version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionRecord {
    pub version: String,
    pub sha256: String,
    pub size: usize,
    pub uploaded_at: DateTime<Utc>,
    /// The scope of the token that deployed it (`admin`, `bureau:…`, or `folder`).
    pub uploaded_by: String,
    pub description: Description,
}

/// Why a plugin is quarantined.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Quarantine {
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// A plugin as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginRecord {
    pub id: String,
    /// The bureau (region code) that owns it; `None` for plugins an administrator deployed.
    pub owner: Option<String>,
    pub active_version: String,
    pub versions: Vec<VersionRecord>,
    /// The plugin's configuration, passed to every call.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
    /// The version that was live before the current one: the rollback target, always kept.
    #[serde(default)]
    pub previous_version: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Per-plugin call metrics.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CallStats {
    pub calls: u64,
    /// Failures by kind: deadline, memory, trap, bad_output, instantiate.
    pub failures: BTreeMap<String, u64>,
    pub seconds_total: f64,
    /// Calls running now.
    pub in_flight: u32,
}

/// A plugin's state as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginStatus {
    pub id: String,
    /// `active`, `loading` (the daemon is starting), `quarantined`, or `unavailable` (its
    /// live version could not be loaded).
    pub status: String,
    /// Why it is quarantined or unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub active_version: String,
    pub description: Option<Description>,
    pub owner: Option<String>,
    pub versions: Vec<VersionRecord>,
    pub config: serde_json::Value,
    pub limits: Limits,
    pub stats: CallStats,
}

/// Who is deploying or changing a plugin.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Shown as `uploaded_by`.
    pub label: String,
    /// `None` for an administrator (or the plugin folder); a bureau's region code otherwise.
    pub bureau: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the plugin was refused: {0}")]
    Refused(#[from] LoadError),
    #[error("plugin {0} is not deployed")]
    NotFound(String),
    #[error("plugin {id} has no version {version}")]
    NoSuchVersion { id: String, version: String },
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "version {version} of {id} is already deployed with different content: give the new build a new version number"
    )]
    VersionConflict { id: String, version: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a deploy did.
#[derive(Debug)]
pub struct Deployed {
    pub status: PluginStatus,
    /// False when exactly this component (id, version and hash) was already stored: nothing
    /// changed, not even which version is live or a quarantine.
    pub changed: bool,
}

struct Live {
    loaded: Arc<Loaded>,
    config: String,
    limits: Limits,
}

/// Where an entry's live version stands.
enum State {
    /// The loader thread has not reached it yet.
    Loading,
    Live(Arc<Live>),
    /// Its live version could not be loaded; why.
    Unavailable(String),
}

/// Judged calls remembered per plugin for the quarantine rule.
const JUDGED: usize = 10;

struct Entry {
    state: State,
    /// Recent judged calls, newest last: true for a fault.
    recent: Mutex<VecDeque<bool>>,
    in_flight: AtomicU32,
    quarantine: Mutex<Option<Quarantine>>,
    stats: Mutex<CallStats>,
}

impl Entry {
    fn new(state: State, quarantine: Option<Quarantine>) -> Self {
        Entry {
            state,
            recent: Mutex::new(VecDeque::with_capacity(JUDGED)),
            in_flight: AtomicU32::new(0),
            quarantine: Mutex::new(quarantine),
            stats: Mutex::new(CallStats::default()),
        }
    }
}

impl Entry {
    /// The statistics with the calls running now.
    fn stats_now(&self) -> CallStats {
        let mut stats = lock(&self.stats).clone();
        stats.in_flight = self.in_flight.load(Ordering::SeqCst);
        stats
    }
}

/// Counts a call in flight on an entry.
struct Running<'a>(&'a AtomicU32);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The deployed plugins of one daemon.
pub struct Catalog {
    runtime: Arc<Runtime>,
    store: Store,
    clock: SharedClock,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// Signalled whenever the loader finishes an entry.
    loaded: (Mutex<()>, Condvar),
    /// The thread that loads the deployed plugins at start-up.
    loader: Mutex<Option<JoinHandle<()>>>,
    /// One lock per plugin id: two changes of one plugin cannot interleave, while changes of
    /// different plugins never wait for each other.
    changing: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops the oldest versions beyond `keep` (at least 2), never the live one or the rollback
/// target; returns what was dropped.
pub fn prune_versions(record: &mut PluginRecord, keep: usize) -> Vec<VersionRecord> {
    let keep = keep.max(2);
    let mut dropped = Vec::new();
    while record.versions.len() > keep {
        let protected = |v: &VersionRecord| {
            v.version == record.active_version
                || record.previous_version.as_deref() == Some(v.version.as_str())
        };
        let Some(i) = record.versions.iter().position(|v| !protected(v)) else {
            break;
        };
        dropped.push(record.versions.remove(i));
    }
    dropped
}

/// The quarantine rule over recent judged calls (newest last): the last three faulted, or half
/// of the last ten did.
fn should_quarantine(recent: &VecDeque<bool>) -> bool {
    let faults = recent.iter().filter(|f| **f).count();
    let last_three = recent.len() >= 3 && recent.iter().rev().take(3).all(|f| *f);
    last_three || faults * 2 >= JUDGED
}

impl Catalog {
    /// Opens the catalog without waiting for any plugin: every deployed plugin starts as
    /// `loading`, and a loader thread (owned by the catalog, stopped by `shutdown`) brings up
    /// each live version from its cached artifact, compiling only what is not cached. A version
    /// that no longer loads is marked unavailable, with the reason.
    pub fn open(
        runtime: Arc<Runtime>,
        store: Store,
        clock: SharedClock,
    ) -> Result<Arc<Catalog>, StoreError> {
        let records: Vec<PluginRecord> = store.read(|r| r.all_plugins())?;
        let entries = records
            .iter()
            .map(|rec| {
                (
                    rec.id.clone(),
                    Arc::new(Entry::new(State::Loading, rec.quarantine.clone())),
                )
            })
            .collect();
        let catalog = Arc::new(Catalog {
            runtime,
            store,
            clock,
            entries: RwLock::new(entries),
            loaded: (Mutex::new(()), Condvar::new()),
            loader: Mutex::new(None),
            changing: Mutex::new(HashMap::new()),
        });
        if !records.is_empty() {
            let weak = Arc::downgrade(&catalog);
            let ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
            let handle = std::thread::Builder::new()
                .name("linli-plugin-load".into())
                .spawn(move || {
                    for id in ids {
                        let Some(catalog) = weak.upgrade() else {
                            return;
                        };
                        catalog.load_at_start(&id);
                    }
                });
            match handle {
                Ok(h) => *lock(&catalog.loader) = Some(h),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the plugin loader; loading in line");
                    for id in catalog.ids() {
                        catalog.load_at_start(&id);
                    }
                }
            }
        }
        Ok(catalog)
    }

    fn ids(&self) -> Vec<String> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Brings one deployed plugin up at start-up (unless a deploy already replaced it).
    fn load_at_start(&self, id: &str) {
        let guard = self.change_lock(id);
        let _held = lock(&guard);
        let still_loading = self
            .entry(id)
            .is_some_and(|e| matches!(e.state, State::Loading));
        if still_loading {
            let state = match self.record(id) {
                Ok(rec) => match self.load_version(&rec, &rec.active_version) {
                    Ok(loaded) => State::Live(Arc::new(Live {
                        loaded,
                        config: rec.config.to_string(),
                        limits: rec.limits,
                    })),
                    Err(e) => {
                        tracing::error!(plugin = %id, error = %e, "deployed plugin no longer loads");
                        State::Unavailable(e.to_string())
                    }
                },
                Err(e) => State::Unavailable(e.to_string()),
            };
            self.replace_state(id, state, None);
        }
        let _g = lock(&self.loaded.0);
        self.loaded.1.notify_all();
    }

    /// Stops the loader and every plugin call and compile in flight; the daemon is stopping.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
        let loader = lock(&self.loader).take();
        if let Some(h) = loader {
            let _ = h.join();
        }
        let _g = lock(&self.loaded.0);
        self.loaded.1.notify_all();
    }

    fn change_lock(&self, id: &str) -> Arc<Mutex<()>> {
        lock(&self.changing)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Loads a stored version: from its cached artifact when there is one, else compiled (and
    /// then cached). The component must still describe itself as the id and version it was
    /// deployed as.
    fn load_version(&self, rec: &PluginRecord, version: &str) -> Result<Arc<Loaded>, CatalogError> {
        let stored = rec
            .versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| CatalogError::NoSuchVersion {
                id: rec.id.clone(),
                version: version.to_owned(),
            })?;
        let bytes = self
            .store
            .read(|r| r.plugin_wasm(&rec.id, version))?
            .ok_or_else(|| {
                CatalogError::Invalid(format!(
                    "the component of {} {version} is missing from the store",
                    rec.id
                ))
            })?;
        let loaded = self.load_bytes(&bytes, &stored.sha256, &rec.limits)?;
        let d = &loaded.description;
        if d.id != rec.id || d.version != version {
            return Err(CatalogError::Refused(LoadError::InvalidDescription(
                format!(
                    "it now describes itself as {} {}, but was deployed as {} {version}: a plugin's \
                 describe must always give the same id and version",
                    d.id, d.version, rec.id
                ),
            )));
        }
        Ok(Arc::new(loaded))
    }

    /// Compiles (or takes from the cache) and checks a component.
    fn load_bytes(
        &self,
        bytes: &[u8],
        sha256: &str,
        limits: &Limits,
    ) -> Result<Loaded, CatalogError> {
        let key = self.runtime.engine_key().to_owned();
        let cached = self.store.read(|r| r.plugin_compiled(sha256, &key))?;
        if let Some(artifact) = cached {
            match self.runtime.from_artifact(&artifact) {
                Ok(component) => {
                    return Ok(self.runtime.finish(
                        component,
                        sha256.to_owned(),
                        bytes.len(),
                        limits,
                    )?);
                }
                Err(e) => {
                    tracing::warn!(sha256, error = %e, "cached plugin artifact unusable; compiling again")
                }
            }
        }
        let compiled = self.runtime.compile(bytes)?;
        let loaded =
            self.runtime
                .finish(compiled.component, sha256.to_owned(), bytes.len(), limits)?;
        self.store
            .write(|w| w.put_plugin_compiled(sha256, &key, &compiled.artifact))?;
        Ok(loaded)
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The stored record of a plugin.
    pub fn record(&self, id: &str) -> Result<PluginRecord, CatalogError> {
        self.store
            .read(|r| r.plugin::<PluginRecord>(id))?
            .ok_or_else(|| CatalogError::NotFound(id.to_owned()))
    }

    fn may_change(actor: &Actor, owner: &Option<String>, id: &str) -> Result<(), CatalogError> {
        match (&actor.bureau, owner) {
            (None, _) => Ok(()),
            (Some(b), Some(o)) if b == o => Ok(()),
            _ => Err(CatalogError::Forbidden(format!(
                "plugin {id} belongs to {}; only its owner or an administrator may change it",
                owner
                    .as_deref()
                    .map_or("the administrators".to_owned(), |o| format!("bureau:{o}"))
            ))),
        }
    }

    /// Whether `actor` may see plugin `id` (bureaus see their own and the administrators').
    pub fn visible(actor_bureau: Option<&str>, record_owner: Option<&str>) -> bool {
        match (actor_bureau, record_owner) {
            (None, _) | (_, None) => true,
            (Some(b), Some(o)) => b == o,
        }
    }

    /// Checks and deploys a component; it becomes the live version of its plugin. Deploying
    /// exactly what is stored already (same id, version and hash) changes nothing.
    pub fn deploy(&self, bytes: &[u8], actor: &Actor) -> Result<Deployed, CatalogError> {
        let sha256 = Runtime::sha256(bytes);
        // Compile and describe before taking any lock: the id is not known until then.
        let loaded = self.load_bytes(bytes, &sha256, &Limits::default())?;
        let id = loaded.description.id.clone();
        let version = loaded.description.version.clone();
        let guard = self.change_lock(&id);
        let _held = lock(&guard);
        let existing = self.store.read(|r| r.plugin::<PluginRecord>(&id))?;
        if let Some(rec) = &existing {
            Self::may_change(actor, &rec.owner, &id)?;
            if let Some(v) = rec.versions.iter().find(|v| v.version == version) {
                if v.sha256 != sha256 {
                    return Err(CatalogError::VersionConflict { id, version });
                }
                return Ok(Deployed {
                    status: self.status(&id)?,
                    changed: false,
                });
            }
        }
        let now = self.clock.now();
        let version_record = VersionRecord {
            version: version.clone(),
            sha256: sha256.clone(),
            size: bytes.len(),
            uploaded_at: now,
            uploaded_by: actor.label.clone(),
            description: loaded.description.clone(),
        };
        let mut record = existing.unwrap_or_else(|| PluginRecord {
            id: id.clone(),
            owner: actor.bureau.clone(),
            active_version: version.clone(),
            versions: Vec::new(),
            config: empty_object(),
            limits: Limits::default(),
            quarantine: None,
            previous_version: None,
        });
        fits(&loaded.description, &record.config).map_err(|e| {
            CatalogError::Invalid(format!(
                "the plugin's configuration does not fit version {version}'s schema: {e}; set a configuration that does (PATCH /v1/plugins/{id}) before deploying it"
            ))
        })?;
        if !record.versions.is_empty() {
            record.previous_version = Some(record.active_version.clone());
        }
        record.versions.push(version_record);
        record.active_version = version.clone();
        record.quarantine = None;
        let pruned = prune_versions(&mut record, self.runtime.settings().keep_versions);
        self.store.write(|w| {
            w.put_plugin_wasm(&id, &version, bytes)?;
            for old in &pruned {
                w.delete_plugin_wasm(&id, &old.version)?;
                if !record.versions.iter().any(|v| v.sha256 == old.sha256) {
                    w.delete_plugin_compiled(&old.sha256)?;
                }
            }
            w.put_plugin(&id, &record)
        })?;
        let live = Live {
            loaded: Arc::new(loaded),
            config: record.config.to_string(),
            limits: record.limits,
        };
        self.replace_state(&id, State::Live(Arc::new(live)), Some(None));
        tracing::info!(plugin = %id, %version, by = %actor.label, pruned = pruned.len(), "plugin deployed");
        Ok(Deployed {
            status: self.status(&id)?,
            changed: true,
        })
    }

    /// Makes `state` the entry's; calls in flight keep their version. Statistics carry over.
    /// `reset` replaces the quarantine and forgets the judged calls (a new live version);
    /// without it both carry over.
    fn replace_state(&self, id: &str, state: State, reset: Option<Option<Quarantine>>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let old = entries.get(id).cloned();
        let quarantine = match (&reset, &old) {
            (Some(q), _) => q.clone(),
            (None, Some(e)) => lock(&e.quarantine).clone(),
            (None, None) => None,
        };
        let entry = Entry::new(state, quarantine);
        if let Some(old) = old {
            *lock(&entry.stats) = lock(&old.stats).clone();
            if reset.is_none() {
                *lock(&entry.recent) = lock(&old.recent).clone();
            }
        }
        entries.insert(id.to_owned(), Arc::new(entry));
    }

    /// Makes an earlier version live again (from its cached artifact when there is one).
    pub fn rollback(
        &self,
        id: &str,
        version: &str,
        actor: &Actor,
    ) -> Result<PluginStatus, CatalogError> {
        let guard = self.change_lock(id);
        let _held = lock(&guard);
        let mut record = self.record(id)?;
        Self::may_change(actor, &record.owner, id)?;
        let loaded = self.load_version(&record, version)?;
        fits(&loaded.description, &record.config).map_err(|e| {
            CatalogError::Invalid(format!(
                "the plugin's configuration does not fit version {version}'s schema: {e}; change it first"
            ))
        })?;
        if record.active_version != version {
            record.previous_version = Some(record.active_version.clone());
        }
        record.active_version = version.to_owned();
        record.quarantine = None;
        self.store.write(|w| w.put_plugin(id, &record))?;
        let live = Live {
            loaded,
            config: record.config.to_string(),
            limits: record.limits,
        };
        self.replace_state(id, State::Live(Arc::new(live)), Some(None));
        tracing::info!(plugin = %id, %version, by = %actor.label, "plugin rolled back");
        self.status(id)
    }

    /// Replaces the plugin's configuration and limits (either may be left as is). Nothing is
    /// compiled: the live version stays, with the new settings.
    pub fn configure(
        &self,
        id: &str,
        config: Option<serde_json::Value>,
        limits: Option<Limits>,
        actor: &Actor,
    ) -> Result<PluginStatus, CatalogError> {
        let guard = self.change_lock(id);
        let _held = lock(&guard);
        let mut record = self.record(id)?;
        Self::may_change(actor, &record.owner, id)?;
        if let Some(c) = config {
            if !c.is_object() {
                return Err(CatalogError::Invalid("config must be a JSON object".into()));
            }
            if c.to_string().len() > 256 * 1024 {
                return Err(CatalogError::Invalid(
                    "config is larger than 256 KiB".into(),
                ));
            }
            if let Some(v) = record
                .versions
                .iter()
                .find(|v| v.version == record.active_version)
            {
                fits(&v.description, &c).map_err(CatalogError::Invalid)?;
            }
            record.config = c;
        }
        if let Some(l) = limits {
            if !(10..=60_000).contains(&l.deadline_ms)
                || !((1 << 20)..=(256 << 20)).contains(&l.memory_bytes)
                || !(1..=1000).contains(&l.drafts_per_target)
                || !(1024..=(256 << 20)).contains(&l.output_bytes)
            {
                return Err(CatalogError::Invalid(
                    "limits: deadline_ms must be 10..60000, memory_bytes 1 MiB..256 MiB, \
                     drafts_per_target 1..1000 and output_bytes 1 KiB..256 MiB"
                        .into(),
                ));
            }
            record.limits = l;
        }
        let loaded = match self.entry(id).map(|e| match &e.state {
            State::Live(live) => Some(live.loaded.clone()),
            _ => None,
        }) {
            Some(Some(loaded)) => loaded,
            _ => self.load_version(&record, &record.active_version.clone())?,
        };
        self.store.write(|w| w.put_plugin(id, &record))?;
        self.replace_state(
            id,
            State::Live(Arc::new(Live {
                loaded,
                config: record.config.to_string(),
                limits: record.limits,
            })),
            None,
        );
        self.status(id)
    }

    /// Lifts a quarantine.
    pub fn resume(&self, id: &str, actor: &Actor) -> Result<PluginStatus, CatalogError> {
        let mut record = self.record(id)?;
        Self::may_change(actor, &record.owner, id)?;
        record.quarantine = None;
        self.store.write(|w| w.put_plugin(id, &record))?;
        if let Some(e) = self.entry(id) {
            *lock(&e.quarantine) = None;
            lock(&e.recent).clear();
        }
        self.status(id)
    }

    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The live version of `id`, waiting while the loader has not reached it yet.
    fn live(&self, id: &str) -> Result<(Arc<Entry>, Arc<Live>), CallError> {
        let patience = self.patience();
        let mut waited = Duration::ZERO;
        loop {
            let entry = self
                .entry(id)
                .ok_or_else(|| CallError::Quarantined(format!("plugin {id} is not deployed")))?;
            if let Some(q) = lock(&entry.quarantine).as_ref() {
                return Err(CallError::Quarantined(q.reason.clone()));
            }
            match &entry.state {
                State::Live(live) => return Ok((entry.clone(), live.clone())),
                State::Unavailable(why) => return Err(CallError::Quarantined(why.clone())),
                State::Loading if waited >= patience => {
                    return Err(CallError::Busy(format!("plugin {id} is still loading")));
                }
                State::Loading => waited += self.wait_for_loader(),
            }
        }
    }

    /// Runs `f` on the live version, counting the outcome towards metrics and quarantine.
    fn with_live<R>(
        &self,
        id: &str,
        f: impl FnOnce(&Runtime, &Live) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        let (entry, live) = self.live(id)?;
        let cap = self.runtime.settings().max_concurrent_calls;
        if entry.in_flight.fetch_add(1, Ordering::SeqCst) >= cap {
            entry.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(CallError::Busy(format!(
                "plugin {id} already has {cap} calls running (plugins.max_concurrent_calls)"
            )));
        }
        let running = Running(&entry.in_flight);
        let (result, took) = super::runtime::timed(|| f(&self.runtime, &live));
        drop(running);
        self.count(id, &entry, &result, took);
        result
    }

    fn count<R>(&self, id: &str, entry: &Entry, result: &Result<R, CallError>, took: Duration) {
        {
            let mut stats = lock(&entry.stats);
            stats.calls += 1;
            stats.seconds_total += took.as_secs_f64();
            if let Some(kind) = result.as_ref().err().and_then(CallError::kind) {
                *stats.failures.entry(kind.to_owned()).or_default() += 1;
            }
        }
        let fault = match result {
            Ok(_) => false,
            Err(e) if e.kind().is_some() => true,
            // Polite errors, busy and shutdown say nothing of the plugin's health.
            Err(_) => return,
        };
        let quarantine = {
            let mut recent = lock(&entry.recent);
            if recent.len() == JUDGED {
                recent.pop_front();
            }
            recent.push_back(fault);
            fault && should_quarantine(&recent)
        };
        let Err(err) = result else { return };
        tracing::warn!(plugin = %id, error = %err, "plugin call failed");
        if !quarantine {
            return;
        }
        let faults = lock(&entry.recent).iter().filter(|f| **f).count();
        let q = Quarantine {
            reason: checks::cap_text(
                format!("{faults} of its last calls failed; the last: {err}"),
                checks::MAX_ERROR_TEXT,
            ),
            since: self.clock.now(),
        };
        tracing::error!(plugin = %id, reason = %q.reason, "plugin quarantined");
        *lock(&entry.quarantine) = Some(q.clone());
        let persisted = self.store.write(|w| {
            if let Some(mut rec) = w.plugin::<PluginRecord>(id)? {
                rec.quarantine = Some(q);
                w.put_plugin(id, &rec)?;
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) = persisted {
            tracing::error!(plugin = %id, error = %e, "could not record the quarantine");
        }
    }

    /// Plans with the live version of `id`. Blocking: call from a blocking thread.
    pub fn plan(
        &self,
        id: &str,
        occurrence: &Occurrence,
        targets: &[Target],
    ) -> Result<(PlanOutput, Vec<LogLine>), CallError> {
        self.with_live(id, |rt, live| {
            rt.plan(
                &live.loaded,
                &live.config,
                &live.limits,
                occurrence,
                targets,
            )
        })
    }

    /// Reviews with the live version of `id`. Blocking.
    pub fn review(
        &self,
        id: &str,
        task: &TaskInfo,
        report: &VisitReport,
    ) -> Result<(ReviewOutcome, Vec<LogLine>), CallError> {
        self.with_live(id, |rt, live| {
            rt.review(&live.loaded, &live.config, &live.limits, task, report)
        })
    }

    /// The description of the live version (waiting while it is still loading).
    pub fn description(&self, id: &str) -> Option<Description> {
        let patience = self.patience();
        let mut waited = Duration::ZERO;
        loop {
            match &self.entry(id)?.state {
                State::Live(l) => return Some(l.loaded.description.clone()),
                State::Loading if waited < patience => waited += self.wait_for_loader(),
                _ => return None,
            }
        }
    }

    /// The longest a load can take: a compile and a describe.
    fn patience(&self) -> Duration {
        Duration::from_secs(self.runtime.settings().compile_timeout_secs + 120)
    }

    /// Waits (a short while) for the loader to finish another entry; returns how long it waited
    /// at most.
    fn wait_for_loader(&self) -> Duration {
        let step = Duration::from_millis(200);
        let g = lock(&self.loaded.0);
        let _ = self.loaded.1.wait_timeout(g, step);
        step
    }

    pub fn status(&self, id: &str) -> Result<PluginStatus, CatalogError> {
        let record = self.record(id)?;
        Ok(self.status_of(record))
    }

    fn status_of(&self, record: PluginRecord) -> PluginStatus {
        let entry = self.entry(&record.id);
        let quarantine = entry.as_ref().and_then(|e| lock(&e.quarantine).clone());
        let (status, reason, description) = match (&quarantine, entry.as_ref().map(|e| &e.state)) {
            (Some(q), state) => (
                "quarantined",
                Some(q.reason.clone()),
                match state {
                    Some(State::Live(l)) => Some(l.loaded.description.clone()),
                    _ => None,
                },
            ),
            (None, Some(State::Live(l))) => ("active", None, Some(l.loaded.description.clone())),
            (None, Some(State::Unavailable(why))) => ("unavailable", Some(why.clone()), None),
            (None, Some(State::Loading) | None) => ("loading", None, None),
        };
        PluginStatus {
            id: record.id.clone(),
            status: status.to_owned(),
            reason,
            description,
            stats: entry.map(|e| e.stats_now()).unwrap_or_default(),
            active_version: record.active_version,
            owner: record.owner,
            versions: record.versions,
            config: record.config,
            limits: record.limits,
        }
    }

    /// Every plugin `bureau` may see (all of them for `None`).
    pub fn list(&self, bureau: Option<&str>) -> Result<Vec<PluginStatus>, CatalogError> {
        let records: Vec<PluginRecord> = self.store.read(|r| r.all_plugins())?;
        Ok(records
            .into_iter()
            .filter(|r| Self::visible(bureau, r.owner.as_deref()))
            .map(|r| self.status_of(r))
            .collect())
    }

    /// Per-plugin metrics for `/metrics`: (plugin, stats).
    pub fn stats(&self) -> Vec<(String, CallStats)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, CallStats)> = entries
            .iter()
            .map(|(id, e)| (id.clone(), e.stats_now()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
/// Whether a configuration fits the schema a version declares (interface 0.2): the error
/// names the field. An empty configuration is what a plugin gets before anyone sets one, so it
/// is not held against a version (`linlid plugin check` reports whether it fits).
pub fn fits(d: &Description, config: &serde_json::Value) -> Result<(), String> {
    let Some(schema) = &d.config_schema else {
        return Ok(());
    };
    if config.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(());
    }
    super::schema::validate(schema, config)
}
