#!/usr/bin/env bash
# The project's test command (README): the daemon and SDK workspace, then the shipped plugins'
# own unit tests, which run natively in their separate wasm32-wasip2 workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
cargo test --manifest-path plugins/Cargo.toml
