"""`Engine.dig` in one process, by path: how long one dig takes, in microseconds.

Run by hand, not in pytest:
    flock -x /tmp/cairn-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_dig.py [--runs 7 --digs 20000]

Two hunts on a flat 1,600 x 1,600 world of surface sites 8 blocks apart: `dense`, 1,000 treasures
over the whole world (as in bench_engine.py), and `sparse`, 10 treasures in a 1,000 x 1,000 area
with min_spacing 8 (as in P5). For each, the digs of one path, repeated over a fixed list of spots:

- `miss`: a player with no claim in the hunt digs at a random spot (the temperature tile answers);
- `claimed-near`: a player with a claim digs 20 to 60 blocks from another treasure (the lookup of
  treasures within 64 blocks answers);
- `claimed-far`: a player with a claim digs more than 64 blocks from every treasure (that lookup,
  then the numpy nearest);
- `taken`: a player digs on the treasure it claimed.

Each run times all digs of a path with `time.perf_counter` after one untimed pass; the median of
the runs is printed, with the slowest and fastest run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.core.engine import Engine, Limits, compute_plan
from cairn.core.sites import SiteSet
from cairn.core.spec import convert_spec

NOW = 1_800_000_000.0
clock = NOW + 1.0


def world() -> SiteSet:
    xs, zs = np.meshgrid(np.arange(200) * 8 - 800, np.arange(200) * 8 - 800)
    xyz = np.stack([xs.ravel(), np.full(xs.size, 64), zs.ravel()], axis=1)
    return SiteSet.from_arrays(xyz, np.ones(len(xyz), np.uint32), ["surface"])


def setup() -> tuple[Engine, dict[str, dict[str, list[tuple[str, tuple[int, int, int]]]]]]:
    eng = Engine(b"bench", {"overworld": world()}, limits=Limits(dig_rate=1e9, dig_burst=10**9, max_speed=1e12))
    hunts = {
        "dense": {"area": {"min": [-800, 0, -800], "max": [800, 200, 800]}, "treasures": 1000},
        "sparse": {"area": {"min": [-500, 0, -500], "max": [500, 200, 500]}, "treasures": 10,
                   "spawn": {"min_spacing": 8}},
    }  # fmt: skip
    rnd = random.Random(7)
    paths: dict[str, dict[str, list[tuple[str, tuple[int, int, int]]]]] = {}
    for name, extra in hunts.items():
        spec = convert_spec({"id": name, "duration": "60d", **extra})
        eng.apply(eng.create_hunt(compute_plan(eng.plan_input(spec)), NOW).records)
        pts = [t.pos for t in eng.hunts[name].treasures]
        first = pts[0]
        eng.apply(eng.dig(name, "finder", (first[0], 65, first[2]), first, None, NOW + 0.1 * len(paths)).records)
        xz = np.array([(p[0], p[2]) for p in pts])

        def nearest(x: int, z: int, xz: np.ndarray = xz) -> float:
            return float(np.sqrt(((xz - (x, z)) ** 2).sum(axis=1)).min())

        near, far, miss = [], [], []
        while len(near) < 200 or len(far) < 200:
            x, z = rnd.randrange(-790, 790), rnd.randrange(-790, 790)
            d = nearest(x, z)
            if 20 <= d <= 60 and len(near) < 200:
                near.append(("finder", (x, 64, z)))
            elif d > 64 and len(far) < 200:
                far.append(("finder", (x, 64, z)))
        while len(miss) < 200:
            x, z = rnd.randrange(-790, 790), rnd.randrange(-790, 790)
            if nearest(x, z) > 2:
                miss.append((f"p{len(miss)}", (x, 64, z)))
        paths[name] = {"miss": miss, "claimed-near": near, "claimed-far": far, "taken": [("finder", first)] * 200}
    eng.new_events.clear()
    return eng, paths


def time_path(eng: Engine, hunt: str, digs: list[tuple[str, tuple[int, int, int]]], n: int) -> float:
    """Microseconds per dig over `n` digs cycling through `digs`."""
    global clock
    dig = eng.dig
    reps = max(1, n // len(digs))
    spots = [(player, (at[0], at[1] + 1, at[2]), at) for player, at in digs]
    t = clock
    t0 = time.perf_counter()
    for _ in range(reps):
        for player, pos, at in spots:
            t += 0.001  # game time moves on, so that the movement check passes at max_speed
            dig(hunt, player, pos, at, None, t)
    dt = time.perf_counter() - t0
    clock = t
    eng.new_events.clear()
    return dt * 1e6 / (reps * len(digs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--digs", type=int, default=20_000)
    a = ap.parse_args()
    eng, paths = setup()
    print(f"{'hunt':<7} {'path':<13} {'median µs':>10} {'min':>7} {'max':>7}")
    for hunt, by_path in paths.items():
        for path, digs in by_path.items():
            time_path(eng, hunt, digs, len(digs))  # warm-up: tiles and lookups built
            runs = [time_path(eng, hunt, digs, a.digs) for _ in range(a.runs)]
            print(f"{hunt:<7} {path:<13} {statistics.median(runs):>10.3f} {min(runs):>7.3f} {max(runs):>7.3f}")


if __name__ == "__main__":
    main()
