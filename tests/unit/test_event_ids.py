"""Event ids, as a property over many mixed events and a restart: unique, strictly rising in the order a
subscriber receives them, the same order when replayed, and resuming after any id gives exactly the
events that follow it."""

from __future__ import annotations

import random
from typing import Any

from cairn.core import errors
from cairn.core.engine import Engine, Limits, compute_plan
from cairn.core.events import EPHEMERAL, Event, EventLog
from cairn.core.records import AnyRecord
from tests.support import SECRET, T0, Live, grid_world, spec

#: The events a record emits when applied: rebuilt by replay after a restart (the rest are not journaled).
JOURNALED = {"hunt.scheduled", "hunt.started", "hunt.ended", "treasure.found", "treasure.claimed", "treasure.expired"}
WORLD = grid_world()


def new_engine() -> Engine:
    lim = Limits(dig_rate=1000.0, dig_burst=1000, max_speed=20.0)
    log = EventLog(per_hunt=1 << 20, total=1 << 20, ephemeral_seconds=86_400, ephemeral_max=1 << 20)
    return Live(SECRET, {"overworld": WORLD}, limits=lim, events=log)


class Game:
    """Random hunts, players, moves, digs and ends; every record kept (the journal), every event seen live."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.eng = new_engine()
        self.now = T0
        self.records: list[AnyRecord] = []
        self.live: list[Event] = []
        self.hunts = 0
        self.players = [f"p{i}" for i in range(200)]

    def drain(self, records: Any = ()) -> None:
        self.records.extend(records)
        self.live.extend(self.eng.new_events)
        self.eng.new_events.clear()

    def create(self) -> None:
        self.hunts += 1
        shared = self.hunts % 3 == 0
        s = spec(
            id=f"h{self.hunts}", treasures=10, duration="20s" if self.hunts % 4 == 0 else "1h",
            prize={"mode": "shared_bounty", "window": "1s", "pool": 100} if shared else {"mode": "first_finder"},
            area={"min": [-128, 0, -128], "max": [124, 200, 124]}, proximity={"radius": 12},
            spawn={"tags_any": ["surface"], "min_spacing": 8},
        )  # fmt: skip
        self.drain(self.eng.create_hunt(compute_plan(self.eng.plan_input(s)), self.now).records)

    def live_treasures(self) -> list[Any]:
        return [t for h in self.eng.hunts.values() if h.ended is None for t in h.treasures if t.live]

    def step(self) -> None:
        eng, rnd = self.eng, self.rnd
        self.now += 0.05
        self.drain(eng.tick(self.now))
        spots = self.live_treasures()
        if len(spots) < 15:
            self.create()
            return
        r = rnd.random()
        if r < 0.7:  # a tick of moves around the treasures: proximity enter and exit
            ups = []
            for p in rnd.sample(self.players, 40):
                x, y, z = rnd.choice(spots).pos
                ups.append((p, (x + rnd.randint(-20, 20), y + 1, z + rnd.randint(-20, 20)), True))
            if rnd.random() < 0.1:  # and a portal trip without the flag: refused, flagged
                ups.append((rnd.choice(self.players), (9000, 70, 9000), False))
            self.drain(eng.positions("overworld", ups, self.now).records)
        elif r < 0.97:  # a dig on a treasure by a player near it (found, taken)
            t = rnd.choice(spots)
            x, y, z = t.pos
            try:
                out = eng.dig(t.hunt.id, rnd.choice(self.players), (x, y + 1, z), t.pos, None, self.now, True)
            except errors.CairnError:
                out = None
            self.drain(out.records if out else ())
        else:  # an admin ends a hunt: expired treasures, the end, the exits of their fences
            live = [h for h in eng.hunts.values() if h.ended is None]
            self.drain(eng.end_hunt(rnd.choice(live).id, self.now).records)

    def restart(self) -> None:
        """A new engine from the journal, a second later (replay rebuilds the journaled events)."""
        self.eng = new_engine()
        self.eng.replay(self.records)
        self.now += 1.0


def check_resume(eng: Engine, seen: list[Event], ids: list[int], hunt: str | None = None) -> None:
    """Resuming after each id gives exactly the retained events that follow it, in order."""
    retained = eng.events.after(0, hunt)[0]
    got = [e.id for e in retained]
    assert got == sorted(set(got)), "retained ids are unique and rise"
    for after in ids:
        tail, _ = eng.events.after(after, hunt)
        assert tail == [e for e in retained if e.id > after], after


def test_event_ids_rise_strictly_live_and_replayed_across_a_restart() -> None:
    game = Game(seed=16)
    while len(game.live) < 5_000:
        game.step()
    before = list(game.live)
    ids = [e.id for e in before]
    assert ids == sorted(set(ids)), "live ids are unique and rise in the order they are sent"
    kinds = {e.type for e in before}
    assert {"proximity.enter", "proximity.exit", "treasure.claimed", "treasure.expired", "hunt.ended",
            "anticheat.flagged"} <= kinds, kinds  # fmt: skip
    rnd = random.Random(1)
    sample = [0, *rnd.sample(ids, 300)]
    # The ids the bug repeated: an exit emitted while a claim or an end retired the treasure.
    sample += [e.id for e in before if e.type == "proximity.exit"][:200]
    check_resume(game.eng, before, sample)
    check_resume(game.eng, before, sample, hunt="h1")

    game.restart()
    rebuilt = game.eng.events.after(0)[0]
    assert rebuilt == [e for e in before if e.type in JOURNALED], "a replay rebuilds the journaled events as sent"
    while len(game.live) < 10_000:
        game.step()
    after_restart = game.live[len(before) :]
    assert after_restart[0].id > ids[-1], "ids rise across the restart"
    again = [e.id for e in after_restart]
    assert again == sorted(set(again))
    retained = game.eng.events.after(0)[0]
    assert retained == rebuilt + after_restart
    check_resume(game.eng, game.live, [*sample, ids[-1], *rnd.sample(again, 300)])
    # Whatever id a client last saw before the restart, it misses no journaled event that followed it.
    for seen in [*sample, ids[-1]]:
        later = [e for e in before if e.id > seen and e.type in JOURNALED] + after_restart
        assert game.eng.events.after(seen)[0] == later
    assert sum(e.type in EPHEMERAL for e in game.live) > 2_000
