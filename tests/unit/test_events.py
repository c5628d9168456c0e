"""The event log: durable events resumable by id, ephemeral ones (proximity) kept for a bounded time,
both merged by id, and every gap reported."""

from __future__ import annotations

import gc
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from cairn import config
from cairn.core.events import EPHEMERAL, Event, EventLog
from cairn.core.spec import rfc3339
from tests.support import T0, create, engine


class Clock:
    """Event ids as the engine makes them: `max(last + 1, now in microseconds)`."""

    def __init__(self, now: float = T0) -> None:
        self.now, self.last = now, 0

    def event(self, typ: str, hunt: str = "h1", **data: Any) -> Event:
        self.last = max(self.last + 1, int(self.now * 1_000_000))
        return Event(self.last, typ, hunt, rfc3339(self.now), data)


def proximity_stream(log: EventLog, clock: Clock, seconds: float, per_second: int = 12) -> None:
    """What the `cairn bench` soak sends: players walking in and out of fences, `per_second` events a second."""
    for i in range(int(seconds * per_second)):
        clock.now += 1 / per_second
        typ = "proximity.enter" if i % 2 == 0 else "proximity.exit"
        log.add(clock.event(typ, f"h{i % 3}", player=f"p{i % 2500}", treasure=f"h{i % 3}#{i % 100 + 1}"), clock.now)


def test_a_steady_proximity_stream_holds_a_flat_number_of_events_and_blocks() -> None:
    log, clock = EventLog(), Clock()
    log.add(clock.event("hunt.started"), clock.now)
    proximity_stream(log, clock, 90)  # past the 60 s retention
    kept = len(log.recent)
    gc.collect()
    blocks = sys.getallocatedblocks()
    for _ in range(10):  # ten more minutes
        proximity_stream(log, clock, 60)
        log._check(clock.now)
        assert len(log.recent) <= 60 * 12 + 1 and len(log.recent) == kept
    gc.collect()
    grown = sys.getallocatedblocks() - blocks
    # Keeping them would add about 4 blocks an event (28,800); what remains is allocator noise.
    assert grown < 1000, f"{grown} blocks more after 7,200 more events"
    assert log.after(0, "h1")[0][0].type == "hunt.started"  # the durable event stays


def test_the_engine_ages_proximity_events_out_on_its_tick() -> None:
    eng = engine()
    create(eng, proximity={"radius": 10}, treasures=1)
    x, y, z = eng.hunts["h1"].treasures[0].pos
    now = T0 + 1
    for step in range(400):  # 20 minutes: in and out of the fence every 3 seconds
        now += 3
        eng.positions("overworld", [("alice", (x + (2 if step % 2 else 40), y, z), False)], now)
        eng.tick(now)
        assert len(eng.events.recent) <= 21
    eng.events._check(now)
    eng.tick(now + 61)  # a quiet minute: nothing ephemeral is left
    assert not eng.events.recent and not eng.events.recent_by_hunt
    durable, complete = eng.events.after(0, "h1")
    assert durable[0].type == "hunt.started" and not EPHEMERAL & {e.type for e in durable} and not complete


def test_resuming_across_an_expired_proximity_event_reports_a_gap() -> None:
    log, clock = EventLog(ephemeral_seconds=60), Clock()
    started = clock.event("hunt.started")
    log.add(started, clock.now)
    enter = clock.event("proximity.enter", player="alice", treasure="h1#1")
    log.add(enter, clock.now)
    assert log.after(started.id, "h1") == ([enter], True) and log.after(started.id) == ([enter], True)
    clock.now += 61
    claimed = clock.event("treasure.claimed", player="bob", treasure="h1#2")
    log.add(claimed, clock.now)
    for hunt in ("h1", None):
        assert log.after(started.id, hunt) == ([claimed], False), hunt  # `enter` is gone: say so
        assert log.after(enter.id, hunt) == ([claimed], True), hunt  # from after it, nothing is missing
        assert log.after(0, hunt) == ([started, claimed], False), hunt
    assert log.after(started.id, "h2") == ([], True)  # another hunt lost nothing


def test_durable_events_are_resumable_by_id_as_long_as_their_rings_hold_them() -> None:
    log, clock = EventLog(per_hunt=50, total=100, ephemeral_seconds=1, ephemeral_max=3), Clock()
    durable = []
    for i in range(40):
        clock.now += 600  # long past the ephemeral retention
        ev = clock.event("treasure.claimed", player=f"p{i}")
        log.add(ev, clock.now)
        durable.append(ev)
        proximity_stream(log, clock, 2, per_second=4)
    got, complete = log.after(durable[9].id, "h1")
    assert [e for e in got if e.type not in EPHEMERAL] == durable[10:]
    assert not complete  # proximity events of h1 after durable[9] were dropped
    assert log.after(0, "h1")[0][0] == durable[0]


def test_after_merges_durable_and_ephemeral_events_by_id() -> None:
    log, clock = EventLog(), Clock()
    types = ["hunt.started", "proximity.enter", "treasure.found", "proximity.exit", "proximity.enter",
             "treasure.claimed", "hint.escalated", "proximity.exit", "hunt.ended"]  # fmt: skip
    evs = []
    for t in types:
        clock.now += 0.5
        evs.append(clock.event(t))
        log.add(evs[-1], clock.now)
    for after in [0] + [e.id for e in evs]:
        want = [e for e in evs if e.id > after]
        assert log.after(after, "h1") == (want, True) and log.after(after) == (want, True)


def test_event_log_stress_against_a_model_seeded() -> None:
    """Random durable and ephemeral events over 3 hunts with small bounds, checked against a model."""
    seed = int(os.environ.get("CAIRN_SEED", random.randrange(2**32)))
    print(f"event log stress seed={seed} (rerun with CAIRN_SEED={seed})")
    rng = random.Random(seed)
    log = EventLog(per_hunt=4, total=7, ephemeral_seconds=2.0, ephemeral_max=6)
    clock, added = Clock(), []
    for step in range(3000):
        clock.now += rng.choice([0.0, 1e-6, 0.05, 0.3, 1.0, 2.5])
        if rng.random() < 0.1:
            log.expire(clock.now)
        else:
            typ = rng.choice(["proximity.enter", "proximity.exit", "treasure.claimed", "anticheat.flagged"])
            ev = clock.event(typ, rng.choice(["a", "b", "c", ""]))
            log.add(ev, clock.now)
            added.append(ev)
        if step % 50 == 0:
            log._check(clock.now)
        hunt = rng.choice(["a", "b", "c", None])
        after = rng.choice([0, *(e.id + rng.choice([-1, 0]) for e in added[-12:])])
        kept = model_kept(added, log, clock.now, hunt)
        want = [e for e in kept if e.id > after]
        missing = [e for e in added if (hunt is None or e.hunt == hunt) and e.id > after and e not in kept]
        assert log.after(after, hunt) == (want, not missing), (seed, step, hunt, after)


def model_kept(added: list[Event], log: EventLog, now: float, hunt: str | None) -> list[Event]:
    """What a stream keeps: the last durable events by count; ephemeral ones by age, then count."""
    cutoff = int((now - log.ephemeral_seconds) * 1_000_000)
    recent = [e for e in added if e.type in EPHEMERAL][-log.ephemeral_max :]
    recent = [e for e in recent if e.id >= cutoff]
    durable = [e for e in added if e.type not in EPHEMERAL]
    if hunt is None:
        return sorted(durable[-log.total :] + recent, key=lambda e: e.id)
    mine = [e for e in durable if e.hunt == hunt][-log.per_hunt :]
    return sorted(mine + [e for e in recent if e.hunt == hunt][-log.per_hunt :], key=lambda e: e.id)


def test_events_config_sets_the_retention_and_refuses_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "cairn.toml"
    path.write_text("[events]\nephemeral_seconds = 15\nephemeral_max = 500\n")
    log = config.load(path, env={}).event_log()
    assert (log.ephemeral_seconds, log.ephemeral_max) == (15, 500)
    defaults = config.load(None, env={"CAIRN_EVENTS_EPHEMERAL_SECONDS": "5"}).event_log()
    assert (defaults.ephemeral_seconds, defaults.ephemeral_max) == (5, 16_384)
    bad_values = [
        ("ephemeral_seconds = -1", "events.ephemeral_seconds"),
        ("ephemeral_max = 1.5", "events.ephemeral_max"),
        ("ephemeral_secs = 5", "events"),
    ]
    for bad, key in bad_values:
        path.write_text(f"[events]\n{bad}\n")
        with pytest.raises(config.ConfigError) as e:
            config.load(path, env={})
        assert e.value.message.startswith(f"{path}: {key}"), e.value.message
