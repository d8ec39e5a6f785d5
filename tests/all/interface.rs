//! Interface versions side by side: a plugin built for `linli:plugin@0.1.0` (straight from the
//! 0.1 WIT, no SDK) and ones built for 0.2 run in one daemon; 0.2's configuration schemas are
//! checked when a configuration is set and by `linlid plugin check`; choice labels and
//! conditions reach the reports.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

async fn upload(d: &Daemon, bytes: Vec<u8>) -> Reply {
    let resp = d
        .client
        .post(format!("{}/v1/plugins", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    Daemon::reply_to("POST", resp).await
}

fn shipped(name: &str) -> Vec<u8> {
    linli::plugins::SHIPPED
        .iter()
        .find(|(n, _)| n.trim_end_matches(".wasm") == name)
        .map(|(_, b)| b.to_vec())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_plugin_and_0_2_plugins_run_side_by_side() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let r = upload(&d, crate::wasm::fixture("legacy-v01")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    deploy(&d, "steady").await;
    let legacy = d.get("/v1/plugins/legacy", &d.admin).await;
    assert_eq!(
        legacy.body["description"]["interface"], "0.1.0",
        "{:?}",
        legacy.body
    );
    let steady = d.get("/v1/plugins/steady", &d.admin).await;
    assert_eq!(
        steady.body["description"]["interface"], "0.2.0",
        "{:?}",
        steady.body
    );
    // Both plan an occurrence through the scheduler, each in its own version's types.
    for plugin in ["legacy", "steady"] {
        let r = d
            .post(
                "/v1/duties",
                &d.admin,
                json!({"name": plugin, "plugin": plugin, "action": "visit", "cron": "0 9 1 * *",
                       "selector": {"region": "620802001001"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{plugin}: {:?}", r.body);
        let duty = r.body["id"].as_u64().unwrap();
        d.post(&format!("/v1/duties/{duty}/trigger"), &d.admin, json!({}))
            .await;
        tick(&d).await;
        let tasks = d.get(&format!("/v1/tasks?duty={duty}"), &d.admin).await;
        let items = tasks.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{plugin}: {:?}", tasks.body);
        let task = d
            .get(&format!("/v1/tasks/{}", items[0]["id"]), &d.admin)
            .await;
        assert_eq!(
            task.body["questions"][0]["id"], "ok",
            "{plugin}: {:?}",
            task.body
        );
    }
    // The 0.1 plugin reviews a report through its own interface.
    let r = d
        .post(
            "/v1/plugins/legacy/review",
            &d.admin,
            json!({
                "task": {"id": 1, "kind": "visit",
                         "target": {"type": "person", "id": w.persons[0], "community": "620802001001",
                                    "age": 86, "gender": "female", "categories": ["special_difficulty_elder"],
                                    "circumstances": [], "disability": null, "living": null,
                                    "has_guardian": false, "needs": []},
                         "due_start": "2026-12-01T09:00:00+08:00", "due_end": "2026-12-08T18:00:00+08:00",
                         "checklist": [{"id": "ok", "question": {"zh": "好？", "en": "OK?"}, "kind": "yes_no",
                                        "choices": [], "required": true}]},
                "report": {"visited_at": "2026-12-02T10:00:00+08:00", "duration_minutes": 30,
                           "reached": false, "answers": [], "notes": ""}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["outcome"]["outcome"], "rejected", "{:?}", r.body);
    // `linlid plugin check` names each one's version.
    let dir = tempfile::tempdir().unwrap();
    for (fixture, version) in [("legacy-v01", "0.1.0"), ("steady", "0.2.0")] {
        let file = dir.path().join(format!("{fixture}.wasm"));
        std::fs::write(&file, crate::wasm::fixture(fixture)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
            .args(["plugin", "check"])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{fixture}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&format!("linli:plugin@{version}")), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_that_does_not_fit_the_schema_is_refused_naming_the_field() {
    let d = Daemon::start().await;
    let r = upload(&d, shipped("elderly-visit")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["description"]["config_schema"]["properties"]["weekly_window_days"].is_object());
    for (config, says) in [
        (
            json!({"weekly_window_days": 45}),
            "config.weekly_window_days must be at most 7 (it is 45)",
        ),
        (
            json!({"window": 45}),
            "config.window is not a setting of this plugin",
        ),
        (
            json!({"max_distance_km": "far"}),
            "config.max_distance_km must be number",
        ),
        (
            json!({"extra_questions": [["q1", "问题"]]}),
            "config.extra_questions[0] must have at least 3 entries",
        ),
    ] {
        let r = d
            .patch(
                "/v1/plugins/elderly-visit",
                &d.admin,
                json!({"config": config}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{config}: {:?}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(says),
            "{config}: {:?}",
            r.body
        );
    }
    let stored = d.get("/v1/plugins/elderly-visit", &d.admin).await;
    assert_eq!(
        stored.body["config"],
        json!({}),
        "nothing refused was stored"
    );
    let r = d
        .patch(
            "/v1/plugins/elderly-visit",
            &d.admin,
            json!({"config": {"weekly_window_days": 5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["config"]["weekly_window_days"], 5);
    // `linlid plugin check --config` checks a file against the same schema.
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("elderly-visit.wasm");
    std::fs::write(&wasm, shipped("elderly-visit")).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"weekly_window_days": 45}"#).unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"weekly_window_days": 4, "max_distance_km": 8.5}"#,
    )
    .unwrap();
    let check = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
            .args(["plugin", "check"])
            .arg(&wasm)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    };
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("config.weekly_window_days must be at most 7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fits the schema"));
}

#[tokio::test(flavor = "multi_thread")]
async fn choice_labels_and_conditional_questions_reach_the_report() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let mut v = volunteer(w.stations[0], 901);
    v["home"] = json!({"lat": 35.541, "lon": 106.661});
    let vid = d.created("/v1/volunteers", v).await["id"].as_u64().unwrap();
    let token = d.token(&format!("volunteer:{vid}")).await;
    deploy(&d, "labelled").await;
    // The schema is the plugin's, here too.
    let r = d
        .patch(
            "/v1/plugins/labelled",
            &d.admin,
            json!({"config": {"window_days": 99}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "fraud", "plugin": "labelled", "action": "visit", "cron": "0 9 1 * *",
                   "selector": {"region": "620802001001"}}),
        )
        .await;
    let duty = r.body["id"].as_u64().unwrap();
    d.clock.set(at("2026-12-05T09:00:00+08:00"));
    d.post(&format!("/v1/duties/{duty}/trigger"), &d.admin, json!({}))
        .await;
    tick(&d).await;
    let task = d
        .get(&format!("/v1/tasks?duty={duty}"), &d.admin)
        .await
        .body["items"][0]["id"]
        .as_u64()
        .unwrap();
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_eq!(
        t.body["questions"][0]["choice_labels"][0]["zh"], "诈骗",
        "{:?}",
        t.body
    );
    assert_eq!(
        t.body["questions"][2]["required_when"],
        json!({"item": "harmed", "equals": "yes"})
    );
    d.post(&format!("/v1/tasks/{task}/accept"), &token, json!({}))
        .await;
    d.post(&format!("/v1/tasks/{task}/check-in"), &token, json!({}))
        .await;
    d.clock.advance(chrono::Duration::minutes(30));
    d.post(&format!("/v1/tasks/{task}/check-out"), &token, json!({}))
        .await;
    let path = format!("/v1/tasks/{task}/reports");
    // Hurt, and the injuries not described: refused by field before the plugin is asked.
    let r = d
        .post(
            &path,
            &token,
            json!({"reached": true, "answers": [
            {"item": "kind", "value": "诈骗"}, {"item": "harmed", "value": "是"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.body
            .to_string()
            .contains("injuries must be answered, since harmed is yes"),
        "{:?}",
        r.body
    );
    // Not hurt: no more to say; the label 诈骗 is stored as the choice it names.
    let r = d
        .post(
            &path,
            &token,
            json!({"reached": true, "answers": [
            {"item": "kind", "value": "诈骗"}, {"item": "harmed", "value": "否"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    assert_eq!(
        r.body["answers"][0],
        json!({"item": "kind", "value": "fraud"})
    );
}
