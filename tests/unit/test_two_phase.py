"""The engine's two phases: a command decides (its records, its reply) and changes no durable state;
`Engine.apply` changes it; live operation and replay give the same state."""

from __future__ import annotations

import itertools
import random
from typing import Any

import msgspec

from cairn.core import errors
from cairn.core import records as rec
from cairn.core.engine import Engine, Limits, Outcome, TimerKind, compute_plan
from cairn.core.ids import Ids, event_span
from cairn.core.records import AnyRecord, Claimed, HuntEnded, HuntStarted, Settled
from cairn.core.spec import convert_spec
from tests.support import SECRET, T0, grid_world, spec

WORLD = grid_world()
#: The events a record emits when applied, rebuilt by replay (the rest are not journaled).
JOURNALED = {"hunt.scheduled", "hunt.started", "hunt.ended", "treasure.found", "treasure.claimed", "treasure.expired"}
SHARED = {"mode": "shared_bounty", "window": "30s", "pool": 100}


def new_engine() -> Engine:
    return Engine(SECRET, {"overworld": WORLD}, limits=Limits(dig_rate=1e6, dig_burst=10**6, max_speed=1e9))


def run(eng: Engine, out: Outcome) -> Outcome:
    """What the embedded runtime does after deciding: apply the records at once."""
    eng.apply(out.records)
    return out


def create(eng: Engine, now: float = T0, **kw: Any) -> None:
    run(eng, eng.create_hunt(compute_plan(eng.plan_input(spec(**kw))), now))


def dig_at(eng: Engine, hunt: str, n: int, player: str, now: float, rid: str | None = None) -> Outcome:
    p = eng.hunts[hunt].treasures[n - 1].pos
    return eng.dig(hunt, player, (p[0], p[1] + 1, p[2]), p, rid, now, teleport=True)


def durable_state(eng: Engine) -> dict[str, Any]:
    """Everything durable and every view of it (not the allocator, timers or per-node state)."""
    return {
        "retained": rec.encode_many(eng.retained()),
        "hunts": {h: eng.hunt_view(h, T0 + 5, reveal=True) for h in eng.hunts},
        "claims": dict(eng.claims),
        "claimed": dict(eng.claimed),
        "by_request": dict(eng.by_request),
        "by_player": dict(eng.by_player),
        "grants": {g: eng.grants[g].view() for g in eng.grants},
        "pending": {p: list(gs) for p, gs in eng.pending.items()},
        "recurring": sorted(eng.recurring),
        "worlds": sorted(eng.worlds),
        "registered": dict(eng.registered),
        "live": {w: sorted(lt.within(-(10**6), -(10**6), 10**6, 10**6)) for w, lt in eng.live_treasures.items()},
        "events": [msgspec.json.encode(e) for e in eng.events.after(0)[0]],
        "board": eng.boards.read("alltime", {"limit": "100"}, T0 + 5),
    }


def game() -> Engine:
    """A first-finder hunt with a claim (a pending grant), a shared bounty with an open treasure, a
    world registered at runtime."""
    eng = new_engine()
    create(eng, id="ff", treasures=4)
    create(eng, id="sb", treasures=4, prize=SHARED)
    run(eng, dig_at(eng, "ff", 1, "ann", T0 + 1, "r1"))
    run(eng, dig_at(eng, "sb", 1, "ann", T0 + 1, "r2"))
    run(eng, eng.register_world("extra", T0 + 1))
    return eng


def test_every_command_decides_without_changing_durable_state() -> None:
    eng = game()
    eng.new_events.clear()
    before = durable_state(eng)
    grant = eng.grants_of("ann")[0]["grant_id"]
    recurring = convert_spec({**msgspec.to_builtins(spec(id="daily")), "schedule": "0 12 * * *"})
    decided: list[Outcome] = [
        dig_at(eng, "ff", 2, "bob", T0 + 2),  # found (first finder)
        dig_at(eng, "ff", 1, "bob", T0 + 2),  # taken
        dig_at(eng, "sb", 1, "bob", T0 + 2),  # found (a second finder in the window)
        dig_at(eng, "sb", 1, "cat", T0 + 40),  # the window is due: settled, and taken
        eng.ack(grant, T0 + 2),
        eng.end_hunt("ff", T0 + 3),
        eng.end_hunt("sb", T0 + 3),  # settles the open treasure, expires the rest
        eng.create_hunt(compute_plan(eng.plan_input(spec(id="new", spawn={"tags_any": ["cave"]}))), T0 + 3),
        eng.register_world("more", T0 + 3),
        eng.retire_world("extra", T0 + 3),
        eng.register_recurring(recurring, T0 + 3),
    ]
    assert [i for i, out in enumerate(decided) if not out.records] == [1]  # all but the taken dig
    assert [r for d in eng.tick(T0 + 7200) for r in d.records]  # both hunts' ends fall due
    assert durable_state(eng) == before
    assert [e for e in eng.new_events if e.type in JOURNALED] == []  # nor any event a record emits


def test_a_found_digs_reply_is_what_the_player_sees_once_it_is_applied() -> None:
    for prize in ({"mode": "first_finder"}, SHARED):
        eng = new_engine()
        create(eng, treasures=6, prize=prize, area={"min": [-40, 0, -40], "max": [40, 200, 40]})
        t = eng.hunts["h1"].treasures[0]
        out = dig_at(eng, "h1", 1, "ann", T0 + 1)
        assert out.result["result"] == "found"
        eng.apply(out.records)
        h = eng.hunts["h1"]
        assert out.result["temperature"] == eng._temperature(h, "ann", t.pos)
        assert out.result["claim"] == eng.claim_view(eng.claims[out.result["claim"]["claim_id"]])


def test_a_dig_on_a_due_window_settles_it_and_is_taken() -> None:
    eng = new_engine()
    create(eng, treasures=3, prize=SHARED)
    run(eng, dig_at(eng, "h1", 1, "ann", T0 + 1))
    out = dig_at(eng, "h1", 1, "bob", T0 + 40)
    assert out.result["result"] == "taken" and [type(r) for r in out.records] == [Settled]
    assert out.wait_seq == out.records[0].seq
    eng.apply(out.records)
    t = eng.hunts["h1"].treasures[0]
    assert t.state == "claimed" and t.finders == ["ann"]
    assert out.result["temperature"] == eng._temperature(eng.hunts["h1"], "bob", t.pos)


def test_records_decided_together_take_distinct_ids_and_apply_in_id_order() -> None:
    eng = new_engine()
    create(eng, id="s", treasures=4, prize=SHARED, starts_at="2027-01-15T08:01:00Z", duration="10m")
    eng.apply([r for d in eng.tick(T0 + 61) for r in d.records])
    run(eng, dig_at(eng, "s", 1, "ann", T0 + 62))
    run(eng, dig_at(eng, "s", 2, "bob", T0 + 62))
    eng.new_events.clear()
    # One end decides two settlements and the end, none applied in between.
    out = eng.end_hunt("s", T0 + 70)
    assert [type(r) for r in out.records] == [Settled, Settled, HuntEnded]
    seqs = [r.seq for r in out.records]
    assert seqs == sorted(set(seqs))
    spans = [(r.ev, r.ev + event_span(r, 4) - 1) for r in out.records]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    eng.apply(out.records)
    ids = [e.id for e in eng.new_events]
    assert ids == sorted(set(ids)) and len(ids) == 2 + 2 + 1  # two claimed, two expired, the end
    assert ids[0] == out.records[0].ev and ids[-1] < out.records[-1].ev + event_span(out.records[-1], 4)


def test_a_tick_that_finds_a_start_a_window_and_an_end_due_decides_each_once() -> None:
    eng = new_engine()
    create(eng, id="late", treasures=3, starts_at="2027-01-15T08:01:00Z", duration="2m")
    create(eng, id="sb", treasures=3, prize=SHARED, duration="1m")
    run(eng, dig_at(eng, "sb", 1, "ann", T0 + 20))  # its window (30 s) closes before the hunt's end
    due = eng.tick(T0 + 3600)  # a long pause: every timer of both hunts is due at once
    records = [r for d in due for r in d.records]
    kinds = [(type(r).__name__, r.hunt) for r in records]  # type: ignore[union-attr]
    assert kinds.count(("HuntStarted", "late")) == 1 and kinds.count(("HuntEnded", "late")) == 1
    assert kinds.count(("Settled", "sb")) == 1 and kinds.count(("HuntEnded", "sb")) == 1
    assert eng.tick(T0 + 3600) == []  # the timers were taken: nothing is decided twice
    eng.apply(records)
    assert all(h.ended is not None for h in eng.hunts.values())


def test_a_timer_not_applied_is_decided_again_once_rearmed() -> None:
    eng = new_engine()
    create(eng, treasures=2, starts_at="2027-01-15T08:01:00Z")
    [due] = eng.tick(T0 + 61)
    assert [type(r) for r in due.records] == [HuntStarted]
    assert eng.tick(T0 + 62) == []
    eng.rearm(due.timer)  # its commit failed
    [again] = eng.tick(T0 + 62)
    assert [type(r) for r in again.records] == [HuntStarted]


def test_a_node_not_leading_keeps_its_timers() -> None:
    eng = new_engine()
    create(eng, treasures=2, starts_at="2027-01-15T08:01:00Z")
    assert eng.tick(T0 + 61, lead=False) == []
    assert [type(r) for d in eng.tick(T0 + 61) for r in d.records] == [HuntStarted]


def test_a_node_not_leading_drops_timers_another_node_decided() -> None:
    # A node without the lease applies the leader's start; the start timer it still holds is then
    # dropped, not popped and queued again on every tick (1,000 started hunts were 840 heap
    # operations per tick on such a node).
    leader, follower = new_engine(), new_engine()
    create(leader, treasures=2, starts_at="2027-01-15T08:01:00Z")
    follower.apply(leader.retained())
    [due] = leader.tick(T0 + 61)
    leader.apply(due.records)
    assert follower.tick(T0 + 61, lead=False) == []
    assert sorted(k for _, k, _, _ in follower.timers) == [TimerKind.START, TimerKind.END]  # kept for when it leads
    follower.apply(due.records)
    follower.tick(T0 + 62, lead=False)
    assert sorted(k for _, k, _, _ in follower.timers) == [TimerKind.END, TimerKind.ESCALATE]


def test_applying_records_again_changes_nothing() -> None:
    eng = game()
    run(eng, eng.ack(eng.grants_of("ann")[0]["grant_id"], T0 + 2))
    run(eng, eng.end_hunt("sb", T0 + 3))
    run(eng, eng.end_hunt("ff", T0 + 3))
    records = eng.retained()
    fresh = new_engine()
    fresh.apply(records)
    once = durable_state(fresh)
    fresh.apply(records)  # a Redis node may see a record it applied come back from the stream
    assert durable_state(fresh) == once
    assert once["retained"] == durable_state(eng)["retained"]


def play(seed: int) -> tuple[Engine, list[AnyRecord]]:
    """A random game on a plain engine, each outcome applied as the runtime applies it; the journal."""
    rnd = random.Random(seed)
    eng = new_engine()
    log: list[AnyRecord] = []
    now = T0
    players = [f"p{i}" for i in range(12)]

    def go(out: Outcome) -> None:
        eng.apply(out.records)
        log.extend(out.records)

    for i in range(6):
        prize = SHARED if i % 2 else {"mode": "first_finder"}
        s = spec(id=f"h{i}", treasures=6, prize=prize, duration="5m", spawn={"tags_any": ["surface"], "min_spacing": 4})
        go(eng.create_hunt(compute_plan(eng.plan_input(s)), now))
    for _ in range(400):
        now += rnd.random() * 3
        due = eng.tick(now)
        go(Outcome(None, [r for d in due for r in d.records], 0))
        live = [h for h in eng.hunts.values() if h.ended is None]
        if not live:
            break
        h = rnd.choice(live)
        r = rnd.random()
        try:
            if r < 0.8:
                go(dig_at(eng, h.id, rnd.randint(1, 6), rnd.choice(players), now, f"r{rnd.randint(0, 30)}"))
            elif r < 0.95 and eng.grants:
                g = rnd.choice(list(eng.grants))
                go(eng.ack(g, now))
            else:
                go(eng.end_hunt(h.id, now))
        except errors.CairnError:
            pass
    go(Outcome(None, [r for d in eng.tick(now + 3600) for r in d.records], 0))
    return eng, log


def test_a_quiet_replay_of_claims_on_an_open_treasure_keeps_the_hunts_last_event_id() -> None:
    eng = new_engine()
    create(eng, treasures=3, prize=SHARED)
    log = list(eng.retained())
    for player in ("ann", "bob", "cat"):  # the second and third take replay's short way
        log += run(eng, dig_at(eng, "h1", 1, player, T0 + 1)).records
    quiet = new_engine()
    quiet.replay(log, events_after=log[-1].seq)
    assert quiet.last_emitted == eng.last_emitted == {"h1": log[-1].ev}
    assert quiet.last_event == eng.last_event


def test_live_and_replay_give_equal_state() -> None:
    for seed in range(3):
        eng, log = play(seed)
        assert any(isinstance(r, Claimed) and r.share is None for r in log)  # shared bounties were dug
        journal = [rec.decode(rec.encode(r)) for r in log]
        again = new_engine()
        again.replay(journal)
        live = durable_state(eng)
        live["events"] = [e for e in live["events"] if msgspec.json.decode(e)["type"] in JOURNALED]
        assert durable_state(again) == live
        assert again.seq == eng.seq
        last: dict[str, int] = {}
        for e in eng.events.after(0)[0]:
            if e.type in JOURNALED:
                last[e.hunt] = e.id
        assert again.last_emitted == last
        # The bulk path (events too old to rebuild) keeps the same state and the same event ids.
        quiet = new_engine()
        quiet.replay(journal, events_after=log[-1].seq)
        assert {k: v for k, v in durable_state(quiet).items() if k != "events"} == {
            k: v for k, v in live.items() if k != "events"
        }
        assert quiet.last_emitted == last and quiet.last_event == again.last_event


def test_the_allocator_reserves_each_records_span() -> None:
    ids = Ids()
    a = ids.stamp(HuntEnded(0, 10.0, 0, "h", "admin"), 10.0, treasures=3)
    b = ids.stamp(Claimed(0, 10.0, 0, "h", 1, "p", "c", None, 1.0, [], "g"), 10.0)
    assert (a.seq, b.seq) == (1, 2)
    assert a.ev == 10_000_000 and b.ev == a.ev + 4  # the end and up to three expiries
    assert ids.event == b.ev + 1  # found and claimed
    assert event_span(rec.Acked(0, 0.0, 0, "g")) == 0 and ids.events(11.0, 0) == 0
