"""Hunts are solvable from hints alone, and not by luck.

Simulated players know what a game client knows: the terrain under their feet (the procedural
world's heights) and what Cairn replies. They never read a treasure position. Hunts use surface
sites, so the ground tells a player which y to dig at.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterator

import pytest

from cairn.core import worldgen
from cairn.core.engine import Engine, Limits, compute_plan
from cairn.core.errors import OutOfBounds
from cairn.core.geometry import bearing_angle
from cairn.core.sites import SiteSet
from cairn.core.spec import convert_spec
from tests.support import Live

T0 = 1_900_000_000.0
WORLD_SIZE = 1024
STEP = {"cold": 96.0, "cool": 48.0, "warm": 16.0, "hot": 5.0, "burning": 1.5}
SEEDS = range(50)
GROUND: dict[int, dict[tuple[int, int], int]] = {}


def worlds() -> Iterator[tuple[int, worldgen.Terrain, SiteSet]]:
    for wseed in range(5):
        sites = worldgen.generate(seed=wseed + 10, size=WORLD_SIZE, density=1.0)
        yield wseed, worldgen.Terrain(wseed + 10, WORLD_SIZE), sites


def new_hunt(sites, seed: int, solve_by: str | None = None) -> tuple[Engine, str, int]:
    eng = Live(b"solver", {"overworld": sites}, limits=Limits(dig_rate=1e6, dig_burst=10**6, max_speed=1e9))
    rnd = random.Random(seed)
    n = rnd.randint(5, 20)
    hints = {"cooldown": "0s", "kinds": ["temperature", "bearing", "region"]}
    if solve_by:
        hints["solve_by"] = solve_by
    spec = convert_spec({
        "id": f"s{seed}", "area": {"min": [-400, -64, -400], "max": [400, 320, 400]}, "treasures": n,
        "seed": str(seed), "spawn": {"tags_any": ["surface"], "min_spacing": 24}, "hints": hints, "duration": "8h",
    })  # fmt: skip
    eng.create_hunt(compute_plan(eng.plan_input(spec)), T0)
    return eng, spec.id, n


class Player:
    def __init__(self, terrain: worldgen.Terrain, x: float, z: float) -> None:
        self.terrain = terrain
        self.x, self.z = x, z
        self.rid = 0

    def ground(self, x: int, z: int) -> int:
        """The air cell on top of the column, as a game client sees it (memoised per terrain)."""
        cache = GROUND.setdefault(id(self.terrain), {})
        y = cache.get((x, z))
        if y is None:
            y = cache[(x, z)] = int(self.terrain.height([x], [z])[0]) + 1
        return y

    def prefetch(self, x0: int, x1: int, z0: int, z1: int) -> None:
        """Read a box of the terrain at once, as a client loads chunks."""
        import numpy as np

        xs, zs = np.meshgrid(np.arange(x0, x1 + 1), np.arange(z0, z1 + 1))
        hs = self.terrain.height(xs.ravel(), zs.ravel())
        cache = GROUND.setdefault(id(self.terrain), {})
        for x, z, h in zip(xs.ravel().tolist(), zs.ravel().tolist(), hs.tolist(), strict=True):
            cache[(x, z)] = h + 1

    def pos(self) -> tuple[int, int, int]:
        x, z = round(self.x), round(self.z)
        return (x, self.ground(x, z), z)

    def dig(self, eng: Engine, hunt: str, now: float) -> dict:
        self.rid += 1
        x, _, z = self.pos()
        try:
            return eng.dig(hunt, "solver", self.pos(), (x, self.ground(x, z), z), f"r{self.rid}", now).result
        except OutOfBounds:  # a step beyond the hunt's area: nothing to find there
            return {"result": "miss"}


def solve(eng: Engine, hunt: str, terrain: worldgen.Terrain, n: int, budget: int = 20_000) -> tuple[int, int, int]:
    """Follow bearings, step by temperature, dig at the feet. Returns (found, hints, digs)."""
    p = Player(terrain, 0.0, 0.0)
    found = hints = digs = 0
    now = T0 + 1
    while found < n and hints < budget:
        now += 0.5
        reply = eng.hint(hunt, "solver", p.pos(), None, now).result["hint"]
        hints += 1
        if reply.get("temperature") in ("burning", "hot"):
            digs += 1
            if p.dig(eng, hunt, now)["result"] == "found":
                found += 1
                continue
        ang = math.radians(bearing_angle(reply["bearing"]))
        step = STEP[reply["temperature"]]
        p.x += math.sin(ang) * step
        p.z -= math.cos(ang) * step
    return found, hints, digs


@pytest.fixture(scope="module")
def ws() -> list[tuple[int, worldgen.Terrain, SiteSet]]:
    return list(worlds())


@pytest.fixture(scope="module")
def solver_runs(ws) -> list[tuple[int, int, int, int]]:
    runs = []
    for seed in SEEDS:
        _, terrain, sites = ws[seed % len(ws)]
        eng, hunt, n = new_hunt(sites, seed)
        found, hints, digs = solve(eng, hunt, terrain, n)
        runs.append((n, found, hints, digs))
    return runs


def test_players_following_hints_find_every_treasure(solver_runs) -> None:
    assert len(solver_runs) >= 50
    for n, found, _, _ in solver_runs:
        assert found == n
    per_treasure = [hints / n for n, _, hints, _ in solver_runs]
    median = statistics.median(per_treasure)
    print(f"\nmedian hints per treasure over {len(solver_runs)} hunts: {median:.1f}")
    assert median < 200


def test_random_diggers_find_far_fewer(solver_runs, ws) -> None:
    rnd = random.Random(99)
    solver_found = random_found = 0
    for seed in list(SEEDS)[:20]:
        _, found, _, digs = solver_runs[seed]
        _, terrain, sites = ws[seed % len(ws)]
        eng, hunt, _ = new_hunt(sites, seed)
        p = Player(terrain, 0, 0)
        got = 0
        for i in range(max(digs, 50)):  # as many digs as the solver needed, at random spots of the area
            p.x, p.z = rnd.uniform(-400, 400), rnd.uniform(-400, 400)
            got += p.dig(eng, hunt, T0 + 1 + i)["result"] == "found"
        solver_found += found
        random_found += got
    assert solver_found >= 10 * max(1, random_found), (solver_found, random_found)


def test_solve_guarantee_after_solve_by_one_16_column_box_suffices(ws) -> None:
    for seed in range(10):
        _, terrain, sites = ws[seed % len(ws)]
        eng, hunt, n = new_hunt(sites, seed, solve_by="1h")
        p = Player(terrain, 0, 0)
        now = T0 + 3600  # hints asked only from solve_by on
        for _ in range(n):
            now += 1
            box = eng.hint(hunt, "solver", p.pos(), None, now).result["hint"]["region"]
            (x0, z0), (x1, z1) = box["min"], box["max"]
            assert x1 - x0 + 1 <= 16 and z1 - z0 + 1 <= 16
            p.prefetch(x0, x1, z0, z1)
            hit = False
            for x in range(x0, x1 + 1):  # every column of the box, each at its own ground
                for z in range(z0, z1 + 1):
                    p.x, p.z = x, z
                    now += 0.001
                    if p.dig(eng, hunt, now)["result"] == "found":
                        hit = True
                        break
                if hit:
                    break
            assert hit, f"hunt {hunt}: no treasure inside its final box"
