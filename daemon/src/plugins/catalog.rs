//! Deployed plugins. Every uploaded version is kept in the store; one version per plugin is
//! live. A new version is checked completely before it replaces anything, and calls already
//! running keep the version they started with (they hold an `Arc` of it), so a hot
//! replacement loses no call. A plugin that fails `quarantine_after` calls in a row is
//! quarantined — it says why — until a new version is deployed or someone resumes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
}

/// A plugin's state as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginStatus {
    pub id: String,
    /// `active`, `quarantined`, or `unavailable` (its live version could not be loaded).
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

struct Live {
    loaded: Loaded,
    config: String,
    limits: Limits,
}

struct Entry {
    live: Option<Arc<Live>>,
    /// Why the live version could not be loaded at start-up.
    unavailable: Option<String>,
    failures_in_a_row: AtomicU32,
    quarantine: Mutex<Option<Quarantine>>,
    stats: Mutex<CallStats>,
}

impl Entry {
    fn new(
        live: Option<Live>,
        unavailable: Option<String>,
        quarantine: Option<Quarantine>,
    ) -> Self {
        Entry {
            live: live.map(Arc::new),
            unavailable,
            failures_in_a_row: AtomicU32::new(0),
            quarantine: Mutex::new(quarantine),
            stats: Mutex::new(CallStats::default()),
        }
    }
}

/// The deployed plugins of one daemon.
pub struct Catalog {
    runtime: Arc<Runtime>,
    store: Store,
    clock: SharedClock,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// Serialises deployments so two uploads of one plugin cannot interleave.
    deploying: Mutex<()>,
    quarantine_after: u32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Catalog {
    /// Loads every deployed plugin's live version. A version that no longer loads is marked
    /// unavailable (with the reason) rather than stopping the daemon.
    pub fn open(
        runtime: Arc<Runtime>,
        store: Store,
        clock: SharedClock,
    ) -> Result<Catalog, StoreError> {
        let records: Vec<PluginRecord> = store.read(|r| r.all_plugins())?;
        let mut entries = HashMap::new();
        for rec in records {
            let bytes = store.read(|r| r.plugin_wasm(&rec.id, &rec.active_version))?;
            let entry = match bytes.map(|b| runtime.load(&b, &rec.limits)) {
                Some(Ok(loaded)) => Entry::new(
                    Some(Live {
                        loaded,
                        config: rec.config.to_string(),
                        limits: rec.limits,
                    }),
                    None,
                    rec.quarantine.clone(),
                ),
                Some(Err(e)) => {
                    tracing::error!(plugin = %rec.id, error = %e, "deployed plugin no longer loads");
                    Entry::new(None, Some(e.to_string()), rec.quarantine.clone())
                }
                None => Entry::new(
                    None,
                    Some("its component is missing from the store".into()),
                    None,
                ),
            };
            entries.insert(rec.id.clone(), Arc::new(entry));
        }
        Ok(Catalog {
            runtime,
            store,
            clock,
            entries: RwLock::new(entries),
            deploying: Mutex::new(()),
            quarantine_after: 3,
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn record(&self, id: &str) -> Result<PluginRecord, CatalogError> {
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

    /// Checks and deploys a component; it becomes the live version of its plugin.
    pub fn deploy(&self, bytes: &[u8], actor: &Actor) -> Result<PluginStatus, CatalogError> {
        let _guard = lock(&self.deploying);
        let limits_of = |id: &str| -> Result<Option<PluginRecord>, CatalogError> {
            Ok(self.store.read(|r| r.plugin::<PluginRecord>(id))?)
        };
        // Check with default limits first, so the id is known; then honour stored limits.
        let loaded = self.runtime.load(bytes, &Limits::default())?;
        let id = loaded.description.id.clone();
        let version = loaded.description.version.clone();
        let existing = limits_of(&id)?;
        if let Some(rec) = &existing {
            Self::may_change(actor, &rec.owner, &id)?;
            if rec
                .versions
                .iter()
                .any(|v| v.version == version && v.sha256 != loaded.sha256)
            {
                return Err(CatalogError::VersionConflict { id, version });
            }
        }
        let now = self.clock.now();
        let version_record = VersionRecord {
            version: version.clone(),
            sha256: loaded.sha256.clone(),
            size: loaded.size,
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
        });
        if !record.versions.iter().any(|v| v.version == version) {
            record.versions.push(version_record);
        }
        record.active_version = version.clone();
        record.quarantine = None;
        self.store.write(|w| {
            w.put_plugin_wasm(&id, &version, bytes)?;
            w.put_plugin(&id, &record)
        })?;
        let live = Live {
            loaded,
            config: record.config.to_string(),
            limits: record.limits,
        };
        self.swap(&id, live, None);
        tracing::info!(plugin = %id, %version, by = %actor.label, "plugin deployed");
        self.status(&id)
    }

    /// Makes `live` the live version; calls in flight keep theirs.
    fn swap(&self, id: &str, live: Live, quarantine: Option<Quarantine>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let stats = entries
            .get(id)
            .map(|e| lock(&e.stats).clone())
            .unwrap_or_default();
        let entry = Entry::new(Some(live), None, quarantine);
        *lock(&entry.stats) = stats;
        entries.insert(id.to_owned(), Arc::new(entry));
    }

    /// Makes an earlier version live again.
    pub fn rollback(
        &self,
        id: &str,
        version: &str,
        actor: &Actor,
    ) -> Result<PluginStatus, CatalogError> {
        let _guard = lock(&self.deploying);
        let mut record = self.record(id)?;
        Self::may_change(actor, &record.owner, id)?;
        let bytes = self
            .store
            .read(|r| r.plugin_wasm(id, version))?
            .filter(|_| record.versions.iter().any(|v| v.version == version))
            .ok_or_else(|| CatalogError::NoSuchVersion {
                id: id.to_owned(),
                version: version.to_owned(),
            })?;
        let loaded = self.runtime.load(&bytes, &record.limits)?;
        record.active_version = version.to_owned();
        record.quarantine = None;
        self.store.write(|w| w.put_plugin(id, &record))?;
        let live = Live {
            loaded,
            config: record.config.to_string(),
            limits: record.limits,
        };
        self.swap(id, live, None);
        tracing::info!(plugin = %id, %version, by = %actor.label, "plugin rolled back");
        self.status(id)
    }

    /// Replaces the plugin's configuration and limits (either may be left as is).
    pub fn configure(
        &self,
        id: &str,
        config: Option<serde_json::Value>,
        limits: Option<Limits>,
        actor: &Actor,
    ) -> Result<PluginStatus, CatalogError> {
        let _guard = lock(&self.deploying);
        let mut record = self.record(id)?;
        Self::may_change(actor, &record.owner, id)?;
        if let Some(c) = config {
            if !c.is_object() {
                return Err(CatalogError::Invalid("config must be a JSON object".into()));
            }
            record.config = c;
        }
        if let Some(l) = limits {
            if !(10..=60_000).contains(&l.deadline_ms)
                || !((1 << 20)..=(256 << 20)).contains(&l.memory_bytes)
            {
                return Err(CatalogError::Invalid(
                    "limits: deadline_ms must be 10..60000 and memory_bytes 1 MiB..256 MiB".into(),
                ));
            }
            record.limits = l;
        }
        self.store.write(|w| w.put_plugin(id, &record))?;
        let bytes = self
            .store
            .read(|r| r.plugin_wasm(id, &record.active_version))?
            .ok_or_else(|| CatalogError::NotFound(id.to_owned()))?;
        let loaded = self.runtime.load(&bytes, &record.limits)?;
        let quarantine = record.quarantine.clone();
        self.swap(
            id,
            Live {
                loaded,
                config: record.config.to_string(),
                limits: record.limits,
            },
            quarantine,
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
            e.failures_in_a_row.store(0, Ordering::Relaxed);
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

    /// Runs `f` on the live version, counting the outcome towards metrics and quarantine.
    fn with_live<R>(
        &self,
        id: &str,
        f: impl FnOnce(&Runtime, &Live) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        let entry = self
            .entry(id)
            .ok_or_else(|| CallError::Quarantined(format!("plugin {id} is not deployed")))?;
        if let Some(q) = lock(&entry.quarantine).as_ref() {
            return Err(CallError::Quarantined(q.reason.clone()));
        }
        let live = entry.live.clone().ok_or_else(|| {
            CallError::Quarantined(
                entry
                    .unavailable
                    .clone()
                    .unwrap_or_else(|| "unavailable".into()),
            )
        })?;
        let (result, took) = super::runtime::timed(|| f(&self.runtime, &live));
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
        match result.as_ref().err().and_then(|e| e.kind().map(|_| e)) {
            None => entry.failures_in_a_row.store(0, Ordering::Relaxed),
            Some(err) => {
                let n = entry.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(plugin = %id, failures_in_a_row = n, error = %err, "plugin call failed");
                if n >= self.quarantine_after {
                    let q = Quarantine {
                        reason: format!("{n} calls failed in a row; the last: {err}"),
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
            }
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

    /// The description of the live version.
    pub fn description(&self, id: &str) -> Option<Description> {
        self.entry(id)?
            .live
            .as_ref()
            .map(|l| l.loaded.description.clone())
    }

    pub fn status(&self, id: &str) -> Result<PluginStatus, CatalogError> {
        let record = self.record(id)?;
        Ok(self.status_of(record))
    }

    fn status_of(&self, record: PluginRecord) -> PluginStatus {
        let entry = self.entry(&record.id);
        let quarantine = entry.as_ref().and_then(|e| lock(&e.quarantine).clone());
        let unavailable = entry.as_ref().and_then(|e| e.unavailable.clone());
        let (status, reason) = match (&quarantine, &unavailable) {
            (Some(q), _) => ("quarantined", Some(q.reason.clone())),
            (None, Some(u)) => ("unavailable", Some(u.clone())),
            (None, None) => ("active", None),
        };
        PluginStatus {
            id: record.id.clone(),
            status: status.to_owned(),
            reason,
            description: entry
                .as_ref()
                .and_then(|e| e.live.as_ref().map(|l| l.loaded.description.clone())),
            stats: entry.map(|e| lock(&e.stats).clone()).unwrap_or_default(),
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
            .map(|(id, e)| (id.clone(), lock(&e.stats).clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
