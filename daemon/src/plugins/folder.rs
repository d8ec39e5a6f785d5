//! Picks up `.wasm` files dropped into the plugin folder: every `interval`, a file that is new
//! or changed (size or modification time) is deployed as if an administrator had uploaded it.
//! A file whose component is stored already changes nothing, so a restart (which sees every
//! file as new) neither undoes a rollback nor lifts a quarantine, and compiles nothing.
//! Files that are refused are remembered with the reason, for `GET /v1/plugins`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::catalog::{Actor, Catalog};

/// Files the folder watcher refused, by path.
#[derive(Clone, Default)]
pub struct Rejected(Arc<Mutex<BTreeMap<PathBuf, String>>>);

impl Rejected {
    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, path: &Path, reason: Option<String>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match reason {
            Some(r) => {
                m.insert(path.to_owned(), r);
            }
            None => {
                m.remove(path);
            }
        }
    }
}

type Signature = (u64, Option<SystemTime>);

/// Scans `dir` once, deploying new or changed files. Returns how many were deployed.
pub fn scan(
    dir: &Path,
    catalog: &Catalog,
    seen: &mut HashMap<PathBuf, Signature>,
    rejected: &Rejected,
) -> usize {
    let Ok(read) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut deployed = 0;
    for entry in read.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let sig = (meta.len(), meta.modified().ok());
        if seen.get(&path) == Some(&sig) {
            continue;
        }
        seen.insert(path.clone(), sig);
        let max = catalog.runtime().settings().max_component_mib;
        if meta.len() > max.saturating_mul(1 << 20) {
            rejected.set(
                &path,
                Some(format!(
                    "the file is {} bytes; this daemon accepts at most {max} MiB \
                     (plugins.max_component_mib)",
                    meta.len()
                )),
            );
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                rejected.set(&path, Some(format!("cannot read: {e}")));
                continue;
            }
        };
        let actor = Actor {
            label: format!(
                "folder:{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
            ),
            bureau: None,
        };
        match catalog.deploy(&bytes, &actor) {
            Ok(done) => {
                rejected.set(&path, None);
                if done.changed {
                    deployed += 1;
                    tracing::info!(file = %path.display(), plugin = %done.status.id, version = %done.status.active_version, "plugin picked up from the folder");
                }
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "plugin file refused");
                rejected.set(&path, Some(e.to_string()));
            }
        }
    }
    deployed
}

/// Watches `dir` until `shutdown` fires.
pub async fn watch(
    dir: PathBuf,
    catalog: Arc<Catalog>,
    rejected: Rejected,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut seen: HashMap<PathBuf, Signature> = HashMap::new();
    loop {
        let (d, c, r, mut s) = (
            dir.clone(),
            catalog.clone(),
            rejected.clone(),
            std::mem::take(&mut seen),
        );
        let scanned = tokio::task::spawn_blocking(move || {
            scan(&d, &c, &mut s, &r);
            s
        })
        .await;
        seen = scanned.unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
