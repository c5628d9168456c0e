#!/usr/bin/env bash
# Redis scale-out: digs per second through one `cairn serve` node vs two nodes sharing one Redis.
# Redis: a fresh redis-server on a spare port, AOF with appendfsync always (every claim durable).
# Workloads: MODE=claim (each request a durable claim: one script call) and MODE=miss (no Redis call).
# 1 node: the node on core 0; wrk and Redis on core 1.  2 nodes: node A on core 0, node B on core 1,
# wrk (one process per node, half the connections each) and Redis unpinned: a 2-core machine is
# oversubscribed by the second node, which is the point to measure honestly.
# Usage: bench_redis.sh [seconds] [runs]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
secs=${1:-5}; runs=${2:-3}; conns=${CONNS:-32}
cairn=$root/.venv/bin/cairn
tmp=$(mktemp -d)
rport=${RPORT:-7591}; pa=7592; pb=7593
export CAIRN_ADMIN_KEY=bench-admin-key-0123 CAIRN_GAME_KEY=bench-game-key-01234 HUNT=bench SPOTS=$tmp/spots.txt
cleanup() { kill ${apid:-} ${bpid:-} 2>/dev/null || true; kill ${rpid:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
start_redis() {
  mkdir -p "$tmp/redis"
  taskset -c 1 redis-server --port $rport --bind 127.0.0.1 --dir "$tmp/redis" --save "" --appendonly yes \
    --appendfsync always --logfile redis.log >/dev/null 2>&1 & rpid=$!
  for _ in $(seq 1 100); do redis-cli -p $rport ping >/dev/null 2>&1 && break; sleep 0.05; done
}
cat > "$tmp/cairn.toml" <<TOML
[store]
kind = "redis"
redis_url = "redis://127.0.0.1:$rport/0"
[limits]
dig_rate = 1000.0
dig_burst = 1000
TOML
node() { # core port dir
  taskset -c "$1" "$cairn" serve --config "$tmp/cairn.toml" --port "$2" --data-dir "$tmp/$3" >"$tmp/$3.log" 2>&1 &
  echo $!
}
ready() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done; echo "node $1 not ready"; exit 1; }
hunt() { # port
  curl -sf -X POST "http://127.0.0.1:$1/v1/hunts" -H "Authorization: Bearer $CAIRN_ADMIN_KEY" \
    -d '{"id":"bench","name":"Bench","world":"overworld","area":{"min":[-2000,-64,-2000],"max":[2000,320,2000]},"treasures":200,"spawn":{"tags_any":["surface"],"min_spacing":8},"prize":{"mode":"shared_bounty","window":"2h","pool":100000},"hints":{"cooldown":"0s"},"duration":"2h"}' >/dev/null
  curl -sf "http://127.0.0.1:$1/v1/hunts/bench?reveal=true" -H "Authorization: Bearer $CAIRN_ADMIN_KEY" \
    | python3 -c 'import json,sys; [print(*t["pos"]) for t in json.load(sys.stdin)["treasures"]]' > "$SPOTS"
}
cpu() { # pid -> CPU seconds used so far (user + system)
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
rps_of() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
bad_of() { local b; b=$(awk '/Non-2xx/ {print $NF}' <<<"$1"); echo "${b:-0}"; }
p99_of() { awk '$1=="99%" {print $2}' <<<"$1"; }
start_redis
for mode in claim miss; do
  export MODE=$mode
  for r in $(seq 1 "$runs"); do
    # one node
    redis-cli -p $rport flushall >/dev/null
    apid=$(node 0 $pa a$r$mode); ready $pa; hunt $pa
    c0=$(cpu $apid); r0=$(cpu $rpid)
    out=$(PREFIX=a taskset -c 1 wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/redis_dig.lua" "http://127.0.0.1:$pa" 2>&1)
    one=$(rps_of "$out"); onep99=$(p99_of "$out"); onebad=$(bad_of "$out")
    n1=$(python3 -c "print(round(1e6 * ($(cpu $apid) - $c0) / ($one * $secs)))")
    r1=$(python3 -c "print(round(1e6 * ($(cpu $rpid) - $r0) / ($one * $secs)))")
    kill $apid; wait $apid 2>/dev/null || true
    # two nodes
    redis-cli -p $rport flushall >/dev/null
    apid=$(node 0 $pa a2$r$mode); bpid=$(node 1 $pb b2$r$mode); ready $pa; ready $pb; hunt $pa; sleep 0.5
    PREFIX=x wrk -t1 -c$((conns / 2)) -d"${secs}s" --latency -s "$here/redis_dig.lua" "http://127.0.0.1:$pa" >"$tmp/wa" 2>&1 &
    wa=$!
    PREFIX=y wrk -t1 -c$((conns / 2)) -d"${secs}s" --latency -s "$here/redis_dig.lua" "http://127.0.0.1:$pb" >"$tmp/wb" 2>&1
    wait $wa
    oa=$(cat "$tmp/wa"); ob=$(cat "$tmp/wb")
    two=$(python3 -c "print(round($(rps_of "$oa") + $(rps_of "$ob")))")
    twobad=$(( $(bad_of "$oa") + $(bad_of "$ob") ))
    claims=$(redis-cli -p $rport xlen 'cairn:{bench}:log')
    kill $apid $bpid; wait $apid $bpid 2>/dev/null || true
    echo "mode=$mode run=$r one_node_rps=$one p99=$onep99 non2xx=$onebad node_cpu_us_per_req=$n1 redis_cpu_us_per_req=$r1 | two_nodes_rps=$two (a=$(rps_of "$oa") p99=$(p99_of "$oa"), b=$(rps_of "$ob") p99=$(p99_of "$ob")) non2xx=$twobad stream_len=$claims ratio=$(python3 -c "print(round($two/$one, 2))")"
  done
done
