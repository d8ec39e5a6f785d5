//! Notifications end to end, against receivers in the test on 127.0.0.1:0: signed webhooks
//! checked with an independent implementation (the `standardwebhooks` crate), retries under
//! the test's clock with one `webhook-id`, 410 disabling the endpoint, a station hearing only
//! its own communities, and the WeCom and DingTalk robot APIs (DingTalk's signature checked).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// One request a receiver got: headers, query and body.
type Received = (HeaderMap, HashMap<String, String>, String);

/// What a receiver got.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }
}

/// A receiver that answers each request with the next of `answers` (the last one repeats).
async fn receiver(answers: Vec<(u16, &'static str)>) -> (String, Inbox) {
    let inbox = Inbox::default();
    let count = Arc::new(Mutex::new(0usize));
    let app = axum::Router::new().fallback({
        let inbox = inbox.clone();
        move |headers: HeaderMap,
              axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
              body: String| {
            let inbox = inbox.clone();
            let count = count.clone();
            let answers = answers.clone();
            async move {
                inbox.0.lock().unwrap().push((headers, q, body));
                let mut n = count.lock().unwrap();
                let (status, text) = answers[(*n).min(answers.len() - 1)];
                *n += 1;
                (AxStatus::from_u16(status).unwrap(), text.to_owned())
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

/// Whether one of the `webhook-signature` entries is `secret`'s, as the independent
/// `standardwebhooks` crate signs (its `verify` also checks the timestamp against the real
/// clock, which the tests' clock is not).
fn signed_by(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let id = headers["webhook-id"].to_str().unwrap();
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let want = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, ts, body.as_bytes())
        .unwrap();
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == want)
}

fn local(base: &str) -> linli::config::NotifyConfig {
    linli::config::NotifyConfig {
        allow_private_addresses: true,
        allow_http: true,
        wecom_base: base.to_owned(),
        dingtalk_base: base.to_owned(),
        public_base_url: Some("https://linli.example.gov.cn".into()),
        ..Default::default()
    }
}

/// The newest message of an endpoint.
async fn newest(d: &Daemon, token: &str, endpoint: u64) -> u64 {
    for _ in 0..2400 {
        let page = d
            .get(&format!("/v1/endpoints/{endpoint}/messages?limit=1"), token)
            .await;
        if let Some(id) = page.body["items"][0]["id"].as_u64() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("endpoint {endpoint} has no message");
}

/// Waits until message `id`'s log holds `n` attempts.
async fn logged(d: &Daemon, id: u64, n: usize) {
    for _ in 0..2400 {
        let m = d.get(&format!("/v1/messages/{id}"), &d.admin).await;
        if m.body["attempts"].as_array().is_some_and(|a| a.len() >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {id} never logged {n} attempts");
}

/// Waits (in real time, generously) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..2400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn webhooks_are_signed_retried_under_one_id_and_only_for_their_station() {
    let (url, inbox) = receiver(vec![(500, "no"), (503, "busy"), (200, "ok")]).await;
    let (other_url, other_inbox) = receiver(vec![(200, "ok")]).await;
    let d = Daemon::start_notifying(local(&url)).await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let made = d
        .post(
            "/v1/endpoints",
            &station,
            json!({"owner": {"station": w.stations[0]}, "kind": "webhook",
                   "url": format!("{url}/hook"), "events": ["task.created"]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let secret = made.body["secret"].as_str().unwrap().to_owned();
    let endpoint = made.body["endpoint"]["id"].as_u64().unwrap();
    // The secret is never shown again.
    let read = d.get(&format!("/v1/endpoints/{endpoint}"), &station).await;
    assert!(!read.body.to_string().contains(&secret));
    // Another station's endpoint hears nothing of station 0's communities.
    let other = d.token(&format!("station:{}", w.stations[2])).await;
    let r = d
        .post(
            "/v1/endpoints",
            &other,
            json!({"owner": {"station": w.stations[2]}, "kind": "webhook",
                   "url": format!("{other_url}/hook")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // A station cannot make an endpoint for another one.
    let r = d
        .post(
            "/v1/endpoints",
            &other,
            json!({"owner": {"station": w.stations[0]}, "kind": "webhook", "url": format!("{url}/x")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let task = d
        .post("/v1/tasks", &station, one_off(w.persons[0], "urgent"))
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{:?}", task.body);
    let task_id = task.body["id"].as_u64().unwrap();

    // First attempt at once: 500.
    until("the first attempt", || inbox.len() >= 1).await;
    let first = newest(&d, &station, endpoint).await;
    logged(&d, first, 1).await;
    // The next comes 5 s later on the daemon's clock (±10%), not before.
    d.clock.advance(chrono::Duration::seconds(4));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(inbox.len(), 1, "retried too early");
    d.clock.advance(chrono::Duration::seconds(2));
    until("the second attempt", || inbox.len() >= 2).await;
    logged(&d, first, 2).await;
    // Then 5 minutes.
    d.clock.advance(chrono::Duration::seconds(331));
    until("the third attempt", || inbox.len() >= 3).await;

    let got = inbox.all();
    let ids: Vec<&str> = got
        .iter()
        .map(|(h, _, _)| h["webhook-id"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one id across retries: {ids:?}"
    );
    for (headers, _, body) in &got {
        assert!(signed_by(&secret, headers, body), "the signature verifies");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "task.created");
        assert_eq!(v["version"], 1);
        assert_eq!(v["data"]["task"]["id"], task_id);
        assert_eq!(
            v["data"]["task"]["url"],
            format!("https://linli.example.gov.cn/tasks/{task_id}")
        );
        assert!(!body.contains("620802194"), "no resident ID in a payload");
    }
    // The log shows three attempts and the delivery (once the outcome is written).
    logged(&d, first, 3).await;
    let msgs = d
        .get(&format!("/v1/endpoints/{endpoint}/messages"), &station)
        .await;
    let m = &msgs.body["items"][0];
    assert_eq!(m["state"], "delivered", "{m}");
    let statuses: Vec<u64> = m["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 503, 200]);
    // The other station heard nothing of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(other_inbox.len(), 0);

    // Rotation: both secrets sign until the old one expires.
    let rot = d
        .post(
            &format!("/v1/endpoints/{endpoint}/rotate"),
            &station,
            json!({}),
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{:?}", rot.body);
    let new_secret = rot.body["secret"].as_str().unwrap().to_owned();
    let t = d
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            &station,
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::ACCEPTED, "{:?}", t.body);
    until("the test message", || inbox.len() >= 4).await;
    let (headers, _, body) = inbox.all().pop().unwrap();
    let sig = headers["webhook-signature"].to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    for s in [&secret, &new_secret] {
        assert!(
            signed_by(s, &headers, &body),
            "both secrets verify during the overlap"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_replay_sends_again() {
    let (url, inbox) = receiver(vec![(410, "gone"), (200, "ok")]).await;
    let d = Daemon::start_notifying(local(&url)).await;
    let w = world(&d).await;
    let made = d
        .post(
            "/v1/endpoints",
            &d.admin,
            json!({"owner": {"bureau": "620802000000"}, "kind": "webhook", "url": format!("{url}/h")}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let endpoint = made.body["endpoint"]["id"].as_u64().unwrap();
    let t = d
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            &d.admin,
            json!({}),
        )
        .await;
    let message = t.body["id"].as_u64().unwrap();
    until("the attempt", || inbox.len() >= 1).await;
    let e = d.get(&format!("/v1/endpoints/{endpoint}"), &d.admin).await;
    for _ in 0..100 {
        if d.get(&format!("/v1/endpoints/{endpoint}"), &d.admin)
            .await
            .body["enabled"]
            == false
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e2 = d.get(&format!("/v1/endpoints/{endpoint}"), &d.admin).await;
    assert_eq!(e2.body["enabled"], false, "{:?} {:?}", e.body, e2.body);
    assert!(e2.body["disabled_reason"].as_str().unwrap().contains("410"));
    // Events while disabled make no messages; enabling again and replaying sends the test.
    d.post("/v1/tasks", &d.admin, one_off(w.persons[0], "urgent"))
        .await;
    let r = d
        .patch(
            &format!("/v1/endpoints/{endpoint}"),
            &d.admin,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = d
        .post(
            &format!("/v1/messages/{message}/replay"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    until("the replay", || inbox.len() >= 2).await;
    let got = inbox.all();
    assert_eq!(got[0].0["webhook-id"], got[1].0["webhook-id"]);
    d.stop().await;
}

#[tokio::test]
async fn robots_get_chinese_markdown_and_dingtalk_is_signed() {
    let (base, inbox) = receiver(vec![
        (200, r#"{"errcode":130101,"errmsg":"send too fast"}"#),
        (200, r#"{"errcode":0,"errmsg":"ok"}"#),
    ])
    .await;
    let d = Daemon::start_notifying(local(&base)).await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let ding = d
        .post(
            "/v1/endpoints",
            &station,
            json!({"owner": {"station": w.stations[0]}, "kind": "dingtalk",
                   "url": format!("{base}/robot/send?access_token=tok123"),
                   "secret": "SECabc123"}),
        )
        .await;
    assert_eq!(ding.status, StatusCode::CREATED, "{:?}", ding.body);
    assert!(ding.body["secret"].is_null());
    // The robot's token is not shown whole.
    assert!(
        !ding.body["endpoint"]["url"]
            .as_str()
            .unwrap()
            .contains("tok123")
    );
    // A robot URL elsewhere is refused, naming what it must look like.
    let bad = d
        .post(
            "/v1/endpoints",
            &station,
            json!({"owner": {"station": w.stations[0]}, "kind": "wecom",
                   "url": "https://evil.example/cgi-bin/webhook/send?key=1"}),
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        bad.body
    );
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("cgi-bin/webhook/send")
    );
    let id = ding.body["endpoint"]["id"].as_u64().unwrap();
    let t = d
        .post(&format!("/v1/endpoints/{id}/test"), &station, json!({}))
        .await;
    until("the first attempt", || inbox.len() >= 1).await;
    logged(&d, t.body["id"].as_u64().unwrap(), 1).await;
    // Rate limited (DingTalk blocks a robot for ten minutes): the endpoint waits, and the
    // attempt does not count.
    d.clock.advance(chrono::Duration::seconds(590));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(inbox.len(), 1, "sent again during the pause");
    d.clock.advance(chrono::Duration::seconds(20));
    until("the second attempt", || inbox.len() >= 2).await;
    let (_, q, body) = inbox.all().pop().unwrap();
    let ts: i64 = q["timestamp"].parse().unwrap();
    // An independent DingTalk signature: HMAC-SHA256 over "ts\nsecret", base64.
    use base64::Engine;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"SECabc123").unwrap();
    mac.update(format!("{ts}\nSECabc123").as_bytes());
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(q["sign"], want);
    assert_eq!(q["access_token"], "tok123");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["msgtype"], "markdown");
    assert!(v["markdown"]["text"].as_str().unwrap().contains("测试消息"));
    // The receiver answered; wait for the outcome to be written before reading it.
    logged(&d, t.body["id"].as_u64().unwrap(), 2).await;
    let msgs = d
        .get(&format!("/v1/endpoints/{id}/messages"), &station)
        .await;
    let m = &msgs.body["items"][0];
    assert_eq!(m["state"], "delivered", "{m}");
    assert_eq!(m["tries"], 0, "a rate limit is not a failed attempt");
    d.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_an_exhausted_message_goes_dead() {
    let inbox = Inbox::default();
    let app = {
        // The first answer carries Retry-After: 3600 (a receiver's own maintenance window).
        let inbox = inbox.clone();
        let n = Arc::new(Mutex::new(0u32));
        axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let inbox = inbox.clone();
            let n = n.clone();
            async move {
                inbox
                    .0
                    .lock()
                    .unwrap()
                    .push((headers, HashMap::new(), body));
                let mut n = n.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    (
                        AxStatus::TOO_MANY_REQUESTS,
                        [("retry-after", "3600")],
                        "later",
                    )
                } else {
                    (
                        AxStatus::INTERNAL_SERVER_ERROR,
                        [("retry-after", "")],
                        "broken",
                    )
                }
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let d = Daemon::start_notifying(local(&own)).await;
    world(&d).await;
    let made = d
        .post(
            "/v1/endpoints",
            &d.admin,
            json!({"owner": {"bureau": "620802000000"}, "kind": "webhook", "url": format!("{own}/h")}),
        )
        .await;
    let endpoint = made.body["endpoint"]["id"].as_u64().unwrap();
    let t = d
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            &d.admin,
            json!({}),
        )
        .await;
    let message = t.body["id"].as_u64().unwrap();
    until("the first attempt", || inbox.len() >= 1).await;
    logged(&d, message, 1).await;
    // The schedule says 5 s; the receiver said an hour.
    d.clock.advance(chrono::Duration::minutes(59));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(inbox.len(), 1, "Retry-After was not honoured");
    d.clock.advance(chrono::Duration::minutes(2));
    until("the second attempt", || inbox.len() >= 2).await;
    // Every further step of the schedule (at most 24 h, plus 10% jitter), 27 hours at a time:
    // ten attempts in all, then dead.
    for n in 3..=10 {
        // Advance only once the last attempt is recorded (its retry is timed from then).
        logged(&d, message, n - 1).await;
        d.clock.advance(chrono::Duration::hours(27));
        until("the next attempt", || inbox.len() >= n).await;
    }
    let mut state = Value::Null;
    for _ in 0..100 {
        let m = d.get(&format!("/v1/messages/{message}"), &d.admin).await;
        state = m.body["state"].clone();
        if state == "dead" {
            assert_eq!(m.body["attempts"].as_array().unwrap().len(), 10);
            assert_eq!(m.body["last_error"], "HTTP 500");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "dead");
    d.clock.advance(chrono::Duration::hours(27));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(inbox.len(), 10, "a dead message is not retried");
    let metrics = d.metrics().await;
    assert!(metrics.contains("linli_notify_dead_total 1"), "{metrics}");
    // Replaying all failed since yesterday sends it again, same id.
    let r = d
        .post(
            &format!("/v1/endpoints/{endpoint}/replay"),
            &d.admin,
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["replayed"], 1);
    until("the replayed attempt", || inbox.len() >= 11).await;
    let got = inbox.all();
    assert_eq!(got[0].0["webhook-id"], got[10].0["webhook-id"]);
    d.stop().await;
}

/// A receiver that hangs (never answers) until `release` is set, then answers 200; it records
/// the ids it answered 200 to.
async fn hanging_receiver() -> (String, Arc<Mutex<bool>>, Inbox, Arc<Mutex<Vec<String>>>) {
    let release = Arc::new(Mutex::new(false));
    let seen = Inbox::default();
    let ok: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new().fallback({
        let (release, seen, ok) = (release.clone(), seen.clone(), ok.clone());
        move |headers: HeaderMap, body: String| {
            let (release, seen, ok) = (release.clone(), seen.clone(), ok.clone());
            async move {
                seen.0
                    .lock()
                    .unwrap()
                    .push((headers.clone(), HashMap::new(), body));
                while !*release.lock().unwrap() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                ok.lock().unwrap().push(id);
                (AxStatus::OK, "ok")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, release, seen, ok)
}

/// `linlid serve` SIGKILLed with deliveries in flight and queued, then started again: every
/// message is delivered; duplicates, if any, are redeliveries under the same id.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemon_delivers_everything_after_restart() {
    let (url, release, seen, ok) = hanging_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = {
        let store = linli::store::Store::open(
            &data.join("linli.redb"),
            linli::store::OpenOptions::default(),
        )
        .unwrap();
        let now = linli::clock::Clock::now(&linli::clock::SystemClock);
        linli::api::auth::create_token(&store, &linli::api::auth::Scope::Admin, None, now).unwrap()
    };
    let config = dir.path().join("linli.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nplugin_dir = \"{}\"\nlog_format = \"json\"\n\
             [notify]\nallow_private_addresses = true\nallow_http = true\n",
            data.display(),
            dir.path().join("plugins").display()
        ),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let (mut serving, address) = serve_process(&config);
    let base = format!("http://{address}");
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    for (code, name) in [
        ("620800000000", "平凉市"),
        ("620802000000", "崆峒区"),
        ("620802001000", "东关街道"),
        ("620802001001", "新民路社区"),
    ] {
        let r = call(
            reqwest::Method::POST,
            "/v1/regions",
            json!({"code": code, "name": name}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = call(
        reqwest::Method::POST,
        "/v1/stations",
        json!({"name": "工作站", "township": "620802001000", "communities": ["620802001001"],
               "contact": {"name": "李华", "phone": "0933-8211234"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let person: Value = call(
        reqwest::Method::POST,
        "/v1/persons",
        elder("620802001001", 100),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let made: Value = call(
        reqwest::Method::POST,
        "/v1/endpoints",
        json!({"owner": {"bureau": "620802000000"}, "kind": "webhook", "url": format!("{url}/h")}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let endpoint = made["endpoint"]["id"].as_u64().unwrap();
    // Twenty one-off tasks: each makes events (created, unstaffed) the bureau hears of.
    for _ in 0..20 {
        let r = call(
            reqwest::Method::POST,
            "/v1/tasks",
            one_off(person["id"].as_u64().unwrap(), "urgent"),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Deliveries are in flight (the receiver holds them): kill the daemon now.
    until("deliveries in flight", || seen.len() >= 1).await;
    serving.0.kill().unwrap();
    serving.0.wait().unwrap();
    *release.lock().unwrap() = true;
    let (_serving, address) = serve_process(&config);
    let base = format!("http://{address}");
    // Once nothing is pending, every message the daemon made was answered 200 under its id.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let page: Value = client
            .get(format!("{base}/v1/endpoints/{endpoint}/messages?limit=500"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        if !items.is_empty() && items.iter().all(|m| m["state"] == "delivered") {
            let mut want: Vec<String> = items
                .iter()
                .map(|m| m["webhook_id"].as_str().unwrap().to_owned())
                .collect();
            want.sort();
            let mut got: Vec<String> = ok.lock().unwrap().clone();
            got.sort();
            got.dedup();
            assert_eq!(got, want, "every message, and only these ids");
            assert!(want.len() >= 20, "{} messages", want.len());
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all delivered: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An occurrence's new tasks reach each station as one digest of its own communities (a robot
/// sees the community's name); another county's bureau hears nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_occurrence_digest_reaches_each_station_cut_to_its_communities() {
    let (url, inbox) = receiver(vec![(200, r#"{"errcode":0,"errmsg":"ok"}"#)]).await;
    let d = Daemon::start_notifying(local(&url)).await;
    let w = world(&d).await;
    let mut endpoints = Vec::new();
    for (owner, kind, path) in [
        (
            json!({"station": w.stations[0]}),
            "webhook",
            "/s0".to_owned(),
        ),
        (
            json!({"station": w.stations[1]}),
            "wecom",
            "/cgi-bin/webhook/send?key=s1".to_owned(),
        ),
        (
            json!({"bureau": "620821000000"}),
            "webhook",
            "/other-county".to_owned(),
        ),
    ] {
        let r = d
            .post(
                "/v1/endpoints",
                &d.admin,
                json!({"owner": owner, "kind": kind, "url": format!("{url}{path}"),
                       "events": ["occurrence.tasks"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        endpoints.push(r.body["endpoint"]["id"].as_u64().unwrap());
    }
    deploy(&d, "steady").await;
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
    tick(&d).await;
    until("two digests", || inbox.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = inbox.all();
    assert_eq!(
        got.len(),
        2,
        "one digest per station, none for the other county"
    );
    let tasks = d
        .get(&format!("/v1/tasks?duty={id}&limit=100"), &d.admin)
        .await;
    let mine: Vec<u64> = tasks.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["community"] == "620802001001")
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert!(!mine.is_empty());
    let webhook = got
        .iter()
        .find(|(h, _, _)| h.contains_key("webhook-id"))
        .expect("the station's webhook");
    let v: Value = serde_json::from_str(&webhook.2).unwrap();
    assert_eq!(v["type"], "occurrence.tasks");
    let communities = v["data"]["tasks"]["communities"].as_array().unwrap();
    assert_eq!(communities.len(), 1, "{v}");
    assert_eq!(communities[0]["community"], "620802001001");
    let ids: Vec<u64> = communities[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(ids, mine);
    let robot = got
        .iter()
        .find(|(h, _, _)| !h.contains_key("webhook-id"))
        .expect("the station's robot");
    let v: Value = serde_json::from_str(&robot.2).unwrap();
    let md = v["markdown"]["content"].as_str().unwrap();
    assert!(md.contains("广场社区"), "{md}");
    assert!(!md.contains("新民路社区"), "{md}");
    d.stop().await;
}

/// A robot whose address refuses connections: the log says why but never holds the robot's
/// key; disabling the endpoint stops every retry, and a disabled endpoint takes no test.
#[tokio::test]
async fn disabling_stops_retries_and_keys_never_reach_the_log() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let d = Daemon::start_notifying(local(&closed)).await;
    world(&d).await;
    let made = d
        .post(
            "/v1/endpoints",
            &d.admin,
            json!({"owner": {"bureau": "620802000000"}, "kind": "wecom",
                   "url": format!("{closed}/cgi-bin/webhook/send?key=SECRETKEY123456")}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert!(!made.body.to_string().contains("SECRETKEY123456"));
    let endpoint = made.body["endpoint"]["id"].as_u64().unwrap();
    let t = d
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            &d.admin,
            json!({}),
        )
        .await;
    let message = t.body["id"].as_u64().unwrap();
    // A second test at once is refused (one per 10 seconds).
    let again = d
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    logged(&d, message, 1).await;
    let m = d.get(&format!("/v1/messages/{message}"), &d.admin).await;
    let text = m.body.to_string();
    assert!(text.contains("could not reach the receiver"), "{text}");
    assert!(!text.contains("SECRETKEY"), "the key leaked: {text}");
    // Disabled: the pending message is given up and nothing more is tried.
    let r = d
        .patch(
            &format!("/v1/endpoints/{endpoint}"),
            &d.admin,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let m = d.get(&format!("/v1/messages/{message}"), &d.admin).await;
    assert_eq!(m.body["state"], "dead", "{:?}", m.body);
    d.clock.advance(chrono::Duration::hours(30));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = d.get(&format!("/v1/messages/{message}"), &d.admin).await;
    assert_eq!(m.body["attempts"].as_array().unwrap().len(), 1);
    let r = d
        .post(
            &format!("/v1/messages/{message}/replay"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    d.clock.advance(chrono::Duration::seconds(11));
    let r = d
        .post(
            &format!("/v1/endpoints/{endpoint}/test"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    d.stop().await;
}
