//! Duties end to end: catch-up policies after a simulated downtime, pause and resume,
//! trigger-now, backfill, overdue tasks, plugin failures recorded on the occurrence.
//! The scheduler is driven by `tick` under the harness's clock.

use chrono::{DateTime, Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

async fn duty(d: &Daemon, body: Value) -> u64 {
    let r = d.post("/v1/duties", &d.admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_u64().unwrap()
}

fn daily(policy: &str, window_days: u32) -> Value {
    json!({
        "name": format!("daily {policy}"),
        "plugin": "steady",
        "action": "visit",
        "cron": "0 9 * * *",
        "selector": {"region": "620802000000"},
        "catch_up": {"policy": policy, "window_days": window_days}
    })
}

async fn occurrences(d: &Daemon, id: u64) -> Vec<Value> {
    let r = d
        .get(&format!("/v1/duties/{id}/occurrences"), &d.admin)
        .await;
    r.body["items"].as_array().unwrap().clone()
}

fn times(occ: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = occ
        .iter()
        .map(|o| {
            (
                o["scheduled_at"].as_str().unwrap().to_owned(),
                o["trigger"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_policies_after_downtime() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "steady").await;
    // The clock reads 2026-11-29 09:00 Beijing time; the duties fire daily at 09:00.
    let all = duty(&d, daily("all", 7)).await;
    let latest = duty(&d, daily("latest", 7)).await;
    let none = duty(&d, daily("none", 7)).await;
    let narrow = duty(&d, daily("all", 1)).await;
    tick(&d).await;
    assert!(
        occurrences(&d, all).await.is_empty(),
        "nothing is due at creation"
    );

    // Down for three days: 30 Nov, 1 Dec and 2 Dec 09:00 are missed; it is now 2 Dec 10:00.
    let dir = d.stop().await;
    let d = Daemon::start_in_at(dir, Some(at("2026-12-02T10:00:00+08:00"))).await;
    tick(&d).await;
    let missed = |day: &str| (format!("2026-{day}T01:00:00Z"), "catch_up".to_owned());
    assert_eq!(
        times(&occurrences(&d, all).await),
        [missed("11-30"), missed("12-01"), missed("12-02")]
    );
    assert_eq!(times(&occurrences(&d, latest).await), [missed("12-02")]);
    assert!(occurrences(&d, none).await.is_empty());
    assert_eq!(times(&occurrences(&d, narrow).await), [missed("12-02")]);
    // Two elders in the county, one task each per occurrence.
    let tasks = d
        .get(&format!("/v1/tasks?duty={all}&limit=100"), &d.admin)
        .await;
    assert_eq!(tasks.body["items"].as_array().unwrap().len(), 6);

    // Back to normal: the next fire runs on time, for every policy, exactly once.
    d.clock.set(at("2026-12-03T09:00:30+08:00"));
    tick(&d).await;
    tick(&d).await;
    for id in [all, latest, none] {
        let occ = occurrences(&d, id).await;
        assert_eq!(occ[0]["scheduled_at"], "2026-12-03T01:00:00Z");
        assert_eq!(occ[0]["trigger"], "scheduled");
        assert_eq!(
            occ.iter()
                .filter(|o| o["scheduled_at"] == "2026-12-03T01:00:00Z")
                .count(),
            1
        );
    }
    let duty_now = d.get(&format!("/v1/duties/{none}"), &d.admin).await;
    assert_eq!(duty_now.body["next_fire"], "2026-12-04T01:00:00Z");
    // Duties are listed a page at a time.
    let first = d.get("/v1/duties?limit=3", &d.admin).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 3);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = d
        .get(&format!("/v1/duties?limit=3&cursor={cursor}"), &d.admin)
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert!(rest.body.get("next_cursor").is_none());
    assert_eq!(
        d.get("/v1/duties?limit=0", &d.admin).await.status,
        StatusCode::BAD_REQUEST
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_trigger_and_backfill() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    deploy(&d, "steady").await;
    let id = duty(&d, daily("all", 30)).await;
    let p = d
        .post(&format!("/v1/duties/{id}/pause"), &d.admin, json!({}))
        .await;
    assert_eq!(p.body["paused"], true);
    d.clock.set(at("2026-12-01T12:00:00+08:00"));
    tick(&d).await;
    assert!(
        occurrences(&d, id).await.is_empty(),
        "a paused duty does not fire"
    );
    let r = d
        .post(&format!("/v1/duties/{id}/resume"), &d.admin, json!({}))
        .await;
    assert_eq!(r.body["paused"], false);
    tick(&d).await;
    assert!(
        occurrences(&d, id).await.is_empty(),
        "resuming does not run what was missed while paused"
    );

    // Trigger now: queued for the loop (202), which runs it.
    let resp = d
        .client
        .post(format!("{}/v1/duties/{id}/trigger", d.url))
        .bearer_auth(&d.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let t: Value = resp.json().await.unwrap();
    assert_eq!(
        (t["trigger"].as_str(), t["status"].as_str()),
        (Some("manual"), Some("queued"))
    );
    tick(&d).await;
    let t = d.get(&location, &d.admin).await;
    assert_eq!(
        (
            t.body["trigger"].as_str(),
            t.body["status"].as_str(),
            t.body["tasks_created"].as_u64()
        ),
        (Some("manual"), Some("done"), Some(2)),
        "{:?}",
        t.body
    );

    // Backfill three days, twice: the second run creates nothing.
    let range = json!({"from": "2026-11-20T00:00:00+08:00", "to": "2026-11-22T23:59:59+08:00"});
    let b = d
        .post(
            &format!("/v1/duties/{id}/backfill"),
            &d.admin,
            range.clone(),
        )
        .await;
    assert_eq!(b.status, StatusCode::ACCEPTED, "{:?}", b.body);
    let queued: Vec<&str> = b
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(queued, ["queued", "queued", "queued"]);
    tick(&d).await;
    let again = d
        .post(&format!("/v1/duties/{id}/backfill"), &d.admin, range)
        .await;
    let created: Vec<u64> = again
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["tasks_created"].as_u64().unwrap())
        .collect();
    assert_eq!(
        created,
        [2, 2, 2],
        "the occurrences are reported as they were, not run again"
    );
    let tasks = d
        .get(&format!("/v1/tasks?duty={id}&limit=100"), &d.admin)
        .await;
    assert_eq!(tasks.body["items"].as_array().unwrap().len(), 8);

    // Preview, and a station sees only its own community's tasks.
    let pv = d
        .get(&format!("/v1/duties/{id}/preview?count=2"), &d.admin)
        .await;
    assert_eq!(
        pv.body["fire_times"],
        json!(["2026-12-02T09:00:00+08:00", "2026-12-03T09:00:00+08:00"])
    );
    let s = d.token(&format!("station:{}", w.stations[0])).await;
    let mine = d.get("/v1/tasks?limit=100", &s).await;
    let communities: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["community"].as_str().unwrap())
        .collect();
    assert_eq!(communities.len(), 4);
    assert!(communities.iter().all(|c| *c == "620802001001"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_past_due_become_overdue_with_an_event() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "steady").await;
    let id = duty(&d, daily("none", 7)).await;
    d.post(&format!("/v1/duties/{id}/trigger"), &d.admin, json!({}))
        .await;
    tick(&d).await;
    // steady's tasks are due a week after the occurrence: 6 December 09:00.
    d.clock.set(at("2026-12-06T08:59:00+08:00"));
    tick(&d).await;
    let open = d
        .get(&format!("/v1/tasks?duty={id}&status=overdue"), &d.admin)
        .await;
    assert!(open.body["items"].as_array().unwrap().is_empty());
    d.clock.set(at("2026-12-06T09:00:01+08:00"));
    tick(&d).await;
    let overdue = d
        .get(
            &format!("/v1/tasks?duty={id}&status=overdue&limit=100"),
            &d.admin,
        )
        .await;
    let manual: Vec<&Value> = overdue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["scheduled_at"] == "2026-11-29T01:00:00Z")
        .collect();
    assert_eq!(manual.len(), 2);
    let events = d.get("/v1/events", &d.admin).await;
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().filter(|k| **k == "task.overdue").count() >= 2,
        "{kinds:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_plugin_is_recorded_on_the_occurrence() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "panicker").await;
    let id = duty(
        &d,
        json!({"name": "bad", "plugin": "panicker", "action": "visit", "cron": "0 9 * * *",
        "selector": {"region": "620802000000", "categories": ["special_difficulty_elder"]}}),
    )
    .await;
    for _ in 0..4 {
        let o = d
            .post(&format!("/v1/duties/{id}/trigger"), &d.admin, json!({}))
            .await;
        assert_eq!(o.body["status"], "queued");
        tick(&d).await;
        let at = DateTime::parse_from_rfc3339(o.body["scheduled_at"].as_str().unwrap()).unwrap();
        let o = d
            .get(
                &format!("/v1/duties/{id}/occurrences/{}", at.timestamp()),
                &d.admin,
            )
            .await;
        assert_eq!(o.body["status"], "failed");
        assert!(
            o.body.get("next_retry").is_none(),
            "a manual trigger is not retried"
        );
        d.clock.advance(Duration::seconds(5));
    }
    let duty_now = d.get(&format!("/v1/duties/{id}"), &d.admin).await;
    assert!(
        duty_now.body["last_error"]
            .as_str()
            .unwrap()
            .contains("quarantined"),
        "{:?}",
        duty_now.body
    );
    let occ = occurrences(&d, id).await;
    assert!(
        occ.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("checklist table is corrupt")
    );
    assert!(
        occ[0]["error"].as_str().unwrap().contains("quarantined"),
        "{}",
        occ[0]["error"]
    );
    // Bad duties are refused with the field named.
    for (body, field) in [
        (
            json!({"name": "x", "plugin": "steady", "action": "visit", "cron": "0 9 31 2 *", "selector": {"region": "620802000000"}}),
            "cron",
        ),
        (
            json!({"name": "x", "plugin": "steady", "action": "visit", "time_zone": "Mars/Olympus", "selector": {"region": "620802000000"}}),
            "time_zone",
        ),
        (
            json!({"name": "x", "plugin": "nope", "action": "visit", "selector": {"region": "620802000000"}}),
            "plugin",
        ),
        (
            json!({"name": "x", "plugin": "panicker", "action": "fly", "selector": {"region": "620802000000"}}),
            "action",
        ),
        (
            json!({"name": "x", "plugin": "panicker", "action": "visit", "selector": {"region": "620899000000"}}),
            "selector.region",
        ),
    ] {
        let r = d.post("/v1/duties", &d.admin, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
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
    d.stop().await;
}

/// A duty dry run says what the duty would select and draft, and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_shows_categories_targets_and_a_sample_draft_and_creates_nothing() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "steady").await;
    let body = json!({"name": "visits", "plugin": "steady", "action": "visit", "cron": "0 9 1 * *",
                      "selector": {"region": "620802000000"}});
    let r = d.post("/v1/duties/dry-run", &d.admin, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["categories"], json!(["special_difficulty_elder"]));
    assert_eq!(r.body["targets"], 2);
    assert_eq!(r.body["drafts"], 2);
    // Planned for the next fire (1 December 09:00 in Shanghai), not for now.
    assert_eq!(r.body["scheduled_at"], "2026-12-01T01:00:00Z");
    assert_eq!(r.body["sample"]["draft"]["kind"], "visit");
    assert_eq!(r.body["sample"]["checklist"][0]["id"], "ok");
    assert!(
        d.get("/v1/duties", &d.admin).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        d.get("/v1/tasks", &d.admin).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A selector that names no people finds none, and says so before anything is created.
    let r = d
        .post(
            "/v1/duties/dry-run",
            &d.admin,
            json!({"name": "x", "plugin": "steady", "action": "visit",
                   "selector": {"region": "620802000000", "categories": ["veteran"]}}),
        )
        .await;
    assert_eq!(r.body["targets"], 0, "{:?}", r.body);
    assert_eq!(r.body["drafts"], 0);
    assert!(r.body["sample"].is_null());
    // Created, a duty shows the categories it selects (here the action's own).
    let id = duty(&d, body).await;
    let got = d.get(&format!("/v1/duties/{id}"), &d.admin).await;
    assert_eq!(got.body["categories"], json!(["special_difficulty_elder"]));
    let list = d.get("/v1/duties", &d.admin).await;
    assert_eq!(
        list.body["items"][0]["categories"],
        json!(["special_difficulty_elder"])
    );
    let r = d
        .post(
            "/v1/duties/dry-run",
            &d.admin,
            json!({"name": "x", "plugin": "steady", "action": "visit",
                   "selector": {"region": "620802000000", "categories": ["veterans"]}}),
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    d.stop().await;
}
