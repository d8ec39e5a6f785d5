//! 社区养老服务 · 特殊困难老人探访 — elderly visits.
//!
//! The plan's target is a visit to every special-difficulty elder every month (月探访, 100%).
//! - `monthly-visit` plans a visit for every elder it is given, due by the end of the month;
//!   elders at higher risk get a higher priority.
//! - `weekly-check` plans a short weekly check for those at highest risk: elders living alone
//!   aged 80+ (configurable), and disabled or semi-disabled elders.
//!
//! `review` asks for urgent follow-up when the elder could not be reached or is in danger (no
//! food or heating, a fall, acute illness, an unsafe gas supply), routine follow-up for unmet
//! needs, and rejects incomplete reports and implausible visit times.

use linli_sdk::*;
use serde::Deserialize;

/// The plugin configuration; every field has a default that follows the plan.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Elders living alone from this age get the weekly check.
    pub weekly_check_age: u32,
    /// Disabled and semi-disabled (失能/半失能) elders get the weekly check.
    pub weekly_check_disabled: bool,
    /// Days a weekly check stays open.
    pub weekly_window_days: i64,
    /// Farthest a visitor may live from the elder, in km.
    pub max_distance_km: f32,
    /// Shortest plausible visit, in minutes.
    pub min_visit_minutes: u32,
    /// Extra yes/no questions for the monthly checklist: (id, Chinese, English).
    pub extra_questions: Vec<(String, String, String)>,
}

/// The configuration's JSON Schema: the host checks a configuration against it when it is set
/// (`PATCH /v1/plugins/elderly-visit`), so a mistake is refused at once, naming the field.
const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "weekly_check_age": {"type": "integer", "minimum": 60, "maximum": 120,
                         "description": "elders living alone from this age get the weekly check"},
    "weekly_check_disabled": {"type": "boolean"},
    "weekly_window_days": {"type": "integer", "minimum": 1, "maximum": 7,
                           "description": "days a weekly check stays open"},
    "max_distance_km": {"type": "number", "exclusiveMinimum": 0, "maximum": 500},
    "min_visit_minutes": {"type": "integer", "minimum": 1, "maximum": 240},
    "extra_questions": {"type": "array", "maxItems": 20,
                        "items": {"type": "array", "minItems": 3, "maxItems": 3,
                                  "items": {"type": "string", "minLength": 1, "maxLength": 200}}}
  }
}"#;

impl Default for Config {
    fn default() -> Self {
        Config {
            weekly_check_age: 80,
            weekly_check_disabled: true,
            weekly_window_days: 3,
            max_distance_km: 10.0,
            min_visit_minutes: 15,
            extra_questions: Vec::new(),
        }
    }
}

const ELDER: &str = "special_difficulty_elder";

/// Whether the elder is at the highest risk: living alone at an advanced age, or disabled.
fn highest_risk(p: &Person, c: &Config) -> bool {
    let alone = p.has_circumstance("living_alone") || p.living.as_deref() == Some("alone");
    let disabled = p.has_circumstance("incapacitated")
        || p.has_circumstance("semi_incapacitated")
        || p.disability.is_some();
    (alone && p.age >= c.weekly_check_age) || (c.weekly_check_disabled && disabled)
}

/// The configured extra questions as the host will accept them (the schema cannot say all of
/// it): ids of lower-case letters, digits and `_`, not one of the built-in questions', no
/// repeats, and questions that are not blank. A mistake is this plugin's polite error, naming
/// the question, not a checklist the host refuses.
fn check_extra_questions(c: &Config) -> Result<(), String> {
    let builtin: Vec<String> = monthly_checklist(&Config::default())
        .into_iter()
        .map(|q| q.id)
        .collect();
    let mut seen = Vec::new();
    for (i, (id, zh, en)) in c.extra_questions.iter().enumerate() {
        let ok_id = id.len() <= 64
            && id.starts_with(|ch: char| ch.is_ascii_lowercase())
            && id
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !ok_id {
            return Err(format!(
                "config.extra_questions[{i}]: the id {id:?} must be lower-case letters, digits and _ (e.g. stove_ok)"
            ));
        }
        if builtin.contains(id) || seen.contains(&id) {
            return Err(format!(
                "config.extra_questions[{i}]: the id {id:?} is already a question of the checklist"
            ));
        }
        if zh.trim().is_empty() || en.trim().is_empty() {
            return Err(format!(
                "config.extra_questions[{i}]: the question text must not be blank"
            ));
        }
        seen.push(id);
    }
    Ok(())
}

fn monthly_checklist(c: &Config) -> Vec<ChecklistItem> {
    let mut list = vec![
        ChecklistItem::choice(
            "living_conditions",
            "居住环境",
            "Living conditions",
            &["good", "fair", "poor"],
        ),
        ChecklistItem::choice(
            "health",
            "身体状况",
            "Health",
            &["stable", "declined", "acute_illness"],
        ),
        ChecklistItem::yes_no("gas_safe", "燃气使用安全？", "Gas safe?"),
        ChecklistItem::yes_no("electricity_safe", "用电安全？", "Electricity safe?"),
        ChecklistItem::yes_no(
            "fire_safe",
            "消防安全（无火灾隐患）？",
            "Free of fire hazards?",
        ),
        ChecklistItem::yes_no(
            "fell_recently",
            "近期是否跌倒？",
            "A fall since the last visit?",
        ),
        ChecklistItem::yes_no("fall_hazards", "居所有跌倒隐患？", "Fall hazards at home?"),
        ChecklistItem::choice(
            "hygiene",
            "个人及居所卫生",
            "Hygiene",
            &["good", "fair", "poor"],
        ),
        ChecklistItem::choice("mood", "精神状态", "Mood", &["good", "low", "distressed"]),
        ChecklistItem::yes_no("food_ok", "有足够食物？", "Enough food?"),
        ChecklistItem::yes_no("heating_ok", "取暖/降温条件正常？", "Heating adequate?"),
        ChecklistItem::text(
            "unmet_needs",
            "未满足的需求（助餐、居家照护、就医）",
            "Unmet needs (meals, home care, medical)",
        )
        .optional(),
    ];
    for (id, zh, en) in &c.extra_questions {
        list.push(ChecklistItem::yes_no(id, zh, en));
    }
    list
}

fn weekly_checklist() -> Vec<ChecklistItem> {
    vec![
        ChecklistItem::choice(
            "health",
            "身体状况",
            "Health",
            &["stable", "declined", "acute_illness"],
        ),
        ChecklistItem::yes_no(
            "fell_recently",
            "近期是否跌倒？",
            "A fall since the last check?",
        ),
        ChecklistItem::yes_no("food_ok", "有足够食物？", "Enough food?"),
        ChecklistItem::yes_no("heating_ok", "取暖/降温条件正常？", "Heating adequate?"),
        ChecklistItem::text("unmet_needs", "未满足的需求", "Unmet needs").optional(),
    ]
}

pub struct ElderlyVisit;

impl Plugin for ElderlyVisit {
    fn describe() -> PluginInfo {
        PluginInfo {
            config_schema: Some(CONFIG_SCHEMA.into()),
            id: "elderly-visit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            names: Names::new("特殊困难老人探访", "Visits to special-difficulty elders"),
            actions: vec![
                Action {
                    id: "monthly-visit".into(),
                    names: Names::new("月探访", "Monthly visit"),
                    default_cron: "0 9 1 * *".into(),
                    target_kind: TargetKind::Person,
                    categories: vec![ELDER.into()],
                },
                Action {
                    id: "weekly-check".into(),
                    names: Names::new("高风险老人周巡查", "Weekly check of elders at highest risk"),
                    default_cron: "0 9 * * 1".into(),
                    target_kind: TargetKind::Person,
                    categories: vec![ELDER.into()],
                },
            ],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let c: Config = config::get()?;
        check_extra_questions(&c)?;
        let at = time::parse(&occurrence.scheduled_at)?;
        let start = time::format(at);
        let (kind, end, checklist, title) = match occurrence.action.as_str() {
            "monthly-visit" => (
                "monthly-visit",
                time::format(time::end_of_month(at)),
                monthly_checklist(&c),
                Names::new("特殊困难老人月探访", "Monthly visit"),
            ),
            "weekly-check" => (
                "weekly-check",
                time::plus_days(at, c.weekly_window_days),
                weekly_checklist(),
                Names::new("高风险老人周巡查", "Weekly check"),
            ),
            other => return Err(format!("unknown action {other:?}")),
        };
        let weekly = kind == "weekly-check";
        let mut drafts = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let Target::Person(p) = t else { continue };
            if !p.has_category(ELDER) {
                continue;
            }
            let risk = highest_risk(p, &c);
            if weekly && !risk {
                continue;
            }
            drafts.push(TaskDraft {
                target: i as u32,
                kind: kind.into(),
                title: title.clone(),
                due_start: start.clone(),
                due_end: end.clone(),
                priority: if risk {
                    Priority::High
                } else {
                    Priority::Normal
                },
                requirements: Requirements {
                    skills: if p.has_circumstance("incapacitated") {
                        vec!["elder_care".into()]
                    } else {
                        vec![]
                    },
                    max_distance_km: Some(c.max_distance_km),
                    ..Requirements::default()
                },
                checklist: 0,
            });
        }
        log::info(&format!(
            "{kind}: {} tasks for {} targets",
            drafts.len(),
            targets.len()
        ));
        Ok(Plan::with_checklist(checklist, drafts))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        let c: Config = config::get()?;
        if !report.reached {
            return Ok(ReviewOutcome::urgent(
                "the elder could not be reached: find them today (phone, neighbours, grid worker)",
            ));
        }
        let mut problems = report.problems(&task.checklist);
        problems.extend(implausible_time(&task, &report, c.min_visit_minutes)?);
        if !problems.is_empty() {
            return Ok(ReviewOutcome::Rejected(problems));
        }
        let mut danger = Vec::new();
        if report.no("food_ok") {
            danger.push("no food in the home");
        }
        if report.no("heating_ok") {
            danger.push("no adequate heating");
        }
        if report.yes("fell_recently") {
            danger.push("a recent fall");
        }
        if report.answer("health") == Some("acute_illness") {
            danger.push("acute illness");
        }
        if report.no("gas_safe") {
            danger.push("unsafe gas supply");
        }
        if !danger.is_empty() {
            return Ok(ReviewOutcome::urgent(format!(
                "the elder is in danger: {}",
                danger.join(", ")
            )));
        }
        let mut routine = Vec::new();
        if let Some(needs) = report
            .answer("unmet_needs")
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            routine.push(format!("unmet needs: {needs}"));
        }
        if report.no("electricity_safe") || report.no("fire_safe") {
            routine.push("electrical or fire hazards to fix".into());
        }
        if report.yes("fall_hazards") {
            routine.push("fall hazards at home".into());
        }
        if report.answer("mood") == Some("distressed") {
            routine.push("the elder is distressed: arrange companionship or counselling".into());
        }
        if report.answer("living_conditions") == Some("poor")
            || report.answer("hygiene") == Some("poor")
        {
            routine.push("poor living conditions or hygiene: arrange home care".into());
        }
        Ok(ReviewOutcome::unless(Severity::Routine, &routine))
    }
}

/// A visit before the task opened, in the future, or of an implausible length.
fn implausible_time(
    task: &Task,
    report: &VisitReport,
    min_minutes: u32,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let visited = time::parse(&report.visited_at)?;
    if visited < time::parse(&task.due_start)? {
        out.push(format!(
            "visited_at {} is before the task opened",
            report.visited_at
        ));
    }
    if visited > time::now() {
        out.push(format!("visited_at {} is in the future", report.visited_at));
    }
    if report.duration_minutes < min_minutes || report.duration_minutes > 8 * 60 {
        out.push(format!(
            "a visit of {} minutes is implausible (expected {min_minutes} minutes to 8 hours)",
            report.duration_minutes
        ));
    }
    Ok(out)
}

export_plugin!(ElderlyVisit);

#[cfg(test)]
mod tests {
    use super::*;
    use linli_sdk::testing::{self, Harness};

    const AT: &str = "2026-12-01T09:00:00+08:00";

    fn elders() -> Vec<Target> {
        vec![
            testing::person(1, 85, &[ELDER])
                .with_circumstances(&["living_alone", "advanced_age"])
                .living("alone")
                .target(),
            testing::person(2, 70, &[ELDER])
                .with_circumstances(&["empty_nest"])
                .target(),
            testing::person(3, 66, &[ELDER])
                .with_circumstances(&["semi_incapacitated"])
                .target(),
            testing::person(4, 40, &["disabled"])
                .with_disability("physical", 2)
                .target(),
        ]
    }

    #[test]
    fn every_elder_gets_a_monthly_visit_due_by_the_end_of_the_month() {
        let plan = Harness::new()
            .plan::<ElderlyVisit>(testing::occurrence("monthly-visit", AT), elders())
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(
            drafts.iter().map(|d| d.target).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(
            drafts
                .iter()
                .all(|d| d.due_end == "2026-12-31T23:59:59+08:00")
        );
        assert_eq!(drafts[0].priority, Priority::High);
        assert_eq!(drafts[1].priority, Priority::Normal);
        let ids: Vec<&str> = plan
            .checklist_of(&drafts[0])
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        for needed in [
            "living_conditions",
            "health",
            "gas_safe",
            "electricity_safe",
            "fire_safe",
            "fell_recently",
            "hygiene",
            "mood",
            "unmet_needs",
        ] {
            assert!(ids.contains(&needed), "{needed}");
        }
    }

    #[test]
    fn weekly_checks_go_to_elders_alone_over_80_and_disabled_elders() {
        let h = Harness::new();
        let plan = h
            .plan::<ElderlyVisit>(testing::occurrence("weekly-check", AT), elders())
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(drafts.iter().map(|d| d.target).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(drafts[0].due_end, "2026-12-04T09:00:00+08:00");
        let stricter =
            Harness::new().config(r#"{"weekly_check_age": 90, "weekly_check_disabled": false}"#);
        let plan = stricter
            .plan::<ElderlyVisit>(testing::occurrence("weekly-check", AT), elders())
            .unwrap();
        let drafts = &plan.drafts;
        assert!(drafts.is_empty());
        assert!(
            Harness::new()
                .config(r#"{"weekly_age": 1}"#)
                .plan::<ElderlyVisit>(testing::occurrence("weekly-check", AT), elders())
                .is_err()
        );
    }

    /// Reviews happen on 5 December.
    fn harness() -> Harness {
        Harness::new().now("2026-12-05T12:00:00+08:00")
    }

    fn reviewed(
        reached: bool,
        minutes: u32,
        visited_at: &str,
        answers: &[(&str, &str)],
    ) -> ReviewOutcome {
        let h = harness();
        let target = elders().remove(0);
        let plan = h
            .plan::<ElderlyVisit>(
                testing::occurrence("monthly-visit", AT),
                vec![target.clone()],
            )
            .unwrap();
        let task = testing::task_from(&plan, 0, target);
        h.review::<ElderlyVisit>(task, testing::report(visited_at, minutes, reached, answers))
            .unwrap()
    }

    const GOOD: &[(&str, &str)] = &[
        ("living_conditions", "good"),
        ("health", "stable"),
        ("gas_safe", "yes"),
        ("electricity_safe", "yes"),
        ("fire_safe", "yes"),
        ("fell_recently", "no"),
        ("fall_hazards", "no"),
        ("hygiene", "good"),
        ("mood", "good"),
        ("food_ok", "yes"),
        ("heating_ok", "yes"),
    ];

    /// The good answers with some changed or added.
    fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut answers: Vec<_> = GOOD
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .copied()
            .collect();
        answers.extend_from_slice(changes);
        answers
    }

    const WHEN: &str = "2026-12-03T10:00:00+08:00";

    fn follow_up(outcome: ReviewOutcome) -> (Severity, String) {
        match outcome {
            ReviewOutcome::FollowUp(f) => (f.severity, f.reason),
            other => panic!("expected follow-up, got {other:?}"),
        }
    }

    fn rejected(outcome: ReviewOutcome) -> Vec<String> {
        match outcome {
            ReviewOutcome::Rejected(r) => r,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn extra_questions_the_host_would_refuse_are_this_plugins_polite_error() {
        for (extra, says) in [
            (r#"[["Q1", "问题", "Question"]]"#, "must be lower-case"),
            (r#"[["gas_safe", "燃气", "Gas"]]"#, "already a question"),
            (
                r#"[["stove_ok", "炉子", "Stove"], ["stove_ok", "炉子", "Stove"]]"#,
                "already a question",
            ),
            (r#"[["stove_ok", " ", "Stove"]]"#, "must not be blank"),
        ] {
            let h = Harness::new().config(&format!(r#"{{"extra_questions": {extra}}}"#));
            let e = h
                .plan::<ElderlyVisit>(testing::occurrence("monthly-visit", AT), elders())
                .unwrap_err();
            assert!(e.contains(says), "{extra}: {e}");
        }
        let h = Harness::new()
            .config(r#"{"extra_questions": [["stove_ok", "炉子安全？", "Stove safe?"]]}"#);
        let plan = h
            .plan::<ElderlyVisit>(testing::occurrence("monthly-visit", AT), elders())
            .unwrap();
        assert!(plan.checklists[0].iter().any(|q| q.id == "stove_ok"));
    }

    #[test]
    fn a_complete_uneventful_visit_is_accepted() {
        assert_eq!(
            reviewed(true, 40, WHEN, &with(&[])),
            ReviewOutcome::Accepted
        );
    }

    #[test]
    fn danger_and_unreachable_elders_are_urgent() {
        for (change, value, word) in [
            ("food_ok", "no", "no food"),
            ("heating_ok", "no", "heating"),
            ("fell_recently", "yes", "fall"),
            ("health", "acute_illness", "acute illness"),
            ("gas_safe", "no", "gas"),
        ] {
            let (severity, reason) = follow_up(reviewed(true, 40, WHEN, &with(&[(change, value)])));
            assert_eq!(severity, Severity::Urgent, "{change}");
            assert!(reason.contains(word), "{reason}");
        }
        let (severity, reason) = follow_up(reviewed(false, 5, WHEN, &[]));
        assert_eq!(severity, Severity::Urgent);
        assert!(reason.contains("could not be reached"));
    }

    #[test]
    fn unmet_needs_are_routine_follow_up() {
        let (severity, reason) =
            follow_up(reviewed(true, 40, WHEN, &with(&[("unmet_needs", "助餐")])));
        assert_eq!(severity, Severity::Routine);
        assert!(reason.contains("助餐"));
        let (severity, _) = follow_up(reviewed(true, 40, WHEN, &with(&[("mood", "distressed")])));
        assert_eq!(severity, Severity::Routine);
    }

    #[test]
    fn incomplete_reports_and_implausible_times_are_rejected() {
        let r = rejected(reviewed(true, 40, WHEN, &[("health", "stable")]));
        assert!(
            r.iter().any(|x| x.starts_with("gas_safe: no answer")),
            "{r:?}"
        );
        let r = rejected(reviewed(
            true,
            2,
            "2026-11-20T10:00:00+08:00",
            &with(&[("mood", "sad")]),
        ));
        assert!(
            r.iter().any(|x| x.contains("before the task opened")),
            "{r:?}"
        );
        assert!(
            r.iter().any(|x| x.contains("2 minutes is implausible")),
            "{r:?}"
        );
        assert!(r.iter().any(|x| x.starts_with("mood: \"sad\"")), "{r:?}");
        let r = rejected(reviewed(true, 40, "2026-12-06T10:00:00+08:00", &with(&[])));
        assert!(r.iter().any(|x| x.contains("in the future")), "{r:?}");
    }
}
