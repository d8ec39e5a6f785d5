//! CSV import over HTTP: all-or-nothing by default, skip-invalid on request, Chinese headers
//! and a BOM accepted, every bad row reported with its line and reason.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

async fn import(d: &Daemon, kind: &str, query: &str, csv: String) -> Reply {
    let resp = d
        .client
        .post(format!("{}/v1/imports/{kind}{query}", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    Daemon::reply_to("POST", resp).await
}

fn persons_csv(bad_line_3: bool) -> String {
    let header = "\u{feff}姓名,身份证号,联系电话,社区代码,纬度,经度,类别,困难类型,居住情况,需求\n";
    let good1 = format!(
        "李秀英,{},13900001111,620802001001,35.5,106.6,特殊困难老人,独居;高龄,独居,meals\n",
        rid(1938, 11)
    );
    let line3 = if bad_line_3 {
        format!(
            "王有才,{},13900001111,620802001001,95.5,106.6,特殊困难老人,,,\n",
            rid(1950, 12)
        )
    } else {
        format!(
            "王有才,{},13900001111,620802001001,35.5,106.6,特殊困难老人,空巢,空巢,\n",
            rid(1950, 12)
        )
    };
    let good3 = format!(
        "赵德福,{},,620802001002,35.5,106.6,special_difficulty_elder;disabled,,,\n",
        rid(1945, 13)
    );
    format!("{header}{good1}{line3}{good3}")
}

fn count(v: &Value) -> usize {
    v["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_row_imports_nothing_unless_skipping() {
    let d = Daemon::start().await;
    world(&d).await;
    let before = count(&d.get("/v1/persons?limit=1000", &d.admin).await.body);

    let r = import(&d, "persons", "", persons_csv(true)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    // Line 3 has an impossible latitude; line 4 is disabled without a disability record.
    let errors: Vec<(u64, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, [(3, "location.lat"), (4, "disability")]);
    assert_eq!(r.body["imported"], 0);
    assert_eq!(
        count(&d.get("/v1/persons?limit=1000", &d.admin).await.body),
        before
    );

    let r = import(&d, "persons", "?skip_invalid=true", persons_csv(true)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["imported"].as_u64(), r.body["skipped"].as_u64()),
        (Some(1), Some(2))
    );
    let after = d
        .get("/v1/persons?region=620802001001&limit=1000", &d.admin)
        .await
        .body;
    assert!(
        after["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "李秀英"
                && p["circumstances"] == serde_json::json!(["living_alone", "advanced_age"]))
    );

    // Importing the same people again is refused as duplicates.
    let r = import(&d, "persons", "", persons_csv(true)).await;
    assert!(
        r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["row"] == 2 && e["field"] == "resident_id")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn volunteers_import_with_their_credentials() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let csv = format!(
        "name,resident_id,phone,station,skills,certifications,safeguarding_expires,availability,lat,lon,monthly_capacity,languages\n\
         王明,{},13800001111,{},first_aid;elder_care,红十字救护员证#first_aid@2027-06-30,2027-12-31,周六 09:00-12:00;sun 14:00-17:00,35.5,106.6,6,普通话;平凉话\n",
        rid(1990, 21),
        w.stations[0]
    );
    let r = import(&d, "volunteers", "", csv).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let list = d.get("/v1/volunteers?skill=first_aid", &d.admin).await.body;
    let v = &list["items"][0];
    assert_eq!(v["certifications"][0]["expires_on"], "2027-06-30");
    assert_eq!(v["safeguarding"]["expires_on"], "2027-12-31");
    assert_eq!(v["availability"][0]["day"], "sat");
    // A header it does not know is refused before any row is read.
    let r = import(&d, "volunteers", "", "name,shoe_size\nx,42\n".into()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("shoe_size"));
    d.stop().await;
}

/// A stop (SIGTERM) during an import ends it at its next block of rows, in either pass, and
/// writes nothing: the import is one transaction, dropped uncommitted.
#[test]
fn an_import_stopped_by_shutdown_writes_nothing() {
    use linli::registry::import::{self, ImportError, ImportOptions, Kind};
    use linli::service::Everything;
    use linli::store::{OpenOptions, Store};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("linli.redb"), OpenOptions::default()).unwrap();
    let now = at("2026-12-01T02:00:00Z");
    let csv = dir.path().join("persons.csv");
    linli::demo::bench_fixture(&store, &csv, 10_000, now).unwrap();
    let len = std::fs::metadata(&csv).unwrap().len();
    let persons = |store: &Store| {
        store
            .read(|r| r.persons(0, 5, |_| true))
            .unwrap()
            .items
            .len()
    };

    // Stopped while checking (first pass), and while writing (second pass).
    for stop_after in [len / 3, len + len / 3] {
        let stop = tokio_util::sync::CancellationToken::new();
        let opts = ImportOptions {
            kind: Kind::Persons,
            skip_invalid: false,
            guard: &Everything,
            now,
            cancel: Some(&stop),
        };
        let r = import::import_file(&store, &csv, &opts, &mut |done| {
            if done >= stop_after {
                stop.cancel();
            }
        });
        assert!(matches!(r, Err(ImportError::Cancelled)), "{r:?}");
        assert_eq!(persons(&store), 0, "a stopped import wrote rows");
    }

    // Not stopped, the same file imports in full.
    let opts = ImportOptions {
        kind: Kind::Persons,
        skip_invalid: false,
        guard: &Everything,
        now,
        cancel: Some(&tokio_util::sync::CancellationToken::new()),
    };
    let r = import::import_file(&store, &csv, &opts, &mut |_| {}).unwrap();
    assert_eq!(r.imported, 10_000);
}

/// The server's stop reaches requests through the state: an import in flight sees it.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_stop_reaches_running_imports() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        linli::store::Store::open(&dir.path().join("linli.redb"), Default::default()).unwrap();
    let state = linli::api::AppState::new(store, clock()).unwrap();
    let stopping = state.stopping.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(!stopping.is_cancelled());
    linli::server::run(
        listener,
        state,
        async {},
        linli::server::ServeOptions::new(std::time::Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert!(stopping.is_cancelled());
}
