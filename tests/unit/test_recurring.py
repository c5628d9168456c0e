"""Recurring hunts on a fake clock: instances per firing, missed firings, max_concurrent, replay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cairn.core import errors
from cairn.core import records as rec
from cairn.core.engine import Engine, compute_plan
from tests.support import Live, engine, spec


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def recurring(**kw):
    base = {"id": "friday", "schedule": "0 19 * * FRI", "duration": "2h", "treasures": 3}
    base.update(kw)
    return spec(**base)


def materialise(eng: Engine, now: float) -> list[str]:
    """What the runtime does on each tick: create every due instance."""
    made = []
    for s in eng.due_instances(now):
        eng.create_hunt(compute_plan(eng.plan_input(s)), now)
        made.append(s.id)
    eng.tick(now)
    return made


def test_each_firing_makes_an_instance_scheduled_started_and_ended() -> None:
    eng = engine()
    thursday = ts("2026-11-26T12:00:00")
    out = eng.register_recurring(recurring(), thursday)
    assert out.result["next_firing"] == "2026-11-27T19:00:00.000Z"
    assert materialise(eng, thursday) == ["friday@20261127T1900"]
    h = eng.hunts["friday@20261127T1900"]
    assert h.state_at(thursday) == "scheduled"
    assert materialise(eng, ts("2026-11-27T19:00:01")) == ["friday@20261204T1900"]  # the next one, ahead
    assert h.state_at(ts("2026-11-27T19:00:01")) == "active"
    assert materialise(eng, ts("2026-11-27T21:00:01")) == []
    assert h.ended is not None
    types = [e.type for e in eng.events.after(0, "friday@20261127T1900")[0]]
    assert types[0] == "hunt.scheduled" and "hunt.started" in types and types[-1] == "hunt.ended"
    assert types.count("treasure.expired") == 3
    # Each instance is placed from its own seed.
    a = [t.pos for t in h.treasures]
    b = [t.pos for t in eng.hunts["friday@20261204T1900"].treasures]
    assert a != b


def test_missed_firing_runs_the_latest_if_still_inside_its_duration_and_skips_older() -> None:
    daily = {"id": "daily", "schedule": "0 12 * * *", "duration": "2h"}
    eng = engine()
    eng.register_recurring(recurring(**daily), ts("2026-11-01T08:00:00"))
    # The engine was down from the 1st until the 4th at 13:00: firings on the 1st, 2nd and 3rd were missed.
    made = materialise(eng, ts("2026-11-04T13:00:00"))
    assert made == ["daily@20261104T1200", "daily@20261105T1200"]
    assert eng.hunts["daily@20261104T1200"].state_at(ts("2026-11-04T13:00:00")) == "active"
    # Down again past the end of the 6th's hunt: it is skipped, only the next one is made.
    eng2 = engine()
    eng2.register_recurring(recurring(**daily), ts("2026-11-01T08:00:00"))
    assert materialise(eng2, ts("2026-11-06T14:30:00")) == ["daily@20261107T1200"]


def test_max_concurrent_skips_overlapping_firings() -> None:
    eng = engine()
    hourly = {"id": "hourly", "schedule": "0 * * * *", "duration": "90m", "max_concurrent": 1}
    eng.register_recurring(recurring(**hourly), ts("2026-11-01T08:30:00"))
    made = materialise(eng, ts("2026-11-01T08:30:00"))
    assert made == ["hourly@20261101T0800"]  # 09:00 would overlap 08:00–09:30
    assert materialise(eng, ts("2026-11-01T09:10:00")) == ["hourly@20261101T1000"]  # 09:00 skipped, 10:00 ahead
    assert materialise(eng, ts("2026-11-01T09:40:00")) == []
    eng2 = engine()
    eng2.register_recurring(recurring(**{**hourly, "id": "two", "max_concurrent": 2}), ts("2026-11-01T08:30:00"))
    assert materialise(eng2, ts("2026-11-01T08:30:00")) == ["two@20261101T0800", "two@20261101T0900"]


def test_registration_is_idempotent_journaled_and_replayed() -> None:
    eng = engine()
    first = eng.register_recurring(recurring(), ts("2026-11-26T12:00:00"))
    again = eng.register_recurring(recurring(), ts("2026-11-26T12:05:00"))
    assert len(first.records) == 1 and again.records == ()
    changed = eng.register_recurring(recurring(treasures=4), ts("2026-11-26T12:06:00"))
    assert len(changed.records) == 1
    log = list(first.records) + list(changed.records)
    replayed = Live(eng.secret, eng.worlds, limits=eng.limits)
    replayed.replay([rec.decode(rec.encode(r)) for r in log])
    assert replayed.recurring["friday"][0].treasures == 4
    assert rec.encode_many(replayed.retained()) == rec.encode_many(eng.retained())


def test_bad_recurring_specs_are_refused() -> None:
    with pytest.raises(errors.ValidationError) as e:
        recurring(schedule="0 0 30 2 *")
    assert e.value.field == "schedule"
    with pytest.raises(errors.UnknownWorld):
        engine().register_recurring(recurring(world="nether"), ts("2026-11-26T12:00:00"))
