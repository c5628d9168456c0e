"""Per-hunt memory and creation time in the engine, in one process (P5's hunts without the server).

Run by hand, not in pytest:
    .venv/bin/python benchmarks/bench_hunt_memory.py [--hunts 10000] [--size 14928] [--trace 300]

The world is `benchmarks/p5.toml`'s (procedural, seed 1, 14,928 columns a side, about 10M sites)
unless `--pack FILE` names a site pack. Hunts are `p5_hunts.py`'s: 10 treasures on surface sites
in a random 1,000 x 1,000 area, `min_spacing` 8, created one after the other through
`plan_input` -> `compute_plan` -> `create_hunt`, as the server does (minus the executor thread).

- timing: the wall time of each block of 1,000 creations, with VmRSS and
  `sys.getallocatedblocks()` after it: a quadratic creation shows as blocks that take longer
  and longer.
- `--trace N`: after the timing run, N more hunts are created under tracemalloc (1 frame);
  traced bytes and allocated blocks per hunt, and the largest sources by line (`--top`, 15).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.core import worldgen
from cairn.core.engine import Engine, compute_plan
from cairn.core.sites import SiteSet
from cairn.core.spec import convert_spec

NOW = 1_800_000_000.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spec(i: int, rnd: random.Random, treasures: int, half: int) -> object:
    x, z = rnd.randrange(-half + 600, half - 600), rnd.randrange(-half + 600, half - 600)
    return convert_spec({
        "id": f"p5-{i:05d}", "name": f"P5 hunt {i}",
        "area": {"min": [x - 500, -64, z - 500], "max": [x + 500, 320, z + 500]},
        "treasures": treasures, "duration": "6h", "spawn": {"tags_any": ["surface"], "min_spacing": 8},
    })  # fmt: skip


def create(eng: Engine, s: object) -> None:
    eng.apply(eng.create_hunt(compute_plan(eng.plan_input(s)), NOW).records)  # type: ignore[arg-type]
    eng.new_events.clear()  # the transport drains these after every call


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hunts", type=int, default=10_000)
    ap.add_argument("--treasures", type=int, default=10)
    ap.add_argument("--size", type=int, default=14928)
    ap.add_argument("--pack", default=None)
    ap.add_argument("--trace", type=int, default=300)
    ap.add_argument("--block", type=int, default=1000)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    base = rss_mb()
    t0 = time.perf_counter()
    if a.pack:
        from cairn.worlds.pack import load_pack

        sites: SiteSet = load_pack(a.pack, verify=False)
    else:
        sites = worldgen.generate(seed=1, size=a.size, density=0.5)
    print(f"world: {len(sites):,} sites in {time.perf_counter() - t0:.1f}s; "
          f"RSS {base:.0f} -> {rss_mb():.0f} MB")  # fmt: skip
    eng = Engine(b"bench", {"overworld": sites})
    rnd = random.Random(5)
    half = a.size // 2
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)  # as the server does (cairn/net/server.py: tune_gc)
    start_rss, start_blocks = rss_mb(), sys.getallocatedblocks()
    print(f"{'hunts':>6} {'block s':>8} {'ms/hunt':>8} {'RSS MB':>7} {'blocks':>10}")
    t_all = time.perf_counter()
    t = t_all
    for i in range(a.hunts):
        create(eng, spec(i, rnd, a.treasures, half))
        if (i + 1) % a.block == 0:
            now = time.perf_counter()
            print(f"{i + 1:>6} {now - t:>8.2f} {(now - t) * 1000 / a.block:>8.2f} {rss_mb():>7.0f} "
                  f"{sys.getallocatedblocks():>10,}", flush=True)  # fmt: skip
            t = now
    n = a.hunts
    total = time.perf_counter() - t_all
    print(f"created {n:,} hunts in {total:.1f}s; RSS +{rss_mb() - start_rss:.1f} MB "
          f"({(rss_mb() - start_rss) * 1024 / max(n, 1):.2f} KB/hunt), "
          f"blocks +{(sys.getallocatedblocks() - start_blocks) / max(n, 1):.0f}/hunt")  # fmt: skip
    if a.trace:
        specs = [spec(n + i, rnd, a.treasures, half) for i in range(a.trace)]
        gc.collect()
        tracemalloc.start(1)
        snap0 = tracemalloc.take_snapshot()
        b0 = sys.getallocatedblocks()
        for s in specs:
            create(eng, s)
        gc.collect()
        b1 = sys.getallocatedblocks()
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = snap1.compare_to(snap0, "lineno")
        size = sum(s.size_diff for s in stats)
        count = sum(s.count_diff for s in stats)
        print(f"traced per hunt ({a.trace} hunts after {n:,}): {size / a.trace:,.0f} B in {count / a.trace:.0f} "
              f"traced blocks; sys.getallocatedblocks +{(b1 - b0) / a.trace:.0f}")  # fmt: skip
        root = str(Path(__file__).resolve().parents[1]) + "/"
        for s in stats[: a.top]:
            fr = s.traceback[0]
            print(f"  {s.size_diff / a.trace:>8,.0f} B {s.count_diff / a.trace:>6.1f} blk  "
                  f"{fr.filename.replace(root, '')}:{fr.lineno}")  # fmt: skip


if __name__ == "__main__":
    main()
