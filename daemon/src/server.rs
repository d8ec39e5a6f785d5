//! Running the daemon: serve the API on a listener until the shutdown future resolves, then
//! drain in-flight requests within the grace period.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::{self, AppState};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time in-flight requests get to finish after shutdown is asked.
    pub grace: Duration,
    /// Folder watched for `.wasm` plugins, if any.
    pub plugin_dir: Option<PathBuf>,
    /// How often the plugin folder is scanned.
    pub plugin_scan: Duration,
    /// Run the duty scheduler loop (tests that drive `Scheduler::tick` themselves turn it off).
    pub scheduler: bool,
}

impl ServeOptions {
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            plugin_dir: None,
            plugin_scan: Duration::from_secs(2),
            scheduler: true,
        }
    }
}

/// Serves until `shutdown` resolves; in-flight requests get `opts.grace` to finish, and the
/// plugin-folder watcher stops with them.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let grace = opts.grace;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = opts.plugin_dir.map(|dir| {
        tokio::spawn(crate::plugins::folder::watch(
            dir,
            state.plugins.clone(),
            state.rejected.clone(),
            opts.plugin_scan,
            stop_rx.clone(),
        ))
    });
    let scheduler = opts
        .scheduler
        .then(|| tokio::spawn(state.scheduler.clone().run(stop_rx.clone())));
    let state_plugins = state.plugins.clone();
    let app = api::router(state);
    let mut server = tokio::spawn({
        let mut rx = stop_rx.clone();
        async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        }
    });
    tokio::select! {
        r = &mut server => return r.map_err(std::io::Error::other)?,
        () = shutdown => {}
    }
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: draining requests"
    );
    let _ = stop_tx.send(true);
    // Plugin calls and compiles in flight stop now, so nothing below waits on a plugin.
    let plugins = state_plugins.clone();
    let _ = tokio::task::spawn_blocking(move || plugins.shutdown()).await;
    if let Some(w) = watcher {
        let _ = tokio::time::timeout(grace, w).await;
    }
    if let Some(mut scheduler) = scheduler
        && tokio::time::timeout(grace, &mut scheduler).await.is_err()
    {
        tracing::warn!("the scheduler did not stop within the grace period; stopping it");
        scheduler.abort();
    }
    match tokio::time::timeout(grace, &mut server).await {
        Ok(r) => r.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!("grace period over; closing remaining connections");
            server.abort();
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
