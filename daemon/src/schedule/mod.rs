//! Duties: recurring schedules whose every occurrence asks a plugin to plan tasks for its
//! targets, exactly once.
//!
//! - `cron` — expressions and fire times (pure).
//! - `engine` — the `Scheduler`: runs occurrences (idempotently, in transactions), catches up
//!   after downtime by policy, marks tasks overdue, and sleeps until the next thing to do.
//!
//! Idempotency keys (DESIGN.md): an occurrence is (duty, scheduled instant); a task is (duty,
//! occurrence, target) — here with the task kind added, since one plugin may plan two kinds of
//! task for one target in one occurrence. Re-running either after a crash finds the key and
//! creates nothing twice.

/// Cron expressions are domain-level (plugins check their default crons with them too).
pub use crate::cron;
pub mod catchup;
mod duties;
pub mod engine;
mod occurrence;
pub mod staffing;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plugins::model as pm;
use crate::registry::Gender;

pub use crate::task::*;
pub use duties::{DraftSample, DryRun, next_n};
pub use engine::Scheduler;
pub use occurrence::PLAN_BATCH;

/// What to do with occurrences missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpPolicy {
    /// Run every missed occurrence within the window.
    All,
    /// Run only the most recent missed occurrence within the window.
    #[default]
    Latest,
    /// Run none; carry on with the next.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatchUp {
    pub policy: CatchUpPolicy,
    /// How far back missed occurrences are considered, in days.
    pub window_days: u32,
}

impl Default for CatchUp {
    fn default() -> Self {
        CatchUp {
            policy: CatchUpPolicy::Latest,
            window_days: 7,
        }
    }
}

/// Which targets an occurrence plans for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// A region code; its whole subtree is covered.
    pub region: String,
    /// For person actions: these categories (default: the categories the action names).
    #[serde(default)]
    pub categories: Vec<crate::registry::Category>,
    /// For person actions: only people with all these needs tags.
    #[serde(default)]
    pub needs: Vec<String>,
    /// For community actions: only these communities (default: every community in the region).
    #[serde(default)]
    pub communities: Vec<String>,
}

/// A duty as clients write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyInput {
    #[schema(example = "崆峒区特殊困难老人月探访")]
    pub name: String,
    #[schema(example = "elderly-visit")]
    pub plugin: String,
    #[schema(example = "monthly-visit")]
    pub action: String,
    /// 5-field POSIX cron, or 6/7 fields with seconds (default: the action's default schedule).
    #[serde(default)]
    pub cron: Option<String>,
    /// IANA time zone (default Asia/Shanghai).
    #[serde(default)]
    pub time_zone: Option<String>,
    pub selector: Selector,
    /// When set, every task is due this many days after its occurrence (instead of the
    /// plugin's own due window).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 366)]
    pub due_window_days: Option<u32>,
    #[serde(default)]
    pub catch_up: CatchUp,
    #[serde(default)]
    pub paused: bool,
}

/// A stored duty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Duty {
    pub id: u64,
    pub name: String,
    pub plugin: String,
    pub action: String,
    pub cron: String,
    pub time_zone: String,
    pub selector: Selector,
    pub due_window_days: Option<u32>,
    pub catch_up: CatchUp,
    pub paused: bool,
    /// The bureau (region code) that owns it; `None` for an administrator's.
    pub owner: Option<String>,
    /// The last scheduled instant considered (run, or skipped by policy).
    pub last_fire: Option<DateTime<Utc>>,
    /// The next scheduled instant.
    pub next_fire: Option<DateTime<Utc>>,
    /// Why its latest occurrence failed (cleared when one succeeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When a failed occurrence is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Duty {
    pub fn to_input(&self) -> DutyInput {
        DutyInput {
            name: self.name.clone(),
            plugin: self.plugin.clone(),
            action: self.action.clone(),
            cron: Some(self.cron.clone()),
            time_zone: Some(self.time_zone.clone()),
            selector: self.selector.clone(),
            due_window_days: self.due_window_days,
            catch_up: self.catch_up,
            paused: self.paused,
        }
    }
}

/// Why an occurrence ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Scheduled,
    CatchUp,
    Manual,
    Backfill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OccurrenceStatus {
    /// Asked for (a trigger or backfill) and waiting for the scheduler loop.
    Queued,
    /// Being planned (or interrupted; finished at the next start).
    Planning,
    /// Tasks created.
    Done,
    /// The plugin (or the store) failed; see `error`, and `next_retry` if it is tried again.
    Failed,
}

/// One occurrence of a duty and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Occurrence {
    pub duty: u64,
    pub scheduled_at: DateTime<Utc>,
    pub trigger: Trigger,
    pub status: OccurrenceStatus,
    /// Targets given to the plugin.
    pub targets: u64,
    /// Drafts the plugin returned.
    pub planned: u64,
    /// Tasks created by this run.
    pub tasks_created: u64,
    /// Drafts whose task already existed (from an interrupted run).
    pub tasks_existing: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Runs so far (a retry or a run finished after a restart counts again).
    #[serde(default)]
    pub attempts: u32,
    /// When a failed scheduled occurrence runs again (within its catch-up window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<DateTime<Utc>>,
    /// The daemon run (boot id) that is planning it; another run takes it over only when that
    /// one is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Occurrence {
    /// An occurrence asked for (by the schedule, a trigger or a backfill) and waiting for the
    /// loop; `attempts` carries over from a failed run it replaces.
    pub fn queued(
        duty: u64,
        scheduled_at: DateTime<Utc>,
        trigger: Trigger,
        attempts: u32,
        now: DateTime<Utc>,
    ) -> Self {
        Occurrence {
            duty,
            scheduled_at,
            trigger,
            status: OccurrenceStatus::Queued,
            targets: 0,
            planned: 0,
            tasks_created: 0,
            tasks_existing: 0,
            error: None,
            attempts,
            next_retry: None,
            owner: None,
            started_at: now,
            finished_at: None,
        }
    }

    /// Whether the scheduler loop still has something to do with it: queued, being planned (or
    /// interrupted), or failed with a retry to come.
    pub fn is_pending(&self) -> bool {
        match self.status {
            OccurrenceStatus::Queued | OccurrenceStatus::Planning => true,
            OccurrenceStatus::Failed => self.next_retry.is_some(),
            OccurrenceStatus::Done => false,
        }
    }
}

// The one place the plugin interface's task data becomes the daemon's (the host has checked it:

// gender is `female` or `male`, distance finite and positive).

impl From<&pm::Names> for Names {
    fn from(n: &pm::Names) -> Self {
        Names {
            zh: n.zh.clone(),
            en: n.en.clone(),
        }
    }
}

impl From<pm::Priority> for Priority {
    fn from(p: pm::Priority) -> Self {
        match p {
            pm::Priority::Low => Priority::Low,
            pm::Priority::Normal => Priority::Normal,
            pm::Priority::High => Priority::High,
            pm::Priority::Urgent => Priority::Urgent,
        }
    }
}

impl From<&pm::Requirements> for Requirements {
    fn from(r: &pm::Requirements) -> Self {
        Requirements {
            skills: r.skills.clone(),
            clearances: r.clearances.clone(),
            team_size: r.team_size,
            gender: match r.gender.as_deref() {
                Some("female") => Some(Gender::Female),
                Some("male") => Some(Gender::Male),
                _ => None,
            },
            max_distance_km: r.max_distance_km,
            languages: r.languages.clone(),
            roles: r.roles.clone(),
        }
    }
}

impl From<&pm::ChecklistItem> for ChecklistItem {
    fn from(c: &pm::ChecklistItem) -> Self {
        ChecklistItem {
            id: c.id.clone(),
            question: (&c.question).into(),
            kind: match c.kind {
                pm::AnswerKind::YesNo => AnswerKind::YesNo,
                pm::AnswerKind::Text => AnswerKind::Text,
                pm::AnswerKind::Number => AnswerKind::Number,
                pm::AnswerKind::Choice => AnswerKind::Choice,
            },
            choices: c.choices.clone(),
            choice_labels: c.choice_labels.iter().map(Into::into).collect(),
            required: c.required,
            required_when: c.required_when.as_ref().map(|w| crate::task::Condition {
                item: w.item.clone(),
                equals: w.equals.clone(),
            }),
        }
    }
}

impl From<&ChecklistItem> for pm::ChecklistItem {
    fn from(c: &ChecklistItem) -> Self {
        pm::ChecklistItem {
            id: c.id.clone(),
            question: pm::Names {
                zh: c.question.zh.clone(),
                en: c.question.en.clone(),
            },
            kind: match c.kind {
                AnswerKind::YesNo => pm::AnswerKind::YesNo,
                AnswerKind::Text => pm::AnswerKind::Text,
                AnswerKind::Number => pm::AnswerKind::Number,
                AnswerKind::Choice => pm::AnswerKind::Choice,
            },
            choices: c.choices.clone(),
            choice_labels: c
                .choice_labels
                .iter()
                .map(|n| pm::Names {
                    zh: n.zh.clone(),
                    en: n.en.clone(),
                })
                .collect(),
            required: c.required,
            required_when: c.required_when.as_ref().map(|w| pm::Condition {
                item: w.item.clone(),
                equals: w.equals.clone(),
            }),
        }
    }
}

/// What kind of thing happened. Stored and sent as the dotted name (`task.offered`); the set
/// is closed, so a receiver can rely on it (new kinds come with a new payload version).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum EventKind {
    /// An occurrence's new tasks: one digest (counts by kind and community, ids).
    #[serde(rename = "occurrence.tasks")]
    OccurrenceTasks,
    /// A duty's occurrence failed (first time, and when retrying stops).
    #[serde(rename = "occurrence.failed")]
    OccurrenceFailed,
    /// A one-off task a station recorded (接诉即办).
    #[serde(rename = "task.created")]
    TaskCreated,
    #[serde(rename = "task.offered")]
    TaskOffered,
    #[serde(rename = "task.accepted")]
    TaskAccepted,
    #[serde(rename = "task.declined")]
    TaskDeclined,
    /// An offer's response deadline passed.
    #[serde(rename = "task.expired")]
    TaskExpired,
    /// Nobody could be matched; the reasons say why.
    #[serde(rename = "task.unstaffed")]
    TaskUnstaffed,
    /// The due window ended with the task not done.
    #[serde(rename = "task.overdue")]
    TaskOverdue,
    #[serde(rename = "task.checked_in")]
    TaskCheckedIn,
    #[serde(rename = "task.checked_out")]
    TaskCheckedOut,
    #[serde(rename = "task.cancelled")]
    TaskCancelled,
    /// A visit report was accepted: the task is done.
    #[serde(rename = "report.accepted")]
    ReportAccepted,
    /// The plugin rejected a visit report; its reasons say what the visitor must fix.
    #[serde(rename = "report.rejected")]
    ReportRejected,
    /// A visit (or a dissatisfied rating) needs a follow-up: a new task was made for it.
    /// Urgent ones go out first.
    #[serde(rename = "review.follow_up")]
    ReviewFollowUp,
    /// A message sent from the API to try an endpoint (never stored as an event).
    #[serde(rename = "endpoint.test")]
    EndpointTest,
}

impl EventKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EventKind; 16] = [
        EventKind::OccurrenceTasks,
        EventKind::OccurrenceFailed,
        EventKind::TaskCreated,
        EventKind::TaskOffered,
        EventKind::TaskAccepted,
        EventKind::TaskDeclined,
        EventKind::TaskExpired,
        EventKind::TaskUnstaffed,
        EventKind::TaskOverdue,
        EventKind::TaskCheckedIn,
        EventKind::TaskCheckedOut,
        EventKind::TaskCancelled,
        EventKind::ReportAccepted,
        EventKind::ReportRejected,
        EventKind::ReviewFollowUp,
        EventKind::EndpointTest,
    ];

    /// The dotted name (`task.offered`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OccurrenceTasks => "occurrence.tasks",
            EventKind::OccurrenceFailed => "occurrence.failed",
            EventKind::TaskCreated => "task.created",
            EventKind::TaskOffered => "task.offered",
            EventKind::TaskAccepted => "task.accepted",
            EventKind::TaskDeclined => "task.declined",
            EventKind::TaskExpired => "task.expired",
            EventKind::TaskUnstaffed => "task.unstaffed",
            EventKind::TaskOverdue => "task.overdue",
            EventKind::TaskCheckedIn => "task.checked_in",
            EventKind::TaskCheckedOut => "task.checked_out",
            EventKind::TaskCancelled => "task.cancelled",
            EventKind::ReportAccepted => "report.accepted",
            EventKind::ReportRejected => "report.rejected",
            EventKind::ReviewFollowUp => "review.follow_up",
            EventKind::EndpointTest => "endpoint.test",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened, for notifications to pick up (the outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub seq: u64,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty: Option<u64>,
    /// The community concerned, so the right station is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// The region the event belongs to: a task's community, a duty's selected region. Callers
    /// see only events of their own regions (an event with no region, from before regions were
    /// recorded, only administrators see).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub detail: String,
    /// What the kind carries beyond the task: the volunteers offered, the reasons a task went
    /// unstaffed, an occurrence's new tasks by community. Its shape per kind is in the
    /// notification payload schema (`NotificationData`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<EventData>,
}

/// Per kind, what an event carries beyond its task (never a resident ID or a phone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventData {
    /// Volunteers an offer went to, and until when they may answer.
    Offered {
        volunteers: Vec<u64>,
        deadline: DateTime<Utc>,
    },
    /// The volunteer who accepted, declined, let the offer expire, or checked in or out.
    Volunteer {
        volunteer: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Why nobody could be matched, with how many volunteers each reason ruled out.
    Unstaffed {
        reasons: Vec<crate::task::ReasonCount>,
    },
    /// What the review of a visit report decided (and the follow-up task it made).
    Review {
        report: u64,
        /// `routine` or `urgent` for a follow-up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<crate::task::Severity>,
        /// The follow-up's reason, or what a rejected report must fix.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reasons: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up_task: Option<u64>,
    },
    /// An occurrence's new tasks by community.
    Tasks {
        scheduled_at: DateTime<Utc>,
        communities: Vec<CommunityTasks>,
    },
}

/// One community's share of an occurrence's new tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommunityTasks {
    pub community: String,
    /// Tasks per kind (`monthly_visit`: 12).
    pub kinds: BTreeMap<String, u64>,
    pub tasks: Vec<u64>,
}
