//! hospital-escort, in Rust: the SDK README's example, built and deployed by the test suite
//! beside its Python twin (`../python/app.py`), which must plan the same tasks.

use linli_sdk::*;

struct Escort;

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// Days a task stays open.
    window_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { window_days: 14 }
    }
}

/// What `Settings` accepts, as JSON Schema: the host checks a configuration against it when it
/// is set, so `{"window": 45}` or `{"window_days": 400}` is refused at once, naming the field.
const CONFIG_SCHEMA: &str = r#"{"type": "object", "additionalProperties": false,
  "properties": {"window_days": {"type": "integer", "minimum": 1, "maximum": 31}}}"#;

impl Plugin for Escort {
    fn describe() -> PluginInfo {
        PluginInfo {
            config_schema: Some(CONFIG_SCHEMA.into()),
            id: "hospital-escort".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            names: Names::new("就医陪护", "Hospital escort"),
            actions: vec![Action {
                id: "escort".into(),
                names: Names::new("就医陪护", "Escort to hospital"),
                default_cron: "0 9 1 * *".into(),
                target_kind: TargetKind::Person,
                categories: vec![vocab::Category::SpecialDifficultyElder.into()],
            }],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let settings: Settings = config::get()?;
        let at = time::parse(&occurrence.scheduled_at)?;
        let checklist = vec![
            ChecklistItem::yes_no("seen", "是否已就诊？", "Seen by a doctor?"),
            ChecklistItem::text("advice", "医嘱", "Doctor's advice").optional(),
        ];
        let mut drafts = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let Target::Person(p) = target else { continue };
            if !p.needs("medical") {
                continue;
            }
            drafts.push(TaskDraft {
                target: i as u32,
                kind: "escort".into(),
                title: Names::new("陪同就医", "Escort to hospital"),
                due_start: time::format(at),
                due_end: time::plus_days(at, settings.window_days),
                priority: if p.age >= 80 { Priority::High } else { Priority::Normal },
                requirements: Requirements { skills: vec!["driving".into()], ..Requirements::default() },
                // Index into the plan's checklists: every draft here uses the first.
                checklist: 0,
            });
        }
        log::info(&format!("{} escorts for {} people", drafts.len(), targets.len()));
        Ok(Plan::with_checklist(checklist, drafts))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        if !report.reached {
            return Ok(ReviewOutcome::routine("not reached: arrange the escort again"));
        }
        let missing = report.missing(&task.checklist);
        if !missing.is_empty() {
            return Ok(ReviewOutcome::Rejected(missing));
        }
        Ok(if report.yes("seen") {
            ReviewOutcome::Accepted
        } else {
            ReviewOutcome::routine("not seen by a doctor yet")
        })
    }
}

export_plugin!(Escort);
