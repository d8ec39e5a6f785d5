//! Create, read, update, deactivate and list every registry resource as an admin would.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn regions_stations_persons_and_volunteers_round_trip() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let a = &d.admin;

    // Regions: level and parent follow from the code; lists filter by subtree.
    let r = d.get("/v1/regions/620802001002", a).await;
    assert_eq!(r.body["level"], "community");
    assert_eq!(r.body["parent"], "620802001000");
    let r = d.get("/v1/regions?under=620802000000", a).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
    let r = d
        .patch("/v1/regions/620802001002", a, json!({"population": 5100}))
        .await;
    assert_eq!(r.body["population"], 5100);
    assert_eq!(r.body["name"], "广场社区");

    // Stations.
    let path = format!("/v1/stations/{}", w.stations[0]);
    let r = d
        .patch(
            &path,
            a,
            json!({"contact": {"name": "赵敏", "phone": "13912345678"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["contact"]["name"], "赵敏");
    let r = d.get("/v1/stations?region=620821000000", a).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);

    // Persons: derived fields, patch, deactivate, reactivate.
    let path = format!("/v1/persons/{}", w.persons[0]);
    let r = d.get(&path, a).await;
    assert_eq!(r.body["birth_date"], "1940-06-15");
    assert_eq!(r.body["gender"], "female"); // sequence 100: even
    let r = d
        .patch(
            &path,
            a,
            json!({"needs": ["meals", "medical"], "phone": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["needs"], json!(["meals", "medical"]));
    assert!(r.body.get("phone").is_none());
    let r = d.delete(&path, a).await;
    assert_eq!(r.body["active"], false);
    let r = d.get("/v1/persons?region=620802001001", a).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = d
        .get("/v1/persons?region=620802001001&include_inactive=true", a)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = d.post(&format!("{path}/reactivate"), a, json!({})).await;
    assert_eq!(r.body["active"], true);

    // Volunteers.
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 1))
        .await;
    let vpath = format!("/v1/volunteers/{}", v["id"]);
    assert_eq!(v["status"], "active");
    let r = d
        .patch(
            &vpath,
            a,
            json!({"skills": ["sign_language"], "monthly_capacity": 2}),
        )
        .await;
    assert_eq!(r.body["skills"], json!(["sign_language"]));
    let r = d.get("/v1/volunteers?skill=sign_language", a).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = d.delete(&vpath, a).await;
    assert_eq!(r.body["status"], "inactive");
    let r = d.get("/v1/volunteers", a).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_through_every_record_once() {
    let d = Daemon::start().await;
    world(&d).await;
    for i in 0..7 {
        d.created("/v1/persons", elder("620802001002", 200 + i))
            .await;
    }
    for (query, expected) in [
        ("/v1/persons?limit=3", 10),
        ("/v1/persons?limit=3&region=620802000000", 9),
        ("/v1/persons?limit=2&category=special_difficulty_elder", 10),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let r = d.get(&path, &d.admin).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
            for p in r.body["items"].as_array().unwrap() {
                seen.push(p["id"].as_u64().unwrap());
            }
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (expected, expected), "{query}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_endpoints_answer() {
    let d = Daemon::start().await;
    world(&d).await;
    let r = reqwest::get(format!("{}/healthz", d.url)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Metrics need an admin token unless the config makes them public.
    let anonymous = reqwest::get(format!("{}/metrics", d.url)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let station = d.token("station:1").await;
    assert_eq!(
        d.get("/metrics", &station).await.status,
        StatusCode::FORBIDDEN
    );
    let metrics = d.metrics().await;
    assert!(
        metrics.contains("linli_store_rows{table=\"persons\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "linli_http_requests_total{method=\"POST\",route=\"/v1/persons\",status=\"201\"} 3"
    ));
    assert!(metrics.contains(
        "linli_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/regions\""
    ));
    let doc: serde_json::Value = reqwest::get(format!("{}/v1/openapi.json", d.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/persons",
        "/v1/persons/{id}",
        "/v1/volunteers",
        "/v1/regions",
        "/v1/stations",
        "/v1/imports/{kind}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every parameter is where the document says: path parameters in their path template,
    // query parameters optional (a generated client otherwise puts `limit` in the path).
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str().unwrap() {
                    "path" => assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter {name} is not in the path"
                    ),
                    "query" => assert!(
                        p["required"] != true || name == "cron",
                        "{method} {path}: query parameter {name} is required"
                    ),
                    _ => {}
                }
            }
        }
    }
    // The documented person schema names the fields the server requires.
    let required = &doc["components"]["schemas"]["PersonInput"]["required"];
    for f in ["name", "resident_id", "community", "location", "categories"] {
        assert!(
            required.as_array().unwrap().iter().any(|x| x == f),
            "{f} not required in {required}"
        );
    }
    d.stop().await;
}

/// `[api] public_metrics = true` serves `/metrics` without a token (for a Prometheus on a
/// private network); the config refuses limits out of range.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_be_made_public_by_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = linli::config::Config::parse(
        "[api]\npublic_metrics = true\nmax_json_kib = 64\n",
        std::path::Path::new("linli.toml"),
    )
    .unwrap();
    let store =
        linli::store::Store::open(&dir.path().join("linli.redb"), Default::default()).unwrap();
    let mut state = linli::api::AppState::new(store, clock()).unwrap();
    state.api = cfg.api.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(linli::server::run(
        listener,
        state,
        async {
            let _ = rx.await;
        },
        linli::server::ServeOptions::new(std::time::Duration::from_secs(5)),
    ));
    let r = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("linli_store_rows"));
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    for bad in [
        "[api]\nmax_json_kib = 1\n",
        "[api]\nmax_import_mib = 0\n",
        "[api]\nopen = true\n",
    ] {
        let e = linli::config::Config::parse(bad, std::path::Path::new("linli.toml"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("linli.toml:2:"), "{e}");
    }
}
