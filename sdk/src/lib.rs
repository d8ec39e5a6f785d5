//! # linli-sdk — write linli action plugins in Rust
//!
//! A plugin is a WebAssembly component (target `wasm32-wasip2`) that implements the
//! `linli:plugin/action` interface of `sdk/wit/plugin.wit`: `describe` what it offers, `plan`
//! the tasks of a duty's occurrence, `review` a visit report. This crate gives you:
//!
//! - the interface's types ([`Target`], [`TaskDraft`], [`ReviewOutcome`], …) as plain Rust;
//! - [`Plugin`], the trait to implement, and [`export_plugin!`] to export it;
//! - [`config`] and [`log`], the only things the host offers a plugin;
//! - [`time`] helpers for the RFC 3339 instants the interface uses;
//! - [`testing`], to unit-test `plan` and `review` natively with `cargo test`.
//!
//! ```text
//! use linli_sdk::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe() -> PluginInfo { /* ... */ }
//!     fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> { /* ... */ }
//!     fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> { /* ... */ }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! See `sdk/README.md` for the walk from nothing to a deployed plugin.

/// Bindings generated from `sdk/wit/` by wit-bindgen. Use the re-exports at the crate root.
#[allow(unsafe_code, clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "action-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_action_plugin",
        default_bindings_module: "linli_sdk::bindings",
        generate_all,
        additional_derives: [PartialEq],
    });
}

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
pub mod vocab;

pub use bindings::exports::linli::plugin::action::Guest as Plugin;
pub use bindings::linli::plugin::types::{
    Action, Answer, AnswerKind, ChecklistItem, Community, Condition, Disability, FollowUp, Names,
    Occurrence, Person, PlanResult as Plan, PluginInfo, Priority, Requirements, ReviewOutcome,
    Severity, Target, TargetKind, Task, TaskDraft, VisitReport,
};

/// The interface version this SDK builds plugins for.
pub const INTERFACE_VERSION: &str = "0.2.0";

/// Exports a type implementing [`Plugin`] as the plugin's `linli:plugin/action` interface.
/// The export exists only in the WebAssembly build; native builds (your unit tests) call the
/// type through [`testing::Harness`] instead.
#[macro_export]
macro_rules! export_plugin {
    ($t:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_action_plugin!($t with_types_in $crate::bindings);
    };
}

impl Names {
    /// A text in Chinese and English.
    pub fn new(zh: &str, en: &str) -> Names {
        Names {
            zh: zh.to_owned(),
            en: en.to_owned(),
        }
    }
}

impl ReviewOutcome {
    /// Follow-up the station must act on the same day.
    pub fn urgent(reason: impl Into<String>) -> ReviewOutcome {
        ReviewOutcome::FollowUp(FollowUp {
            severity: Severity::Urgent,
            reason: reason.into(),
        })
    }

    /// Follow-up within the week.
    pub fn routine(reason: impl Into<String>) -> ReviewOutcome {
        ReviewOutcome::FollowUp(FollowUp {
            severity: Severity::Routine,
            reason: reason.into(),
        })
    }

    /// Accepted when there are no `reasons`; otherwise a follow-up of `severity` giving them
    /// all, joined by "; ".
    pub fn unless<S: AsRef<str>>(severity: Severity, reasons: &[S]) -> ReviewOutcome {
        if reasons.is_empty() {
            return ReviewOutcome::Accepted;
        }
        let reason = reasons
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join("; ");
        ReviewOutcome::FollowUp(FollowUp { severity, reason })
    }
}

impl Plan {
    /// A plan whose drafts all use one checklist (index 0).
    pub fn with_checklist(checklist: Vec<ChecklistItem>, drafts: Vec<TaskDraft>) -> Plan {
        Plan {
            checklists: vec![checklist],
            drafts,
        }
    }

    /// The checklist of a draft.
    pub fn checklist_of(&self, draft: &TaskDraft) -> &[ChecklistItem] {
        self.checklists
            .get(draft.checklist as usize)
            .map_or(&[], Vec::as_slice)
    }
}

impl Default for Requirements {
    /// One visitor, nothing else required.
    fn default() -> Self {
        Requirements {
            skills: Vec::new(),
            clearances: Vec::new(),
            team_size: 1,
            gender: None,
            max_distance_km: None,
            languages: Vec::new(),
            roles: Vec::new(),
        }
    }
}

impl ChecklistItem {
    /// A required yes/no question.
    pub fn yes_no(id: &str, zh: &str, en: &str) -> ChecklistItem {
        ChecklistItem {
            id: id.to_owned(),
            question: Names::new(zh, en),
            kind: AnswerKind::YesNo,
            choices: Vec::new(),
            choice_labels: Vec::new(),
            required: true,
            required_when: None,
        }
    }

    /// A required free-text question.
    pub fn text(id: &str, zh: &str, en: &str) -> ChecklistItem {
        ChecklistItem {
            kind: AnswerKind::Text,
            ..ChecklistItem::yes_no(id, zh, en)
        }
    }

    /// A required number.
    pub fn number(id: &str, zh: &str, en: &str) -> ChecklistItem {
        ChecklistItem {
            kind: AnswerKind::Number,
            ..ChecklistItem::yes_no(id, zh, en)
        }
    }

    /// A required choice among `choices`.
    pub fn choice(id: &str, zh: &str, en: &str, choices: &[&str]) -> ChecklistItem {
        ChecklistItem {
            kind: AnswerKind::Choice,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            ..ChecklistItem::yes_no(id, zh, en)
        }
    }

    /// A required choice with what people read for each choice: `(id, 中文, English)`. A
    /// report may answer with the id or either label; the host stores the id.
    pub fn labelled_choice(
        id: &str,
        zh: &str,
        en: &str,
        choices: &[(&str, &str, &str)],
    ) -> ChecklistItem {
        ChecklistItem {
            kind: AnswerKind::Choice,
            choices: choices.iter().map(|c| c.0.to_owned()).collect(),
            choice_labels: choices.iter().map(|c| Names::new(c.1, c.2)).collect(),
            ..ChecklistItem::yes_no(id, zh, en)
        }
    }

    /// The same question, optional.
    pub fn optional(self) -> ChecklistItem {
        ChecklistItem {
            required: false,
            ..self
        }
    }

    /// The same question, required only when the answer to the earlier question `item` is
    /// `equals` (`yes`/`no`, or one of its choices): "which injuries?" only after "fell? yes".
    pub fn required_when(self, item: &str, equals: &str) -> ChecklistItem {
        ChecklistItem {
            required: false,
            required_when: Some(Condition {
                item: item.to_owned(),
                equals: equals.to_owned(),
            }),
            ..self
        }
    }
}

impl VisitReport {
    /// The answer given to checklist item `id`, if any.
    pub fn answer(&self, id: &str) -> Option<&str> {
        self.answers
            .iter()
            .find(|a| a.item == id)
            .map(|a| a.value.as_str())
    }

    /// Whether item `id` was answered yes (`yes`, `true`, `是`, `1`).
    pub fn yes(&self, id: &str) -> bool {
        matches!(self.answer(id), Some("yes" | "true" | "是" | "1" | "y"))
    }

    /// The answer to item `id` as a number, if it is one.
    pub fn number(&self, id: &str) -> Option<f64> {
        self.answer(id).and_then(|a| a.trim().parse().ok())
    }

    /// Whether item `id` was answered no (`no`, `false`, `否`, `0`).
    pub fn no(&self, id: &str) -> bool {
        matches!(self.answer(id), Some("no" | "false" | "否" | "0" | "n"))
    }

    /// What is wrong with the report against the checklist: required items left unanswered,
    /// yes/no items answered otherwise, numbers that are not numbers, choices not offered.
    /// Empty when the report is complete.
    pub fn problems(&self, checklist: &[ChecklistItem]) -> Vec<String> {
        let mut out = Vec::new();
        for c in checklist {
            let answer = self.answer(&c.id).map(str::trim).filter(|a| !a.is_empty());
            let Some(a) = answer else {
                if self.must_answer(c) {
                    out.push(format!("{}: no answer ({})", c.id, c.question.zh));
                }
                continue;
            };
            let ok = match c.kind {
                AnswerKind::YesNo => self.yes(&c.id) || self.no(&c.id),
                AnswerKind::Number => a.parse::<f64>().is_ok_and(f64::is_finite),
                AnswerKind::Choice => c.choices.iter().any(|x| x == a),
                AnswerKind::Text => true,
            };
            if !ok {
                let expected = match c.kind {
                    AnswerKind::YesNo => "yes or no".to_owned(),
                    AnswerKind::Number => "a number".to_owned(),
                    AnswerKind::Choice => format!("one of {}", c.choices.join(", ")),
                    AnswerKind::Text => String::new(),
                };
                out.push(format!("{}: {a:?} is not {expected}", c.id));
            }
        }
        out
    }

    /// The ids of required checklist items left unanswered.
    pub fn missing(&self, checklist: &[ChecklistItem]) -> Vec<String> {
        checklist
            .iter()
            .filter(|c| {
                self.must_answer(c) && self.answer(&c.id).is_none_or(|a| a.trim().is_empty())
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// Whether question `c` had to be answered: the person was reached, and it is required or
    /// required when an earlier answer is what its condition names. (Nobody reached: nothing
    /// could be asked, and the host accepts the report without answers.)
    pub fn must_answer(&self, c: &ChecklistItem) -> bool {
        self.reached
            && (c.required
                || c.required_when.as_ref().is_some_and(|w| {
                    self.answer(&w.item).map(str::trim) == Some(w.equals.as_str())
                }))
    }
}

impl Person {
    pub fn has_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }

    pub fn has_circumstance(&self, circumstance: &str) -> bool {
        self.circumstances.iter().any(|c| c == circumstance)
    }

    pub fn needs(&self, need: &str) -> bool {
        self.needs.iter().any(|n| n == need)
    }
}

/// The plugin's configuration, from the host (or the test harness).
pub mod config {
    /// The configuration as JSON text; `{}` when none is set.
    pub fn json() -> String {
        #[cfg(target_arch = "wasm32")]
        {
            crate::bindings::linli::plugin::host::config()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::current_config()
        }
    }

    /// The configuration parsed into your type (use `#[serde(default)]` for defaults).
    pub fn get<T: serde::de::DeserializeOwned>() -> Result<T, String> {
        serde_json::from_str(&json()).map_err(|e| format!("plugin configuration: {e}"))
    }
}

/// Logging through the host (never log personal data).
pub mod log {
    use crate::bindings::linli::plugin::host::Level;

    fn emit(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        crate::bindings::linli::plugin::host::log(level, message);
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::record_log(level, message);
    }

    pub fn debug(message: &str) {
        emit(Level::Debug, message);
    }
    pub fn info(message: &str) {
        emit(Level::Info, message);
    }
    pub fn warn(message: &str) {
        emit(Level::Warn, message);
    }
    pub fn error(message: &str) {
        emit(Level::Error, message);
    }
}
