//! Nothing leaks to a caller outside a record's area: a record that exists elsewhere answers
//! exactly like one that does not exist, on every route and for every token kind; a resident ID
//! taken elsewhere is refused without naming the record; events, stations and tokens stay in
//! their place.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// A reply with every number equal to `id` (the record's id or code, as a whole run of digits)
/// replaced, so the answers for two different ids can be compared.
fn normalised(r: &Reply, id: &str) -> (StatusCode, String) {
    let text = r.body.to_string();
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            out.push_str(if digits == id { "<id>" } else { &digits });
            digits.clear();
        }
        if c != '\0' {
            out.push(c);
        }
    }
    (r.status, out)
}

/// A deployed `steady` duty over county 620802 that has run once (so it has an occurrence and
/// tasks), and a `panicker` duty there whose occurrence failed (an `occurrence.failed` event).
async fn county_620802_with_duties(d: &Daemon) -> (u64, i64, u64) {
    deploy(d, "steady").await;
    deploy(d, "panicker").await;
    let steady = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "visits", "plugin": "steady", "action": "visit", "cron": "0 9 * * *",
                   "selector": {"region": "620802000000"}}),
        )
        .await;
    assert_eq!(steady.status, StatusCode::CREATED, "{:?}", steady.body);
    let steady = steady.body["id"].as_u64().unwrap();
    let o = d
        .post(&format!("/v1/duties/{steady}/trigger"), &d.admin, json!({}))
        .await;
    let at = chrono::DateTime::parse_from_rfc3339(o.body["scheduled_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    let bad = d
        .post(
            "/v1/duties",
            &d.admin,
            json!({"name": "bad", "plugin": "panicker", "action": "visit", "cron": "0 9 * * *",
                   "selector": {"region": "620802000000", "categories": ["special_difficulty_elder"]}}),
        )
        .await;
    let bad = bad.body["id"].as_u64().unwrap();
    d.post(&format!("/v1/duties/{bad}/trigger"), &d.admin, json!({}))
        .await;
    tick(d).await;
    let tasks = d.get(&format!("/v1/tasks?duty={steady}"), &d.admin).await;
    let task = tasks.body["items"][0]["id"].as_u64().unwrap();
    (steady, at, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_alike_for_a_record_elsewhere_and_one_that_does_not_exist() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (duty, at, task) = county_620802_with_duties(&d).await;
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 500))
        .await;
    let vol = v["id"].as_u64().unwrap();
    let own = d
        .created("/v1/volunteers", volunteer(w.stations[2], 501))
        .await;
    // Tokens of the other county, of a station there, and of a volunteer there.
    let outsiders = [
        d.token("bureau:620821000000").await,
        d.token(&format!("station:{}", w.stations[2])).await,
        d.token(&format!("volunteer:{}", own["id"])).await,
    ];
    // (method, path with the record elsewhere, the same path with a record that is nowhere,
    // the id as it appears, a body)
    let p = w.persons[0];
    let s = w.stations[0];
    let routes: Vec<(Method, String, String, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/v1/persons/{p}"),
            "/v1/persons/99999".into(),
            p.to_string(),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/persons/{p}"),
            "/v1/persons/99999".into(),
            p.to_string(),
            Some(json!({"phone": "13900009999"})),
        ),
        (
            Method::DELETE,
            format!("/v1/persons/{p}"),
            "/v1/persons/99999".into(),
            p.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/persons/{p}/reactivate"),
            "/v1/persons/99999/reactivate".into(),
            p.to_string(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/volunteers/{vol}"),
            "/v1/volunteers/99999".into(),
            vol.to_string(),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/volunteers/{vol}"),
            "/v1/volunteers/99999".into(),
            vol.to_string(),
            Some(json!({"phone": "13900009999"})),
        ),
        (
            Method::DELETE,
            format!("/v1/volunteers/{vol}"),
            "/v1/volunteers/99999".into(),
            vol.to_string(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/stations/{s}"),
            "/v1/stations/99999".into(),
            s.to_string(),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/stations/{s}"),
            "/v1/stations/99999".into(),
            s.to_string(),
            Some(json!({"name": "x站"})),
        ),
        (
            Method::DELETE,
            format!("/v1/stations/{s}"),
            "/v1/stations/99999".into(),
            s.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/stations/{s}/reactivate"),
            "/v1/stations/99999/reactivate".into(),
            s.to_string(),
            None,
        ),
        (
            Method::GET,
            "/v1/regions/620802001001".into(),
            "/v1/regions/620802009009".into(),
            "620802001001".into(),
            None,
        ),
        (
            Method::PATCH,
            "/v1/regions/620802001001".into(),
            "/v1/regions/620802009009".into(),
            "620802001001".into(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::DELETE,
            "/v1/regions/620802001001".into(),
            "/v1/regions/620802009009".into(),
            "620802001001".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/regions/620802001001/reactivate".into(),
            "/v1/regions/620802009009/reactivate".into(),
            "620802001001".into(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/tasks/{task}"),
            "/v1/tasks/99999".into(),
            task.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tasks/{task}/cancel"),
            "/v1/tasks/99999/cancel".into(),
            task.to_string(),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/tasks/{task}/accept"),
            "/v1/tasks/99999/accept".into(),
            task.to_string(),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/tasks/{task}/decline"),
            "/v1/tasks/99999/decline".into(),
            task.to_string(),
            Some(json!({"reason": "x"})),
        ),
        (
            Method::POST,
            format!("/v1/tasks/{task}/check-in"),
            "/v1/tasks/99999/check-in".into(),
            task.to_string(),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/me/tasks/{task}"),
            "/v1/me/tasks/99999".into(),
            task.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/volunteers/{vol}/calendar"),
            "/v1/volunteers/99999/calendar".into(),
            vol.to_string(),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/duties/{duty}"),
            "/v1/duties/99999".into(),
            duty.to_string(),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/duties/{duty}"),
            "/v1/duties/99999".into(),
            duty.to_string(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            format!("/v1/duties/{duty}/pause"),
            "/v1/duties/99999/pause".into(),
            duty.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/duties/{duty}/resume"),
            "/v1/duties/99999/resume".into(),
            duty.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/duties/{duty}/trigger"),
            "/v1/duties/99999/trigger".into(),
            duty.to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/v1/duties/{duty}/backfill"),
            "/v1/duties/99999/backfill".into(),
            duty.to_string(),
            Some(json!({"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"})),
        ),
        (
            Method::GET,
            format!("/v1/duties/{duty}/occurrences"),
            "/v1/duties/99999/occurrences".into(),
            duty.to_string(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/duties/{duty}/occurrences/{at}"),
            format!("/v1/duties/99999/occurrences/{at}"),
            duty.to_string(),
            None,
        ),
        (
            Method::GET,
            format!("/v1/duties/{duty}/preview"),
            "/v1/duties/99999/preview".into(),
            duty.to_string(),
            None,
        ),
    ];
    let mut routes = routes;
    // Records: reports, ratings, hours, service records, certificates.
    for (method, tail, body) in [
        (Method::GET, "reports", None),
        (
            Method::POST,
            "reports",
            Some(json!({"reached": true, "checked_in_at": "2026-11-29T08:00:00+08:00"})),
        ),
        (Method::POST, "rating", Some(json!({"rating": "satisfied"}))),
        (Method::POST, "rating-link", None),
    ] {
        routes.push((
            method,
            format!("/v1/tasks/{task}/{tail}"),
            format!("/v1/tasks/99999/{tail}"),
            task.to_string(),
            body,
        ));
    }
    for (method, tail, body) in [
        (Method::GET, "hours", None),
        (Method::GET, "service-records", None),
        (Method::GET, "certificates", None),
        (Method::POST, "certificates", Some(json!({}))),
    ] {
        routes.push((
            method,
            format!("/v1/volunteers/{vol}/{tail}"),
            format!("/v1/volunteers/99999/{tail}"),
            vol.to_string(),
            body,
        ));
    }
    for token in &outsiders {
        for (method, elsewhere, nowhere, id, body) in &routes {
            let a = d.call(method.clone(), elsewhere, token, body.clone()).await;
            let b = d.call(method.clone(), nowhere, token, body.clone()).await;
            // The id in the "nowhere" path: the segment that differs.
            let nowhere_id = nowhere
                .split('/')
                .zip(elsewhere.split('/'))
                .find(|(n, e)| n != e)
                .map(|(n, _)| n)
                .unwrap();
            assert_eq!(
                normalised(&a, id),
                normalised(&b, nowhere_id),
                "{method} {elsewhere} vs {nowhere}"
            );
            assert!(
                a.status.is_client_error(),
                "{method} {elsewhere}: {:?}",
                a.body
            );
        }
    }
    // The records are untouched.
    let person = d.get(&format!("/v1/persons/{p}"), &d.admin).await;
    assert_eq!(person.body["phone"], "13909331234");
    assert_eq!(person.body["active"], true);
    let duty_now = d.get(&format!("/v1/duties/{duty}"), &d.admin).await;
    assert_eq!(duty_now.body["name"], "visits");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resident_id_registered_elsewhere_is_refused_without_naming_the_record() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let bureau = d.token("bureau:620821000000").await;
    let station = d.token(&format!("station:{}", w.stations[2])).await;
    // Person 1 (county 620802) has resident ID rid(1940, 100).
    let mut twin = elder("620821001001", 100);
    twin["name"] = "李四".into();
    for token in [&bureau, &station] {
        let r = d.post("/v1/persons", token, twin.clone()).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
        let text = r.body.to_string();
        assert!(
            !text.contains(&format!("person {}", w.persons[0])) && !text.contains("620802"),
            "{text}"
        );
        assert!(
            text.contains("ask the county civil-affairs bureau"),
            "{text}"
        );
    }
    // The administrator, who reaches the record, is told which one it is.
    let r = d.post("/v1/persons", &d.admin, twin.clone()).await;
    assert!(
        r.body
            .to_string()
            .contains(&format!("person {}", w.persons[0])),
        "{:?}",
        r.body
    );
    // By import, the same: no id, no place; nothing written.
    let csv = format!(
        "姓名,身份证号,社区代码,纬度,经度,类别\n李四,{},620821001001,35.5,106.6,特殊困难老人\n",
        rid(1940, 100)
    );
    let resp = d
        .client
        .post(format!("{}/v1/imports/persons", d.url))
        .bearer_auth(&bureau)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let r = Daemon::reply_to("POST", resp).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.body.to_string();
    assert!(
        !text.contains(&format!("person {}", w.persons[0])) && text.contains("resident_id"),
        "{text}"
    );
    // Volunteers: one registered at station 1 cannot be probed from county 620821.
    d.created("/v1/volunteers", volunteer(w.stations[0], 700))
        .await;
    let r = d
        .post("/v1/volunteers", &station, volunteer(w.stations[2], 700))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(!r.body.to_string().contains("volunteer 1"), "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn references_outside_the_callers_area_answer_alike_whether_they_exist_or_not() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let bureau = d.token("bureau:620821000000").await;
    let station = d.token(&format!("station:{}", w.stations[2])).await;
    // A station in a township of the other county (existing) vs one that is nowhere.
    let station_in = |township: &str, community: &str| {
        json!({"name": "新站", "township": township, "communities": [community],
               "contact": {"name": "李华", "phone": "0933-8211234"}})
    };
    let a = d
        .post(
            "/v1/stations",
            &bureau,
            station_in("620802001000", "620802001001"),
        )
        .await;
    let b = d
        .post(
            "/v1/stations",
            &bureau,
            station_in("620802009000", "620802009001"),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", a.body);
    let strip = |r: &Reply| {
        let t = r.body.to_string();
        (
            r.status,
            t.replace("620802001000", "<t>")
                .replace("620802001001", "<c>")
                .replace("620802009000", "<t>")
                .replace("620802009001", "<c>"),
        )
    };
    assert_eq!(strip(&a), strip(&b), "station creation");
    // A volunteer for a station of the other county vs a station that does not exist.
    let a = d
        .post("/v1/volunteers", &station, volunteer(w.stations[0], 800))
        .await;
    let b = d
        .post("/v1/volunteers", &station, volunteer(9999, 800))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", a.body);
    assert_eq!(
        normalised(&a, &w.stations[0].to_string()),
        normalised(&b, "9999"),
        "volunteer creation"
    );
    // An import row naming a community of the other county vs one that does not exist.
    let row = |community: &str| {
        format!(
            "姓名,身份证号,社区代码,纬度,经度,类别\n李四,{},{community},35.5,106.6,特殊困难老人\n",
            rid(1941, 900)
        )
    };
    let mut answers = Vec::new();
    for community in ["620802001001", "620802009009"] {
        let resp = d
            .client
            .post(format!("{}/v1/imports/persons", d.url))
            .bearer_auth(&bureau)
            .header("content-type", "text/csv")
            .body(row(community))
            .send()
            .await
            .unwrap();
        let r = Daemon::reply_to("POST", resp).await;
        answers.push((r.status, r.body.to_string().replace(community, "<c>")));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stay_in_their_region() {
    let d = Daemon::start().await;
    world(&d).await;
    county_620802_with_duties(&d).await;
    let own = d.token("bureau:620802000000").await;
    let other = d.token("bureau:620821000000").await;
    let kinds = |r: &Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let mine = d.get("/v1/events", &own).await;
    assert!(
        kinds(&mine).contains(&"occurrence.failed".to_owned()),
        "{:?}",
        mine.body
    );
    let theirs = d.get("/v1/events", &other).await;
    assert!(kinds(&theirs).is_empty(), "{:?}", theirs.body);
    // The other bureau still moves on through the outbox.
    assert_eq!(theirs.body["next_after"], mine.body["next_after"]);
    assert!(theirs.body["next_after"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_station_cannot_move_or_switch_off_itself_and_the_bureau_can_undo_a_deactivation() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let s = w.stations[0];
    let token = d.token(&format!("station:{s}")).await;
    let bureau = d.token("bureau:620802000000").await;
    let path = format!("/v1/stations/{s}");
    let before = d.get(&path, &d.admin).await.body;
    for patch in [
        json!({"township": "620821001000"}),
        json!({"communities": ["620802001001", "620802001002"]}),
    ] {
        let r = d.patch(&path, &token, patch.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{patch}: {:?}", r.body);
    }
    let r = d.delete(&path, &token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut after = d.get(&path, &d.admin).await.body;
    assert_eq!(after, before);
    // Its own name and contact are its to change.
    let r = d
        .patch(&path, &token, json!({"name": "东关街道社工站"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The bureau deactivates it: its token stops; reactivates it: the token works again.
    assert_eq!(d.delete(&path, &bureau).await.status, StatusCode::OK);
    assert_eq!(d.get("/v1/me", &token).await.status, StatusCode::FORBIDDEN);
    let r = d
        .post(&format!("{path}/reactivate"), &bureau, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(d.get("/v1/me", &token).await.status, StatusCode::OK);
    after = d.get(&path, &d.admin).await.body;
    assert_eq!(after["active"], true);
    // Regions come back the same way.
    let r = d.delete("/v1/regions/620802001002", &bureau).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = d
        .post("/v1/regions/620802001002/reactivate", &bureau, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["active"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivation_stops_tokens_and_the_last_admin_token_stays() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 600))
        .await;
    let vid = v["id"].as_u64().unwrap();
    let vtoken = d.token(&format!("volunteer:{vid}")).await;
    assert_eq!(
        d.get(&format!("/v1/volunteers/{vid}"), &vtoken)
            .await
            .status,
        StatusCode::OK
    );
    d.delete(&format!("/v1/volunteers/{vid}"), &d.admin).await;
    for path in [format!("/v1/volunteers/{vid}"), "/v1/me".to_owned()] {
        let r = d.get(&path, &vtoken).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {:?}", r.body);
    }
    // A county's bureau tokens stop with the county.
    let bureau = d.token("bureau:620821000000").await;
    d.delete("/v1/regions/620821000000", &d.admin).await;
    assert_eq!(d.get("/v1/me", &bureau).await.status, StatusCode::FORBIDDEN);
    d.post("/v1/regions/620821000000/reactivate", &d.admin, json!({}))
        .await;
    assert_eq!(d.get("/v1/me", &bureau).await.status, StatusCode::OK);
    // The only admin token cannot be revoked through the API; with a second one it can.
    let tokens = d.get("/v1/tokens", &d.admin).await;
    let admin_id = tokens
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = d.delete(&format!("/v1/tokens/{admin_id}"), &d.admin).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(d.get("/v1/me", &d.admin).await.status, StatusCode::OK);
    let second = d.token("admin").await;
    let r = d.delete(&format!("/v1/tokens/{admin_id}"), &second).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        d.get("/v1/me", &d.admin).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_inside_records_and_labels_are_capped() {
    let d = Daemon::start().await;
    world(&d).await;
    let mut p = elder("620802001001", 300);
    p["needs"] = Value::Array((0..100_000).map(|i| Value::from(format!("n{i}"))).collect());
    let r = d.post("/v1/persons", &d.admin, p).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "one error for the list, not one per entry");
    assert_eq!(errors[0]["field"], "needs");
    let r = d
        .post(
            "/v1/tokens",
            &d.admin,
            json!({"scope": "admin", "label": "x".repeat(1000)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "label");
    // A cell a spreadsheet would run is kept as the text it is.
    let mut p = elder("620802001001", 301);
    p["address"] = "=HYPERLINK(\"http://evil\",\"点击\")".into();
    let r = d.post("/v1/persons", &d.admin, p).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["address"], "=HYPERLINK(\"http://evil\",\"点击\")");
}

#[tokio::test(flavor = "multi_thread")]
async fn neighbours_are_the_bureau_s_to_set_and_stay_in_the_county() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let (s1, s2, s3) = (w.stations[0], w.stations[1], w.stations[2]);
    let bureau = d.token("bureau:620802000000").await;
    let own = d.token(&format!("station:{s1}")).await;
    let path = format!("/v1/stations/{s1}");
    let r = d.patch(&path, &own, json!({"neighbours": [s2]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = d.patch(&path, &bureau, json!({"neighbours": [s2]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["neighbours"], json!([s2]));
    for bad in [json!([s1]), json!([s3]), json!([9999])] {
        let r = d.patch(&path, &d.admin, json!({"neighbours": bad})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["field"], "neighbours[0]");
    }
}
