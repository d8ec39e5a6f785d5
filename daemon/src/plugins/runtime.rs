//! The wasmtime engine and everything a single plugin call needs: check a component's size and
//! shape, compile it (one at a time, in a child process for the daemon), link and check it once
//! (`Runtime::load` → `Loaded`, holding an `InstancePre`), then per call a fresh store with a
//! memory cap, a deadline that holds whatever the plugin does, captured stderr and a WASI with no
//! files, network, environment or arguments, and a wall clock frozen at the host's time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

use super::checks::{self, ComponentLimits};
use super::compile;
use super::host::{
    self, ActionPlugin, ActionPluginPre, CallLog, CallState, LogBudgets, LogLine, MemoryCap, v01,
};
use super::model::{
    ChecklistItem, Description, Occurrence, PlanOutput, ReviewOutcome, Target, TaskDraft, TaskInfo,
    VisitReport,
};
use crate::clock::SharedClock;
use crate::config::PluginHostConfig;

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
    #[error("refused before compiling: {0}")]
    TooLarge(String),
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

/// Why a call failed. `kind` says which count against the plugin (towards quarantine).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("deadline of {0} ms exceeded (the plugin was stopped)")]
    Deadline(u64),
    #[error("memory limit of {0} MiB exceeded (the plugin was stopped)")]
    Memory(usize),
    #[error(
        "the plugin overflowed its stack (deep or unbounded recursion){}",
        stderr_suffix(.stderr)
    )]
    StackOverflow { stderr: String },
    #[error("the plugin trapped: {message}{}", stderr_suffix(.stderr))]
    Trap { message: String, stderr: String },
    #[error("the plugin's output was refused: {0}")]
    BadOutput(String),
    #[error("the plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// The plugin answered with an error of its own.
    #[error("the plugin reported: {0}")]
    Plugin(String),
    /// An error the plugin did not mean to report: a bug its language runtime caught (a
    /// JavaScript exception that is not a string or a `PluginError`, marked `linli:bug:` by the
    /// SDK's JavaScript wrapper). Counted against the plugin like a trap.
    #[error("the plugin failed (a bug, not an error it reported): {0}")]
    Bug(String),
    #[error("the plugin is quarantined: {0}")]
    Quarantined(String),
    /// The host has no room for the call now (not the plugin's fault): retry shortly.
    #[error("busy: {0}; retry shortly")]
    Busy(String),
    /// The daemon is shutting down; the call was stopped.
    #[error("the daemon is shutting down; the call was stopped")]
    Shutdown,
}

fn stderr_suffix(s: &str) -> String {
    if s.trim().is_empty() {
        String::new()
    } else {
        format!("; its stderr: {}", s.trim())
    }
}

impl CallError {
    /// The label of this failure in metrics and for quarantine: faults of the plugin. `None`
    /// for answers that are not the plugin's fault (busy, shutdown, quarantined) and for
    /// the plugin's own polite errors.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            CallError::Deadline(_) => Some("deadline"),
            CallError::Memory(_) => Some("memory"),
            CallError::StackOverflow { .. } => Some("stack_overflow"),
            CallError::Trap { .. } => Some("trap"),
            CallError::Bug(_) => Some("bug"),
            CallError::BadOutput(_) => Some("bad_output"),
            CallError::Instantiate(_) => Some("instantiate"),
            CallError::Plugin(_)
            | CallError::Quarantined(_)
            | CallError::Busy(_)
            | CallError::Shutdown => None,
        }
    }

    /// Whether the call may succeed if repeated later (the host was busy or stopping).
    pub fn retryable(&self) -> bool {
        matches!(self, CallError::Busy(_) | CallError::Shutdown)
    }
}

/// A checked, pre-linked plugin.
pub struct Loaded {
    pub description: Description,
    pub sha256: String,
    pub size: usize,
    pre: Pre,
}

/// A plugin pre-linked for the interface version it was built for.
enum Pre {
    V02(ActionPluginPre<CallState>),
    V01(v01::ActionPluginPre<CallState>),
}

/// An instance of either version.
enum Instance {
    V02(ActionPlugin),
    V01(v01::ActionPlugin),
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

/// Cancels calls and compiles in flight when the daemon stops.
#[derive(Default)]
struct Stopping {
    set: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stopping {
    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

/// Where components are compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Compiler {
    /// In this process (CLI checks and tests of small components).
    InProcess,
    /// In a child process (`EXE compile-plugin`) with an address-space limit and a deadline,
    /// which hands back a precompiled artifact. What `linlid serve` and `linlid demo` use.
    Child(PathBuf),
}

/// A compiled component, and its artifact for the cache.
pub struct Compiled {
    pub component: Component,
    pub artifact: Vec<u8>,
}

/// The engine, the linker and the epoch ticker; one per daemon.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    clock: SharedClock,
    pooling: bool,
    ticker: Ticker,
    settings: PluginHostConfig,
    component_limits: ComponentLimits,
    compiler: Compiler,
    /// Compiles run one at a time.
    compiling: Mutex<()>,
    stopping: Stopping,
    budgets: LogBudgets,
    engine_key: String,
    /// Components compiled since start (cache hits are not compiles).
    compiles: AtomicU64,
    /// Drives the timers of calls (deadlines, a plugin's WASI sleeps) whatever thread calls:
    /// one worker thread of its own, so a call made from any context — a blocking thread, a
    /// plain thread, even an async task — never depends on the caller's executor.
    timers: Option<tokio::runtime::Runtime>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.timers.take() {
            // Never blocks, so dropping the engine inside an async context is safe.
            rt.shutdown_background();
        }
    }
}

/// Wakes a thread parked in `block_on`.
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, parking between polls. Unlike a tokio
/// `block_on` it may be called from anywhere, inside an async task included.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static WAKER: std::task::Waker =
            std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    }
    let mut future = std::pin::pin!(future);
    let waker = WAKER.with(std::task::Waker::clone);
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
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

/// The engine's configuration; `slots` instances at once when pooling. The compile child builds
/// its engine from the same function, so its artifacts load here.
pub fn engine_config(pooling: bool, slots: u32) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots);
        pool.total_core_instances(slots.saturating_mul(4));
        pool.total_memories(slots.saturating_mul(2));
        pool.total_tables(slots.saturating_mul(2));
        pool.total_stacks(slots);
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

/// A stable key for "artifacts of this engine load in that engine": a hash of wasmtime's
/// compatibility hash.
fn engine_key(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut h = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex(&h.0.finalize()[..16])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one call's work ended in, before it is named as a `CallError`.
enum Failed {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

impl Runtime {
    /// Starts the engine with the default limits, compiling in this process.
    pub fn new(clock: SharedClock) -> Result<Runtime, EngineError> {
        Self::with_config(clock, &PluginHostConfig::default(), Compiler::InProcess)
    }

    /// Starts the engine: the pooling allocator where the machine allows it, on-demand
    /// allocation otherwise.
    pub fn with_config(
        clock: SharedClock,
        settings: &PluginHostConfig,
        compiler: Compiler,
    ) -> Result<Runtime, EngineError> {
        let slots = settings.instance_slots;
        let (engine, pooling) = match Engine::new(&engine_config(true, slots)) {
            Ok(e) => (e, true),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                (
                    Engine::new(&engine_config(false, slots))
                        .map_err(|e| EngineError(e.to_string()))?,
                    false,
                )
            }
        };
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| EngineError(e.to_string()))?;
        let timers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("linli-plugin-timer")
            .enable_all()
            .build()
            .map_err(|e| EngineError(format!("cannot start the plugin timer thread: {e}")))?;
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
            engine_key: engine_key(&engine),
            engine,
            linker,
            clock,
            pooling,
            ticker: Ticker {
                stop,
                active,
                thread: Some(thread),
            },
            component_limits: ComponentLimits::from_config(settings),
            settings: settings.clone(),
            compiler,
            compiling: Mutex::new(()),
            stopping: Stopping::default(),
            budgets: LogBudgets::new(settings.log_lines_per_minute),
            compiles: AtomicU64::new(0),
            timers: Some(timers),
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// The limits this host was started with.
    pub fn settings(&self) -> &PluginHostConfig {
        &self.settings
    }

    /// Calls running now, over all plugins.
    pub fn calls_in_flight(&self) -> usize {
        self.ticker.active.load(Ordering::SeqCst)
    }

    /// Plugin instances alive now (pooling allocator only; 0 otherwise).
    pub fn instances_in_use(&self) -> u64 {
        self.engine
            .pooling_allocator_metrics()
            .map_or(0, |m| m.component_instances())
    }

    /// Components compiled since the engine started.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::SeqCst)
    }

    /// Artifacts compiled under this key load in this engine.
    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Stops every call and compile in flight (they fail with `CallError::Shutdown` or a
    /// refusal), and refuses new ones. Called when the daemon shuts down.
    pub fn shutdown(&self) {
        self.stopping.set.store(true, Ordering::SeqCst);
        self.stopping.notify.notify_waiters();
    }

    /// The SHA-256 of a component, as stored.
    pub fn sha256(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Checks a component's size and shape, then compiles it (one compile at a time).
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, LoadError> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(LoadError::CoreModule),
            Some([0, b'a', b's', b'm', ..]) => {}
            _ => return Err(LoadError::NotWasm),
        }
        checks::inspect(bytes, &self.component_limits).map_err(|r| match r {
            checks::Refusal::Malformed(m) => LoadError::Compile(m),
            checks::Refusal::Beyond(m) => LoadError::TooLarge(m),
        })?;
        let _one_at_a_time = self.compiling.lock().unwrap_or_else(|p| p.into_inner());
        if self.stopping.is_set() {
            return Err(LoadError::Compile("the daemon is shutting down".into()));
        }
        self.compiles.fetch_add(1, Ordering::SeqCst);
        match &self.compiler {
            Compiler::InProcess => {
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                let artifact = component
                    .serialize()
                    .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                Ok(Compiled {
                    component,
                    artifact,
                })
            }
            Compiler::Child(exe) => {
                let artifact = compile::in_child(
                    exe,
                    bytes,
                    Duration::from_secs(self.settings.compile_timeout_secs),
                    self.settings.compile_memory_mib,
                    &|| self.stopping.is_set(),
                )
                .map_err(LoadError::Compile)?;
                let component = self.from_artifact(&artifact)?;
                Ok(Compiled {
                    component,
                    artifact,
                })
            }
        }
    }

    /// Loads an artifact this daemon's compiler made (from a compile child or the cache).
    pub fn from_artifact(&self, artifact: &[u8]) -> Result<Component, LoadError> {
        compile::deserialize(&self.engine, artifact).map_err(LoadError::Compile)
    }

    /// Checks and compiles a component: WebAssembly, a component within the size limits, the
    /// right interface version, links, and `describe` answers validly within `limits`.
    pub fn load(&self, bytes: &[u8], limits: &Limits) -> Result<Loaded, LoadError> {
        let compiled = self.compile(bytes)?;
        self.finish(compiled.component, Self::sha256(bytes), bytes.len(), limits)
    }

    /// Links a compiled component and checks its interface and its `describe`.
    pub fn finish(
        &self,
        component: Component,
        sha256: String,
        size: usize,
        limits: &Limits,
    ) -> Result<Loaded, LoadError> {
        let version = self.check_interface(&component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let not_a_plugin = |e: wasmtime::Error| LoadError::NotAPlugin(format!("{e:#}"));
        let pre = if version == "linli:plugin@0.1.0" {
            Pre::V01(v01::ActionPluginPre::new(pre).map_err(not_a_plugin)?)
        } else {
            Pre::V02(ActionPluginPre::new(pre).map_err(not_a_plugin)?)
        };
        let mut loaded = Loaded {
            description: Description {
                id: format!("sha256:{}", sha256.get(..12).unwrap_or_default()),
                version: String::new(),
                names: super::model::Names {
                    zh: String::new(),
                    en: String::new(),
                },
                actions: Vec::new(),
                config_schema: None,
                interface: String::new(),
            },
            sha256,
            size,
            pre,
        };
        let description = self
            .describe(&loaded, "{}", limits)
            .map_err(LoadError::Describe)?;
        checks::description(&description).map_err(LoadError::InvalidDescription)?;
        loaded.description = description;
        Ok(loaded)
    }

    /// The interface version a component was built for, if this host implements it (every
    /// `linli:plugin` import and export must name the same one).
    fn check_interface(&self, component: &Component) -> Result<&'static str, LoadError> {
        let ty = component.component_type();
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
        let supported = names
            .iter()
            .find(|n| n.starts_with("linli:plugin/action@"))
            .and_then(|n| host::INTERFACES.iter().find(|v| **v == version(n)).copied())
            .unwrap_or(host::INTERFACE);
        if let Some(other) = names.iter().find(|n| ours(n) && version(n) != supported) {
            return Err(LoadError::WrongInterface {
                found: checks::cap_text(version(other), 200),
                supported: host::INTERFACES.join(" or "),
            });
        }
        if !names.iter().any(|n| n.starts_with("linli:plugin/action@")) {
            return Err(LoadError::NotAPlugin(checks::cap_text(
                format!(
                    "its exports are: {}",
                    ty.exports(&self.engine)
                        .map(|(n, _)| n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                1000,
            )));
        }
        Ok(supported)
    }

    /// Runs `f` against a fresh instance in a fresh store, within `limits`. The call ends by
    /// its deadline whatever the plugin does — computing (the epoch callback interrupts it) or
    /// parked in a host call such as a WASI sleep (the deadline drops the call) — and at once
    /// when the daemon shuts down.
    fn call<R>(
        &self,
        loaded: &Loaded,
        config: &str,
        limits: &Limits,
        f: impl AsyncFnOnce(&mut Store<CallState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<(R, Vec<LogLine>), CallError> {
        if self.stopping.is_set() {
            return Err(CallError::Shutdown);
        }
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
            log: CallLog::default(),
            budgets: self.budgets.clone(),
            stderr: stderr.clone(),
            plugin: loaded.description.id.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        let deadline = Duration::from_millis(limits.deadline_ms);
        let started = Instant::now();
        // Each epoch tick yields to the executor (so the deadline and shutdown are noticed),
        // and past the deadline interrupts the plugin with a trap.
        store.epoch_deadline_callback(move |_| {
            Ok(if started.elapsed() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
        enum Stop {
            Deadline,
            Shutdown,
        }
        // The timers' runtime is entered so that deadlines and a plugin's sleeps register with
        // it; the call itself runs on this thread.
        let _timers = self.timers.as_ref().map(|rt| rt.enter());
        let outcome = block_on(async {
            let work = async {
                let instance = match &loaded.pre {
                    Pre::V02(pre) => pre.instantiate_async(&mut store).await.map(Instance::V02),
                    Pre::V01(pre) => pre.instantiate_async(&mut store).await.map(Instance::V01),
                }
                .map_err(Failed::Instantiate)?;
                f(&mut store, &instance).await.map_err(Failed::Call)
            };
            // The work is polled first: a call that finishes without parking never registers
            // with the deadline's timer or the shutdown signal.
            tokio::select! {
                biased;
                r = tokio::time::timeout(deadline, work) => r.map_err(|_| Stop::Deadline),
                () = self.stopping.wait() => Err(Stop::Shutdown),
            }
        });
        store.data().summarise_log();
        let result = match outcome {
            Ok(Ok(out)) => out,
            Err(Stop::Deadline) => return Err(CallError::Deadline(limits.deadline_ms)),
            Err(Stop::Shutdown) => return Err(CallError::Shutdown),
            Ok(Err(Failed::Instantiate(e))) => {
                return Err(if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
                    CallError::Busy(format!(
                        "all {} plugin instance slots are in use (plugins.instance_slots)",
                        self.settings.instance_slots
                    ))
                } else if store.data().memory.hit {
                    CallError::Memory(limits.memory_bytes >> 20)
                } else {
                    CallError::Instantiate(checks::cap_text(
                        format!("{e:#}"),
                        checks::MAX_ERROR_TEXT,
                    ))
                });
            }
            Ok(Err(Failed::Call(e))) => return Err(classify(&store, e, limits)),
        };
        let logs = std::mem::take(&mut store.data_mut().log.lines);
        Ok((result, logs))
    }

    pub fn describe(
        &self,
        loaded: &Loaded,
        config: &str,
        limits: &Limits,
    ) -> Result<Description, CallError> {
        let (description, _) = self.call(loaded, config, limits, async |store, p| {
            Ok(match p {
                Instance::V02(p) => {
                    Description::from(p.linli_plugin_action().call_describe(store).await?)
                }
                Instance::V01(p) => {
                    Description::from(p.linli_plugin_action().call_describe(store).await?)
                }
            })
        })?;
        let size = description.id.len()
            + description.version.len()
            + description.names.zh.len()
            + description.names.en.len()
            + description
                .actions
                .iter()
                .map(|a| {
                    a.id.len()
                        + a.names.zh.len()
                        + a.names.en.len()
                        + a.default_cron.len()
                        + a.categories.iter().map(String::len).sum::<usize>()
                })
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
        let scheduled_at =
            chrono::DateTime::parse_from_rfc3339(&occurrence.scheduled_at).map_err(|_| {
                CallError::Plugin(format!(
                    "the occurrence's scheduled_at {:?} is not an RFC 3339 instant",
                    occurrence.scheduled_at
                ))
            })?;
        // The targets in the plugin's own version's types.
        enum Input {
            V02(host::wit::Occurrence, Vec<host::wit::Target>),
            V01(v01::wit::Occurrence, Vec<v01::wit::Target>),
        }
        let input = match &loaded.pre {
            Pre::V02(_) => Input::V02(occurrence.into(), targets.iter().map(Into::into).collect()),
            Pre::V01(_) => Input::V01(occurrence.into(), targets.iter().map(Into::into).collect()),
        };
        let (answer, logs) = self.call(loaded, config, limits, async |store, p| {
            type Raw = Result<(Vec<Vec<ChecklistItem>>, Vec<TaskDraft>), String>;
            let raw: Raw = match (p, &input) {
                (Instance::V02(p), Input::V02(occ, t)) => p
                    .linli_plugin_action()
                    .call_plan(store, occ, t)
                    .await?
                    .map(|a| {
                        (
                            a.checklists
                                .into_iter()
                                .map(|c| c.into_iter().map(Into::into).collect())
                                .collect(),
                            a.drafts.into_iter().map(Into::into).collect(),
                        )
                    }),
                (Instance::V01(p), Input::V01(occ, t)) => p
                    .linli_plugin_action()
                    .call_plan(store, occ, t)
                    .await?
                    .map(|a| {
                        (
                            a.checklists
                                .into_iter()
                                .map(|c| c.into_iter().map(Into::into).collect())
                                .collect(),
                            a.drafts
                                .into_iter()
                                .map(|d| {
                                    // 0.1's documentation wrote roles with dashes
                                    // (`child-director`): read as the vocabulary's slugs.
                                    let mut d: TaskDraft = d.into();
                                    for r in &mut d.requirements.roles {
                                        *r = r.replace('-', "_");
                                    }
                                    d
                                })
                                .collect(),
                        )
                    }),
                _ => {
                    wasmtime::bail!("the plugin's instance and its input are of different versions")
                }
            };
            Ok(raw)
        })?;
        drop(input);
        let (checklists, drafts) = answer.map_err(plugin_error)?;
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
        for (i, c) in checklists.iter().enumerate() {
            checks::checklist(c)
                .map_err(|m| CallError::BadOutput(format!("checklist {i}: {m}")))?;
        }
        let mut bytes: usize = checklists.iter().flatten().map(checklist_item_bytes).sum();
        let bounds = checks::PlanBounds {
            targets: targets.len(),
            scheduled_at,
        };
        let mut out = Vec::with_capacity(drafts.len());
        let mut window_checked = None;
        for (i, d) in drafts.into_iter().enumerate() {
            bytes += draft_bytes(&d);
            checks::draft(&d, &bounds, checklists.len(), &mut window_checked)
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
        let (answer, logs) = self.call(loaded, config, limits, async |store, p| {
            Ok(match p {
                Instance::V02(p) => p
                    .linli_plugin_action()
                    .call_review(store, &task.into(), &report.into())
                    .await?
                    .map(ReviewOutcome::from),
                Instance::V01(p) => p
                    .linli_plugin_action()
                    .call_review(store, &task.into(), &report.into())
                    .await?
                    .map(ReviewOutcome::from),
            })
        })?;
        let outcome: ReviewOutcome = answer.map_err(plugin_error)?;
        checks::review(&outcome).map_err(CallError::BadOutput)?;
        Ok((outcome, logs))
    }
}

/// A plugin's own error, its text capped before anything stores or returns it; one marked
/// `linli:bug:` is a bug, not a polite error.
fn plugin_error(text: String) -> CallError {
    match text.strip_prefix(BUG_MARK) {
        Some(rest) => CallError::Bug(checks::cap_text(
            rest.trim().to_owned(),
            checks::MAX_ERROR_TEXT,
        )),
        None => CallError::Plugin(checks::cap_text(text, checks::MAX_ERROR_TEXT)),
    }
}

/// How a guest-language wrapper marks an error that is a bug (see `sdk/js/linli.js`).
pub const BUG_MARK: &str = "linli:bug:";

/// Names a failed call: the memory cap, the deadline, a stack overflow, or another trap with the
/// tail of the plugin's stderr (where a Rust panic's message lands).
fn classify(store: &Store<CallState>, e: wasmtime::Error, limits: &Limits) -> CallError {
    if store.data().memory.hit {
        return CallError::Memory(limits.memory_bytes >> 20);
    }
    let trap = e.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::Interrupt) {
        return CallError::Deadline(limits.deadline_ms);
    }
    let text = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
    let tail: String = text
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let stderr = host::escape_controls(&tail).replace("\\n", "\n");
    // A Rust plugin keeps its stack in linear memory: when it overflows, the stack pointer
    // wraps and the next access is out of bounds, deep inside a run of one recursing function.
    let recursing = || {
        e.downcast_ref::<wasmtime::WasmBacktrace>()
            .is_some_and(|bt| {
                let frames = bt.frames();
                let mut counts: HashMap<u32, usize> = HashMap::new();
                for f in frames {
                    *counts.entry(f.func_index()).or_default() += 1;
                }
                frames.len() >= 16 && counts.values().any(|&n| n * 2 >= frames.len())
            })
    };
    if trap == Some(Trap::StackOverflow) || (trap == Some(Trap::MemoryOutOfBounds) && recursing()) {
        return CallError::StackOverflow { stderr };
    }
    CallError::Trap {
        message: checks::cap_text(e.root_cause().to_string(), 1000),
        stderr,
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
        + c.choice_labels
            .iter()
            .map(|l| l.zh.len() + l.en.len())
            .sum::<usize>()
        + c.required_when
            .as_ref()
            .map_or(0, |w| w.item.len() + w.equals.len())
}

/// Times a closure; for metrics.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let started = Instant::now();
    let r = f();
    (r, started.elapsed())
}
