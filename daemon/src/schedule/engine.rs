//! The scheduler: the only place occurrences run. `tick` works out what is due — fires by each
//! duty's catch-up policy (queued durably in the same transaction that advances the duty),
//! queued triggers and backfills, occurrences a stop interrupted, failed ones whose retry is due —
//! and runs each duty's work on its own, so a slow or failing duty holds up no other. The loop
//! sleeps until the next fire, retry or due time, a poke, a finished duty, or shutdown.
//!
//! One daemon run owns a data folder (`store::DataLock`); each run has a boot id, and an
//! occurrence left planning by another run was interrupted and is taken over.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::duties::parse_schedule;
use super::*;
use crate::clock::SharedClock;
use crate::plugins::catalog::Catalog;
use crate::service::ServiceError;
use crate::store::{Store, StoreError};

pub struct Scheduler {
    pub(super) store: Store,
    pub(super) plugins: Arc<Catalog>,
    pub(super) clock: SharedClock,
    pub(super) default_zone: Tz,
    wake: tokio::sync::Notify,
    /// This daemon run. An occurrence planning under another boot id was interrupted.
    pub(super) boot: String,
    /// When this scheduler started: fires before it were missed while the daemon was down.
    started: DateTime<Utc>,
    stop: CancellationToken,
    /// Duties whose work is running now.
    busy: Mutex<HashSet<u64>>,
    /// Matching weights and offer deadlines.
    pub(super) matching: Mutex<super::staffing::MatchingSettings>,
    /// One staffing write at a time, so two runs never offer one volunteer beyond capacity.
    pub(super) staffing: Mutex<()>,
    /// Offers made while large batches plan outside that lock (see `Scheduler::staff`).
    pub(super) ledger: Mutex<super::staffing::Ledger>,
    /// Small staffing runs waiting for that lock: a batch writing in chunks lets them in first.
    pub(super) staffing_waiters: std::sync::atomic::AtomicUsize,
    /// When unstaffed tasks were last swept (at most hourly: the sweep reads them all).
    pub(super) last_retry: Mutex<Option<DateTime<Utc>>>,
}

/// One duty's work due now: the occurrences to run, in order.
struct Job {
    duty: Duty,
    runs: Vec<(DateTime<Utc>, Trigger)>,
}

/// Marks a duty busy while its job runs.
struct Busy<'a>(&'a Scheduler, u64);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

impl Scheduler {
    pub fn new(store: Store, plugins: Arc<Catalog>, clock: SharedClock, default_zone: Tz) -> Self {
        let started = clock.now();
        Scheduler {
            store,
            plugins,
            clock,
            default_zone,
            wake: tokio::sync::Notify::new(),
            boot: format!("{:016x}", rand::random::<u64>()),
            started,
            stop: CancellationToken::new(),
            busy: Mutex::new(HashSet::new()),
            matching: Mutex::new(super::staffing::MatchingSettings::default()),
            staffing: Mutex::new(()),
            ledger: Mutex::new(super::staffing::Ledger::default()),
            staffing_waiters: std::sync::atomic::AtomicUsize::new(0),
            last_retry: Mutex::new(None),
        }
    }

    /// Wakes the loop (a duty changed, an occurrence was queued).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// This daemon run's boot id, as recorded on the occurrences it plans.
    pub fn boot_id(&self) -> &str {
        &self.boot
    }

    /// Asks the loop and every running occurrence to stop: occurrences stop between write
    /// chunks and plan batches and stay pending for the next start.
    pub fn shutdown(&self) {
        self.stop.cancel();
        self.poke();
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Marks a duty busy; false if its work is running already. The work holds a `Busy`,
    /// which clears the mark when it ends.
    fn mark_busy(&self, duty: u64) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(duty)
    }

    fn is_busy(&self, duty: u64) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&duty)
    }

    // ------------------------------------------------------------------------------ the tick

    /// Works out what is due now and writes it down: each duty's fires since its last one are
    /// selected by its catch-up policy and queued (with the duty's new last and next fire, in
    /// one transaction), and tasks past due are marked overdue. Returns every duty's due work
    /// (duties with work running are left for their next turn) and when to look again.
    fn due(&self) -> Result<(Vec<Job>, Option<DateTime<Utc>>), ServiceError> {
        let now = self.clock.now();
        let mut next_wake: Option<DateTime<Utc>> = None;
        let duties = self.store.read(|r| r.all_duties())?;
        let mut queue = Vec::new();
        let mut updates = Vec::new();
        for duty in &duties {
            if duty.paused || self.is_busy(duty.id) {
                continue;
            }
            let Ok((expr, tz)) = parse_schedule(duty) else {
                continue;
            };
            let from = duty.last_fire.unwrap_or(duty.created_at);
            let fires = expr.between(from, now, tz, 100_000);
            for (at, trigger) in catchup::select(&fires, self.started, now, duty.catch_up) {
                queue.push((duty.id, at, trigger));
            }
            let next_fire = expr.next_after(now, tz);
            if fires.last().is_some() || duty.next_fire != next_fire {
                updates.push((
                    duty.id,
                    duty.cron.clone(),
                    duty.time_zone.clone(),
                    fires.last().copied().or(duty.last_fire),
                    next_fire,
                ));
            }
            next_wake = earliest(next_wake, next_fire);
        }
        if !queue.is_empty() || !updates.is_empty() {
            self.store.write(|w| {
                for (duty, at, trigger) in &queue {
                    if w.occurrence(*duty, at.timestamp())?.is_none() {
                        w.put_occurrence(&Occurrence::queued(*duty, *at, *trigger, 0, now))?;
                    }
                }
                for (id, cron, time_zone, last, next) in &updates {
                    // Re-read: the duty may have changed meanwhile.
                    if let Some(mut current) = w.duty(*id)?
                        && current.cron == *cron
                        && current.time_zone == *time_zone
                    {
                        current.last_fire = *last;
                        current.next_fire = *next;
                        w.put_duty(&current)?;
                    }
                }
                Ok::<_, StoreError>(())
            })?;
        }
        // Everything pending, by duty: queued, interrupted, or failed with its retry due.
        let by_id: BTreeMap<u64, &Duty> = duties.iter().map(|d| (d.id, d)).collect();
        let mut runs: BTreeMap<u64, Vec<(DateTime<Utc>, Trigger)>> = BTreeMap::new();
        for (duty, ts) in self.store.read(|r| r.pending_occurrences())? {
            let Some(d) = by_id.get(&duty) else { continue };
            let Some(o) = self.store.read(|r| r.occurrence(duty, ts))? else {
                continue;
            };
            if self.is_busy(duty) {
                continue;
            }
            let due = match o.status {
                OccurrenceStatus::Queued => true,
                OccurrenceStatus::Planning => o.owner.as_deref() != Some(self.boot.as_str()),
                OccurrenceStatus::Failed => match o.next_retry {
                    Some(t) if t <= now => !d.paused,
                    Some(t) => {
                        next_wake = earliest(next_wake, Some(t));
                        false
                    }
                    None => false,
                },
                OccurrenceStatus::Done => false,
            };
            if due {
                runs.entry(duty)
                    .or_default()
                    .push((o.scheduled_at, o.trigger));
            }
        }
        self.mark_overdue(now)?;
        self.expire_offers(now)?;
        self.staff_open()?;
        self.retry_unstaffed(now)?;
        let due_end = self
            .store
            .read(|r| {
                Ok::<_, StoreError>(min_some(r.first_open_due()?, r.first_offer_deadline()?))
            })?
            .and_then(|s| Utc.timestamp_opt(s + 1, 0).single());
        let jobs = runs
            .into_iter()
            .filter_map(|(id, runs)| {
                by_id.get(&id).map(|d| Job {
                    duty: (*d).clone(),
                    runs,
                })
            })
            .collect();
        Ok((jobs, earliest(next_wake, due_end)))
    }

    /// Runs one duty's due occurrences in order. An error is recorded on the duty and ends only
    /// this duty's turn.
    fn run_job(&self, job: &Job) {
        for (at, trigger) in &job.runs {
            if self.stopping() {
                return;
            }
            if let Err(e) = self.run_occurrence(&job.duty, *at, *trigger) {
                tracing::error!(duty = job.duty.id, at = %at, error = %e, "occurrence could not run");
                let error = crate::plugins::checks::cap_text(e.to_string(), 4096);
                let noted = self.store.write(|w| {
                    if let Some(mut d) = w.duty(job.duty.id)? {
                        d.last_error = Some(error);
                        w.put_duty(&d)?;
                    }
                    Ok::<_, StoreError>(())
                });
                if let Err(e) = noted {
                    tracing::error!(duty = job.duty.id, error = %e, "cannot record the duty's error");
                }
                return;
            }
        }
    }

    /// Does everything that is due at the clock's current time and waits for it: every duty's
    /// work runs on a thread of its own. Returns when to look again. Blocking; for tests, the
    /// demo and benchmarks (the daemon's loop does the same without waiting).
    pub fn tick(&self) -> Result<Option<DateTime<Utc>>, ServiceError> {
        let (jobs, next) = self.due()?;
        std::thread::scope(|s| {
            for job in &jobs {
                if self.mark_busy(job.duty.id) {
                    s.spawn(move || {
                        let _busy = Busy(self, job.duty.id);
                        self.run_job(job);
                    });
                }
            }
        });
        Ok(next)
    }

    /// Open tasks past their due end become overdue, each with a `task.overdue` event.
    fn mark_overdue(&self, now: DateTime<Utc>) -> Result<(), ServiceError> {
        loop {
            let n = self.store.write(|w| {
                let due = w.open_tasks_due_before(now.timestamp(), 1000)?;
                let mut events = Vec::new();
                {
                    let mut tasks = w.task_writer()?;
                    for old in &due {
                        let task = Task {
                            overdue: true,
                            updated_at: now,
                            ..old.clone()
                        };
                        tasks.put(&task)?;
                        events.push(Event {
                            seq: 0,
                            kind: super::EventKind::TaskOverdue,
                            data: None,
                            at: now,
                            task: Some(task.id),
                            duty: Some(task.duty),
                            community: Some(task.community.clone()),
                            region: Some(task.community.clone()),
                            detail: format!(
                                "{} was due by {}",
                                task.title.zh,
                                task.due_end.to_rfc3339()
                            ),
                        });
                    }
                }
                for e in events {
                    w.push_event(e)?;
                }
                Ok::<_, StoreError>(due.len())
            })?;
            if n < 1000 {
                return Ok(());
            }
        }
    }

    /// Runs until `shutdown`: works out what is due, starts each duty's work as a task the loop
    /// owns (a duty with work running is left alone), and sleeps until the next fire, retry or
    /// due time, a poke, a duty's work ending, or shutdown. On shutdown it waits for the work in
    /// hand, which stops between chunks.
    pub async fn run(self: Arc<Self>) {
        let mut jobs = tokio::task::JoinSet::new();
        while !self.stopping() {
            let me = self.clone();
            let next = match tokio::task::spawn_blocking(move || me.due()).await {
                Ok(Ok((due, next))) => {
                    for job in due {
                        if !self.mark_busy(job.duty.id) {
                            continue;
                        }
                        let me = self.clone();
                        jobs.spawn_blocking(move || {
                            let _busy = Busy(&me, job.duty.id);
                            me.run_job(&job);
                        });
                    }
                    next
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "scheduler tick failed; retrying in a minute");
                    Some(self.clock.now() + chrono::Duration::minutes(1))
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduler tick panicked; retrying in a minute");
                    Some(self.clock.now() + chrono::Duration::minutes(1))
                }
            };
            // Sleep at most an hour at a time, so a wall-clock jump is noticed.
            let wait = next
                .map(|t| (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(3600));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
                () = self.stop.cancelled() => {}
            }
        }
        while jobs.join_next().await.is_some() {}
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The earlier of two optional instants.
fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
