//! Guards the exactly-once promise across a hard crash: `linlid serve` is killed with SIGKILL
//! in the middle of a large occurrence, started again, and must end with exactly one task per
//! target — nothing lost, nothing twice.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use linli::api::auth::{Scope, create_token};
use linli::registry::import::{self, ImportOptions, Kind};
use linli::registry::service::Everything;
use linli::store::{OpenOptions, Store};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `linlid serve`, killed (SIGKILL) and reaped when dropped, so a failing test
/// leaves no daemon behind.
struct Running(Child);

impl Running {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(config: &std::path::Path) -> Running {
    Running(spawn(config))
}

fn spawn(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_linlid"))
        .args(["serve", "--config"])
        .arg(config)
        // Small transactions, so the kill lands between two of them.
        .env("LINLI_TASK_CHUNK", "250")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

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
async fn a_sigkill_mid_occurrence_loses_nothing_and_duplicates_nothing() {
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
        };
        let report = import::import_file(&store, &csv, &opts, &mut |_| {}).unwrap();
        assert_eq!(report.imported, 24_000);
        create_token(&store, &Scope::Admin, None, now).unwrap()
    };
    let port = free_port();
    let config = dir.path().join("linli.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlog_format = \"json\"\n"),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut daemon = serve(&config);
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

    // Trigger a large occurrence and kill the daemon once some, not all, tasks are written.
    let trigger = {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/v1/duties/{id}/trigger"))
                .bearer_auth(&token)
                .send()
                .await
        })
    };
    let occurrences = format!("{url}/v1/duties/{id}/occurrences");
    let deadline = Instant::now() + Duration::from_secs(120);
    let written_at_kill = loop {
        assert!(
            Instant::now() < deadline,
            "the occurrence never started writing"
        );
        if let Ok(resp) = client.get(&occurrences).bearer_auth(&token).send().await
            && let Ok(page) = resp.json::<Value>().await
            && let Some(o) = page["items"].get(0)
        {
            assert_ne!(
                o["status"], "done",
                "the occurrence finished before the kill: make it bigger"
            );
            let written = o["tasks_created"].as_u64().unwrap_or(0);
            if o["status"] == "planning" && written > 0 {
                daemon.kill();
                break written;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = trigger.await;

    // Start again: the interrupted occurrence is finished.
    drop(daemon);
    let _daemon = serve(&config);
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
