"""Benchmark SiteSet and the procedural world. Run by hand, not under pytest:

    .venv/bin/python benchmarks/bench_sites.py [--sites 10000000] [--runs 51] [--warmup 5]

Method: every timing is the median of `--runs` runs after `--warmup` untimed runs, with
time.perf_counter. Query speed is also given as a ratio to a brute-force numpy scan of all sites
for the same box, measured in the same run. Memory is read from /proc/self/status: VmRSS
before and after (inputs freed) for the held size, VmHWM (reset through /proc/self/clear_refs)
for the transient peak. `generate()` runs in a fresh child process so its peak is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cairn.core.sites import SiteSet
from cairn.core.worldgen import DEFAULT_TAGS, generate

BOX = ((-500, -64, -500), (499, 320, 499))  # 1000×1000 columns, all heights
ODD_BOX = ((-503, 0, -497), (496, 200, 502))  # 1000×1000 columns, not chunk-aligned


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1e3,
        "p10_ms": samples[len(samples) // 10] * 1e3,
        "p90_ms": samples[(len(samples) * 9) // 10] * 1e3,
        "runs": runs,
        "warmup": warmup,
    }


def machine() -> str:
    model = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cpus, Python {platform.python_version()}, numpy {np.__version__}"


def bench_siteset(n: int, runs: int, warmup: int) -> dict[str, object]:
    out: dict[str, object] = {"sites_requested": n}
    rss0 = status_kb("VmRSS")
    rng = np.random.default_rng(20261127)
    xyz = np.empty((n, 3), dtype=np.int32)
    xyz[:, 0] = rng.integers(-4096, 4096, n, dtype=np.int32)
    xyz[:, 2] = rng.integers(-4096, 4096, n, dtype=np.int32)
    xyz[:, 1] = rng.integers(-64, 320, n, dtype=np.int32)
    tags = (np.uint32(1) << rng.integers(0, 3, n, dtype=np.uint32)) | (
        np.uint32(8) << rng.integers(0, len(DEFAULT_TAGS) - 3, n, dtype=np.uint32)
    )
    rss_inputs = status_kb("VmRSS")
    peak_reset = reset_peak()
    t = time.perf_counter()
    s = SiteSet.from_arrays(xyz, tags, DEFAULT_TAGS)
    out["build_s"] = time.perf_counter() - t
    out["build_peak_over_inputs_mb"] = (status_kb("VmHWM") - rss_inputs) / 1024 if peak_reset else None
    del xyz, tags
    out["sites"] = len(s)
    out["chunks"] = len(s.chunk_keys)
    out["nbytes_mb"] = s.nbytes() / 1e6
    out["bytes_per_site"] = s.nbytes() / len(s)
    out["rss_delta_mb"] = (status_kb("VmRSS") - rss0) / 1024

    surface, underwater = s.mask(["surface"]), s.mask(["underwater"])
    out["box_hits"] = int(s.query(*BOX).shape[0])
    out["query_box"] = timed(lambda: s.query(*BOX), runs, warmup)
    out["query_odd_box_masks"] = timed(lambda: s.query(*ODD_BOX, surface, underwater), runs, warmup)
    out["count_box"] = timed(lambda: s.count(*BOX), runs, warmup)

    # Reference: a brute-force scan of every site for the same box.
    x, y, z = s.x, s.y, s.z
    (x0, y0, z0), (x1, y1, z1) = BOX

    def scan() -> np.ndarray:
        return np.flatnonzero((x >= x0) & (x <= x1) & (z >= z0) & (z <= z1) & (y >= y0) & (y <= y1))

    assert np.array_equal(scan(), s.query(*BOX))
    out["scan_box_reference"] = timed(scan, max(5, runs // 10), 1)
    out["query_speedup_vs_scan"] = out["scan_box_reference"]["median_ms"] / out["query_box"]["median_ms"]

    probe = [s.pos(int(i)) for i in rng.integers(0, len(s), 1000)]
    t = time.perf_counter()
    for p in probe:
        s.index_of(p)
    out["index_of_us"] = (time.perf_counter() - t) / len(probe) * 1e6
    return out


def generate_child(runs: int) -> None:
    """In a fresh process: the cold generate() time and peak, then the median of warm runs."""
    rss0, hwm0 = status_kb("VmRSS"), status_kb("VmHWM")
    t = time.perf_counter()
    s = generate()
    cold = time.perf_counter() - t
    result: dict[str, object] = {
        "sites": len(s),
        "nbytes_mb": s.nbytes() / 1e6,
        "cold_s": cold,
        "peak_delta_mb": (status_kb("VmHWM") - max(hwm0, rss0)) / 1024,
        "rss_delta_mb": (status_kb("VmRSS") - rss0) / 1024,
        "kinds": {name: int(np.count_nonzero(s.tags & np.uint32(1 << i))) for i, name in enumerate(s.tag_names)},
    }
    del s
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        generate()
        samples.append(time.perf_counter() - t)
    result["warm_median_s"] = statistics.median(samples)
    result["warm_runs"] = runs
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=51)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--gen-runs", type=int, default=5)
    ap.add_argument("--generate-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_child:
        generate_child(args.gen_runs)
        return

    report: dict[str, object] = {"machine": machine()}
    child = subprocess.run(
        [sys.executable, __file__, "--generate-child", "--gen-runs", str(args.gen_runs)],
        check=True,
        capture_output=True,
        text=True,
    )
    report["generate_default"] = json.loads(child.stdout)
    report["siteset"] = bench_siteset(args.sites, args.runs, args.warmup)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
