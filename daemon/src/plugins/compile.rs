//! Compiling a component in a child process. Compiling is the one step of a deploy whose time
//! and memory grow with what the uploader sent, so the daemon runs it as `linlid compile-plugin`
//! with an address-space limit (set by the child on itself) and a deadline (the parent kills it),
//! and takes back a precompiled artifact. A compile bomb then costs a child process, never the
//! daemon's memory. Artifacts are cached in the store by component hash and engine key, so a
//! restart compiles nothing.
//!
//! Never: load an artifact from anywhere but this daemon's own compile child or its own store.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Largest artifact taken back from a child.
const MAX_ARTIFACT: u64 = 1 << 30;

/// Compiles `bytes` in a child process (`exe compile-plugin`), within `timeout` and
/// `memory_mib` of address space. `stopping` is polled so a shutdown stops the compile.
pub(super) fn in_child(
    exe: &Path,
    bytes: &[u8],
    timeout: Duration,
    memory_mib: u64,
    stopping: &dyn Fn() -> bool,
) -> Result<Vec<u8>, String> {
    let mut child = Command::new(exe)
        .arg("compile-plugin")
        .arg("--memory-mib")
        .arg(memory_mib.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .spawn()
        .map_err(|e| format!("cannot start the compiler ({}): {e}", exe.display()))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("cannot talk to the compiler process".into());
    };
    let started = Instant::now();
    let (status, artifact, messages) = std::thread::scope(|s| {
        let writer = s.spawn(move || {
            // A child that dies early closes its end; the error shows in its status instead.
            let _ = stdin.write_all(bytes);
        });
        let reader = s.spawn(move || {
            let mut out = Vec::new();
            stdout.take(MAX_ARTIFACT).read_to_end(&mut out).map(|_| out)
        });
        let errors = s.spawn(move || {
            let mut out = String::new();
            let _ = stderr.take(64 * 1024).read_to_string(&mut out);
            out
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if stopping() => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err("the daemon is shutting down".to_owned());
                }
                Ok(None) if started.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "compiling took longer than {} s and was stopped \
                         (plugins.compile_timeout_secs)",
                        timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("cannot wait for the compiler: {e}"));
                }
            }
        };
        let _ = writer.join();
        let artifact = reader.join().unwrap_or_else(|_| Ok(Vec::new()));
        let messages = errors.join().unwrap_or_default();
        (status, artifact, messages)
    });
    let status = status?;
    let messages = messages.trim();
    if !status.success() {
        if messages.contains("memory allocation") || messages.contains("out of memory") {
            return Err(format!(
                "compiling needed more than {memory_mib} MiB and was stopped \
                 (plugins.compile_memory_mib)"
            ));
        }
        let last = messages.lines().last().unwrap_or("");
        return Err(if last.is_empty() {
            format!("the compiler stopped ({status})")
        } else {
            super::checks::cap_text(last.to_owned(), 2000)
        });
    }
    artifact.map_err(|e| format!("cannot read the compiled artifact: {e}"))
}

/// Loads an artifact made by this daemon's compiler.
pub(super) fn deserialize(engine: &Engine, artifact: &[u8]) -> Result<Component, String> {
    // SAFETY: `Component::deserialize` trusts that the bytes are an artifact wasmtime wrote.
    // They are: they come from our own compile child (same binary, same engine configuration)
    // or from our own store, which only ever holds such artifacts; wasmtime still checks the
    // header, version and engine compatibility and refuses a mismatch.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, artifact) };
    component.map_err(|e| format!("cannot load the compiled artifact: {e:#}"))
}

/// The child's side (`linlid compile-plugin --memory-mib N`): limits its own address space,
/// reads a component on stdin, writes the precompiled artifact on stdout.
pub fn child_main(memory_mib: u64) -> Result<(), String> {
    let limit = memory_mib.saturating_mul(1 << 20);
    rlimit::setrlimit(rlimit::Resource::AS, limit, limit)
        .map_err(|e| format!("cannot limit the compiler's memory: {e}"))?;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the component: {e}"))?;
    let engine = Engine::new(&super::runtime::engine_config(false, 1))
        .map_err(|e| format!("cannot start the engine: {e}"))?;
    let artifact = engine
        .precompile_component(&bytes)
        .map_err(|e| format!("{e:#}"))?;
    std::io::stdout()
        .write_all(&artifact)
        .map_err(|e| format!("cannot write the artifact: {e}"))
}
