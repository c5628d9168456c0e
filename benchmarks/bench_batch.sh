#!/usr/bin/env bash
# P2: actions per second through POST /v1/batch (100 dig ops per request), server on core 0, wrk on core 1.
# Runs the ceiling (one dig per request) in the same run for reference. Usage: bench_batch.sh [seconds] [runs]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
secs=${1:-8}; runs=${2:-3}; ops=${OPS:-100}
cairn=$root/.venv/bin/cairn; py=$root/.venv/bin/python
port=7491; cport=7492; data=$(mktemp -d)
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234 HUNT=bench OPS=$ops
cat > "$data/cairn.toml" <<TOML
[limits]
dig_rate = 1000.0
dig_burst = 1000
TOML
cleanup() { kill "${epid:-}" "${cpid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
taskset -c 0 "$cairn" serve --config "$data/cairn.toml" --port $port --data-dir "$data/d" >"$data/serve.log" 2>&1 & epid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
curl -sf -X POST "http://127.0.0.1:$port/v1/hunts" -H "Authorization: Bearer $CAIRN_ADMIN_KEY" \
  -d '{"id":"bench","name":"Bench","world":"overworld","area":{"min":[-500,0,-500],"max":[500,320,500]},"treasures":200,"spawn":{"tags_any":["surface"],"min_spacing":8},"dig":{"reach":6,"tolerance":1},"hints":{"cooldown":"0s"},"duration":"2h"}' >/dev/null
taskset -c 0 "$py" /work/shared/bench/ceiling.py $cport >/dev/null 2>&1 & cpid=$!
sleep 1
for r in $(seq 1 "$runs"); do
  out=$(taskset -c 1 wrk -t1 -c16 -d"${secs}s" --latency -s "$here/batch.lua" "http://127.0.0.1:$port" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); bad=${bad:-0}
  cout=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s /work/shared/bench/dig.lua "http://127.0.0.1:$cport" 2>&1)
  crps=$(awk '/Requests\/sec/ {print $2}' <<<"$cout")
  echo "run $r: batch rps=$rps actions/s=$(python3 -c "print(round($rps*$ops))") p99=$p99 non2xx=$bad | ceiling digs/s=$crps"
done
