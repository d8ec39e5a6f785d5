//! Dates are judged in the configured time zone (Asia/Shanghai here): at 01:00 in Beijing it is
//! already tomorrow, though UTC still says today.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_elder_turning_sixty_at_one_in_the_morning_in_beijing_is_sixty() {
    let d = Daemon::start().await;
    world(&d).await;
    // 2026-12-01 01:00 in Beijing is 2026-11-30 17:00 UTC.
    d.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-12-01T01:00:00+08:00")
            .unwrap()
            .to_utc(),
    );
    let born = NaiveDate::from_ymd_opt(1966, 12, 1).unwrap();
    let person = |seq: u16| {
        json!({
            "name": "赵秀英",
            "resident_id": linli::registry::resident_id::make("620802", born, seq),
            "community": "620802001001",
            "location": {"lat": 35.54, "lon": 106.66},
            "categories": ["special_difficulty_elder"],
            "circumstances": ["living_alone"],
        })
    };
    let r = d.post("/v1/persons", &d.admin, person(211)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // An hour before midnight in Beijing she is still 59.
    d.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-30T23:00:00+08:00")
            .unwrap()
            .to_utc(),
    );
    let r = d.post("/v1/persons", &d.admin, person(213)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("age 59"),
        "{:?}",
        r.body
    );
    d.stop().await;
}
