//! Typed access inside read and write transactions.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;
use crate::registry::{Person, Region, Station, Volunteer};
use crate::schedule::{Duty, Event, Occurrence, Task, TaskStatus};

/// One page of a list, with the cursor of the next page if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

fn decode<T: DeserializeOwned>(
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
fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        table,
        detail: e.to_string(),
    })
}

/// Loads the records named by `ids` (from an index scan), keeps those `keep` accepts, and stops
/// after `limit`, giving the cursor of the last one returned when more remain.
fn collect_page<T: DeserializeOwned>(
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

/// Read accessors shared by read and write transactions.
macro_rules! getters {
    () => {
        /// A meta value; `None` when unset, or when the file has no meta table at all.
        pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
            let t = match self.txn.open_table(META) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(t.get(key)?.map(|v| v.value()))
        }

        pub fn region(&self, code: &str) -> Result<Option<Region>, StoreError> {
            let t = self.txn.open_table(REGIONS)?;
            t.get(code)?
                .map(|v| decode("regions", code, v.value()))
                .transpose()
        }

        pub fn station(&self, id: u64) -> Result<Option<Station>, StoreError> {
            let t = self.txn.open_table(STATIONS)?;
            t.get(id)?
                .map(|v| decode("stations", id, v.value()))
                .transpose()
        }

        /// Every station; there are tens per county, so this is cheap.
        pub fn all_stations(&self) -> Result<Vec<Station>, StoreError> {
            let t = self.txn.open_table(STATIONS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push(decode("stations", k.value(), v.value())?);
            }
            Ok(out)
        }

        pub fn person(&self, id: u64) -> Result<Option<Person>, StoreError> {
            let t = self.txn.open_table(PERSONS)?;
            t.get(id)?
                .map(|v| decode("persons", id, v.value()))
                .transpose()
        }

        pub fn person_id_by_resident_id(&self, rid: &str) -> Result<Option<u64>, StoreError> {
            let t = self.txn.open_table(PERSONS_BY_RESIDENT_ID)?;
            Ok(t.get(rid)?.map(|v| v.value()))
        }

        pub fn volunteer(&self, id: u64) -> Result<Option<Volunteer>, StoreError> {
            let t = self.txn.open_table(VOLUNTEERS)?;
            t.get(id)?
                .map(|v| decode("volunteers", id, v.value()))
                .transpose()
        }

        pub fn volunteer_id_by_resident_id(&self, rid: &str) -> Result<Option<u64>, StoreError> {
            let t = self.txn.open_table(VOLUNTEERS_BY_RESIDENT_ID)?;
            Ok(t.get(rid)?.map(|v| v.value()))
        }

        pub fn plugin<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StoreError> {
            let t = self.txn.open_table(PLUGINS)?;
            t.get(id)?
                .map(|v| decode("plugins", id, v.value()))
                .transpose()
        }

        /// Every plugin record.
        pub fn all_plugins<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
            let t = self.txn.open_table(PLUGINS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push(decode("plugins", k.value(), v.value())?);
            }
            Ok(out)
        }

        /// The bytes of one deployed plugin version.
        pub fn plugin_wasm(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
            let t = self.txn.open_table(PLUGIN_WASM)?;
            Ok(t.get((id, version))?.map(|v| v.value().to_vec()))
        }

        /// A precompiled artifact of a component for an engine, if one was cached.
        pub fn plugin_compiled(
            &self,
            sha256: &str,
            engine: &str,
        ) -> Result<Option<Vec<u8>>, StoreError> {
            let t = self.txn.open_table(PLUGIN_COMPILED)?;
            Ok(t.get((sha256, engine))?.map(|v| v.value().to_vec()))
        }

        pub fn duty(&self, id: u64) -> Result<Option<Duty>, StoreError> {
            let t = self.txn.open_table(DUTIES)?;
            t.get(id)?
                .map(|v| decode("duties", id, v.value()))
                .transpose()
        }

        pub fn all_duties(&self) -> Result<Vec<Duty>, StoreError> {
            let t = self.txn.open_table(DUTIES)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push(decode("duties", k.value(), v.value())?);
            }
            Ok(out)
        }

        pub fn occurrence(&self, duty: u64, at: i64) -> Result<Option<Occurrence>, StoreError> {
            let t = self.txn.open_table(OCCURRENCES)?;
            t.get((duty, at))?
                .map(|v| decode("occurrences", format!("{duty}@{at}"), v.value()))
                .transpose()
        }

        /// Occurrences the scheduler loop still has to run: queued, interrupted by a stop, or
        /// failed with a retry to come.
        pub fn pending_occurrences(&self) -> Result<Vec<(u64, i64)>, StoreError> {
            let t = self.txn.open_table(OCCURRENCES_PENDING)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                out.push(row?.0.value());
            }
            Ok(out)
        }

        pub fn checklist(
            &self,
            id: u64,
        ) -> Result<Option<Vec<crate::plugins::model::ChecklistItem>>, StoreError> {
            let t = self.txn.open_table(CHECKLISTS)?;
            t.get(id)?
                .map(|v| decode("checklists", id, v.value()))
                .transpose()
        }

        pub fn task(&self, id: u64) -> Result<Option<Task>, StoreError> {
            let t = self.txn.open_table(TASKS)?;
            t.get(id)?
                .map(|v| decode("tasks", id, v.value()))
                .transpose()
        }

        /// The earliest due end among open tasks (Unix seconds).
        pub fn first_open_due(&self) -> Result<Option<i64>, StoreError> {
            let t = self.txn.open_table(TASKS_OPEN_BY_DUE)?;
            Ok(t.first()?.map(|(k, _)| k.value().0))
        }

        /// Every token record with its hash.
        pub fn all_tokens<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, StoreError> {
            let t = self.txn.open_table(TOKENS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push((k.value().to_owned(), decode("tokens", "(hash)", v.value())?));
            }
            Ok(out)
        }

        pub fn token<T: DeserializeOwned>(&self, hash: &str) -> Result<Option<T>, StoreError> {
            let t = self.txn.open_table(TOKENS)?;
            t.get(hash)?
                .map(|v| decode("tokens", "(hash)", v.value()))
                .transpose()
        }
    };
}

/// A read transaction: a consistent snapshot.
pub struct ReadTx {
    txn: redb::ReadTransaction,
}

impl ReadTx {
    pub(super) fn new(txn: redb::ReadTransaction) -> Self {
        Self { txn }
    }

    getters!();

    pub(super) fn has_any_table(&self) -> Result<bool, StoreError> {
        Ok(self.txn.list_tables()?.next().is_some())
    }

    /// Regions whose code starts with `prefix`, in code order, after the cursor `after`.
    pub fn regions(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&Region) -> bool,
    ) -> Result<Page<Region>, StoreError> {
        let t = self.txn.open_table(REGIONS)?;
        let end = format!("{prefix}~");
        let start = after
            .map(|a| format!("{a}\0"))
            .unwrap_or_else(|| prefix.to_owned());
        let mut items = Vec::new();
        for row in t.range(start.as_str()..end.as_str())? {
            let (k, v) = row?;
            let r: Region = decode("regions", k.value(), v.value())?;
            if keep(&r) {
                if items.len() == limit {
                    let next = items.last().map(|l: &Region| l.code.clone());
                    return Ok(Page { items, next });
                }
                items.push(r);
            }
        }
        Ok(Page { items, next: None })
    }

    /// Rows of an id-keyed table after id `after`, filtered.
    fn page_by_id<T: DeserializeOwned>(
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

    pub fn stations(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Station) -> bool,
    ) -> Result<Page<Station>, StoreError> {
        self.page_by_id(STATIONS, "stations", after, limit, keep)
    }

    pub fn persons(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Person) -> bool,
    ) -> Result<Page<Person>, StoreError> {
        self.page_by_id(PERSONS, "persons", after, limit, keep)
    }

    pub fn volunteers(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Volunteer) -> bool,
    ) -> Result<Page<Volunteer>, StoreError> {
        self.page_by_id(VOLUNTEERS, "volunteers", after, limit, keep)
    }

    /// Records of `records` whose key in `index` ((community, id)) starts with one of
    /// `prefixes` (sorted, non-overlapping), in (community, id) order, after the cursor
    /// `(community, id)`; `cursor` renders a record's cursor.
    #[allow(clippy::too_many_arguments)]
    fn page_in_regions<T: DeserializeOwned>(
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

    /// Persons whose community code starts with one of `prefixes` (sorted, non-overlapping),
    /// in (community, id) order, after the cursor `community~id`.
    pub fn persons_in_regions(
        &self,
        prefixes: &[String],
        after: Option<(&str, u64)>,
        limit: usize,
        keep: impl FnMut(&Person) -> bool,
    ) -> Result<Page<Person>, StoreError> {
        self.page_in_regions(
            PERSONS_BY_COMMUNITY,
            PERSONS,
            "persons",
            prefixes,
            after,
            limit,
            keep,
            |p: &Person| format!("{}~{}", p.community, p.id),
        )
    }

    /// Every person whose community starts with `prefix`, decoded as `T` — a projection of
    /// `Person` (fields `T` does not name are skipped, which is much cheaper than a full
    /// record when planning over a county).
    pub fn persons_under_as<T: DeserializeOwned>(
        &self,
        prefix: &str,
        keep: impl FnMut(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let index = self.txn.open_table(PERSONS_BY_COMMUNITY)?;
        let end = format!("{prefix}~");
        let ids = index
            .range((prefix, 0)..(end.as_str(), 0))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let persons = self.txn.open_table(PERSONS)?;
        Ok(
            collect_page(&persons, "persons", ids, usize::MAX, keep, |_: &T| {
                String::new()
            })?
            .items,
        )
    }

    /// Persons in a category, in id order.
    pub fn persons_in_category(
        &self,
        category: &str,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Person) -> bool,
    ) -> Result<Page<Person>, StoreError> {
        let index = self.txn.open_table(PERSONS_BY_CATEGORY)?;
        let ids = index
            .range((category, after.saturating_add(1))..=(category, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let persons = self.txn.open_table(PERSONS)?;
        collect_page(&persons, "persons", ids, limit, keep, |p: &Person| {
            p.id.to_string()
        })
    }

    /// Volunteers of one station, in id order.
    pub fn volunteers_of_station(
        &self,
        station: u64,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Volunteer) -> bool,
    ) -> Result<Page<Volunteer>, StoreError> {
        let index = self.txn.open_table(VOLUNTEERS_BY_STATION)?;
        let ids = index
            .range((station, after.saturating_add(1))..=(station, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let table = self.txn.open_table(VOLUNTEERS)?;
        collect_page(&table, "volunteers", ids, limit, keep, |v: &Volunteer| {
            v.id.to_string()
        })
    }

    /// A duty's occurrences, newest first, before the instant `before` (Unix seconds).
    pub fn occurrences_of(
        &self,
        duty: u64,
        before: i64,
        limit: usize,
    ) -> Result<Page<Occurrence>, StoreError> {
        let t = self.txn.open_table(OCCURRENCES)?;
        let mut items: Vec<Occurrence> = Vec::new();
        for row in t.range((duty, i64::MIN)..(duty, before))?.rev() {
            let (k, v) = row?;
            if items.len() == limit {
                let next = items.last().map(|o| o.scheduled_at.timestamp().to_string());
                return Ok(Page { items, next });
            }
            let (d, at) = k.value();
            items.push(decode("occurrences", format!("{d}@{at}"), v.value())?);
        }
        Ok(Page { items, next: None })
    }

    /// Tasks of one duty, in id order.
    pub fn tasks_of_duty(
        &self,
        duty: u64,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Page<Task>, StoreError> {
        let index = self.txn.open_table(TASKS_BY_DUTY)?;
        let ids = index
            .range((duty, after.saturating_add(1))..=(duty, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let tasks = self.txn.open_table(TASKS)?;
        collect_page(&tasks, "tasks", ids, limit, keep, |t: &Task| {
            t.id.to_string()
        })
    }

    /// Tasks in communities starting with one of `prefixes`, in (community, id) order.
    pub fn tasks_in_regions(
        &self,
        prefixes: &[String],
        after: Option<(&str, u64)>,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Page<Task>, StoreError> {
        self.page_in_regions(
            TASKS_BY_COMMUNITY,
            TASKS,
            "tasks",
            prefixes,
            after,
            limit,
            keep,
            |t: &Task| format!("{}~{}", t.community, t.id),
        )
    }

    /// Every task, in id order.
    pub fn tasks(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Page<Task>, StoreError> {
        self.page_by_id(TASKS, "tasks", after, limit, keep)
    }

    /// Tasks in one status, by id after `after`: only that status's tasks are read.
    pub fn tasks_in_status(
        &self,
        status: TaskStatus,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Page<Task>, StoreError> {
        let key = status_key(status);
        let index = self.txn.open_table(TASKS_BY_STATUS)?;
        let ids = index
            .range((key, after.saturating_add(1))..=(key, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let tasks = self.txn.open_table(TASKS)?;
        collect_page(&tasks, "tasks", ids, limit, keep, |t: &Task| {
            t.id.to_string()
        })
    }

    /// Duties by id after `after`, those `keep` accepts, at most `limit`.
    pub fn duties_page(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Duty) -> bool,
    ) -> Result<Page<Duty>, StoreError> {
        self.page_by_id(DUTIES, "duties", after, limit, keep)
    }

    /// Events after sequence number `after`.
    pub fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let t = self.txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for row in t.range(after.saturating_add(1)..)?.take(limit) {
            let (k, v) = row?;
            out.push(decode("events", k.value(), v.value())?);
        }
        Ok(out)
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
        ])
    }
}

/// A write transaction. Dropped without [`WriteTx::commit`] (which `Store::write` calls on
/// success), everything written is discarded.
pub struct WriteTx {
    txn: redb::WriteTransaction,
}

/// A resident ID already registered to another record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub existing_id: u64,
}

impl WriteTx {
    pub(super) fn new(txn: redb::WriteTransaction) -> Self {
        Self { txn }
    }

    pub(super) fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit()?)
    }

    getters!();

    pub fn put_plugin<T: Serialize>(&mut self, id: &str, record: &T) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGINS)?;
        t.insert(id, encode("plugins", record)?.as_slice())?;
        Ok(())
    }

    pub fn put_plugin_wasm(
        &mut self,
        id: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_WASM)?;
        t.insert((id, version), bytes)?;
        Ok(())
    }

    /// Forgets one stored version's bytes (retention).
    pub fn delete_plugin_wasm(&mut self, id: &str, version: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_WASM)?;
        t.remove((id, version))?;
        Ok(())
    }

    pub fn put_plugin_compiled(
        &mut self,
        sha256: &str,
        engine: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_COMPILED)?;
        t.insert((sha256, engine), artifact)?;
        Ok(())
    }

    /// Forgets every cached artifact of a component.
    pub fn delete_plugin_compiled(&mut self, sha256: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_COMPILED)?;
        let mut keys: Vec<String> = Vec::new();
        for row in t.range((sha256, "")..)? {
            let (k, _) = row?;
            let (sha, engine) = k.value();
            if sha != sha256 {
                break;
            }
            keys.push(engine.to_owned());
        }
        for engine in keys {
            t.remove((sha256, engine.as_str()))?;
        }
        Ok(())
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
        self.index_task_statuses()?;
        self.txn.open_table(EVENTS)?;
        self.txn.open_table(CHECKLISTS)?;
        let mut meta = self.txn.open_table(META)?;
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
        Ok(())
    }

    /// Builds the status index of a file made before it existed (once: a no-op when the index
    /// already holds entries or there are no tasks).
    fn index_task_statuses(&mut self) -> Result<(), StoreError> {
        let mut index = self.txn.open_table(TASKS_BY_STATUS)?;
        if !index.is_empty()? {
            return Ok(());
        }
        let tasks = self.txn.open_table(TASKS)?;
        for row in tasks.iter()? {
            let (k, v) = row?;
            let task: Task = decode("tasks", k.value(), v.value())?;
            index.insert((status_key(task.status), task.id), ())?;
        }
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

    pub fn put_region(&mut self, region: &Region) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(REGIONS)?;
        t.insert(region.code.as_str(), encode("regions", region)?.as_slice())?;
        Ok(())
    }

    pub fn put_station(&mut self, station: &Station) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(STATIONS)?;
        t.insert(station.id, encode("stations", station)?.as_slice())?;
        Ok(())
    }

    pub fn put_token<T: Serialize>(&mut self, hash: &str, record: &T) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(TOKENS)?;
        t.insert(hash, encode("tokens", record)?.as_slice())?;
        Ok(())
    }

    pub fn put_checklist(
        &mut self,
        id: u64,
        items: &[crate::plugins::model::ChecklistItem],
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(CHECKLISTS)?;
        t.insert(id, encode("checklists", &items)?.as_slice())?;
        Ok(())
    }

    pub fn put_duty(&mut self, duty: &Duty) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(DUTIES)?;
        t.insert(duty.id, encode("duties", duty)?.as_slice())?;
        Ok(())
    }

    /// Stores an occurrence; one still `planning` is also listed as pending.
    pub fn put_occurrence(&mut self, o: &Occurrence) -> Result<(), StoreError> {
        let key = (o.duty, o.scheduled_at.timestamp());
        self.txn
            .open_table(OCCURRENCES)?
            .insert(key, encode("occurrences", o)?.as_slice())?;
        let mut pending = self.txn.open_table(OCCURRENCES_PENDING)?;
        if o.is_pending() {
            pending.insert(key, ())?;
        } else {
            pending.remove(key)?;
        }
        Ok(())
    }

    /// Appends an event to the outbox and returns its sequence number.
    pub fn push_event(&mut self, mut event: Event) -> Result<u64, StoreError> {
        let mut t = self.txn.open_table(EVENTS)?;
        let seq = t.last()?.map_or(1, |(k, _)| k.value() + 1);
        event.seq = seq;
        t.insert(seq, encode("events", &event)?.as_slice())?;
        Ok(seq)
    }

    /// Opens the task tables once, for writing many tasks in this transaction.
    pub fn task_writer(&self) -> Result<TaskWriter<'_>, StoreError> {
        Ok(TaskWriter {
            tasks: self.txn.open_table(TASKS)?,
            keys: self.txn.open_table(TASK_KEYS)?,
            by_duty: self.txn.open_table(TASKS_BY_DUTY)?,
            by_community: self.txn.open_table(TASKS_BY_COMMUNITY)?,
            open_by_due: self.txn.open_table(TASKS_OPEN_BY_DUE)?,
            by_status: self.txn.open_table(TASKS_BY_STATUS)?,
        })
    }

    /// Open tasks whose due end is before `before` (Unix seconds), at most `limit`.
    pub fn open_tasks_due_before(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let index = self.txn.open_table(TASKS_OPEN_BY_DUE)?;
        let tasks = self.txn.open_table(TASKS)?;
        let mut out = Vec::new();
        for row in index.range((i64::MIN, 0)..(before, 0))?.take(limit) {
            let (_, id) = row?.0.value();
            if let Some(v) = tasks.get(id)? {
                out.push(decode("tasks", id, v.value())?);
            }
        }
        Ok(out)
    }

    /// Opens the person tables once, for writing many persons in this transaction.
    pub fn person_writer(&self) -> Result<PersonWriter<'_>, StoreError> {
        Ok(PersonWriter {
            persons: self.txn.open_table(PERSONS)?,
            by_community: self.txn.open_table(PERSONS_BY_COMMUNITY)?,
            by_category: self.txn.open_table(PERSONS_BY_CATEGORY)?,
            by_resident_id: self.txn.open_table(PERSONS_BY_RESIDENT_ID)?,
        })
    }

    /// Opens the volunteer tables once, for writing many volunteers in this transaction.
    pub fn volunteer_writer(&self) -> Result<VolunteerWriter<'_>, StoreError> {
        Ok(VolunteerWriter {
            volunteers: self.txn.open_table(VOLUNTEERS)?,
            by_station: self.txn.open_table(VOLUNTEERS_BY_STATION)?,
            by_resident_id: self.txn.open_table(VOLUNTEERS_BY_RESIDENT_ID)?,
        })
    }
}

/// Writes persons and keeps their index tables in step.
pub struct PersonWriter<'t> {
    persons: redb::Table<'t, u64, &'static [u8]>,
    by_community: redb::Table<'t, (&'static str, u64), ()>,
    by_category: redb::Table<'t, (&'static str, u64), ()>,
    by_resident_id: redb::Table<'t, &'static str, u64>,
}

impl PersonWriter<'_> {
    /// Stores `person` (new, or replacing the stored record with the same id). Refuses a
    /// resident ID that belongs to another person.
    pub fn put(&mut self, person: &Person) -> Result<Result<(), Duplicate>, StoreError> {
        if let Some(existing) = self.by_resident_id.get(person.resident_id.as_str())? {
            let existing_id = existing.value();
            if existing_id != person.id {
                return Ok(Err(Duplicate { existing_id }));
            }
        }
        let old: Option<Person> = self
            .persons
            .get(person.id)?
            .map(|v| decode("persons", person.id, v.value()))
            .transpose()?;
        if let Some(old) = &old {
            self.by_community.remove((old.community.as_str(), old.id))?;
            for c in &old.categories {
                self.by_category.remove((c.as_str(), old.id))?;
            }
            self.by_resident_id.remove(old.resident_id.as_str())?;
        }
        self.persons
            .insert(person.id, encode("persons", person)?.as_slice())?;
        self.by_community
            .insert((person.community.as_str(), person.id), ())?;
        for c in &person.categories {
            self.by_category.insert((c.as_str(), person.id), ())?;
        }
        self.by_resident_id
            .insert(person.resident_id.as_str(), person.id)?;
        Ok(Ok(()))
    }
}

/// Writes volunteers and keeps their index tables in step.
pub struct VolunteerWriter<'t> {
    volunteers: redb::Table<'t, u64, &'static [u8]>,
    by_station: redb::Table<'t, (u64, u64), ()>,
    by_resident_id: redb::Table<'t, &'static str, u64>,
}

impl VolunteerWriter<'_> {
    pub fn put(&mut self, v: &Volunteer) -> Result<Result<(), Duplicate>, StoreError> {
        if let Some(existing) = self.by_resident_id.get(v.resident_id.as_str())? {
            let existing_id = existing.value();
            if existing_id != v.id {
                return Ok(Err(Duplicate { existing_id }));
            }
        }
        let old: Option<Volunteer> = self
            .volunteers
            .get(v.id)?
            .map(|b| decode("volunteers", v.id, b.value()))
            .transpose()?;
        if let Some(old) = &old {
            self.by_station.remove((old.station, old.id))?;
            self.by_resident_id.remove(old.resident_id.as_str())?;
        }
        self.volunteers
            .insert(v.id, encode("volunteers", v)?.as_slice())?;
        self.by_station.insert((v.station, v.id), ())?;
        self.by_resident_id.insert(v.resident_id.as_str(), v.id)?;
        Ok(Ok(()))
    }
}

/// Writes tasks and keeps their index tables in step.
pub struct TaskWriter<'t> {
    tasks: redb::Table<'t, u64, &'static [u8]>,
    keys: redb::Table<'t, (u64, i64, &'static str), u64>,
    by_duty: redb::Table<'t, (u64, u64), ()>,
    by_community: redb::Table<'t, (&'static str, u64), ()>,
    open_by_due: redb::Table<'t, (i64, u64), ()>,
    by_status: redb::Table<'t, (&'static str, u64), ()>,
}

/// A task status as its index key.
fn status_key(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Open => "open",
        TaskStatus::Overdue => "overdue",
    }
}

impl TaskWriter<'_> {
    /// The task already created under this idempotency key, if any.
    pub fn existing(&self, duty: u64, at: i64, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.keys.get((duty, at, key))?.map(|v| v.value()))
    }

    /// Creates a task under its idempotency key.
    pub fn create(&mut self, task: &Task) -> Result<(), StoreError> {
        let at = task.scheduled_at.timestamp();
        self.keys
            .insert((task.duty, at, task.key.as_str()), task.id)?;
        self.by_duty.insert((task.duty, task.id), ())?;
        self.by_community
            .insert((task.community.as_str(), task.id), ())?;
        self.put(task)
    }

    /// Stores a task (new or changed), keeping the status and open-by-due indexes right: the
    /// old record is read here, so no caller can hand in a stale one.
    pub fn put(&mut self, task: &Task) -> Result<(), StoreError> {
        let old: Option<Task> = self
            .tasks
            .get(task.id)?
            .map(|v| decode("tasks", task.id, v.value()))
            .transpose()?;
        if let Some(o) = &old {
            self.by_status.remove((status_key(o.status), o.id))?;
            if o.status == TaskStatus::Open {
                self.open_by_due.remove((o.due_end.timestamp(), o.id))?;
            }
        }
        self.by_status
            .insert((status_key(task.status), task.id), ())?;
        if task.status == TaskStatus::Open {
            self.open_by_due
                .insert((task.due_end.timestamp(), task.id), ())?;
        }
        self.tasks
            .insert(task.id, encode("tasks", task)?.as_slice())?;
        Ok(())
    }
}
