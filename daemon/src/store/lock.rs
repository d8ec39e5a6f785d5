//! One daemon per data folder. `linlid serve` (and `linlid demo`) hold an exclusive lock on
//! `linli.lock` beside the database for as long as they run; a second one refuses to start and
//! names the holder's process id. CLI commands (`token`, `import`, …) open the database without
//! it and keep working beside a running daemon. The lock is the operating system's (`flock`):
//! it goes away with the process, however the process ends, so a crash leaves nothing to clean.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the data folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{folder} is in use by another linlid (pid {pid}): stop it first, or point this one at \
         another data_dir. CLI commands such as `linlid token` and `linlid import` work beside it"
    )]
    Held { folder: PathBuf, pid: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
    path: PathBuf,
}

impl DataLock {
    /// Takes the lock of the folder holding `database`, writing this process's id into it.
    pub fn acquire(database: &Path) -> Result<DataLock, LockError> {
        let folder = database
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let path = folder.join("linli.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&folder).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    folder,
                    pid: if pid.is_empty() {
                        "unknown".to_owned()
                    } else {
                        pid.chars().take(20).collect()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let db = dir.path().join("linli.redb");
        let first = DataLock::acquire(&db);
        assert!(first.is_ok());
        match DataLock::acquire(&db) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(DataLock::acquire(&db).is_ok(), "released when dropped");
    }
}
