#!/usr/bin/env bash
# Server CPU time per dig request: utime+stime of the server process over the requests answered, for
# the Cairn tree DIR (its .venv), or for the ceiling with DIR=ceiling. A shared, noisy machine moves
# requests/s a lot and CPU time per request much less, so A/B comparisons of the hot path use this.
# Usage (hold the benchmark lock): flock -x /tmp/cairn-bench.lock benchmarks/cpu_per_request.sh DIR [seconds]
# Needs wrk, taskset, curl and ../shared/bench (dig.lua, ceiling.py) beside the repo.
set -euo pipefail
dir=$1; secs=${2:-8}; port=7491
root=$(cd "$(dirname "$0")/.." && pwd)
here=${BENCH_DIR:-$root/../shared/bench}
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234 HUNT=bench
data=$(mktemp -d)
cleanup() { kill "${pid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
if [ "$dir" = ceiling ]; then
  taskset -c 0 "$root/.venv/bin/python" "$here/ceiling.py" $port >/dev/null 2>&1 & pid=$!
  sleep 1
else
  taskset -c 0 "$dir/.venv/bin/cairn" serve --port $port --data-dir "$data" >"$data/log" 2>&1 & pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf -X POST "http://127.0.0.1:$port/v1/hunts" -H "Authorization: Bearer $CAIRN_ADMIN_KEY" \
    -d '{"id":"bench","name":"Bench","world":"overworld","area":{"min":[-500,0,-500],"max":[500,320,500]},"treasures":200,"spawn":{"tags_any":["surface"],"min_spacing":8},"dig":{"reach":6,"tolerance":1},"hints":{"cooldown":"0s"},"duration":"2h"}' >/dev/null
fi
taskset -c 1 wrk -t1 -c64 -d3s -s "$here/dig.lua" "http://127.0.0.1:$port" >/dev/null 2>&1  # warm-up
cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
c0=$(cpu)
out=$(taskset -c 1 wrk -t1 -c64 -d${secs}s -s "$here/dig.lua" "http://127.0.0.1:$port" 2>&1)
c1=$(cpu)
n=$(awk '/requests in/ {print $1}' <<<"$out")
bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); bad=${bad:-0}
tick=$(getconf CLK_TCK)
python3 -c "print(f'$dir us_cpu_per_req={($c1-$c0)/$tick/$n*1e6:.2f} requests=$n non2xx=$bad')"
