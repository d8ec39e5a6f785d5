//! `linlid` as an operator runs it: exit codes and messages for bad config, bad CSV rows and
//! refused database files.

use std::process::{Command, Output};

use crate::harness::rid;
use linli::registry::RegionInput;
use linli::registry::service;
use linli::service::Everything;
use linli::store::{OpenOptions, Store};

fn linlid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linlid"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_config_points_at_the_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("linli.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:7878\"\nlog_format = \"xml\"\n").unwrap();
    let o = linlid(&["check-config", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("linli.toml:2:14"), "{e}");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7878\"\ntime_zone = \"Asia/Shanghai\"\n",
    )
    .unwrap();
    let o = linlid(&["check-config", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The shipped example is valid.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/linli.example.toml");
    let o = linlid(&["check-config", example]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

fn seeded_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("linli.redb"), OpenOptions::default()).unwrap();
    let now = linli::clock::Clock::now(&linli::clock::SystemClock);
    for (code, name) in [
        ("620800000000", "平凉市"),
        ("620802000000", "崆峒区"),
        ("620802001000", "东关街道"),
        ("620802001001", "新民路社区"),
    ] {
        let input = RegionInput {
            code: code.into(),
            name: name.into(),
            settlement: None,
            population: None,
        };
        service::create_region(&store, &Everything, input, now).unwrap();
    }
    dir
}

#[test]
fn import_reports_bad_rows_and_imports_nothing() {
    let dir = seeded_dir();
    let data = dir.path().to_str().unwrap();
    let csv = dir.path().join("persons.csv");
    std::fs::write(
        &csv,
        format!(
            "name,resident_id,community,lat,lon,categories\n\
             李秀英,{},620802001001,35.5,106.6,special_difficulty_elder\n\
             王有才,110105194912310021,620802001001,35.5,106.6,special_difficulty_elder\n",
            rid(1938, 1)
        ),
    )
    .unwrap();
    let o = linlid(&["import", "persons", csv.to_str().unwrap(), "--data", data]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("persons.csv:3: resident_id: check digit is 1 but should be X"),
        "{e}"
    );
    assert!(e.contains("nothing was imported"), "{e}");
    let o = linlid(&[
        "import",
        "persons",
        csv.to_str().unwrap(),
        "--data",
        data,
        "--skip-invalid",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("imported 1 of 2 rows (1 skipped)"));
}

#[test]
fn token_create_checks_its_scope() {
    let dir = seeded_dir();
    let data = dir.path().to_str().unwrap();
    let o = linlid(&["token", "create", "--scope", "admin", "--data", data]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("lnl_"));
    let o = linlid(&["token", "create", "--scope", "station:42", "--data", data]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("station 42 is not registered"));
    let o = linlid(&["token", "create", "--scope", "superuser", "--data", data]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_refused_database_gives_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("linli.redb"), vec![0xAB; 8192]).unwrap();
    let o = linlid(&[
        "token",
        "create",
        "--scope",
        "admin",
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("linli.redb"), "{}", stderr(&o));
}

/// `linlid match plan` plans the documented example file, and names the mistake in a bad one.
#[test]
fn match_plan_reads_the_example_and_refuses_bad_files() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/match-example.json");
    let out = linlid(&["match", "plan", example]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["staffed"], 2);
    assert_eq!(plan["assignments"]["101"], serde_json::json!([3]));
    assert_eq!(
        plan["unstaffed"]["103"]["reasons"][0]["code"],
        "team_incomplete"
    );
    assert!(plan["total_distance_km"].as_f64().unwrap() > 0.0);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("\"priority\": \"urgent\"", "\"priority\": \"very\"");
    std::fs::write(&bad, text).unwrap();
    let out = linlid(&["match", "plan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tasks[0].priority") && err.contains("line"),
        "{err}"
    );
    // Well-formed JSON with nonsense in it is refused with exit code 4, naming the volunteer.
    let text = std::fs::read_to_string(example).unwrap().replace(
        "\"start\": \"09:00\", \"end\": \"17:00\"",
        "\"start\": \"99999999:00\", \"end\": \"17:00\"",
    );
    std::fs::write(&bad, text).unwrap();
    let out = linlid(&["match", "plan", bad.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("volunteer 1: availability[0]"), "{err}");
}
