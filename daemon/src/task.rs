//! Tasks as plain data: what a task is, who it is offered to and what became of it, what its
//! visitors must bring, and why one could not be staffed. No I/O: `schedule` creates and stores
//! tasks, `matching` reads their requirements, `api` shows them.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::registry::Gender;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not offered to anyone yet (or offered, declined and waiting to be matched again).
    /// (`overdue` in files written before overdue became a flag.)
    #[serde(alias = "overdue")]
    Open,
    /// Offered to the volunteers who should take it; waiting for their answers.
    Offered,
    /// The whole team accepted.
    Accepted,
    /// A visitor checked in.
    CheckedIn,
    /// Every visitor checked out; an accepted visit report will close it.
    Visited,
    /// A visit report was accepted.
    Done,
    /// Matching found nobody; `unstaffed` says why.
    Unstaffed,
    Cancelled,
}

impl TaskStatus {
    /// Still work to do: counts towards capacity, can become overdue.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskStatus::Open
                | TaskStatus::Offered
                | TaskStatus::Accepted
                | TaskStatus::CheckedIn
                | TaskStatus::Visited
                | TaskStatus::Unstaffed
        )
    }

    /// The status as its index key.
    pub fn key(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Offered => "offered",
            TaskStatus::Accepted => "accepted",
            TaskStatus::CheckedIn => "checked_in",
            TaskStatus::Visited => "visited",
            TaskStatus::Done => "done",
            TaskStatus::Unstaffed => "unstaffed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// Where one volunteer stands with a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferState {
    Offered,
    Accepted,
    Declined,
    /// Not answered by `respond_by`.
    Expired,
    /// Taken back (the task was cancelled).
    Withdrawn,
    CheckedIn,
    CheckedOut,
}

impl OfferState {
    /// The volunteer holds the task (it counts towards their capacity).
    pub fn holds(self) -> bool {
        matches!(
            self,
            OfferState::Offered | OfferState::Accepted | OfferState::CheckedIn
        )
    }

    /// The offer fills one of the team's seats: held, or the visit is made.
    pub fn fills_seat(self) -> bool {
        self.holds() || self == OfferState::CheckedOut
    }
}

/// A task offered to one volunteer, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Offer {
    pub volunteer: u64,
    pub state: OfferState,
    pub offered_at: DateTime<Utc>,
    /// Answer by then, or the offer expires and the task is matched again.
    pub respond_by: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<DateTime<Utc>>,
    /// Why the volunteer declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_position: Option<crate::registry::GeoPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_out_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_out_position: Option<crate::registry::GeoPoint>,
}

/// One change of a task's status: when, to what, and who acted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskChange {
    pub at: DateTime<Utc>,
    pub status: TaskStatus,
    /// `matching`, `scheduler`, `volunteer:<id>`, `station:<id>`, `bureau:<code>`, `admin`.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a task is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskTarget {
    Person { id: u64 },
    Community { code: String },
}

/// A text in Chinese (what users read) and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = TaskTitle)]
pub struct Names {
    pub zh: String,
    pub en: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(as = TaskPriority)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// What the people who take a task must bring: the daemon's own type, so a change of the plugin
/// interface is a visible migration (`From<&pm::Requirements>`), never a silent change of what
/// is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = TaskRequirements)]
pub struct Requirements {
    /// Skill tags every visitor must hold, e.g. `first_aid` (matching asks it of each member).
    #[serde(default)]
    pub skills: Vec<String>,
    /// Clearances every visitor must hold unexpired, e.g. `safeguarding`.
    #[serde(default)]
    pub clearances: Vec<String>,
    /// People in the team (1 to 20; 1 when not given).
    #[serde(default = "one")]
    pub team_size: u8,
    /// Required gender of the visitors, if any.
    #[serde(default)]
    pub gender: Option<Gender>,
    /// Farthest a visitor may live from the target, in kilometres.
    #[serde(default)]
    pub max_distance_km: Option<f32>,
    /// Languages or dialects: every visitor must speak one of them.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Community roles every visitor must hold.
    #[serde(default)]
    pub roles: Vec<String>,
}

fn one() -> u8 {
    1
}

/// How a checklist question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ChecklistAnswerKind)]
pub enum AnswerKind {
    YesNo,
    Text,
    Number,
    Choice,
}

/// One question of a task's checklist, as stored: the daemon's own type (converted from the
/// plugin interface's in one place, like [`Requirements`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ChecklistQuestion)]
pub struct ChecklistItem {
    /// Stable id the visit report answers by.
    pub id: String,
    pub question: Names,
    pub kind: AnswerKind,
    /// The allowed answers of a `choice` question.
    #[serde(default)]
    pub choices: Vec<String>,
    /// What people read for each choice, in order (empty: the choices themselves). A report
    /// may answer with a choice or either of its labels; the choice is stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choice_labels: Vec<Names>,
    pub required: bool,
    /// Required only when another answer is given (e.g. `fell_recently` = `yes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_when: Option<Condition>,
}

/// "Required when the answer to `item` is `equals`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ChecklistRequiredWhen)]
pub struct Condition {
    pub item: String,
    pub equals: String,
}

/// How soon a follow-up is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Within the week (five working days).
    Routine,
    /// The same day.
    Urgent,
}

/// A task created by an occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: u64,
    pub duty: u64,
    pub scheduled_at: DateTime<Utc>,
    /// The idempotency key within the occurrence: target and kind.
    pub key: String,
    pub target: TaskTarget,
    /// The community of the target (for scopes and stations).
    pub community: String,
    pub plugin: String,
    pub action: String,
    pub kind: String,
    pub title: Names,
    pub due_start: DateTime<FixedOffset>,
    pub due_end: DateTime<FixedOffset>,
    pub priority: Priority,
    pub requirements: Requirements,
    /// Id of the checklist the visit report must answer (`GET /v1/tasks/{id}` shows it).
    pub checklist: u64,
    pub status: TaskStatus,
    /// Past its due end and not done (a flag on top of the status).
    #[serde(default)]
    pub overdue: bool,
    /// The station responsible (the one serving the community), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<u64>,
    /// Offers made, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<Offer>,
    /// Why matching left it unstaffed (the latest attempt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unstaffed: Vec<ReasonCount>,
    /// Status changes, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TaskChange>,
    /// The visit report in force (the accepted one, or its accepted correction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<u64>,
    /// The task whose visit (or rating) this one follows up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows_up: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a volunteer cannot take a task, or why a task was not staffed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// Nobody of the task's or a neighbouring station.
    NoVolunteers,
    OtherStation,
    MissingSkill {
        skill: String,
    },
    ExpiredCertificate {
        skill: String,
    },
    MissingClearance {
        clearance: String,
    },
    NotAvailable,
    TooFar {
        max_km: u32,
    },
    WrongGender,
    NoLanguage,
    MissingRole {
        role: String,
    },
    AtCapacity,
    /// Eligible volunteers exist, but all of them went to tasks that ranked higher or were
    /// nearer.
    TakenByOtherTasks,
    /// Fewer eligible people than the team needs.
    TeamIncomplete {
        needed: u8,
        found: u32,
    },
}

impl Reason {
    /// The reason in a sentence, for people.
    pub fn describe_en(&self) -> String {
        match self {
            Reason::NoVolunteers => {
                "no active volunteer at the task's station or its neighbours".into()
            }
            Reason::OtherStation => "belongs to a station that may not serve this task".into(),
            Reason::MissingSkill { skill } => format!("lacks the skill {skill}"),
            Reason::ExpiredCertificate { skill } => {
                format!("the certificate for {skill} has expired by the due date")
            }
            Reason::MissingClearance { clearance } => {
                format!("has no {clearance} valid through the due date")
            }
            Reason::NotAvailable => "is not available in the due window".into(),
            Reason::TooFar { max_km } => format!("lives more than {max_km} km away"),
            Reason::WrongGender => "is not of the gender the task requires".into(),
            Reason::NoLanguage => "speaks none of the languages the task requires".into(),
            Reason::MissingRole { role } => format!("does not hold the role {role}"),
            Reason::AtCapacity => "is at their monthly capacity".into(),
            Reason::TakenByOtherTasks => {
                "eligible volunteers all went to tasks ranked higher or nearer".into()
            }
            Reason::TeamIncomplete { needed, found } => {
                format!("needs a team of {needed}, found {found}")
            }
        }
    }

    /// The reason in a sentence, in Chinese.
    pub fn describe_zh(&self) -> String {
        let name = |slug: &str| match crate::registry::vocabulary::zh(slug) {
            Some(zh) => zh.to_owned(),
            None => slug.to_owned(),
        };
        match self {
            Reason::NoVolunteers => "本站及邻站没有在岗志愿者".into(),
            Reason::OtherStation => "不属于可服务本任务的社工站".into(),
            Reason::MissingSkill { skill } => format!("缺少技能「{}」", name(skill)),
            Reason::ExpiredCertificate { skill } => {
                format!("「{}」证书在截止日前过期", name(skill))
            }
            Reason::MissingClearance { clearance } => format!(
                "没有截止日前有效的「{}」",
                match clearance.as_str() {
                    "safeguarding" => "儿童保护背景审查".to_owned(),
                    "insurance" => "意外保险".to_owned(),
                    other => name(other),
                }
            ),
            Reason::NotAvailable => "服务时段内没有空".into(),
            Reason::TooFar { max_km } => format!("住处超出 {max_km} 公里"),
            Reason::WrongGender => "性别不符合任务要求".into(),
            Reason::NoLanguage => "不会任务要求的语言或方言".into(),
            Reason::MissingRole { role } => format!("不担任「{}」", name(role)),
            Reason::AtCapacity => "本月服务量已满".into(),
            Reason::TakenByOtherTasks => "合格志愿者都已安排给更优先或更近的任务".into(),
            Reason::TeamIncomplete { needed, found } => {
                format!("需要 {needed} 人组队，只找到 {found} 人")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReasonCount {
    #[serde(flatten)]
    pub reason: Reason,
    /// Volunteers of the task's stations this reason ruled out (0 for task-level reasons).
    pub volunteers: u32,
}
