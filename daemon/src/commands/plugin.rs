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
pub fn check(file: &Path) -> Result<(), Failure> {
    let rt = offline_runtime()?;
    let loaded = load_plugin(&rt, file, &Limits::default())?;
    let d = &loaded.description;
    println!(
        "{}: ok — a linli:plugin@0.1.0 action plugin",
        file.display()
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
