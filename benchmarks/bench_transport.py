"""The bare transport against the ceiling: the ceiling's dig work, served through Router/Request/Response.

`serve` runs a dig-shaped app on the `cairn.net` transport: decode the same body as
../shared/bench/ceiling.py with msgspec, one dict lookup, encode the reply.

`compare` runs it and the ceiling alternately under the same wrk load (server on core 0,
wrk on core 1) and prints every run, the medians and the ratio of requests/s. It also reads
each server's CPU time from /proc, so it prints CPU microseconds per request, which a busy
shared machine disturbs less than requests/s.

`paired` runs both servers at once on core 0, each loaded by its own wrk on core 1. The
two share the core and whatever else the machine is doing at that moment, so the ratio of
their requests/s is the inverse ratio of their CPU cost per request, with most of the
noise cancelled.

Usage:
    python benchmarks/bench_transport.py serve [port]
    python benchmarks/bench_transport.py compare [--runs 3] [--secs 8] [--conns 64]
    python benchmarks/bench_transport.py paired [--runs 3] [--secs 8] [--conns 64]
Needs wrk and taskset. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHARED = Path(os.environ.get("CAIRN_SHARED", "/work/shared")) / "bench"
CEILING = SHARED / "ceiling.py"
DIG_LUA = SHARED / "dig.lua"


def serve(port: int) -> None:
    """The dig-shaped app on the transport."""
    import asyncio

    import msgspec
    import uvloop

    from cairn.net.config import ServerConfig
    from cairn.net.http import HttpServer
    from cairn.net.request import Request
    from cairn.net.router import Router

    class Dig(msgspec.Struct):
        player: str
        pos: list[int]
        at: list[int]
        request_id: str | None = None

    decode = msgspec.json.Decoder(Dig).decode
    encode = msgspec.json.Encoder().encode
    treasures = {(i * 37 % 1000 - 500, 64, i * 91 % 1000 - 500): i for i in range(200)}

    def dig(req: Request) -> bytes | tuple[int, bytes]:
        try:
            d = decode(req.body)
        except msgspec.DecodeError:
            return 400, b'{"error":{"code":"bad_request","message":"bad body"}}'
        hit = treasures.get(tuple(d.at))
        return encode({"result": "found" if hit is not None else "miss", "temperature": "cold"})

    router = Router()
    router.add("POST", "/v1/hunts/{hunt}/dig", dig)
    router.add("GET", "/readyz", lambda req: b'{"ready":true}')

    async def main() -> None:
        server = HttpServer(router, ServerConfig())
        await server.start("127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(main())


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, secs: int, conns: int, pid: int | None = None) -> tuple[float, float, int, float]:
    """rps, p99 ms, non-2xx count and the server's CPU microseconds per request."""
    cpu0 = _cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency", "-s", str(DIG_LUA),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, env={**os.environ, "HUNT": "bench"},
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)
    if errs:
        print("   ", errs.group(0), file=sys.stderr)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu_us = (_cpu_seconds(pid) - cpu0) * 1e6 / total if pid else float("nan")
    return rps, p99, int(bad.group(1)) if bad else 0, cpu_us


def _start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=0.5):
                break
        except OSError as exc:
            # The ceiling answers any path with a 400 (empty body): that still means it is up.
            if getattr(exc, "code", None) == 400:
                break
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"server on port {port} did not come up: {cmd}")
    time.sleep(0.5)
    return proc


def compare(runs: int, secs: int, conns: int) -> None:
    py = sys.executable
    servers = {
        "transport": ([py, str(Path(__file__).resolve()), "serve", "7483"], 7483),
        "ceiling": ([py, str(CEILING), "7484"], 7484),
    }
    results: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in servers}
    for i in range(runs):
        for name, (cmd, port) in servers.items():
            proc = _start(cmd, port)
            try:
                _wrk(port, 2, conns)  # warm-up
                r = _wrk(port, secs, conns, proc.pid)
            finally:
                proc.terminate()
                proc.wait()
            results[name].append(r)
            print(
                f"run {i + 1} {name:9s} rps={r[0]:.0f} p99_ms={r[1]:.2f} non2xx={r[2]} cpu_us_per_req={r[3]:.2f}",
                flush=True,
            )
    med = {name: statistics.median(r[0] for r in rs) for name, rs in results.items()}
    p99 = {name: statistics.median(r[1] for r in rs) for name, rs in results.items()}
    cpu = {name: statistics.median(r[3] for r in rs) for name, rs in results.items()}
    for name in servers:
        print(f"median {name:9s} rps={med[name]:.0f} p99_ms={p99[name]:.2f} cpu_us_per_req={cpu[name]:.2f}")
    print(f"cpu ratio ceiling/transport = {cpu['ceiling'] / cpu['transport']:.3f} (CPU cost per request; less noisy)")
    ratios = [t[0] / c[0] for t, c in zip(results["transport"], results["ceiling"], strict=True)]
    print(f"ratio transport/ceiling = {med['transport'] / med['ceiling']:.3f} (per run: "
          + ", ".join(f"{r:.3f}" for r in ratios) + ")")  # fmt: skip


def paired(runs: int, secs: int, conns: int) -> None:
    py = sys.executable
    t_port, c_port = 7485, 7486
    procs = [
        _start([py, str(Path(__file__).resolve()), "serve", str(t_port)], t_port),
        _start([py, str(CEILING), str(c_port)], c_port),
    ]
    ratios = []
    try:
        for i in range(runs + 1):
            with ThreadPoolExecutor(2) as pool:
                t_run = pool.submit(_wrk, t_port, 2 if i == 0 else secs, conns, procs[0].pid)
                c_run = pool.submit(_wrk, c_port, 2 if i == 0 else secs, conns, procs[1].pid)
                t, c = t_run.result(), c_run.result()
            if i == 0:
                continue  # warm-up
            ratios.append(t[0] / c[0])
            print(
                f"run {i} transport rps={t[0]:.0f} cpu_us_per_req={t[3]:.2f} | "
                f"ceiling rps={c[0]:.0f} cpu_us_per_req={c[3]:.2f} | ratio={ratios[-1]:.3f}",
                flush=True,
            )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    print(f"paired ratio transport/ceiling median = {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("port", type=int, nargs="?", default=7483)
    for name in ("compare", "paired"):
        c = sub.add_parser(name)
        c.add_argument("--runs", type=int, default=3)
        c.add_argument("--secs", type=int, default=8)
        c.add_argument("--conns", type=int, default=64)
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.port)
    elif args.cmd == "compare":
        compare(args.runs, args.secs, args.conns)
    else:
        paired(args.runs, args.secs, args.conns)
