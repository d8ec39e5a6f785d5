//! Running one occurrence, exactly once: the record is keyed (duty, instant) and claimed by
//! this daemon run, targets are gathered, the plugin plans them in batches on a planner thread
//! while earlier batches are written, and each task is written only where its key is absent.
//! A stop leaves the occurrence pending for the next start; a failure is recorded with its retry.
//!
//! Only the scheduler loop (or a process that holds the data folder before the loop starts)
//! calls `run_occurrence`.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;

use super::cron::zone;
use super::engine::Scheduler;
use super::*;
use crate::plugins::model::{self as pm, TargetKind};
use crate::plugins::runtime::CallError;
use crate::registry::RegionLevel;
use crate::service::ServiceError;
use crate::store::StoreError;

/// Tasks written per transaction while an occurrence is persisted (`LINLI_TASK_CHUNK` overrides
/// it, for tuning and for the crash test).
fn chunk_size() -> usize {
    std::env::var("LINLI_TASK_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5000)
}
/// For the crash test: with `LINLI_ABORT_AFTER_CHUNKS=N` the process aborts (a real death, as
/// SIGKILL) right after its N-th task chunk is committed, so the kill lands mid-occurrence
/// whatever the machine's speed.
fn failpoint_after_chunk() {
    static COMMITTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static LIMIT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let limit = LIMIT.get_or_init(|| {
        std::env::var("LINLI_ABORT_AFTER_CHUNKS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = limit {
        let done = COMMITTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if done >= *n {
            std::process::abort();
        }
    }
}

/// Targets per `plan` call; the interface lets the host split an occurrence's targets.
pub const PLAN_BATCH: usize = 5000;

/// An occurrence's targets as the plugin sees them, and each one's key and community.
type Targets = (Vec<pm::Target>, Vec<(TaskTarget, String)>);

impl Scheduler {
    /// Runs one occurrence exactly once: its record is keyed (duty, instant), each task
    /// (duty, instant, target/kind), and tasks are written in transactions, so a run that was
    /// interrupted is finished by the next without creating anything twice.
    pub fn run_occurrence(
        &self,
        duty: &Duty,
        at: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Occurrence, ServiceError> {
        let now = self.clock.now();
        let ts = at.timestamp();
        let start = self.store.write(|w| {
            let existing = w.occurrence(duty.id, ts)?;
            let (trigger, attempts) = match &existing {
                // Done, or being planned by this very daemon run: nothing to do here.
                Some(e)
                    if e.status == OccurrenceStatus::Done
                        || (e.status == OccurrenceStatus::Planning
                            && e.owner.as_deref() == Some(self.boot.as_str())) =>
                {
                    return Ok::<_, StoreError>(Err(e.clone()));
                }
                // Queued, interrupted (its owner is gone: this daemon holds the data folder),
                // or failed: run it, keeping why it was asked for.
                Some(e) => (e.trigger, e.attempts),
                None => (trigger, 0),
            };
            let o = Occurrence {
                duty: duty.id,
                scheduled_at: at,
                trigger,
                status: OccurrenceStatus::Planning,
                targets: 0,
                planned: 0,
                tasks_created: 0,
                tasks_existing: 0,
                error: None,
                attempts: attempts + 1,
                next_retry: None,
                owner: Some(self.boot.clone()),
                started_at: now,
                finished_at: None,
            };
            w.put_occurrence(&o)?;
            Ok(Ok(o))
        })?;
        let mut occ = match start {
            Ok(o) => o,
            Err(done) => return Ok(done),
        };
        let tz = zone(&duty.time_zone).unwrap_or(self.default_zone);
        let (gathered, gather_time) = crate::plugins::runtime::timed(|| {
            self.targets(duty, at.with_timezone(&tz).date_naive())
        });
        let (targets, keys) = match gathered {
            Ok(t) => t,
            Err(e) => return self.failed(duty, occ, &e.to_string()),
        };
        occ.targets = targets.len() as u64;
        let plan_occ = pm::Occurrence {
            duty: duty.id.to_string(),
            action: duty.action.clone(),
            scheduled_at: at
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            time_zone: tz.name().to_owned(),
        };
        // Plan batch k+1 (on a planner thread) while batch k is written.
        let persist_started = std::time::Instant::now();
        let mut plan_time = std::time::Duration::ZERO;
        let mut stored: Vec<(Vec<pm::ChecklistItem>, u64)> = Vec::new();
        let failure = std::thread::scope(|scope| -> Result<Option<CallError>, ServiceError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let (plugins, plan_occ, targets, plugin) =
                (&self.plugins, &plan_occ, &targets, &duty.plugin);
            scope.spawn(move || {
                let batches: Vec<&[pm::Target]> = if targets.is_empty() {
                    vec![&targets[..]]
                } else {
                    targets.chunks(PLAN_BATCH).collect()
                };
                for (b, batch) in batches.into_iter().enumerate() {
                    if self.stopping() {
                        let _ =
                            tx.send((b * PLAN_BATCH, Err(CallError::Shutdown), Default::default()));
                        break;
                    }
                    let (result, took) =
                        crate::plugins::runtime::timed(|| plugins.plan(plugin, plan_occ, batch));
                    let failed = result.is_err();
                    if tx
                        .send((b * PLAN_BATCH, result.map(|(p, _logs)| p), took))
                        .is_err()
                        || failed
                    {
                        break;
                    }
                }
            });
            for (offset, result, took) in rx {
                plan_time += took;
                let part = match result {
                    Ok(part) => part,
                    Err(e) => return Ok(Some(e)),
                };
                if self.stopping() {
                    return Ok(Some(CallError::Shutdown));
                }
                occ.planned += part.drafts.len() as u64;
                let ids = self.store_checklists(&mut stored, part.checklists)?;
                self.persist(
                    duty,
                    at,
                    tz,
                    now,
                    &keys,
                    offset,
                    &part.drafts,
                    &ids,
                    &mut occ,
                )?;
            }
            Ok(None)
        });
        let failure = match failure {
            Ok(f) => f,
            Err(e) => return self.failed(duty, occ, &e.to_string()),
        };
        if let Some(CallError::Shutdown) = failure {
            // Not a failure: the occurrence stays pending and the next start finishes it.
            tracing::info!(duty = duty.id, at = %at, "occurrence interrupted by shutdown");
            return Ok(occ);
        }
        if let Some(e) = failure {
            return self.failed(duty, occ, &e.to_string());
        }
        occ.status = OccurrenceStatus::Done;
        occ.finished_at = Some(self.clock.now());
        self.store.write(|w| {
            w.put_occurrence(&occ)?;
            // One digest of the new tasks, in the transaction that finishes the occurrence
            // (notifications split it per station).
            if occ.tasks_created > 0 {
                w.push_event(digest(
                    duty,
                    at,
                    &w.tasks_of_occurrence(duty.id, at.timestamp())?,
                    now,
                ))?;
            }
            self.note_on_duty(w, duty.id, None, None)
        })?;
        tracing::info!(
            duty = duty.id,
            at = %at,
            targets = occ.targets,
            created = occ.tasks_created,
            existing = occ.tasks_existing,
            gather_ms = gather_time.as_millis() as u64,
            plan_ms = plan_time.as_millis() as u64,
            persist_ms = persist_started.elapsed().as_millis() as u64,
            "occurrence done"
        );
        // Its new tasks are matched in one batch (a failure here leaves them open, and the
        // next tick's sweep matches them).
        if let Err(e) = self.staff_open() {
            tracing::warn!(duty = duty.id, error = %e, "matching the new tasks failed");
        }
        Ok(occ)
    }

    /// Records a failed run: the error on the occurrence and its duty, a retry time if the
    /// schedule still wants it (`catchup::retry_at`), and an `occurrence.failed` event the first
    /// time and when retrying stops.
    fn failed(
        &self,
        duty: &Duty,
        mut occ: Occurrence,
        error: &str,
    ) -> Result<Occurrence, ServiceError> {
        let now = self.clock.now();
        let error = crate::plugins::checks::cap_text(error.to_owned(), 4096);
        occ.status = OccurrenceStatus::Failed;
        occ.error = Some(error.clone());
        occ.finished_at = Some(now);
        occ.owner = None;
        occ.next_retry = super::catchup::retry_at(
            occ.trigger,
            occ.scheduled_at,
            occ.attempts,
            now,
            duty.catch_up,
        );
        tracing::warn!(duty = duty.id, attempts = occ.attempts, next_retry = ?occ.next_retry, error = %error, "occurrence failed");
        let tell = occ.attempts <= 1 || occ.next_retry.is_none();
        self.store.write(|w| {
            w.put_occurrence(&occ)?;
            self.note_on_duty(w, duty.id, Some(error.clone()), occ.next_retry)?;
            if tell {
                w.push_event(Event {
                    seq: 0,
                    kind: super::EventKind::OccurrenceFailed,
                    data: None,
                    at: now,
                    task: None,
                    duty: Some(duty.id),
                    community: None,
                    region: Some(duty.selector.region.clone()),
                    detail: match occ.next_retry {
                        Some(t) => format!(
                            "{error} (attempt {}; retrying at {})",
                            occ.attempts,
                            t.to_rfc3339()
                        ),
                        None => format!("{error} (attempt {}; not retried)", occ.attempts),
                    },
                })?;
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(occ)
    }

    /// Writes a duty's last error and next retry (re-read: it may have changed meanwhile).
    fn note_on_duty(
        &self,
        w: &mut crate::store::WriteTx,
        duty: u64,
        error: Option<String>,
        retry: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        if let Some(mut d) = w.duty(duty)?
            && (d.last_error != error || d.next_retry != retry)
        {
            d.last_error = error;
            d.next_retry = retry;
            w.put_duty(&d)?;
        }
        Ok(())
    }

    /// Stores the checklists of one plan batch that are not stored yet for this occurrence;
    /// returns the id of each, by the batch's indices.
    fn store_checklists(
        &self,
        stored: &mut Vec<(Vec<pm::ChecklistItem>, u64)>,
        checklists: Vec<Vec<pm::ChecklistItem>>,
    ) -> Result<Vec<u64>, ServiceError> {
        let fresh: Vec<&Vec<pm::ChecklistItem>> = checklists
            .iter()
            .filter(|c| !stored.iter().any(|(s, _)| s == *c))
            .collect();
        if !fresh.is_empty() {
            let first = self.store.write(|w| {
                let first = w.reserve_ids("checklist", fresh.len() as u64)?;
                for (i, c) in fresh.iter().enumerate() {
                    let items: Vec<super::ChecklistItem> = c.iter().map(Into::into).collect();
                    w.put_checklist(first + i as u64, &items)?;
                }
                Ok::<_, StoreError>(first)
            })?;
            for (i, c) in fresh.into_iter().enumerate() {
                stored.push((c.clone(), first + i as u64));
            }
        }
        Ok(checklists
            .iter()
            .map(|c| stored.iter().find(|(s, _)| s == c).map_or(0, |(_, id)| *id))
            .collect())
    }

    /// Writes the tasks of one plan batch (targets indexed from `offset`) in transactions of
    /// `chunk_size()`, each creating only the tasks whose key is not there yet.
    #[allow(clippy::too_many_arguments)]
    fn persist(
        &self,
        duty: &Duty,
        at: DateTime<Utc>,
        tz: Tz,
        now: DateTime<Utc>,
        keys: &[(TaskTarget, String)],
        offset: usize,
        drafts: &[pm::TaskDraft],
        checklist_ids: &[u64],
        occ: &mut Occurrence,
    ) -> Result<(), ServiceError> {
        let ts = at.timestamp();
        // The duty's own window counts calendar days in its zone: the same local time N days on
        // (a DST change in between does not move it by an hour).
        let due_override = duty.due_window_days.map(|days| {
            let local = at.with_timezone(&tz).naive_local() + chrono::Days::new(u64::from(days));
            crate::cron::resolve(local, tz)
                .unwrap_or(at + chrono::Duration::days(i64::from(days)))
                .with_timezone(&tz)
                .fixed_offset()
        });
        // The last due window parsed (drafts of an occurrence mostly share one).
        let mut window: Option<(String, String, DateTime<FixedOffset>, DateTime<FixedOffset>)> =
            None;
        for chunk in drafts.chunks(chunk_size()) {
            self.store.write(|w| {
                let mut fresh = Vec::new();
                // Keys taken in this chunk (a plugin may repeat a target and kind).
                let mut taken = std::collections::HashSet::new();
                {
                    let tasks = w.task_writer()?;
                    for d in chunk {
                        let Some((target, community)) = keys.get(offset + d.target as usize) else {
                            continue;
                        };
                        let key = format!("{}/{}", target_key(target), d.kind);
                        if tasks.existing(duty.id, ts, &key)?.is_some()
                            || !taken.insert(key.clone())
                        {
                            occ.tasks_existing += 1;
                            continue;
                        }
                        fresh.push((key, target.clone(), community.clone(), d));
                    }
                }
                if fresh.is_empty() {
                    w.put_occurrence(occ)?;
                    return Ok::<_, StoreError>(());
                }
                let first = w.reserve_ids("task", fresh.len() as u64)?;
                let mut tasks = w.task_writer()?;
                for (i, (key, target, community, d)) in fresh.into_iter().enumerate() {
                    // Most drafts share one due window: parse each distinct one once (the host
                    // checked every one before this).
                    let (due_start, due_end) = match &window {
                        Some((s, e, start, end)) if *s == d.due_start && *e == d.due_end => {
                            (*start, *end)
                        }
                        _ => {
                            let parse = |s: &str| {
                                DateTime::parse_from_rfc3339(s)
                                    .unwrap_or_else(|_| at.fixed_offset())
                            };
                            let start = parse(&d.due_start);
                            let end = due_override
                                .map_or_else(|| parse(&d.due_end), |end| end.max(start));
                            window = Some((d.due_start.clone(), d.due_end.clone(), start, end));
                            (start, end)
                        }
                    };
                    tasks.create(&Task {
                        id: first + i as u64,
                        duty: duty.id,
                        scheduled_at: at,
                        key,
                        target,
                        community,
                        plugin: duty.plugin.clone(),
                        action: duty.action.clone(),
                        kind: d.kind.clone(),
                        title: (&d.title).into(),
                        due_start,
                        due_end,
                        priority: d.priority.into(),
                        requirements: (&d.requirements).into(),
                        checklist: checklist_ids
                            .get(d.checklist as usize)
                            .copied()
                            .unwrap_or(0),
                        status: TaskStatus::Open,
                        overdue: false,
                        station: None,
                        offers: Vec::new(),
                        unstaffed: Vec::new(),
                        report: None,
                        follows_up: None,
                        history: vec![super::TaskChange {
                            at: now,
                            status: TaskStatus::Open,
                            by: "scheduler".into(),
                            note: None,
                        }],
                        created_at: now,
                        updated_at: now,
                    })?;
                    occ.tasks_created += 1;
                }
                drop(tasks);
                w.put_occurrence(occ)?;
                Ok(())
            })?;
            failpoint_after_chunk();
        }
        Ok(())
    }

    /// The targets of a duty on `today`, with each target's key and community.
    pub(super) fn targets(
        &self,
        duty: &Duty,
        today: chrono::NaiveDate,
    ) -> Result<Targets, ServiceError> {
        let action = self
            .plugins
            .description(&duty.plugin)
            .and_then(|d| d.actions.into_iter().find(|a| a.id == duty.action));
        let Some(action) = action else {
            return Ok((Vec::new(), Vec::new()));
        };
        let region = &duty.selector.region;
        let prefix = crate::registry::region::subtree_prefix(region)
            .unwrap_or(region)
            .to_owned();
        let grid = region.contains('-').then_some(region.as_str());
        let community_prefix = prefix.split('-').next().unwrap_or(&prefix).to_owned();
        let mut targets = Vec::new();
        let mut keys = Vec::new();
        match action.target_kind {
            TargetKind::Person => {
                let categories: Vec<String> = if duty.selector.categories.is_empty() {
                    action.categories.clone()
                } else {
                    duty.selector
                        .categories
                        .iter()
                        .map(|c| c.as_str().to_owned())
                        .collect()
                };
                let people = self.store.read(|r| {
                    r.persons_under_as(&community_prefix, |p: &crate::registry::PersonFacts| {
                        p.active
                            && grid.is_none_or(|g| p.grid.as_deref() == Some(g))
                            && p.categories
                                .iter()
                                .any(|c| categories.iter().any(|x| x == c.as_str()))
                            && duty.selector.needs.iter().all(|n| p.needs.contains(n))
                    })
                })?;
                for p in people {
                    keys.push((TaskTarget::Person { id: p.id }, p.community.clone()));
                    targets.push(pm::Target::Person(pm::PersonTarget::from_facts(&p, today)));
                }
            }
            TargetKind::Community => {
                let page = self.store.read(|r| {
                    r.regions(&community_prefix, None, usize::MAX, |reg| {
                        reg.active
                            && reg.level == RegionLevel::Community
                            && (duty.selector.communities.is_empty()
                                || duty.selector.communities.contains(&reg.code))
                    })
                })?;
                for reg in page.items {
                    keys.push((
                        TaskTarget::Community {
                            code: reg.code.clone(),
                        },
                        reg.code.clone(),
                    ));
                    targets.push(pm::Target::Community(pm::CommunityTarget::from_region(
                        &reg,
                    )));
                }
            }
        }
        Ok((targets, keys))
    }
}

/// The `occurrence.tasks` event: an occurrence's tasks counted by community and kind.
fn digest(duty: &Duty, at: DateTime<Utc>, tasks: &[Task], now: DateTime<Utc>) -> Event {
    let mut by: std::collections::BTreeMap<&str, super::CommunityTasks> = Default::default();
    for t in tasks {
        let c = by
            .entry(&t.community)
            .or_insert_with(|| super::CommunityTasks {
                community: t.community.clone(),
                kinds: Default::default(),
                tasks: Vec::new(),
            });
        *c.kinds.entry(t.kind.clone()).or_default() += 1;
        c.tasks.push(t.id);
    }
    Event {
        seq: 0,
        kind: super::EventKind::OccurrenceTasks,
        at: now,
        task: None,
        duty: Some(duty.id),
        community: None,
        region: Some(duty.selector.region.clone()),
        detail: format!("{}: {} new tasks", duty.name, tasks.len()),
        data: Some(super::EventData::Tasks {
            scheduled_at: at,
            communities: by.into_values().collect(),
        }),
    }
}

fn target_key(t: &TaskTarget) -> String {
    match t {
        TaskTarget::Person { id } => format!("person:{id}"),
        TaskTarget::Community { code } => format!("community:{code}"),
    }
}
