//! The wasmtime engine and everything a single plugin call needs: compile and check a
//! component once (`Runtime::load` → `Loaded`, holding an `InstancePre`), then per call a fresh
//! store with a memory cap, an epoch deadline, captured stderr and a WASI with no files,
//! network, environment or arguments, and a wall clock frozen at the host's time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

use super::host::{self, ActionPlugin, ActionPluginPre, CallState, LogLine, MemoryCap};
use super::model::{
    ChecklistItem, Description, Occurrence, PlanOutput, ReviewOutcome, Target, TaskDraft, TaskInfo,
    VisitReport,
};
use crate::clock::SharedClock;

/// Epoch tick; deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(5);

/// What one call may use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Limits {
    /// Wall-clock time a call may run, in milliseconds.
    pub deadline_ms: u64,
    /// Linear memory a call may grow to, in bytes.
    pub memory_bytes: usize,
    /// Drafts `plan` may return per target (plus a fixed 64).
    pub drafts_per_target: u32,
    /// Bytes of text a call's output may hold.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline_ms: 2000,
            memory_bytes: 64 << 20,
            drafts_per_target: 16,
            output_bytes: 64 << 20,
        }
    }
}

/// Why a component was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("not WebAssembly: the file does not start with the \\0asm magic bytes")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build it for wasm32-wasip2 \
         (cargo build --target wasm32-wasip2) with linli-sdk"
    )]
    CoreModule,
    #[error("cannot compile the component: {0}")]
    Compile(String),
    #[error(
        "built for interface {found}, but this linlid implements {supported}: rebuild the plugin \
         with a linli-sdk for {supported}, or upgrade linlid"
    )]
    WrongInterface { found: String, supported: String },
    #[error("does not export linli:plugin/action: is it a linli action plugin? ({0})")]
    NotAPlugin(String),
    #[error("cannot link the component: {0}")]
    Link(String),
    #[error("describe failed: {0}")]
    Describe(CallError),
    #[error("describe answered something invalid: {0}")]
    InvalidDescription(String),
}

/// Why a call failed. Every kind but `Plugin` counts towards quarantine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("deadline of {0} ms exceeded (the plugin was stopped)")]
    Deadline(u64),
    #[error("memory limit of {0} MiB exceeded (the plugin was stopped)")]
    Memory(usize),
    #[error("the plugin trapped: {message}{}", stderr_suffix(.stderr))]
    Trap { message: String, stderr: String },
    #[error("the plugin's output was refused: {0}")]
    BadOutput(String),
    #[error("the plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// The plugin answered with an error of its own (not a fault of the plugin).
    #[error("the plugin reported: {0}")]
    Plugin(String),
    #[error("the plugin is quarantined: {0}")]
    Quarantined(String),
}

fn stderr_suffix(s: &str) -> String {
    if s.trim().is_empty() {
        String::new()
    } else {
        format!("; its stderr: {}", s.trim())
    }
}

impl CallError {
    /// The label of this failure in metrics; `None` for answers that are not failures.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            CallError::Deadline(_) => Some("deadline"),
            CallError::Memory(_) => Some("memory"),
            CallError::Trap { .. } => Some("trap"),
            CallError::BadOutput(_) => Some("bad_output"),
            CallError::Instantiate(_) => Some("instantiate"),
            CallError::Plugin(_) | CallError::Quarantined(_) => None,
        }
    }
}

/// A checked, pre-linked plugin.
pub struct Loaded {
    pub description: Description,
    pub sha256: String,
    pub size: usize,
    pre: ActionPluginPre<CallState>,
}

/// Advances the engine's epoch while any call is running, and sleeps (parked) otherwise, so
/// an idle daemon uses no CPU. Stops when dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// Marks a call in flight for the ticker.
struct InFlight<'a>(&'a Ticker);

impl Ticker {
    fn enter(&self) -> InFlight<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        InFlight(self)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The engine, the linker and the epoch ticker; one per daemon.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    clock: SharedClock,
    pooling: bool,
    ticker: Ticker,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly engine: {0}")]
pub struct EngineError(String);

struct FrozenWall(Duration);

impl HostWallClock for FrozenWall {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

struct FrozenMonotonic;

impl HostMonotonicClock for FrozenMonotonic {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

fn config(pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256);
        pool.total_core_instances(1024);
        pool.total_memories(512);
        pool.total_tables(512);
        pool.max_memory_size(256 << 20);
        // Keep the pages a call touched resident and reset only the dirty ones (PAGEMAP_SCAN,
        // Linux 6.7+; elsewhere the first bytes are memset): no page faults, no madvise.
        pool.linear_memory_keep_resident(4 << 20);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.table_keep_resident(64 << 10);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

impl Runtime {
    /// Starts the engine: the pooling allocator where the machine allows it, on-demand
    /// allocation otherwise.
    pub fn new(clock: SharedClock) -> Result<Runtime, EngineError> {
        let (engine, pooling) = match Engine::new(&config(true)) {
            Ok(e) => (e, true),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                (
                    Engine::new(&config(false)).map_err(|e| EngineError(e.to_string()))?,
                    false,
                )
            }
        };
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| EngineError(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let thread = {
            let engine = engine.clone();
            let (stop, active) = (stop.clone(), active.clone());
            std::thread::Builder::new()
                .name("linli-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if active.load(Ordering::SeqCst) == 0 {
                            std::thread::park();
                            continue;
                        }
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| EngineError(e.to_string()))?
        };
        Ok(Runtime {
            engine,
            linker,
            clock,
            pooling,
            ticker: Ticker {
                stop,
                active,
                thread: Some(thread),
            },
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Checks and compiles a component: WebAssembly, a component, the right interface version,
    /// links, and `describe` answers validly within `limits`.
    pub fn load(&self, bytes: &[u8], limits: &Limits) -> Result<Loaded, LoadError> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(LoadError::CoreModule),
            Some([0, b'a', b's', b'm', ..]) => {}
            _ => return Err(LoadError::NotWasm),
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        self.check_interface(&component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = ActionPluginPre::new(pre).map_err(|e| LoadError::NotAPlugin(format!("{e:#}")))?;
        let mut loaded = Loaded {
            description: Description {
                id: String::new(),
                version: String::new(),
                names: super::model::Names {
                    zh: String::new(),
                    en: String::new(),
                },
                actions: Vec::new(),
            },
            sha256: Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            size: bytes.len(),
            pre,
        };
        let description = self
            .describe(&loaded, "{}", limits)
            .map_err(LoadError::Describe)?;
        validate_description(&description).map_err(LoadError::InvalidDescription)?;
        loaded.description = description;
        Ok(loaded)
    }

    fn check_interface(&self, component: &Component) -> Result<(), LoadError> {
        let ty = component.component_type();
        let supported = host::INTERFACE;
        let ours = |name: &str| name.starts_with("linli:plugin/");
        let version = |name: &str| {
            name.split_once('@')
                .map(|(_, v)| format!("linli:plugin@{v}"))
                .unwrap_or_else(|| "linli:plugin (unversioned)".to_owned())
        };
        let names: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .chain(ty.exports(&self.engine).map(|(n, _)| n.to_owned()))
            .collect();
        if let Some(other) = names.iter().find(|n| ours(n) && version(n) != supported) {
            return Err(LoadError::WrongInterface {
                found: version(other),
                supported: supported.to_owned(),
            });
        }
        if !names.iter().any(|n| n.starts_with("linli:plugin/action@")) {
            return Err(LoadError::NotAPlugin(format!(
                "its exports are: {}",
                ty.exports(&self.engine)
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }

    /// Runs `f` against a fresh instance in a fresh store, within `limits`.
    fn call<R>(
        &self,
        loaded: &Loaded,
        config: &str,
        limits: &Limits,
        f: impl FnOnce(&mut Store<CallState>, &ActionPlugin) -> wasmtime::Result<R>,
    ) -> Result<(R, Vec<LogLine>), CallError> {
        let _in_flight = self.ticker.enter();
        let stderr = MemoryOutputPipe::new(16 * 1024);
        let since_epoch = self
            .clock
            .now()
            .signed_duration_since(chrono::DateTime::UNIX_EPOCH);
        let wall = since_epoch.to_std().unwrap_or_default();
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenWall(wall))
            .monotonic_clock(FrozenMonotonic)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                limit: limits.memory_bytes,
                hit: false,
            },
            config: config.to_owned(),
            logs: Vec::new(),
            stderr: stderr.clone(),
            plugin: loaded.description.id.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(limits.deadline_ms.div_ceil(TICK.as_millis() as u64) + 1);
        store.epoch_deadline_trap();
        let classify = |store: &Store<CallState>, e: wasmtime::Error| {
            if store.data().memory.hit {
                CallError::Memory(limits.memory_bytes >> 20)
            } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                CallError::Deadline(limits.deadline_ms)
            } else {
                let text = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                CallError::Trap {
                    message: e.root_cause().to_string(),
                    stderr: tail,
                }
            }
        };
        let instance = match loaded.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) if store.data().memory.hit => return Err(classify(&store, e)),
            Err(e) => return Err(CallError::Instantiate(format!("{e:#}"))),
        };
        let out = f(&mut store, &instance).map_err(|e| classify(&store, e))?;
        Ok((out, std::mem::take(&mut store.data_mut().logs)))
    }

    pub fn describe(
        &self,
        loaded: &Loaded,
        config: &str,
        limits: &Limits,
    ) -> Result<Description, CallError> {
        let (info, _) = self.call(loaded, config, limits, |store, p| {
            p.linli_plugin_action().call_describe(store)
        })?;
        let description: Description = info.into();
        let size = description.id.len()
            + description.version.len()
            + description
                .actions
                .iter()
                .map(|a| a.id.len() + a.names.zh.len() + a.names.en.len() + a.default_cron.len())
                .sum::<usize>();
        if size > 64 * 1024 || description.actions.len() > 64 {
            return Err(CallError::BadOutput(format!(
                "describe returned {} actions and {size} bytes (at most 64 actions and 64 KiB)",
                description.actions.len()
            )));
        }
        Ok(description)
    }

    /// Plans an occurrence; the drafts are checked against the targets and the limits.
    pub fn plan(
        &self,
        loaded: &Loaded,
        config: &str,
        limits: &Limits,
        occurrence: &Occurrence,
        targets: &[Target],
    ) -> Result<(PlanOutput, Vec<LogLine>), CallError> {
        let occ = occurrence.into();
        let wit_targets: Vec<_> = targets.iter().map(Into::into).collect();
        let (answer, logs) = self.call(loaded, config, limits, |store, p| {
            p.linli_plugin_action().call_plan(store, &occ, &wit_targets)
        })?;
        drop(wit_targets);
        let answer = answer.map_err(CallError::Plugin)?;
        let drafts = answer.drafts;
        let checklists: Vec<Vec<ChecklistItem>> = answer
            .checklists
            .into_iter()
            .map(|c| c.into_iter().map(Into::into).collect())
            .collect();
        let cap = targets
            .len()
            .saturating_mul(limits.drafts_per_target as usize)
            .saturating_add(64);
        if drafts.len() > cap {
            return Err(CallError::BadOutput(format!(
                "plan returned {} drafts for {} targets (at most {cap})",
                drafts.len(),
                targets.len()
            )));
        }
        if checklists.len() > 1000 {
            return Err(CallError::BadOutput(format!(
                "plan returned {} checklists (at most 1,000)",
                checklists.len()
            )));
        }
        let mut bytes: usize = checklists.iter().flatten().map(checklist_item_bytes).sum();
        let mut out = Vec::with_capacity(drafts.len());
        let mut window_checked = (String::new(), String::new());
        for (i, d) in drafts.into_iter().enumerate() {
            let d: TaskDraft = d.into();
            bytes += draft_bytes(&d);
            check_draft(&d, targets.len(), checklists.len(), &mut window_checked)
                .map_err(|m| CallError::BadOutput(format!("draft {i}: {m}")))?;
            out.push(d);
        }
        if bytes > limits.output_bytes {
            return Err(CallError::BadOutput(format!(
                "plan returned {bytes} bytes of text (at most {})",
                limits.output_bytes
            )));
        }
        Ok((
            PlanOutput {
                checklists,
                drafts: out,
            },
            logs,
        ))
    }

    pub fn review(
        &self,
        loaded: &Loaded,
        config: &str,
        limits: &Limits,
        task: &TaskInfo,
        report: &VisitReport,
    ) -> Result<(ReviewOutcome, Vec<LogLine>), CallError> {
        let (t, r) = (task.into(), report.into());
        let (answer, logs) = self.call(loaded, config, limits, |store, p| {
            p.linli_plugin_action().call_review(store, &t, &r)
        })?;
        let outcome: ReviewOutcome = answer.map_err(CallError::Plugin)?.into();
        let size = match &outcome {
            ReviewOutcome::Accepted => 0,
            ReviewOutcome::FollowUp { reason, .. } => reason.len(),
            ReviewOutcome::Rejected { reasons } => reasons.iter().map(String::len).sum(),
        };
        if size > 64 * 1024 {
            return Err(CallError::BadOutput(format!(
                "review returned {size} bytes of reasons (at most 64 KiB)"
            )));
        }
        Ok((outcome, logs))
    }
}

fn draft_bytes(d: &TaskDraft) -> usize {
    let r = &d.requirements;
    d.kind.len()
        + d.title.zh.len()
        + d.title.en.len()
        + d.due_start.len()
        + d.due_end.len()
        + r.skills
            .iter()
            .chain(&r.clearances)
            .chain(&r.languages)
            .chain(&r.roles)
            .map(String::len)
            .sum::<usize>()
        + 64
}

fn checklist_item_bytes(c: &ChecklistItem) -> usize {
    c.id.len()
        + c.question.zh.len()
        + c.question.en.len()
        + c.choices.iter().map(String::len).sum::<usize>()
}

/// Checks one draft; `last_window` remembers the last due window found valid, since most
/// drafts of an occurrence share it.
fn check_draft(
    d: &TaskDraft,
    targets: usize,
    checklists: usize,
    last_window: &mut (String, String),
) -> Result<(), String> {
    if d.target as usize >= targets {
        return Err(format!(
            "target index {} is out of range (there are {targets} targets)",
            d.target
        ));
    }
    if d.checklist as usize >= checklists {
        return Err(format!(
            "checklist index {} is out of range (there are {checklists} checklists)",
            d.checklist
        ));
    }
    if last_window.0 != d.due_start || last_window.1 != d.due_end {
        let parse = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| format!("{s:?} is not an RFC 3339 instant"))
        };
        if parse(&d.due_start)? > parse(&d.due_end)? {
            return Err("due_start is after due_end".to_owned());
        }
        *last_window = (d.due_start.clone(), d.due_end.clone());
    }
    if d.requirements.team_size == 0 {
        return Err("team_size must be at least 1".to_owned());
    }
    if d.kind.is_empty() {
        return Err("kind is empty".to_owned());
    }
    Ok(())
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
}

fn validate_description(d: &Description) -> Result<(), String> {
    if !is_id(&d.id) {
        return Err(format!(
            "plugin id {:?} must be lower-case letters, digits and dashes",
            d.id
        ));
    }
    let semver = d.version.split('.').count() == 3
        && d.version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !semver {
        return Err(format!("version {:?} must be MAJOR.MINOR.PATCH", d.version));
    }
    if d.names.zh.trim().is_empty() || d.names.en.trim().is_empty() {
        return Err("the plugin needs a Chinese and an English name".to_owned());
    }
    if d.actions.is_empty() {
        return Err("the plugin offers no actions".to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    for a in &d.actions {
        if !is_id(&a.id) || !seen.insert(a.id.as_str()) {
            return Err(format!(
                "action id {:?} is not a unique lower-case id",
                a.id
            ));
        }
        let fields = a.default_cron.split_whitespace().count();
        if !(5..=7).contains(&fields) {
            return Err(format!(
                "action {}: default_cron {:?} is not a cron expression",
                a.id, a.default_cron
            ));
        }
    }
    Ok(())
}

/// Times a closure; for metrics.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let started = Instant::now();
    let r = f();
    (r, started.elapsed())
}
