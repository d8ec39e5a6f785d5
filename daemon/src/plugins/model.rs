//! The plugin interface's data as the daemon stores and serves it (serde, OpenAPI), with
//! conversions to and from the generated WIT types. Keeping these apart from the bindings means
//! the API does not change shape when the WIT does.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::host::{v01, wit};

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
    /// The JSON Schema of the plugin's configuration (interface 0.2 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<serde_json::Value>,
    /// The interface version the plugin was built for, e.g. `0.2.0`.
    #[serde(default = "v010")]
    pub interface: String,
}

fn v010() -> String {
    "0.1.0".to_owned()
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
    /// What people read for each choice, in order (empty: the ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choice_labels: Vec<Names>,
    pub required: bool,
    /// Required only when another answer is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_when: Option<Condition>,
}

/// "Required when the answer to `item` is `equals`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ChecklistCondition)]
pub struct Condition {
    pub item: String,
    pub equals: String,
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

/// The conversions every interface version shares (their types have the same shape), for the
/// bindings module `$w`.
macro_rules! shared_conversions {
    ($m:ident, $($w:tt)+) => {
        mod $m {
            use super::*;
            use $($w)+ as w;

            impl From<w::Names> for Names {
                fn from(n: w::Names) -> Self {
                    Names { zh: n.zh, en: n.en }
                }
            }

            impl From<Names> for w::Names {
                fn from(n: Names) -> Self {
                    w::Names { zh: n.zh, en: n.en }
                }
            }

            pub(super) fn action(a: w::Action) -> ActionInfo {
                ActionInfo {
                    id: a.id,
                    names: a.names.into(),
                    default_cron: a.default_cron,
                    target_kind: match a.target_kind {
                        w::TargetKind::Person => TargetKind::Person,
                        w::TargetKind::Community => TargetKind::Community,
                    },
                    categories: a.categories,
                }
            }

            impl From<&Occurrence> for w::Occurrence {
                fn from(o: &Occurrence) -> Self {
                    w::Occurrence {
                        duty: o.duty.clone(),
                        action: o.action.clone(),
                        scheduled_at: o.scheduled_at.clone(),
                        time_zone: o.time_zone.clone(),
                    }
                }
            }

            impl From<&Target> for w::Target {
                fn from(t: &Target) -> Self {
                    match t {
                        Target::Person(p) => w::Target::Person(w::Person {
                            id: p.id,
                            community: p.community.clone(),
                            age: p.age,
                            gender: p.gender.clone(),
                            categories: p.categories.clone(),
                            circumstances: p.circumstances.clone(),
                            disability: p.disability.as_ref().map(|d| w::Disability {
                                kind: d.kind.clone(),
                                grade: d.grade,
                            }),
                            living: p.living.clone(),
                            has_guardian: p.has_guardian,
                            needs: p.needs.clone(),
                        }),
                        Target::Community(c) => w::Target::Community(w::Community {
                            code: c.code.clone(),
                            name: c.name.clone(),
                            settlement: c.settlement.clone(),
                            population: c.population,
                        }),
                    }
                }
            }

            pub(super) fn kind_to_wit(k: AnswerKind) -> w::AnswerKind {
                match k {
                    AnswerKind::YesNo => w::AnswerKind::YesNo,
                    AnswerKind::Text => w::AnswerKind::Text,
                    AnswerKind::Number => w::AnswerKind::Number,
                    AnswerKind::Choice => w::AnswerKind::Choice,
                }
            }

            pub(super) fn kind_from_wit(k: w::AnswerKind) -> AnswerKind {
                match k {
                    w::AnswerKind::YesNo => AnswerKind::YesNo,
                    w::AnswerKind::Text => AnswerKind::Text,
                    w::AnswerKind::Number => AnswerKind::Number,
                    w::AnswerKind::Choice => AnswerKind::Choice,
                }
            }

            impl From<w::TaskDraft> for TaskDraft {
                fn from(d: w::TaskDraft) -> Self {
                    let r = d.requirements;
                    TaskDraft {
                        target: d.target,
                        kind: d.kind,
                        title: d.title.into(),
                        due_start: d.due_start,
                        due_end: d.due_end,
                        priority: match d.priority {
                            w::Priority::Low => Priority::Low,
                            w::Priority::Normal => Priority::Normal,
                            w::Priority::High => Priority::High,
                            w::Priority::Urgent => Priority::Urgent,
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

            impl From<&TaskInfo> for w::Task {
                fn from(t: &TaskInfo) -> Self {
                    w::Task {
                        id: t.id,
                        kind: t.kind.clone(),
                        target: (&t.target).into(),
                        due_start: t.due_start.clone(),
                        due_end: t.due_end.clone(),
                        checklist: t.checklist.iter().map(Into::into).collect(),
                    }
                }
            }

            impl From<&VisitReport> for w::VisitReport {
                fn from(r: &VisitReport) -> Self {
                    w::VisitReport {
                        visited_at: r.visited_at.clone(),
                        duration_minutes: r.duration_minutes,
                        reached: r.reached,
                        answers: r
                            .answers
                            .iter()
                            .map(|a| w::Answer {
                                item: a.item.clone(),
                                value: a.value.clone(),
                            })
                            .collect(),
                        notes: r.notes.clone(),
                    }
                }
            }

            impl From<w::ReviewOutcome> for ReviewOutcome {
                fn from(o: w::ReviewOutcome) -> Self {
                    match o {
                        w::ReviewOutcome::Accepted => ReviewOutcome::Accepted,
                        w::ReviewOutcome::FollowUp(f) => ReviewOutcome::FollowUp {
                            severity: match f.severity {
                                w::Severity::Routine => Severity::Routine,
                                w::Severity::Urgent => Severity::Urgent,
                            },
                            reason: f.reason,
                        },
                        w::ReviewOutcome::Rejected(reasons) => ReviewOutcome::Rejected { reasons },
                    }
                }
            }
        }
    };
}

shared_conversions!(v02, super::wit);
shared_conversions!(v01c, super::v01::wit);

impl From<wit::PluginInfo> for Description {
    fn from(p: wit::PluginInfo) -> Self {
        Description {
            id: p.id,
            version: p.version,
            names: p.names.into(),
            actions: p.actions.into_iter().map(v02::action).collect(),
            // Text that is too long or not JSON is kept as a short JSON string, which the checks
            // refuse by name; a long text is never parsed (it could be millions of values).
            config_schema: p.config_schema.map(|text| {
                if text.len() > super::checks::MAX_CONFIG_SCHEMA {
                    serde_json::Value::String(format!("{} bytes", text.len()))
                } else {
                    serde_json::from_str(&text)
                        .unwrap_or_else(|e| serde_json::Value::String(format!("not JSON: {e}")))
                }
            }),
            interface: "0.2.0".into(),
        }
    }
}

impl From<v01::wit::PluginInfo> for Description {
    fn from(p: v01::wit::PluginInfo) -> Self {
        Description {
            id: p.id,
            version: p.version,
            names: p.names.into(),
            actions: p.actions.into_iter().map(v01c::action).collect(),
            config_schema: None,
            interface: "0.1.0".into(),
        }
    }
}

impl From<wit::ChecklistItem> for ChecklistItem {
    fn from(c: wit::ChecklistItem) -> Self {
        ChecklistItem {
            id: c.id,
            question: c.question.into(),
            kind: v02::kind_from_wit(c.kind),
            choices: c.choices,
            choice_labels: c.choice_labels.into_iter().map(Into::into).collect(),
            required: c.required,
            required_when: c.required_when.map(|w| Condition {
                item: w.item,
                equals: w.equals,
            }),
        }
    }
}

impl From<&ChecklistItem> for wit::ChecklistItem {
    fn from(c: &ChecklistItem) -> Self {
        wit::ChecklistItem {
            id: c.id.clone(),
            question: c.question.clone().into(),
            kind: v02::kind_to_wit(c.kind),
            choices: c.choices.clone(),
            choice_labels: c.choice_labels.iter().cloned().map(Into::into).collect(),
            required: c.required,
            required_when: c.required_when.as_ref().map(|w| wit::Condition {
                item: w.item.clone(),
                equals: w.equals.clone(),
            }),
        }
    }
}

impl From<v01::wit::ChecklistItem> for ChecklistItem {
    fn from(c: v01::wit::ChecklistItem) -> Self {
        ChecklistItem {
            id: c.id,
            question: c.question.into(),
            kind: v01c::kind_from_wit(c.kind),
            choices: c.choices,
            choice_labels: Vec::new(),
            required: c.required,
            required_when: None,
        }
    }
}

/// A 0.1 plugin reviewing a task sees its questions as 0.1 knew them: labels and conditions
/// are left out (its own checklists never had them).
impl From<&ChecklistItem> for v01::wit::ChecklistItem {
    fn from(c: &ChecklistItem) -> Self {
        v01::wit::ChecklistItem {
            id: c.id.clone(),
            question: c.question.clone().into(),
            kind: v01c::kind_to_wit(c.kind),
            choices: c.choices.clone(),
            required: c.required,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(schema: Option<String>) -> wit::PluginInfo {
        wit::PluginInfo {
            id: "p".into(),
            version: "1.0.0".into(),
            names: wit::Names {
                zh: "p".into(),
                en: "p".into(),
            },
            actions: Vec::new(),
            config_schema: schema,
        }
    }

    #[test]
    fn a_schema_too_long_or_not_json_is_refused_by_name_and_never_parsed_whole() {
        // Millions of values would be gigabytes once parsed: the text's length decides first.
        let huge = format!(
            "[{}0]",
            "0,".repeat(super::super::checks::MAX_CONFIG_SCHEMA)
        );
        let d = Description::from(info(Some(huge)));
        let e = super::super::checks::description(&d).unwrap_err();
        assert!(e.contains("at most 65536 bytes"), "{e}");
        let d = Description::from(info(Some("{not json".into())));
        let e = super::super::checks::description(&d).unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let d = Description::from(info(Some(r#"{"type": "object"}"#.into())));
        assert!(
            d.config_schema
                .as_ref()
                .is_some_and(serde_json::Value::is_object)
        );
        assert_eq!(d.interface, "0.2.0");
    }
}
