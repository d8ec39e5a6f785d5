//! Records end to end: visit reports reviewed by the plugin (rejected, fixed, accepted,
//! corrected), follow-ups, service hours with late flags by China's working days, certificates
//! anyone can verify, ratings through one-time links, the coverage report against figures
//! worked out by hand, and the audit log.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

async fn kinds_of(d: &Daemon, task: u64) -> Vec<String> {
    let r = d.get("/v1/events?limit=1000", &d.admin).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["task"] == task)
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// A volunteer of `station` living next to the fixture's persons, with a token.
async fn helper(d: &Daemon, station: u64, seq: u16) -> (u64, String) {
    let mut v = volunteer(station, seq);
    v["home"] = json!({"lat": 35.541, "lon": 106.661});
    v["monthly_capacity"] = json!(20);
    let id = d.created("/v1/volunteers", v).await["id"].as_u64().unwrap();
    (id, d.token(&format!("volunteer:{id}")).await)
}

/// A steady visit task for the person in 620802001001, offered to the one volunteer there.
async fn steady_task(d: &Daemon) -> u64 {
    deploy(d, "steady").await;
    let r = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "visits", "plugin": "steady", "action": "visit", "cron": "0 9 1 * *",
                   "selector": {"region": "620802001001"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let duty = r.body["id"].as_u64().unwrap();
    d.post(&format!("/v1/duties/{duty}/trigger"), &d.admin, json!({}))
        .await;
    tick(d).await;
    let tasks = d
        .get(&format!("/v1/tasks?duty={duty}"), &d.admin)
        .await
        .body;
    assert_eq!(tasks["items"].as_array().unwrap().len(), 1, "{tasks:?}");
    assert_eq!(tasks["items"][0]["status"], "offered", "{tasks:?}");
    tasks["items"][0]["id"].as_u64().unwrap()
}

fn ok(answer: &str) -> Value {
    json!([{"item": "ok", "value": answer}])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_is_rejected_fixed_accepted_and_corrected_and_stays_with_its_station() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (me, token) = helper(&d, w.stations[0], 801).await;
    let task = steady_task(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let other_station = d.token(&format!("station:{}", w.stations[1])).await;
    let path = format!("/v1/tasks/{task}/reports");
    // The task shows the questions its report answers.
    let t = d.get(&format!("/v1/tasks/{task}"), &station).await;
    assert_eq!(t.body["questions"][0]["id"], "ok", "{:?}", t.body);
    assert_eq!(t.body["questions"][0]["kind"], "yes_no");

    let r = d
        .post(
            &path,
            &token,
            json!({"reached": true, "answers": ok("yes")}),
        )
        .await;
    // Not before the offer is accepted: an offer alone makes nobody a visitor.
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("accept the offer first")
    );
    let r = d
        .post(
            &path,
            &station,
            json!({"reached": true, "answers": ok("yes")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    d.post(&format!("/v1/tasks/{task}/accept"), &token, json!({}))
        .await;
    d.clock.set(at("2026-12-05T09:30:00+08:00"));
    let r = d
        .post(
            &format!("/v1/tasks/{task}/check-in"),
            &token,
            json!({"position": {"lat": 35.54, "lon": 106.66}}),
        )
        .await;
    assert_eq!(r.body["status"], "checked_in", "{:?}", r.body);

    // Careless answers are refused by field, before the plugin is asked; nothing is stored.
    d.clock.advance(Duration::minutes(2));
    for (body, field) in [
        (json!({"reached": true}), "answers"),
        (
            json!({"reached": true, "answers": [{"item": "ok", "value": "maybe"}]}),
            "answers[0].value",
        ),
        (
            json!({"reached": true, "answers": [{"item": "ok", "value": "yes"}, {"item": "pulse", "value": "80"}]}),
            "answers[1].item",
        ),
        (
            json!({"reached": true, "answers": ok("yes"), "checked_in_at": "2026-12-05T09:40:00+08:00"}),
            "checked_in_at",
        ),
        (
            json!({"reached": true, "answers": ok("yes"), "checked_out_at": "2026-12-06T09:40:00+08:00"}),
            "checked_out_at",
        ),
        (
            json!({"reached": true, "answers": ok("yes"), "visitors": [me]}),
            "visitors",
        ),
        (
            json!({"reached": true, "answers": ok("yes"), "position": {"lat": 91.0, "lon": 0.0}}),
            "position",
        ),
        (
            json!({"reached": true, "answers": ok("yes"), "notes": "门锁了\u{0}\u{1b}[2J"}),
            "notes",
        ),
        (
            json!({"reached": true, "answers": ok("yes"), "notes": "很".repeat(4001)}),
            "notes",
        ),
    ] {
        let r = d.post(&path, &token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body} should name {field}: {:?}",
            r.body
        );
    }
    assert_eq!(d.get(&path, &station).await.body, json!([]));

    // Two minutes is not a visit: the plugin rejects it with a reason the volunteer can fix.
    let r = d
        .post(&path, &token, json!({"reached": true, "answers": ok("是")}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "rejected", "{:?}", r.body);
    assert_eq!(r.body["version"], 1);
    assert_eq!(
        r.body["answers"][0]["value"], "yes",
        "answers are normalised"
    );
    assert!(
        r.body["review"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("5 minutes"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["review"]["by"], "steady@1.0.0");
    let t = d.get(&format!("/v1/tasks/{task}"), &station).await;
    assert_eq!(
        t.body["status"], "checked_in",
        "a rejected report closes nothing"
    );
    let coverage = "/v1/reports/coverage?region=620802001001&month=2026-12";
    let visited = |c: Reply| c.body["total"]["elders"]["reached"].clone();
    assert_eq!(
        visited(d.get(coverage, &station).await),
        0,
        "nor counts as a visit"
    );

    // Fixed: a proper visit, and the task is done.
    d.clock.advance(Duration::minutes(40));
    let r = d
        .post(
            &path,
            &token,
            json!({"reached": true, "answers": ok("yes"), "notes": "身体很好"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    assert_eq!(r.body["version"], 2);
    let accepted = r.body["id"].as_u64().unwrap();
    let t = d.get(&format!("/v1/tasks/{task}"), &station).await;
    assert_eq!(t.body["status"], "done");
    assert_eq!(t.body["report"], accepted);
    assert_eq!(t.body["offers"][0]["state"], "checked_out");
    assert_eq!(visited(d.get(coverage, &station).await), 1);
    let kinds = kinds_of(&d, task).await;
    assert!(
        kinds.ends_with(&["report.rejected".into(), "report.accepted".into()]),
        "{kinds:?}"
    );
    // The hours: 42 minutes from check-in to the report, one record, not late.
    let recs = d.get("/v1/me/service-records", &token).await;
    assert_eq!(
        recs.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        recs.body
    );
    let rec = &recs.body["items"][0];
    assert_eq!(rec["minutes"], 42);
    assert_eq!(rec["late"], false);
    assert_eq!(rec["organiser"], "工作站0");
    assert_eq!(rec["person_in_charge"], "李华");
    assert_eq!(rec["place"], "新民路社区");
    assert!(
        !recs.body.to_string().contains(&rid(1940, 100)),
        "no resident ID in a service record"
    );

    // A correction is a new version; the accepted one is kept, superseded, and not counted
    // twice.
    let r = d
        .post(
            &path,
            &station,
            json!({"reached": true, "answers": ok("yes"), "notes": "更正：离开时间",
                   "checked_in_at": "2026-12-05T09:30:00+08:00",
                   "checked_out_at": "2026-12-05T10:10:00+08:00"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    assert_eq!(r.body["version"], 3);
    assert_eq!(r.body["corrects"], accepted);
    assert_eq!(r.body["filed_by"], format!("station:{}", w.stations[0]));
    let all = d.get(&path, &station).await;
    let states: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["rejected", "superseded", "accepted"]);
    let hours = d.get("/v1/me/hours", &token).await;
    assert_eq!(hours.body["records"], 1, "{:?}", hours.body);
    assert_eq!(
        visited(d.get(coverage, &station).await),
        1,
        "a correction counts once"
    );
    // The times the correction states: 40 minutes.
    assert_eq!(hours.body["hours"], 0.67, "{:?}", hours.body);
    assert_eq!(hours.body["stars"], 0);
    assert_eq!(hours.body["next_star_in"], 99.33);

    // Another station cannot see the reports, by task or by id; nor can another volunteer.
    let (_, stranger) = helper(&d, w.stations[1], 802).await;
    for t in [&other_station, &stranger] {
        assert_eq!(d.get(&path, t).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            d.get(&format!("/v1/reports/{accepted}"), t).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            d.post(&path, t, json!({"reached": true, "answers": ok("yes")}))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    // No route edits or deletes a report.
    for m in [
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
    ] {
        let r = d
            .call(
                m.clone(),
                &format!("/v1/reports/{accepted}"),
                &d.admin,
                Some(json!({"state": "rejected"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
    }
    assert_eq!(
        d.get(&format!("/v1/reports/{accepted}"), &d.admin)
            .await
            .body["state"],
        "superseded"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_urgent_finding_makes_a_follow_up_task_that_is_sent_first() {
    let d = Daemon::start_notifying(linli::config::NotifyConfig {
        allow_private_addresses: true,
        allow_http: true,
        ..Default::default()
    })
    .await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    // A receiver that is never there: messages wait, and their lanes can be read.
    let e = d
        .post(
            "/v1/endpoints",
            &station,
            json!({"owner": {"station": w.stations[0]}, "kind": "webhook", "url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{:?}", e.body);
    let endpoint = e.body["endpoint"]["id"].as_u64().unwrap();
    let (_, token) = helper(&d, w.stations[0], 811).await;
    let task = steady_task(&d).await;
    d.post(&format!("/v1/tasks/{task}/accept"), &token, json!({}))
        .await;
    d.clock.set(at("2026-12-05T10:30:00+08:00"));
    let r = d
        .post(
            &format!("/v1/tasks/{task}/reports"),
            &token,
            json!({"reached": false, "answers": ok("no"),
                   "checked_in_at": "2026-12-05T10:00:00+08:00"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    assert_eq!(r.body["review"]["outcome"], "follow_up");
    assert_eq!(r.body["review"]["severity"], "urgent");
    let follow = r.body["review"]["follow_up_task"].as_u64().unwrap();
    let f = d.get(&format!("/v1/tasks/{follow}"), &station).await;
    assert_eq!(f.body["kind"], "follow-up");
    assert_eq!(f.body["priority"], "urgent");
    assert_eq!(f.body["follows_up"], task);
    assert_eq!(f.body["target"]["id"], w.persons[0]);
    // Due the same day (within 24 hours), and offered at once.
    let due = chrono::DateTime::parse_from_rfc3339(f.body["due_end"].as_str().unwrap()).unwrap();
    assert_eq!(due.to_utc(), at("2026-12-06T10:30:00+08:00"));
    assert_eq!(f.body["status"], "offered", "{:?}", f.body);
    let kinds = kinds_of(&d, task).await;
    assert!(kinds.contains(&"review.follow_up".to_owned()), "{kinds:?}");
    // The follow-up's news is in the urgent lane; the routine acceptance is not.
    let mut lanes = std::collections::HashMap::new();
    for _ in 0..600 {
        let m = d
            .get(
                &format!("/v1/endpoints/{endpoint}/messages?limit=100"),
                &station,
            )
            .await;
        lanes = m.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["kind"].as_str().unwrap().to_owned(),
                    m["urgent"].as_bool().unwrap(),
                )
            })
            .collect();
        if lanes.contains_key("review.follow_up") && lanes.contains_key("report.accepted") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(lanes.get("review.follow_up"), Some(&true), "{lanes:?}");
    assert_eq!(lanes.get("report.accepted"), Some(&false), "{lanes:?}");
    // A visit that did not reach the person is no visit in the coverage report.
    let c = d
        .get(
            "/v1/reports/coverage?region=620802001000&month=2026-12",
            &station,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    assert_eq!(
        c.body["total"]["elders"]["reached"], 0,
        "{:?}",
        c.body["total"]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn late_entries_are_counted_in_working_days_across_the_spring_festival() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (me, token) = helper(&d, w.stations[0], 821).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let entry = |date: &str| {
        json!({"volunteer": me, "activity": "应急救护培训", "date": date, "place": "东关街道社会工作站",
               "content": "心肺复苏与止血包扎", "hours": 2.5})
    };
    // Thursday 12 February 2026; the 14th and 28th are working Saturdays, the 15th–23rd the
    // Spring Festival. The 10th working day after is Wednesday 4 March.
    for (now, date, late) in [
        ("2026-03-04T17:00:00+08:00", "2026-02-12", false),
        ("2026-03-05T09:00:00+08:00", "2026-02-12", true),
        // From the working Saturday 28 February: 10 working days end on Friday 13 March.
        ("2026-03-13T09:00:00+08:00", "2026-02-28", false),
        ("2026-03-16T09:00:00+08:00", "2026-02-28", true),
        // Entered the same day.
        ("2026-03-16T20:00:00+08:00", "2026-03-16", false),
    ] {
        d.clock.set(at(now));
        // Each case its own session of the training (the same one twice would be refused).
        let mut body = entry(date);
        body["place"] = json!(format!("东关街道社会工作站 {now}"));
        let r = d.post("/v1/service-records", &station, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["late"], late, "{date} entered {now}");
        assert_eq!(r.body["minutes"], 150);
        assert_eq!(r.body["organiser"], "工作站0");
    }
    // The same entry twice (a double click) is refused the second time and adds nothing.
    let r = d
        .post("/v1/service-records", &station, entry("2026-03-16"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = d
        .post("/v1/service-records", &station, entry("2026-03-16"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("already recorded")
    );
    // A day has 24 hours: a second long entry the same day is refused.
    let mut long = entry("2026-03-16");
    long["activity"] = json!("社区值守");
    long["hours"] = json!(20);
    let r = d.post("/v1/service-records", &station, long).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("a day has 24"),
        "{:?}",
        r.body
    );
    let h = d.get(&format!("/v1/volunteers/{me}/hours"), &station).await;
    assert_eq!(h.body["hours"], 15.0, "{:?}", h.body);
    assert_eq!(h.body["late"], 2);
    assert_eq!(h.body, d.get("/v1/me/hours", &token).await.body);
    // Careless entries are refused by field; another station's volunteer is not reachable.
    let other = d.token(&format!("station:{}", w.stations[1])).await;
    for (body, field, who) in [
        (json!({"hours": 0}), "hours", &station),
        (json!({"hours": 25}), "hours", &station),
        (json!({"hours": f64::NAN}), "hours", &station),
        (json!({"date": "2026-03-17"}), "date", &station),
        (json!({"activity": ""}), "activity", &station),
        (json!({"community": "620802001002"}), "community", &station),
        (json!({}), "volunteer", &other),
    ] {
        let mut b = entry("2026-03-16");
        for (k, v) in body.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = d.post("/v1/service-records", who, b).await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            r.body
        );
        if r.status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(
                r.body["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["field"] == field),
                "{body} should name {field}: {:?}",
                r.body
            );
        }
    }
    assert_eq!(
        d.post("/v1/service-records", &token, entry("2026-03-16"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_verifies_publicly_and_a_tampered_code_does_not() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (me, token) = helper(&d, w.stations[0], 831).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    // Nothing recorded yet: nothing to certify.
    let r = d.post("/v1/me/certificates", &token, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    d.clock.set(at("2026-12-10T10:00:00+08:00"));
    for (date, hours) in [("2026-12-01", 3.0), ("2026-12-05", 2.0)] {
        let r = d
            .post(
                "/v1/service-records",
                &station,
                json!({"volunteer": me, "activity": "助老服务", "date": date, "place": "新民路社区",
                       "community": "620802001001", "content": "陪伴、家务", "hours": hours}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = d.post("/v1/me/certificates", &token, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 26);
    assert_eq!(r.body["hours"], 5.0);
    assert_eq!(r.body["unit"], "工作站0");
    assert_eq!(r.body["from"], "2026-12-01");

    // Anyone verifies it without a token, and learns what it states — no resident ID, no phone.
    let v = d
        .client
        .get(format!("{}/v1/verify/{code}", d.url))
        .send()
        .await
        .unwrap();
    let v = Daemon::reply_to("GET", v).await;
    assert_eq!(v.status, StatusCode::OK, "{:?}", v.body);
    assert_eq!(v.body["status"], "valid");
    assert_eq!(v.body["certificate"]["name"], "王明");
    let text = v.body.to_string();
    assert!(
        !text.contains(&rid(1990, 831)) && !text.contains("13800001111"),
        "{text}"
    );
    // A code changed in one character, or made up, verifies nothing.
    let flip = if code.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{flip}{}", &code[1..]);
    for bad in [
        tampered.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        "../../etc",
    ] {
        let r = d
            .client
            .get(format!("{}/v1/verify/{bad}", d.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    // The printable page carries the QR code and the verification address; the page the QR
    // opens says valid.
    let page = d
        .client
        .get(format!("{}/certificates/{code}", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains(&format!("/verify/{code}")),
        "{html}"
    );
    assert!(
        html.contains("志愿服务证明") && html.contains("<strong>5</strong> 小时"),
        "{html}"
    );
    let check = d
        .client
        .get(format!("{}/verify/{code}", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK);
    assert!(check.text().await.unwrap().contains("证明有效"));
    let gone = d
        .client
        .get(format!("{}/verify/{tampered}", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // Names are printed escaped.
    d.patch(
        &format!("/v1/volunteers/{me}"),
        &d.admin,
        json!({"name": "王<script>明"}),
    )
    .await;
    let r = d
        .post(
            &format!("/v1/volunteers/{me}/certificates"),
            &station,
            json!({"from": "2026-12-05"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["hours"], 2.0, "only the period asked for");
    let second = r.body["code"].as_str().unwrap().to_owned();
    let html = d
        .client
        .get(format!("{}/certificates/{second}", d.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    let list = d.get("/v1/me/certificates", &token).await;
    assert_eq!(list.body.as_array().unwrap().len(), 2);

    // Another station can neither issue nor revoke; the volunteer's own station revokes.
    let other = d.token(&format!("station:{}", w.stations[1])).await;
    assert_eq!(
        d.post(
            &format!("/v1/volunteers/{me}/certificates"),
            &other,
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        d.post(
            &format!("/v1/certificates/{code}/revoke"),
            &other,
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = d
        .post(
            &format!("/v1/certificates/{code}/revoke"),
            &station,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = d
        .client
        .get(format!("{}/v1/verify/{code}", d.url))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(v["status"], "revoked");
    d.stop().await;
}

/// Files an accepted report on a one-off task for `person` (checked in on 5 December).
async fn visit(d: &Daemon, station: &str, token: &str, person: u64, reached: bool) -> u64 {
    let r = d
        .post("/v1/tasks", station, one_off(person, "normal"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let task = r.body["id"].as_u64().unwrap();
    let r = d
        .post(&format!("/v1/tasks/{task}/accept"), token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = d
        .post(
            &format!("/v1/tasks/{task}/reports"),
            token,
            json!({"reached": reached, "checked_in_at": "2026-12-05T10:00:00+08:00",
                   "checked_out_at": "2026-12-05T10:40:00+08:00"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn the_coverage_report_matches_the_figures_worked_out_by_hand() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let station2 = d.token(&format!("station:{}", w.stations[1])).await;
    let bureau = d.token("bureau:620802000000").await;
    let (_, t1) = helper(&d, w.stations[0], 841).await;
    let (_, t2) = helper(&d, w.stations[1], 842).await;
    // E: an elder of 620802001001 who leaves care on 10 December (registered 29 November).
    let e = d.created("/v1/persons", elder("620802001001", 150)).await["id"]
        .as_u64()
        .unwrap();
    // An information officer posted to 620802001001.
    let mut officer = volunteer(w.stations[0], 843);
    officer["roles"] = json!(["disaster_info_officer"]);
    officer["community"] = json!("620802001001");
    // Not available: the visits below go to the helper.
    officer["availability"] = json!([]);
    d.created("/v1/volunteers", officer).await;

    d.clock.set(at("2026-12-05T12:00:00+08:00"));
    // persons[0] is visited twice (counts once); E once; persons[1] is not reached.
    let a1 = visit(&d, &station, &t1, w.persons[0], true).await;
    let a2 = visit(&d, &station, &t1, w.persons[0], true).await;
    visit(&d, &station, &t1, e, true).await;
    visit(&d, &station2, &t2, w.persons[1], false).await;
    // E leaves on 10 December; D joins 620802001002 on 20 December and is not visited.
    d.clock.set(at("2026-12-10T09:00:00+08:00"));
    assert_eq!(
        d.delete(&format!("/v1/persons/{e}"), &d.admin).await.status,
        StatusCode::OK
    );
    d.clock.set(at("2026-12-20T09:00:00+08:00"));
    d.created("/v1/persons", elder("620802001002", 151)).await;
    // Ratings: one satisfied by the station, one dissatisfied through a family's link.
    let r = d
        .post(
            &format!("/v1/tasks/{a1}/rating"),
            &station,
            json!({"rating": "satisfied"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        d.post(
            &format!("/v1/tasks/{a1}/rating"),
            &station,
            json!({"rating": "neutral"})
        )
        .await
        .status,
        StatusCode::CONFLICT,
        "one rating per visit"
    );
    let link = d
        .post(&format!("/v1/tasks/{a2}/rating-link"), &station, json!({}))
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{:?}", link.body);
    let url = link.body["url"].as_str().unwrap().to_owned();
    let code = url.rsplit('/').next().unwrap().to_owned();
    let form = d
        .client
        .get(format!("{}/rate/{code}", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("不满意"));
    let sent = d
        .client
        .post(format!("{}/rate/{code}", d.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("rating=dissatisfied&comment=%E6%9D%A5%E5%BE%97%E5%A4%AA%E6%99%9A")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    // A second link for the rated visit says so, and the link is spent.
    let second = d
        .post(&format!("/v1/tasks/{a1}/rating-link"), &station, json!({}))
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{:?}", second.body);
    let again = d
        .client
        .post(format!("{}/v1/rate/{code}", d.url))
        .json(&json!({"rating": "satisfied"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let t = d.get(&format!("/v1/tasks/{a2}"), &station).await;
    assert_eq!(t.body["status"], "done");
    let rating = d.get(&format!("/v1/tasks/{a2}/rating"), &station).await;
    assert_eq!(rating.body["rating"], "dissatisfied", "{:?}", rating.body);
    assert_eq!(rating.body["by"], "family");
    assert_eq!(rating.body["comment"], "来得太晚");
    assert_eq!(
        d.get(&format!("/v1/tasks/{a2}/rating"), &station2)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let kinds = kinds_of(&d, a2).await;
    assert!(kinds.contains(&"review.follow_up".to_owned()), "{kinds:?}");

    // By hand, December in 崆峒区: elders eligible on any day — persons[0], persons[1], E (left
    // on the 10th), D (joined on the 20th) = 4; visited: persons[0] (twice, once counted) and E
    // = 2; persons[1] was not reached. Tasks due in December: four one-off visits (all done)
    // and two follow-ups (persons[1] not reached, the dissatisfied rating). Hours: 4 × 40 min.
    let c = d
        .get(
            "/v1/reports/coverage?region=620802000000&month=2026-12&months=2",
            &bureau,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    let total = &c.body["total"];
    assert_eq!(total["elders"]["eligible"], 4, "{total:?}");
    assert_eq!(total["elders"]["reached"], 2);
    assert_eq!(total["elders"]["rate"], 0.5);
    assert_eq!(total["elders"]["target"], 1.0);
    assert_eq!(total["elders"]["met"], false);
    assert_eq!(total["elders"]["joined"], 1);
    assert_eq!(total["elders"]["left"], 1);
    assert_eq!(total["tasks"]["due"], 6, "{:?}", total["tasks"]);
    assert_eq!(total["tasks"]["done"], 4);
    assert_eq!(total["volunteer_hours"], 2.7);
    assert_eq!(total["communities"], 2);
    assert_eq!(total["info_officers"]["reached"], 1);
    assert_eq!(total["info_officers"]["rate"], 0.5);
    assert_eq!(total["drills"]["reached"], 0);
    assert_eq!(total["satisfaction"]["ratings"], 2);
    assert_eq!(total["satisfaction"]["rate"], 0.5);
    // One row: the township.
    let rows = c.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["code"], "620802001000");
    assert_eq!(rows[0]["name"], "东关街道");
    assert_eq!(rows[0]["elders"], total["elders"]);
    // Furthest behind: 广场社区, 0 of 2 (新民路社区 visited both of its elders).
    let behind = c.body["behind"].as_array().unwrap();
    assert_eq!(behind.len(), 1, "{behind:?}");
    assert_eq!(behind[0]["code"], "620802001002");
    assert_eq!(behind[0]["unvisited"], 2);
    // November: three elders (registered on the 29th), none visited.
    assert_eq!(c.body["trend"][0]["month"], "2026-11");
    assert_eq!(c.body["trend"][0]["elder_rate"], 0.0);
    assert_eq!(c.body["trend"][1]["elder_rate"], 0.5);
    let actions: Vec<(&str, u64)> = c.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["due"].as_u64().unwrap()))
        .collect();
    assert_eq!(actions, [("follow-up", 2), ("one-off", 4)]);
    // The township view has a row per community; the station sees its own township.
    let c = d.get("/v1/reports/coverage?month=2026-12", &station).await;
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    assert_eq!(c.body["region"]["code"], "620802001000");
    let rows: Vec<(&str, u64, u64)> = c.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap(),
                r["elders"]["eligible"].as_u64().unwrap(),
                r["elders"]["reached"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("620802001001", 2, 2), ("620802001002", 2, 0)]);
    // Not another county's, and not for volunteers.
    assert_eq!(
        d.get(
            "/v1/reports/coverage?region=620821000000&month=2026-12",
            &bureau
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        d.get("/v1/reports/coverage?region=620802000000", &t1)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for bad in [
        "month=2026-13",
        "month=nov",
        "months=0",
        "region=abc",
        "format=xls",
    ] {
        let r = d
            .get(
                &format!("/v1/reports/coverage?region=620802000000&{bad}"),
                &d.admin,
            )
            .await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            r.body
        );
    }
    // CSV: one line per township and the total, recorded in the audit log as an export.
    let csv = d
        .client
        .get(format!(
            "{}/v1/reports/coverage?region=620802000000&month=2026-12&format=csv",
            d.url
        ))
        .bearer_auth(&bureau)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("coverage-620802000000-2026-12.csv")
    );
    let text = csv.text().await.unwrap();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark for Excel");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("month,code,name,elders_eligible,elders_visited,elder_visit_rate")
    );
    assert!(
        lines[2].starts_with("2026-12,620802000000,崆峒区,4,2,0.5000"),
        "{text}"
    );
    let log = d.get("/v1/audit?limit=1000", &bureau).await;
    assert!(
        log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "export" && e["subject"] == "coverage:620802000000:2026-12"),
        "{:?}",
        log.body
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_reads_of_personal_data_and_no_route_edits_it() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let bureau = d.token("bureau:620802000000").await;
    let other_bureau = d.token("bureau:620821000000").await;
    let (_, t1) = helper(&d, w.stations[0], 851).await;
    let p = w.persons[0];
    assert_eq!(
        d.get(&format!("/v1/persons/{p}"), &station).await.status,
        StatusCode::OK
    );
    d.get("/v1/persons?limit=5", &bureau).await;
    d.get(&format!("/v1/persons/{}", w.persons[2]), &other_bureau)
        .await;
    d.patch(
        &format!("/v1/persons/{p}"),
        &station,
        json!({"phone": "13909330000"}),
    )
    .await;
    // A volunteer opening a task sees the person's name and address: recorded too.
    let task = d
        .post("/v1/tasks", &station, one_off(p, "normal"))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        d.get(&format!("/v1/me/tasks/{task}"), &t1).await.status,
        StatusCode::OK
    );

    let log = d.get("/v1/audit?limit=1000", &d.admin).await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    let items = log.body["items"].as_array().unwrap();
    let has = |action: &str, subject: &str, scope: &str| {
        items
            .iter()
            .any(|e| e["action"] == action && e["subject"] == subject && e["scope"] == scope)
    };
    let station_scope = format!("station:{}", w.stations[0]);
    assert!(
        has("read", &format!("person:{p}"), &station_scope),
        "{items:?}"
    );
    assert!(
        has("update", &format!("person:{p}"), &station_scope),
        "{items:?}"
    );
    assert!(has("list", "persons", "bureau:620802000000"), "{items:?}");
    assert!(has(
        "read",
        &format!("person:{p}"),
        &format!("volunteer:{}", t1_id(&d, &t1).await)
    ));
    assert!(
        items
            .iter()
            .all(|e| e["token"].as_str().unwrap().len() == 12
                && e["route"].as_str().unwrap().contains("/v1/"))
    );
    // Nothing in the log is personal data itself.
    assert!(!log.body.to_string().contains("13909330000"));
    assert!(!log.body.to_string().contains(&rid(1940, 100)));

    // A bureau reads its own region's entries only; stations and volunteers not at all.
    let mine = d.get("/v1/audit?limit=1000", &bureau).await;
    let regions: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["region"].as_str().unwrap_or(""))
        .collect();
    assert!(!regions.is_empty());
    assert!(
        regions.iter().all(|r| r.starts_with("620802")),
        "{regions:?}"
    );
    let theirs = d.get("/v1/audit?limit=1000", &other_bureau).await;
    assert!(
        theirs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["region"].as_str().unwrap().starts_with("620821")),
        "{:?}",
        theirs.body
    );
    assert_eq!(
        d.get("/v1/audit", &station).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(d.get("/v1/audit", &t1).await.status, StatusCode::FORBIDDEN);
    // No route edits or deletes an entry.
    let first = items[0]["seq"].as_u64().unwrap();
    for m in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let r = d
            .call(m.clone(), "/v1/audit", &d.admin, Some(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
        let r = d
            .call(
                m.clone(),
                &format!("/v1/audit/{first}"),
                &d.admin,
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
    }
    let again = d.get("/v1/audit?limit=1000", &d.admin).await;
    assert_eq!(again.body["items"][0], items[0]);
    // Paging walks the whole log.
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page = d.get(&format!("/v1/audit?limit=2{cursor}"), &d.admin).await;
        seen += page.body["items"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert!(seen >= items.len(), "{seen} < {}", items.len());
    d.stop().await;
}

async fn t1_id(d: &Daemon, token: &str) -> u64 {
    let me = d.get("/v1/me", token).await;
    me.body["scope"]
        .as_str()
        .unwrap()
        .trim_start_matches("volunteer:")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_who_moves_mid_month_counts_once_where_the_month_ended() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let (_, t1) = helper(&d, w.stations[0], 861).await;
    let f = d.created("/v1/persons", elder("620802001001", 160)).await["id"]
        .as_u64()
        .unwrap();
    d.clock.set(at("2026-12-05T12:00:00+08:00"));
    visit(&d, &station, &t1, f, true).await;
    d.clock.set(at("2026-12-15T09:00:00+08:00"));
    let r = d
        .patch(
            &format!("/v1/persons/{f}"),
            &d.admin,
            json!({"community": "620802001002"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let month = |region: &str| format!("/v1/reports/coverage?region={region}&month=2026-12");
    // The township: persons[0], persons[1] and F — F once, visited, in 广场社区 now.
    let c = d.get(&month("620802001000"), &d.admin).await;
    assert_eq!(
        c.body["total"]["elders"]["eligible"], 3,
        "{:?}",
        c.body["total"]
    );
    assert_eq!(c.body["total"]["elders"]["reached"], 1);
    assert_eq!(c.body["total"]["elders"]["joined"], 0);
    assert_eq!(c.body["total"]["elders"]["left"], 0);
    let rows: Vec<(&str, u64, u64)> = c.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap(),
                r["elders"]["eligible"].as_u64().unwrap(),
                r["elders"]["reached"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("620802001001", 1, 0), ("620802001002", 2, 1)]);
    // The old community alone: F was there until the 15th and left; the new one: F joined.
    let old = d.get(&month("620802001001"), &d.admin).await;
    assert_eq!(
        old.body["total"]["elders"]["eligible"], 2,
        "{:?}",
        old.body["total"]
    );
    assert_eq!(old.body["total"]["elders"]["left"], 1);
    assert_eq!(old.body["total"]["elders"]["reached"], 1);
    let new = d.get(&month("620802001002"), &d.admin).await;
    assert_eq!(
        new.body["total"]["elders"]["eligible"], 2,
        "{:?}",
        new.body["total"]
    );
    assert_eq!(new.body["total"]["elders"]["joined"], 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_whose_review_fails_never_locks_a_task_or_loses_a_report() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (_, token) = helper(&d, w.stations[0], 871).await;
    deploy(&d, "misbehave").await;
    let r = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "visits", "plugin": "misbehave", "action": "visit", "cron": "0 9 1 * *",
                   "selector": {"region": "620802001001", "categories": ["special_difficulty_elder"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let duty = r.body["id"].as_u64().unwrap();
    d.post(&format!("/v1/duties/{duty}/trigger"), &d.admin, json!({}))
        .await;
    tick(&d).await;
    let task = d
        .get(&format!("/v1/tasks?duty={duty}"), &d.admin)
        .await
        .body["items"][0]["id"]
        .as_u64()
        .unwrap();
    d.post(&format!("/v1/tasks/{task}/accept"), &token, json!({}))
        .await;
    // The plugin now answers every review with a million empty reasons: the host refuses that.
    let r = d
        .patch(
            "/v1/plugins/misbehave",
            &d.admin,
            json!({"config": {"mode": "empty-reasons"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    d.clock.set(at("2026-12-01T11:00:00+08:00"));
    let body = json!({"reached": true, "answers": ok("yes"),
                      "checked_in_at": "2026-12-01T10:00:00+08:00"});
    let path = format!("/v1/tasks/{task}/reports");
    let r = d.post(&path, &token, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "submitted", "{:?}", r.body);
    assert!(
        r.body["review_error"]
            .as_str()
            .unwrap()
            .contains("misbehave"),
        "{:?}",
        r.body
    );
    // Mended, the plugin reviews the next filing, which replaces the stuck one; both are kept.
    d.patch(
        "/v1/plugins/misbehave",
        &d.admin,
        json!({"config": {"mode": "fine"}}),
    )
    .await;
    let r = d.post(&path, &token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    let all = d.get(&path, &d.admin).await;
    let states: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("state").and_then(Value::as_str).unwrap())
        .collect();
    assert_eq!(states, ["rejected", "accepted"]);
    assert_eq!(
        d.get(&format!("/v1/tasks/{task}"), &d.admin).await.body["status"],
        "done"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_visit_records_everyone_who_went_and_releases_who_did_not() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let mut team = Vec::new();
    for seq in 881..884 {
        team.push(helper(&d, w.stations[0], seq).await);
    }
    let mut t = one_off(w.persons[0], "normal");
    t["requirements"]["team_size"] = 3.into();
    let r = d.post("/v1/tasks", &station, t).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let task = r.body["id"].as_u64().unwrap();
    assert_eq!(
        r.body["offers"].as_array().unwrap().len(),
        3,
        "{:?}",
        r.body
    );
    let path = format!("/v1/tasks/{task}/reports");
    let ((a, ta), (b, tb), (_, tc)) = (&team[0], &team[1], &team[2]);
    for tok in [ta, tb, tc] {
        let r = d
            .post(&format!("/v1/tasks/{task}/accept"), tok, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    d.clock.set(at("2026-12-05T09:00:00+08:00"));
    // A and B go; C accepted but never comes.
    for tok in [ta, tb] {
        d.post(&format!("/v1/tasks/{task}/check-in"), tok, json!({}))
            .await;
    }
    d.clock.advance(Duration::minutes(50));
    d.post(&format!("/v1/tasks/{task}/check-out"), tb, json!({}))
        .await;
    d.clock.advance(Duration::minutes(10));
    // A files: the visit was A's and B's (both checked in); each gets their own time.
    let r = d.post(&path, ta, json!({"reached": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    let mut visitors: Vec<u64> = r.body["visitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    visitors.sort_unstable();
    let mut expect = vec![*a, *b];
    expect.sort_unstable();
    assert_eq!(visitors, expect);
    assert_eq!(d.get("/v1/me/hours", ta).await.body["hours"], 1.0);
    assert_eq!(d.get("/v1/me/hours", tb).await.body["hours"], 0.83);
    assert_eq!(d.get("/v1/me/hours", tc).await.body["hours"], 0.0);
    // C no longer holds the task: no hours, no person's details, no report of theirs.
    let mine = d.get(&format!("/v1/me/tasks/{task}"), tc).await;
    assert_eq!(mine.body["offer"]["state"], "withdrawn", "{:?}", mine.body);
    assert!(mine.body["person"].is_null());
    assert_eq!(
        d.post(&path, tc, json!({"reached": true})).await.status,
        StatusCode::NOT_FOUND
    );
    // B's correction, a day later, keeps both visitors and their hours.
    d.clock.advance(Duration::days(1));
    let r = d
        .post(
            &path,
            tb,
            json!({"reached": true, "notes": "补充：老人需要助听器"}),
        )
        .await;
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    assert_eq!(r.body["visitors"].as_array().unwrap().len(), 2);
    assert_eq!(d.get("/v1/me/hours", ta).await.body["hours"], 1.0);
    assert_eq!(d.get("/v1/me/hours", tb).await.body["hours"], 0.83);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rating_moves_with_its_visit_when_a_correction_moves_the_month() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let (_, t1) = helper(&d, w.stations[0], 891).await;
    d.clock.set(at("2026-12-05T12:00:00+08:00"));
    let task = visit(&d, &station, &t1, w.persons[0], true).await;
    let r = d
        .post(
            &format!("/v1/tasks/{task}/rating"),
            &station,
            json!({"rating": "satisfied"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ratings = |c: Reply| c.body["total"]["satisfaction"]["ratings"].clone();
    let month = |m: &str| format!("/v1/reports/coverage?region=620802000000&month={m}");
    assert_eq!(ratings(d.get(&month("2026-12"), &d.admin).await), 1);
    // The visit was really on 2 January; the station corrects the report.
    d.clock.set(at("2027-01-03T12:00:00+08:00"));
    let r = d
        .post(
            &format!("/v1/tasks/{task}/reports"),
            &station,
            json!({"reached": true, "checked_in_at": "2027-01-02T10:00:00+08:00",
                   "checked_out_at": "2027-01-02T10:30:00+08:00"}),
        )
        .await;
    assert_eq!(r.body["state"], "accepted", "{:?}", r.body);
    assert_eq!(ratings(d.get(&month("2026-12"), &d.admin).await), 0);
    assert_eq!(ratings(d.get(&month("2027-01"), &d.admin).await), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_that_reached_nobody_needs_no_answers_from_the_host() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (_, token) = helper(&d, w.stations[0], 811).await;
    let task = steady_task(&d).await;
    d.post(&format!("/v1/tasks/{task}/accept"), &token, json!({}))
        .await;
    d.clock.set(at("2026-12-05T09:30:00+08:00"));
    d.post(&format!("/v1/tasks/{task}/check-in"), &token, json!({}))
        .await;
    d.clock.advance(Duration::minutes(20));
    d.post(&format!("/v1/tasks/{task}/check-out"), &token, json!({}))
        .await;
    let path = format!("/v1/tasks/{task}/reports");
    // Reached: the required question must be answered (422 by field, nothing stored).
    let r = d.post(&path, &token, json!({"reached": true})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    // Nobody there: nothing could be asked; the report goes to the plugin, which decides.
    let r = d
        .post(
            &path,
            &token,
            json!({"reached": false, "notes": "家中无人"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // An answer given is still checked.
    let r = d
        .post(
            &path,
            &token,
            json!({"reached": false, "answers": [{"item": "ok", "value": "maybe"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
}
