//! Bad requests: each answered with a 4xx problem+json naming the field, and nothing stored.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

async fn person_count(d: &Daemon) -> usize {
    let r = d
        .get("/v1/persons?include_inactive=true&limit=1000", &d.admin)
        .await;
    r.body["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_person_requests_store_nothing() {
    let d = Daemon::start().await;
    world(&d).await;
    let before = person_count(&d).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = elder("620802001001", 500);
        f(&mut p);
        p
    };
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "wrong type",
            with(&|p| p["location"]["lat"] = json!("north")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "location.lat",
        ),
        (
            "impossible latitude",
            with(&|p| p["location"]["lat"] = json!(123.0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "location.lat",
        ),
        (
            "impossible longitude",
            with(&|p| p["location"]["lon"] = json!(-181)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "location.lon",
        ),
        (
            "bad check digit",
            with(&|p| {
                let mut id = p["resident_id"].as_str().unwrap().to_owned();
                let last = id.pop().unwrap();
                id.push(if last == '0' { '1' } else { '0' });
                p["resident_id"] = json!(id);
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "resident_id",
        ),
        (
            "unknown region",
            with(&|p| p["community"] = json!("620802009009")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "community",
        ),
        (
            "not a community",
            with(&|p| p["community"] = json!("620802001000")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "community",
        ),
        (
            "unknown field",
            with(&|p| p["nickname"] = json!("x")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            "unknown category",
            with(&|p| p["categories"] = json!(["vip"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "categories[0]",
        ),
        (
            "missing field",
            with(&|p| {
                p.as_object_mut().unwrap().remove("location");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            "child without guardian",
            with(&|p| {
                p["resident_id"] = json!(rid(2016, 7));
                p["categories"] = json!(["left_behind_child"]);
                p["circumstances"] = json!([]);
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "guardian",
        ),
    ];
    for (what, body, status, field) in cases {
        let r = d.post("/v1/persons", &d.admin, body).await;
        assert_eq!(r.status, status, "{what}: {:?}", r.body);
        assert_eq!(r.content_type, "application/problem+json", "{what}");
        assert_eq!(r.body["status"], status.as_u16(), "{what}");
        if !field.is_empty() {
            let fields: Vec<&str> = r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{what}: {fields:?}");
        }
    }
    // Malformed JSON and the wrong content type.
    let raw = d
        .client
        .post(format!("{}/v1/persons", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let r = Daemon::reply_to("POST", raw).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.content_type, "application/problem+json");
    let raw = d
        .client
        .post(format!("{}/v1/persons", d.url))
        .bearer_auth(&d.admin)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(person_count(&d).await, before);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_and_bad_patches_keep_the_stored_record() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    // The same resident ID twice.
    let r = d
        .post("/v1/persons", &d.admin, elder("620802001002", 100))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // A patch that breaks a rule leaves the record as it was.
    let path = format!("/v1/persons/{}", w.persons[0]);
    let before = d.get(&path, &d.admin).await.body;
    let r = d
        .patch(&path, &d.admin, json!({"location": {"lat": 91}}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = d.patch(&path, &d.admin, json!({"id": 77})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(d.get(&path, &d.admin).await.body, before);
    // Bad query and path parameters: 400 problem+json naming the parameter, on every list.
    for (path, field) in [
        ("/v1/persons?limit=0", "limit"),
        ("/v1/persons?limit=-1", "limit"),
        ("/v1/persons?limit=many", "limit"),
        ("/v1/persons?cursor=zzz", "cursor"),
        ("/v1/persons?region=62", "region"),
        ("/v1/persons?category=elderly", "category"),
        ("/v1/persons?colour=red", ""),
        ("/v1/persons?include_inactive=perhaps", "include_inactive"),
        ("/v1/tasks?limit=5000", "limit"),
        ("/v1/tasks?status=lost", "status"),
        ("/v1/events?limit=0", "limit"),
        ("/v1/duties?limit=1001", "limit"),
        ("/v1/volunteers?limit=0", "limit"),
        ("/v1/regions?limit=0", "limit"),
        ("/v1/stations?limit=0", "limit"),
        ("/v1/persons/abc", "id"),
        ("/v1/persons/-3", "id"),
        ("/v1/tasks/1.5", "id"),
        ("/v1/duties/x/occurrences", "id"),
    ] {
        let r = d.get(path, &d.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {:?}", r.body);
        assert_eq!(r.content_type, "application/problem+json", "{path}");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{path}: {detail}");
        if !field.is_empty() {
            assert_eq!(r.body["errors"][0]["field"], field, "{path}: {:?}", r.body);
        }
    }
    let r = d.get("/v1/persons?colour=red", &d.admin).await;
    assert!(
        r.body["detail"].as_str().unwrap().contains("colour"),
        "{:?}",
        r.body
    );
    // A method a route does not take.
    let r = d.call(Method::PUT, "/v1/persons", &d.admin, None).await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json")
    );
    let r = d.get("/v1/nothing", &d.admin).await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    // Regions: unknown parent, bad code, duplicates.
    let r = d
        .post(
            "/v1/regions",
            &d.admin,
            json!({"code": "620802007001", "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = d
        .post(
            "/v1/regions",
            &d.admin,
            json!({"code": "6208", "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = d
        .post(
            "/v1/regions",
            &d.admin,
            json!({"code": "620802000000", "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Volunteers: a station that does not exist, a window that ends before it starts.
    let mut v = volunteer(999, 1);
    v["availability"] = json!([{"day": "mon", "start": "12:00", "end": "09:00"}]);
    let r = d.post("/v1/volunteers", &d.admin, v).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let v = volunteer(w.stations[0], 1);
    let mut bad_window = v.clone();
    bad_window["availability"] = json!([{"day": "mon", "start": "12:00", "end": "09:00"}]);
    let r = d.post("/v1/volunteers", &d.admin, bad_window).await;
    assert_eq!(r.body["errors"][0]["field"], "availability[0].end");
    d.stop().await;
}

/// A body over the route's limit answers 413 problem+json before it is read, whatever its
/// content type; JSON routes take 1 MiB by default.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_answer_413() {
    let d = Daemon::start().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    for path in ["/v1/persons", "/v1/regions", "/v1/duties", "/v1/tokens"] {
        let resp = d
            .client
            .post(format!("{}{path}", d.url))
            .bearer_auth(&d.admin)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let r = Daemon::reply_to("POST", resp).await;
        assert_eq!(
            r.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {:?}",
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json");
    }
    // A merge patch may be sent as application/merge-patch+json.
    world(&d).await;
    let resp = d
        .client
        .patch(format!("{}/v1/persons/1", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"phone": "13900002222"}"#)
        .send()
        .await
        .unwrap();
    let r = Daemon::reply_to("PATCH", resp).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// A patch that gives a volunteer another volunteer's resident ID is a documented 409 (the
/// harness checks the status against the OpenAPI document).
#[tokio::test(flavor = "multi_thread")]
async fn a_patch_to_a_taken_resident_id_is_a_documented_conflict() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let a = d
        .created("/v1/volunteers", volunteer(w.stations[0], 970))
        .await;
    d.created("/v1/volunteers", volunteer(w.stations[0], 971))
        .await;
    let r = d
        .patch(
            &format!("/v1/volunteers/{}", a["id"]),
            &d.admin,
            json!({"resident_id": rid(1990, 971)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}
