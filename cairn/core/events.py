"""Events: what happened, in past tense, with ids that rise strictly.

Ids are `max(last + 1, now in microseconds)`: they rise within a run, across restarts (the
clock moved on) and across events that were never journaled (proximity, anti-cheat). So an
event's id is never below the time it happened, in microseconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True):
    id: int
    type: str
    hunt: str
    at: str
    data: dict[str, Any]


#: Events that are never journaled and come in a steady stream: kept for a short time only.
EPHEMERAL = frozenset({"proximity.enter", "proximity.exit"})


class EventLog:
    """Recent events, one ring per hunt and one for all, for resumption by id.

    Durable events (hunt lifecycle, claims, anti-cheat, ...) are kept by count: the last
    `total` over all hunts and the last `per_hunt` of each hunt. Ephemeral ones (`EPHEMERAL`)
    sit in rings of their own and are kept `ephemeral_seconds` at most (the last
    `ephemeral_max` over all hunts, `per_hunt` of each), so that a steady stream of them holds
    a steady amount of memory. `add` is O(1) amortised; `after` merges the two kinds by id in
    O(k) for the k events returned.

    `floor` is the highest id that may be missing (events before a restart that were not
    rebuilt); `lost_all` and `lost` are the highest ids dropped from the all-hunts stream and
    from each hunt's. Resuming below any of them is reported as incomplete, so the client
    knows there is a gap.
    """

    def __init__(
        self,
        per_hunt: int = 2048,
        total: int = 65536,
        ephemeral_seconds: float = 60.0,
        ephemeral_max: int = 16384,
    ) -> None:
        self.per_hunt = per_hunt
        self.total = total
        self.ephemeral_seconds = ephemeral_seconds
        self.ephemeral_max = ephemeral_max
        self.all: deque[Event] = deque()  # durable events, every hunt
        self.by_hunt: dict[str, list[Event]] = {}
        self.recent: deque[Event] = deque()  # ephemeral events, every hunt
        self.recent_by_hunt: dict[str, deque[Event]] = {}  # a hunt's, the tail of its events in `recent`
        self.floor = 0
        self.lost_all = 0  # highest id dropped from `all` or `recent`
        self.lost: dict[str, int] = {}  # per hunt: highest id dropped from its rings

    def add(self, ev: Event, now: float) -> None:
        """Keep `ev` (its id above every id added before); `now` ages out ephemeral events. O(1) amortised."""
        ephemeral = ev.type in EPHEMERAL
        if ephemeral:
            self.recent.append(ev)
        else:
            if len(self.all) >= self.total:
                self.lost_all = max(self.lost_all, self.all.popleft().id)
            self.all.append(ev)
        if ev.hunt:
            if ephemeral:
                ring = self.recent_by_hunt.get(ev.hunt)
                if ring is None:
                    ring = self.recent_by_hunt[ev.hunt] = deque()
                elif len(ring) >= self.per_hunt:
                    self._lose(ev.hunt, ring.popleft().id)
                ring.append(ev)
            else:
                # A list, not a deque: most hunts keep a handful of durable events, and an empty
                # deque alone is a 64-slot block (0.7 KB a hunt; 7 MB for 10,000 hunts). Dropping
                # the oldest of a full ring moves `per_hunt` pointers, a few microseconds.
                kept = self.by_hunt.get(ev.hunt)
                if kept is None:
                    kept = self.by_hunt[ev.hunt] = []
                elif len(kept) >= self.per_hunt:
                    self._lose(ev.hunt, kept.pop(0).id)
                kept.append(ev)
        while len(self.recent) > self.ephemeral_max:
            self._drop_recent()
        self.expire(now)

    def expire(self, now: float) -> None:
        """Drop the ephemeral events older than `ephemeral_seconds` at `now`. O(1) amortised."""
        # An id is never below its event's time in microseconds, so an id below the cutoff is old.
        cutoff = int((now - self.ephemeral_seconds) * 1_000_000)
        ring = self.recent
        while ring and ring[0].id < cutoff:
            self._drop_recent()

    def after(self, after: int, hunt: str | None = None) -> tuple[list[Event], bool]:
        """Events with id > `after` (of one hunt, or all), in id order, and whether none after `after` is missing."""
        durable: Sequence[Event]
        if hunt is None:
            durable, recent, lost = self.all, self.recent, self.lost_all
        else:
            durable = self.by_hunt.get(hunt) or ()
            recent = self.recent_by_hunt.get(hunt) or deque()
            lost = self.lost.get(hunt, 0)
        out = _tail(durable, after)
        more = _tail(recent, after)
        if more:
            out += more
            if len(out) > len(more):
                out.sort(key=_id)  # two sorted runs: one linear merge
        return out, after >= max(self.floor, lost)

    def _drop_recent(self) -> None:
        ev = self.recent.popleft()
        self.lost_all = max(self.lost_all, ev.id)
        ring = self.recent_by_hunt.get(ev.hunt)
        if ring and ring[0] is ev:  # else the per-hunt bound dropped it already
            ring.popleft()
            self._lose(ev.hunt, ev.id)
            if not ring:
                del self.recent_by_hunt[ev.hunt]

    def _lose(self, hunt: str, ev_id: int) -> None:
        if ev_id > self.lost.get(hunt, 0):
            self.lost[hunt] = ev_id

    def _check(self, now: float | None = None) -> None:
        """Assert every invariant (tests)."""
        for ring in (self.all, self.recent, *self.by_hunt.values(), *self.recent_by_hunt.values()):
            ids = [e.id for e in ring]
            assert ids == sorted(set(ids)), "ids rise strictly in every ring"
        assert len(self.all) <= self.total and len(self.recent) <= self.ephemeral_max
        assert all(e.type not in EPHEMERAL for e in self.all) and all(e.type in EPHEMERAL for e in self.recent)
        for hunt, ring in self.by_hunt.items():
            assert len(ring) <= self.per_hunt and all(e.hunt == hunt for e in ring)
        for hunt, ring in self.recent_by_hunt.items():
            mine = [e for e in self.recent if e.hunt == hunt]
            assert ring and len(ring) <= self.per_hunt, "no empty or oversized ephemeral hunt ring"
            assert list(ring) == mine[len(mine) - len(ring) :], "a hunt's ring is the tail of its events"
            assert len(ring) == len(mine) or len(ring) == self.per_hunt
        assert all(e.hunt in self.recent_by_hunt for e in self.recent if e.hunt), "every hunt kept has its ring"
        if now is not None and self.recent:
            assert self.recent[0].id >= int((now - self.ephemeral_seconds) * 1_000_000), "nothing older is kept"


def _tail(ring: Sequence[Event], after: int) -> list[Event]:
    out: list[Event] = []
    for e in reversed(ring):
        if e.id <= after:
            break
        out.append(e)
    out.reverse()
    return out


def _id(e: Event) -> int:
    return e.id
