//! `linlid plugin …`: check, run and export plugin components offline, through the same host
//! (checks, child-process compile, deadlines) as a deployment.

use std::path::{Path, PathBuf};

use super::{Failure, compiler, read_json};
use crate::clock::{self, Clock};
use crate::plugins::runtime::{Limits, Runtime};

pub(crate) fn load_plugin(
    rt: &Runtime,
    file: &Path,
    limits: &Limits,
) -> Result<crate::plugins::runtime::Loaded, Failure> {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
    rt.load(&bytes, limits)
        .map_err(|e| Failure::Rejected(format!("{}: refused: {e}", file.display())))
}

/// `linlid plugin shipped --out DIR`: writes the plugins built into linlid to a folder.
pub fn shipped(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out).map_err(|e| Failure::Usage(format!("{}: {e}", out.display())))?;
    for (name, bytes) in crate::plugins::SHIPPED {
        let path = out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// A call `linlid plugin run` makes.
pub enum Call {
    /// `plan` over the targets in a JSON file.
    Plan {
        targets: PathBuf,
        action: Option<String>,
        at: Option<String>,
    },
    /// `review` of the visit report in a JSON file for the task in another.
    Review { task: PathBuf, report: PathBuf },
}

/// The runtime offline commands use: the same checks and the same child-process compile as a
/// deployment.
fn offline_runtime() -> Result<Runtime, Failure> {
    Runtime::with_config(clock::system(), &Default::default(), compiler())
        .map_err(|e| Failure::Runtime(e.into()))
}

/// `linlid plugin check FILE`: runs a deployment's checks and prints what the plugin describes.
pub fn check(file: &Path, config: Option<&Path>) -> Result<(), Failure> {
    let rt = offline_runtime()?;
    let loaded = load_plugin(&rt, file, &Limits::default())?;
    let d = &loaded.description;
    println!(
        "{}: ok — a linli:plugin@{} action plugin",
        file.display(),
        d.interface
    );
    println!("  id       {}", d.id);
    println!("  version  {}", d.version);
    println!("  name     {} / {}", d.names.zh, d.names.en);
    println!("  sha256   {}", loaded.sha256);
    println!("  size     {} bytes", loaded.size);
    for a in &d.actions {
        let targets = match a.target_kind {
            crate::plugins::model::TargetKind::Person => {
                format!("people in care: {}", a.categories.join(", "))
            }
            crate::plugins::model::TargetKind::Community => "communities".to_owned(),
        };
        println!(
            "  action   {} — {} / {} — default `{}` — {targets}",
            a.id, a.names.zh, a.names.en, a.default_cron
        );
    }
    let Some(schema) = &d.config_schema else {
        println!("  config   no schema (interface 0.1, or none declared): not checked by the host");
        if config.is_some() {
            return Err(Failure::Rejected(
                "--config: this plugin declares no configuration schema to check it against".into(),
            ));
        }
        return Ok(());
    };
    let settings: Vec<&str> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    println!("  config   schema with settings: {}", settings.join(", "));
    match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("--config {}: {e}", path.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Failure::Rejected(format!("--config {}: not JSON: {e}", path.display()))
            })?;
            crate::plugins::schema::validate(schema, &value)
                .map_err(|e| Failure::Rejected(format!("--config {}: {e}", path.display())))?;
            println!("  config   {} fits the schema", path.display());
        }
        None => {
            if let Err(e) = crate::plugins::schema::validate(schema, &serde_json::json!({})) {
                println!("  config   note: with no configuration set, {e}");
            }
        }
    }
    Ok(())
}

/// `linlid plugin run FILE plan|review …`: one call through the real host; prints its JSON
/// answer on stdout and the plugin's log lines on stderr.
pub fn run(
    file: &Path,
    call: Call,
    config: Option<&Path>,
    deadline_ms: u64,
) -> Result<(), Failure> {
    let rt = offline_runtime()?;
    let limits = Limits {
        deadline_ms,
        ..Limits::default()
    };
    let loaded = load_plugin(&rt, file, &limits)?;
    let config = match config {
        Some(p) => read_json::<serde_json::Value>(p)?.to_string(),
        None => "{}".to_owned(),
    };
    let (json, logs) = match call {
        Call::Plan {
            targets,
            action,
            at,
        } => {
            let targets: Vec<crate::plugins::model::Target> = read_json(&targets)?;
            let action = action
                .or_else(|| loaded.description.actions.first().map(|a| a.id.clone()))
                .unwrap_or_default();
            let tz = chrono_tz::Asia::Shanghai;
            let at = at.unwrap_or_else(|| {
                clock::SystemClock
                    .now()
                    .with_timezone(&tz)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            });
            let occurrence = crate::plugins::model::Occurrence {
                duty: "cli".into(),
                action,
                scheduled_at: at,
                time_zone: tz.name().into(),
            };
            let (drafts, logs) = rt
                .plan(&loaded, &config, &limits, &occurrence, &targets)
                .map_err(|e| Failure::Rejected(format!("plan failed: {e}")))?;
            (serde_json::to_string_pretty(&drafts), logs)
        }
        Call::Review { task, report } => {
            let task: crate::plugins::model::TaskInfo = read_json(&task)?;
            let report: crate::plugins::model::VisitReport = read_json(&report)?;
            let (outcome, logs) = rt
                .review(&loaded, &config, &limits, &task, &report)
                .map_err(|e| Failure::Rejected(format!("review failed: {e}")))?;
            (serde_json::to_string_pretty(&outcome), logs)
        }
    };
    for l in logs {
        eprintln!("[{}] {}", l.level, l.message);
    }
    println!("{}", json.map_err(|e| Failure::Runtime(e.into()))?);
    Ok(())
}

/// The files of a new Rust plugin project (`daemon/templates/rust`), with `{{…}}` placeholders.
const RUST_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../../templates/rust/rust-toolchain.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/rust/src/lib.rs"),
    ),
    (
        "targets.json",
        include_str!("../../templates/rust/targets.json"),
    ),
    ("task.json", include_str!("../../templates/rust/task.json")),
    (
        "report.json",
        include_str!("../../templates/rust/report.json"),
    ),
    ("README.md", include_str!("../../templates/rust/README.md")),
];

/// The Python project `linlid plugin new --lang python` writes (componentize-py).
const PYTHON_TEMPLATE: &[(&str, &str)] = &[
    ("app.py", include_str!("../../templates/python/app.py")),
    ("build.sh", include_str!("../../templates/python/build.sh")),
    (
        "config.json",
        include_str!("../../templates/python/config.json"),
    ),
    (
        "targets.json",
        include_str!("../../templates/rust/targets.json"),
    ),
    (
        "task.json",
        include_str!("../../templates/python/task.json"),
    ),
    (
        "report.json",
        include_str!("../../templates/python/report.json"),
    ),
    (
        "README.md",
        include_str!("../../templates/python/README.md"),
    ),
];

/// The JavaScript project `linlid plugin new --lang js` writes (jco, QuickJS backend).
const JS_TEMPLATE: &[(&str, &str)] = &[
    ("plugin.js", include_str!("../../templates/js/plugin.js")),
    ("linli.js", include_str!("../../../sdk/js/linli.js")),
    ("package.json", include_str!("../../../sdk/js/package.json")),
    (
        "package-lock.json",
        include_str!("../../../sdk/js/package-lock.json"),
    ),
    ("build.sh", include_str!("../../templates/js/build.sh")),
    (
        "config.json",
        include_str!("../../templates/js/config.json"),
    ),
    (
        "targets.json",
        include_str!("../../templates/rust/targets.json"),
    ),
    (
        "task.json",
        include_str!("../../templates/python/task.json"),
    ),
    (
        "report.json",
        include_str!("../../templates/python/report.json"),
    ),
    ("README.md", include_str!("../../templates/js/README.md")),
];

/// The plugin languages `linlid plugin new` writes projects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// `linlid plugin new NAME`: writes a ready plugin project — the skeleton (one action, a
/// checklist, a review, a configuration struct), a release profile for small components, a test
/// through the harness, and sample `targets.json`, `task.json` and `report.json` for
/// `linlid plugin run`. `sdk` is the path the project depends on `linli-sdk` by.
pub fn new_project(name: &str, lang: Lang, dir: &Path, sdk: &Path) -> Result<PathBuf, Failure> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        return Err(Failure::Usage(format!(
            "{name:?}: a plugin name is lower-case letters, digits and single dashes, starting \
             with a letter (e.g. legal-aid)"
        )));
    }
    let root = dir.join(name);
    if root.exists()
        && std::fs::read_dir(&root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::Usage(format!(
            "{} already exists and is not empty: choose another name or --dir",
            root.display()
        )));
    }
    let sdk = std::path::absolute(sdk)
        .map_err(|e| Failure::Usage(format!("--sdk {}: {e}", sdk.display())))?;
    if !sdk.join("Cargo.toml").is_file() || !sdk.join("wit").is_dir() {
        return Err(Failure::Usage(format!(
            "--sdk {}: not linli's sdk folder (it has Cargo.toml and wit/); point it at the sdk \
             folder of a linli checkout",
            sdk.display()
        )));
    }
    let crate_name = name.to_owned();
    let struct_name: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let file = name.replace('-', "_");
    let sdk_text = sdk.display().to_string().replace('\\', "/");
    let template = match lang {
        Lang::Rust => RUST_TEMPLATE,
        Lang::Python => PYTHON_TEMPLATE,
        Lang::Js => JS_TEMPLATE,
    };
    for (path, text) in template {
        let body = text
            .replace("{{crate}}", &crate_name)
            .replace("{{id}}", name)
            .replace("{{struct}}", &struct_name)
            .replace("{{file}}", &file)
            .replace("{{sdk}}", &sdk_text);
        let out = root.join(path);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::Usage(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&out, body)
            .map_err(|e| Failure::Usage(format!("{}: {e}", out.display())))?;
        #[cfg(unix)]
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Failure::Usage(format!("{}: {e}", out.display())))?;
        }
    }
    Ok(root)
}
