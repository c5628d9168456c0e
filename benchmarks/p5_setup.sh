#!/usr/bin/env bash
# P5 setup for bench_load.sh: 10,000 live hunts of 10 treasures spread over the 10M-site world.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$(dirname "$here")/.venv/bin/python" "$here/p5_hunts.py" "http://127.0.0.1:$PORT" "${HUNTS:-10000}" 10 14928
