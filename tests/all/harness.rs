//! Starts the daemon in-process on 127.0.0.1:0 over a temporary data folder, with a small
//! registry: two counties, stations on both sides of a boundary, persons in each.

use std::path::{Path, PathBuf};
use std::time::Duration;

use linli::api::AppState;
use linli::api::auth::{Scope, create_token};
use linli::clock::{Clock, ManualClock};
use linli::store::{OpenOptions, Store};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub fn clock() -> std::sync::Arc<ManualClock> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-29T09:00:00+08:00")
        .unwrap()
        .to_utc();
    std::sync::Arc::new(ManualClock::new(start))
}

pub struct Daemon {
    pub url: String,
    pub clock: std::sync::Arc<ManualClock>,
    pub scheduler: std::sync::Arc<linli::schedule::Scheduler>,
    pub admin: String,
    pub dir: TempDir,
    pub client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Daemon {
    pub async fn start() -> Daemon {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    pub fn db_path(dir: &Path) -> PathBuf {
        dir.join("linli.redb")
    }

    pub async fn start_in(dir: TempDir) -> Daemon {
        Self::start_in_at(dir, None).await
    }

    /// Starts with notifications allowed to reach receivers on this machine (the tests' own).
    pub async fn start_notifying(cfg: linli::config::NotifyConfig) -> Daemon {
        Self::start_with(tempfile::tempdir().unwrap(), None, Some(cfg)).await
    }

    /// Starts over a data folder with the clock at `at` (a restart after a downtime).
    pub async fn start_in_at(dir: TempDir, at: Option<chrono::DateTime<chrono::Utc>>) -> Daemon {
        Self::start_with(dir, at, None).await
    }

    pub async fn start_with(
        dir: TempDir,
        at: Option<chrono::DateTime<chrono::Utc>>,
        notify: Option<linli::config::NotifyConfig>,
    ) -> Daemon {
        let store = Store::open(&Self::db_path(dir.path()), OpenOptions::default()).unwrap();
        let clock = clock();
        if let Some(at) = at {
            clock.set(at);
        }
        let admin = create_token(&store, &Scope::Admin, None, clock.now()).unwrap();
        let mut state = AppState::new(store, clock.clone()).unwrap();
        if let Some(cfg) = notify {
            state.set_notify(cfg).unwrap();
        }
        let scheduler = state.scheduler.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(linli::server::run(
            listener,
            state,
            async {
                let _ = rx.await;
            },
            linli::server::ServeOptions {
                // The tests drive the scheduler with `tick` and their own clock.
                scheduler: false,
                ..linli::server::ServeOptions::new(Duration::from_secs(5))
            },
        ));
        Daemon {
            url,
            clock,
            scheduler,
            admin,
            dir,
            client: Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the daemon gracefully and hands back its data folder.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        // The store closes when the server's state is dropped with its task.
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let method_name = method.as_str().to_owned();
        let method_name = method_name.as_str();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        Self::reply_to(method_name, resp).await
    }

    /// The reply to a request made by hand, checked against the OpenAPI document like every
    /// reply the harness hands out.
    pub async fn reply_to(method: &str, resp: reqwest::Response) -> Reply {
        let path = resp.url().path().to_owned();
        let reply = Self::reply_unchecked(resp).await;
        crate::conformance::check(
            method,
            &path,
            reply.status.as_u16(),
            &reply.content_type,
            &reply.body,
        );
        reply
    }

    /// A reply not checked against the document (for answers that are meant to be outside it).
    pub async fn reply_unchecked(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }

    /// The Prometheus text of `/metrics`, read with the admin token.
    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics", &self.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body.as_str().unwrap().to_owned()
    }

    /// Creates a token through the API.
    pub async fn token(&self, scope: &str) -> String {
        let r = self
            .post("/v1/tokens", &self.admin, json!({"scope": scope}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a record and returns it, failing the test on anything but 201.
    pub async fn created(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, &self.admin, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {:?}", r.body);
        r.body
    }
}

/// A valid resident ID for a birth year and sequence.
pub fn rid(year: i32, seq: u16) -> String {
    linli::registry::resident_id::make(
        "620802",
        chrono::NaiveDate::from_ymd_opt(year, 6, 15).unwrap(),
        seq,
    )
}

pub fn elder(community: &str, seq: u16) -> Value {
    json!({
        "name": "张桂兰",
        "resident_id": rid(1940, seq),
        "phone": "13909331234",
        "community": community,
        "location": {"lat": 35.54, "lon": 106.66},
        "categories": ["special_difficulty_elder"],
        "circumstances": ["living_alone", "advanced_age"],
        "household": {"living": "alone", "size": 1},
        "needs": ["meals"]
    })
}

pub fn volunteer(station: u64, seq: u16) -> Value {
    json!({
        "name": "王明",
        "resident_id": rid(1990, seq),
        "phone": "13800001111",
        "station": station,
        "skills": ["first_aid", "elder_care"],
        "certifications": [{"name": "红十字救护员证", "skill": "first_aid", "expires_on": "2027-06-30"}],
        "safeguarding": {"expires_on": "2027-12-31"},
        "availability": [{"day": "sat", "start": "09:00", "end": "12:00"}],
        "home": {"lat": 35.55, "lon": 106.67},
        "monthly_capacity": 6,
        "languages": ["普通话", "平凉话"]
    })
}

/// The fixture: city 620800; county 620802 with township 001 and communities 001, 002;
/// county 620821 with township 001 and community 001. Station 1 serves 620802001001,
/// station 2 serves 620802001002, station 3 serves 620821001001.
pub struct World {
    pub stations: [u64; 3],
    /// Persons in 620802001001, 620802001002, 620821001001.
    pub persons: [u64; 3],
}

pub async fn world(d: &Daemon) -> World {
    for (code, name) in [
        ("620800000000", "平凉市"),
        ("620802000000", "崆峒区"),
        ("620802001000", "东关街道"),
        ("620802001001", "新民路社区"),
        ("620802001002", "广场社区"),
        ("620821000000", "泾川县"),
        ("620821001000", "城关镇"),
        ("620821001001", "城关社区"),
    ] {
        d.created("/v1/regions", json!({"code": code, "name": name}))
            .await;
    }
    let mut stations = [0; 3];
    for (i, (township, community)) in [
        ("620802001000", "620802001001"),
        ("620802001000", "620802001002"),
        ("620821001000", "620821001001"),
    ]
    .into_iter()
    .enumerate()
    {
        let s = d
            .created(
                "/v1/stations",
                json!({
                    "name": format!("工作站{i}"),
                    "township": township,
                    "communities": [community],
                    "contact": {"name": "李华", "phone": "0933-8211234"}
                }),
            )
            .await;
        stations[i] = s["id"].as_u64().unwrap();
    }
    let mut persons = [0; 3];
    for (i, c) in ["620802001001", "620802001002", "620821001001"]
        .into_iter()
        .enumerate()
    {
        let p = d.created("/v1/persons", elder(c, 100 + i as u16)).await;
        persons[i] = p["id"].as_u64().unwrap();
    }
    World { stations, persons }
}

/// A real `linlid serve`, killed and reaped if the test fails before it exits.
pub struct Serving(pub std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `linlid serve --config FILE` (which should listen on port 0 and log JSON) and waits
/// for the address it bound, which it logs: no port is picked in advance, so none can be taken
/// by someone else meanwhile.
pub fn serve_process(config: &Path) -> (Serving, String) {
    serve_process_with(config, &[])
}

/// As `serve_process`, with extra environment variables.
pub fn serve_process_with(config: &Path, env: &[(&str, &str)]) -> (Serving, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let serving = Serving(child);
    let mut lines = std::io::BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("linlid ended before logging its address")
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "linlid serving" {
            break v["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (serving, address)
}

/// An instant from RFC 3339.
pub fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Deploys a test fixture plugin over HTTP as the administrator.
pub async fn deploy(d: &Daemon, name: &str) {
    let resp = d
        .client
        .post(format!("{}/v1/plugins", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/wasm")
        .body(crate::wasm::fixture(name))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// One scheduler tick at the harness clock's time, off the async executor.
pub async fn tick(d: &Daemon) {
    let s = d.scheduler.clone();
    tokio::task::spawn_blocking(move || s.tick().unwrap())
        .await
        .unwrap();
}

/// A one-off task (接诉即办) for `person`, due within the week.
pub fn one_off(person: u64, priority: &str) -> Value {
    json!({
        "kind": "phone-request",
        "title": {"zh": "接诉即办：送药", "en": "Phone request: deliver medicine"},
        "target": {"type": "person", "id": person},
        "due_start": "2026-12-01T09:00:00+08:00",
        "due_end": "2026-12-08T18:00:00+08:00",
        "priority": priority,
        "requirements": {"skills": [], "clearances": [], "team_size": 1, "gender": null,
                         "max_distance_km": 20.0, "languages": [], "roles": []}
    })
}
