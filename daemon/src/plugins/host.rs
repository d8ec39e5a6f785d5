//! The host side of the WIT worlds: bindings generated here from `sdk/wit/` (the current
//! `linli:plugin@0.2.0`) and `daemon/wit/v0.1/` (0.1.0, as released: its plugins still run), the
//! per-call store data, and the two host imports (logging, the plugin's configuration), which
//! both versions share. Exports are called
//! asynchronously, so that a call parked in a host function (a WASI sleep) still ends at its
//! deadline.
//!
//! Never: a plugin's log text reaches the daemon's log unescaped or beyond its budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result as WtResult};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

#[allow(unsafe_code, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "action-plugin",
        exports: { default: async },
    });
}

/// `linli:plugin@0.1.0`, kept linked so that its plugins run unchanged.
#[allow(unsafe_code, clippy::all)]
pub mod v01 {
    wasmtime::component::bindgen!({
        path: "wit/v0.1",
        world: "action-plugin",
        exports: { default: async },
    });
    pub use self::linli::plugin::types as wit;
}

pub use bindings::ActionPlugin;
pub use bindings::ActionPluginPre;
pub use bindings::exports::linli::plugin::action as wit_action;
pub use bindings::linli::plugin::host::Level;
pub use bindings::linli::plugin::types as wit;

/// The interface versions this host implements, newest first.
pub const INTERFACES: [&str; 2] = ["linli:plugin@0.2.0", "linli:plugin@0.1.0"];
/// The newest (what the SDK builds).
pub const INTERFACE: &str = INTERFACES[0];

/// Memory cap that records when a plugin hit it, so the failure can be named.
pub struct MemoryCap {
    pub limit: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> WtResult<bool> {
        if desired > self.limit {
            self.hit = true;
            wasmtime::bail!("plugin memory limit of {} MiB reached", self.limit >> 20);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> WtResult<bool> {
        Ok(desired <= 100_000)
    }
}

/// One log line a plugin wrote through the host.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// Everything a call's store holds. A fresh one per call.
pub struct CallState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub memory: MemoryCap,
    pub config: String,
    pub log: CallLog,
    pub budgets: LogBudgets,
    pub stderr: MemoryOutputPipe,
    /// The plugin's id, or a prefix of the component's hash while it is being checked.
    pub plugin: String,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Lines and bytes of a call's log returned to its caller (dry runs show them).
const MAX_LOG_LINES: usize = 200;
const MAX_LOG_BYTES: usize = 64 * 1024;
const MAX_LOG_LINE: usize = 2000;
/// Lines one call may write to the daemon's log, whatever the plugin's budget.
const MAX_DAEMON_LINES_PER_CALL: u32 = 50;

/// Each plugin's allowance of lines in the daemon's log: a bucket of `per_minute` lines that
/// refills continuously. Shared by every call of the plugin, so parallel calls cannot multiply it.
#[derive(Clone)]
pub struct LogBudgets {
    per_minute: u32,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl LogBudgets {
    pub fn new(per_minute: u32) -> Self {
        LogBudgets {
            per_minute,
            buckets: Arc::default(),
        }
    }

    /// Takes one line from `plugin`'s bucket; false when it is empty.
    fn take(&self, plugin: &str) -> bool {
        let cap = f64::from(self.per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (level, at) = buckets.entry(plugin.to_owned()).or_insert((cap, now));
        let refill = now.duration_since(*at).as_secs_f64() * cap / 60.0;
        *level = (*level + refill).min(cap);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Escapes control characters (newlines, carriage returns, escape sequences), so a plugin's
/// message is one line and cannot forge another.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A call's log: what is kept for the caller and what was dropped.
#[derive(Default)]
pub struct CallLog {
    pub lines: Vec<LogLine>,
    bytes: usize,
    written: u32,
    pub dropped_from_daemon_log: u64,
    pub dropped_from_reply: u64,
}

impl CallState {
    /// Writes the one summary line of what this call's budget kept out of the daemon's log.
    pub fn summarise_log(&self) {
        let dropped = self.log.dropped_from_daemon_log;
        if dropped > 0 {
            tracing::warn!(plugin = %self.plugin, dropped, "plugin log lines dropped (over its log budget)");
        }
    }
}

impl bindings::linli::plugin::host::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let cut: String = message.chars().take(MAX_LOG_LINE).collect();
        let message = escape_controls(&cut);
        drop(cut);
        let log = &mut self.log;
        if log.written < MAX_DAEMON_LINES_PER_CALL && self.budgets.take(&self.plugin) {
            log.written += 1;
            match level {
                "error" => tracing::error!(plugin = %self.plugin, "{message}"),
                "warn" => tracing::warn!(plugin = %self.plugin, "{message}"),
                "info" => tracing::info!(plugin = %self.plugin, "{message}"),
                _ => tracing::debug!(plugin = %self.plugin, "{message}"),
            }
        } else {
            log.dropped_from_daemon_log += 1;
        }
        if log.lines.len() < MAX_LOG_LINES && log.bytes + message.len() <= MAX_LOG_BYTES {
            log.bytes += message.len();
            log.lines.push(LogLine {
                level: level.to_owned(),
                message,
            });
        } else {
            log.dropped_from_reply += 1;
        }
    }

    fn config(&mut self) -> String {
        self.config.clone()
    }
}

impl wit::Host for CallState {}

impl v01::linli::plugin::host::Host for CallState {
    fn log(&mut self, level: v01::linli::plugin::host::Level, message: String) {
        use v01::linli::plugin::host::Level as Old;
        let level = match level {
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        };
        bindings::linli::plugin::host::Host::log(self, level, message);
    }

    fn config(&mut self) -> String {
        self.config.clone()
    }
}

impl v01::wit::Host for CallState {}

/// Adds the host imports of every interface version and a locked-down WASI to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> WtResult<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    ActionPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
    v01::ActionPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugins_log_budget_is_shared_and_refills() {
        let budgets = LogBudgets::new(3);
        let taken = (0..5).filter(|_| budgets.take("noisy")).count();
        assert_eq!(taken, 3);
        assert!(budgets.take("quiet"), "each plugin has its own budget");
        let later = budgets.clone();
        assert!(!later.take("noisy"), "clones share the budget");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_controls("a\nERROR forged\r\u{1b}[31m平安"),
            "a\\nERROR forged\\r\\u{1b}[31m平安"
        );
    }
}
