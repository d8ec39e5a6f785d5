//! The same plugin in Rust, Python (componentize-py) and JavaScript (jco, QuickJS backend):
//! each built here, deployed to the daemon, and planning the same tasks for the same people;
//! each checks its configuration against the schema it declares. The Python type stubs in
//! `sdk/python/bindings` are what componentize-py generates from `sdk/wit` today. A JavaScript
//! bug counts against the plugin; an error it throws on purpose does not.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// componentize-py is pinned: the component and the stubs depend on its version.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// componentize-py in a virtual environment under `target/` (made once, from PyPI).
fn componentize_py() -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let venv = root().join("target").join("py-venv");
    let tool = venv.join("bin").join("componentize-py");
    let stamp = venv.join(".linli-version");
    if !tool.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(COMPONENTIZE_PY) {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (install python3 and its venv module)",
        );
        run(
            Command::new(venv.join("bin").join("pip")).args([
                "install",
                "--quiet",
                COMPONENTIZE_PY,
            ]),
            "pip install componentize-py",
        );
        std::fs::write(&stamp, COMPONENTIZE_PY).unwrap();
    }
    tool
}

fn python_component() -> Vec<u8> {
    let tool = componentize_py();
    let out = root()
        .join("target")
        .join("wasm")
        .join("hospital_escort_py.wasm");
    run(
        Command::new(&tool)
            .arg("-d")
            .arg(root().join("sdk/wit"))
            .args(["-w", "action-plugin", "componentize", "app", "-o"])
            .arg(&out)
            .current_dir(root().join("sdk/examples/hospital-escort/python")),
        "componentize-py componentize",
    );
    std::fs::read(&out).unwrap()
}

/// jco and componentize-js, as `sdk/js/package-lock.json` pins them, under `target/` (npm ci,
/// once per lock file).
fn jco() -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tools = root().join("target").join("js-tools");
    let lock = std::fs::read_to_string(root().join("sdk/js/package-lock.json")).unwrap();
    let bin = tools.join("node_modules/.bin/jco");
    if !bin.exists()
        || std::fs::read_to_string(tools.join("package-lock.json")).ok() != Some(lock.clone())
    {
        std::fs::create_dir_all(&tools).unwrap();
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(root().join("sdk/js").join(f), tools.join(f)).unwrap();
        }
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&tools),
            "npm ci (install Node.js and npm)",
        );
    }
    bin
}

/// A JavaScript plugin (module root `cwd`, which holds `linli.js` too) built into `out`.
fn componentize_js(source: &Path, cwd: &Path, out: &Path) -> Vec<u8> {
    run(
        Command::new(jco())
            .arg("componentize")
            .arg(source)
            .arg("--cwd")
            .arg(cwd)
            .arg("--wit")
            .arg(root().join("sdk/wit"))
            .args([
                "--world-name",
                "action-plugin",
                "--backend",
                "quickjs",
                "--backend-qjs-disable-async",
                "-o",
            ])
            .arg(out),
        "jco componentize",
    );
    std::fs::read(out).unwrap()
}

fn js_component() -> Vec<u8> {
    let sdk = std::fs::canonicalize(root().join("sdk")).unwrap();
    let out = std::fs::canonicalize(root().join("target"))
        .unwrap()
        .join("wasm")
        .join("hospital_escort_js.wasm");
    componentize_js(
        &sdk.join("examples/hospital-escort/js/plugin.js"),
        &sdk,
        &out,
    )
}

async fn upload(d: &Daemon, bytes: Vec<u8>) -> Reply {
    let resp = d
        .client
        .post(format!("{}/v1/plugins", d.url))
        .bearer_auth(&d.admin)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    Daemon::reply_to("POST", resp).await
}

/// Every file under `dir` (relative path → text), caches left out.
fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("__pycache__") {
                    stack.push(p);
                }
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

/// Limits with a deadline no busy machine misses (the default 2 s is for production calls; these
/// tests assert what plugins answer, not how fast).
fn patient() -> Value {
    json!({"deadline_ms": 60_000, "memory_bytes": 64 << 20, "drafts_per_target": 16,
           "output_bytes": 64 << 20})
}

/// The drafts and questions of a plan, with instants compared as instants.
fn normalised(plan: &Value) -> Value {
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let drafts: Vec<Value> = plan["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d["due_start"] = json!(instant(&d["due_start"]));
            d["due_end"] = json!(instant(&d["due_end"]));
            d
        })
        .collect();
    json!({"drafts": drafts, "checklists": plan["checklists"]})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_plugin_in_rust_python_and_javascript_plans_the_same_tasks() {
    let rust = std::fs::read(
        crate::wasm::build("sdk/examples/hospital-escort/rust/Cargo.toml")
            .join("hospital_escort.wasm"),
    )
    .unwrap();
    let python = python_component();
    let js = js_component();
    let targets: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("sdk/examples/hospital-escort/targets.json")).unwrap(),
    )
    .unwrap();
    let occurrence = json!({"duty": "1", "action": "escort",
                            "scheduled_at": "2026-12-01T09:00:00+08:00", "time_zone": "Asia/Shanghai"});
    let mut plans = Vec::new();
    for (language, bytes) in [("rust", rust), ("python", python), ("javascript", js)] {
        let d = Daemon::start().await;
        let r = upload(&d, bytes).await;
        assert_eq!(r.status, StatusCode::CREATED, "{language}: {:?}", r.body);
        assert_eq!(r.body["description"]["interface"], "0.2.0");
        // The schema each declares is the host's to check.
        let r = d
            .patch(
                "/v1/plugins/hospital-escort",
                &d.admin,
                json!({"config": {"window_days": 0}}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{language}: {:?}",
            r.body
        );
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("config.window_days must be at least 1"),
            "{language}: {:?}",
            r.body
        );
        let r = d
            .patch(
                "/v1/plugins/hospital-escort",
                &d.admin,
                json!({"config": {"window_days": 10}, "limits": patient()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{language}: {:?}", r.body);
        let r = d
            .post(
                "/v1/plugins/hospital-escort/plan",
                &d.admin,
                json!({"occurrence": occurrence, "targets": targets}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{language}: {:?}", r.body);
        assert_eq!(
            r.body["drafts"].as_array().unwrap().len(),
            2,
            "{language}: {:?}",
            r.body
        );
        plans.push((language, normalised(&r.body)));
    }
    assert_eq!(plans.len(), 3);
    for (language, plan) in &plans[1..] {
        assert_eq!(&plans[0].1, plan, "rust and {language} planned differently");
    }
    // Ten days from the occurrence, as configured; the 84-year-old's escort is high priority.
    let drafts = &plans[0].1["drafts"];
    assert_eq!(
        drafts[0]["due_end"].as_i64().unwrap() - drafts[0]["due_start"].as_i64().unwrap(),
        10 * 86_400
    );
    assert_eq!(drafts[0]["priority"], "high");
    assert_eq!(drafts[1]["priority"], "normal");
}

#[test]
fn the_python_type_stubs_are_what_componentize_py_generates_from_the_wit() {
    let tool = componentize_py();
    let fresh = tempfile::tempdir().unwrap();
    run(
        Command::new(&tool)
            .arg("-d")
            .arg(root().join("sdk/wit"))
            .args(["-w", "action-plugin", "bindings"])
            .arg(fresh.path()),
        "componentize-py bindings",
    );
    assert!(
        files(fresh.path()) == files(&root().join("sdk/python/bindings")),
        "sdk/python/bindings is stale: regenerate it with `componentize-py -d sdk/wit -w action-plugin bindings sdk/python/bindings`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_bug_counts_against_the_plugin_and_a_reported_error_does_not() {
    let dir = root().join("target").join("js-bug");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();
    std::fs::copy(root().join("sdk/js/linli.js"), dir.join("linli.js")).unwrap();
    let example =
        std::fs::read_to_string(root().join("sdk/examples/hospital-escort/js/plugin.js")).unwrap();
    // One target: a TypeError (a bug); two: an error thrown on purpose.
    let buggy = example
        .replace("'../../../js/linli.js'", "'./linli.js'")
        .replace("id: 'hospital-escort'", "id: 'buggy-escort'")
        .replace(
            "const window = settings().window_days;",
            "const window = settings().window_days;\n    if (targets.length === 1) { null.boom(); }\n    if (targets.length === 2) { throw new PluginError('two targets are not enough'); }",
        );
    assert_ne!(buggy, example);
    std::fs::write(dir.join("plugin.js"), buggy).unwrap();
    let bytes = componentize_js(&dir.join("plugin.js"), &dir, &dir.join("buggy.wasm"));
    let d = Daemon::start().await;
    assert_eq!(upload(&d, bytes).await.status, StatusCode::CREATED);
    let r = d
        .patch(
            "/v1/plugins/buggy-escort",
            &d.admin,
            json!({"limits": patient()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let targets: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(root().join("sdk/examples/hospital-escort/targets.json")).unwrap(),
    )
    .unwrap();
    let occurrence = json!({"duty": "1", "action": "escort",
                            "scheduled_at": "2026-12-01T09:00:00+08:00", "time_zone": "Asia/Shanghai"});
    let plan = |n: usize| json!({"occurrence": occurrence, "targets": targets[..n]});
    let r = d
        .post("/v1/plugins/buggy-escort/plan", &d.admin, plan(2))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(
        r.body["detail"],
        "the plugin reported: two targets are not enough"
    );
    let r = d
        .post("/v1/plugins/buggy-escort/plan", &d.admin, plan(1))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the plugin failed (a bug, not an error it reported): plan: TypeError"),
        "{detail}"
    );
    // Counted as the plugin's fault, by kind; the polite error before it is not counted.
    let metrics = d.metrics().await;
    let failures: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("linli_plugin_failures_total{plugin=\"buggy-escort\""))
        .collect();
    assert_eq!(
        failures,
        ["linli_plugin_failures_total{plugin=\"buggy-escort\",kind=\"bug\"} 1"],
        "{metrics}"
    );
}

#[test]
fn python_and_javascript_projects_from_plugin_new_build_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let linlid = env!("CARGO_BIN_EXE_linlid");
    for (lang, env, tool) in [
        ("python", "COMPONENTIZE_PY", componentize_py()),
        ("js", "JCO", jco()),
    ] {
        let out = Command::new(linlid)
            .args(["plugin", "new", "legal-aid", "--lang", lang, "--dir"])
            .arg(dir.path().join(lang))
            .arg("--sdk")
            .arg(root().join("sdk"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{lang}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let project = dir.path().join(lang).join("legal-aid");
        run(
            Command::new(project.join("build.sh")).env(env, &tool),
            &format!("{lang}: ./build.sh"),
        );
        let wasm = project.join("legal_aid.wasm");
        let out = Command::new(linlid)
            .args(["plugin", "check"])
            .arg(&wasm)
            .arg("--config")
            .arg(project.join("config.json"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lang}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("id       legal-aid") && text.contains("fits the schema"),
            "{lang}: {text}"
        );
        let out = Command::new(linlid)
            .args(["plugin", "run"])
            .arg(&wasm)
            .args(["--deadline-ms", "60000", "review", "--task"])
            .arg(project.join("task.json"))
            .arg("--report")
            .arg(project.join("report.json"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lang}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("\"outcome\": \"accepted\""), "{lang}: {text}");
        let out = Command::new(linlid)
            .args(["plugin", "run"])
            .arg(&wasm)
            .args(["--deadline-ms", "60000", "plan", "--targets"])
            .arg(project.join("targets.json"))
            .args(["--at", "2026-12-01T09:00:00+08:00"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{lang}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
