//! The plugin host against hostile plugins: each is refused or stopped with an error naming
//! the cause, while a good plugin beside it keeps working and the daemon keeps serving.

use std::sync::Arc;

use linli::plugins::catalog::{Actor, Catalog};
use linli::plugins::model::{
    Answer, Occurrence, PersonTarget, ReviewOutcome, Target, TaskInfo, VisitReport,
};
use linli::plugins::runtime::{CallError, Limits, LoadError, Runtime};
use linli::store::{OpenOptions, Store};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;
use crate::wasm::fixture;

fn runtime() -> Runtime {
    Runtime::new(clock()).unwrap()
}

pub fn occurrence() -> Occurrence {
    Occurrence {
        duty: "d1".into(),
        action: "visit".into(),
        scheduled_at: "2026-12-01T09:00:00+08:00".into(),
        time_zone: "Asia/Shanghai".into(),
    }
}

pub fn targets(n: usize) -> Vec<Target> {
    (0..n as u64)
        .map(|id| {
            Target::Person(PersonTarget {
                id,
                community: "620802001001".into(),
                age: 82,
                gender: "female".into(),
                categories: vec!["special_difficulty_elder".into()],
                circumstances: vec!["living_alone".into()],
                disability: None,
                living: Some("alone".into()),
                has_guardian: false,
                needs: vec![],
            })
        })
        .collect()
}

fn quick() -> Limits {
    Limits {
        deadline_ms: 300,
        memory_bytes: 32 << 20,
        ..Limits::default()
    }
}

#[test]
fn a_good_plugin_describes_plans_and_reviews() {
    let rt = runtime();
    let loaded = rt.load(&fixture("steady"), &Limits::default()).unwrap();
    assert_eq!(
        (
            loaded.description.id.as_str(),
            loaded.description.version.as_str()
        ),
        ("steady", "1.0.0")
    );
    let (plan, logs) = rt
        .plan(
            &loaded,
            "{\"hello\":1}",
            &Limits::default(),
            &occurrence(),
            &targets(3),
        )
        .unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts.len(), 3);
    assert_eq!(drafts[2].target, 2);
    assert_eq!(drafts[0].due_end, "2026-12-08T09:00:00+08:00");
    assert_eq!(logs[0].message, "planning 3 targets (config {\"hello\":1})");
    let task = TaskInfo {
        id: 9,
        kind: "visit".into(),
        target: targets(1).remove(0),
        due_start: drafts[0].due_start.clone(),
        due_end: drafts[0].due_end.clone(),
        checklist: plan.checklist_of(&drafts[0]).to_vec(),
    };
    let report = |answers: Vec<Answer>| VisitReport {
        visited_at: "2026-12-02T10:00:00+08:00".into(),
        duration_minutes: 30,
        reached: true,
        answers,
        notes: String::new(),
    };
    let (outcome, _) = rt
        .review(&loaded, "{}", &Limits::default(), &task, &report(vec![]))
        .unwrap();
    assert_eq!(
        outcome,
        ReviewOutcome::Rejected {
            reasons: vec!["ok".into()]
        }
    );
    let yes = vec![Answer {
        item: "ok".into(),
        value: "yes".into(),
    }];
    let (outcome, _) = rt
        .review(&loaded, "{}", &Limits::default(), &task, &report(yes))
        .unwrap();
    assert_eq!(outcome, ReviewOutcome::Accepted);
}

#[test]
fn hostile_plugins_are_stopped_and_named() {
    let rt = runtime();
    let run_within = |name: &str, limits: &Limits| {
        let loaded = rt.load(&fixture(name), &Limits::default()).unwrap();
        rt.plan(&loaded, "{}", limits, &occurrence(), &targets(1))
            .map(|_| ())
    };
    let run = |name: &str| run_within(name, &quick());
    // Cases decided by the output, never by the clock: a deadline no machine reaches.
    let patient = Limits {
        deadline_ms: 60_000,
        ..quick()
    };
    assert_eq!(run("endless-loop"), Err(CallError::Deadline(300)));
    assert_eq!(run("memory-bomb"), Err(CallError::Memory(32)));
    match run_within("panicker", &patient) {
        Err(CallError::Trap { stderr, .. }) => {
            assert!(
                stderr.contains("the checklist table is corrupt"),
                "{stderr}"
            )
        }
        other => panic!("{other:?}"),
    }
    match run_within("huge-list", &patient) {
        Err(CallError::BadOutput(m)) => assert!(m.contains("50001 drafts for 1 targets"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_plugin_sees_no_files_network_environment_or_clock_but_the_hosts() {
    let rt = runtime();
    let loaded = rt.load(&fixture("snoop"), &Limits::default()).unwrap();
    let (plan, _) = rt
        .plan(
            &loaded,
            "{}",
            &Limits::default(),
            &occurrence(),
            &targets(1),
        )
        .unwrap();
    let drafts = plan.drafts.clone();
    // The harness clock reads 2026-11-29T01:00:00Z.
    assert_eq!(
        drafts[0].title.en,
        "env=0 args=0 file=false net=false now=1795914000"
    );
}

#[test]
fn components_that_are_not_plugins_are_refused() {
    let rt = runtime();
    let err = |bytes: &[u8]| rt.load(bytes, &Limits::default()).err().unwrap();
    match err(&fixture("wrong-version")) {
        LoadError::WrongInterface { found, supported } => {
            assert_eq!(
                (found.as_str(), supported.as_str()),
                (
                    "linli:plugin@0.9.0",
                    "linli:plugin@0.2.0 or linli:plugin@0.1.0"
                )
            )
        }
        other => panic!("{other}"),
    }
    assert_eq!(err(b"\0asm\x01\0\0\0"), LoadError::CoreModule);
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert_eq!(err(&random), LoadError::NotWasm);
    let mut truncated = fixture("steady");
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(err(&truncated), LoadError::Compile(_)));
    assert!(err(&random).to_string().contains("not WebAssembly"));
}

fn catalog() -> (tempfile::TempDir, Arc<Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("linli.redb"), OpenOptions::default()).unwrap();
    let clock = clock();
    let rt = Arc::new(Runtime::new(clock.clone()).unwrap());
    (dir, Catalog::open(rt, store, clock).unwrap())
}

fn admin() -> Actor {
    Actor {
        label: "admin".into(),
        bureau: None,
    }
}

#[test]
fn a_failing_plugin_is_quarantined_and_its_neighbour_keeps_working() {
    let (_dir, cat) = catalog();
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    cat.deploy(&fixture("panicker"), &admin()).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            cat.plan("panicker", &occurrence(), &targets(1)),
            Err(CallError::Trap { .. })
        ));
        assert!(cat.plan("steady", &occurrence(), &targets(2)).is_ok());
    }
    match cat.plan("panicker", &occurrence(), &targets(1)) {
        Err(CallError::Quarantined(why)) => {
            assert!(why.contains("3 of its last calls failed"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let status = cat.status("panicker").unwrap();
    assert_eq!(status.status, "quarantined");
    assert_eq!(status.stats.failures.get("trap"), Some(&3));
    cat.resume("panicker", &admin()).unwrap();
    assert!(matches!(
        cat.plan("panicker", &occurrence(), &targets(1)),
        Err(CallError::Trap { .. })
    ));
}

#[test]
fn hot_replacement_loses_no_call_and_versions_roll_back() {
    let (_dir, cat) = catalog();
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    let v2 = fixture("steady-v2");
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let cat = cat.clone();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                for _ in 0..40 {
                    let (plan, _) = cat.plan("steady", &occurrence(), &targets(5)).unwrap();
                    let drafts = plan.drafts.clone();
                    assert_eq!(drafts.len(), 5);
                    versions.push(drafts[0].title.en.clone());
                }
                versions
            })
        })
        .collect();
    let status = cat.deploy(&v2, &admin()).unwrap().status;
    assert_eq!(status.active_version, "2.0.0");
    let seen: Vec<String> = callers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(seen.len(), 160);
    assert!(seen.iter().all(|v| v == "1.0.0" || v == "2.0.0"));
    let (plan, _) = cat.plan("steady", &occurrence(), &targets(1)).unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts[0].title.en, "2.0.0");
    let status = cat.rollback("steady", "1.0.0", &admin()).unwrap();
    assert_eq!(
        (status.active_version.as_str(), status.versions.len()),
        ("1.0.0", 2)
    );
    let (plan, _) = cat.plan("steady", &occurrence(), &targets(1)).unwrap();
    let drafts = plan.drafts.clone();
    assert_eq!(drafts[0].title.en, "1.0.0");
    // A different build under a version already deployed is refused.
    let mut other = fixture("steady");
    other.extend_from_slice(&[0, 4, b'n', b'o', b't', b'e']);
    assert!(cat.deploy(&other, &admin()).is_err());
}

async fn upload(d: &Daemon, token: &str, bytes: Vec<u8>) -> Reply {
    let resp = d
        .client
        .post(format!("{}/v1/plugins", d.url))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    Daemon::reply_to("POST", resp).await
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_deploy_over_http_and_the_daemon_outlives_hostile_ones() {
    let d = Daemon::start().await;
    world(&d).await;
    let r = upload(&d, &d.admin, fixture("steady")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["description"]["actions"][0]["id"], "visit");
    let r = upload(&d, &d.admin, fixture("wrong-version")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("linli:plugin@0.9.0")
    );
    let r = upload(&d, &d.admin, b"not wasm".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = upload(&d, &d.admin, fixture("endless-loop")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = d.patch("/v1/plugins/endless-loop", &d.admin, json!({"limits": {"deadline_ms": 200, "memory_bytes": 33554432, "drafts_per_target": 16, "output_bytes": 1048576}})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let plan = json!({"occurrence": {"duty": "d", "action": "visit", "scheduled_at": "2026-12-01T09:00:00+08:00", "time_zone": "Asia/Shanghai"},
        "targets": [{"type": "person", "id": 1, "community": "620802001001", "age": 81, "gender": "female", "categories": ["special_difficulty_elder"]}]});
    // The endless loop is stopped while the daemon keeps answering other requests.
    let looping = d.post("/v1/plugins/endless-loop/plan", &d.admin, plan.clone());
    let meanwhile = async {
        let r = d.get("/v1/regions/620802000000", &d.admin).await;
        assert_eq!(r.status, StatusCode::OK);
        d.post("/v1/plugins/steady/plan", &d.admin, plan.clone())
            .await
    };
    let (looped, steady) = tokio::join!(looping, meanwhile);
    assert_eq!(looped.status, StatusCode::BAD_GATEWAY, "{:?}", looped.body);
    assert!(
        looped.body["detail"]
            .as_str()
            .unwrap()
            .contains("deadline of 200 ms")
    );
    assert_eq!(steady.status, StatusCode::OK, "{:?}", steady.body);
    assert_eq!(steady.body["drafts"].as_array().unwrap().len(), 1);
    let list = d.get("/v1/plugins", &d.admin).await;
    assert_eq!(list.body["plugins"].as_array().unwrap().len(), 2);
    let metrics = d.metrics().await;
    assert!(
        metrics
            .contains("linli_plugin_failures_total{plugin=\"endless-loop\",kind=\"deadline\"} 1"),
        "{metrics}"
    );
    // A station may look but not deploy; a bureau cannot replace an administrator's plugin.
    let s = d.token("station:1").await;
    assert_eq!(
        upload(&d, &s, fixture("steady")).await.status,
        StatusCode::FORBIDDEN
    );
    let b = d.token("bureau:620802000000").await;
    assert_eq!(
        upload(&d, &b, fixture("steady-v2")).await.status,
        StatusCode::FORBIDDEN
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deployed_plugins_survive_a_restart_and_the_folder_is_watched() {
    let d = Daemon::start().await;
    assert_eq!(
        upload(&d, &d.admin, fixture("steady")).await.status,
        StatusCode::CREATED
    );
    let dir = d.stop().await;
    let d = Daemon::start_in(dir).await;
    // The daemon serves at once; the plugin is `loading` until its cached artifact is up.
    let mut r = d.get("/v1/plugins/steady", &d.admin).await;
    for _ in 0..6000 {
        if r.body["status"] != "loading" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        r = d.get("/v1/plugins/steady", &d.admin).await;
    }
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    d.stop().await;

    let (_dir, cat) = catalog();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("steady.wasm"), fixture("steady")).unwrap();
    std::fs::write(folder.path().join("junk.wasm"), b"junk").unwrap();
    let rejected = linli::plugins::folder::Rejected::default();
    let mut seen = Default::default();
    assert_eq!(
        linli::plugins::folder::scan(folder.path(), &cat, &mut seen, &rejected),
        1
    );
    assert_eq!(
        cat.status("steady").unwrap().versions[0].uploaded_by,
        "folder:steady.wasm"
    );
    let refused = rejected.snapshot();
    assert!(
        refused.values().any(|r| r.contains("not WebAssembly")),
        "{refused:?}"
    );
    // Unchanged files are not deployed again.
    assert_eq!(
        linli::plugins::folder::scan(folder.path(), &cat, &mut seen, &rejected),
        0
    );
}

/// A misspelled category (`disabled_person`) is refused at `linlid plugin check` and at deploy,
/// naming the category linli keeps; a duty for a person action that names no categories must
/// say which.
#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_category_is_refused_with_the_closest_known_one() {
    let bytes = crate::wasm::fixture("misspelt");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("misspelt.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
        .args(["plugin", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("\"disabled_person\"") && text.contains("did you mean \"disabled\""),
        "{text}"
    );

    let d = crate::harness::Daemon::start().await;
    crate::harness::world(&d).await;
    let r = d
        .client
        .post(format!("{}/v1/plugins", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let r = crate::harness::Daemon::reply_to("POST", r).await;
    assert_eq!(
        r.status,
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        r.body
    );
    assert!(
        r.body.to_string().contains("did you mean \\\"disabled\\\""),
        "{:?}",
        r.body
    );
    // panicker's action names no categories: its duty must name them.
    crate::harness::deploy(&d, "panicker").await;
    let r = d
        .post(
            "/v1/duties",
            &d.admin,
            serde_json::json!({"name": "x", "plugin": "panicker", "action": "visit",
                               "selector": {"region": "620802000000"}}),
        )
        .await;
    assert_eq!(
        r.status,
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        r.body
    );
    assert!(
        r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "selector.categories"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .contains("special_difficulty_elder")),
        "{:?}",
        r.body
    );
    d.stop().await;
}

/// The template walk-through, as an author follows it: `linlid plugin new`, build for
/// wasm32-wasip2, `plugin check`, `plugin run` on the sample files, deploy, and a duty dry run.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_made_from_the_template_builds_checks_runs_and_deploys() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let linlid = env!("CARGO_BIN_EXE_linlid");
    let dir = tempfile::tempdir().unwrap();
    let sdk = root.join("sdk");
    let new = |name: &str| {
        std::process::Command::new(linlid)
            .args(["plugin", "new", name, "--dir"])
            .arg(dir.path())
            .arg("--sdk")
            .arg(&sdk)
            .output()
            .unwrap()
    };
    // Careless names are refused, and so is a folder already there.
    for bad in ["Legal_Aid", "x-", "legal--aid", "9lives"] {
        let out = new(bad);
        assert!(!out.status.success(), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("lower-case"));
    }
    let out = new("legal-aid");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = dir.path().join("legal-aid");
    assert!(
        !new("legal-aid").status.success(),
        "an existing project is never overwritten"
    );

    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let target = root.join("target").join("wasm-template");
    let built = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/legal_aid.wasm");
    let run = |args: &[&str]| {
        std::process::Command::new(linlid)
            .args(args)
            .current_dir(&project)
            .output()
            .unwrap()
    };
    let w = wasm.to_str().unwrap();
    let out = run(&["plugin", "check", w]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "plugin",
        "run",
        w,
        "plan",
        "--targets",
        "targets.json",
        "--at",
        "2026-12-01T09:00:00+08:00",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["drafts"].as_array().unwrap().len(), 2, "{plan}");
    let out = run(&[
        "plugin",
        "run",
        w,
        "review",
        "--task",
        "task.json",
        "--report",
        "report.json",
    ]);
    let review: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(review["outcome"], "accepted", "{review}");

    let d = crate::harness::Daemon::start().await;
    crate::harness::world(&d).await;
    let r = d
        .client
        .post(format!("{}/v1/plugins", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/wasm")
        .body(std::fs::read(&wasm).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let r = d
        .post(
            "/v1/duties/dry-run",
            &d.admin,
            serde_json::json!({"name": "法律援助探访", "plugin": "legal-aid", "action": "visit",
                               "selector": {"region": "620802000000"}}),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["targets"], 2);
    assert_eq!(r.body["drafts"], 2);
    d.stop().await;
}
