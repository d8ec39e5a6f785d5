//! Running the daemon: serve the API on a listener until the shutdown future resolves, then
//! stop everything the server owns within one grace period.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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

/// Serves until `shutdown` resolves. Then one cancellation reaches everything the server owns —
/// the HTTP server (which drains in-flight requests), the scheduler loop and its running
/// occurrences (which stop between chunks and stay pending), the plugin-folder watcher, and
/// every plugin call and compile — and all of it gets `opts.grace`, together, to finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let grace = opts.grace;
    // The state's own token, so requests that run long (imports) see the stop too.
    let stop: CancellationToken = state.stopping.clone();
    let tracker = TaskTracker::new();
    if let Some(dir) = opts.plugin_dir {
        tracker.spawn(crate::plugins::folder::watch(
            dir,
            state.plugins.clone(),
            state.rejected.clone(),
            opts.plugin_scan,
            stop.clone(),
        ));
    }
    if opts.scheduler {
        tracker.spawn(state.scheduler.clone().run());
        tracker.spawn(state.records.clone().run(stop.clone()));
    }
    tracker.spawn(state.notifier.clone().run(stop.clone()));
    let (scheduler, plugins) = (state.scheduler.clone(), state.plugins.clone());
    let app = api::router(state);
    let mut server = tracker.spawn({
        let stop = stop.clone();
        async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        }
    });
    tracker.close();
    tokio::select! {
        r = &mut server => return r.map_err(std::io::Error::other)?,
        () = shutdown => {}
    }
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: draining requests, stopping duties and plugin calls"
    );
    stop.cancel();
    scheduler.shutdown();
    // Plugin calls and compiles in flight stop now, so nothing below waits on a plugin.
    let _ = tokio::task::spawn_blocking(move || plugins.shutdown()).await;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("grace period over; stopping what is left");
        server.abort();
    }
    Ok(())
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
