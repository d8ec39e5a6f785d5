//! Builds the shipped action plugins (`plugins/`, a wasm32-wasip2 workspace of its own) so the
//! daemon can embed them: `linlid demo` deploys them, `linlid plugin shipped` writes them out.
//! The build shares `target/wasm` with the tests (so the guest dependencies compile once), and
//! copies the components into `OUT_DIR`. The wasm32-wasip2 target comes from
//! `rust-toolchain.toml`, which rustup honours on any machine; this script never runs rustup.

use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGINS: [&str; 4] = [
    "elderly_visit",
    "child_protection",
    "disability_care",
    "emergency_drill",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("..");
    let plugins = root.join("plugins");
    let sdk = root.join("sdk");
    for dir in [&plugins, &sdk] {
        watch(dir);
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let target_dir = root.join("target").join("wasm");
    if let Err(message) = build(&plugins, &target_dir) {
        println!("cargo::error={message}");
        return;
    }
    for name in PLUGINS {
        let built = target_dir
            .join("wasm32-wasip2")
            .join("release")
            .join(format!("{name}.wasm"));
        if let Err(e) = std::fs::copy(&built, out_dir.join(format!("{name}.wasm"))) {
            println!("cargo::error=cannot copy {}: {e}", built.display());
        }
    }
}

/// Re-run when any source file of the guest crates changes (not their build output).
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn build(plugins: &Path, target_dir: &Path) -> Result<(), String> {
    let out = cargo()
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .map_err(|e| format!("cannot run cargo to build the shipped plugins: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
        return Err(
            "the wasm32-wasip2 target is missing: rust-toolchain.toml asks rustup for it; \
             run `rustup target add wasm32-wasip2` if your rustup did not add it"
                .into(),
        );
    }
    Err(format!(
        "building the shipped plugins failed: {}",
        first_lines(&stderr)
    ))
}

fn first_lines(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect::<Vec<_>>()
        .join(" | ")
}
