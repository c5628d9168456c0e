"""Opening a 10M-site pack: `load_pack` time in fresh processes, and page sharing between processes.

Method: 10,000,000 random sites (x, z uniform in [-4096, 4096), y in [-64, 320), a kind and a biome
tag each) are built with `SiteSet.from_arrays` and written with `write_pack` (timed once). Each open is
timed in a fresh child process (interpreter and imports excluded: the clock starts right before
`load_pack`), page cache warm, `--runs` times per mode; medians reported:

- `verify=True` (the default): header checks plus one CRC-32 pass over every column;
- `verify=False`: header checks only; no column page is touched until queried;
- reference, same run: reading the same columns into memory with `np.fromfile` (a copying loader).

Each child also runs one 512×512 box query right after opening. Sharing: two children open the pack
with `verify=True` (which reads every page) and report their `Rss` and `Pss` from
`/proc/self/smaps_rollup` while both are alive; a shared mapping shows Pss well below Rss.

    flock -x /tmp/cairn-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_pack.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cairn.core.sites import SiteSet  # noqa: E402
from cairn.worlds.pack import write_pack  # noqa: E402

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from cairn.worlds.pack import load_pack
path, mode = sys.argv[1], sys.argv[2]
if mode == "fromfile":
    t = time.perf_counter()
    data = np.fromfile(path, dtype=np.uint8)  # the copying reference: every byte read into memory
    dt = time.perf_counter() - t
    print(json.dumps({{"open": dt}}))
    sys.exit()
t = time.perf_counter()
s = load_pack(path, verify=(mode == "verify"))
dt = time.perf_counter() - t
t = time.perf_counter()
hits = len(s.query((0, -64, 0), (511, 320, 511)))
q = time.perf_counter() - t
out = {{"open": dt, "query": q, "hits": hits, "sites": len(s)}}
if len(sys.argv) > 3:
    print("ready", flush=True)
    sys.stdin.readline()
    roll = dict(l.split(":", 1) for l in open("/proc/self/smaps_rollup").read().splitlines()[1:])
    out.update({{k: int(roll[k].split()[0]) for k in ("Rss", "Pss", "Shared_Clean")}})
print(json.dumps(out), flush=True)
"""


def child(path: Path, mode: str) -> dict[str, float]:
    code = CHILD.format(root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, str(path), mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def shared(path: Path) -> list[dict[str, float]]:
    code = CHILD.format(root=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), "verify", "hold"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    outs = []
    for p in procs:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write("\n")
        p.stdin.flush()
        outs.append(json.loads(p.stdout.readline()))
    for p in procs:
        p.wait()
    return outs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n = args.sites
    xyz = np.empty((n, 3), dtype=np.int32)
    xyz[:, 0] = rng.integers(-4096, 4096, n)
    xyz[:, 1] = rng.integers(-64, 320, n)
    xyz[:, 2] = rng.integers(-4096, 4096, n)
    tags = (np.uint32(1) << rng.integers(0, 3, n).astype(np.uint32)) | (
        np.uint32(8) << rng.integers(0, 8, n).astype(np.uint32)
    )
    names = ["surface", "cave", "underwater", *[f"biome{i}" for i in range(8)]]
    s = SiteSet.from_arrays(xyz, tags, names)
    del xyz, tags
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        path = Path(tmp) / "big.pack"
        t = time.perf_counter()
        write_pack(s, path, {"world": "bench"})
        write_s = time.perf_counter() - t
        size = path.stat().st_size
        runs: dict[str, list[dict[str, float]]] = {}
        for mode in ("verify", "noverify", "fromfile"):
            child(path, mode)  # warm-up
            runs[mode] = [child(path, mode) for _ in range(args.runs)]
        sharing = shared(path)
    med = {m: statistics.median(r["open"] for r in rs) for m, rs in runs.items()}
    out = {
        "sites": len(s),
        "chunks": len(s.chunk_keys),
        "file_bytes": size,
        "write_seconds": write_s,
        "open_median_seconds": med,
        "query_after_open_median_seconds": {
            m: statistics.median(r["query"] for r in rs) for m, rs in runs.items() if m != "fromfile"
        },
        "hits": runs["verify"][0]["hits"],
        "sharing_two_processes_kib": sharing,
        "runs": runs,
    }
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
