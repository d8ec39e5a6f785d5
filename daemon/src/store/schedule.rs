//! Duties, their occurrences, the checklists and the tasks they plan.

use redb::{ReadableTable, ReadableTableMetadata};

use super::StoreError;
use super::tables::*;
use super::tx::{Page, ReadTx, WriteTx, collect_page, decode, encode, reads};
use crate::schedule::{ChecklistItem, Duty, Occurrence, OfferState, Priority, Task, TaskStatus};

reads! {
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
    ) -> Result<Option<Vec<ChecklistItem>>, StoreError> {
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

    /// The earliest deadline of an offer waiting for an answer (Unix seconds).
    pub fn first_offer_deadline(&self) -> Result<Option<i64>, StoreError> {
        let t = self.txn.open_table(OFFERS_BY_DEADLINE)?;
        Ok(t.first()?.map(|(k, _)| k.value().0))
    }

    /// The earliest due end among open tasks (Unix seconds).
    pub fn first_open_due(&self) -> Result<Option<i64>, StoreError> {
        let t = self.txn.open_table(TASKS_OPEN_BY_DUE)?;
        Ok(t.first()?.map(|(k, _)| k.value().0))
    }

    /// Every task one occurrence created (by its idempotency keys), in key order.
    pub fn tasks_of_occurrence(&self, duty: u64, at: i64) -> Result<Vec<Task>, StoreError> {
        let keys = self.txn.open_table(TASK_KEYS)?;
        let tasks = self.txn.open_table(TASKS)?;
        let mut out = Vec::new();
        for row in keys.range((duty, at, "")..(duty, at.saturating_add(1), ""))? {
            let id = row?.1.value();
            if let Some(v) = tasks.get(id)? {
                out.push(decode("tasks", id, v.value())?);
            }
        }
        Ok(out)
    }
}

impl ReadTx {
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

    /// The tasks still to do in one community, from the active index (no task is read).
    pub fn active_tasks(&self, community: &str) -> Result<Vec<ActiveTask>, StoreError> {
        let t = self.txn.open_table(TASKS_ACTIVE)?;
        let mut out = Vec::new();
        for row in t.range((community, 0)..=(community, u64::MAX))? {
            let (k, v) = row?;
            let id = k.value().1;
            out.push(
                ActiveTask::decode(id, v.value()).ok_or_else(|| StoreError::Corrupt {
                    table: "tasks_active",
                    key: id.to_string(),
                    detail: "not a 20-byte summary".into(),
                })?,
            );
        }
        Ok(out)
    }

    /// Tasks in one status, by id after `after`: only that status's tasks are read.
    pub fn tasks_in_status(
        &self,
        status: TaskStatus,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Page<Task>, StoreError> {
        let key = status.key();
        let index = self.txn.open_table(TASKS_BY_STATUS)?;
        let ids = index
            .range((key, after.saturating_add(1))..=(key, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let tasks = self.txn.open_table(TASKS)?;
        collect_page(&tasks, "tasks", ids, limit, keep, |t: &Task| {
            t.id.to_string()
        })
    }

    /// Tasks ever offered to a volunteer, in id order.
    pub fn tasks_of_volunteer(
        &self,
        volunteer: u64,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Page<Task>, StoreError> {
        let index = self.txn.open_table(TASKS_BY_VOLUNTEER)?;
        let ids = index
            .range((volunteer, after.saturating_add(1))..=(volunteer, u64::MAX))?
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
}

impl WriteTx {
    pub fn put_checklist(&mut self, id: u64, items: &[ChecklistItem]) -> Result<(), StoreError> {
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

    /// Opens the task tables once, for writing many tasks in this transaction.
    pub fn task_writer(&self) -> Result<TaskWriter<'_>, StoreError> {
        Ok(TaskWriter {
            active: self.txn.open_table(TASKS_ACTIVE)?,
            tasks: self.txn.open_table(TASKS)?,
            keys: self.txn.open_table(TASK_KEYS)?,
            by_duty: self.txn.open_table(TASKS_BY_DUTY)?,
            by_community: self.txn.open_table(TASKS_BY_COMMUNITY)?,
            open_by_due: self.txn.open_table(TASKS_OPEN_BY_DUE)?,
            by_status: self.txn.open_table(TASKS_BY_STATUS)?,
            by_volunteer: self.txn.open_table(TASKS_BY_VOLUNTEER)?,
            offers_by_deadline: self.txn.open_table(OFFERS_BY_DEADLINE)?,
            counts: self.txn.open_table(TASK_COUNTS)?,
        })
    }

    /// Tasks with an offer waiting past `before` (Unix seconds), at most `limit`.
    pub fn tasks_with_offers_due_before(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let index = self.txn.open_table(OFFERS_BY_DEADLINE)?;
        let tasks = self.txn.open_table(TASKS)?;
        let mut out: Vec<Task> = Vec::new();
        for row in index.range((i64::MIN, 0)..(before, 0))?.take(limit) {
            let (_, id) = row?.0.value();
            if out.iter().any(|t| t.id == id) {
                continue;
            }
            if let Some(v) = tasks.get(id)? {
                out.push(decode("tasks", id, v.value())?);
            }
        }
        Ok(out)
    }

    /// Before the status `overdue` became a flag: such tasks are open and flagged (once; the
    /// index entries under `overdue` say which).
    pub(super) fn migrate_overdue_status(&mut self) -> Result<(), StoreError> {
        let ids: Vec<u64> = {
            let index = self.txn.open_table(TASKS_BY_STATUS)?;
            let mut ids = Vec::new();
            for row in index.range(("overdue", 0)..=("overdue", u64::MAX))? {
                ids.push(row?.0.value().1);
            }
            ids
        };
        if ids.is_empty() {
            return Ok(());
        }
        {
            let mut index = self.txn.open_table(TASKS_BY_STATUS)?;
            for id in &ids {
                index.remove(("overdue", *id))?;
            }
        }
        let mut writer = self.task_writer()?;
        for id in ids {
            if let Some(mut task) = writer.get(id)? {
                task.overdue = true;
                writer.put(&task)?;
            }
        }
        Ok(())
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

    /// Builds the status index of a file made before it existed (once: a no-op when the index
    /// already holds entries or there are no tasks).
    pub(super) fn index_task_statuses(&mut self) -> Result<(), StoreError> {
        let mut index = self.txn.open_table(TASKS_BY_STATUS)?;
        if !index.is_empty()? {
            return Ok(());
        }
        let tasks = self.txn.open_table(TASKS)?;
        for row in tasks.iter()? {
            let (k, v) = row?;
            let task: Task = decode("tasks", k.value(), v.value())?;
            // A status written before overdue became a flag is indexed as written, so the
            // migration that follows finds it.
            let raw: serde_json::Value = decode("tasks", k.value(), v.value())?;
            let key = if raw["status"] == "overdue" {
                "overdue"
            } else {
                task.status.key()
            };
            index.insert((key, task.id), ())?;
        }
        Ok(())
    }
}

/// A task still to do, as the active index summarises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveTask {
    pub id: u64,
    pub status: TaskStatus,
    pub priority: Priority,
    pub overdue: bool,
    /// A follow-up of a visit report.
    pub follow_up: bool,
    /// Unix seconds.
    pub due_start: i64,
    pub due_end: i64,
}

const STATUSES: [TaskStatus; 8] = [
    TaskStatus::Open,
    TaskStatus::Offered,
    TaskStatus::Accepted,
    TaskStatus::CheckedIn,
    TaskStatus::Visited,
    TaskStatus::Done,
    TaskStatus::Unstaffed,
    TaskStatus::Cancelled,
];
const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Urgent,
];

impl ActiveTask {
    fn encode(t: &Task) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0] = STATUSES.iter().position(|s| *s == t.status).unwrap_or(0) as u8;
        b[1] = PRIORITIES
            .iter()
            .position(|p| *p == t.priority)
            .unwrap_or(1) as u8;
        b[2] = u8::from(t.overdue);
        b[3] = u8::from(t.follows_up.is_some());
        b[4..12].copy_from_slice(&t.due_start.timestamp().to_le_bytes());
        b[12..20].copy_from_slice(&t.due_end.timestamp().to_le_bytes());
        b
    }

    fn decode(id: u64, b: &[u8]) -> Option<ActiveTask> {
        if b.len() != 20 {
            return None;
        }
        Some(ActiveTask {
            id,
            status: *STATUSES.get(usize::from(b[0]))?,
            priority: *PRIORITIES.get(usize::from(b[1]))?,
            overdue: b[2] != 0,
            follow_up: b[3] != 0,
            due_start: i64::from_le_bytes(b[4..12].try_into().ok()?),
            due_end: i64::from_le_bytes(b[12..20].try_into().ok()?),
        })
    }
}

impl WriteTx {
    /// Fills the active-task index from the tasks still to do (read through the status
    /// index), once for a file written before the index existed (`active_tasks_indexed`).
    pub(super) fn index_active_tasks(&mut self) -> Result<(), StoreError> {
        if self.meta("active_tasks_indexed")?.is_some() {
            return Ok(());
        }
        {
            let mut active = self.txn.open_table(TASKS_ACTIVE)?;
            let by_status = self.txn.open_table(TASKS_BY_STATUS)?;
            let tasks = self.txn.open_table(TASKS)?;
            for status in STATUSES.iter().filter(|s| s.is_active()) {
                let key = status.key();
                for row in by_status.range((key, 0)..=(key, u64::MAX))? {
                    let id = row?.0.value().1;
                    let Some(v) = tasks.get(id)? else { continue };
                    let task: Task = decode("tasks", id, v.value())?;
                    active.insert(
                        (task.community.as_str(), id),
                        ActiveTask::encode(&task).as_slice(),
                    )?;
                }
            }
        }
        self.set_meta("active_tasks_indexed", 1)
    }
}

/// Writes tasks and keeps their index tables in step.
pub struct TaskWriter<'t> {
    active: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    tasks: redb::Table<'t, u64, &'static [u8]>,
    keys: redb::Table<'t, (u64, i64, &'static str), u64>,
    by_duty: redb::Table<'t, (u64, u64), ()>,
    by_community: redb::Table<'t, (&'static str, u64), ()>,
    open_by_due: redb::Table<'t, (i64, u64), ()>,
    by_status: redb::Table<'t, (&'static str, u64), ()>,
    by_volunteer: redb::Table<'t, (u64, u64), ()>,
    offers_by_deadline: redb::Table<'t, (i64, u64), ()>,
    counts: redb::Table<'t, (u32, &'static str, &'static str), &'static [u8]>,
}

/// A task waits in the open-by-due index while it is still to do and not yet flagged overdue.
fn waits_for_due(t: &Task) -> bool {
    t.status.is_active() && !t.overdue
}

impl TaskWriter<'_> {
    /// A task by id (as this transaction sees it).
    pub fn get(&self, id: u64) -> Result<Option<Task>, StoreError> {
        self.tasks
            .get(id)?
            .map(|v| decode("tasks", id, v.value()))
            .transpose()
    }

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
            if o.status.is_active() {
                self.active.remove((o.community.as_str(), o.id))?;
            }
            self.by_status.remove((o.status.key(), o.id))?;
            if waits_for_due(o) {
                self.open_by_due.remove((o.due_end.timestamp(), o.id))?;
            }
            for offer in o.offers.iter().filter(|f| f.state == OfferState::Offered) {
                self.offers_by_deadline
                    .remove((offer.respond_by.timestamp(), o.id))?;
            }
        }
        self.by_status.insert((task.status.key(), task.id), ())?;
        if task.status.is_active() {
            self.active.insert(
                (task.community.as_str(), task.id),
                ActiveTask::encode(task).as_slice(),
            )?;
        }
        if waits_for_due(task) {
            self.open_by_due
                .insert((task.due_end.timestamp(), task.id), ())?;
        }
        for offer in &task.offers {
            self.by_volunteer.insert((offer.volunteer, task.id), ())?;
            if offer.state == OfferState::Offered {
                self.offers_by_deadline
                    .insert((offer.respond_by.timestamp(), task.id), ())?;
            }
        }
        super::records::count_task(&mut self.counts, old.as_ref(), Some(task))?;
        self.tasks
            .insert(task.id, encode("tasks", task)?.as_slice())?;
        Ok(())
    }
}
