#!/usr/bin/env bash
# Issue 5: position updates per second end to end through POST /v1/positions in batches of 500,
# server on core 0, wrk on core 1, with live hunts (2,000 treasures with proximity fences) in the area.
# Usage: bench_positions.sh [seconds] [runs]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
secs=${1:-8}; runs=${2:-3}; per=${UPDATES:-500}
cairn=$root/.venv/bin/cairn; port=7493; data=$(mktemp -d)
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234 UPDATES=$per
cleanup() { kill "${epid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
taskset -c 0 "$cairn" serve --port $port --data-dir "$data/d" >"$data/serve.log" 2>&1 & epid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
for h in 1 2 3 4; do
  curl -sf -X POST "http://127.0.0.1:$port/v1/hunts" -H "Authorization: Bearer $CAIRN_ADMIN_KEY" \
    -d "{\"id\":\"pos$h\",\"area\":{\"min\":[-600,-64,-600],\"max\":[600,320,600]},\"treasures\":500,\"spawn\":{\"tags_any\":[\"surface\"]},\"proximity\":{\"radius\":16},\"duration\":\"2h\"}" >/dev/null
done
for r in $(seq 1 "$runs"); do
  out=$(taskset -c 1 wrk -t1 -c16 -d"${secs}s" --latency -s "$here/positions.lua" "http://127.0.0.1:$port" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); bad=${bad:-0}
  echo "run $r: requests/s=$rps updates/s=$(python3 -c "print(round($rps*$per))") p99=$p99 non2xx=$bad"
done
