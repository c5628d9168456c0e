"""Benchmark: `Board` reads and writes at 1,000,000 players.

Method: a desc/incr board of N players (default 1,000,000) with integer scores uniform in
[0, 100,000) (so ties are common and the time reached breaks them) and times uniform in one week,
loaded with `Board.from_snapshot`; then `gc.freeze()`, as the server does after start. Each
operation is timed alone with `perf_counter_ns` after a warm-up of untimed calls; we report the
median, p90 and p99 of `--runs` calls:

- `top(10)`; `top(10, cursor)` at a random cursor (a deep page);
- `around(player, 10)` and `rank(player)` for random players;
- `submit(player, value, at)`: incr of a random player by a random 1..100 at a rising time.

Reference, timed in the same run on the same data: one flat sorted Python list of the same keys
(`bisect` for rank, `del` + `insort` for a submit), the naive structure this module replaces.

Run: .venv/bin/python benchmarks/bench_leaderboard.py [--players 1000000] [--runs 20000] [--warmup 2000]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from bisect import bisect_left, insort
from collections.abc import Callable

import numpy as np

from cairn.core.leaderboard import Board


def timed(fn: Callable[[int], object], runs: int, warmup: int) -> list[int]:
    for i in range(warmup):
        fn(i)
    out = []
    clock = time.perf_counter_ns
    for i in range(runs):
        t0 = clock()
        fn(warmup + i)
        out.append(clock() - t0)
    return out


def summary(ns: list[int]) -> tuple[float, float, float]:
    v = sorted(ns)

    def pick(q: float) -> float:
        return v[min(len(v) - 1, int(q * len(v)))] / 1000

    return statistics.median(v) / 1000, pick(0.90), pick(0.99)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--players", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n, runs, warmup = args.players, args.runs, args.warmup

    rng = np.random.default_rng(args.seed)
    players = [f"player-{i:07d}" for i in range(n)]
    scores = rng.integers(0, 100_000, size=n).astype(float).tolist()
    ats = (1.7e9 + rng.uniform(0, 7 * 86400, size=n)).tolist()
    rows = list(zip(players, scores, ats, strict=True))

    before = rss_mib()
    t0 = time.perf_counter()
    board = Board.from_snapshot(rows, "desc", "incr")
    build_s = time.perf_counter() - t0
    board_mib = rss_mib() - before
    t0 = time.perf_counter()
    board._check()
    check_s = time.perf_counter() - t0

    ref = board.snapshot()  # rank order
    flat = [(-s, a, p) for p, s, a in ref]
    flat_index = {k[2]: k for k in flat}
    del ref
    gc.collect()
    gc.freeze()

    total = warmup + runs
    pick = random.Random(args.seed)
    who = [players[pick.randrange(n)] for _ in range(total)]
    cursors = [pick.randrange(n - 10) for _ in range(total)]
    incs = [float(pick.randint(1, 100)) for _ in range(total)]
    clock = [1.8e9 + i for i in range(total)]

    def flat_submit(i: int) -> None:
        p = who[i]
        old = flat_index[p]
        del flat[bisect_left(flat, old)]
        new = (old[0] - incs[i], clock[i], p)
        flat_index[p] = new
        insort(flat, new)

    def flat_around(i: int) -> list[tuple[float, float, str]]:
        pos = bisect_left(flat, flat_index[who[i]])
        start = max(0, min(pos - 5, len(flat) - 10))
        return flat[start : start + 10]

    cases: list[tuple[str, Callable[[int], object], Callable[[int], object] | None]] = [
        ("top(10)", lambda i: board.top(10), lambda i: flat[:10]),
        ("top(10, random cursor)", lambda i: board.top(10, cursors[i]), lambda i: flat[cursors[i] : cursors[i] + 10]),
        ("around(player, 10)", lambda i: board.around(who[i], 10), flat_around),
        ("rank(player)", lambda i: board.rank(who[i]), lambda i: bisect_left(flat, flat_index[who[i]]) + 1),
        ("score(player)", lambda i: board.score(who[i]), None),
        ("submit (incr, random player)", lambda i: board.submit(who[i], incs[i], clock[i]), flat_submit),
    ]

    print(f"Python {sys.version.split()[0]} on {platform.machine()} ({platform.processor() or 'cpu'})")
    print(
        f"players {n:,}; {len(board._lists):,} sublists; build (from_snapshot) {build_s:.2f} s; "
        f"RSS delta {board_mib:.0f} MiB; _check {check_s:.2f} s"
    )
    print(f"{runs:,} timed calls after {warmup:,} warm-up; µs: median / p90 / p99")
    print(f"{'operation':32} {'Board':>24} {'flat sorted list (ref)':>26}")
    for name, fn, ref_fn in cases:
        m, p90, p99 = summary(timed(fn, runs, warmup))
        cell = f"{m:7.2f} / {p90:6.2f} / {p99:6.2f}"
        if ref_fn is not None:
            rm, r90, r99 = summary(timed(ref_fn, runs if "submit" not in name else runs // 10, warmup // 10))
            rcell = f"{rm:7.2f} / {r90:7.2f} / {r99:7.2f}"
        else:
            rcell = "-"
        print(f"{name:32} {cell:>24} {rcell:>26}")
    board._check()


if __name__ == "__main__":
    main()
