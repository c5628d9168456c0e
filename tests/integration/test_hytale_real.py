"""A real Hytale save, imported and checked against the game's own data.

The sample (tests/data/hytale-into-the-heart) was saved by the game's server. Cairn's sites are
checked against the heightmap the game stored in every chunk, and cell by cell against an
independent scalar reading of the same file (tests/unit/hytale_game.py, after the game's code).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cairn.core.sites import SiteSet
from cairn.worlds import importer
from cairn.worlds.classify import AIR, SOLID, WATER, hytale_base, hytale_class, hytale_fluid_class
from tests.unit import hytale_game as hg
from tests.unit.test_hytale_layout import SAMPLE_OTHER, SAMPLE_SOLID

REAL = Path(__file__).resolve().parents[1] / "data" / "hytale-into-the-heart"
REGION = REAL / "chunks" / "-1.0.region.bin"
SURFACE, CAVE, UNDERWATER = 1, 2, 4


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SiteSet, dict[str, object]]:
    work = tmp_path_factory.mktemp("hy") / "work"
    return importer.import_regions(REAL, "hytale", work=work, workers=1)


@pytest.fixture(scope="module")
def game() -> hg.GameRegion:
    return hg.GameRegion(REGION)


def _cls(game: hg.GameRegion, x: int, y: int, z: int) -> int:
    """A cell's class from the scalar reading: a fluid fills a cell whose block is not solid."""
    block = hytale_class(game.block(x, y, z))
    name, level = game.fluid(x, y, z)
    if block != SOLID and level > 0 and name != "Empty":
        return hytale_fluid_class(name)
    return block


def test_the_real_save_imports_in_full(imported: tuple[SiteSet, dict[str, object]]) -> None:
    s, info = imported
    assert info["chunks"] == 855 and info["chunk_errors"] == 0 and info["chunks_not_generated"] == 0
    kinds = Counter(int(t) & 7 for t in np.asarray(s.tags))
    assert kinds[SURFACE] > 800_000 and kinds[CAVE] > 5_000 and kinds[UNDERWATER] > 500


def test_the_name_table_lists_every_block_of_the_sample(game: hg.GameRegion) -> None:
    held = {
        name
        for doc in game.docs.values()
        for sec in doc["Components"]["ChunkColumn"]["Sections"]
        for _, name, _ in hg.BlockSectionData(bytes(sec["Components"]["Block"]["Data"]), 6).palette.order
    }
    assert held == {"Empty", *SAMPLE_SOLID, *SAMPLE_OTHER}


def test_top_surface_site_agrees_with_the_games_heightmap_in_every_column(
    imported: tuple[SiteSet, dict[str, object]], game: hg.GameRegion
) -> None:
    """In every column, Cairn's highest surface site stands on the block the game's heightmap names.

    The heightmap (`BlockChunk.updateHeight`) is the highest block that is not Empty and not
    transparent; it ignores fluids. Where Cairn's site differs, the game's own cells must say why:
    a fluid lies on that block, the block is not a floor (leaves, an invisible barrier, a stalactite),
    or a non-floor block stands on it (a branch). Every other column must agree exactly.
    """
    s, _ = imported
    x, y, z, tags = (np.asarray(a) for a in (s.x, s.y, s.z, s.tags))
    top: dict[tuple[int, int], int] = {}
    surface = (tags & SURFACE) != 0
    for a, b, c in zip(x[surface].tolist(), y[surface].tolist(), z[surface].tolist(), strict=True):
        top[a, c] = max(top.get((a, c), -1), b)
    sites = {(int(a), int(b), int(c)): int(t) for a, b, c, t in zip(x, y, z, tags, strict=True)}
    why: Counter[str] = Counter()
    for cx, cz in game.chunks():
        heights = game.heightmap(cx, cz)
        for col, h in enumerate(heights):
            wx, wz = cx * 32 + col % 32, cz * 32 + col // 32
            got = top.get((wx, wz))
            if got == h + 1:
                why["agrees"] += 1
                continue
            floor = hytale_class(game.block(wx, h, wz))
            above, above2 = _cls(game, wx, h + 1, wz), _cls(game, wx, h + 2, wz)
            assert got is None or got < h + 1, (wx, wz, h, got)  # never above the game's top block
            if above == WATER:
                why["water on top"] += 1
                assert (floor != SOLID) or sites.get((wx, h + 1, wz)) == UNDERWATER, (wx, h, wz)
            elif above not in (AIR, WATER) and game.block(wx, h + 1, wz) == "Empty":
                why["lava, poison or slime on top"] += 1
            elif floor != SOLID:
                why[f"not a floor: {hytale_base(game.block(wx, h, wz))}"] += 1
            else:
                assert above2 != AIR or above != AIR, (wx, h, wz)
                why["a non-floor block on top"] += 1
            if got is not None:  # the site found instead is open to the sky: nothing closing above it
                assert all(_cls(game, wx, yy, wz) not in (SOLID, WATER) for yy in range(got + 1, h + 2)), (wx, wz)
    columns = 855 * 1024
    assert sum(why.values()) == columns
    assert why["agrees"] >= 0.99 * columns, why
    assert why["water on top"] > 0 and why["lava, poison or slime on top"] > 0, why
    # The tops that are not a floor are the tree crowns, the map's invisible barrier and a stalactite.
    not_floor = {k.removeprefix("not a floor: ") for k in why if k.startswith("not a floor: ")}
    assert all(n.startswith(("Plant_Leaves_", "Air_Block", "Rock_Stone_Stalactite_")) for n in not_floor), not_floor


def test_underwater_sites_are_in_water_and_no_site_is_in_lava_poison_or_slime(
    imported: tuple[SiteSet, dict[str, object]], game: hg.GameRegion
) -> None:
    s, _ = imported
    fluids = game.fluid_cells()
    held = Counter(name for name, _ in fluids.values())
    # The sample holds every kind of fluid, so the checks below have something to refuse.
    assert {"Water", "Water_Source", "Lava_Source", "Poison_Source", "Slime"} <= set(held), held
    wet: Counter[str] = Counter()
    for i in range(len(s)):
        x, y, z = s.pos(i)
        assert (x, y - 1, z) not in fluids, (x, y, z)  # the floor is a block, never a fluid
        if int(s.tags[i]) & UNDERWATER:
            name, _ = fluids[x, y, z]
            assert name.startswith("Water"), (x, y, z, name)
            wet[name] += 1
        else:
            assert (x, y, z) not in fluids, (x, y, z, fluids[x, y, z])
    assert sum(wet.values()) > 500 and wet["Water_Source"] > 0


def test_a_thousand_sampled_sites_are_empty_cells_on_a_solid_block(
    imported: tuple[SiteSet, dict[str, object]], game: hg.GameRegion
) -> None:
    s, _ = imported
    dry = [i for i in range(len(s)) if not int(s.tags[i]) & UNDERWATER]
    rng = random.Random(20)
    floors: Counter[str] = Counter()
    for i in rng.sample(dry, 1000):
        x, y, z = s.pos(i)
        assert game.block(x, y, z) == "Empty" and game.fluid(x, y, z) in (("Empty", 0),), (x, y, z)
        floor = game.block(x, y - 1, z)
        assert hytale_class(floor) == SOLID and game.fluid(x, y - 1, z)[1] == 0, (x, y, z, floor)
        floors[hytale_base(floor)] += 1
    assert floors["Soil_Grass"] > 500  # mostly open ground, as the map is


def test_the_fixture_writer_reproduces_real_sections_byte_for_byte(game: hg.GameRegion) -> None:
    """Sections read from the real save and written again by the fixture writer are the same bytes,
    so the writer follows the game's layout (nibble order, palette entries, fluid levels)."""
    kinds: Counter[tuple[str, int]] = Counter()
    for n, (slot, doc) in enumerate(sorted(game.docs.items())):
        for sec in doc["Components"]["ChunkColumn"]["Sections"]:
            comps = sec["Components"]
            block = bytes(comps["Block"]["Data"])
            read = hg.BlockSectionData(block, comps["Block"]["Version"])
            pal = read.palette
            # Every Byte section, and every 16th chunk's 4-bit ones, to stay fast.
            if pal.kind == hg.BYTE or (pal.kind == hg.HALF_BYTE and n % 16 == 0):
                ids = [pal.internal(i) for i in range(hg.CELLS)]
                entries = [(i, name) for i, name, _ in pal.order]
                out = hg.write_section((), pal.kind, entries, ids, read.migration)
                assert block[: read.end] == out[: read.end], (slot, pal.kind)
                kinds["block", pal.kind] += 1
            fluid = bytes(comps["Fluid"]["Data"]) if "Fluid" in comps else b""
            f = hg.FluidSectionData(fluid) if fluid else None
            if f is not None and f.palette.kind != hg.EMPTY:
                fids = [f.palette.internal(i) for i in range(hg.CELLS)]
                levels = [f.level(i) for i in range(hg.CELLS)] if f.levels is not None else None
                fentries = [(i, name) for i, name, _ in f.palette.order]
                assert hg.write_fluid({}, f.palette.kind, fentries, fids, levels) == fluid, slot
                kinds["fluid", f.palette.kind] += 1
    assert kinds["block", hg.BYTE] == 4 and kinds["block", hg.HALF_BYTE] > 40 and kinds["fluid", hg.HALF_BYTE] > 0
