"""Engine + embedded store benchmarks (P7, P8): durable claims per second, and restart time.

Run by hand, not in pytest:
    .venv/bin/python benchmarks/bench_engine.py claims [--seconds 5 --runs 3 --tasks 512 --durability fsync]
    .venv/bin/python benchmarks/bench_engine.py restart [--claims 1000000]

claims: a shared-bounty hunt with 1,000 treasures and a long window, so every (player, treasure)
pair is a distinct claim. N asyncio tasks loop: dig (the engine decides, the record is queued),
then await the journal's group commit before counting the claim, exactly as the HTTP route does.
restart: journal N claims through the same engine, close, then time a restart of the real server:
`cairn serve` on that data directory, from process start to the first 200 of `/readyz` (which
includes imports, opening the world and recovery). Each run is a new process. Journal replay
alone first, then again after a snapshot. The in-process `EmbeddedStore.recover` time of each
run is read from the server's log line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.core.engine import Engine, Limits, compute_plan
from cairn.core.sites import SiteSet
from cairn.core.spec import convert_spec
from cairn.store.embedded import EmbeddedStore

SECRET = b"bench"
TREASURES = 1000


def world() -> SiteSet:
    xs, zs = np.meshgrid(np.arange(200) * 8 - 800, np.arange(200) * 8 - 800)
    xyz = np.stack([xs.ravel(), np.full(xs.size, 64), zs.ravel()], axis=1)
    return SiteSet.from_arrays(xyz, np.ones(len(xyz), np.uint32), ["surface"])


def new_engine(sites: SiteSet) -> Engine:
    # No limits on digs, speed or players: a million distinct players claim, one after the other.
    limits = Limits(dig_rate=1e9, dig_burst=10**9, max_speed=1e12, max_players=10**7)
    return Engine(SECRET, {"overworld": sites}, limits=limits)


def create(eng: Engine, now: float) -> list[tuple[int, int, int]]:
    spec = convert_spec({
        "id": "bench", "area": {"min": [-800, 0, -800], "max": [800, 200, 800]}, "treasures": TREASURES,
        "prize": {"mode": "shared_bounty", "window": "30d", "pool": 1000}, "duration": "60d",
    })  # fmt: skip
    out = eng.create_hunt(compute_plan(eng.plan_input(spec)), now)
    eng.apply(out.records)
    return [t.pos for t in eng.hunts["bench"].treasures], out


async def open_bench(path: str, durability: str) -> tuple[EmbeddedStore, Engine, list[tuple[int, int, int]]]:
    """A fresh store and engine with the bench hunt created and durable."""
    store = EmbeddedStore(path, durability)  # type: ignore[arg-type]
    eng = new_engine(world())
    store.load(eng)
    store.journal.start(asyncio.get_running_loop())
    spots, out = create(eng, time.time())
    store.persist(out.records)
    await store.durable(out.wait_seq)
    return store, eng, spots


async def claims_run(seconds: float, tasks: int, durability: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        store, eng, spots = await open_bench(d, durability)
        counter = 0
        latencies: list[float] = []
        done = 0
        deadline = 0.0
        measuring = False

        async def worker() -> None:
            nonlocal counter, done
            while time.perf_counter() < deadline:
                counter += 1
                k = counter
                player, t = f"p{k}", spots[k % TREASURES]
                t0 = time.perf_counter()
                o = eng.dig("bench", player, (t[0], t[1] + 1, t[2]), t, f"r{k}", time.time())
                eng.apply(o.records)  # as `Runtime.commit`
                store.persist(o.records)
                await store.durable(o.wait_seq)
                if measuring:
                    latencies.append(time.perf_counter() - t0)
                    done += 1

        deadline = time.perf_counter() + 1.0  # warm-up
        await asyncio.gather(*(worker() for _ in range(tasks)))
        measuring, done = True, 0
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - start
        stats = store.journal.stats()
        await store.close()
    latencies.sort()
    return {
        "claims_per_s": done / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "commits": stats.get("commits", 0),
        "records": stats.get("records", 0),
    }


async def journal_claims(path: str, n: int) -> None:
    store, eng, spots = await open_bench(path, "os")
    now = time.time()
    for k in range(n):
        t = spots[k % TREASURES]
        o = eng.dig("bench", f"p{k}", (t[0], t[1] + 1, t[2]), t, f"r{k}", now + k * 1e-6)
        eng.apply(o.records)
        store.persist(o.records)
        if k % 20000 == 0:
            await store.durable(eng.seq)
    await store.durable(eng.seq)
    await store.close()


async def snapshot(path: str) -> None:
    eng = new_engine(world())
    store = EmbeddedStore(path, "os")
    store.load(eng)
    store.journal.start(asyncio.get_running_loop())
    ok = await store.snapshot(eng)
    await store.close()
    assert ok, "snapshot failed"


def serve_restart(path: str) -> tuple[float, float]:
    """Start `cairn serve` on `path`; return (seconds to a ready /readyz, recovery seconds it logged)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CAIRN_ADMIN_KEY": "bench-admin-key-0123", "CAIRN_GAME_KEY": "bench-game-key-01234"}
    log = Path(path) / "serve.log"
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cairn", "serve", "--data-dir", path, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(f"cairn serve exited: {log.read_text()[-2000:]}") from None
                    time.sleep(0.01)
            ready = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(30)
    found = re.findall(r"seconds=([0-9.]+)", log.read_text())
    return ready, float(found[-1]) if found else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["claims", "restart"])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=512)
    ap.add_argument("--durability", default="fsync")
    ap.add_argument("--claims", type=int, default=1_000_000)
    a = ap.parse_args()
    if a.what == "claims":
        runs = [uvloop.run(claims_run(a.seconds, a.tasks, a.durability)) for _ in range(a.runs)]
        for r in runs:
            print(json.dumps({k: round(v, 3) for k, v in r.items()}))
        med = statistics.median(r["claims_per_s"] for r in runs)
        print(f"median claims/s ({a.durability}, {a.tasks} tasks, {a.runs} runs of {a.seconds}s): {med:,.0f}")
        return
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        uvloop.run(journal_claims(d, a.claims))
        (Path(d) / "secret").write_text(SECRET.decode() + "\n")
        print(f"journaled {a.claims:,} claims in {time.perf_counter() - t0:.1f}s")
        serve_restart(d)  # the first start also writes the procedural world's pack cache
        for label in ("journal only", "from snapshot"):
            if label == "from snapshot":
                uvloop.run(snapshot(d))
            times = []
            for _ in range(a.runs):
                ready, recovery = serve_restart(d)
                times.append(ready)
                print(f"restart {label}: ready in {ready:.2f}s (recovery {recovery:.2f}s)")
            print(f"median restart, {label}: {statistics.median(times):.2f}s")


if __name__ == "__main__":
    main()
