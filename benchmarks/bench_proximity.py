"""Benchmark: position updates per second through `ProximityIndex.update`.

Method: 100,000 live treasures (radius 16, y 50-80) spread uniformly over a square world
and 10,000 players walking on it (about 1.1 blocks per update: 4.3 blocks/s at 4 updates/s,
headings drifting, y 60-70). One round moves every player once, in a shuffled order.
Rounds are generated with numpy before timing; only the `update` calls are timed. After
warm-up rounds, we report the median and p10/p90 of per-round throughput, the share of
updates that needed a full check, the events per round, and the memory of the index
(tracemalloc, a separate build). The reference, timed in the same run, is the cheapest
possible per-update Python call (`dict.get` plus tuple unpacking), i.e. the ceiling of
any per-update Python API; and a numpy brute-force scan over all treasures.

Run: .venv/bin/python benchmarks/bench_proximity.py [--world 16384] [--cell 32]
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from cairn.core.proximity import ProximityIndex

Update = tuple[str, tuple[int, int, int]]


class Round(NamedTuple):
    """One move of every player: as (player, pos) pairs and as columns for update_many."""

    updates: list[Update]
    names: list[str]
    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray


def make_world(n: int, world: int, seed: int) -> list[tuple[str, str, tuple[int, int, int]]]:
    rng = np.random.default_rng(seed)
    xs = rng.integers(-world // 2, world // 2, n)
    zs = rng.integers(-world // 2, world // 2, n)
    ys = rng.integers(50, 81, n)
    # 10 treasures per hunt, like P5 (10,000 hunts, 100,000 treasures).
    return [
        (f"hunt-{i // 10}#{i % 10 + 1}", f"hunt-{i // 10}", (int(x), int(y), int(z)))
        for i, (x, y, z) in enumerate(zip(xs.tolist(), ys.tolist(), zs.tolist(), strict=True))
    ]


class Walkers:
    """Players walking with drifting headings, bouncing off the world edge."""

    def __init__(self, n: int, world: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.half = world // 2
        self.x = self.rng.uniform(-self.half, self.half, n)
        self.z = self.rng.uniform(-self.half, self.half, n)
        self.y = self.rng.uniform(60, 70, n)
        self.heading = self.rng.uniform(0, 2 * math.pi, n)
        self.names = [f"player-{i:05d}" for i in range(n)]

    def round(self) -> Round:
        n = len(self.names)
        self.heading += self.rng.normal(0, 0.3, n)
        self.x = np.clip(self.x + 1.1 * np.cos(self.heading), -self.half, self.half - 1)
        self.z = np.clip(self.z + 1.1 * np.sin(self.heading), -self.half, self.half - 1)
        self.y = np.clip(self.y + self.rng.normal(0, 0.3, n), 55, 75)
        order = self.rng.permutation(n)
        xs = np.floor(self.x).astype(np.int64)[order]
        ys = np.floor(self.y).astype(np.int64)[order]
        zs = np.floor(self.z).astype(np.int64)[order]
        names = [self.names[i] for i in order.tolist()]
        updates = list(zip(names, zip(xs.tolist(), ys.tolist(), zs.tolist(), strict=True), strict=True))
        return Round(updates, names, xs, ys, zs)


def time_round(fn: Callable[[Round], int], rnd: Round) -> tuple[float, int]:
    t0 = time.perf_counter()
    events = fn(rnd)
    return time.perf_counter() - t0, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--treasures", type=int, default=100_000)
    ap.add_argument("--players", type=int, default=10_000)
    ap.add_argument("--world", type=int, default=16_384, help="world side in blocks")
    ap.add_argument("--radius", type=int, default=16)
    ap.add_argument("--cell", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    treasures = make_world(args.treasures, args.world, args.seed)
    ix = ProximityIndex(cell=args.cell)
    t0 = time.perf_counter()
    for key, hunt, pos in treasures:
        ix.add(key, hunt, pos, args.radius)
    build_s = time.perf_counter() - t0
    walkers = Walkers(args.players, args.world, args.seed + 1)

    def via_update(rnd: Round) -> int:
        update = ix.update
        n = 0
        for player, pos in rnd.updates:
            n += len(update(player, pos))
        return n

    def via_update_many(rnd: Round) -> int:
        return len(ix.update_many(rnd.names, rnd.xs, rnd.ys, rnd.zs))

    ref_state = {name: (0, 0, 0) for name in walkers.names}

    def reference(rnd: Round) -> int:
        get = ref_state.get
        n = 0
        for player, pos in rnd.updates:
            st = get(player)
            if st is not None:
                x, _, _ = pos
                n += x > st[0]
        return n

    gc.collect()
    gc.freeze()
    for _ in range(args.warmup):
        via_update(walkers.round())
    results: dict[str, list[float]] = {"update": [], "update_many": [], "reference": []}
    events: list[int] = []
    for i in range(args.rounds):
        rnd = walkers.round()
        # Alternate the two APIs round by round; the reference reruns the same round.
        if i % 2:
            dt, ev = time_round(via_update, rnd)
            results["update"].append(args.players / dt)
        else:
            dt, ev = time_round(via_update_many, rnd)
            results["update_many"].append(args.players / dt)
        events.append(ev)
        dt, _ = time_round(reference, rnd)
        results["reference"].append(args.players / dt)

    # Share of updates that needed a full check, on extra rounds.
    probe_rounds = 10
    checks0, scans0 = ix.checks, ix.scans
    for _ in range(probe_rounds):
        via_update(walkers.round())
    check_share = (ix.checks - checks0) / (probe_rounds * args.players)
    scan_share = (ix.scans - scans0) / (probe_rounds * args.players)

    # Brute force over all treasures with numpy, on a sample (it is far too slow for all).
    arr = np.array([p for _, _, p in treasures], dtype=np.int64)
    sample = walkers.round().updates[:200]
    t0 = time.perf_counter()
    for _, (x, y, z) in sample:
        d2 = (arr[:, 0] - x) ** 2 + (arr[:, 1] - y) ** 2 + (arr[:, 2] - z) ** 2
        int((d2 <= args.radius**2).sum())
    brute = len(sample) / (time.perf_counter() - t0)

    # Memory of a fresh index with the same treasures and players (tracemalloc is slow).
    gc.unfreeze()
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    ix2 = ProximityIndex(cell=args.cell)
    for key, hunt, pos in treasures:
        ix2.add(key, hunt, pos, args.radius)
    m1 = tracemalloc.get_traced_memory()[0]
    via = walkers.round()
    ix2.update_many(via.names, via.xs, via.ys, via.zs)
    m2 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    def stats(name: str) -> str:
        v = sorted(results[name])
        q = statistics.quantiles(v, n=10)
        return f"median {statistics.median(v):>12,.0f}/s  p10 {q[0]:>12,.0f}/s  p90 {q[-1]:>12,.0f}/s"

    ref = statistics.median(results["reference"])
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {sys.version.split()[0]}")
    print(
        f"workload: {args.treasures:,} treasures r={args.radius} over {args.world}x{args.world}, "
        f"{args.players:,} players walking ~1.1 blocks/update, cell={args.cell}, "
        f"{args.warmup} warm-up + {args.rounds} timed rounds of {args.players:,} updates"
    )
    print(f"build: {build_s:.2f} s for {args.treasures:,} add() calls")
    for name in ("update", "update_many", "reference"):
        print(f"{name:<12} {stats(name)}  ratio to reference {statistics.median(results[name]) / ref:.2f}")
    print(f"numpy brute force over all treasures: {brute:,.0f} updates/s")
    print(
        f"slow path: {check_share:.1%} of updates checked candidates, {scan_share:.1%} scanned 3x3 cells; "
        f"events per round: median {statistics.median(events):,.0f}"
    )
    print(
        f"memory: treasures {(m1 - m0) / 2**20:.1f} MiB ({(m1 - m0) / args.treasures:.0f} B each), "
        f"players {(m2 - m1) / 2**20:.1f} MiB ({(m2 - m1) / args.players:.0f} B each)"
    )


if __name__ == "__main__":
    main()
