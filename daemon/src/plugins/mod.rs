//! Action plugins: WebAssembly components implementing `linli:plugin` (sdk/wit/).
//!
//! - `host`    — the generated bindings and the host imports (logging with budgets, configuration).
//! - `runtime` — engine, limits, loading, one fresh store per call, deadlines that hold.
//! - `checks`  — what the host accepts: component size and shape, describe, drafts, reviews.
//! - `compile` — compiling in a child process with memory and time limits.
//! - `model`   — the interface's data as the API serves it.
//! - `catalog` — deployed plugins: versions kept in the store, hot replacement, rollback,
//!   quarantine, metrics.
//! - `folder`  — picks up `.wasm` files dropped into the plugin folder.
//!
//! Never: a plugin sees files, network, environment or the clock beyond what `runtime` gives it.

pub mod catalog;
pub mod checks;
pub mod compile;
pub mod folder;
pub mod host;
pub mod model;
pub mod runtime;
pub mod schema;

/// The four shipped action plugins, built from `plugins/` by `build.rs`: (file name, bytes).
pub const SHIPPED: [(&str, &[u8]); 4] = [
    (
        "elderly-visit.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/elderly_visit.wasm")),
    ),
    (
        "child-protection.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/child_protection.wasm")),
    ),
    (
        "disability-care.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/disability_care.wasm")),
    ),
    (
        "emergency-drill.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/emergency_drill.wasm")),
    ),
];
