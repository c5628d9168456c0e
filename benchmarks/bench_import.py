"""Import rate of `cairn world import` on a real region, replicated: Minecraft 1.20.1 or Hytale.

`--format anvil` (default): the Minecraft region (530 chunks, 167 fully generated, 363 proto-chunks)
is copied to `--copies` region files r.<i>.<j>.mca. `--format hytale`: the real Hytale region of
tests/data/hytale-into-the-heart (855 chunks, all generated) is copied to <i>.<j>.region.bin. The
import runs with `--workers` processes and no resume. Reported per run: wall time
of `import_regions` (planning, decoding in the pool, merging, building the SiteSet; pack writing
excluded), chunks per second over all chunks, and over the fully generated chunks only (the same
time divided into the full chunks alone: the proto-chunks are nearly free to skip).

Reference measured in the same run: the single-process import of the same copies (`--workers 1`).

    flock -x /tmp/cairn-bench.lock taskset -c 0,1 .venv/bin/python benchmarks/bench_import.py
    flock -x /tmp/cairn-bench.lock taskset -c 0,1 .venv/bin/python benchmarks/bench_import.py --format hytale
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cairn.worlds import importer  # noqa: E402

DEFAULT_SRC = {
    "anvil": ROOT.parent / "shared" / "data" / "worlds" / "mc-1.20.1" / "region" / "r.0.-1.mca",
    "hytale": ROOT / "tests" / "data" / "hytale-into-the-heart" / "chunks" / "-1.0.region.bin",
}
COPY_NAME = {"anvil": "r.{}.{}.mca", "hytale": "{}.{}.region.bin"}


def one(world: Path, work: Path, workers: int, fmt: str = "anvil") -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    sites, info = importer.import_regions(world, fmt, work=work, workers=workers)
    dt = time.perf_counter() - t
    full = info["chunks"] - info["chunks_not_generated"]
    return {
        "seconds": dt,
        "chunks": info["chunks"],
        "full_chunks": full,
        "chunks_per_s": info["chunks"] / dt,
        "full_chunks_per_s": full / dt,
        "sites": len(sites),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=sorted(DEFAULT_SRC), default="anvil")
    ap.add_argument("--src", type=Path)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    fmt = args.format
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world" / ("region" if fmt == "anvil" else "chunks")
        world.mkdir(parents=True)
        for i in range(args.copies):
            shutil.copy(args.src or DEFAULT_SRC[fmt], world / COPY_NAME[fmt].format(i, -1 - i))
        work = Path(tmp) / "work"
        one(world.parent, work, args.workers, fmt)  # warm-up: page cache, imports, pool start
        par = [one(world.parent, work, args.workers, fmt) for _ in range(args.runs)]
        ref = [one(world.parent, work, 1, fmt) for _ in range(max(1, args.runs // 2))]
    med = {k: statistics.median(r[k] for r in par) for k in par[0]}
    ref_med = {k: statistics.median(r[k] for r in ref) for k in ref[0]}
    out = {
        "format": fmt,
        "copies": args.copies,
        "workers": args.workers,
        "runs": args.runs,
        "parallel": par,
        "single": ref,
        "median": med,
        "single_median": ref_med,
        "speedup": ref_med["seconds"] / med["seconds"],
    }
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
