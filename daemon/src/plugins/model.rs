//! The plugin interface's data as the daemon stores and serves it (serde, OpenAPI), with
//! conversions to and from the generated WIT types. Keeping these apart from the bindings means
//! the API does not change shape when the WIT does.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::host::wit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Names {
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Person,
    Community,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionInfo {
    pub id: String,
    pub names: Names,
    pub default_cron: String,
    pub target_kind: TargetKind,
    pub categories: Vec<String>,
}

/// What a plugin says of itself (`describe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Description {
    pub id: String,
    pub version: String,
    pub names: Names,
    pub actions: Vec<ActionInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PluginOccurrence)]
pub struct Occurrence {
    pub duty: String,
    pub action: String,
    /// RFC 3339 with offset.
    pub scheduled_at: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisabilityInfo {
    pub kind: String,
    pub grade: u8,
}

/// What a plugin is told of a person: nothing that identifies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonTarget {
    pub id: u64,
    pub community: String,
    pub age: u32,
    pub gender: String,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub circumstances: Vec<String>,
    #[serde(default)]
    pub disability: Option<DisabilityInfo>,
    #[serde(default)]
    pub living: Option<String>,
    #[serde(default)]
    pub has_guardian: bool,
    #[serde(default)]
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunityTarget {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub settlement: Option<String>,
    #[serde(default)]
    pub population: Option<u32>,
}

/// A person or a community, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    Person(PersonTarget),
    Community(CommunityTarget),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Requirements {
    pub skills: Vec<String>,
    pub clearances: Vec<String>,
    pub team_size: u8,
    pub gender: Option<String>,
    pub max_distance_km: Option<f32>,
    pub languages: Vec<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    YesNo,
    Text,
    Number,
    Choice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChecklistItem {
    pub id: String,
    pub question: Names,
    pub kind: AnswerKind,
    #[serde(default)]
    pub choices: Vec<String>,
    pub required: bool,
}

/// A task a plugin asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskDraft {
    /// Index into the targets given to `plan`.
    pub target: u32,
    pub kind: String,
    pub title: Names,
    pub due_start: String,
    pub due_end: String,
    pub priority: Priority,
    pub requirements: Requirements,
    /// Index into the plan's `checklists`.
    pub checklist: u32,
}

/// What `plan` answered: checklists listed once, and drafts referring to them by index.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct PlanOutput {
    pub checklists: Vec<Vec<ChecklistItem>>,
    pub drafts: Vec<TaskDraft>,
}

impl PlanOutput {
    /// The checklist of a draft (empty if its index is out of range, which `Runtime::plan`
    /// refuses).
    pub fn checklist_of(&self, draft: &TaskDraft) -> &[ChecklistItem] {
        self.checklists
            .get(draft.checklist as usize)
            .map_or(&[], Vec::as_slice)
    }
}

/// A task as given to `review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInfo {
    pub id: u64,
    pub kind: String,
    pub target: Target,
    pub due_start: String,
    pub due_end: String,
    pub checklist: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub item: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitReport {
    pub visited_at: String,
    pub duration_minutes: u32,
    pub reached: bool,
    #[serde(default)]
    pub answers: Vec<Answer>,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Routine,
    Urgent,
}

/// What `review` decided, tagged by `outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReviewOutcome {
    Accepted,
    FollowUp { severity: Severity, reason: String },
    Rejected { reasons: Vec<String> },
}

// ------------------------------------------------------------------------------ conversions

impl PersonTarget {
    /// What a plugin may know of a registered person on `today`: no name, resident ID, phone,
    /// address or exact location.
    pub fn from_person(p: &crate::registry::Person, today: chrono::NaiveDate) -> Self {
        Self::from_facts(
            &crate::registry::PersonFacts {
                id: p.id,
                gender: p.gender,
                birth_date: p.birth_date,
                community: p.community.clone(),
                grid: p.grid.clone(),
                categories: p.categories.clone(),
                circumstances: p.circumstances.clone(),
                disability: p.disability,
                household: p.household,
                guardian: p.guardian.as_ref().map(|_| serde::de::IgnoredAny),
                needs: p.needs.clone(),
                active: p.active,
            },
            today,
        )
    }

    /// The same from a [`crate::registry::PersonFacts`] projection.
    pub fn from_facts(p: &crate::registry::PersonFacts, today: chrono::NaiveDate) -> Self {
        PersonTarget {
            id: p.id,
            community: p.community.clone(),
            age: u32::try_from(crate::registry::rules_age(p.birth_date, today)).unwrap_or(0),
            gender: match p.gender {
                crate::registry::Gender::Female => "female".into(),
                crate::registry::Gender::Male => "male".into(),
            },
            categories: p.categories.iter().map(|c| c.as_str().to_owned()).collect(),
            circumstances: p
                .circumstances
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            disability: p.disability.map(|d| DisabilityInfo {
                kind: d.kind.as_str().to_owned(),
                grade: d.grade,
            }),
            living: p.household.map(|h| {
                use crate::registry::LivingArrangement as L;
                match h.living {
                    L::Alone => "alone",
                    L::ElderlyCouple => "elderly_couple",
                    L::WithFamily => "with_family",
                    L::WithRelatives => "with_relatives",
                    L::Institution => "institution",
                }
                .to_owned()
            }),
            has_guardian: p.guardian.is_some(),
            needs: p.needs.clone(),
        }
    }
}

impl CommunityTarget {
    pub fn from_region(r: &crate::registry::Region) -> Self {
        CommunityTarget {
            code: r.code.clone(),
            name: r.name.clone(),
            settlement: r.settlement.map(|s| match s {
                crate::registry::Settlement::Urban => "urban".to_owned(),
                crate::registry::Settlement::Rural => "rural".to_owned(),
            }),
            population: r.population,
        }
    }
}

impl From<wit::Names> for Names {
    fn from(n: wit::Names) -> Self {
        Names { zh: n.zh, en: n.en }
    }
}

impl From<Names> for wit::Names {
    fn from(n: Names) -> Self {
        wit::Names { zh: n.zh, en: n.en }
    }
}

impl From<wit::PluginInfo> for Description {
    fn from(p: wit::PluginInfo) -> Self {
        Description {
            id: p.id,
            version: p.version,
            names: p.names.into(),
            actions: p
                .actions
                .into_iter()
                .map(|a| ActionInfo {
                    id: a.id,
                    names: a.names.into(),
                    default_cron: a.default_cron,
                    target_kind: match a.target_kind {
                        wit::TargetKind::Person => TargetKind::Person,
                        wit::TargetKind::Community => TargetKind::Community,
                    },
                    categories: a.categories,
                })
                .collect(),
        }
    }
}

impl From<&Occurrence> for wit::Occurrence {
    fn from(o: &Occurrence) -> Self {
        wit::Occurrence {
            duty: o.duty.clone(),
            action: o.action.clone(),
            scheduled_at: o.scheduled_at.clone(),
            time_zone: o.time_zone.clone(),
        }
    }
}

impl From<&Target> for wit::Target {
    fn from(t: &Target) -> Self {
        match t {
            Target::Person(p) => wit::Target::Person(wit::Person {
                id: p.id,
                community: p.community.clone(),
                age: p.age,
                gender: p.gender.clone(),
                categories: p.categories.clone(),
                circumstances: p.circumstances.clone(),
                disability: p.disability.as_ref().map(|d| wit::Disability {
                    kind: d.kind.clone(),
                    grade: d.grade,
                }),
                living: p.living.clone(),
                has_guardian: p.has_guardian,
                needs: p.needs.clone(),
            }),
            Target::Community(c) => wit::Target::Community(wit::Community {
                code: c.code.clone(),
                name: c.name.clone(),
                settlement: c.settlement.clone(),
                population: c.population,
            }),
        }
    }
}

fn answer_kind_to_wit(k: AnswerKind) -> wit::AnswerKind {
    match k {
        AnswerKind::YesNo => wit::AnswerKind::YesNo,
        AnswerKind::Text => wit::AnswerKind::Text,
        AnswerKind::Number => wit::AnswerKind::Number,
        AnswerKind::Choice => wit::AnswerKind::Choice,
    }
}

impl From<wit::ChecklistItem> for ChecklistItem {
    fn from(c: wit::ChecklistItem) -> Self {
        ChecklistItem {
            id: c.id,
            question: c.question.into(),
            kind: match c.kind {
                wit::AnswerKind::YesNo => AnswerKind::YesNo,
                wit::AnswerKind::Text => AnswerKind::Text,
                wit::AnswerKind::Number => AnswerKind::Number,
                wit::AnswerKind::Choice => AnswerKind::Choice,
            },
            choices: c.choices,
            required: c.required,
        }
    }
}

impl From<&ChecklistItem> for wit::ChecklistItem {
    fn from(c: &ChecklistItem) -> Self {
        wit::ChecklistItem {
            id: c.id.clone(),
            question: c.question.clone().into(),
            kind: answer_kind_to_wit(c.kind),
            choices: c.choices.clone(),
            required: c.required,
        }
    }
}

impl From<wit::TaskDraft> for TaskDraft {
    fn from(d: wit::TaskDraft) -> Self {
        let r = d.requirements;
        TaskDraft {
            target: d.target,
            kind: d.kind,
            title: d.title.into(),
            due_start: d.due_start,
            due_end: d.due_end,
            priority: match d.priority {
                wit::Priority::Low => Priority::Low,
                wit::Priority::Normal => Priority::Normal,
                wit::Priority::High => Priority::High,
                wit::Priority::Urgent => Priority::Urgent,
            },
            requirements: Requirements {
                skills: r.skills,
                clearances: r.clearances,
                team_size: r.team_size,
                gender: r.gender,
                max_distance_km: r.max_distance_km,
                languages: r.languages,
                roles: r.roles,
            },
            checklist: d.checklist,
        }
    }
}

impl From<&TaskInfo> for wit::Task {
    fn from(t: &TaskInfo) -> Self {
        wit::Task {
            id: t.id,
            kind: t.kind.clone(),
            target: (&t.target).into(),
            due_start: t.due_start.clone(),
            due_end: t.due_end.clone(),
            checklist: t.checklist.iter().map(Into::into).collect(),
        }
    }
}

impl From<&VisitReport> for wit::VisitReport {
    fn from(r: &VisitReport) -> Self {
        wit::VisitReport {
            visited_at: r.visited_at.clone(),
            duration_minutes: r.duration_minutes,
            reached: r.reached,
            answers: r
                .answers
                .iter()
                .map(|a| wit::Answer {
                    item: a.item.clone(),
                    value: a.value.clone(),
                })
                .collect(),
            notes: r.notes.clone(),
        }
    }
}

impl From<wit::ReviewOutcome> for ReviewOutcome {
    fn from(o: wit::ReviewOutcome) -> Self {
        match o {
            wit::ReviewOutcome::Accepted => ReviewOutcome::Accepted,
            wit::ReviewOutcome::FollowUp(f) => ReviewOutcome::FollowUp {
                severity: match f.severity {
                    wit::Severity::Routine => Severity::Routine,
                    wit::Severity::Urgent => Severity::Urgent,
                },
                reason: f.reason,
            },
            wit::ReviewOutcome::Rejected(reasons) => ReviewOutcome::Rejected { reasons },
        }
    }
}
