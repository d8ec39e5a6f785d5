//! {{id}}: a linli action plugin. One task per person in the categories the action names, due
//! within `window_days` of the occurrence; the visitor answers two questions.

use linli_sdk::*;

struct {{struct}};

/// The plugin's configuration (`PATCH /v1/plugins/{{id}}` with `{"config": {...}}`).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// Days a task stays open after the occurrence.
    window_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { window_days: 14 }
    }
}

/// What `Settings` accepts (JSON Schema): the host checks a configuration against it when it
/// is set, naming the field that is wrong.
const CONFIG_SCHEMA: &str = r#"{"type": "object", "additionalProperties": false,
  "properties": {"window_days": {"type": "integer", "minimum": 1, "maximum": 31,
                                 "description": "days a task stays open"}}}"#;

impl Plugin for {{struct}} {
    fn describe() -> PluginInfo {
        PluginInfo {
            config_schema: Some(CONFIG_SCHEMA.into()),
            id: "{{id}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            names: Names::new("{{id}}", "{{id}}"),
            actions: vec![Action {
                id: "visit".into(),
                names: Names::new("上门探访", "Home visit"),
                // 09:00 on the 1st of every month (Asia/Shanghai unless the duty says otherwise).
                default_cron: "0 9 1 * *".into(),
                target_kind: TargetKind::Person,
                categories: vec![vocab::Category::SpecialDifficultyElder.into()],
            }],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let settings: Settings = config::get()?;
        if !(1..=366).contains(&settings.window_days) {
            return Err(format!(
                "window_days {} must be 1 to 366",
                settings.window_days
            ));
        }
        let at = time::parse(&occurrence.scheduled_at)?;
        let checklist = vec![
            ChecklistItem::yes_no("well", "身体状况良好？", "In good health?"),
            ChecklistItem::text("needs", "需要的帮助", "Help needed").optional(),
        ];
        let mut drafts = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let Target::Person(p) = target else { continue };
            drafts.push(TaskDraft {
                target: i as u32,
                kind: "visit".into(),
                title: Names::new("上门探访", "Home visit"),
                due_start: time::format(at),
                due_end: time::plus_days(at, settings.window_days),
                priority: if p.age >= 80 {
                    Priority::High
                } else {
                    Priority::Normal
                },
                requirements: Requirements::default(),
                checklist: 0,
            });
        }
        log::info(&format!("{} visits planned", drafts.len()));
        Ok(Plan::with_checklist(checklist, drafts))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        if !report.reached {
            return Ok(ReviewOutcome::urgent(
                "the person could not be reached: find them today",
            ));
        }
        let problems = report.problems(&task.checklist);
        if !problems.is_empty() {
            return Ok(ReviewOutcome::Rejected(problems));
        }
        Ok(if report.no("well") {
            ReviewOutcome::routine("not in good health: arrange a follow-up")
        } else {
            ReviewOutcome::Accepted
        })
    }
}

export_plugin!({{struct}});

#[cfg(test)]
mod tests {
    use super::*;
    use linli_sdk::testing::{self, Harness};

    #[test]
    fn one_visit_per_person_and_the_oldest_first() {
        let h = Harness::new().config(r#"{"window_days": 7}"#);
        let targets = vec![
            testing::person(1, 84, &["special_difficulty_elder"]).target(),
            testing::person(2, 70, &["special_difficulty_elder"]).target(),
        ];
        let plan = h
            .plan::<{{struct}}>(
                testing::occurrence("visit", "2026-12-01T09:00:00+08:00"),
                targets.clone(),
            )
            .unwrap();
        assert_eq!(plan.drafts.len(), 2);
        assert_eq!(plan.drafts[0].priority, Priority::High);
        assert_eq!(plan.drafts[0].due_end, "2026-12-08T09:00:00+08:00");
        let task = testing::task_from(&plan, 0, targets[0].clone());
        let ok = h
            .review::<{{struct}}>(
                task.clone(),
                testing::report("2026-12-02T10:00:00+08:00", 30, true, &[("well", "yes")]),
            )
            .unwrap();
        assert_eq!(ok, ReviewOutcome::Accepted);
        let unreached = h
            .review::<{{struct}}>(
                task,
                testing::report("2026-12-02T10:00:00+08:00", 5, false, &[]),
            )
            .unwrap();
        assert!(matches!(unreached, ReviewOutcome::FollowUp(_)));
    }
}
