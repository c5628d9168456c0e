#!/usr/bin/env bash
# P3–P6: `cairn bench` against a fresh `cairn serve`, server on core 0, load on core 1.
# Usage: bench_load.sh NAME [cairn bench options...]
#   writes benchmarks/reports/NAME.json and NAME.html; CONFIG=file.toml serves with that config.
# Hold the benchmark lock: flock -x /tmp/cairn-bench.lock benchmarks/bench_load.sh p3-steady --players 2500
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
name=$1; shift
cairn=$root/.venv/bin/cairn; port=${PORT:-7494}; data=$(mktemp -d)
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234
mkdir -p "$here/reports"
cleanup() { kill "${spid:-}" 2>/dev/null || true; wait "${spid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
args=(serve --port "$port" --data-dir "$data/d")
[ -n "${CONFIG:-}" ] && args+=(--config "$CONFIG")
[ -n "${PROFILE:-}" ] && args+=(--profile "$PROFILE")
taskset -c 0 "$cairn" "${args[@]}" >"$data/serve.log" 2>&1 & spid=$!
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { tail -20 "$data/serve.log"; exit 1; }
[ -n "${SETUP:-}" ] && PORT=$port "$SETUP"
taskset -c 1 "$cairn" bench --url "http://127.0.0.1:$port" --quiet \
  --json "$here/reports/$name.json" --html "$here/reports/$name.html" "$@"
kill -INT $spid; wait $spid 2>/dev/null || true
