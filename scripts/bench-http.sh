#!/usr/bin/env bash
# Load benchmark: GET /v1/persons/{id} (random ids) from a second process (wrk) on loopback
# against a release `linlid demo`. Needs wrk (apt-get install wrk).
# Usage: scripts/bench-http.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet
data=$(mktemp -d)
port=7991
out="$data/demo.out"
./target/release/linlid demo --data "$data" --listen "127.0.0.1:$port" >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grep -q "admin token" "$out" 2>/dev/null && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
token=$(grep "admin token" "$out" | awk '{print $3}')
script="$data/get.lua"
cat >"$script" <<LUA
request = function()
  return wrk.format("GET", "/v1/persons/" .. math.random(1, 3000), {["Authorization"] = "Bearer $token"})
end
LUA
wrk -t2 -c"$conns" -d"${secs}s" -s "$script" "http://127.0.0.1:$port"
