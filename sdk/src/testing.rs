//! Unit-test a plugin natively with `cargo test`: call `plan` and `review` through a
//! [`Harness`] that supplies the configuration and captures logs, with builders for targets,
//! occurrences and reports. (To run the built `.wasm` through the real host, use
//! `linlid plugin run`; see `sdk/README.md`.)

use std::cell::RefCell;

use crate::bindings::linli::plugin::host::Level;
use crate::*;

thread_local! {
    static NOW: RefCell<Option<chrono::DateTime<chrono::FixedOffset>>> = const { RefCell::new(None) };
    static CONFIG: RefCell<String> = RefCell::new("{}".to_owned());
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn current_config() -> String {
    CONFIG.with(|c| c.borrow().clone())
}

pub(crate) fn current_now() -> Option<chrono::DateTime<chrono::FixedOffset>> {
    NOW.with(|n| *n.borrow())
}

pub(crate) fn record_log(level: Level, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
}

/// Calls a plugin the way the host does, natively.
pub struct Harness {
    config: String,
    now: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A harness with an empty configuration (`{}`).
    pub fn new() -> Self {
        Harness {
            config: "{}".to_owned(),
            now: None,
        }
    }

    /// Fixes what `time::now()` returns during calls (RFC 3339); by default the real time.
    /// An unparsable instant leaves the real time in place.
    pub fn now(mut self, rfc3339: &str) -> Self {
        self.now = chrono::DateTime::parse_from_rfc3339(rfc3339).ok();
        self
    }

    /// Sets the plugin configuration (JSON text) the calls will see.
    pub fn config(mut self, json: &str) -> Self {
        self.config = json.to_owned();
        self
    }

    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        CONFIG.with(|c| *c.borrow_mut() = self.config.clone());
        NOW.with(|n| *n.borrow_mut() = self.now);
        LOGS.with(|l| l.borrow_mut().clear());
        f()
    }

    pub fn describe<P: Plugin>(&self) -> PluginInfo {
        self.with(P::describe)
    }

    pub fn plan<P: Plugin>(
        &self,
        occurrence: Occurrence,
        targets: Vec<Target>,
    ) -> Result<Plan, String> {
        self.with(|| P::plan(occurrence, targets))
    }

    pub fn review<P: Plugin>(
        &self,
        task: Task,
        report: VisitReport,
    ) -> Result<ReviewOutcome, String> {
        self.with(|| P::review(task, report))
    }

    /// What the last call logged, as (level, message).
    pub fn logs(&self) -> Vec<(String, String)> {
        LOGS.with(|l| {
            l.borrow()
                .iter()
                .map(|(lvl, m)| {
                    let name = match lvl {
                        Level::Debug => "debug",
                        Level::Info => "info",
                        Level::Warn => "warn",
                        Level::Error => "error",
                    };
                    (name.to_owned(), m.clone())
                })
                .collect()
        })
    }
}

/// An occurrence of `action` at an RFC 3339 instant in Asia/Shanghai.
pub fn occurrence(action: &str, scheduled_at: &str) -> Occurrence {
    Occurrence {
        duty: "test-duty".to_owned(),
        action: action.to_owned(),
        scheduled_at: scheduled_at.to_owned(),
        time_zone: "Asia/Shanghai".to_owned(),
    }
}

/// A person in care of the given categories, aged `age`, in community 620802001001.
pub fn person(id: u64, age: u32, categories: &[&str]) -> Person {
    Person {
        id,
        community: "620802001001".to_owned(),
        age,
        gender: "female".to_owned(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        circumstances: Vec::new(),
        disability: None,
        living: None,
        has_guardian: false,
        needs: Vec::new(),
    }
}

impl Person {
    pub fn with_circumstances(mut self, c: &[&str]) -> Person {
        self.circumstances = c.iter().map(|x| (*x).to_owned()).collect();
        self
    }

    pub fn with_disability(mut self, kind: &str, grade: u8) -> Person {
        self.disability = Some(Disability {
            kind: kind.to_owned(),
            grade,
        });
        self
    }

    pub fn with_needs(mut self, needs: &[&str]) -> Person {
        self.needs = needs.iter().map(|x| (*x).to_owned()).collect();
        self
    }

    pub fn living(mut self, living: &str) -> Person {
        self.living = Some(living.to_owned());
        self
    }

    pub fn with_guardian(mut self) -> Person {
        self.has_guardian = true;
        self
    }

    pub fn target(self) -> Target {
        Target::Person(self)
    }
}

/// A community target.
pub fn community(code: &str, population: Option<u32>) -> Target {
    Target::Community(Community {
        code: code.to_owned(),
        name: "测试社区".to_owned(),
        settlement: Some("urban".to_owned()),
        population,
    })
}

/// The task the host would create from draft `index` of a plan, for `target`.
pub fn task_from(plan: &Plan, index: usize, target: Target) -> Task {
    let draft = &plan.drafts[index];
    Task {
        id: 1,
        kind: draft.kind.clone(),
        target,
        due_start: draft.due_start.clone(),
        due_end: draft.due_end.clone(),
        checklist: plan.checklist_of(draft).to_vec(),
    }
}

/// A report of a visit at `visited_at` lasting `minutes`, with `answers` as (item, value).
pub fn report(
    visited_at: &str,
    minutes: u32,
    reached: bool,
    answers: &[(&str, &str)],
) -> VisitReport {
    VisitReport {
        visited_at: visited_at.to_owned(),
        duration_minutes: minutes,
        reached,
        answers: answers
            .iter()
            .map(|(i, v)| Answer {
                item: (*i).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        notes: String::new(),
    }
}
