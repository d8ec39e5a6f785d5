//! Records: visit reports, service records, certificates, ratings, the audit log, and the
//! compact indexes coverage reports count from (care spans, visits, task counts, minutes,
//! ratings, role holders). The indexes are kept by the writers of the records they count.

use redb::{ReadableTable, ReadableTableMetadata};

use super::StoreError;
use super::tables::*;
use super::tx::{Page, WriteTx, decode, encode, reads};
use crate::records::model::{
    AuditEntry, CareSpan, Certificate, Rating, Report, ReportState, Satisfaction, ServiceRecord,
    TaskCounts, community_number, day_number, month_key,
};
use crate::registry::{Person, Volunteer, VolunteerStatus};
use crate::task::Task;

fn corrupt(table: &'static str, key: impl std::fmt::Display, detail: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        key: key.to_string(),
        detail: detail.to_owned(),
    }
}

/// Where a task counts in `TASK_COUNTS`: the month of its due end, its community, its action.
pub(super) fn task_count_key(t: &Task) -> (u32, String, String) {
    let action = if t.follows_up.is_some() {
        "follow-up".to_owned()
    } else if t.plugin.is_empty() {
        "one-off".to_owned()
    } else {
        format!("{}/{}", t.plugin, t.action)
    };
    (
        month_key(t.due_end.date_naive()),
        t.community.clone(),
        action,
    )
}

/// Moves a task's counts from its old record to its new one.
pub(super) fn count_task(
    counts: &mut redb::Table<'_, (u32, &'static str, &'static str), &'static [u8]>,
    old: Option<&Task>,
    new: Option<&Task>,
) -> Result<(), StoreError> {
    let mut change = |t: &Task, add: bool| -> Result<(), StoreError> {
        let (m, c, a) = task_count_key(t);
        let key = (m, c.as_str(), a.as_str());
        let mut cur = match counts.get(key)? {
            Some(v) => TaskCounts::decode(v.value())
                .ok_or_else(|| corrupt("task_counts", m, "not 20 bytes"))?,
            None => TaskCounts::default(),
        };
        let delta = TaskCounts::of(t);
        if add {
            cur.add(&delta);
        } else {
            cur.sub(&delta);
        }
        if cur.is_zero() {
            counts.remove(key)?;
        } else {
            counts.insert(key, cur.encode().as_slice())?;
        }
        Ok(())
    };
    if let (Some(o), Some(n)) = (old, new)
        && task_count_key(o) == task_count_key(n)
        && TaskCounts::of(o) == TaskCounts::of(n)
    {
        return Ok(());
    }
    if let Some(o) = old {
        change(o, false)?;
    }
    if let Some(n) = new {
        change(n, true)?;
    }
    Ok(())
}

/// Keeps a person's care spans in step with a write: categories entered or left, a move to
/// another community, deactivation. The day of the change counts for both sides.
pub(super) fn track_care(
    spans: &mut redb::Table<'_, (&'static str, &'static str, u64), &'static [u8]>,
    old: Option<&Person>,
    new: &Person,
) -> Result<(), StoreError> {
    let day = day_number(crate::clock::local_date(new.updated_at));
    let mut cats: Vec<&str> = new.categories.iter().map(|c| c.as_str()).collect();
    if let Some(o) = old {
        cats.extend(o.categories.iter().map(|c| c.as_str()));
    }
    cats.sort_unstable();
    cats.dedup();
    let place = |p: &Person, cat: &str| {
        (p.active && p.categories.iter().any(|c| c.as_str() == cat))
            .then(|| community_number(&p.community).map(|_| p.community.clone()))
            .flatten()
    };
    let load = |spans: &redb::Table<'_, (&'static str, &'static str, u64), &'static [u8]>,
                cat: &str,
                community: &str|
     -> Result<Vec<CareSpan>, StoreError> {
        match spans.get((cat, community, new.id))? {
            Some(v) => CareSpan::decode_all(v.value())
                .ok_or_else(|| corrupt("care_spans", new.id, "not whole spans")),
            None => Ok(Vec::new()),
        }
    };
    for cat in cats {
        let before = old.and_then(|o| place(o, cat));
        let after = place(new, cat);
        // Close the open span where the person was (if they left it or the category).
        if let Some(b) = &before {
            let mut list = load(spans, cat, b)?;
            let open = list.iter().position(|s| s.to == CareSpan::OPEN);
            match open {
                Some(i) if after.as_deref() != Some(b.as_str()) => {
                    list[i].to = day.saturating_add(1).max(list[i].from + 1);
                    spans.insert(
                        (cat, b.as_str(), new.id),
                        CareSpan::encode_all(&list).as_slice(),
                    )?;
                }
                Some(_) => continue,
                None => {}
            }
        }
        if let Some(a) = &after {
            let mut list = load(spans, cat, a)?;
            if list.iter().any(|s| s.to == CareSpan::OPEN) {
                continue;
            }
            list.push(CareSpan {
                community: community_number(a).unwrap_or(0),
                from: day,
                to: CareSpan::OPEN,
            });
            spans.insert(
                (cat, a.as_str(), new.id),
                CareSpan::encode_all(&list).as_slice(),
            )?;
        }
    }
    Ok(())
}

/// Keeps the role holders in step with a volunteer write.
pub(super) fn track_roles(
    holders: &mut redb::Table<'_, (&'static str, &'static str, u64), ()>,
    old: Option<&Volunteer>,
    new: &Volunteer,
) -> Result<(), StoreError> {
    let posted = |v: &Volunteer| {
        (v.status != VolunteerStatus::Inactive)
            .then(|| v.community.clone())
            .flatten()
    };
    if let Some(o) = old
        && let Some(c) = posted(o)
    {
        for r in &o.roles {
            holders.remove((r.as_str(), c.as_str(), o.id))?;
        }
    }
    if let Some(c) = posted(new) {
        for r in &new.roles {
            holders.insert((r.as_str(), c.as_str(), new.id), ())?;
        }
    }
    Ok(())
}

reads! {
    pub fn report(&self, id: u64) -> Result<Option<Report>, StoreError> {
        let t = self.txn.open_table(REPORTS)?;
        t.get(id)?.map(|v| decode("reports", id, v.value())).transpose()
    }

    /// Every report on a task, oldest first.
    pub fn reports_of_task(&self, task: u64) -> Result<Vec<Report>, StoreError> {
        let by = self.txn.open_table(REPORTS_BY_TASK)?;
        let t = self.txn.open_table(REPORTS)?;
        let mut out = Vec::new();
        for row in by.range((task, 0)..=(task, u64::MAX))? {
            let id = row?.0.value().1;
            if let Some(v) = t.get(id)? {
                out.push(decode("reports", id, v.value())?);
            }
        }
        Ok(out)
    }

    /// Ids of reports still waiting for a review after id `after`, oldest first.
    pub fn unreviewed_reports(&self, after: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        let t = self.txn.open_table(REPORTS_UNREVIEWED)?;
        let mut out = Vec::new();
        for row in t.range(after.saturating_add(1)..)?.take(limit) {
            out.push(row?.0.value());
        }
        Ok(out)
    }

    pub fn service_record(&self, id: u64) -> Result<Option<ServiceRecord>, StoreError> {
        let t = self.txn.open_table(SERVICE_RECORDS)?;
        t.get(id)?
            .map(|v| decode("service_records", id, v.value()))
            .transpose()
    }

    /// A volunteer's service records after id `after`, oldest first.
    pub fn service_records_of(
        &self,
        volunteer: u64,
        after: u64,
        limit: usize,
    ) -> Result<Page<ServiceRecord>, StoreError> {
        let by = self.txn.open_table(SERVICE_BY_VOLUNTEER)?;
        let t = self.txn.open_table(SERVICE_RECORDS)?;
        let mut items = Vec::new();
        for row in by.range((volunteer, after.saturating_add(1))..=(volunteer, u64::MAX))? {
            let id = row?.0.value().1;
            if items.len() == limit {
                let next = items.last().map(|r: &ServiceRecord| r.id.to_string());
                return Ok(Page { items, next });
            }
            if let Some(v) = t.get(id)? {
                items.push(decode("service_records", id, v.value())?);
            }
        }
        Ok(Page { items, next: None })
    }

    pub fn certificate(&self, code: &str) -> Result<Option<Certificate>, StoreError> {
        let t = self.txn.open_table(CERTIFICATES)?;
        t.get(code)?
            .map(|v| decode("certificates", code, v.value()))
            .transpose()
    }

    /// A volunteer's certificates, newest first.
    pub fn certificates_of(&self, volunteer: u64) -> Result<Vec<Certificate>, StoreError> {
        let by = self.txn.open_table(CERTIFICATES_BY_VOLUNTEER)?;
        let t = self.txn.open_table(CERTIFICATES)?;
        let mut out = Vec::new();
        for row in by.range((volunteer, i64::MIN, "")..=(volunteer, i64::MAX, "~"))?.rev() {
            let (k, _) = row?;
            let code = k.value().2;
            if let Some(v) = t.get(code)? {
                out.push(decode("certificates", code, v.value())?);
            }
        }
        Ok(out)
    }

    pub fn rating(&self, task: u64) -> Result<Option<Rating>, StoreError> {
        let t = self.txn.open_table(RATINGS)?;
        t.get(task)?.map(|v| decode("ratings", task, v.value())).transpose()
    }

    /// The task and expiry (Unix seconds) of a rating link, by the hash of its code.
    pub fn rating_link(&self, hash: &str) -> Result<Option<(u64, i64)>, StoreError> {
        let t = self.txn.open_table(RATING_LINKS)?;
        Ok(t.get(hash)?.map(|v| v.value()))
    }

    /// Calls `f` with the care spans of `category` of every person in a community under
    /// `prefix` (a person who moved appears once per community), in (community, person) order.
    pub fn for_each_care_span(
        &self,
        category: &str,
        prefix: &str,
        mut f: impl FnMut(u64, &[CareSpan]),
    ) -> Result<(), StoreError> {
        let t = self.txn.open_table(CARE_SPANS)?;
        let end = format!("{prefix}~");
        let mut buf = Vec::new();
        for row in t.range((category, prefix, 0)..(category, end.as_str(), 0))? {
            let (k, v) = row?;
            let bytes = v.value();
            let person = k.value().2;
            buf.clear();
            buf.extend(
                CareSpan::decode_all(bytes)
                    .ok_or_else(|| corrupt("care_spans", person, "not whole spans"))?,
            );
            f(person, &buf);
        }
        Ok(())
    }

    /// (person, visits) counted in month `m` in communities under `prefix`, sorted by person,
    /// each person once (visits in several communities added up).
    pub fn visited_people(&self, m: u32, prefix: &str) -> Result<Vec<(u64, u32)>, StoreError> {
        let t = self.txn.open_table(PERSON_VISITS)?;
        let end = format!("{prefix}~");
        let mut out: Vec<(u64, u32)> = Vec::new();
        for row in t.range((m, prefix, 0)..(m, end.as_str(), 0))? {
            let (k, v) = row?;
            out.push((k.value().2, v.value()));
        }
        out.sort_unstable();
        out.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 = a.1.saturating_add(b.1);
                true
            } else {
                false
            }
        });
        Ok(out)
    }

    /// (community, task kind, visits) for month `m`.
    pub fn community_visits(&self, m: u32) -> Result<Vec<(String, String, u32)>, StoreError> {
        let t = self.txn.open_table(COMMUNITY_VISITS)?;
        let mut out = Vec::new();
        for row in t.range((m, "", "")..(m + 1, "", ""))? {
            let (k, v) = row?;
            let (_, c, kind) = k.value();
            out.push((c.to_owned(), kind.to_owned(), v.value()));
        }
        Ok(out)
    }

    /// (community, action, counts) of tasks due in month `m` in communities under `prefix`.
    pub fn task_counts(
        &self,
        m: u32,
        prefix: &str,
    ) -> Result<Vec<(String, String, TaskCounts)>, StoreError> {
        let t = self.txn.open_table(TASK_COUNTS)?;
        let end = format!("{prefix}~");
        let mut out = Vec::new();
        for row in t.range((m, prefix, "")..(m, end.as_str(), ""))? {
            let (k, v) = row?;
            let (_, c, a) = k.value();
            let counts = TaskCounts::decode(v.value())
                .ok_or_else(|| corrupt("task_counts", m, "not 20 bytes"))?;
            out.push((c.to_owned(), a.to_owned(), counts));
        }
        Ok(out)
    }

    /// (region, minutes) recorded for month `m` under `prefix`.
    pub fn service_minutes(&self, m: u32, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let t = self.txn.open_table(SERVICE_MINUTES)?;
        let end = format!("{prefix}~");
        let mut out = Vec::new();
        for row in t.range((m, prefix)..(m, end.as_str()))? {
            let (k, v) = row?;
            out.push((k.value().1.to_owned(), v.value()));
        }
        Ok(out)
    }

    /// (community, [satisfied, neutral, dissatisfied]) for visits of month `m` under `prefix`.
    pub fn rating_counts(
        &self,
        m: u32,
        prefix: &str,
    ) -> Result<Vec<(String, [u32; 3])>, StoreError> {
        let t = self.txn.open_table(RATING_COUNTS)?;
        let end = format!("{prefix}~");
        let mut out = Vec::new();
        for row in t.range((m, prefix)..(m, end.as_str()))? {
            let (k, v) = row?;
            let (s, n, d) = v.value();
            out.push((k.value().1.to_owned(), [s, n, d]));
        }
        Ok(out)
    }

    /// (community, volunteer) of active volunteers posted with `role` under `prefix`.
    pub fn role_holders(&self, role: &str, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let t = self.txn.open_table(ROLE_HOLDERS)?;
        let end = format!("{prefix}~");
        let mut out = Vec::new();
        for row in t.range((role, prefix, 0)..(role, end.as_str(), 0))? {
            let (k, _) = row?;
            let (_, c, v) = k.value();
            out.push((c.to_owned(), v));
        }
        Ok(out)
    }

    /// Audit entries after `after` that `keep` accepts, oldest first, reading at most
    /// `max_scan`; with the last sequence number read.
    pub fn audit_entries(
        &self,
        after: u64,
        limit: usize,
        max_scan: usize,
        mut keep: impl FnMut(&AuditEntry) -> bool,
    ) -> Result<(Vec<AuditEntry>, u64), StoreError> {
        let t = self.txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        let mut last = after;
        for row in t.range(after.saturating_add(1)..)?.take(max_scan) {
            let (k, v) = row?;
            last = k.value();
            let e: AuditEntry = decode("audit", k.value(), v.value())?;
            if keep(&e) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok((out, last))
    }
}

impl WriteTx {
    /// Stores a report (new or reviewed), keeping the unreviewed index right.
    pub fn put_report(&mut self, r: &Report) -> Result<(), StoreError> {
        self.txn
            .open_table(REPORTS)?
            .insert(r.id, encode("reports", r)?.as_slice())?;
        self.txn
            .open_table(REPORTS_BY_TASK)?
            .insert((r.task, r.id), ())?;
        let mut pending = self.txn.open_table(REPORTS_UNREVIEWED)?;
        if r.state == ReportState::Submitted {
            pending.insert(r.id, ())?;
        } else {
            pending.remove(r.id)?;
        }
        Ok(())
    }

    /// Adds `delta` visits to a person in month `m`, in the community of the task.
    pub fn count_person_visit(
        &mut self,
        m: u32,
        community: &str,
        person: u64,
        delta: i32,
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PERSON_VISITS)?;
        let cur = t.get((m, community, person))?.map_or(0, |v| v.value());
        let next = cur.saturating_add_signed(delta);
        if next == 0 {
            t.remove((m, community, person))?;
        } else {
            t.insert((m, community, person), next)?;
        }
        Ok(())
    }

    /// Adds `delta` visits of `kind` to a community in month `m`.
    pub fn count_community_visit(
        &mut self,
        m: u32,
        community: &str,
        kind: &str,
        delta: i32,
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(COMMUNITY_VISITS)?;
        let cur = t.get((m, community, kind))?.map_or(0, |v| v.value());
        let next = cur.saturating_add_signed(delta);
        if next == 0 {
            t.remove((m, community, kind))?;
        } else {
            t.insert((m, community, kind), next)?;
        }
        Ok(())
    }

    /// Stores a service record, keeping the per-volunteer index and the minutes per month and
    /// region right (a superseded record no longer counts).
    pub fn put_service_record(&mut self, r: &ServiceRecord) -> Result<(), StoreError> {
        let old = self.service_record(r.id)?;
        let mut minutes = self.txn.open_table(SERVICE_MINUTES)?;
        let mut shift = |rec: &ServiceRecord, add: bool| -> Result<(), StoreError> {
            if rec.superseded {
                return Ok(());
            }
            let key = (month_key(rec.date), rec.region.as_str());
            let cur = minutes.get(key)?.map_or(0, |v| v.value());
            let next = if add {
                cur.saturating_add(u64::from(rec.minutes))
            } else {
                cur.saturating_sub(u64::from(rec.minutes))
            };
            if next == 0 {
                minutes.remove(key)?;
            } else {
                minutes.insert(key, next)?;
            }
            Ok(())
        };
        if let Some(o) = &old {
            shift(o, false)?;
        }
        shift(r, true)?;
        drop(minutes);
        self.txn
            .open_table(SERVICE_RECORDS)?
            .insert(r.id, encode("service_records", r)?.as_slice())?;
        self.txn
            .open_table(SERVICE_BY_VOLUNTEER)?
            .insert((r.volunteer, r.id), ())?;
        Ok(())
    }

    pub fn put_certificate(&mut self, c: &Certificate) -> Result<(), StoreError> {
        self.txn
            .open_table(CERTIFICATES)?
            .insert(c.code.as_str(), encode("certificates", c)?.as_slice())?;
        self.txn
            .open_table(CERTIFICATES_BY_VOLUNTEER)?
            .insert((c.volunteer, c.issued_at.timestamp(), c.code.as_str()), ())?;
        Ok(())
    }

    /// Stores a task's rating (one per task) and counts it.
    pub fn put_rating(&mut self, r: &Rating) -> Result<(), StoreError> {
        let old = self.rating(r.task)?;
        let mut counts = self.txn.open_table(RATING_COUNTS)?;
        let mut shift = |rt: &Rating, add: bool| -> Result<(), StoreError> {
            let key = (rt.month, rt.community.as_str());
            let (mut s, mut n, mut d) = counts.get(key)?.map_or((0, 0, 0), |v| v.value());
            let slot = match rt.rating {
                Satisfaction::Satisfied => &mut s,
                Satisfaction::Neutral => &mut n,
                Satisfaction::Dissatisfied => &mut d,
            };
            *slot = if add {
                slot.saturating_add(1)
            } else {
                slot.saturating_sub(1)
            };
            counts.insert(key, (s, n, d))?;
            Ok(())
        };
        if let Some(o) = &old {
            shift(o, false)?;
        }
        shift(r, true)?;
        drop(counts);
        self.txn
            .open_table(RATINGS)?
            .insert(r.task, encode("ratings", r)?.as_slice())?;
        Ok(())
    }

    pub fn put_rating_link(
        &mut self,
        hash: &str,
        task: u64,
        expires: i64,
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(RATING_LINKS)?
            .insert(hash, (task, expires))?;
        Ok(())
    }

    /// Removes a rating link (used, or expired).
    pub fn remove_rating_link(&mut self, hash: &str) -> Result<(), StoreError> {
        self.txn.open_table(RATING_LINKS)?.remove(hash)?;
        Ok(())
    }

    /// Appends an audit entry; returns its sequence number (never reused).
    pub fn append_audit(&mut self, mut e: AuditEntry) -> Result<u64, StoreError> {
        let seq = self.reserve_ids("audit", 1)?;
        e.seq = seq;
        self.txn
            .open_table(AUDIT)?
            .insert(seq, encode("audit", &e)?.as_slice())?;
        Ok(seq)
    }

    /// Removes up to `limit` of the oldest audit entries made before `before`; returns how many.
    pub fn prune_audit(
        &mut self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut t = self.txn.open_table(AUDIT)?;
        let mut gone = Vec::new();
        for row in t.iter()?.take(limit) {
            let (k, v) = row?;
            let e: AuditEntry = decode("audit", k.value(), v.value())?;
            if e.at >= before {
                break;
            }
            gone.push(k.value());
        }
        for k in &gone {
            t.remove(*k)?;
        }
        Ok(gone.len())
    }

    /// Builds the coverage indexes from the records, for a file made before they existed:
    /// care spans from every person (from the day they were registered), task counts from
    /// every task, role holders from every volunteer. Runs once (`records_indexed` in meta).
    pub(super) fn build_record_indexes(&mut self) -> Result<(), StoreError> {
        if self.meta("records_indexed")?.is_some() {
            return Ok(());
        }
        {
            let persons = self.txn.open_table(PERSONS)?;
            let mut spans = self.txn.open_table(CARE_SPANS)?;
            if spans.is_empty()? {
                for row in persons.iter()? {
                    let (k, v) = row?;
                    let mut p: Person = decode("persons", k.value(), v.value())?;
                    p.updated_at = p.created_at;
                    track_care(&mut spans, None, &p)?;
                }
            }
            let tasks = self.txn.open_table(TASKS)?;
            let mut counts = self.txn.open_table(TASK_COUNTS)?;
            if counts.is_empty()? {
                for row in tasks.iter()? {
                    let (k, v) = row?;
                    let t: Task = decode("tasks", k.value(), v.value())?;
                    count_task(&mut counts, None, Some(&t))?;
                }
            }
            let volunteers = self.txn.open_table(VOLUNTEERS)?;
            let mut holders = self.txn.open_table(ROLE_HOLDERS)?;
            for row in volunteers.iter()? {
                let (k, v) = row?;
                let vol: Volunteer = decode("volunteers", k.value(), v.value())?;
                track_roles(&mut holders, None, &vol)?;
            }
        }
        self.set_meta("records_indexed", 1)
    }
}
