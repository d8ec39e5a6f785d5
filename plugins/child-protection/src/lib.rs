//! 未成年人关爱 — visits to left-behind children and children in difficulty.
//!
//! `monthly-visit` plans a visit to every such child. Safeguarding comes first: every visitor
//! holds a valid safeguarding clearance, and no volunteer is ever alone with a child — the visit
//! is made together with the community's child director (儿童主任) or, if configured, by a team
//! of two.
//!
//! `review`: any sign of abuse or neglect, or a child without anyone caring for them, is urgent
//! follow-up under mandatory reporting (强制报告) — the station must act the same day.

use linli_sdk::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Visit with the community's child director; when false, send a team of two volunteers.
    pub with_child_director: bool,
    /// Days a visit stays open after the occurrence.
    pub window_days: i64,
    /// Farthest a visitor may live from the child, in km.
    pub max_distance_km: f32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            with_child_director: true,
            window_days: 20,
            max_distance_km: 10.0,
        }
    }
}

const CATEGORIES: [&str; 2] = ["left_behind_child", "child_in_difficulty"];

/// The reason given whenever mandatory reporting applies.
pub const MANDATORY: &str = "mandatory reporting applies (强制报告): report to the police and the civil-affairs bureau today";

fn checklist() -> Vec<ChecklistItem> {
    vec![
        ChecklistItem::yes_no(
            "guardian_present",
            "有人实际监护照料？",
            "Is someone caring for the child now?",
        ),
        ChecklistItem::text(
            "guardian_now",
            "目前由谁照料",
            "Who cares for the child now",
        ),
        ChecklistItem::yes_no(
            "child_seen",
            "是否见到儿童本人？",
            "Was the child seen in person?",
        ),
        ChecklistItem::yes_no("attends_school", "按时上学？", "Attending school?"),
        ChecklistItem::choice(
            "health",
            "身体状况",
            "Health",
            &["good", "ill", "needs_care"],
        ),
        ChecklistItem::yes_no("home_safe", "居住环境安全？", "Is the home safe?"),
        ChecklistItem::yes_no(
            "signs_of_neglect",
            "有无被忽视迹象（饥饿、衣着不足、无人看管）？",
            "Signs of neglect?",
        ),
        ChecklistItem::yes_no(
            "signs_of_abuse",
            "有无被伤害、虐待迹象？",
            "Signs of abuse?",
        ),
        ChecklistItem::choice("mood", "情绪状态", "Mood", &["good", "low", "distressed"]),
    ]
}

pub struct ChildProtection;

impl Plugin for ChildProtection {
    fn describe() -> PluginInfo {
        PluginInfo {
            config_schema: None,
            id: "child-protection".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            names: Names::new("未成年人关爱探访", "Child protection visits"),
            actions: vec![Action {
                id: "monthly-visit".into(),
                names: Names::new(
                    "留守/困境儿童月探访",
                    "Monthly visit to left-behind and vulnerable children",
                ),
                default_cron: "0 16 5 * *".into(),
                target_kind: TargetKind::Person,
                categories: CATEGORIES.iter().map(|c| (*c).into()).collect(),
            }],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let c: Config = config::get()?;
        if occurrence.action != "monthly-visit" {
            return Err(format!("unknown action {:?}", occurrence.action));
        }
        let at = time::parse(&occurrence.scheduled_at)?;
        let (start, end) = (time::format(at), time::plus_days(at, c.window_days));
        // Never a volunteer alone with a child.
        let requirements = Requirements {
            clearances: vec!["safeguarding".into()],
            team_size: if c.with_child_director { 1 } else { 2 },
            roles: if c.with_child_director {
                vec![vocab::Role::ChildDirector.into()]
            } else {
                vec![]
            },
            max_distance_km: Some(c.max_distance_km),
            ..Requirements::default()
        };
        let drafts: Vec<TaskDraft> = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Target::Person(p) if CATEGORIES.iter().any(|c| p.has_category(c)) => Some((i, p)),
                _ => None,
            })
            .map(|(i, p)| TaskDraft {
                target: i as u32,
                kind: "monthly-visit".into(),
                title: Names::new("儿童关爱探访", "Child welfare visit"),
                due_start: start.clone(),
                due_end: end.clone(),
                // A child without a recorded guardian is seen first.
                priority: if p.has_guardian {
                    Priority::Normal
                } else {
                    Priority::High
                },
                requirements: requirements.clone(),
                checklist: 0,
            })
            .collect();
        log::info(&format!(
            "{} child visits for {} targets",
            drafts.len(),
            targets.len()
        ));
        Ok(Plan::with_checklist(checklist(), drafts))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        if !report.reached {
            return Ok(ReviewOutcome::urgent(
                "the child could not be reached: find the child and their carer today",
            ));
        }
        let problems = report.problems(&task.checklist);
        if !problems.is_empty() {
            return Ok(ReviewOutcome::Rejected(problems));
        }
        let mut signs = Vec::new();
        if report.yes("signs_of_abuse") {
            signs.push("signs of abuse");
        }
        if report.yes("signs_of_neglect") {
            signs.push("signs of neglect");
        }
        if report.no("guardian_present") {
            signs.push("no one is caring for the child");
        }
        if !signs.is_empty() {
            return Ok(ReviewOutcome::urgent(format!(
                "{}: {MANDATORY}",
                signs.join(", ")
            )));
        }
        if report.no("child_seen") {
            return Ok(ReviewOutcome::urgent(
                "the child was not seen in person: see the child today",
            ));
        }
        let mut routine = Vec::new();
        if report.no("attends_school") {
            routine.push("not attending school: contact the school and the education bureau");
        }
        if report.no("home_safe") {
            routine.push("the home is unsafe: arrange repairs or safety measures");
        }
        if report.answer("health") == Some("needs_care") {
            routine.push("the child needs medical care");
        }
        if report.answer("mood") == Some("distressed") {
            routine.push("the child is distressed: arrange psychological support");
        }
        Ok(ReviewOutcome::unless(Severity::Routine, &routine))
    }
}

export_plugin!(ChildProtection);

#[cfg(test)]
mod tests {
    use super::*;
    use linli_sdk::testing::{self, Harness};

    const AT: &str = "2026-12-05T16:00:00+08:00";

    fn children() -> Vec<Target> {
        vec![
            testing::person(1, 9, &["left_behind_child"])
                .with_guardian()
                .target(),
            testing::person(2, 12, &["child_in_difficulty"]).target(),
            testing::person(3, 80, &["special_difficulty_elder"]).target(),
        ]
    }

    #[test]
    fn children_are_visited_with_cleared_visitors_and_never_by_one_volunteer_alone() {
        let plan = Harness::new()
            .plan::<ChildProtection>(testing::occurrence("monthly-visit", AT), children())
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(drafts.iter().map(|d| d.target).collect::<Vec<_>>(), [0, 1]);
        for d in drafts {
            assert_eq!(d.requirements.clearances, ["safeguarding"]);
            assert_eq!(
                (d.requirements.team_size, d.requirements.roles.as_slice()),
                (1, ["child_director".to_owned()].as_slice())
            );
        }
        assert_eq!(drafts[1].priority, Priority::High);
        let pairs = Harness::new().config(r#"{"with_child_director": false}"#);
        let plan = pairs
            .plan::<ChildProtection>(testing::occurrence("monthly-visit", AT), children())
            .unwrap();
        let drafts = &plan.drafts;
        assert!(
            drafts
                .iter()
                .all(|d| d.requirements.team_size == 2 && d.requirements.roles.is_empty())
        );
        let ids: Vec<&str> = plan
            .checklist_of(&drafts[0])
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        for needed in [
            "guardian_present",
            "guardian_now",
            "attends_school",
            "health",
            "home_safe",
            "signs_of_neglect",
            "signs_of_abuse",
        ] {
            assert!(ids.contains(&needed), "{needed}");
        }
    }

    const GOOD: &[(&str, &str)] = &[
        ("guardian_present", "yes"),
        ("guardian_now", "祖母"),
        ("child_seen", "yes"),
        ("attends_school", "yes"),
        ("health", "good"),
        ("home_safe", "yes"),
        ("signs_of_neglect", "no"),
        ("signs_of_abuse", "no"),
        ("mood", "good"),
    ];

    fn review(changes: &[(&'static str, &'static str)], reached: bool) -> ReviewOutcome {
        let h = Harness::new();
        let target = children().remove(0);
        let plan = h
            .plan::<ChildProtection>(
                testing::occurrence("monthly-visit", AT),
                vec![target.clone()],
            )
            .unwrap();
        let mut answers: Vec<_> = GOOD
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .copied()
            .collect();
        answers.extend_from_slice(changes);
        let report = testing::report("2026-12-06T10:00:00+08:00", 45, reached, &answers);
        h.review::<ChildProtection>(testing::task_from(&plan, 0, target), report)
            .unwrap()
    }

    #[test]
    fn abuse_neglect_or_missing_guardianship_means_mandatory_reporting_today() {
        for change in [
            ("signs_of_abuse", "yes"),
            ("signs_of_neglect", "yes"),
            ("guardian_present", "no"),
        ] {
            match review(&[change], true) {
                ReviewOutcome::FollowUp(f) => {
                    assert_eq!(f.severity, Severity::Urgent, "{change:?}");
                    assert!(
                        f.reason.contains("强制报告") && f.reason.contains("today"),
                        "{}",
                        f.reason
                    );
                }
                other => panic!("{change:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_outcomes() {
        assert_eq!(review(&[], true), ReviewOutcome::Accepted);
        assert!(matches!(
            review(&[], false),
            ReviewOutcome::FollowUp(FollowUp {
                severity: Severity::Urgent,
                ..
            })
        ));
        assert!(matches!(
            review(&[("child_seen", "no")], true),
            ReviewOutcome::FollowUp(FollowUp {
                severity: Severity::Urgent,
                ..
            })
        ));
        match review(&[("attends_school", "no")], true) {
            ReviewOutcome::FollowUp(f) => assert_eq!(f.severity, Severity::Routine),
            other => panic!("{other:?}"),
        }
        match review(&[("signs_of_abuse", "maybe")], true) {
            ReviewOutcome::Rejected(r) => assert!(r[0].starts_with("signs_of_abuse"), "{r:?}"),
            other => panic!("{other:?}"),
        }
    }
}
