//! The four shipped plugins, as built into linlid, loaded into the real host: each describes
//! itself, plans for registered people (or communities), and reviews a report.

use linli::plugins::SHIPPED;
use linli::plugins::model::{
    Answer, CommunityTarget, Occurrence, PersonTarget, ReviewOutcome, Severity, Target, TaskInfo,
    VisitReport,
};
use linli::plugins::runtime::{Limits, Runtime};
use linli::registry::Person;

use crate::harness::clock;

fn person(json: serde_json::Value) -> Target {
    let p: Person = serde_json::from_value(json).unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    Target::Person(PersonTarget::from_person(&p, today))
}

fn base(id: u64, birth: &str, categories: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": id, "name": "某某", "resident_id": "x", "gender": "female", "birth_date": birth,
        "community": "620802001001", "location": {"lat": 35.5, "lon": 106.6},
        "categories": categories, "circumstances": [], "needs": [], "active": true,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    })
}

fn occurrence(action: &str) -> Occurrence {
    Occurrence {
        duty: "d".into(),
        action: action.into(),
        scheduled_at: "2026-12-01T09:00:00+08:00".into(),
        time_zone: "Asia/Shanghai".into(),
    }
}

fn review(
    rt: &Runtime,
    loaded: &linli::plugins::runtime::Loaded,
    plan: &linli::plugins::model::PlanOutput,
    target: Target,
    answers: &[(&str, &str)],
) -> ReviewOutcome {
    let draft = &plan.drafts[0];
    let task = TaskInfo {
        id: 1,
        kind: draft.kind.clone(),
        target,
        due_start: draft.due_start.clone(),
        due_end: draft.due_end.clone(),
        checklist: plan.checklist_of(draft).to_vec(),
    };
    let report = VisitReport {
        visited_at: "2026-12-01T10:00:00+08:00".into(),
        duration_minutes: 45,
        reached: true,
        answers: answers
            .iter()
            .map(|(i, v)| Answer {
                item: (*i).into(),
                value: (*v).into(),
            })
            .collect(),
        notes: String::new(),
    };
    rt.review(loaded, "{}", &Limits::default(), &task, &report)
        .unwrap()
        .0
}

#[test]
fn the_shipped_plugins_plan_and_review_in_the_real_host() {
    // Reviews happen on 5 December: the host's clock is what plugins see as "now".
    let clock = clock();
    clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-12-05T12:00:00+08:00")
            .unwrap()
            .to_utc(),
    );
    let rt = Runtime::new(clock).unwrap();
    let loaded: Vec<_> = SHIPPED
        .iter()
        .map(|(_, bytes)| rt.load(bytes, &Limits::default()).unwrap())
        .collect();
    let ids: Vec<&str> = loaded.iter().map(|l| l.description.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "elderly-visit",
            "child-protection",
            "disability-care",
            "emergency-drill"
        ]
    );
    for l in &loaded {
        assert!(!l.description.names.zh.is_empty() && !l.description.names.en.is_empty());
    }

    // Elderly visits: every elder monthly.
    let mut elder = base(1, "1940-05-01", &["special_difficulty_elder"]);
    elder["circumstances"] = serde_json::json!(["living_alone"]);
    elder["household"] = serde_json::json!({"living": "alone", "size": 1});
    let targets = vec![
        person(elder),
        person(base(2, "2015-01-01", &["left_behind_child"])),
    ];
    let (plan, _) = rt
        .plan(
            &loaded[0],
            "{}",
            &Limits::default(),
            &occurrence("monthly-visit"),
            &targets,
        )
        .unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].due_end, "2026-12-31T23:59:59+08:00");
    let (weekly, _) = rt
        .plan(
            &loaded[0],
            "{}",
            &Limits::default(),
            &occurrence("weekly-check"),
            &targets,
        )
        .unwrap();
    assert_eq!(
        weekly.drafts.len(),
        1,
        "an 86-year-old living alone gets the weekly check"
    );
    let answers = [
        ("living_conditions", "good"),
        ("health", "stable"),
        ("gas_safe", "yes"),
        ("electricity_safe", "yes"),
        ("fire_safe", "yes"),
        ("fell_recently", "yes"),
        ("fall_hazards", "no"),
        ("hygiene", "good"),
        ("mood", "good"),
        ("food_ok", "yes"),
        ("heating_ok", "yes"),
    ];
    match review(&rt, &loaded[0], &plan, targets[0].clone(), &answers) {
        ReviewOutcome::FollowUp {
            severity: Severity::Urgent,
            reason,
        } => assert!(reason.contains("fall")),
        other => panic!("{other:?}"),
    }

    // Child protection: safeguarding clearance, never alone.
    let mut child = base(3, "2016-03-01", &["left_behind_child"]);
    child["guardian"] = serde_json::json!({"name": "王奶奶", "relation": "祖母"});
    let (plan, _) = rt
        .plan(
            &loaded[1],
            "{}",
            &Limits::default(),
            &occurrence("monthly-visit"),
            &[person(child.clone())],
        )
        .unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts[0].requirements.clearances, ["safeguarding"]);
    assert_eq!(drafts[0].requirements.roles, ["child_director"]);
    let answers = [
        ("guardian_present", "yes"),
        ("guardian_now", "祖母"),
        ("child_seen", "yes"),
        ("attends_school", "yes"),
        ("health", "good"),
        ("home_safe", "yes"),
        ("signs_of_neglect", "yes"),
        ("signs_of_abuse", "no"),
        ("mood", "low"),
    ];
    match review(&rt, &loaded[1], &plan, person(child), &answers) {
        ReviewOutcome::FollowUp {
            severity: Severity::Urgent,
            reason,
        } => assert!(reason.contains("强制报告")),
        other => panic!("{other:?}"),
    }

    // Disability care: severe → weekly, with sign language for hearing impairment.
    let mut deaf = base(4, "1990-01-01", &["disabled"]);
    deaf["disability"] = serde_json::json!({"type": "hearing", "grade": 1});
    let (plan, _) = rt
        .plan(
            &loaded[2],
            "{}",
            &Limits::default(),
            &occurrence("weekly-care"),
            &[person(deaf.clone())],
        )
        .unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts[0].requirements.languages, ["手语"]);
    let answers = [
        ("care_delivered", "yes"),
        ("care_minutes", "50"),
        ("condition", "stable"),
        ("device_needed", "yes"),
        ("device", "助听器"),
        ("home_accessible", "yes"),
    ];
    match review(&rt, &loaded[2], &plan, person(deaf), &answers) {
        ReviewOutcome::FollowUp {
            severity: Severity::Routine,
            reason,
        } => assert!(reason.contains("助听器")),
        other => panic!("{other:?}"),
    }

    // Emergency drills: communities.
    let community = Target::Community(CommunityTarget {
        code: "620802001001".into(),
        name: "新民路社区".into(),
        settlement: Some("urban".into()),
        population: Some(5000),
    });
    let (plan, _) = rt
        .plan(
            &loaded[3],
            "{}",
            &Limits::default(),
            &occurrence("quarterly-drill"),
            std::slice::from_ref(&community),
        )
        .unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts[0].requirements.team_size, 4);
    let answers = [
        ("participants", "60"),
        ("evacuation_minutes", "9"),
        ("shelter_state", "unusable"),
        ("officer_in_post", "yes"),
        ("supplies_ok", "yes"),
    ];
    assert!(matches!(
        review(&rt, &loaded[3], &plan, community, &answers),
        ReviewOutcome::FollowUp {
            severity: Severity::Urgent,
            ..
        }
    ));
}
