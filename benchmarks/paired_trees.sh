#!/usr/bin/env bash
# Two Cairn trees at once: both `cairn serve` on core 0, each driven by its own wrk (dig.lua) on core 1
# at the same time, so whatever else the machine does hits both alike. Per round: each server's CPU
# time per dig (utime+stime over the digs answered), its digs/s, and B's CPU per dig over A's.
# A shared, noisy machine moves requests/s run to run; this ratio much less.
# Usage (hold the benchmark lock): flock -x /tmp/cairn-bench.lock benchmarks/paired_trees.sh DIR_A DIR_B [rounds] [seconds] [conns]
# Needs wrk, taskset, curl and ../shared/bench (dig.lua) beside the repo.
set -euo pipefail
a=$1; b=$2; rounds=${3:-5}; secs=${4:-8}; conns=${5:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
here=${BENCH_DIR:-$root/../shared/bench}
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234 HUNT=bench
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
hunt='{"id":"bench","name":"Bench","world":"overworld","area":{"min":[-500,0,-500],"max":[500,320,500]},"treasures":200,"spawn":{"tags_any":["surface"],"min_spacing":8},"dig":{"reach":6,"tolerance":1},"hints":{"cooldown":"0s"},"duration":"2h"}'
start() {  # dir port -> pid
  mkdir -p "$tmp/$2"
  taskset -c 0 "$1/.venv/bin/cairn" serve --port "$2" --data-dir "$tmp/$2" >"$tmp/$2.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf -X POST "http://127.0.0.1:$2/v1/hunts" -H "Authorization: Bearer $CAIRN_ADMIN_KEY" -d "$hunt" >/dev/null
  echo "$pid"
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { taskset -c 1 wrk -t1 -c"$conns" -d"$2" -s "$here/dig.lua" "http://127.0.0.1:$1" 2>&1; }
pa=$(start "$a" 7701); pids+=("$pa")
pb=$(start "$b" 7702); pids+=("$pb")
load 7701 3s >/dev/null & load 7702 3s >/dev/null; wait  # warm-up
tick=$(getconf CLK_TCK)
printf '%-5s %12s %12s %10s %10s %8s\n' round "A us/dig" "B us/dig" "A dig/s" "B dig/s" "B/A cpu"
for r in $(seq 1 "$rounds"); do
  ca=$(cpu "$pa"); cb=$(cpu "$pb")
  load 7701 "${secs}s" >"$tmp/a.out" & load 7702 "${secs}s" >"$tmp/b.out"; wait
  ca=$(( $(cpu "$pa") - ca )); cb=$(( $(cpu "$pb") - cb ))
  na=$(awk '/requests in/ {print $1}' "$tmp/a.out"); nb=$(awk '/requests in/ {print $1}' "$tmp/b.out")
  for f in a b; do grep -q Non-2xx "$tmp/$f.out" && { echo "non-2xx replies from $f"; cat "$tmp/$f.out"; exit 1; }; done
  python3 -c "
a = $ca / $tick / $na * 1e6; b = $cb / $tick / $nb * 1e6
print(f'{$r:<5} {a:12.2f} {b:12.2f} {$na / $secs:10.0f} {$nb / $secs:10.0f} {b / a:8.3f}')"
done
