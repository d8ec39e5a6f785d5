#!/bin/sh
# Builds {{file}}.wasm with componentize-py (pinned; installed once into .venv from PyPI).
# COMPONENTIZE_PY may name an installed componentize-py instead.
set -eu
cd "$(dirname "$0")"
tool="${COMPONENTIZE_PY:-.venv/bin/componentize-py}"
if [ ! -x "$tool" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet componentize-py==0.25.1
  tool=.venv/bin/componentize-py
fi
"$tool" -d "{{sdk}}/wit" -w action-plugin componentize app -o {{file}}.wasm
echo "built {{file}}.wasm"
