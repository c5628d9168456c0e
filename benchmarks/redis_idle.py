"""Redis nodes at rest and across nodes: idle CPU with many live hunts, and claim visibility.

Run by hand, not in pytest (it starts its own redis-server and two `cairn serve` nodes on spare ports):
    flock -x /tmp/cairn-bench.lock .venv/bin/python benchmarks/redis_idle.py \\
        [--root /work/wt/base --root .] [--runs 3 --hunts 1000 --idle 30 --claims 300]

Each `--root` is a Cairn checkout with its own `.venv` (e.g. the tree before a change and after);
runs alternate between the roots. One run:

1. a fresh redis-server (AOF, appendfsync always) and two nodes A and B on it;
2. `--hunts` live first-finder hunts (one treasure each, 2 h) created on A, and B shows them all;
3. idle: 5 s to settle, then each node's CPU (utime + stime from /proc/<pid>/stat) over `--idle` s
   with no request at all, as a percent of one core (and Redis's own);
4. visibility: an SSE stream `/v1/events` on B (every hunt); `--claims` claims, one at a time every
   20 ms, each in another hunt spread over all of them, dug on A. For each, the time from A's reply
   (the claim is committed) to B's `treasure.claimed` event of that hunt arriving on the stream.

Prints one line per run and, per root, the medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ADMIN, GAME = "bench-admin-key-0123", "bench-game-key-01234"
WORLD = """
[worlds.overworld]
seed = 3
size = 1024
density = 1.0

[limits]
dig_rate = 1000.0
dig_burst = 1000
"""
HZ = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu(pid: int) -> float:
    """CPU seconds (user + system) the process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def request(port: int, method: str, path: str, body: Any = None, key: str = ADMIN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node on {port} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"node on {port} not ready")


class Events:
    """An SSE stream of every hunt on one node; notes when each hunt's first `treasure.claimed` arrives."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        after = int(time.time() * 1_000_000)
        self.sock.sendall(f"GET /v1/events?after={after} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n\r\n"
                          .encode())  # fmt: skip
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            buf += chunk
            *frames, buf = buf.split(b"\n\n")
            for frame in frames:
                for line in frame.split(b"\n"):
                    if line.startswith(b'data: {"id"'):
                        e = json.loads(line[6:])
                        if e["type"] == "treasure.claimed":
                            with self.cond:
                                self.seen.setdefault(e["hunt"], now)
                                self.cond.notify_all()

    def wait(self, hunt: str, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.cond:
            while hunt not in self.seen:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.seen[hunt]

    def close(self) -> None:
        with self.cond:
            self.sock.close()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def one_run(root: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rport, pa, pb = free_port(), free_port(), free_port()
    (tmp / "redis").mkdir()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", str(tmp / "redis"), "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--logfile", "redis.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = [redis]
    try:
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(rport), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        cfg = tmp / "cairn.toml"
        cfg.write_text(WORLD + f'\n[store]\nkind = "redis"\nredis_url = "redis://127.0.0.1:{rport}/0"\n')
        env = {**os.environ, "CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": GAME}
        nodes = []
        for name, port in (("a", pa), ("b", pb)):
            log = tmp / f"{name}.log"
            p = subprocess.Popen([str(root / ".venv/bin/cairn"), "serve", "--config", str(cfg), "--port", str(port),
                                  "--data-dir", str(tmp / name)], env=env, cwd=root,
                                 stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
            procs.append(p)
            wait_ready(port, p, log)
            nodes.append(p)
        spots: dict[str, list[int]] = {}
        for i in range(args.hunts):
            hid = f"h{i:04d}"
            status, body = request(pa, "POST", "/v1/hunts", {
                "id": hid, "name": hid, "area": {"min": [-500, -64, -500], "max": [500, 320, 500]},
                "treasures": 1, "spawn": {"tags_any": ["surface"], "min_spacing": 4}, "duration": "2h",
            })  # fmt: skip
            assert status == 201, body
            spots[hid] = body["treasures"][0]["pos"]
        deadline = time.monotonic() + 60
        for hid in spots:  # B has every hunt
            while request(pb, "GET", f"/v1/hunts/{hid}")[0] != 200:
                assert time.monotonic() < deadline, f"node B never showed {hid}"
                time.sleep(0.05)
        time.sleep(5)
        c0 = [cpu(p.pid) for p in (nodes[0], nodes[1], redis)]
        t0 = time.monotonic()
        time.sleep(args.idle)
        wall = time.monotonic() - t0
        c1 = [cpu(p.pid) for p in (nodes[0], nodes[1], redis)]
        idle = [round(100 * (b - a) / wall, 2) for a, b in zip(c0, c1, strict=True)]
        ev = Events(pb)
        time.sleep(0.5)
        hunts = sorted(spots)
        step = max(1, len(hunts) // args.claims)
        after_reply, after_send, missing = [], [], 0
        for i in range(args.claims):
            hid = hunts[(i * step) % len(hunts)]
            at = spots[hid]
            sent = time.perf_counter()
            dig = {"player": f"v{i}", "pos": at, "at": at, "request_id": f"v{i}"}
            status, body = request(pa, "POST", f"/v1/hunts/{hid}/dig", dig, key=GAME)
            replied = time.perf_counter()
            assert status == 200 and body["result"] == "found", (status, body)
            seen = ev.wait(hid, 5.0)
            if seen is None:
                missing += 1
            else:
                after_reply.append(1000 * max(0.0, seen - replied))
                after_send.append(1000 * (seen - sent))
            time.sleep(0.02)
        ev.close()
        return {
            "idle_cpu_pct": {"a": idle[0], "b": idle[1], "redis": idle[2]},
            "visible_ms": {"p50": round(pct(after_reply, 0.5), 2), "p99": round(pct(after_reply, 0.99), 2),
                           "max": round(max(after_reply), 2)},
            "from_send_ms": {"p50": round(pct(after_send, 0.5), 2), "p99": round(pct(after_send, 0.99), 2)},
            "missing": missing, "claims": args.claims, "hunts": args.hunts,
        }  # fmt: skip
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", action="append", type=Path, help="a Cairn checkout with a .venv (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hunts", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--claims", type=int, default=300)
    args = ap.parse_args()
    roots = [r.resolve() for r in (args.root or [Path(__file__).resolve().parents[1]])]
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")
    results: dict[Path, list[dict[str, Any]]] = {r: [] for r in roots}
    for run in range(args.runs):
        order = roots if run % 2 == 0 else roots[::-1]
        for root in order:
            with tempfile.TemporaryDirectory(prefix="cairn-redis-idle-") as tmp:
                out = one_run(root, args, Path(tmp))
            results[root].append(out)
            print(f"run={run + 1} root={root} {json.dumps(out)}", flush=True)
    for root, outs in results.items():
        def med(a: str, b: str, outs: list[dict[str, Any]] = outs) -> float:
            return statistics.median(o[a][b] for o in outs)

        print(f"median root={root} runs={len(outs)} idle_cpu_pct a={med('idle_cpu_pct', 'a')} "
              f"b={med('idle_cpu_pct', 'b')} redis={med('idle_cpu_pct', 'redis')} "
              f"visible_ms p50={med('visible_ms', 'p50')} p99={med('visible_ms', 'p99')} "
              f"missing={sum(o['missing'] for o in outs)}")  # fmt: skip


if __name__ == "__main__":
    main()
