//! Scope isolation: stations see only the communities they serve, bureaus only their county,
//! volunteers no registry lists; out-of-scope records answer 404 so existence does not leak.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_station_reads_only_the_communities_it_serves() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let s1 = d.token(&format!("station:{}", w.stations[0])).await;
    let own = d.get(&format!("/v1/persons/{}", w.persons[0]), &s1).await;
    assert_eq!(own.status, StatusCode::OK);
    for other in [w.persons[1], w.persons[2], 999] {
        let r = d.get(&format!("/v1/persons/{other}"), &s1).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "person {other}");
        assert_eq!(r.content_type, "application/problem+json");
    }
    let list = d.get("/v1/persons", &s1).await;
    let ids: Vec<u64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [w.persons[0]]);
    // Asking for another community's subtree yields nothing rather than its people.
    let list = d.get("/v1/persons?region=620802001002", &s1).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
    // Nor can it write there, or move its own person out of reach.
    let r = d.post("/v1/persons", &s1, elder("620802001002", 300)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = d
        .patch(
            &format!("/v1/persons/{}", w.persons[0]),
            &s1,
            json!({"community": "620802001002"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = d
        .patch(
            &format!("/v1/persons/{}", w.persons[1]),
            &s1,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bureau_reads_its_county_and_nothing_beyond() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let b = d.token("bureau:620802000000").await;
    let list = d.get("/v1/persons", &b).await;
    let mut ids: Vec<u64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [w.persons[0], w.persons[1]]);
    let r = d.get(&format!("/v1/persons/{}", w.persons[2]), &b).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = d.get("/v1/regions/620821001001", &b).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = d.get(&format!("/v1/stations/{}", w.stations[2]), &b).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = d.get("/v1/persons?region=620821000000", &b).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    // A bureau may create tokens for its own stations only.
    let r = d
        .post(
            "/v1/tokens",
            &b,
            json!({"scope": format!("station:{}", w.stations[0])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = d
        .post(
            "/v1/tokens",
            &b,
            json!({"scope": format!("station:{}", w.stations[2])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = d.post("/v1/tokens", &b, json!({"scope": "admin"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volunteer_reads_its_own_record_and_no_lists() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 1))
        .await;
    let other = d
        .created("/v1/volunteers", volunteer(w.stations[0], 2))
        .await;
    let t = d.token(&format!("volunteer:{}", v["id"])).await;
    assert_eq!(
        d.get(&format!("/v1/volunteers/{}", v["id"]), &t)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        d.get(&format!("/v1/volunteers/{}", other["id"]), &t)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    for list in [
        "/v1/persons",
        "/v1/volunteers",
        "/v1/stations",
        "/v1/regions",
    ] {
        assert_eq!(
            d.get(list, &t).await.status,
            StatusCode::FORBIDDEN,
            "{list}"
        );
    }
    assert_eq!(
        d.get(&format!("/v1/persons/{}", w.persons[0]), &t)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_unknown_tokens_are_refused() {
    let d = Daemon::start().await;
    let r = d.get("/v1/persons", "lnl_0000").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.content_type, "application/problem+json");
    let r = reqwest::get(format!("{}/v1/persons", d.url)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = d.get("/v1/me", &d.admin).await;
    assert_eq!(r.body["scope"], "admin");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_stops_working() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let s = d.token(&format!("station:{}", w.stations[0])).await;
    assert_eq!(d.get("/v1/persons", &s).await.status, StatusCode::OK);
    let list = d.get("/v1/tokens", &d.admin).await;
    let scope = format!("station:{}", w.stations[0]);
    let entry = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == scope.as_str())
        .unwrap();
    let id = entry["id"].as_str().unwrap().to_owned();
    let r = d.delete(&format!("/v1/tokens/{id}"), &d.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["revoked_at"].is_string());
    assert_eq!(
        d.get("/v1/persons", &s).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        d.get("/v1/tokens", &s).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = d.delete("/v1/tokens/12", &d.admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    d.stop().await;
}
