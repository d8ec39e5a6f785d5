//! Staffing end to end: a one-off task is offered at once to the nearest qualified volunteer;
//! the volunteer sees only what the visit needs, accepts, checks in and out; a decline or an
//! expired offer goes to the next volunteer; with nobody left the task says why.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

async fn events_of(d: &Daemon, task: u64) -> Vec<String> {
    let r = d.get("/v1/events?limit=1000", &d.admin).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["task"] == task)
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_off_task_is_offered_accepted_visited_and_done() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    // Two volunteers of station 1: the first lives nearer.
    let mut near = volunteer(w.stations[0], 901);
    near["home"] = json!({"lat": 35.541, "lon": 106.661});
    let near = d.created("/v1/volunteers", near).await["id"]
        .as_u64()
        .unwrap();
    let far = d
        .created("/v1/volunteers", volunteer(w.stations[0], 902))
        .await["id"]
        .as_u64()
        .unwrap();
    let near_token = d.token(&format!("volunteer:{near}")).await;
    let far_token = d.token(&format!("volunteer:{far}")).await;

    let r = d
        .post("/v1/tasks", &station, one_off(w.persons[0], "urgent"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let task = r.body["id"].as_u64().unwrap();
    assert_eq!(r.body["status"], "offered");
    assert_eq!(r.body["offers"][0]["volunteer"], near);
    // Urgent: an hour to answer.
    let offered =
        chrono::DateTime::parse_from_rfc3339(r.body["offers"][0]["offered_at"].as_str().unwrap())
            .unwrap();
    let respond_by =
        chrono::DateTime::parse_from_rfc3339(r.body["offers"][0]["respond_by"].as_str().unwrap())
            .unwrap();
    assert_eq!(respond_by - offered, Duration::hours(1));

    // The volunteer sees the task with what the visit needs, never the resident ID.
    let mine = d.get("/v1/me/tasks", &near_token).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    let item = &mine.body["items"][0];
    assert_eq!(item["id"], task);
    assert_eq!(item["person"]["name"], "张桂兰");
    assert!(
        !mine.body.to_string().contains(&rid(1940, 100)),
        "resident ID leaked"
    );
    // The phone only once the offer is accepted.
    assert!(item["person"].get("phone").is_none(), "{item:?}");
    // Another volunteer cannot read it, nor answer it.
    assert_eq!(
        d.get(&format!("/v1/me/tasks/{task}"), &far_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        d.post(&format!("/v1/tasks/{task}/accept"), &far_token, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Staff routes are not a volunteer's.
    assert_eq!(
        d.get("/v1/tasks", &near_token).await.status,
        StatusCode::FORBIDDEN
    );

    // Check in before accepting is refused; accept, check in, check out: done.
    let r = d
        .post(
            &format!("/v1/tasks/{task}/check-in"),
            &near_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = d
        .post(&format!("/v1/tasks/{task}/accept"), &near_token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "accepted");
    assert_eq!(r.body["person"]["phone"], "13909331234", "{:?}", r.body);
    let r = d
        .post(
            &format!("/v1/tasks/{task}/check-in"),
            &near_token,
            json!({"position": {"lat": 35.5401, "lon": 106.6601}}),
        )
        .await;
    assert_eq!(r.body["status"], "checked_in", "{:?}", r.body);
    d.clock.advance(Duration::minutes(40));
    let r = d
        .post(
            &format!("/v1/tasks/{task}/check-out"),
            &near_token,
            json!({}),
        )
        .await;
    // Checked out: the visit is made; its report closes the task (no plugin: reached is enough).
    assert_eq!(r.body["status"], "visited", "{:?}", r.body);
    let r = d
        .post(
            &format!("/v1/tasks/{task}/reports"),
            &near_token,
            json!({"reached": true, "notes": "药已送到"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    let t = d.get(&format!("/v1/tasks/{task}"), &station).await;
    let statuses: Vec<&str> = t.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "open",
            "offered",
            "accepted",
            "checked_in",
            "visited",
            "done"
        ]
    );
    assert_eq!(
        events_of(&d, task).await,
        [
            "task.created",
            "task.offered",
            "task.accepted",
            "task.checked_in",
            "task.checked_out",
            "report.accepted"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decline_or_an_expired_offer_goes_to_the_next_volunteer_then_the_task_says_why() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let mut a = volunteer(w.stations[0], 911);
    a["home"] = json!({"lat": 35.541, "lon": 106.661});
    let a = d.created("/v1/volunteers", a).await["id"].as_u64().unwrap();
    let b = d
        .created("/v1/volunteers", volunteer(w.stations[0], 912))
        .await["id"]
        .as_u64()
        .unwrap();
    let a_token = d.token(&format!("volunteer:{a}")).await;
    let r = d
        .post("/v1/tasks", &d.admin, one_off(w.persons[0], "normal"))
        .await;
    let task = r.body["id"].as_u64().unwrap();
    assert_eq!(r.body["offers"][0]["volunteer"], a);
    // A declines: the task goes to B at once.
    let r = d
        .post(
            &format!("/v1/tasks/{task}/decline"),
            &a_token,
            json!({"reason": "本周在外地"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    let offers = t.body["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0]["state"], "declined");
    assert_eq!(offers[0]["reason"], "本周在外地");
    assert_eq!(offers[1]["volunteer"], b);
    assert_eq!(t.body["status"], "offered");
    // B does not answer within 24 hours: the offer expires; nobody else is left.
    d.clock.advance(Duration::hours(25));
    tick(&d).await;
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_eq!(t.body["offers"][1]["state"], "expired");
    assert_eq!(t.body["status"], "unstaffed", "{:?}", t.body);
    let codes: Vec<&str> = t.body["unstaffed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(!codes.is_empty(), "{:?}", t.body);
    let kinds = events_of(&d, task).await;
    for k in [
        "task.offered",
        "task.declined",
        "task.expired",
        "task.unstaffed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k}: {kinds:?}");
    }
    // A task nobody can take at all (a skill nobody has) says so at once, with counts.
    let mut t = one_off(w.persons[0], "high");
    t["requirements"]["skills"] = json!(["sign_language"]);
    let r = d.post("/v1/tasks", &d.admin, t).await;
    assert_eq!(r.body["status"], "unstaffed");
    assert_eq!(
        r.body["unstaffed"][0]["code"], "missing_skill",
        "{:?}",
        r.body
    );
    assert_eq!(r.body["unstaffed"][0]["skill"], "sign_language");
    // Cancelling withdraws; a cancelled task cannot be cancelled again.
    let r = d
        .post(
            &format!("/v1/tasks/{task}/cancel"),
            &d.admin,
            json!({"reason": "家属已处理"}),
        )
        .await;
    assert_eq!(r.body["status"], "cancelled", "{:?}", r.body);
    let r = d
        .post(&format!("/v1/tasks/{task}/cancel"), &d.admin, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

/// Deploys `steady`, makes a daily visit duty over county 620802 and queues an occurrence now;
/// answers the duty's id (the next tick runs it).
async fn steady_visits_triggered(d: &Daemon) -> u64 {
    deploy(d, "steady").await;
    let duty = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "visits", "plugin": "steady", "action": "visit", "cron": "0 9 * * *",
                   "selector": {"region": "620802000000"}}),
        )
        .await;
    let id = duty.body["id"].as_u64().unwrap();
    d.post(&format!("/v1/duties/{id}/trigger"), &d.admin, json!({}))
        .await;
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn an_occurrence_s_tasks_are_matched_in_one_batch() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    for i in 0..3 {
        d.created(
            "/v1/volunteers",
            volunteer(w.stations[i % 2], 920 + i as u16),
        )
        .await;
    }
    let id = steady_visits_triggered(&d).await;
    tick(&d).await;
    let tasks = d
        .get(&format!("/v1/tasks?duty={id}&limit=100"), &d.admin)
        .await;
    let items = tasks.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for t in items {
        assert!(
            t["status"] == "offered" || t["status"] == "unstaffed",
            "{t}"
        );
    }
    assert!(items.iter().any(|t| t["status"] == "offered"), "{items:?}");
}

/// A batch larger than a few tasks plans outside the staffing lock while phone requests are
/// offered beside it; however the two interleave, no volunteer ends up offered more than their
/// month's capacity, and every task is offered or says why not.
#[tokio::test(flavor = "multi_thread")]
async fn phone_requests_beside_a_large_batch_never_overload_a_volunteer() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let mut volunteers = Vec::new();
    for i in 0..4 {
        let v = d
            .created("/v1/volunteers", volunteer(w.stations[0], 940 + i))
            .await;
        volunteers.push(v["id"].as_u64().unwrap());
    }
    let mut people = Vec::new();
    for i in 0..80 {
        let p = d
            .created("/v1/persons", elder("620802001001", 400 + i))
            .await;
        people.push(p["id"].as_u64().unwrap());
    }
    steady_visits_triggered(&d).await;
    let batch = {
        let s = d.scheduler.clone();
        tokio::task::spawn_blocking(move || s.tick().unwrap())
    };
    for &p in people.iter().take(8) {
        let r = d.post("/v1/tasks", &d.admin, one_off(p, "urgent")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    batch.await.unwrap();
    let all = d.get("/v1/tasks?limit=500", &d.admin).await;
    let items = all.body["items"].as_array().unwrap();
    assert!(items.len() > 80, "{} tasks", items.len());
    let mut load = std::collections::HashMap::<u64, u32>::new();
    for t in items {
        for o in t["offers"].as_array().into_iter().flatten() {
            if o["state"] == "offered" {
                *load.entry(o["volunteer"].as_u64().unwrap()).or_default() += 1;
            }
        }
        if t["status"] == "unstaffed" {
            assert!(!t["unstaffed"].as_array().unwrap().is_empty(), "{t}");
        } else {
            assert_eq!(t["status"], "offered", "{t}");
        }
    }
    // Four volunteers of six a month each: all 24 places offered, none twice over.
    assert_eq!(load.values().sum::<u32>(), 24, "{load:?}");
    for v in &volunteers {
        assert_eq!(load.get(v), Some(&6), "{load:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shortage_report_says_whom_to_recruit_and_where() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    d.created("/v1/volunteers", volunteer(w.stations[0], 930))
        .await;
    d.created("/v1/volunteers", volunteer(w.stations[1], 931))
        .await;
    for person in [w.persons[0], w.persons[1]] {
        let mut t = one_off(person, "normal");
        t["requirements"]["skills"] = json!(["sign_language"]);
        let r = d.post("/v1/tasks", &d.admin, t).await;
        assert_eq!(r.body["status"], "unstaffed", "{:?}", r.body);
    }
    let bureau = d.token("bureau:620802000000").await;
    let r = d.get("/v1/reports/shortage", &bureau).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["unstaffed"], 2);
    let row = &r.body["rows"][0];
    assert_eq!(row["township"], "620802001000");
    assert_eq!(row["township_name"], "东关街道");
    assert_eq!(row["reason"], "missing_skill");
    assert_eq!(row["what"], "sign_language");
    assert_eq!(row["tasks"], 2);
    // As CSV, for a spreadsheet.
    let r = d.get("/v1/reports/shortage?format=csv", &bureau).await;
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    let text = r.body.as_str().unwrap();
    assert!(
        text.starts_with("township,township_name,reason,what,tasks\n"),
        "{text}"
    );
    assert!(
        text.contains("620802001000,东关街道,missing_skill,sign_language,2"),
        "{text}"
    );
    // Another county's bureau sees none of it.
    let other = d.token("bureau:620821000000").await;
    assert_eq!(
        d.get("/v1/reports/shortage", &other).await.body["unstaffed"],
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volunteer_s_calendar_feed_lists_accepted_tasks_and_can_be_replaced() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 940))
        .await["id"]
        .as_u64()
        .unwrap();
    let token = d.token(&format!("volunteer:{v}")).await;
    let r = d
        .post(&format!("/v1/volunteers/{v}/calendar"), &token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let path = r.body["path"].as_str().unwrap().to_owned();
    let fetch = |path: String| {
        let url = format!("{}{path}", d.url);
        async move {
            let resp = reqwest::get(url).await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let events = |text: &str| -> Vec<(String, String)> {
        let cal: icalendar::Calendar = text.parse().unwrap();
        cal.components
            .iter()
            .filter_map(|c| c.as_event())
            .map(|e| {
                use icalendar::{Component, EventLike};
                (
                    e.get_summary().unwrap_or_default().to_owned(),
                    e.get_location().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let (status, text) = fetch(path.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(events(&text).is_empty(), "{text}");
    // An accepted task appears, with its summary; offers not yet accepted do not.
    let mut task = one_off(w.persons[0], "normal");
    task["title"]["zh"] = "接诉即办：送药, 并检查燃气；附近".into();
    let t = d.post("/v1/tasks", &d.admin, task).await.body["id"]
        .as_u64()
        .unwrap();
    assert!(events(&fetch(path.clone()).await.1).is_empty());
    d.post(&format!("/v1/tasks/{t}/accept"), &token, json!({}))
        .await;
    let (_, text) = fetch(path.clone()).await;
    let evs = events(&text);
    assert_eq!(evs.len(), 1, "{text}");
    assert_eq!(evs[0].0, "接诉即办：送药, 并检查燃气；附近");
    assert!(
        text.lines().all(|l| l.len() <= 76),
        "lines are folded at 75 octets: {text}"
    );
    // Another volunteer cannot make this volunteer's feed; a new secret replaces the old.
    let other = d
        .created("/v1/volunteers", volunteer(w.stations[0], 941))
        .await["id"]
        .as_u64()
        .unwrap();
    let other_token = d.token(&format!("volunteer:{other}")).await;
    assert_eq!(
        d.post(
            &format!("/v1/volunteers/{v}/calendar"),
            &other_token,
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = d
        .post(&format!("/v1/volunteers/{v}/calendar"), &token, json!({}))
        .await;
    let new_path = r.body["path"].as_str().unwrap().to_owned();
    assert_ne!(new_path, path);
    assert_eq!(fetch(path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(events(&fetch(new_path).await.1).len(), 1);
    assert_eq!(
        fetch("/calendar/nothing.ics".into()).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unstaffed_task_is_tried_again_when_a_volunteer_joins() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let r = d
        .post("/v1/tasks", &d.admin, one_off(w.persons[0], "normal"))
        .await;
    let task = r.body["id"].as_u64().unwrap();
    assert_eq!(r.body["status"], "unstaffed");
    assert_eq!(r.body["unstaffed"][0]["code"], "no_volunteers");
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 950))
        .await["id"]
        .as_u64()
        .unwrap();
    // Not at once (an unstaffed task is retried every few hours) …
    tick(&d).await;
    assert_eq!(
        d.get(&format!("/v1/tasks/{task}"), &d.admin).await.body["status"],
        "unstaffed"
    );
    // … but within the day.
    d.clock.advance(Duration::hours(7));
    tick(&d).await;
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_eq!(t.body["status"], "offered", "{:?}", t.body);
    assert_eq!(t.body["offers"][0]["volunteer"], v);
    // Exactly one task.unstaffed event, however often it was tried.
    assert_eq!(
        events_of(&d, task)
            .await
            .iter()
            .filter(|k| *k == "task.unstaffed")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_already_made_keeps_its_seat_in_the_team() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for (i, lat) in [35.5401, 35.5402, 35.5403].into_iter().enumerate() {
        let mut v = volunteer(w.stations[0], 960 + i as u16);
        v["home"] = json!({"lat": lat, "lon": 106.6601});
        let id = d.created("/v1/volunteers", v).await["id"].as_u64().unwrap();
        ids.push(id);
        tokens.push(d.token(&format!("volunteer:{id}")).await);
    }
    let mut t = one_off(w.persons[0], "normal");
    t["requirements"]["team_size"] = 2.into();
    let r = d.post("/v1/tasks", &d.admin, t).await;
    let task = r.body["id"].as_u64().unwrap();
    let offered: Vec<u64> = r.body["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["volunteer"].as_u64().unwrap())
        .collect();
    assert_eq!(offered, [ids[0], ids[1]]);
    // A visits; B declines: exactly one more person is asked.
    for step in ["accept", "check-in", "check-out"] {
        let r = d
            .post(&format!("/v1/tasks/{task}/{step}"), &tokens[0], json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
    }
    d.post(
        &format!("/v1/tasks/{task}/decline"),
        &tokens[1],
        json!({"reason": "生病"}),
    )
    .await;
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    let offers = t.body["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 3, "{:?}", t.body);
    assert_eq!(offers[2]["volunteer"], ids[2]);
    for step in ["accept", "check-in", "check-out"] {
        d.post(&format!("/v1/tasks/{task}/{step}"), &tokens[2], json!({}))
            .await;
    }
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_eq!(t.body["status"], "visited", "{:?}", t.body);
}

/// Careless and hostile one-off tasks and visit answers are refused by field; nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn bad_one_off_tasks_and_visit_answers_are_refused_by_field() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    type Break = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Break)> = vec![
        (
            "due_end",
            Box::new(|t| t["due_end"] = "2026-11-30T09:00:00+08:00".into()),
        ),
        (
            "title.zh",
            Box::new(|t| t["title"]["zh"] = "a\u{7}b".into()),
        ),
        (
            "title.en",
            Box::new(|t| t["title"]["en"] = "x".repeat(101).into()),
        ),
        ("kind", Box::new(|t| t["kind"] = "Phone Request!".into())),
        (
            "requirements.team_size",
            Box::new(|t| t["requirements"]["team_size"] = 0.into()),
        ),
        (
            "requirements.max_distance_km",
            Box::new(|t| t["requirements"]["max_distance_km"] = (-3.0).into()),
        ),
        (
            "requirements.skills",
            Box::new(|t| t["requirements"]["skills"] = json!(vec!["x"; 17])),
        ),
        // A person of another station's community: refused like one that does not exist.
        ("target.id", Box::new(|t| t["target"]["id"] = 2.into())),
        ("target.id", Box::new(|t| t["target"]["id"] = 99999.into())),
    ];
    for (field, break_it) in cases {
        let mut t = one_off(w.persons[0], "normal");
        break_it(&mut t);
        let r = d.post("/v1/tasks", &station, t).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {:?}",
            r.body
        );
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {:?}",
            r.body
        );
    }
    let all = d.get("/v1/tasks", &d.admin).await;
    assert!(
        all.body["items"].as_array().unwrap().is_empty(),
        "nothing stored"
    );
    // A visit answer out of range, or a decline without a reason.
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 980))
        .await["id"]
        .as_u64()
        .unwrap();
    let token = d.token(&format!("volunteer:{v}")).await;
    let task = d
        .post("/v1/tasks", &station, one_off(w.persons[0], "normal"))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    d.post(&format!("/v1/tasks/{task}/accept"), &token, json!({}))
        .await;
    let r = d
        .post(
            &format!("/v1/tasks/{task}/check-in"),
            &token,
            json!({"position": {"lat": 91.0, "lon": 0.0}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "position");
    let r = d
        .post(
            &format!("/v1/tasks/{task}/decline"),
            &token,
            json!({"reason": "  "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_eq!(
        t.body["status"], "accepted",
        "the refused answers changed nothing"
    );
}
