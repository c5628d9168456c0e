"""Placement across hunts: min_spacing between hunts planned at once, stale plans, the live-treasure index."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cairn.core import placement, rng
from cairn.core.engine import Engine, StalePlan, compute_plan
from cairn.core.errors import PlacementInfeasible
from cairn.core.placement import LiveTreasures
from cairn.core.records import AnyRecord, encode_many
from tests.support import SECRET, T0, engine, grid_world, spec


def reference_place(key: bytes, s, sites, avoid) -> list[int]:  # type: ignore[no-untyped-def]
    """Placement as specified, one candidate at a time: the result `place` must give bit for bit."""
    idx = placement.eligible(s, sites)
    order = idx[rng.generator(key).permutation(len(idx))] if len(idx) else idx
    gap2 = s.spawn.min_spacing**2
    taken: list[int] = []
    kept = [(p[0], p[2]) for p in avoid]
    for i in order.tolist():
        if len(taken) == s.treasures:
            break
        x, _, z = sites.pos(i)
        if s.spawn.min_spacing <= 0 or all((x - a) ** 2 + (z - b) ** 2 >= gap2 for a, b in kept):
            taken.append(i)
            kept.append((x, z))
    return taken


@pytest.mark.parametrize("seed", range(6))
def test_place_matches_the_one_at_a_time_reference_and_its_blockers_suffice(seed: int) -> None:
    rnd = random.Random(seed)
    print("seed", seed)
    sites = grid_world(n=96, step=3)
    for k in range(8):
        s = spec(
            id=f"r{k}", treasures=rnd.randrange(1, 40),
            area={"min": [-140, 0, -140], "max": [rnd.randrange(-60, 140), 200, rnd.randrange(-60, 140)]},
            spawn={"tags_any": ["surface"], "min_spacing": rnd.choice([0, 1, 5, 9, 17])},
        )  # fmt: skip
        avoid = [(rnd.randrange(-150, 150), 64, rnd.randrange(-150, 150)) for _ in range(rnd.randrange(0, 300))]
        key = placement.placement_key(SECRET, s)
        want = reference_place(key, s, sites, avoid)
        if len(want) < s.treasures:
            with pytest.raises(PlacementInfeasible):
                placement.place(key, s, sites, avoid)
            continue
        got = placement.place(key, s, sites, avoid)
        assert got.sites == want
        assert got.blockers == sorted(set(got.blockers))
        assert placement.place(key, s, sites, [avoid[i] for i in got.blockers]).sites == want


def live_positions(eng: Engine, world: str = "overworld") -> list[tuple[int, int, int]]:
    return sorted(t.pos for h in eng.hunts.values() if h.world == world for t in h.treasures if t.live)


def index_positions(live: LiveTreasures) -> list[tuple[int, int, int]]:
    live._check()
    return sorted(live.within(-(10**8), -(10**8), 10**8, 10**8))


def test_a_plan_goes_stale_only_when_a_hunt_is_placed_near_its_area_or_the_sites_change() -> None:
    eng = engine(grid_world(n=256, step=4))  # columns -512..508
    west = {"min": [-500, 0, -500], "max": [-300, 200, -300]}
    east = {"min": [300, 0, 300], "max": [500, 200, 500]}
    spaced = {"tags_any": ["surface"], "min_spacing": 8}

    inp = eng.plan_input(spec(id="a", area=west, spawn=spaced))
    eng.create_hunt(compute_plan(eng.plan_input(spec(id="far", area=east, spawn=spaced))), T0)
    eng.create_hunt(compute_plan(inp), T0)  # a hunt far away leaves the plan valid

    inp = eng.plan_input(spec(id="b", area=west, spawn=spaced))
    eng.create_hunt(compute_plan(eng.plan_input(spec(id="near", area=west, spawn=spaced))), T0)
    with pytest.raises(StalePlan):
        eng.create_hunt(compute_plan(inp), T0)

    inp = eng.plan_input(spec(id="c", area=west))  # no min_spacing: other hunts do not matter
    eng.create_hunt(compute_plan(eng.plan_input(spec(id="near2", area=west, spawn=spaced))), T0)
    eng.create_hunt(compute_plan(inp), T0)

    inp = eng.plan_input(spec(id="d", area=west, spawn=spaced))
    eng.end_hunt("near", T0)  # treasures gone since: the plan kept away from more than it had to
    eng.create_hunt(compute_plan(inp), T0)

    inp = eng.plan_input(spec(id="e", area=east, spawn=spaced))
    eng.world_version["overworld"] = eng.world_version.get("overworld", 0) + 1  # new sites uploaded
    with pytest.raises(StalePlan):
        eng.create_hunt(compute_plan(inp), T0)


@pytest.mark.parametrize("seed", range(8))
def test_min_spacing_holds_between_hunts_planned_at_once_and_created_in_any_order(seed: int) -> None:
    """Many plans gathered before any is applied (as the server's executor does), applied in a random
    order, with claims and ends in between; a stale plan is planned again. Every hunt created keeps its
    min_spacing from every treasure live at its creation, placing again from its record gives the same
    sites, and the live-treasure index always equals the live treasures."""
    print("seed", seed)
    rnd = random.Random(seed)
    eng = engine(grid_world(n=160, step=2))  # columns -160..158, 2 apart: spacing conflicts are likely
    records: list[AnyRecord] = []
    pending = []
    made = 0
    stale = 0
    for step in range(150):
        roll = rnd.random()
        if roll < 0.5 or not pending:
            x, z = rnd.randrange(-100, 40), rnd.randrange(-100, 40)
            w = rnd.randrange(10, 60)
            s = spec(
                id=f"h{made}", treasures=rnd.randrange(1, 6), duration="1h",
                area={"min": [x, 0, z], "max": [x + w, 200, z + w]},
                spawn={"tags_any": ["surface"], "min_spacing": rnd.choice([0, 4, 8, 12, 20])},
            )  # fmt: skip
            made += 1
            pending.append(eng.plan_input(s))
        elif roll < 0.8:
            inp = pending.pop(rnd.randrange(len(pending)))
            while True:
                try:
                    plan = compute_plan(inp)
                except PlacementInfeasible:  # the spec asks for more than fits there
                    break
                live_before = [
                    (t.pos, h.id) for h in eng.hunts.values() for t in h.treasures if t.live and h.ended is None
                ]
                try:
                    out = eng.create_hunt(plan, T0 + step)
                except StalePlan:
                    stale += 1
                    inp = eng.plan_input(inp.spec)
                    continue
                records.extend(out.records)
                gap = inp.spec.spawn.min_spacing
                for p in plan.pos:
                    for q, _ in live_before:
                        assert (p[0] - q[0]) ** 2 + (p[2] - q[2]) ** 2 >= gap * gap, (p, q, gap)
                rec = out.records[0]
                assert eng.hunts[inp.spec.id].created == rec  # rebuilt from the hunt, equal to the journaled one
                key = placement.placement_key(SECRET, inp.spec)
                sites = eng.worlds["overworld"]
                assert [sites.pos(i) for i in placement.place(key, inp.spec, sites, rec.avoid).sites] == rec.pos
                break
        elif roll < 0.92:
            live = [(h, t) for h in eng.hunts.values() for t in h.treasures if t.live and h.started]
            if live:
                h, t = rnd.choice(live)
                out = eng.dig(h.id, f"p{step}", (t.pos[0], t.pos[1] + 1, t.pos[2]), t.pos, None, T0 + step)
                records.extend(out.records)
        else:
            open_ = [h for h in eng.hunts.values() if h.ended is None]
            if open_:
                records.extend(eng.end_hunt(rnd.choice(open_).id, T0 + step).records)
        assert index_positions(eng.live_treasures["overworld"]) == live_positions(eng)
    print("stale plans", stale)
    again = engine(grid_world(n=160, step=2))
    again.replay(sorted(records, key=lambda r: r.seq))
    assert index_positions(again.live_treasures["overworld"]) == live_positions(eng)
    assert encode_many(again.retained()) == encode_many(eng.retained())


def test_live_treasures_stress_against_a_plain_list() -> None:
    seed = 11
    print("seed", seed)
    rnd = random.Random(seed)
    live = LiveTreasures()
    plain: list[tuple[int, int, int]] = []
    for _ in range(400):
        if rnd.random() < 0.6 or not plain:
            batch = [(rnd.randrange(-3000, 3000), 64, rnd.randrange(-3000, 3000)) for _ in range(rnd.randrange(1, 8))]
            live.add(batch)
            plain.extend(batch)
        else:
            p = plain.pop(rnd.randrange(len(plain)))
            live.remove(p)
        x0, z0 = rnd.randrange(-3500, 3000), rnd.randrange(-3500, 3000)
        x1, z1 = x0 + rnd.randrange(0, 2500), z0 + rnd.randrange(0, 2500)
        want = sorted(p for p in plain if x0 <= p[0] <= x1 and z0 <= p[2] <= z1)
        assert sorted(live.within(x0, z0, x1, z1)) == want
        assert len(live) == len(plain)
    live._check()


@pytest.mark.parametrize(("treasures", "half", "shift"), [(300, 128, 6), (25, 512, 7)])
def test_around_lists_every_treasure_within_64_columns_of_a_point(treasures: int, half: int, shift: int) -> None:
    """`Hunt.around` against a brute-force scan, with dense (64-column cells) and sparse (128) treasures."""
    eng = engine(grid_world(n=half // 2, step=4))
    area = {"min": [-half, 0, -half], "max": [half, 200, half]}
    eng.create_hunt(compute_plan(eng.plan_input(spec(id="d", treasures=treasures, area=area))), T0)
    h = eng.hunts["d"]
    around = h.make_around()
    assert h.around_shift == shift
    pts = np.array([(t.pos[0], t.pos[2]) for t in h.treasures])
    rnd = random.Random(3)
    for _ in range(3000):
        x, z = rnd.randrange(-half - 100, half + 100), rnd.randrange(-half - 100, half + 100)
        listed = {t.n for t in around.get(((x >> h.around_shift) << 32) + (z >> h.around_shift), ())}
        close = {i + 1 for i in np.flatnonzero((np.abs(pts[:, 0] - x) <= 64) & (np.abs(pts[:, 1] - z) <= 64))}
        assert close <= listed


def test_a_hunt_decided_but_not_applied_leaves_the_live_treasure_index() -> None:
    # A Redis node decides a hunt and applies it only once Redis commits it: a refused one never
    # reaches the index (the node used to apply it at once and take it out again).
    from cairn.core.engine import Engine

    eng = Engine(SECRET, {"overworld": grid_world()})
    spaced = {"tags_any": ["surface"], "min_spacing": 8}
    out = eng.create_hunt(compute_plan(eng.plan_input(spec(id="refused", spawn=spaced))), T0)
    assert index_positions(eng.live_treasures["overworld"]) == [] == live_positions(eng)
    eng.apply(out.records)  # committed after all
    assert len(eng.live_treasures["overworld"]) == 5
