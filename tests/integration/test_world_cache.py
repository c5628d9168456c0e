"""A procedural world is generated once and kept as a site pack in the data directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cairn import config as configmod
from cairn.app import build_world, procedural_pack_path
from cairn.core import worldgen
from cairn.core.sites import SiteSet


def _same(a: SiteSet, b: SiteSet) -> None:
    for col in ("x", "y", "z", "tags", "chunk_keys"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert list(a.tag_names) == list(b.tag_names)


def test_second_start_maps_the_cached_pack_and_gets_the_same_sites(tmp_path: Path) -> None:
    wc = configmod.WorldConfig(seed=7, size=512)
    first = build_world("overworld", wc, tmp_path)
    path = procedural_pack_path(tmp_path, "overworld", wc)
    assert path.is_file()
    second = build_world("overworld", wc, tmp_path)
    _same(first, second)
    _same(second, worldgen.generate(seed=7, size=512, density=wc.density))
    assert path.stat().st_mtime_ns == procedural_pack_path(tmp_path, "overworld", wc).stat().st_mtime_ns


def test_changed_parameters_regenerate_and_drop_the_old_pack(tmp_path: Path) -> None:
    old = configmod.WorldConfig(seed=7, size=512)
    build_world("overworld", old, tmp_path)
    new = configmod.WorldConfig(seed=8, size=512)
    sites = build_world("overworld", new, tmp_path)
    _same(sites, worldgen.generate(seed=8, size=512, density=new.density))
    assert not procedural_pack_path(tmp_path, "overworld", old).exists()
    assert procedural_pack_path(tmp_path, "overworld", new).is_file()


def test_a_corrupted_cache_is_generated_again(tmp_path: Path) -> None:
    wc = configmod.WorldConfig(seed=7, size=512)
    build_world("overworld", wc, tmp_path)
    path = procedural_pack_path(tmp_path, "overworld", wc)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _same(build_world("overworld", wc, tmp_path), worldgen.generate(seed=7, size=512, density=wc.density))
    _same(build_world("overworld", wc, tmp_path), worldgen.generate(seed=7, size=512, density=wc.density))


def test_cache_off_writes_nothing(tmp_path: Path) -> None:
    wc = configmod.WorldConfig(seed=7, size=512, cache=False)
    build_world("overworld", wc, tmp_path)
    assert not (tmp_path / "worlds").exists()
