//! The SDK's test harness, used as a plugin author would: a small plugin, exported with the
//! macro, unit-tested natively.

use linli_sdk::testing::{self, Harness};
use linli_sdk::*;

struct Greeter;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Settings {
    due_days: i64,
}

impl Plugin for Greeter {
    fn describe() -> PluginInfo {
        PluginInfo {
            config_schema: None,
            id: "greeter".into(),
            version: "0.1.0".into(),
            names: Names::new("问候", "Greeter"),
            actions: vec![Action {
                id: "hello".into(),
                names: Names::new("问候", "Hello"),
                default_cron: "0 9 * * mon".into(),
                target_kind: TargetKind::Person,
                categories: vec!["special_difficulty_elder".into()],
            }],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let settings: Settings = config::get()?;
        let at = time::parse(&occurrence.scheduled_at)?;
        log::info(&format!("{} targets", targets.len()));
        let drafts = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Target::Person(p) if p.age >= 80))
            .map(|(i, _)| TaskDraft {
                target: i as u32,
                kind: "hello".into(),
                title: Names::new("问候", "Hello"),
                due_start: time::format(at),
                due_end: time::plus_days(at, settings.due_days.max(1)),
                priority: Priority::Normal,
                requirements: Requirements::default(),
                checklist: 0,
            })
            .collect();
        Ok(Plan::with_checklist(
            vec![ChecklistItem::yes_no("well", "身体好吗？", "Well?")],
            drafts,
        ))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        let missing = report.missing(&task.checklist);
        Ok(if missing.is_empty() {
            ReviewOutcome::Accepted
        } else {
            ReviewOutcome::Rejected(missing)
        })
    }
}

export_plugin!(Greeter);

#[test]
fn plan_sees_config_and_logs_are_captured() {
    let h = Harness::new().config(r#"{"due_days": 3}"#);
    let targets = vec![
        testing::person(1, 85, &["special_difficulty_elder"]).target(),
        testing::person(2, 70, &["special_difficulty_elder"]).target(),
    ];
    let drafts = h
        .plan::<Greeter>(
            testing::occurrence("hello", "2026-12-07T09:00:00+08:00"),
            targets,
        )
        .unwrap();
    assert_eq!(drafts.drafts.len(), 1);
    assert_eq!(drafts.drafts[0].due_end, "2026-12-10T09:00:00+08:00");
    assert_eq!(h.logs(), vec![("info".to_owned(), "2 targets".to_owned())]);
}

#[test]
fn review_reports_missing_answers() {
    let h = Harness::new();
    let target = testing::person(1, 85, &[]).target();
    let drafts = h
        .plan::<Greeter>(
            testing::occurrence("hello", "2026-12-07T09:00:00+08:00"),
            vec![target.clone()],
        )
        .unwrap();
    let task = testing::task_from(&drafts, 0, target);
    let empty = testing::report("2026-12-08T10:00:00+08:00", 20, true, &[]);
    assert_eq!(
        h.review::<Greeter>(task.clone(), empty).unwrap(),
        ReviewOutcome::Rejected(vec!["well".into()])
    );
    let answered = testing::report("2026-12-08T10:00:00+08:00", 20, true, &[("well", "是")]);
    assert_eq!(
        h.review::<Greeter>(task, answered).unwrap(),
        ReviewOutcome::Accepted
    );
    assert_eq!(Harness::new().describe::<Greeter>().actions[0].id, "hello");
}

#[test]
fn missing_answers_follow_conditions_and_ask_nothing_of_an_unreached_visit() {
    let list = vec![
        ChecklistItem::yes_no("harmed", "受伤了吗？", "Hurt?"),
        ChecklistItem::text("injuries", "伤情", "Injuries").required_when("harmed", "yes"),
    ];
    let at = "2026-12-08T10:00:00+08:00";
    assert!(
        testing::report(at, 20, true, &[("harmed", "no")])
            .missing(&list)
            .is_empty()
    );
    assert_eq!(
        testing::report(at, 20, true, &[("harmed", "yes")]).missing(&list),
        vec!["injuries".to_owned()]
    );
    // Nobody reached: nothing could be asked.
    assert!(
        testing::report(at, 20, false, &[])
            .missing(&list)
            .is_empty()
    );
    assert!(
        testing::report(at, 20, false, &[])
            .problems(&list)
            .is_empty()
    );
}
