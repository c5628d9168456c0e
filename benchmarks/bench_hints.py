"""Benchmark: the cost of one full hint for a hunt of 1,000 treasures.

Method: a hunt of 1,000 treasures over a 4096x4096 area with 12 landmarks. One "full hint"
is what the engine does per hint request: `TreasureField.nearest` (excluding the 3
treasures this player already claimed, with 1% of the hunt retired), then `build_hint`
with all four kinds (temperature + vertical, bearing, region, riddle) at a random
progress and a random find count. Each call is timed alone with `perf_counter_ns` after
a warm-up; we report the median, p90 and p99. The parts are timed the same way, and the
reference, timed in the same run, is a pure-Python nearest-treasure loop over the same
1,000 positions (what `nearest` would cost without numpy).

Run: .venv/bin/python benchmarks/bench_hints.py [--treasures 1000] [--runs 50000]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from cairn.core.hints import HINT_KINDS, Landmark, TreasureField, build_hint


def timed(fn: Callable[[int], object], runs: int, warmup: int) -> list[int]:
    for i in range(warmup):
        fn(i)
    out = []
    clock = time.perf_counter_ns
    for i in range(runs):
        t0 = clock()
        fn(i)
        out.append(clock() - t0)
    return out


def summary(ns: list[int]) -> str:
    v = sorted(ns)

    def pick(q: float) -> float:
        return v[min(len(v) - 1, int(q * len(v)))] / 1000

    return f"median {statistics.median(v) / 1000:6.2f} µs  p90 {pick(0.90):6.2f} µs  p99 {pick(0.99):6.2f} µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--treasures", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=50_000)
    ap.add_argument("--warmup", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    half = 2048
    pts = [(rng.randint(-half, half), rng.randint(-20, 120), rng.randint(-half, half)) for _ in range(args.treasures)]
    tags = [rng.choice([("surface", "forest"), ("cave",), ("underwater", "ocean"), ("surface", "desert")]) for _ in pts]
    keys = [f"secret:friday-night#{i + 1}".encode() for i in range(len(pts))]
    field = TreasureField(pts)
    for i in rng.sample(range(len(pts)), len(pts) // 100):
        field.retire(i)
    landmarks = [
        Landmark(f"the {name}", "overworld", (rng.randint(-half, half), 70, rng.randint(-half, half)))
        for name in ("Old Mill", "Watchtower", "Sunken Bell", "Great Oak", "Red Bridge", "Hollow Hill", "Lighthouse",
                     "Quarry", "Chapel", "Windmill", "Ferry", "Market")
    ]  # fmt: skip
    n_players = 5_000
    players = [(rng.randint(-half, half), rng.randint(40, 90), rng.randint(-half, half)) for _ in range(n_players)]
    claimed = [set(rng.sample(range(len(pts)), 3)) for _ in range(n_players)]
    progress = [rng.random() * 1.1 for _ in range(n_players)]
    finds = [rng.choice([0, 0, 1, 2, 3, 5, 8]) for _ in range(n_players)]
    kinds = list(HINT_KINDS)

    def full_hint(i: int) -> object:
        j = i % n_players
        p = players[j]
        t = field.nearest(p, claimed[j])
        assert t is not None
        return build_hint(kinds, p, field.pos(t), tags[t], progress[j], keys[t], landmarks, finds_by_player=finds[j])

    def nearest_only(i: int) -> object:
        j = i % n_players
        return field.nearest(players[j], claimed[j])

    nearest_of = [field.nearest(p, c) for p, c in zip(players, claimed, strict=True)]

    def build_only(i: int) -> object:
        j = i % n_players
        t = nearest_of[j]
        assert t is not None
        return build_hint(kinds, players[j], pts[t], tags[t], progress[j], keys[t], landmarks, finds_by_player=finds[j])

    def python_nearest(i: int) -> object:
        j = i % n_players
        px, _, pz = players[j]
        skip = claimed[j]
        best, best_d = -1, 1 << 62
        for k, (x, _, z) in enumerate(pts):
            d = (x - px) * (x - px) + (z - pz) * (z - pz)
            if d < best_d and k not in skip and field.is_live(k):
                best, best_d = k, d
        return best

    assert all(python_nearest(i) == nearest_only(i) for i in range(200))
    gc.collect()
    gc.freeze()
    results = {
        "full hint": timed(full_hint, args.runs, args.warmup),
        "  nearest": timed(nearest_only, args.runs, args.warmup),
        "  build_hint": timed(build_only, args.runs, args.warmup),
        "reference: pure-Python nearest": timed(python_nearest, max(2_000, args.runs // 20), 200),
    }
    print(f"machine: {platform.machine()} python {sys.version.split()[0]} numpy {np.__version__}")
    print(
        f"workload: {args.treasures:,} treasures, {len(landmarks)} landmarks, kinds {','.join(kinds)}, "
        f"{args.warmup:,} warm-up + {args.runs:,} timed calls each"
    )
    for name, ns in results.items():
        print(f"{name:<32} {summary(ns)}")
    ratio = statistics.median(results["full hint"]) / statistics.median(results["reference: pure-Python nearest"])
    print(f"full hint / pure-Python nearest (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
