//! Guards the exactly-once promise across a hard crash: `linlid serve` dies (an abort at a
//! failpoint after its third committed chunk: a real process death, placed deterministically) in
//! the middle of a large occurrence, is started again, and must end with exactly one task per
//! target — nothing lost, nothing twice.

use std::time::{Duration, Instant};

use linli::api::auth::{Scope, create_token};
use linli::registry::import::{self, ImportOptions, Kind};
use linli::service::Everything;
use linli::store::{OpenOptions, Store};
use serde_json::{Value, json};

use crate::harness::{serve_process, serve_process_with};

async fn wait_healthy(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("linlid did not become healthy");
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_death_mid_occurrence_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = {
        let store = Store::open(&data.join("linli.redb"), OpenOptions::default()).unwrap();
        let now = linli::clock::Clock::now(&linli::clock::SystemClock);
        let csv = dir.path().join("persons.csv");
        linli::demo::bench_fixture(&store, &csv, 24_000, now).unwrap();
        let opts = ImportOptions {
            kind: Kind::Persons,
            skip_invalid: false,
            guard: &Everything,
            now,
            cancel: None,
        };
        let report = import::import_file(&store, &csv, &opts, &mut |_| {}).unwrap();
        assert_eq!(report.imported, 24_000);
        create_token(&store, &Scope::Admin, None, now).unwrap()
    };
    let config = dir.path().join("linli.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let client = reqwest::Client::new();

    // Small transactions, and an abort (a real process death) right after the third commits:
    // the death lands mid-occurrence, on every machine.
    let (mut daemon, address) = serve_process_with(
        &config,
        &[
            ("LINLI_TASK_CHUNK", "250"),
            ("LINLI_ABORT_AFTER_CHUNKS", "3"),
        ],
    );
    let url = format!("http://{address}");
    wait_healthy(&client, &url).await;
    let r = client
        .post(format!("{url}/v1/plugins"))
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(linli::plugins::SHIPPED[0].1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let duty: Value = client
        .post(format!("{url}/v1/duties"))
        .bearer_auth(&token)
        .json(&json!({"name": "月探访", "plugin": "elderly-visit", "action": "monthly-visit", "cron": "0 9 1 1 *",
            "selector": {"region": "620802000000"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = duty["id"].as_u64().unwrap();
    let trigger = client
        .post(format!("{url}/v1/duties/{id}/trigger"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(trigger.status(), 202);
    let exited = tokio::task::spawn_blocking(move || {
        for _ in 0..12_000 {
            if let Some(status) = daemon.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    })
    .await
    .unwrap()
    .expect("the daemon did not die at its failpoint");
    assert!(!exited.success(), "{exited}");
    let written_at_kill = {
        let store = Store::open(&data.join("linli.redb"), OpenOptions::default()).unwrap();
        let occ = store.read(|r| r.occurrences_of(id, i64::MAX, 10)).unwrap();
        assert_eq!(occ.items.len(), 1);
        assert_eq!(
            occ.items[0].status,
            linli::schedule::OccurrenceStatus::Planning
        );
        occ.items[0].tasks_created
    };
    assert_eq!(written_at_kill, 750, "three chunks of 250 were committed");
    // Start again: the interrupted occurrence is finished.
    let (_daemon, address) = serve_process(&config);
    let url = format!("http://{address}");
    let occurrences = format!("{url}/v1/duties/{id}/occurrences");
    wait_healthy(&client, &url).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let occurrence = loop {
        let page = get(&client, &occurrences, &token).await;
        let o = page["items"][0].clone();
        if o["status"] == "done" {
            break o;
        }
        assert!(
            Instant::now() < deadline,
            "the interrupted occurrence was not finished: {o}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let planned = occurrence["planned"].as_u64().unwrap();
    assert!(
        written_at_kill < planned,
        "killed after {written_at_kill} of {planned}: {occurrence}"
    );
    assert_eq!(occurrence["targets"].as_u64(), Some(planned));

    // Exactly one task per target.
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("{url}/v1/tasks?duty={id}&limit=1000");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = get(&client, &q, &token).await;
        for t in page["items"].as_array().unwrap() {
            keys.push(t["key"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!((total, keys.len()), (planned as usize, planned as usize));
}
