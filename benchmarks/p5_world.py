"""Write P5's world (`benchmarks/p5.toml`: procedural, seed 1, 14,928 columns a side, about 10M sites)
as a site pack, for `benchmarks/p5-pack.toml`. Does nothing if the pack is there already, in
the current format.

Usage: p5_world.py [OUT]   (default benchmarks/out/p5-world.pack)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.core import worldgen
from cairn.worlds.pack import VERSION, write_pack

SEED, SIZE, DENSITY = 1, 14928, 0.5


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "out" / "p5-world.pack")
    if out.is_file() and int.from_bytes(out.read_bytes()[8:12], "little") == VERSION:
        print(f"{out} exists")
        return
    t0 = time.perf_counter()
    sites = worldgen.generate(seed=SEED, size=SIZE, density=DENSITY)
    write_pack(sites, out, meta={"world": "overworld", "source": "procedural", "seed": SEED, "size": SIZE,
                                 "density": DENSITY, "generator_version": worldgen.VERSION})  # fmt: skip
    print(f"wrote {out}: {len(sites):,} sites in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
