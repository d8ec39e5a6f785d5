//! What `linlid`'s subcommands do, each as a function of plain arguments; `main.rs` only parses
//! the arguments, calls one of these and turns a [`Failure`] into the process's exit code.

pub mod admin;
pub mod bench;
pub mod bench_console;
pub mod bench_coverage;
pub mod bench_match;
pub mod matching;
pub mod plugin;
pub mod serve;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, LogFormat};
use crate::plugins::runtime::Compiler;
use crate::store::{OpenError, OpenOptions, Store};

/// A failure with its exit code (see [`Failure::exit_code`]).
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or config.
    Usage(String),
    /// The database file was refused.
    Database(OpenError),
    /// The data folder is held by another daemon.
    Locked(String),
    /// The input (rows, a plugin) was refused.
    Rejected(String),
    Runtime(anyhow::Error),
}

impl Failure {
    /// 0 success; 1 runtime failure; 2 bad arguments or config; 3 database refused (not a
    /// linli database, damaged, from a newer version, or in use by another `linlid serve`);
    /// 4 input refused (invalid rows, a refused plugin).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Runtime(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Database(_) | Failure::Locked(_) => 3,
            Failure::Rejected(_) => 4,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Locked(m) => write!(f, "error: {m}"),
            Failure::Database(e) => write!(f, "error: {e}"),
            Failure::Rejected(m) => write!(f, "{m}"),
            Failure::Runtime(e) => write!(f, "error: {e:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Where the database is: a config file's `data_dir`, or a data folder (default `./linli-data`).
pub fn database_path(config: Option<&Path>, data: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(c) = config {
        let cfg = Config::load(c).map_err(|e| Failure::Usage(e.to_string()))?;
        // Dates (ages, expiry) are judged in the configured zone.
        crate::clock::set_local_zone(cfg.tz());
        return Ok(cfg.database_path());
    }
    let dir = data.map_or_else(|| PathBuf::from("linli-data"), Path::to_path_buf);
    Ok(dir.join("linli.redb"))
}

pub fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// Logging with a default level; `RUST_LOG` overrides it.
pub fn init_logging_at(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Takes the data folder's daemon lock (`store::DataLock`).
pub(crate) fn lock_data(database: &Path) -> Result<crate::store::DataLock, Failure> {
    crate::store::DataLock::acquire(database).map_err(|e| Failure::Locked(e.to_string()))
}

pub(crate) fn open_store(path: &Path, check_integrity: bool) -> Result<Store, Failure> {
    Store::open(
        path,
        OpenOptions {
            check_integrity,
            ..OpenOptions::default()
        },
    )
    .map_err(Failure::Database)
}

/// The daemon compiles plugins in a child process of this very binary.
pub(crate) fn compiler() -> Compiler {
    match std::env::current_exe() {
        Ok(exe) => Compiler::Child(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find linlid's own path; compiling plugins in-process");
            Compiler::InProcess
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Runtime)
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        Failure::Usage(format!(
            "{}: {} at line {}, column {}",
            path.display(),
            e,
            e.inner().line(),
            e.inner().column()
        ))
    })
}
