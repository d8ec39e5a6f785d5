#!/bin/sh
# Builds {{file}}.wasm with jco (QuickJS backend; the versions package-lock.json pins, installed
# once with npm ci). JCO may name an installed jco instead.
set -eu
cd "$(dirname "$0")"
here="$(pwd)"
tool="${JCO:-node_modules/.bin/jco}"
if [ ! -x "$tool" ]; then
  npm ci --no-audit --no-fund
  tool=node_modules/.bin/jco
fi
"$tool" componentize "$here/plugin.js" --cwd "$here" --wit "{{sdk}}/wit" --world-name action-plugin \
  --backend quickjs --backend-qjs-disable-async -o "$here/{{file}}.wasm"
