"""`Engine.replay` in one process: how long rebuilding the state from N journaled claims takes.

Run by hand, not in pytest:
    flock -x -o /tmp/cairn-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_replay.py [--claims 300000]

The journal of `bench_engine.py restart` without the disk: a shared-bounty hunt with 1,000
treasures and a long window, and N claims by N distinct players (the P7 shape: every claim takes
replay's fast path). `--players K` makes the claims come from K players instead (each claims
several treasures). The records are built once, encoded and decoded as the journal does; each run
replays them into a new engine with no events rebuilt (recovery's bulk path, GC off as recovery
runs it) and is timed with `time.perf_counter` and `time.process_time` (the CPU time, steadier on
a shared machine). The median of the runs is printed, with the fastest and slowest, and the heap
the replayed engine holds (tracemalloc, one extra run).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_engine import TREASURES, create, new_engine, world  # type: ignore[import-not-found]

from cairn.core import records
from cairn.core.engine import Engine
from cairn.core.sites import SiteSet

NOW = 1_800_000_000.0


def journal(sites: SiteSet, claims: int, players: int) -> list[records.AnyRecord]:
    eng = new_engine(sites)
    spots, out = create(eng, NOW)
    log: list[records.AnyRecord] = list(out.records)
    for i in range(claims):
        # Player p claims treasures p, p + 1, p + 2, ... (mod 1,000): never the same one twice.
        p, j = i % players, i // players
        t = spots[(p + j) % TREASURES]
        o = eng.dig("bench", f"p{p}", (t[0], t[1] + 1, t[2]), t, f"r{i}", NOW + i * 1e-6)
        eng.apply(o.records)
        log.extend(o.records)
    return records.decode_many(records.encode_many(log))


def replay(sites: SiteSet, log: list[records.AnyRecord]) -> tuple[float, float, Engine]:
    """Seconds of wall time and of this process's CPU time to replay `log` into a new engine."""
    eng = new_engine(sites)
    gc.disable()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        eng.replay(log, events_after=log[-1].seq)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    finally:
        gc.enable()
    return dt, dc, eng


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=300_000)
    ap.add_argument("--players", type=int, default=0, help="distinct players (default: one per claim)")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    players = a.players or a.claims
    if a.claims > players * TREASURES:
        sys.exit(f"{players} players can make at most {players * TREASURES} claims")
    sites = world()
    log = journal(sites, a.claims, players)
    replay(sites, log)  # warm-up
    runs, cpu = [], []
    for _ in range(a.runs):
        dt, dc, eng = replay(sites, log)
        del eng
        gc.collect()
        runs.append(dt)
        cpu.append(dc)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    _, _, eng = replay(sites, log)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(eng.claims) == a.claims
    med = statistics.median(runs)
    print(f"replay of {a.claims:,} claims by {players:,} players, {a.runs} runs: median {med:.3f} s "
          f"(min {min(runs):.3f}, max {max(runs):.3f}); CPU median {statistics.median(cpu):.3f} s "
          f"(min {min(cpu):.3f}); engine heap {held / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
