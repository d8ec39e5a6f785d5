//! 助残服务 — care for persons with disabilities, planned by need.
//!
//! - `weekly-care`: people with a severe disability (grade 1–2) get a weekly home-care session,
//!   or a day-care session when they need day care (日间照料).
//! - `monthly-visit`: everyone else (grade 3–4) gets a monthly visit.
//!
//! Rehabilitation sessions need a volunteer with rehabilitation skills; a hearing-impaired person
//! needs a visitor who signs (手语). Every checklist captures assistive-device needs.
//! `review` flags care that was not delivered, a worsening condition, or a device need.

use linli_sdk::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Grades up to this one count as severe and get weekly sessions.
    pub severe_up_to_grade: u8,
    /// Days a weekly session stays open.
    pub weekly_window_days: i64,
    /// Days a monthly visit stays open.
    pub monthly_window_days: i64,
    pub max_distance_km: f32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            severe_up_to_grade: 2,
            weekly_window_days: 6,
            monthly_window_days: 25,
            max_distance_km: 15.0,
        }
    }
}

fn checklist(session: bool) -> Vec<ChecklistItem> {
    let mut list = Vec::new();
    if session {
        list.push(ChecklistItem::yes_no(
            "care_delivered",
            "本次照护/康复服务已完成？",
            "Was the care session delivered?",
        ));
        list.push(ChecklistItem::number(
            "care_minutes",
            "服务时长（分钟）",
            "Minutes of care",
        ));
    }
    list.extend([
        ChecklistItem::choice(
            "condition",
            "身体状况变化",
            "Condition since the last visit",
            &["improved", "stable", "worse"],
        ),
        ChecklistItem::yes_no(
            "device_needed",
            "是否需要辅助器具（轮椅、助听器、拐杖等）？",
            "Is an assistive device needed?",
        ),
        ChecklistItem::text("device", "所需辅助器具", "Which device").optional(),
        ChecklistItem::yes_no(
            "home_accessible",
            "居所无障碍条件满足日常需要？",
            "Is the home accessible enough?",
        ),
        ChecklistItem::text("other_needs", "其他需求", "Other needs").optional(),
    ]);
    list
}

pub struct DisabilityCare;

fn severe(p: &Person, c: &Config) -> bool {
    p.disability
        .as_ref()
        .is_some_and(|d| d.grade >= 1 && d.grade <= c.severe_up_to_grade)
}

impl Plugin for DisabilityCare {
    fn describe() -> PluginInfo {
        PluginInfo {
            config_schema: None,
            id: "disability-care".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            names: Names::new("助残服务", "Disability care"),
            actions: vec![
                Action {
                    id: "weekly-care".into(),
                    names: Names::new("重度残疾人每周照护", "Weekly care for severe disabilities"),
                    default_cron: "0 9 * * 2".into(),
                    target_kind: TargetKind::Person,
                    categories: vec!["disabled".into()],
                },
                Action {
                    id: "monthly-visit".into(),
                    names: Names::new("残疾人月探访", "Monthly visit"),
                    default_cron: "0 9 10 * *".into(),
                    target_kind: TargetKind::Person,
                    categories: vec!["disabled".into()],
                },
            ],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let c: Config = config::get()?;
        let at = time::parse(&occurrence.scheduled_at)?;
        let weekly = match occurrence.action.as_str() {
            "weekly-care" => true,
            "monthly-visit" => false,
            other => return Err(format!("unknown action {other:?}")),
        };
        let start = time::format(at);
        let end = time::plus_days(
            at,
            if weekly {
                c.weekly_window_days
            } else {
                c.monthly_window_days
            },
        );
        let mut drafts = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let Target::Person(p) = t else { continue };
            if !p.has_category("disabled") || severe(p, &c) != weekly {
                continue;
            }
            let rehab = p.needs("rehabilitation");
            let (kind, title) = match (weekly, rehab, p.needs("day_care")) {
                (true, true, _) => (
                    "rehabilitation",
                    Names::new("康复训练", "Rehabilitation session"),
                ),
                (true, false, true) => ("day-care", Names::new("日间照料", "Day-care session")),
                (true, false, false) => ("home-care", Names::new("居家照护", "Home-care session")),
                (false, _, _) => ("monthly-visit", Names::new("残疾人探访", "Monthly visit")),
            };
            let mut req = Requirements {
                max_distance_km: Some(c.max_distance_km),
                ..Requirements::default()
            };
            if rehab {
                req.skills.push("rehabilitation".into());
            }
            if p.disability.as_ref().is_some_and(|d| d.kind == "hearing") {
                req.skills.push("sign_language".into());
                req.languages.push("手语".into());
            }
            if weekly && !rehab {
                req.skills.push("elder_care".into());
            }
            drafts.push(TaskDraft {
                target: i as u32,
                kind: kind.into(),
                title,
                due_start: start.clone(),
                due_end: end.clone(),
                priority: if weekly {
                    Priority::High
                } else {
                    Priority::Normal
                },
                requirements: req,
                checklist: 0,
            });
        }
        log::info(&format!(
            "{}: {} tasks for {} targets",
            occurrence.action,
            drafts.len(),
            targets.len()
        ));
        Ok(Plan::with_checklist(checklist(weekly), drafts))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        let severe_case = task.kind != "monthly-visit";
        if !report.reached {
            let severity = if severe_case {
                Severity::Urgent
            } else {
                Severity::Routine
            };
            return Ok(ReviewOutcome::FollowUp(FollowUp {
                severity,
                reason: "the person could not be reached: contact them and their family".into(),
            }));
        }
        let problems = report.problems(&task.checklist);
        if !problems.is_empty() {
            return Ok(ReviewOutcome::Rejected(problems));
        }
        let mut reasons = Vec::new();
        let mut severity = Severity::Routine;
        if report.no("care_delivered") {
            reasons.push("care was not delivered: reschedule the session".to_owned());
            if severe_case {
                severity = Severity::Urgent;
            }
        }
        if report.answer("condition") == Some("worse") {
            reasons.push(
                "the condition is worse: arrange a medical or rehabilitation assessment".to_owned(),
            );
        }
        if report.yes("device_needed") {
            let device = report
                .answer("device")
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .unwrap_or("unspecified");
            reasons.push(format!(
                "assistive device needed: {device} (apply through the disabled persons' federation)"
            ));
        }
        if report.no("home_accessible") {
            reasons.push("the home needs accessibility adaptation".to_owned());
        }
        Ok(ReviewOutcome::unless(severity, &reasons))
    }
}

export_plugin!(DisabilityCare);

#[cfg(test)]
mod tests {
    use super::*;
    use linli_sdk::testing::{self, Harness};

    const AT: &str = "2026-12-08T09:00:00+08:00";

    fn people() -> Vec<Target> {
        vec![
            testing::person(1, 45, &["disabled"])
                .with_disability("physical", 1)
                .with_needs(&["rehabilitation"])
                .target(),
            testing::person(2, 30, &["disabled"])
                .with_disability("hearing", 2)
                .with_needs(&["day_care"])
                .target(),
            testing::person(3, 52, &["disabled"])
                .with_disability("visual", 3)
                .target(),
            testing::person(4, 60, &["disabled"])
                .with_disability("hearing", 4)
                .target(),
        ]
    }

    #[test]
    fn severe_disabilities_get_weekly_sessions_by_need() {
        let plan = Harness::new()
            .plan::<DisabilityCare>(testing::occurrence("weekly-care", AT), people())
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(
            drafts
                .iter()
                .map(|d| (d.target, d.kind.as_str()))
                .collect::<Vec<_>>(),
            [(0, "rehabilitation"), (1, "day-care")]
        );
        assert_eq!(drafts[0].requirements.skills, ["rehabilitation"]);
        assert!(
            drafts[1]
                .requirements
                .skills
                .contains(&"sign_language".to_owned())
        );
        assert_eq!(drafts[1].requirements.languages, ["手语"]);
        assert_eq!(drafts[0].due_end, "2026-12-14T09:00:00+08:00");
        assert!(
            plan.checklist_of(&drafts[0])
                .iter()
                .any(|c| c.id == "device_needed")
        );
    }

    #[test]
    fn others_get_a_monthly_visit() {
        let plan = Harness::new()
            .plan::<DisabilityCare>(testing::occurrence("monthly-visit", AT), people())
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(drafts.iter().map(|d| d.target).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(drafts[1].requirements.languages, ["手语"]);
        let wider = Harness::new().config(r#"{"severe_up_to_grade": 3}"#);
        let plan = wider
            .plan::<DisabilityCare>(testing::occurrence("monthly-visit", AT), people())
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(drafts.iter().map(|d| d.target).collect::<Vec<_>>(), [3]);
    }

    fn review(
        action: &str,
        target: usize,
        reached: bool,
        answers: &[(&str, &str)],
    ) -> ReviewOutcome {
        let h = Harness::new();
        let t = people().remove(target);
        let plan = h
            .plan::<DisabilityCare>(testing::occurrence(action, AT), vec![t.clone()])
            .unwrap();
        let report = testing::report("2026-12-09T10:00:00+08:00", 60, reached, answers);
        h.review::<DisabilityCare>(testing::task_from(&plan, 0, t), report)
            .unwrap()
    }

    #[test]
    fn undelivered_care_worsening_and_device_needs_are_flagged() {
        let base = [
            ("care_delivered", "yes"),
            ("care_minutes", "60"),
            ("condition", "stable"),
            ("device_needed", "no"),
            ("home_accessible", "yes"),
        ];
        assert_eq!(
            review("weekly-care", 0, true, &base),
            ReviewOutcome::Accepted
        );
        let mut a = base.to_vec();
        a[0] = ("care_delivered", "no");
        assert!(matches!(
            review("weekly-care", 0, true, &a),
            ReviewOutcome::FollowUp(FollowUp {
                severity: Severity::Urgent,
                ..
            })
        ));
        let mut a = base.to_vec();
        a[2] = ("condition", "worse");
        a[3] = ("device_needed", "yes");
        a.push(("device", "轮椅"));
        match review("weekly-care", 0, true, &a) {
            ReviewOutcome::FollowUp(f) => {
                assert_eq!(f.severity, Severity::Routine);
                assert!(
                    f.reason.contains("worse") && f.reason.contains("轮椅"),
                    "{}",
                    f.reason
                );
            }
            other => panic!("{other:?}"),
        }
        let monthly = [
            ("condition", "stable"),
            ("device_needed", "no"),
            ("home_accessible", "yes"),
        ];
        assert_eq!(
            review("monthly-visit", 2, true, &monthly),
            ReviewOutcome::Accepted
        );
        assert!(matches!(
            review("monthly-visit", 2, false, &[]),
            ReviewOutcome::FollowUp(FollowUp {
                severity: Severity::Routine,
                ..
            })
        ));
        assert!(matches!(
            review("weekly-care", 0, true, &[("care_minutes", "an hour")]),
            ReviewOutcome::Rejected(_)
        ));
    }
}
