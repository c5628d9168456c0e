"""The engine's rules: placement, lifecycle, digs, claims, bounties, grants, idempotency."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core import errors
from cairn.core.engine import compute_plan, split_pool
from cairn.core.records import Claimed, HuntEnded, Settled
from tests.support import T0, Live, create, engine, grid_world, positions, spec


def dig(eng, player, at, now=T0 + 1, hunt="h1", rid=None, pos=None):
    pos = pos or (at[0], at[1] + 1, at[2])
    return eng.dig(hunt, player, pos, at, rid, now)


def test_create_places_all_treasures_inside_the_area_on_tagged_sites() -> None:
    eng = engine()
    view = create(eng, treasures=12, area={"min": [-50, 0, -60], "max": [40, 200, 30]})
    assert view["state"] == "active" and view["treasures_total"] == 12
    world = eng.worlds["overworld"]
    for t in view["treasures"]:
        x, y, z = t["pos"]
        assert -50 <= x <= 40 and -60 <= z <= 30
        assert "surface" in world.tags_of(world.index_of((x, y, z)))
    assert [t["id"] for t in view["treasures"]] == [f"h1#{n}" for n in range(1, 13)]


def test_placement_honours_tags_none_spacing_and_exclusions() -> None:
    eng = engine()
    create(
        eng,
        treasures=8,
        spawn={"tags_any": ["surface"], "tags_none": ["forest"], "min_spacing": 20,
               "exclude": [{"center": [0, 64, 0], "radius": 30}]},
    )  # fmt: skip
    pts = positions(eng, "h1")
    world = eng.worlds["overworld"]
    for p in pts:
        assert "forest" not in world.tags_of(world.index_of(p))
        assert p[0] ** 2 + p[2] ** 2 > 30**2
    for i, a in enumerate(pts):
        for b in pts[i + 1 :]:
            assert (a[0] - b[0]) ** 2 + (a[2] - b[2]) ** 2 >= 20**2


def test_min_spacing_counts_other_live_hunts_in_the_world() -> None:
    eng = engine()
    create(eng, id="a", treasures=10, spawn={"tags_any": ["surface"], "min_spacing": 24})
    create(eng, id="b", treasures=10, spawn={"tags_any": ["surface"], "min_spacing": 24})
    pts = positions(eng, "a") + positions(eng, "b")
    for i, a in enumerate(pts):
        for b in pts[i + 1 :]:
            assert (a[0] - b[0]) ** 2 + (a[2] - b[2]) ** 2 >= 24**2


def test_infeasible_placement_names_the_constraint_and_counts() -> None:
    eng = engine()
    with pytest.raises(errors.PlacementInfeasible) as e:
        create(eng, treasures=12, spawn={"tags_any": ["surface"], "min_spacing": 150})
    assert e.value.code == "placement_infeasible" and e.value.status == 422
    assert "of 12 with min_spacing=150;" in e.value.message and "eligible sites" in e.value.message
    assert "h1" not in eng.hunts  # never created short


def test_unknown_tag_and_world_and_loot_are_clear_errors() -> None:
    eng = engine()
    for reserved in ("admin", "worlds", "recurring"):  # a Redis deployment's own streams: cairn:{admin}:log ...
        with pytest.raises(errors.ValidationError) as e:
            spec(id=reserved)
        assert e.value.field == "id" and "reserved" in e.value.message
    with pytest.raises(errors.ValidationError) as e:
        create(eng, spawn={"tags_any": ["lava"]})
    assert e.value.field == "spawn.tags_any"
    with pytest.raises(errors.UnknownWorld):
        create(eng, world="nether")
    with pytest.raises(errors.UnknownLootTable):
        create(eng, loot="nope")
    for make in (lambda s: eng.plan_input(s), lambda s: eng.register_recurring(s, T0)):
        with pytest.raises(errors.UnknownLeaderboard) as lb:
            make(spec(id="typo", leaderboards=["alltime", "weekyl"], schedule="0 * * * *"))
        assert (lb.value.code, lb.value.status, lb.value.field) == ("unknown_leaderboard", 422, "leaderboards")
        assert "leaderboards[1]" in lb.value.message and "'weekyl'" in lb.value.message
    assert "typo" not in eng.hunts and "typo" not in eng.recurring


def test_placement_and_loot_are_a_function_of_secret_spec_and_seed() -> None:
    a, b = engine(), engine()
    create(a, seed="s1")
    create(b, seed="s1")
    assert positions(a, "h1") == positions(b, "h1")
    assert [t.items for t in a.hunts["h1"].treasures] == [t.items for t in b.hunts["h1"].treasures]
    c = engine()
    create(c, seed="s2")
    assert positions(c, "h1") != positions(a, "h1")
    d = engine()
    d.secret = b"another-secret"
    create(d, seed="s1")
    assert positions(d, "h1") != positions(a, "h1")


def test_first_finder_has_exactly_one_finder_and_later_finders_get_taken() -> None:
    eng = engine()
    create(eng)
    t = positions(eng, "h1")[0]
    first = dig(eng, "alice", t, rid="r1")
    assert first.result["result"] == "found"
    claim = first.result["claim"]
    assert claim["share"] == 1.0 and claim["player"] == "alice" and claim["treasure"] == "h1#1"
    assert claim["items"] and isinstance(first.records[0], Claimed)
    second = dig(eng, "bob", t, rid="r2")
    assert second.result["result"] == "taken" and second.records == ()
    assert second.result["finders"] == ["alice"]  # who took it, for the plugin to say so
    assert second.wait_seq == first.records[0].seq  # a "taken" reply waits for the claim to be durable
    assert eng.hunts["h1"].treasures[0].finders == ["alice"]


def test_tolerance_is_chebyshev_and_reach_is_euclidean() -> None:
    eng = engine()
    create(eng, dig={"reach": 6, "tolerance": 1})
    x, y, z = positions(eng, "h1")[0]
    assert dig(eng, "p", (x + 2, y, z)).result["result"] == "miss"
    assert dig(eng, "p", (x + 1, y + 1, z - 1)).result["result"] == "found"
    with pytest.raises(errors.OutOfReach) as e:
        eng.dig("h1", "q", (x + 7, y, z), (x, y, z), None, T0 + 1)
    assert e.value.code == "out_of_reach"


def test_a_replayed_request_id_returns_the_same_claim_at_any_later_time() -> None:
    eng = engine()
    create(eng)
    t = positions(eng, "h1")[0]
    first = dig(eng, "alice", t, rid="same")
    eng.end_hunt("h1", T0 + 10)
    again = dig(eng, "alice", (0, 0, 0), rid="same", now=T0 + 10**6)
    assert again.result["claim"] == first.result["claim"] and again.records == ()


def test_a_found_replys_temperature_is_toward_the_next_treasure_also_when_replayed() -> None:
    eng = engine()
    create(eng, treasures=2)
    a, b = positions(eng, "h1")
    from cairn.core.hints import temperature_band

    expect = temperature_band(((a[0] - b[0]) ** 2 + (a[2] - b[2]) ** 2) ** 0.5)
    first = dig(eng, "alice", a, rid="r1").result
    assert first["result"] == "found" and first["temperature"] == expect
    again = dig(eng, "alice", a, rid="r1", now=T0 + 5).result
    assert again == first  # the replay has the same shape, temperature included
    dig(eng, "alice", b, now=T0 + 10)
    assert dig(eng, "alice", b, rid="r1", now=T0 + 11).result["temperature"] == "cold"  # none left for alice


def test_a_hint_with_no_treasure_left_is_a_stable_reply_that_starts_no_cooldown() -> None:
    eng = engine()
    create(eng, treasures=2, hints={"cooldown": "30s"})
    a, b = positions(eng, "h1")
    assert eng.hint("h1", "alice", a, None, T0 + 1).result["hint"]  # a hint, and the cooldown runs
    dig(eng, "alice", a, now=T0 + 2)
    dig(eng, "bob", b, now=T0 + 2)  # every treasure is gone for alice: one hers, one bob's
    for now in (T0 + 3, T0 + 4):  # inside alice's cooldown, and again: no 429
        assert eng.hint("h1", "alice", a, None, now).result == {"hint": {}, "next_hint_in": 0, "none_left": True}
    assert eng.hint("h1", "carol", a, None, T0 + 3).result["none_left"] is True
    eng2 = engine()
    create(eng2, treasures=2, hints={"cooldown": "30s"})
    a2, _ = positions(eng2, "h1")
    dig(eng2, "bob", a2)
    assert "none_left" not in eng2.hint("h1", "alice", a2, None, T0 + 1).result  # the other is left for alice


def test_a_player_claims_a_treasure_at_most_once_even_with_new_request_ids() -> None:
    eng = engine()
    create(eng, prize={"mode": "shared_bounty", "window": "10m", "pool": 100})
    t = positions(eng, "h1")[0]
    assert dig(eng, "alice", t, rid="1").result["result"] == "found"
    again = dig(eng, "alice", t, rid="2")
    assert again.result["result"] != "found" and again.records == ()
    assert eng.hunts["h1"].treasures[0].finders == ["alice"]


def test_shared_bounty_splits_the_pool_exactly_among_finders_in_the_window() -> None:
    eng = engine()
    create(eng, prize={"mode": "shared_bounty", "window": "10m", "pool": 1000})
    t = positions(eng, "h1")[0]
    for i, p in enumerate(["a", "b", "c"]):
        out = dig(eng, p, t, now=T0 + 1 + i)
        assert out.result["result"] == "found" and out.result["claim"]["share"] is None
    assert eng.hunts["h1"].treasures[0].state == "open"
    late = dig(eng, "d", t, now=T0 + 1 + 601)  # window closed 600 s after the first find
    assert late.result["result"] == "taken" and late.result["finders"] == ["a", "b", "c"]
    tr = eng.hunts["h1"].treasures[0]
    assert tr.state == "claimed" and isinstance(tr.settled, Settled)
    assert tr.settled.amounts == [334, 333, 333] and sum(tr.settled.amounts) == 1000
    shares = [eng.claim_view(c)["share"] for c in tr.claims]
    assert shares == [0.334, 0.333, 0.333]
    grants = [g for p in "abc" for g in eng.grants_of(p)]
    assert sorted(g["items"][0]["count"] for g in grants) == [333, 333, 334]


def test_bounty_window_closes_on_the_clock_tick() -> None:
    eng = engine()
    create(eng, prize={"mode": "shared_bounty", "window": "1m", "pool": 10})
    t = positions(eng, "h1")[0]
    dig(eng, "a", t)
    assert eng.tick(T0 + 30) == []
    recs = eng.tick(T0 + 62)
    assert [type(r) for r in recs] == [Settled] and recs[0].at == T0 + 61
    assert eng.grants_of("a")[0]["items"][0]["count"] == 10


@pytest.mark.parametrize("pool,k", [(1000, 3), (7, 7), (5, 9), (1, 2), (10**12, 7)])
def test_split_pool_is_exact(pool: int, k: int) -> None:
    parts = split_pool(pool, k)
    assert sum(parts) == pool and max(parts) - min(parts) <= 1 and parts == sorted(parts, reverse=True)


def test_lifecycle_scheduled_active_ended_and_expiry() -> None:
    eng = engine()
    create(eng, starts_at="2027-06-01T08:00:00Z", duration="1h")
    start = eng.hunts["h1"].starts_at
    assert eng.list_hunts(T0)[0]["state"] == "scheduled"
    with pytest.raises(errors.HuntNotActive):
        dig(eng, "p", positions(eng, "h1")[0], now=T0)
    eng.tick(start + 1)
    assert eng.list_hunts(start + 1)[0]["state"] == "active"
    assert dig(eng, "p", positions(eng, "h1")[0], now=start + 2).result["result"] == "found"
    recs = eng.tick(start + 3601)
    assert isinstance(recs[-1], HuntEnded) and recs[-1].at == start + 3600
    states = [t.state for t in eng.hunts["h1"].treasures]
    assert states == ["claimed"] + ["expired"] * 4
    types = [e.type for e in eng.events.after(0, "h1")[0]]
    assert types[:3] == ["hunt.scheduled", "hunt.started", "treasure.found"]
    assert types[-1] == "hunt.ended" and types.count("treasure.expired") == 4


def test_end_now_is_idempotent_and_blocks_digs() -> None:
    eng = engine()
    create(eng)
    one = eng.end_hunt("h1", T0 + 5)
    two = eng.end_hunt("h1", T0 + 6)
    assert one.records and two.records == () and two.wait_seq == one.wait_seq
    with pytest.raises(errors.HuntNotActive) as e:
        dig(eng, "p", positions(eng, "h1")[0], now=T0 + 7)
    assert e.value.status == 409


def test_grants_stay_pending_until_acked_and_ack_is_idempotent() -> None:
    eng = engine()
    create(eng)
    claim = dig(eng, "alice", positions(eng, "h1")[0]).result["claim"]
    pending = eng.grants_of("alice")
    assert len(pending) == 1 and pending[0]["claim_id"] == claim["claim_id"]
    assert pending[0]["status"] == "pending"
    gid = pending[0]["grant_id"]
    first = eng.ack(gid, T0 + 2)
    second = eng.ack(gid, T0 + 3)
    assert first.result["status"] == second.result["status"] == "acked"
    assert len(first.records) == 1 and second.records == () and second.wait_seq == first.wait_seq
    assert eng.grants_of("alice") == []
    with pytest.raises(errors.GrantNotFound):
        eng.ack("g_nope", T0)


def test_rate_limit_and_implausible_movement() -> None:
    eng = engine(grid_world(), dig_rate=1.0, dig_burst=2, max_speed=10.0)
    create(eng)
    far = (90, 64, 90)
    dig(eng, "p", far, now=T0 + 1)
    dig(eng, "p", far, now=T0 + 1)
    with pytest.raises(errors.RateLimited) as e:
        dig(eng, "p", far, now=T0 + 1)
    assert e.value.extra["retry_after"] > 0
    with pytest.raises(errors.ImplausibleMovement):
        dig(eng, "p", (-90, 64, -90), now=T0 + 2)
    assert eng.new_events[-1].type == "anticheat.flagged"


def test_hunt_exists_and_stale_plan() -> None:
    from cairn.core.engine import StalePlan

    eng = engine()
    spaced = {"tags_any": ["surface"], "min_spacing": 8}
    inp = eng.plan_input(spec(id="x", spawn=spaced))
    create(eng, id="y", spawn=spaced)  # placed in the same area since: the plan may be too close to it
    with pytest.raises(StalePlan):
        eng.create_hunt(compute_plan(inp), T0)
    with pytest.raises(errors.HuntExists):
        create(eng, id="y")


def test_new_sites_for_a_world_make_a_plan_against_the_old_ones_stale() -> None:
    from cairn.core.engine import StalePlan

    eng = engine()
    inp = eng.plan_input(spec(id="x"))
    eng.replace_sites("overworld", grid_world(step=8))
    assert eng.worlds["overworld"] is not inp.sites
    with pytest.raises(StalePlan):
        eng.create_hunt(compute_plan(inp), T0)
    create(eng, id="x")  # planned again against the new sites
    with pytest.raises(errors.WorldNotFound):
        eng.replace_sites("nether", grid_world())


def test_secrecy_game_views_carry_no_positions_or_seed() -> None:
    eng = engine()
    create(eng, seed="hidden-seed")
    text = repr(eng.hunt_view("h1", T0)) + repr(eng.list_hunts(T0))
    for p in positions(eng, "h1"):
        assert f"[{p[0]}, {p[1]}, {p[2]}]" not in text
    assert "hidden-seed" not in text and "pos" not in text
    for e in eng.events.after(0)[0]:
        assert "pos" not in e.data


def test_dig_temperature_matches_brute_force_over_live_unclaimed_treasures() -> None:
    import math
    import random

    from cairn.core.hints import temperature_band

    eng = engine(grid_world(128, 3))
    create(eng, treasures=40, area={"min": [-190, 0, -190], "max": [190, 200, 190]})
    h = eng.hunts["h1"]
    rnd = random.Random(5)
    for i, t in enumerate(h.treasures[:6]):
        dig(eng, "alice", t.pos, now=T0 + 1 + i)  # alice's claims are excluded from her temperatures
    for _ in range(2000):
        at = (rnd.randint(-400, 400), 64, rnd.randint(-400, 400))
        for player in ("alice", "bob"):
            mine = eng.claimed.get(("h1", player), set())
            live = [t for t in h.treasures if t.state == "hidden" and t.n - 1 not in mine]
            want = temperature_band(min(math.hypot(t.pos[0] - at[0], t.pos[2] - at[2]) for t in live))
            assert eng._temperature(h, player, at) == want, (player, at)


def test_dig_miss_temperature_through_tiles_follows_claims() -> None:
    """Misses by players with no claim come from cached tiles; a claim must invalidate them."""
    import math
    import random

    from cairn.core.hints import temperature_band

    eng = engine(grid_world(128, 3))
    create(eng, treasures=40, area={"min": [-400, 0, -400], "max": [400, 320, 400]})  # digs stay inside
    h = eng.hunts["h1"]
    rnd = random.Random(7)
    k = 0
    for round_, t in enumerate([None, *h.treasures[:8]]):
        if t is not None:
            assert dig(eng, "alice", t.pos, now=T0 + 1 + round_).result["result"] == "found"
        live = [t for t in h.treasures if t.state == "hidden"]
        for _ in range(300):
            k += 1
            near = rnd.choice(live).pos
            at = (near[0] + rnd.randint(-120, 120), 250, near[2] + rnd.randint(-120, 120))  # above every treasure
            got = dig(eng, f"p{k}", at, now=T0 + 1 + round_).result
            want = temperature_band(min(math.hypot(t.pos[0] - at[0], t.pos[2] - at[2]) for t in live))
            assert got == {"result": "miss", "temperature": want}, at
    assert eng.tiles_kept == len(h.tiles) > 0


def test_replay_rebuilds_only_the_event_tail_and_flags_the_gap() -> None:
    eng = engine()
    log = list(eng.create_hunt(compute_plan(eng.plan_input(spec(treasures=20))), T0).records)
    for i, t in enumerate(eng.hunts["h1"].treasures):
        log.extend(dig(eng, f"p{i}", t.pos, now=T0 + 1 + i).records)
    full, _ = eng.events.after(0)
    cut = log[10].seq
    again = Live(eng.secret, eng.worlds, limits=eng.limits)
    again.replay(log, events_after=cut)
    assert again.retained() == eng.retained() and again.last_event == eng.last_event
    tail, complete = again.events.after(0)
    assert not complete  # the client asked for history that was not rebuilt
    assert tail == [e for e in full if e.id >= tail[0].id] and len(tail) < len(full)
    resumed, complete = again.events.after(tail[0].id - 1)
    assert complete and resumed == tail


def test_event_rings_report_evicted_history_as_a_gap() -> None:
    from cairn.core.events import Event, EventLog

    log = EventLog(per_hunt=3, total=5)
    for i in range(1, 8):
        log.add(Event(i * 10, "x", "h", "t", {}), 0.0)
    assert [e.id for e in log.after(0, "h")[0]] == [50, 60, 70]
    assert log.after(0, "h")[1] is False and log.after(40, "h")[1] is True
    assert log.after(15)[1] is False and log.after(15)[0][0].id == 30 and log.after(20)[1] is True


def test_hint_escalation_emits_events_and_sharpens_the_region() -> None:
    eng = engine()
    create(eng, hints={"cooldown": "0s", "solve_by": "50m", "kinds": ["region"]}, duration="1h")
    widths = []
    for minute in (1, 11, 21, 31, 41, 51):
        now = T0 + minute * 60
        eng.tick(now)
        box = eng.hint("h1", "newbie", (0, 65, 0), None, now).result["hint"]["region"]
        widths.append(box["max"][0] - box["min"][0] + 1)
    assert widths == sorted(widths, reverse=True) and widths[-1] <= 16 and widths[0] >= 128
    steps = [e.data["step"] for e in eng.events.after(0, "h1")[0] if e.type == "hint.escalated"]
    assert steps == [1, 2, 3, 4, 5]


def test_no_hint_or_error_reveals_a_position_before_the_rules_allow() -> None:
    eng = engine()
    create(eng, hints={"cooldown": "0s", "solve_by": "1h"}, duration="2h")
    spots = {p[::2] for p in positions(eng, "h1")}
    for minute in range(0, 59, 7):
        now = T0 + minute * 60 + 1
        for player in ("veteran", "newbie"):
            reply = eng.hint("h1", player, (0, 65, 0), None, now).result["hint"]
            box = reply["region"]
            assert box["max"][0] - box["min"][0] + 1 >= 32  # the 16-column box only from solve_by on
            assert not any(ch.isdigit() for ch in reply["riddle"])
            text = repr(reply)
            assert not any(f"{x}, {z}" in text or f"[{x}, " in text for x, z in spots if (x, z) != (0, 0))
    for x, z in spots:
        with pytest.raises(errors.OutOfReach) as e:
            eng.dig("h1", "probe", (x + 50, 64, z), (x, 64, z), None, T0 + 3000)
        assert e.value.message == f"dig at {[x, 64, z]} is farther than reach 6 from the player"  # only the input


def test_proximity_through_the_engine_script() -> None:
    """Tile38 style: each step is an update and the exact events it must produce, in order."""
    eng = engine()
    create(eng, proximity={"radius": 10}, treasures=3, spawn={"tags_any": ["surface"], "min_spacing": 60})
    x, y, z = eng.hunts["h1"].treasures[0].pos
    key = "h1#1"
    script = [
        ((x + 30, y, z), []),
        ((x + 10, y, z), [("proximity.enter", key)]),
        ((x + 11, y, z), []),  # flicker at the edge: within the hysteresis, no exit
        ((x + 12, y, z), []),
        ((x + 13, y, z), [("proximity.exit", key)]),
        ((x + 3, y, z), [("proximity.enter", key)]),
    ]
    now = T0 + 1
    for pos, want in script:
        now += 1
        out = eng.positions("overworld", [("alice", pos, False)], now).result["events"]
        assert [(e.type, e.data["treasure"]) for e in out] == want, pos
    eng.new_events.clear()
    dig(eng, "bob", (x, y, z), now=now + 1)  # claimed while alice is inside its fence
    exits = [(e.type, e.data["player"], e.data["treasure"]) for e in eng.new_events if e.type.startswith("proximity")]
    assert exits == [("proximity.exit", "alice", key)]
    out = eng.positions("overworld", [("alice", (x + 2, y, z), False)], now + 2).result["events"]
    assert out == []  # a claimed treasure produces no more events


def test_a_tick_of_many_players_gives_the_same_events_as_one_by_one() -> None:
    a, b = engine(), engine()
    for eng in (a, b):
        create(eng, proximity={"radius": 12}, treasures=4, spawn={"tags_any": ["surface"], "min_spacing": 40})
    spots = positions(a, "h1")
    moves = [[(f"p{i}", (s[0] + dx, s[1], s[2]), False) for i, s in enumerate(spots * 5)] for dx in (40, 8, 20, 2)]
    for k, tick in enumerate(moves):
        now = T0 + 1 + k
        batch = a.positions("overworld", tick, now).result["events"]  # 20 updates: the vectorised path
        single = [e for u in tick for e in b.positions("overworld", [u], now).result["events"]]
        assert [(e.type, e.data) for e in batch] == [(e.type, e.data) for e in single]
    assert any(e.type == "proximity.enter" for e in a.events.after(0)[0])


def test_indexes_made_after_claims_leave_the_claimed_out() -> None:
    """A hunt's `TreasureField` and `around` are made on first use: after a replay of claims, hints and
    temperatures still skip the claimed treasures, as in the engine that saw them happen."""
    eng = engine()
    records = list(eng.create_hunt(compute_plan(eng.plan_input(spec(treasures=6))), T0).records)
    spots = positions(eng, "h1")
    for i, p in enumerate(spots[:3]):
        records += dig(eng, f"p{i}", p, now=T0 + 1 + i).records
    again = engine()
    again.replay(records)
    h = again.hunts["h1"]
    assert h.around is None and h._field is None  # nothing asked for them yet
    assert h.field.live_count == 3 and {h.field.nearest(p) for p in spots} == {3, 4, 5}
    for k, p in enumerate(spots[:3]):
        at = (p[0] + 3, p[1], p[2])
        now = T0 + 10 + k
        for player in ("q", "p0"):  # no claim here (the temperature tile), and a claim (`around`)
            assert dig(again, player, at, now=now).result == dig(eng, player, at, now=now).result


def test_a_runtime_world_and_an_ended_hunt_in_it_replay_after_the_world_is_retired() -> None:
    eng = engine()
    out = eng.register_world("arena_1", T0)
    assert out.result == {"world": "arena_1", "created": True} and len(out.records) == 1
    assert eng.register_world("arena_1", T0).records == ()  # idempotent
    eng.worlds["arena_1"] = grid_world()  # the upload
    create(eng, id="arena", world="arena_1")
    with pytest.raises(errors.WorldInUse) as e:
        eng.retire_world("arena_1", T0 + 1)
    assert e.value.field == "world" and e.value.extra["hunts"] == ["arena"]
    eng.end_hunt("arena", T0 + 2)
    eng.retire_world("arena_1", T0 + 3)
    assert "arena_1" not in eng.worlds and "arena_1" not in eng.proximity
    with pytest.raises(errors.WorldNotFound):
        eng.retire_world("arena_1", T0 + 4)
    fresh = engine()
    fresh.replay(eng.retained())
    assert fresh.hunts["arena"].ended is not None and "arena_1" not in fresh.worlds
    fresh.register_world("arena_1", T0 + 5)
    assert len(fresh.worlds["arena_1"]) == 0 and fresh.world_users("arena_1", T0 + 5) == []


def test_forgetting_idle_players_keeps_durable_state_and_running_cooldowns() -> None:
    from cairn.core.engine import Limits
    from tests.support import SECRET

    eng = Live(SECRET, {"overworld": grid_world()}, limits=Limits(max_speed=1e9, player_idle=60.0, max_players=3))
    create(eng, hints={"cooldown": "10m"})
    p = positions(eng, "h1")[0]
    cid = eng.dig("h1", "ann", p, p, "r1", T0).result["claim"]["claim_id"]
    eng.hint("h1", "bob", (0, 64, 0), None, T0)
    eng.positions("overworld", [("cat", (1, 64, 1), False)], T0)
    with pytest.raises(errors.TooManyPlayers):
        eng.positions("overworld", [("dan", (1, 64, 1), False)], T0)
    assert "dan" not in eng.players  # refused as a whole
    for t in range(0, 200, 5):
        eng.tick(T0 + t)
    assert eng.players == {}  # all silent for a minute: forgotten
    # Durable state stays: the replay returns the claim, the grant is pending, finds count.
    assert eng.dig("h1", "ann", p, p, "r1", T0 + 200).result["claim"]["claim_id"] == cid
    assert len(eng.grants_of("ann")) == 1 and eng.finds("ann") == 1
    # Bob's 10-minute cooldown outlives his forgotten state.
    with pytest.raises(errors.HintCooldown):
        eng.hint("h1", "bob", (0, 64, 0), None, T0 + 200)


def test_strict_players_join_through_positions() -> None:
    from cairn.core.engine import Limits
    from tests.support import SECRET

    eng = Live(SECRET, {"overworld": grid_world()}, limits=Limits(max_speed=1e9, strict_players=True))
    create(eng)
    with pytest.raises(errors.PlayerNotJoined):
        eng.hint("h1", "ann", (0, 64, 0), None, T0)
    with pytest.raises(errors.PlayerNotJoined):
        eng.dig("h1", "ann", (0, 64, 0), (0, 64, 0), "r", T0)
    eng.positions("overworld", [("ann", (0, 64, 0), False)], T0)
    assert "hint" in eng.hint("h1", "ann", (0, 64, 0), None, T0).result


def test_treasures_left_means_the_same_in_the_summary_and_in_hunt_ended() -> None:
    eng = engine()
    create(eng, treasures=5)
    t = eng.hunts["h1"].treasures[0]
    assert dig(eng, "alice", t.pos).result["result"] == "found"
    eng.new_events.clear()
    summary = eng.end_hunt("h1", T0 + 5).result
    (ended,) = [e for e in eng.new_events if e.type == "hunt.ended"]
    assert summary["treasures_left"] == ended.data["treasures_left"] == 4  # never claimed: expired
    assert eng.list_hunts(T0 + 6)[0]["treasures_left"] == 4


def test_timers_carry_named_kinds() -> None:
    from cairn.core.engine import TimerKind

    eng = engine()
    create(eng, id="h1")
    kinds = {kind for _, kind, _, _ in eng.timers}
    assert {TimerKind.START, TimerKind.END} <= kinds and all(type(k) is TimerKind for k in kinds)
    # Equal due times pop in kind order: a hunt starts before anything else due then.
    assert sorted(TimerKind) == [TimerKind.START, TimerKind.SETTLE, TimerKind.END, TimerKind.ESCALATE]


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(-500, 500), st.integers(-64, 320), st.integers(-500, 500)),
    st.tuples(st.integers(-60, 60), st.integers(-60, 60), st.integers(-60, 60)),
    st.floats(-1.0, 3.0, allow_nan=False),
)
def test_positions_and_digs_apply_one_movement_rule(start: Any, move: Any, dt: float) -> None:
    # The rule is inlined on both hot paths: a position update is refused exactly when the same
    # move reported with a dig is, and exactly when it is farther than speed × time + slack.
    to = (start[0] + move[0], start[1] + move[1], start[2] + move[2])
    lim = {"max_speed": 10.0, "movement_slack": 8.0, "dig_rate": 1000.0, "dig_burst": 1000}
    by_positions, by_dig = engine(**lim), engine(**lim)
    by_positions.positions("overworld", [("p", start, False)], T0)
    refused = bool(by_positions.positions("overworld", [("p", to, False)], T0 + dt).result["errors"])
    by_dig.positions("overworld", [("p", start, False)], T0)
    try:
        by_dig._move("p", to, False, T0 + dt, "h1", True)
        flagged = False
    except errors.ImplausibleMovement:
        flagged = True
    assert refused == flagged == (math.dist(start, to) > 10.0 * max(dt, 0.0) + 8.0)
    assert by_positions.players["p"].flags == by_dig.players["p"].flags == int(flagged)
