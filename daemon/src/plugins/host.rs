//! The host side of the WIT world: bindings generated once here from `sdk/wit/`, the per-call
//! store data, and the two host imports (logging, the plugin's configuration).

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result as WtResult};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

#[allow(unsafe_code, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "action-plugin",
    });
}

pub use bindings::ActionPlugin;
pub use bindings::ActionPluginPre;
pub use bindings::exports::linli::plugin::action as wit_action;
pub use bindings::linli::plugin::host::Level;
pub use bindings::linli::plugin::types as wit;

/// The interface version this host implements.
pub const INTERFACE: &str = "linli:plugin@0.1.0";

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
    pub logs: Vec<LogLine>,
    pub stderr: MemoryOutputPipe,
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

const MAX_LOG_LINES: usize = 200;
const MAX_LOG_LINE: usize = 2000;

impl bindings::linli::plugin::host::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let message: String = message.chars().take(MAX_LOG_LINE).collect();
        match level {
            "error" => tracing::error!(plugin = %self.plugin, "{message}"),
            "warn" => tracing::warn!(plugin = %self.plugin, "{message}"),
            "info" => tracing::info!(plugin = %self.plugin, "{message}"),
            _ => tracing::debug!(plugin = %self.plugin, "{message}"),
        }
        if self.logs.len() < MAX_LOG_LINES {
            self.logs.push(LogLine {
                level: level.to_owned(),
                message,
            });
        }
    }

    fn config(&mut self) -> String {
        self.config.clone()
    }
}

impl wit::Host for CallState {}

/// Adds the host imports and a locked-down WASI to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> WtResult<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    ActionPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
    Ok(())
}
