#!/usr/bin/env bash
# P5's memory, split: a fresh `cairn serve` on core 0, then the P5 hunts, then (with PLAYERS=n) the
# players of `cairn bench` for 40 s; after each stage the server's VmRSS, RssAnon (heap) and RssFile
# (mapped files: the site pack, libraries), then the same after `malloc_trim(0)` called through gdb,
# which shows how much of the RSS is memory freed but kept by malloc. Needs gdb and ptrace rights.
# Usage: flock -x /tmp/cairn-bench.lock env CONFIG=benchmarks/p5-pack.toml PLAYERS=10000 benchmarks/p5_memory.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234
port=${PORT:-7495}; data=$(mktemp -d)
taskset -c 0 "$root/.venv/bin/cairn" serve --port "$port" --data-dir "$data/d" --config "${CONFIG:-$here/p5.toml}" \
  >"$data/serve.log" 2>&1 & spid=$!
trap 'kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
mem() { printf '%-28s' "$1"; grep -E '^(VmRSS|RssAnon|RssFile)' "/proc/$spid/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo; }
trimmed() { gdb -p "$spid" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 && mem "$1, after malloc_trim"; }
mem "start"
"$root/.venv/bin/python" "$here/p5_hunts.py" "http://127.0.0.1:$port" "${HUNTS:-10000}" 10 14928 | tail -1
mem "hunts"; trimmed "hunts"
if [ -n "${PLAYERS:-}" ]; then
  taskset -c 1 "$root/.venv/bin/cairn" bench --url "http://127.0.0.1:$port" --quiet --players "$PLAYERS" \
    --duration 40 --hunt p5-00000 --radius 7000 >/dev/null 2>&1 || true
  mem "players"; trimmed "players"
fi
