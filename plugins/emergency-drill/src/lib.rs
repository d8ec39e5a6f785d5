//! 社区应急服务 — emergency drills, one per community per quarter by default, and on
//! 12 May, the national disaster prevention and reduction day (全国防灾减灾日).
//!
//! Drills target communities, not people. Each needs the community's disaster information
//! officer (灾害信息员) and volunteers with first-aid skills, more of them in bigger
//! communities. The report records participants, evacuation time, the shelter's state and
//! problems found; `review` asks for follow-up when the shelter is unusable or the officer's
//! post is vacant.

use linli_sdk::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Team size by population: (up to this many residents, this many volunteers), ascending.
    /// Larger communities get `largest_team`.
    pub team_by_population: Vec<(u32, u8)>,
    pub largest_team: u8,
    /// Days a drill task stays open.
    pub window_days: i64,
    /// Evacuations slower than this many minutes get routine follow-up.
    pub slow_evacuation_minutes: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            team_by_population: vec![(1000, 2), (3000, 3), (8000, 4)],
            largest_team: 6,
            window_days: 30,
            slow_evacuation_minutes: 15.0,
        }
    }
}

fn team_size(population: Option<u32>, c: &Config) -> u8 {
    let Some(pop) = population else {
        return c.team_by_population.first().map_or(2, |(_, t)| *t);
    };
    c.team_by_population
        .iter()
        .find(|(up_to, _)| pop <= *up_to)
        .map_or(c.largest_team, |(_, t)| *t)
}

fn checklist() -> Vec<ChecklistItem> {
    vec![
        ChecklistItem::number("participants", "参演人数", "Participants"),
        ChecklistItem::number(
            "evacuation_minutes",
            "疏散用时（分钟）",
            "Evacuation time (minutes)",
        ),
        ChecklistItem::choice(
            "shelter_state",
            "应急避难场所状况",
            "Shelter state",
            &["usable", "needs_repair", "unusable"],
        ),
        ChecklistItem::yes_no(
            "officer_in_post",
            "灾害信息员在岗？",
            "Is the disaster information officer in post?",
        ),
        ChecklistItem::yes_no(
            "supplies_ok",
            "应急物资齐全？",
            "Emergency supplies complete?",
        ),
        ChecklistItem::text("problems_found", "发现的问题", "Problems found").optional(),
    ]
}

pub struct EmergencyDrill;

impl Plugin for EmergencyDrill {
    fn describe() -> PluginInfo {
        let action = |id: &str, zh: &str, en: &str, cron: &str| Action {
            id: id.into(),
            names: Names::new(zh, en),
            default_cron: cron.into(),
            target_kind: TargetKind::Community,
            categories: vec![],
        };
        PluginInfo {
            config_schema: None,
            id: "emergency-drill".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            names: Names::new("社区应急演练", "Community emergency drills"),
            actions: vec![
                action(
                    "quarterly-drill",
                    "季度应急演练",
                    "Quarterly drill",
                    "0 9 15 3,6,9,12 *",
                ),
                action(
                    "disaster-prevention-day",
                    "全国防灾减灾日演练",
                    "Disaster prevention day drill",
                    "0 9 12 5 *",
                ),
            ],
        }
    }

    fn plan(occurrence: Occurrence, targets: Vec<Target>) -> Result<Plan, String> {
        let c: Config = config::get()?;
        let title = match occurrence.action.as_str() {
            "quarterly-drill" => Names::new("社区应急演练", "Community emergency drill"),
            "disaster-prevention-day" => {
                Names::new("防灾减灾日应急演练", "Disaster prevention day drill")
            }
            other => return Err(format!("unknown action {other:?}")),
        };
        let at = time::parse(&occurrence.scheduled_at)?;
        let (start, end) = (time::format(at), time::plus_days(at, c.window_days));
        let drafts: Vec<TaskDraft> = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Target::Community(community) => Some((i, community)),
                Target::Person(_) => None,
            })
            .map(|(i, community)| TaskDraft {
                target: i as u32,
                kind: "drill".into(),
                title: title.clone(),
                due_start: start.clone(),
                due_end: end.clone(),
                priority: Priority::Normal,
                requirements: Requirements {
                    skills: vec!["first_aid".into()],
                    team_size: team_size(community.population, &c),
                    roles: vec![vocab::Role::DisasterInfoOfficer.into()],
                    ..Requirements::default()
                },
                checklist: 0,
            })
            .collect();
        log::info(&format!(
            "{} drills for {} targets",
            drafts.len(),
            targets.len()
        ));
        Ok(Plan::with_checklist(checklist(), drafts))
    }

    fn review(task: Task, report: VisitReport) -> Result<ReviewOutcome, String> {
        let c: Config = config::get()?;
        if !report.reached {
            return Ok(ReviewOutcome::Rejected(vec![
                "the drill did not take place: hold it before the task is due".into(),
            ]));
        }
        let mut problems = report.problems(&task.checklist);
        if report.number("participants").is_some_and(|n| n < 1.0) {
            problems.push("participants: a drill needs participants".into());
        }
        if report.number("evacuation_minutes").is_some_and(|m| m < 0.0) {
            problems.push("evacuation_minutes: cannot be negative".into());
        }
        if !problems.is_empty() {
            return Ok(ReviewOutcome::Rejected(problems));
        }
        let mut urgent = Vec::new();
        let mut routine = Vec::new();
        match report.answer("shelter_state") {
            Some("unusable") => urgent.push(
                "the emergency shelter is unusable: repair it or designate another".to_owned(),
            ),
            Some("needs_repair") => routine.push("the shelter needs repair".to_owned()),
            _ => {}
        }
        if report.no("officer_in_post") {
            routine.push("the disaster information officer post is vacant: appoint one (the plan requires at least one per community)".to_owned());
        }
        if report.no("supplies_ok") {
            routine.push("emergency supplies are incomplete".to_owned());
        }
        if report
            .number("evacuation_minutes")
            .is_some_and(|m| m > c.slow_evacuation_minutes)
        {
            routine.push(format!(
                "evacuation took longer than {} minutes",
                c.slow_evacuation_minutes
            ));
        }
        if let Some(p) = report
            .answer("problems_found")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            routine.push(format!("problems found: {p}"));
        }
        let (severity, reasons) = if urgent.is_empty() {
            (Severity::Routine, routine)
        } else {
            urgent.extend(routine);
            (Severity::Urgent, urgent)
        };
        Ok(ReviewOutcome::unless(severity, &reasons))
    }
}

export_plugin!(EmergencyDrill);

#[cfg(test)]
mod tests {
    use super::*;
    use linli_sdk::testing::{self, Harness};

    const AT: &str = "2026-12-15T09:00:00+08:00";

    #[test]
    fn each_community_gets_a_drill_with_a_team_sized_by_population() {
        let targets = vec![
            testing::community("620802101001", Some(800)),
            testing::community("620802101002", Some(2500)),
            testing::community("620802001001", Some(12000)),
            testing::community("620802001002", None),
            testing::person(1, 80, &["special_difficulty_elder"]).target(),
        ];
        let plan = Harness::new()
            .plan::<EmergencyDrill>(testing::occurrence("quarterly-drill", AT), targets)
            .unwrap();
        let drafts = &plan.drafts;
        assert_eq!(
            drafts
                .iter()
                .map(|d| (d.target, d.requirements.team_size))
                .collect::<Vec<_>>(),
            [(0, 2), (1, 3), (2, 6), (3, 2)]
        );
        assert!(
            drafts
                .iter()
                .all(|d| d.requirements.roles == ["disaster_info_officer"]
                    && d.requirements.skills == ["first_aid"])
        );
        let info = Harness::new().describe::<EmergencyDrill>();
        assert_eq!(info.actions[1].default_cron, "0 9 12 5 *");
    }

    fn review(answers: &[(&str, &str)]) -> ReviewOutcome {
        let h = Harness::new();
        let t = testing::community("620802101001", Some(800));
        let plan = h
            .plan::<EmergencyDrill>(testing::occurrence("quarterly-drill", AT), vec![t.clone()])
            .unwrap();
        let report = testing::report("2026-12-20T10:00:00+08:00", 120, true, answers);
        h.review::<EmergencyDrill>(testing::task_from(&plan, 0, t), report)
            .unwrap()
    }

    #[test]
    fn unusable_shelters_and_vacant_officer_posts_need_follow_up() {
        let good = [
            ("participants", "45"),
            ("evacuation_minutes", "8"),
            ("shelter_state", "usable"),
            ("officer_in_post", "yes"),
            ("supplies_ok", "yes"),
        ];
        assert_eq!(review(&good), ReviewOutcome::Accepted);
        let mut a = good.to_vec();
        a[2] = ("shelter_state", "unusable");
        assert!(matches!(
            review(&a),
            ReviewOutcome::FollowUp(FollowUp {
                severity: Severity::Urgent,
                ..
            })
        ));
        let mut a = good.to_vec();
        a[3] = ("officer_in_post", "no");
        match review(&a) {
            ReviewOutcome::FollowUp(f) => assert!(
                f.severity == Severity::Routine && f.reason.contains("vacant"),
                "{f:?}"
            ),
            other => panic!("{other:?}"),
        }
        let mut a = good.to_vec();
        a[0] = ("participants", "0");
        assert!(matches!(review(&a), ReviewOutcome::Rejected(_)));
    }
}
