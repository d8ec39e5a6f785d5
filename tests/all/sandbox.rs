//! The sandbox holds: every plugin call ends by its deadline whatever the plugin does (host
//! calls included), no plugin can exhaust the host or flood its log, what a plugin answers is
//! checked field by field, and a compile bomb is refused before it costs anything. Each case is
//! decided by what the plugin does, not by how fast this machine is: sleeps are ten minutes
//! against deadlines of a fraction of a second, and "in flight" is observed, not timed.

use std::sync::Arc;
use std::time::Duration;

use linli::config::PluginHostConfig;
use linli::plugins::catalog::{Actor, Catalog, PluginRecord, prune_versions};
use linli::plugins::checks::synthetic_component;
use linli::plugins::model::{Answer, ReviewOutcome, TaskInfo, VisitReport};
use linli::plugins::runtime::{CallError, Compiler, Limits, LoadError, Runtime};
use linli::store::{OpenOptions, Store};
use serde_json::json;

use crate::harness::*;
use crate::plugins::{occurrence, targets};
use crate::wasm::fixture;

fn admin() -> Actor {
    Actor {
        label: "admin".into(),
        bureau: None,
    }
}

fn limits(deadline_ms: u64) -> Limits {
    Limits {
        deadline_ms,
        memory_bytes: 64 << 20,
        ..Limits::default()
    }
}

/// A catalog over a fresh store, with the given host settings and compiler.
fn catalog_with(
    dir: &std::path::Path,
    settings: &PluginHostConfig,
    compiler: Compiler,
) -> Arc<Catalog> {
    let store = Store::open(&dir.join("linli.redb"), OpenOptions::default()).unwrap();
    let clock = clock();
    let rt = Arc::new(Runtime::with_config(clock.clone(), settings, compiler).unwrap());
    Catalog::open(rt, store, clock).unwrap()
}

fn misbehaving(cat: &Catalog, mode: &str, deadline_ms: u64) {
    cat.configure(
        "misbehave",
        Some(json!({ "mode": mode })),
        Some(limits(deadline_ms)),
        &admin(),
    )
    .unwrap();
}

#[test]
fn a_plan_parked_in_a_host_sleep_ends_at_its_deadline() {
    let rt = Runtime::new(clock()).unwrap();
    let loaded = rt.load(&fixture("misbehave"), &limits(2000)).unwrap();
    let r = rt.plan(
        &loaded,
        r#"{"mode":"sleep"}"#,
        &limits(300),
        &occurrence(),
        &targets(1),
    );
    assert_eq!(r.map(|_| ()), Err(CallError::Deadline(300)));
}

#[test]
fn a_describe_that_hangs_is_refused_and_holds_up_no_other_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog_with(
        dir.path(),
        &PluginHostConfig::default(),
        Compiler::InProcess,
    );
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    let slow = fixture("slow-describe");
    let deploying = {
        let cat = cat.clone();
        std::thread::spawn(move || cat.deploy(&slow, &admin()))
    };
    // While the hanging describe is in flight, another plugin is configured, resumed and
    // rolled back to its version: none of them waits for it.
    while cat.runtime().calls_in_flight() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    cat.configure("steady", Some(json!({"x": 1})), None, &admin())
        .unwrap();
    cat.resume("steady", &admin()).unwrap();
    cat.rollback("steady", "1.0.0", &admin()).unwrap();
    assert!(cat.plan("steady", &occurrence(), &targets(2)).is_ok());
    assert!(
        !deploying.is_finished(),
        "the hanging deploy ended before the other plugin's management did"
    );
    match deploying.join().unwrap() {
        Err(e) => assert!(
            e.to_string()
                .contains("describe failed: deadline of 2000 ms exceeded"),
            "{e}"
        ),
        Ok(d) => panic!("deployed {:?}", d.status.id),
    }
}

#[test]
fn calls_beyond_a_plugins_share_are_busy_not_faults_and_shutdown_stops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PluginHostConfig {
        max_concurrent_calls: 2,
        ..PluginHostConfig::default()
    };
    let cat = catalog_with(dir.path(), &settings, Compiler::InProcess);
    cat.deploy(&fixture("misbehave"), &admin()).unwrap();
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    misbehaving(&cat, "sleep", 60_000);
    let sleepers: Vec<_> = (0..2)
        .map(|_| {
            let cat = cat.clone();
            std::thread::spawn(move || cat.plan("misbehave", &occurrence(), &targets(1)))
        })
        .collect();
    while cat.runtime().calls_in_flight() < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    match cat.plan("misbehave", &occurrence(), &targets(1)) {
        Err(CallError::Busy(why)) => assert!(why.contains("already has 2 calls running"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Another plugin still has its share.
    assert!(cat.plan("steady", &occurrence(), &targets(1)).is_ok());
    // Shutting down stops the sleepers at once, long before their 60 s deadline.
    cat.shutdown();
    for s in sleepers {
        assert_eq!(s.join().unwrap().map(|_| ()), Err(CallError::Shutdown));
    }
    let status = cat.status("misbehave").unwrap();
    assert_eq!(status.status, "active", "{:?}", status.reason);
    assert!(status.stats.failures.is_empty(), "{:?}", status.stats);
    assert_eq!(
        cat.plan("steady", &occurrence(), &targets(1)).map(|_| ()),
        Err(CallError::Shutdown)
    );
}

#[test]
fn a_full_instance_pool_is_busy_and_blamed_on_no_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PluginHostConfig {
        instance_slots: 4,
        ..PluginHostConfig::default()
    };
    let cat = catalog_with(dir.path(), &settings, Compiler::InProcess);
    if !cat.runtime().pooling() {
        // Without the pooling allocator there are no slots to run out of.
        return;
    }
    cat.deploy(&fixture("misbehave"), &admin()).unwrap();
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    misbehaving(&cat, "sleep", 60_000);
    let sleepers: Vec<_> = (0..4)
        .map(|_| {
            let cat = cat.clone();
            std::thread::spawn(move || cat.plan("misbehave", &occurrence(), &targets(1)))
        })
        .collect();
    while cat.runtime().instances_in_use() < 4 {
        std::thread::sleep(Duration::from_millis(5));
    }
    match cat.plan("steady", &occurrence(), &targets(1)) {
        Err(CallError::Busy(why)) => {
            assert!(
                why.contains("all 4 plugin instance slots are in use"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    cat.shutdown();
    for s in sleepers {
        assert_eq!(s.join().unwrap().map(|_| ()), Err(CallError::Shutdown));
    }
    let steady = cat.status("steady").unwrap();
    assert_eq!(steady.status, "active");
    assert!(steady.stats.failures.is_empty(), "{:?}", steady.stats);
}

#[test]
fn every_bad_answer_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog_with(
        dir.path(),
        &PluginHostConfig::default(),
        Compiler::InProcess,
    );
    cat.deploy(&fixture("misbehave"), &admin()).unwrap();
    let cases = [
        (
            "empty-due",
            "draft 0: due_start \"\" is not an RFC 3339 instant",
        ),
        ("year-9999", "is too far from the occurrence"),
        ("team-255", "requirements.team_size 255 must be 1 to 20"),
        (
            "nan-distance",
            "requirements.max_distance_km NaN must be a number above 0",
        ),
        (
            "robot",
            "requirements.gender \"robot\" must be \"female\" or \"male\"",
        ),
        (
            "nul-kind",
            "kind \"visit\\0/../x\" must be 1 to 64 lower-case letters",
        ),
        (
            "huge-title",
            "title.zh is 10485760 characters long (at most 200)",
        ),
        (
            "many-skills",
            "requirements.skills has 100000 entries (at most 16)",
        ),
        ("dup-item", "checklist 0: item 1: id \"ok\" appears twice"),
        ("empty-item", "checklist 0: item 0: id \"\" must be 1 to 64"),
        (
            "no-choices",
            "a choice item needs at least 2 choices (it has 0)",
        ),
    ];
    for (mode, expected) in cases {
        // A generous deadline: each case is decided by the output, never by the clock.
        misbehaving(&cat, mode, 60_000);
        match cat.plan("misbehave", &occurrence(), &targets(1)) {
            Err(CallError::BadOutput(m)) => assert!(m.contains(expected), "{mode}: {m}"),
            other => panic!("{mode}: {other:?}"),
        }
        cat.resume("misbehave", &admin()).unwrap();
    }
    misbehaving(&cat, "empty-reasons", 60_000);
    let task = TaskInfo {
        id: 1,
        kind: "visit".into(),
        target: targets(1).remove(0),
        due_start: "2026-12-01T09:00:00+08:00".into(),
        due_end: "2026-12-08T09:00:00+08:00".into(),
        checklist: vec![],
    };
    let report = VisitReport {
        visited_at: "2026-12-02T10:00:00+08:00".into(),
        duration_minutes: 30,
        reached: true,
        answers: vec![Answer {
            item: "ok".into(),
            value: "yes".into(),
        }],
        notes: String::new(),
    };
    match cat.review("misbehave", &task, &report) {
        Err(CallError::BadOutput(m)) => {
            assert!(
                m.contains("a rejection gives 1000000 reasons (1 to 32)"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    misbehaving(&cat, "well", 60_000);
    let (outcome, _) = cat.review("misbehave", &task, &report).unwrap();
    assert_eq!(outcome, ReviewOutcome::Accepted);
}

#[test]
fn errors_are_capped_stack_overflows_named_and_logs_kept_in_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog_with(
        dir.path(),
        &PluginHostConfig::default(),
        Compiler::InProcess,
    );
    cat.deploy(&fixture("misbehave"), &admin()).unwrap();
    misbehaving(&cat, "huge-error", 60_000);
    match cat.plan("misbehave", &occurrence(), &targets(1)) {
        Err(CallError::Plugin(text)) => {
            assert!(text.len() < 4200, "{} bytes", text.len());
            assert!(text.ends_with("more bytes cut)"), "{}", &text[4000..]);
        }
        other => panic!("{other:?}"),
    }
    misbehaving(&cat, "recurse", 60_000);
    match cat.plan("misbehave", &occurrence(), &targets(1)) {
        Err(e @ CallError::StackOverflow { .. }) => {
            assert!(e.to_string().contains("overflowed its stack"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    misbehaving(&cat, "flood", 60_000);
    let (_, logs) = cat
        .plan("misbehave", &occurrence(), &targets(1))
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(logs.len(), 200);
    assert!(
        logs.iter().all(|l| !l.message.contains('\n')),
        "a plugin's newline reached the log unescaped"
    );
    assert_eq!(
        logs[0].message,
        "line 0\\nERROR plugin=steady forged line 0"
    );
}

#[test]
fn interleaving_polite_errors_does_not_dodge_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog_with(
        dir.path(),
        &PluginHostConfig::default(),
        Compiler::InProcess,
    );
    cat.deploy(&fixture("misbehave"), &admin()).unwrap();
    let call = |mode: &str| {
        misbehaving(&cat, mode, 60_000);
        cat.plan("misbehave", &occurrence(), &targets(1))
            .map(|_| ())
    };
    // trap, err, trap, trap: the polite error is not a fault, nor does it wipe the faults.
    assert!(matches!(call("trap"), Err(CallError::Trap { .. })));
    assert!(matches!(call("polite-error"), Err(CallError::Plugin(_))));
    assert!(matches!(call("trap"), Err(CallError::Trap { .. })));
    assert!(matches!(call("trap"), Err(CallError::Trap { .. })));
    assert!(matches!(call("well"), Err(CallError::Quarantined(_))));
    // Alternating a fault with a success quarantines once half of the last ten faulted.
    cat.resume("misbehave", &admin()).unwrap();
    for i in 0..4 {
        assert!(call("trap").is_err(), "{i}");
        assert!(call("well").is_ok(), "{i}");
    }
    assert!(matches!(call("trap"), Err(CallError::Trap { .. })));
    match call("well") {
        Err(CallError::Quarantined(why)) => {
            assert!(why.contains("5 of its last calls failed"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn compile_bombs_and_padded_components_are_refused_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PluginHostConfig {
        max_component_mib: 2,
        ..PluginHostConfig::default()
    };
    let cat = catalog_with(dir.path(), &settings, Compiler::InProcess);
    match cat.deploy(&synthetic_component(200_000), &admin()) {
        Err(e) => assert!(
            e.to_string().contains(
                "refused before compiling: the component defines more than 50000 functions"
            ),
            "{e}"
        ),
        Ok(_) => panic!("a compile bomb was deployed"),
    }
    // A valid plugin padded with a large custom section.
    let mut padded = fixture("steady");
    let pad = 3 << 20;
    padded.push(0);
    let mut len = pad + 5;
    while len >= 0x80 {
        padded.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    padded.push(len as u8);
    padded.push(4);
    padded.extend_from_slice(b"pads");
    padded.resize(padded.len() + pad, 0);
    match cat.deploy(&padded, &admin()) {
        Err(e) => assert!(e.to_string().contains("at most 2 MiB"), "{e}"),
        Ok(_) => panic!("a padded component was stored"),
    }
    assert_eq!(cat.runtime().compiles(), 0);
    assert!(cat.list(None).unwrap().is_empty());
}

#[test]
fn compiles_run_in_a_child_within_limits_and_are_cached_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let child = Compiler::Child(env!("CARGO_BIN_EXE_linlid").into());
    let cat = catalog_with(dir.path(), &PluginHostConfig::default(), child.clone());
    let steady = fixture("steady");
    let deployed = cat.deploy(&steady, &admin()).unwrap();
    assert!(deployed.changed);
    assert_eq!(cat.runtime().compiles(), 1);
    assert!(cat.plan("steady", &occurrence(), &targets(3)).is_ok());
    // The same component again changes nothing and compiles nothing.
    let again = cat.deploy(&steady, &admin()).unwrap();
    assert!(!again.changed);
    assert_eq!(cat.runtime().compiles(), 1);
    cat.shutdown();
    drop(cat);
    // A restart loads the cached artifact: nothing is compiled.
    let cat = catalog_with(dir.path(), &PluginHostConfig::default(), child.clone());
    assert!(cat.plan("steady", &occurrence(), &targets(3)).is_ok());
    assert_eq!(cat.status("steady").unwrap().status, "active");
    assert_eq!(cat.runtime().compiles(), 0);
    cat.shutdown();
    drop(cat);

    // A compile that overruns its time is stopped, and named.
    let quick = PluginHostConfig {
        compile_timeout_secs: 0,
        ..PluginHostConfig::default()
    };
    let other = tempfile::tempdir().unwrap();
    let cat = catalog_with(other.path(), &quick, child);
    match cat.deploy(&fixture("panicker"), &admin()) {
        Err(e) => assert!(
            e.to_string().contains("compiling took longer than 0 s"),
            "{e}"
        ),
        Ok(_) => panic!("deployed"),
    }
}

#[test]
fn a_reload_must_describe_what_was_deployed_and_restarts_keep_rollbacks() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PluginHostConfig::default();
    let cat = catalog_with(dir.path(), &settings, Compiler::InProcess);
    cat.deploy(&fixture("shifty"), &admin()).unwrap();
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    cat.deploy(&fixture("steady-v2"), &admin()).unwrap();
    cat.rollback("steady", "1.0.0", &admin()).unwrap();
    cat.shutdown();
    drop(cat);
    let cat = catalog_with(dir.path(), &settings, Compiler::InProcess);
    // The folder scan of a restart offers every file again: stored ones change nothing.
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("steady.wasm"), fixture("steady-v2")).unwrap();
    let rejected = linli::plugins::folder::Rejected::default();
    let mut seen = Default::default();
    assert_eq!(
        linli::plugins::folder::scan(folder.path(), &cat, &mut seen, &rejected),
        0
    );
    assert_eq!(cat.status("steady").unwrap().active_version, "1.0.0");
    let (plan, _) = cat.plan("steady", &occurrence(), &targets(1)).unwrap();
    assert_eq!(plan.drafts[0].title.en, "1.0.0");
    match cat.plan("shifty", &occurrence(), &targets(1)) {
        Err(CallError::Quarantined(why)) => assert!(
            why.contains("describe must always give the same id and version"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(cat.status("shifty").unwrap().status, "unavailable");
}

#[test]
fn old_versions_are_pruned_but_the_live_one_and_its_rollback_target_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog_with(
        dir.path(),
        &PluginHostConfig::default(),
        Compiler::InProcess,
    );
    cat.deploy(&fixture("steady"), &admin()).unwrap();
    cat.deploy(&fixture("steady-v2"), &admin()).unwrap();
    let mut two: PluginRecord = cat.record("steady").unwrap();
    assert!(prune_versions(&mut two, 2).is_empty());
    assert_eq!(two.versions.len(), 2);
    // Three versions, keep two: the oldest that is neither live nor the rollback target goes.
    let mut three = cat.record("steady").unwrap();
    let mut extra = three.versions[0].clone();
    extra.version = "0.9.0".into();
    three.versions.insert(0, extra);
    let kept = |mut r: PluginRecord| {
        let dropped = prune_versions(&mut r, 2);
        assert_eq!(dropped.len(), 1);
        r.versions
            .iter()
            .map(|v| v.version.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(kept(three.clone()), ["1.0.0", "2.0.0"]);
    three.active_version = "0.9.0".into();
    three.previous_version = Some("2.0.0".into());
    assert_eq!(kept(three), ["0.9.0", "2.0.0"]);
}

#[test]
fn describe_answers_beyond_the_rules_are_refused_by_name() {
    use linli::plugins::checks::description;
    use linli::plugins::model::{ActionInfo, Description, Names, TargetKind};
    let good = Description {
        config_schema: None,
        interface: "0.2.0".into(),
        id: "legal-aid".into(),
        version: "1.2.3".into(),
        names: Names {
            zh: "法律援助".into(),
            en: "Legal aid".into(),
        },
        actions: vec![ActionInfo {
            id: "visit".into(),
            names: Names {
                zh: "探访".into(),
                en: "Visit".into(),
            },
            default_cron: "0 9 1 * *".into(),
            target_kind: TargetKind::Person,
            categories: vec!["disabled".into()],
        }],
    };
    assert_eq!(description(&good), Ok(()));
    let refused = |change: &dyn Fn(&mut Description), expected: &str| {
        let mut d = good.clone();
        change(&mut d);
        let e = description(&d).unwrap_err();
        assert!(e.contains(expected), "{expected}: {e}");
    };
    refused(
        &|d| d.names.zh = "名".repeat(20 << 20),
        "names.zh is 20971520 characters long",
    );
    refused(
        &|d| d.actions[0].categories = (0..400_000).map(|i| format!("c{i}")).collect(),
        "categories has 400000 entries (at most 32)",
    );
    refused(
        &|d| d.actions[0].default_cron = "99 99 99 99 99".into(),
        "default_cron \"99 99 99 99 99\"",
    );
    refused(
        &|d| d.version = "1.2.99999999999999999999999".into(),
        "is not a semantic version",
    );
    refused(
        &|d| d.version = "01.2.3".into(),
        "is not a semantic version",
    );
    refused(
        &|d| d.id = "Legal Aid".into(),
        "plugin id \"Legal Aid\" must be",
    );
    refused(&|d| d.actions.clear(), "offers no actions");
    refused(
        &|d| d.names.en = "line\nERROR forged".into(),
        "holds control characters",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_http_a_sleeping_plugin_answers_by_its_deadline_and_busy_is_503() {
    let d = Daemon::start().await;
    let upload = |bytes: Vec<u8>| {
        d.client
            .post(format!("{}/v1/plugins", d.url))
            .bearer_auth(&d.admin)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
    };
    assert_eq!(upload(fixture("misbehave")).await.unwrap().status(), 201);
    assert_eq!(upload(fixture("misbehave")).await.unwrap().status(), 200);
    let bomb = upload(synthetic_component(200_000)).await.unwrap();
    assert_eq!(bomb.status(), 422);
    let body: serde_json::Value = bomb.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("more than 50000 functions"),
        "{body}"
    );
    let r = d
        .patch(
            "/v1/plugins/misbehave",
            &d.admin,
            json!({"config": {"mode": "sleep"}, "limits": {"deadline_ms": 300, "memory_bytes": 67108864, "drafts_per_target": 16, "output_bytes": 1048576}}),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{:?}", r.body);
    let plan = json!({"occurrence": {"duty": "d", "action": "visit", "scheduled_at": "2026-12-01T09:00:00+08:00", "time_zone": "Asia/Shanghai"},
        "targets": [{"type": "person", "id": 1, "community": "620802001001", "age": 81, "gender": "female"}]});
    let r = d.post("/v1/plugins/misbehave/plan", &d.admin, plan).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("deadline of 300 ms exceeded"),
        "{:?}",
        r.body
    );
    let health = d
        .client
        .get(format!("{}/healthz", d.url))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    d.stop().await;
}

#[test]
fn a_deploy_refused_for_its_shape_names_the_limit() {
    let rt = Runtime::with_config(
        clock(),
        &PluginHostConfig {
            max_functions: 10,
            ..PluginHostConfig::default()
        },
        Compiler::InProcess,
    )
    .unwrap();
    match rt.load(&fixture("steady"), &Limits::default()) {
        Err(LoadError::TooLarge(m)) => {
            assert!(
                m.contains("more than 10 functions (plugins.max_functions)"),
                "{m}"
            )
        }
        other => panic!("{:?}", other.map(|l| l.description.id)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_the_daemon_within_its_grace_with_a_plugin_mid_call() {
    use std::process::Command;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = {
        let store = Store::open(&data.join("linli.redb"), OpenOptions::default()).unwrap();
        linli::api::auth::create_token(
            &store,
            &linli::api::auth::Scope::Admin,
            None,
            linli::clock::system().now(),
        )
        .unwrap()
    };
    let config = dir.path().join("linli.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlog_format = \"json\"\nshutdown_grace_secs = 3\n",
    )
    .unwrap();
    let (mut daemon, address) = serve_process(&config);
    let pid = daemon.0.id();
    let url = format!("http://{address}");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{url}/v1/plugins"))
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(fixture("misbehave"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .patch(format!("{url}/v1/plugins/misbehave"))
        .bearer_auth(&token)
        .json(&json!({"config": {"mode": "sleep"}, "limits": {"deadline_ms": 60000, "memory_bytes": 67108864, "drafts_per_target": 16, "output_bytes": 1048576}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let plan = json!({"occurrence": {"duty": "d", "action": "visit", "scheduled_at": "2026-12-01T09:00:00+08:00", "time_zone": "Asia/Shanghai"},
        "targets": [{"type": "person", "id": 1, "community": "620802001001", "age": 81, "gender": "female"}]});
    let sleeping = {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/v1/plugins/misbehave/plan"))
                .bearer_auth(&token)
                .json(&plan)
                .send()
                .await
        })
    };
    // Wait until the plugin is mid-call (a sleep of ten minutes, a deadline of one).
    loop {
        let status: serde_json::Value = client
            .get(format!("{url}/v1/plugins/misbehave"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["stats"]["in_flight"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The daemon exits by itself, long before the plugin's deadline; the test only bounds
    // the wait so a regression fails instead of hanging.
    let exited = tokio::task::spawn_blocking(move || {
        for _ in 0..3000 {
            if let Some(status) = daemon.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    })
    .await
    .unwrap();
    let status = exited.expect("linlid was still running 30 s after SIGTERM");
    assert!(status.success(), "{status}");
    // The in-flight request got an answer or a closed connection, never a hang.
    match sleeping.await.unwrap() {
        Ok(r) => assert_eq!(r.status(), 503),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
}
