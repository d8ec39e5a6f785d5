//! Transactions, and what every domain's access shares: encoding, decoding and paging. The
//! typed accessors live beside this file, one module per domain; read accessors written once
//! with [`reads!`] serve both transaction kinds.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;

/// One page of a list, with the cursor of the next page if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub(super) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: impl std::fmt::Display,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A record as stored; a value that cannot be serialised is an error, never empty bytes.
pub(super) fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        table,
        detail: e.to_string(),
    })
}

/// Loads the records named by `ids` (from an index scan), keeps those `keep` accepts, and stops
/// after `limit`, giving the cursor of the last one returned when more remain.
pub(super) fn collect_page<T: DeserializeOwned>(
    records: &redb::ReadOnlyTable<u64, &'static [u8]>,
    name: &'static str,
    ids: impl Iterator<Item = Result<u64, redb::StorageError>>,
    limit: usize,
    mut keep: impl FnMut(&T) -> bool,
    cursor: impl Fn(&T) -> String,
) -> Result<Page<T>, StoreError> {
    let mut items: Vec<T> = Vec::new();
    for id in ids {
        let id = id?;
        let Some(bytes) = records.get(id)? else {
            continue;
        };
        let record: T = decode(name, id, bytes.value())?;
        if keep(&record) {
            if items.len() == limit {
                let next = items.last().map(&cursor);
                return Ok(Page { items, next });
            }
            items.push(record);
        }
    }
    Ok(Page { items, next: None })
}

/// Read accessors shared by read and write transactions: the body is implemented for both.
macro_rules! reads {
    ($($body:tt)*) => {
        impl $crate::store::ReadTx { $($body)* }
        impl $crate::store::WriteTx { $($body)* }
    };
}
pub(super) use reads;

reads! {
    /// A meta value; `None` when unset, or when the file has no meta table at all.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let t = match self.txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(t.get(key)?.map(|v| v.value()))
    }
}

/// A read transaction: a consistent snapshot.
pub struct ReadTx {
    pub(super) txn: redb::ReadTransaction,
}

// A snapshot may be read from several threads at once (the coverage report scans visits on one
// thread while it counts people on another).
const _: fn() = || {
    fn shared<T: Sync + Send>() {}
    shared::<ReadTx>();
};

impl ReadTx {
    pub(super) fn new(txn: redb::ReadTransaction) -> Self {
        Self { txn }
    }

    pub(super) fn has_any_table(&self) -> Result<bool, StoreError> {
        Ok(self.txn.list_tables()?.next().is_some())
    }

    /// Rows of an id-keyed table after id `after`, filtered.
    pub(super) fn page_by_id<T: DeserializeOwned>(
        &self,
        def: redb::TableDefinition<'static, u64, &'static [u8]>,
        name: &'static str,
        after: u64,
        limit: usize,
        mut keep: impl FnMut(&T) -> bool,
    ) -> Result<Page<T>, StoreError> {
        let t = self.txn.open_table(def)?;
        let mut items = Vec::new();
        let mut last = after;
        for row in t.range(after.saturating_add(1)..)? {
            let (k, v) = row?;
            let record: T = decode(name, k.value(), v.value())?;
            if keep(&record) {
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next: Some(last.to_string()),
                    });
                }
                items.push(record);
                last = k.value();
            }
        }
        Ok(Page { items, next: None })
    }

    /// Records of `records` whose key in `index` ((community, id)) starts with one of
    /// `prefixes` (sorted, non-overlapping), in (community, id) order, after the cursor
    /// `(community, id)`; `cursor` renders a record's cursor.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn page_in_regions<T: DeserializeOwned>(
        &self,
        index: redb::TableDefinition<'static, (&'static str, u64), ()>,
        records: redb::TableDefinition<'static, u64, &'static [u8]>,
        name: &'static str,
        prefixes: &[String],
        after: Option<(&str, u64)>,
        limit: usize,
        keep: impl FnMut(&T) -> bool,
        cursor: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        let index = self.txn.open_table(index)?;
        let mut ranges = Vec::new();
        for prefix in prefixes {
            let end = format!("{prefix}~");
            let lower = match after {
                Some((code, _)) if code >= end.as_str() => continue,
                Some((code, id)) if code >= prefix.as_str() => (code, id.saturating_add(1)),
                _ => (prefix.as_str(), 0),
            };
            ranges.push(index.range(lower..(end.as_str(), 0))?);
        }
        let ids = ranges
            .into_iter()
            .flatten()
            .map(|row| row.map(|(k, _)| k.value().1));
        let table = self.txn.open_table(records)?;
        collect_page(&table, name, ids, limit, keep, cursor)
    }

    pub(super) fn sizes(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        Ok(vec![
            ("regions", self.txn.open_table(REGIONS)?.len()?),
            ("stations", self.txn.open_table(STATIONS)?.len()?),
            ("persons", self.txn.open_table(PERSONS)?.len()?),
            ("volunteers", self.txn.open_table(VOLUNTEERS)?.len()?),
            ("tokens", self.txn.open_table(TOKENS)?.len()?),
            ("plugins", self.txn.open_table(PLUGINS)?.len()?),
            ("duties", self.txn.open_table(DUTIES)?.len()?),
            ("tasks", self.txn.open_table(TASKS)?.len()?),
            ("events", self.txn.open_table(EVENTS)?.len()?),
            ("reports", self.txn.open_table(REPORTS)?.len()?),
            (
                "service_records",
                self.txn.open_table(SERVICE_RECORDS)?.len()?,
            ),
            ("audit", self.txn.open_table(AUDIT)?.len()?),
        ])
    }
}

/// A write transaction. Dropped without [`WriteTx::commit`] (which `Store::write` calls on
/// success), everything written is discarded.
pub struct WriteTx {
    pub(super) txn: redb::WriteTransaction,
}

impl WriteTx {
    pub(super) fn new(txn: redb::WriteTransaction) -> Self {
        Self { txn }
    }

    pub(super) fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit()?)
    }

    /// Creates every table this build uses (idempotent), and records the schema version.
    pub(super) fn init_schema(&mut self) -> Result<(), StoreError> {
        self.txn.open_table(REGIONS)?;
        self.txn.open_table(PLUGIN_COMPILED)?;
        self.txn.open_table(STATIONS)?;
        self.txn.open_table(PERSONS)?;
        self.txn.open_table(PERSONS_BY_COMMUNITY)?;
        self.txn.open_table(PERSONS_BY_CATEGORY)?;
        self.txn.open_table(PERSONS_BY_RESIDENT_ID)?;
        self.txn.open_table(VOLUNTEERS)?;
        self.txn.open_table(VOLUNTEERS_BY_STATION)?;
        self.txn.open_table(VOLUNTEERS_BY_RESIDENT_ID)?;
        self.txn.open_table(TOKENS)?;
        self.txn.open_table(CONSOLE_USERS)?;
        self.txn.open_table(CONSOLE_SESSIONS)?;
        self.txn.open_table(CONSOLE_LOGIN_LINKS)?;
        self.txn.open_table(PLUGINS)?;
        self.txn.open_table(PLUGIN_WASM)?;
        self.txn.open_table(DUTIES)?;
        self.txn.open_table(OCCURRENCES)?;
        self.txn.open_table(OCCURRENCES_PENDING)?;
        self.txn.open_table(TASKS)?;
        self.txn.open_table(TASK_KEYS)?;
        self.txn.open_table(TASKS_BY_DUTY)?;
        self.txn.open_table(TASKS_BY_COMMUNITY)?;
        self.txn.open_table(TASKS_OPEN_BY_DUE)?;
        self.txn.open_table(TASKS_BY_VOLUNTEER)?;
        self.txn.open_table(OFFERS_BY_DEADLINE)?;
        self.txn.open_table(CALENDARS)?;
        self.index_task_statuses()?;
        self.migrate_overdue_status()?;
        self.index_active_tasks()?;
        self.txn.open_table(EVENTS)?;
        self.txn.open_table(CHECKLISTS)?;
        self.txn.open_table(ENDPOINTS)?;
        self.txn.open_table(MESSAGES)?;
        self.txn.open_table(MESSAGES_DUE)?;
        self.txn.open_table(MESSAGES_PENDING)?;
        self.txn.open_table(MESSAGES_BY_ENDPOINT)?;
        self.txn.open_table(REPORTS)?;
        self.txn.open_table(REPORTS_BY_TASK)?;
        self.txn.open_table(REPORTS_UNREVIEWED)?;
        self.txn.open_table(SERVICE_RECORDS)?;
        self.txn.open_table(SERVICE_BY_VOLUNTEER)?;
        self.txn.open_table(CERTIFICATES)?;
        self.txn.open_table(CERTIFICATES_BY_VOLUNTEER)?;
        self.txn.open_table(RATINGS)?;
        self.txn.open_table(RATING_LINKS)?;
        self.txn.open_table(CARE_SPANS)?;
        self.txn.open_table(PERSON_VISITS)?;
        self.txn.open_table(COMMUNITY_VISITS)?;
        self.txn.open_table(TASK_COUNTS)?;
        self.txn.open_table(SERVICE_MINUTES)?;
        self.txn.open_table(RATING_COUNTS)?;
        self.txn.open_table(ROLE_HOLDERS)?;
        self.txn.open_table(AUDIT)?;
        self.build_record_indexes()?;
        let mut meta = self.txn.open_table(META)?;
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
        Ok(())
    }

    /// Sets a meta value.
    pub fn set_meta(&mut self, key: &str, value: u64) -> Result<(), StoreError> {
        self.txn.open_table(META)?.insert(key, value)?;
        Ok(())
    }

    /// Reserves `count` consecutive ids of `kind` and returns the first.
    pub fn reserve_ids(&mut self, kind: &str, count: u64) -> Result<u64, StoreError> {
        let key = format!("next_id:{kind}");
        let mut meta = self.txn.open_table(META)?;
        let first = meta.get(key.as_str())?.map(|v| v.value()).unwrap_or(1);
        meta.insert(key.as_str(), first.saturating_add(count))?;
        Ok(first)
    }
}
