#!/usr/bin/env python3
"""P3 with a webhook target that never answers, against P3 with no webhook: does a hanging receiver slow digs?

Runs `benchmarks/bench_load.sh` (server on core 0, `cairn bench` on core 1) with the P3 steady load,
interleaving the sides in each round (each round starting with the next side): `none` (no webhook),
`finds` (a target for `treasure.` and `hunt.` events), `all` (a target for `*`: every event type but
proximity) and `prox` (`*` and `proximity.`: the proximity enter and exit events too, the most a
target can ask for). The receiver accepts each connection, reads the request and never replies,
so every delivery waits out the timeout (5 s). Prints each run's request p99 and p99.9 and the median per side.

    flock -x -o /tmp/cairn-bench.lock .venv/bin/python benchmarks/webhook_p3.py --rounds 3 --duration 40
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIDES = {"none": None, "finds": ["treasure.", "hunt."], "all": ["*"], "prox": ["*", "proximity."]}


def hanging_receiver() -> int:
    """A TCP server that reads requests and never answers; returns its port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            conn, _ = srv.accept()
            held.append(conn)  # never answered, closed by the client's timeout

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])


def setup_script(tmp: Path, events: list[str], port: int) -> Path:
    body = json.dumps({"url": f"http://127.0.0.1:{port}/hook", "events": events, "reason": "benchmark"})
    path = tmp / f"setup-{'-'.join(e.strip('.*') or 'all' for e in events)}.sh"
    path.write_text(
        "#!/bin/sh\nset -e\n"
        f"curl -sf -X POST -H 'Authorization: Bearer bench-admin-key-0123' -H 'Content-Type: application/json' "
        f"-d '{body}' http://127.0.0.1:$PORT/v1/webhooks >/dev/null\n"
    )
    path.chmod(0o755)
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=40)
    ap.add_argument("--players", type=int, default=2500)
    ap.add_argument("--sides", default="none,finds,all,prox")
    ap.add_argument("--name", default="p3-webhook", help="reports go to benchmarks/reports/<name>-<side>-<round>")
    args = ap.parse_args()
    port = hanging_receiver()
    sides = args.sides.split(",")
    results: dict[str, list[tuple[float, float, int]]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(1, args.rounds + 1):
            # Each round starts with another side, and each run with the disk's dirty pages written
            # out (a run that wrote an outbox must not slow the next one's journal fsyncs).
            for side in sides[(r - 1) % len(sides) :] + sides[: (r - 1) % len(sides)]:
                os.sync()
                time.sleep(3)
                name = f"{args.name}-{side}-{r}"
                env = dict(os.environ)
                events = SIDES[side]
                if events is not None:
                    env["SETUP"] = str(setup_script(Path(tmp), events, port))
                else:
                    env.pop("SETUP", None)
                cmd = [str(HERE / "bench_load.sh"), name, "--scenario", "steady", "--players", str(args.players),
                       "--duration", str(args.duration)]  # fmt: skip
                subprocess.run(cmd, env=env, check=True)
                rep = json.loads((HERE / "reports" / f"{name}.json").read_text())
                lat = rep["latency_ms"]
                results[side].append((lat["p99"], lat["p999"], len(rep.get("errors", []))))
                print(f"{name}: p99 {lat['p99']:.2f} ms, p99.9 {lat['p999']:.2f} ms, "
                      f"errors {rep.get('error_total', 0)}", flush=True)  # fmt: skip
    base = statistics.median(p99 for p99, _, _ in results[sides[0]])
    for side in sides:
        p99s = [p for p, _, _ in results[side]]
        p999s = [p for _, p, _ in results[side]]
        med = statistics.median(p99s)
        print(f"{side:>6}: p99 median {med:.2f} ms ({', '.join(f'{p:.2f}' for p in p99s)}), "
              f"p99.9 median {statistics.median(p999s):.2f} ms; vs {sides[0]}: {med / base:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
