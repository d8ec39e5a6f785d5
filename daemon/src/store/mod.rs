//! The redb store: the only code that opens tables. Records are kept as JSON in typed tables
//! keyed by id, with secondary index tables beside them that every write keeps in step inside
//! the same transaction. The file records its schema version; a file from a newer linli, a file
//! that is not a redb database, or a damaged one is refused with a clear [`OpenError`].
//!
//! Never: HTTP, scopes or validation rules here — callers hand in records already checked.

mod console;
mod lock;
mod notify;
mod outbox;
mod plugins;
mod records;
mod registry;
mod schedule;
mod tables;
mod tokens;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableDatabase;

pub use console::ConsoleTable;
pub use lock::{DataLock, LockError};
pub use registry::{Duplicate, PersonWriter, VolunteerWriter};
pub use schedule::{ActiveTask, TaskWriter};
pub use tables::SCHEMA_VERSION;
pub use tx::{Page, ReadTx, WriteTx};

/// Errors from reading or writing an open store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error(
        "record {key} in table {table} cannot be read ({detail}); the file may be damaged — restore it from a backup"
    )]
    Corrupt {
        table: &'static str,
        key: String,
        detail: String,
    },
    #[error("a record for table {table} cannot be written ({detail}); nothing was stored")]
    Encode { table: &'static str, detail: String },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TableError,
    redb::StorageError,
    redb::TransactionError,
    redb::CommitError
);

/// Why a database file could not be opened. Each maps to its own exit code in `linlid`.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a linli database (it is not a redb file, or its header is damaged): \
         point data_dir at the right folder, or restore the file from a backup"
    )]
    NotADatabase { path: PathBuf },
    #[error("{path} is damaged ({detail}): restore it from a backup")]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{path} was written by a newer linli (schema {found}; this linlid reads up to \
         {supported}): upgrade linlid, or restore a backup made with this version"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("{path} is a redb database but not linli's (it has no linli schema record)")]
    Foreign { path: PathBuf },
    #[error(
        "{path} is in use by another process that holds it exclusively: stop it, or use the \
         HTTP API of the running daemon"
    )]
    InUse { path: PathBuf },
    #[error("cannot open {path}: {detail}")]
    Other { path: PathBuf, detail: String },
}

/// How to open the store.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Verify every page's checksum on open (slower for big files, but a damaged file is
    /// refused up front instead of failing later).
    pub check_integrity: bool,
    /// Bytes of page cache redb may keep (it defaults to 1 GiB, more than a county needs).
    pub cache_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            check_integrity: true,
            cache_bytes: 128 << 20,
        }
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<redb::Database>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path, options: OpenOptions) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Folder {
                path: dir.to_owned(),
                source,
            })?;
        }
        let owned = path.to_owned();
        // redb documents that a plain open of an altered file may panic; the integrity check
        // turns that into an error, and this catch is the last line of defence.
        let opened = std::panic::catch_unwind(move || {
            let mut builder = redb::Database::builder();
            builder.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
            builder.set_cache_size(options.cache_bytes);
            if options.check_integrity && owned.exists() {
                builder.set_check_integrity_on_open(true);
            }
            builder.create(&owned)
        });
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_error(path, e)),
            Err(_) => {
                return Err(OpenError::Damaged {
                    path: path.to_owned(),
                    detail: "the storage engine could not read it".to_owned(),
                });
            }
        };
        let store = Store {
            db: Arc::new(db),
            path: Arc::new(path.to_owned()),
        };
        store.check_schema()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_schema(&self) -> Result<(), OpenError> {
        let damaged = |e: StoreError| OpenError::Damaged {
            path: self.path().to_owned(),
            detail: e.to_string(),
        };
        let (version, has_tables) = self
            .read(|r| Ok((r.meta(tables::SCHEMA_KEY)?, r.has_any_table()?)))
            .map_err(damaged)?;
        match version {
            Some(v) if v > SCHEMA_VERSION => Err(OpenError::NewerSchema {
                path: self.path().to_owned(),
                found: v,
                supported: SCHEMA_VERSION,
            }),
            // Tables added since the file was made are created here (a no-op when present).
            Some(_) => self.write(|w| w.init_schema()).map_err(damaged),
            None if has_tables => Err(OpenError::Foreign {
                path: self.path().to_owned(),
            }),
            None => self.write(|w| w.init_schema()).map_err(damaged),
        }
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<R, E>,
    ) -> Result<R, E> {
        let txn = self.db.begin_read().map_err(StoreError::from)?;
        f(&ReadTx::new(txn))
    }

    /// Runs `f` in a write transaction and commits it if `f` succeeds; on error nothing `f`
    /// wrote is kept. Blocks while another write is in progress, so call it off the async
    /// executor (`spawn_blocking`).
    pub fn write<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<R, E>,
    ) -> Result<R, E> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let mut tx = WriteTx::new(txn);
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Row counts of the main tables, for `/metrics`.
    pub fn sizes(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        self.read(|r| r.sizes())
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(self.path()).map(|m| m.len()).unwrap_or(0)
    }
}

fn open_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    let path = path.to_owned();
    if e.to_string().contains("Not a redb database") {
        return OpenError::NotADatabase { path };
    }
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            OpenError::InUse { path }
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            if detail.contains("magic") || detail.contains("header") {
                OpenError::NotADatabase { path }
            } else {
                OpenError::Damaged { path, detail }
            }
        }
        redb::DatabaseError::UpgradeRequired(v) => OpenError::Other {
            path,
            detail: format!(
                "written by an older redb file format ({v}); upgrade it with a redb migration tool"
            ),
        },
        other => OpenError::Other {
            path,
            detail: other.to_string(),
        },
    }
}
