//! One owner per occurrence: one daemon per data folder, the scheduler loop as the only place
//! occurrences run (so overlapping triggers and ticks plan once), failed scheduled occurrences
//! retried, and a stop in the middle of an occurrence leaving it for the next start.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

async fn duty(d: &Daemon, plugin: &str) -> u64 {
    let r = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "daily", "plugin": plugin, "action": "visit", "cron": "0 9 * * *",
                "selector": {"region": "620802000000", "categories": ["special_difficulty_elder"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_u64().unwrap()
}

async fn occurrence(d: &Daemon, id: u64, at: DateTime<Utc>) -> Value {
    d.get(
        &format!("/v1/duties/{id}/occurrences/{}", at.timestamp()),
        &d.admin,
    )
    .await
    .body
}

async fn mode(d: &Daemon, mode: &str) {
    let r = d
        .patch(
            "/v1/plugins/misbehave",
            &d.admin,
            json!({"config": {"mode": mode}, "limits": {"deadline_ms": 60000, "memory_bytes": 67108864, "drafts_per_target": 16, "output_bytes": 1048576}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_triggers_and_ticks_plan_an_occurrence_once() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "steady").await;
    let id = duty(&d, "steady").await;
    let first = d
        .post(&format!("/v1/duties/{id}/trigger"), &d.admin, json!({}))
        .await;
    let second = d
        .post(&format!("/v1/duties/{id}/trigger"), &d.admin, json!({}))
        .await;
    assert_eq!(first.body["scheduled_at"], second.body["scheduled_at"]);
    assert_eq!(second.body["status"], "queued");
    // Two ticks at once (as a trigger overlapping the loop's own tick would be).
    let (a, b) = (d.scheduler.clone(), d.scheduler.clone());
    let (ra, rb) = tokio::join!(
        tokio::task::spawn_blocking(move || a.tick()),
        tokio::task::spawn_blocking(move || b.tick())
    );
    ra.unwrap().unwrap();
    rb.unwrap().unwrap();
    let occ = d
        .get(&format!("/v1/duties/{id}/occurrences"), &d.admin)
        .await;
    let items = occ.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0]["status"].as_str(),
            items[0]["tasks_created"].as_u64()
        ),
        (Some("done"), Some(2))
    );
    assert_eq!(items[0]["attempts"], 1);
    let plugin = d.get("/v1/plugins/steady", &d.admin).await;
    assert_eq!(plugin.body["stats"]["calls"], 1, "the plugin planned once");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_scheduled_occurrence_is_retried_and_the_duty_says_why() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "misbehave").await;
    mode(&d, "polite-error").await;
    let id = duty(&d, "misbehave").await;
    // The next morning's fire fails.
    let fire = at("2026-11-30T09:00:00+08:00");
    d.clock.set(at("2026-11-30T09:00:10+08:00"));
    tick(&d).await;
    let o = occurrence(&d, id, fire).await;
    assert_eq!(
        (
            o["status"].as_str(),
            o["trigger"].as_str(),
            o["attempts"].as_u64()
        ),
        (Some("failed"), Some("scheduled"), Some(1))
    );
    assert_eq!(o["next_retry"], "2026-11-30T01:01:10Z");
    let duty_now = d.get(&format!("/v1/duties/{id}"), &d.admin).await;
    assert!(
        duty_now.body["last_error"]
            .as_str()
            .unwrap()
            .contains("names no communities"),
        "{:?}",
        duty_now.body
    );
    assert_eq!(duty_now.body["next_retry"], "2026-11-30T01:01:10Z");
    // Still failing a minute later: backoff doubles.
    d.clock.set(at("2026-11-30T09:01:10+08:00"));
    tick(&d).await;
    let o = occurrence(&d, id, fire).await;
    assert_eq!(o["attempts"], 2);
    assert_eq!(o["next_retry"], "2026-11-30T01:03:10Z");
    // The plugin is fixed and resumed: the retry runs at once, not at its backoff time.
    mode(&d, "well").await;
    let r = d
        .post("/v1/plugins/misbehave/resume", &d.admin, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tick(&d).await;
    let o = occurrence(&d, id, fire).await;
    assert_eq!(
        (
            o["status"].as_str(),
            o["attempts"].as_u64(),
            o["tasks_created"].as_u64()
        ),
        (Some("done"), Some(3), Some(2)),
        "{o}"
    );
    let duty_now = d.get(&format!("/v1/duties/{id}"), &d.admin).await;
    assert!(
        duty_now.body.get("last_error").is_none(),
        "{:?}",
        duty_now.body
    );
    assert!(duty_now.body.get("next_retry").is_none());
    // One `occurrence.failed` event for the failure, not one per attempt.
    let events = d.get("/v1/events", &d.admin).await;
    let failed = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "occurrence.failed")
        .count();
    assert_eq!(failed, 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_mid_occurrence_leaves_it_for_the_next_start() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "misbehave").await;
    mode(&d, "sleep").await;
    let id = duty(&d, "misbehave").await;
    let queued = d
        .post(&format!("/v1/duties/{id}/trigger"), &d.admin, json!({}))
        .await;
    let fire = at(queued.body["scheduled_at"].as_str().unwrap());
    let s = d.scheduler.clone();
    let ticking = tokio::task::spawn_blocking(move || s.tick());
    // Wait until the plugin is mid-call (a ten-minute sleep against a one-minute deadline).
    loop {
        let p = d.get("/v1/plugins/misbehave", &d.admin).await;
        if p.body["stats"]["in_flight"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Stopping the daemon stops the occurrence: it stays pending, nothing is recorded failed.
    let dir = d.stop().await;
    ticking.await.unwrap().unwrap();
    let d = Daemon::start_in(dir).await;
    let o = occurrence(&d, id, fire).await;
    assert_eq!(o["status"], "planning", "{o}");
    assert!(o.get("error").is_none(), "{o}");
    mode(&d, "well").await;
    tick(&d).await;
    let o = occurrence(&d, id, fire).await;
    assert_eq!(
        (
            o["status"].as_str(),
            o["trigger"].as_str(),
            o["attempts"].as_u64(),
            o["tasks_created"].as_u64()
        ),
        (Some("done"), Some("manual"), Some(2), Some(2)),
        "{o}"
    );
    d.stop().await;
}

#[test]
fn a_second_daemon_on_one_data_folder_refuses_to_start_and_cli_tools_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("linli.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let (first, _address) = serve_process(&config);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("in use by another linlid (pid {})", first.0.id())),
        "{stderr}"
    );
    let token = std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
        .args(["token", "create", "--scope", "admin", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    drop(first);
    // The lock goes with the process, however it ended (this one was killed).
    let (again, _) = serve_process(&config);
    drop(again);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_plugin_delays_only_its_own_duty() {
    let d = Daemon::start().await;
    world(&d).await;
    deploy(&d, "steady").await;
    deploy(&d, "misbehave").await;
    mode(&d, "sleep").await;
    let slow = duty(&d, "misbehave").await;
    let quick = duty(&d, "steady").await;
    // The daemon's own loop (the harness drives ticks by hand elsewhere).
    let looping = tokio::spawn(d.scheduler.clone().run());
    let sleeping = d
        .post(&format!("/v1/duties/{slow}/trigger"), &d.admin, json!({}))
        .await;
    loop {
        let p = d.get("/v1/plugins/misbehave", &d.admin).await;
        if p.body["stats"]["in_flight"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // With the sleeper mid-call, the other duty's occurrence runs to the end.
    let queued = d
        .post(&format!("/v1/duties/{quick}/trigger"), &d.admin, json!({}))
        .await;
    let fire = at(queued.body["scheduled_at"].as_str().unwrap());
    let done = loop {
        let o = occurrence(&d, quick, fire).await;
        if o["status"] == "done" {
            break o;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(done["tasks_created"], 2);
    let slow_fire = at(sleeping.body["scheduled_at"].as_str().unwrap());
    assert_eq!(occurrence(&d, slow, slow_fire).await["status"], "planning");
    d.scheduler.shutdown();
    let dir = d.stop().await;
    looping.await.unwrap();
    drop(dir);
}
