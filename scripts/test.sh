#!/usr/bin/env bash
# The project's test command (README): the daemon and SDK workspace, then the shipped plugins'
# own unit tests, which run natively in their separate wasm32-wasip2 workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
# The console's browser test drives Debian's Chromium through its driver (CJK fonts make the
# screenshots legible). Installed here when missing, so this one command sets everything up.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
    || ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing chromium, chromium-driver and fonts-noto-cjk (apt-get) for the browser test" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null
  else
    echo "scripts/test.sh: install chromium, chromedriver and Noto CJK fonts for the browser test" >&2
  fi
fi
cargo test --workspace
cargo test --manifest-path plugins/Cargo.toml
