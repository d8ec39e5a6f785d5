//! `Records`: the service the API (and later the console) calls for everything records keep.
//! Each operation is one write transaction with its outbox events; plugin reviews run between
//! transactions, never inside one.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::calendar::WorkCalendar;
use crate::clock::SharedClock;
use crate::config::RecordsConfig;
use crate::plugins::catalog::Catalog;
use crate::schedule::{Event, EventData, EventKind, Scheduler};
use crate::service::ServiceError;
use crate::store::{Store, WriteTx};
use crate::task::{Priority, Severity, Task, TaskChange, TaskStatus};

/// Who is acting: a volunteer for themself, or staff (station, bureau, administrator) under
/// the guard of their scope.
pub enum Actor<'a> {
    Volunteer(u64),
    Staff {
        guard: &'a dyn crate::service::Guard,
        by: String,
    },
}

impl Actor<'_> {
    /// The scope string recorded as the actor.
    pub fn by(&self) -> String {
        match self {
            Actor::Volunteer(id) => format!("volunteer:{id}"),
            Actor::Staff { by, .. } => by.clone(),
        }
    }
}

pub struct Records {
    pub(super) store: Store,
    pub(super) clock: SharedClock,
    pub(super) plugins: Arc<Catalog>,
    pub(super) scheduler: Arc<Scheduler>,
    pub(super) calendar: WorkCalendar,
    pub(super) config: RecordsConfig,
    /// Where certificates and rating links point (no trailing slash).
    pub(super) base_url: String,
    /// The last report the review sweep tried (it goes round).
    pub(super) review_cursor: std::sync::Mutex<u64>,
}

impl Records {
    pub fn new(
        store: Store,
        clock: SharedClock,
        plugins: Arc<Catalog>,
        scheduler: Arc<Scheduler>,
        calendar: WorkCalendar,
        config: RecordsConfig,
        base_url: String,
    ) -> Self {
        Records {
            store,
            clock,
            plugins,
            scheduler,
            calendar,
            config,
            base_url: base_url.trim_end_matches('/').to_owned(),
            review_cursor: std::sync::Mutex::new(0),
        }
    }

    pub fn config(&self) -> &RecordsConfig {
        &self.config
    }

    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Writes a follow-up task for `original` (same target, plugin, checklist and
    /// requirements): urgent ones due within a day at urgent priority, routine ones within
    /// five working days. Call [`Records::staff_follow_up`] after the commit.
    pub(super) fn write_follow_up(
        &self,
        w: &mut WriteTx,
        original: &Task,
        severity: Severity,
        reason: &str,
        by: &str,
    ) -> Result<Task, ServiceError> {
        let now = self.now();
        let id = w.reserve_ids("task", 1)?;
        let zone = original.due_end.timezone();
        let start = now.with_timezone(&zone);
        let end = match severity {
            Severity::Urgent => start + Duration::hours(24),
            Severity::Routine => {
                let day = self
                    .calendar
                    .add_working_days(crate::clock::local_date(now), 5);
                day.and_hms_opt(18, 0, 0)
                    .and_then(|t| t.and_local_timezone(crate::clock::local_zone()).single())
                    .map_or(start + Duration::days(7), |t| t.with_timezone(&zone))
            }
        };
        let short: String = reason.chars().take(60).collect();
        let task = Task {
            id,
            duty: 0,
            scheduled_at: now,
            key: format!("follow-up-{id}"),
            target: original.target.clone(),
            community: original.community.clone(),
            plugin: original.plugin.clone(),
            action: original.action.clone(),
            kind: "follow-up".into(),
            title: crate::task::Names {
                zh: format!("跟进：{}", original.title.zh),
                en: format!("Follow-up: {}", original.title.en),
            },
            due_start: start,
            due_end: end,
            priority: match severity {
                Severity::Urgent => Priority::Urgent,
                Severity::Routine => original.priority.max(Priority::Normal),
            },
            requirements: crate::task::Requirements {
                team_size: 1,
                ..original.requirements.clone()
            },
            checklist: original.checklist,
            status: TaskStatus::Open,
            overdue: false,
            station: original.station,
            offers: Vec::new(),
            unstaffed: Vec::new(),
            history: vec![TaskChange {
                at: now,
                status: TaskStatus::Open,
                by: by.to_owned(),
                note: Some(short),
            }],
            report: None,
            follows_up: Some(original.id),
            created_at: now,
            updated_at: now,
        };
        w.task_writer()?.create(&task)?;
        w.push_event(task_event(
            EventKind::TaskCreated,
            &task,
            now,
            task.title.zh.clone(),
            None,
        ))?;
        Ok(task)
    }

    /// The records loop, until `stop`: every minute, reviews reports whose plugin could not be
    /// asked before; once a day, prunes the audit log past its retention.
    pub async fn run(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            }
            let me = self.clone();
            let prune =
                last_prune.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(86_400));
            let worked = tokio::task::spawn_blocking(move || {
                if let Err(e) = me.review_pending(100) {
                    tracing::warn!(error = %e, "reviewing waiting visit reports failed");
                }
                if prune {
                    match me.prune_audit() {
                        Ok(n) if n > 0 => tracing::info!(entries = n, "audit log pruned"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
                    }
                }
            })
            .await;
            if worked.is_ok() && prune {
                last_prune = Some(std::time::Instant::now());
            }
        }
    }

    /// Offers a follow-up task made by [`Records::write_follow_up`] (after its commit). If
    /// matching fails now, the scheduler's sweep matches it later.
    pub(super) fn staff_follow_up(&self, id: u64) {
        if let Err(e) = self.scheduler.staff(&[id], "matching") {
            tracing::warn!(task = id, error = %e, "matching a follow-up task failed");
        }
    }
}

/// An outbox event about `task`.
pub(super) fn task_event(
    kind: EventKind,
    task: &Task,
    now: DateTime<Utc>,
    detail: String,
    data: Option<EventData>,
) -> Event {
    Event {
        seq: 0,
        kind,
        at: now,
        task: Some(task.id),
        duty: (task.duty != 0).then_some(task.duty),
        community: Some(task.community.clone()),
        region: Some(task.community.clone()),
        detail,
        data,
    }
}

pub(super) fn conflict(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::Conflict {
        field: field.into(),
        message: message.into(),
    }
}
