"""Events: what happened, in past tense, with ids that rise strictly.

Ids are `max(last + 1, now in microseconds)`: they rise within a run, across restarts (the
clock moved on) and across events that were never journaled (proximity, anti-cheat).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True):
    id: int
    type: str
    hunt: str
    at: str
    data: dict[str, Any]


class EventLog:
    """Bounded rings of recent events, one per hunt and one for all, for resumption by id.

    `add` is O(1); `after` is O(k) in the events returned.
    """

    def __init__(self, per_hunt: int = 2048, total: int = 65536) -> None:
        self.per_hunt = per_hunt
        self.all: deque[Event] = deque(maxlen=total)
        self.by_hunt: dict[str, deque[Event]] = {}

    def add(self, ev: Event) -> None:
        self.all.append(ev)
        if ev.hunt:
            ring = self.by_hunt.get(ev.hunt)
            if ring is None:
                ring = self.by_hunt[ev.hunt] = deque(maxlen=self.per_hunt)
            ring.append(ev)

    def after(self, after: int, hunt: str | None = None) -> tuple[list[Event], bool]:
        """Events with id > `after` (of one hunt, or all) and whether the ring still reaches back that far."""
        ring = self.all if hunt is None else self.by_hunt.get(hunt, deque())
        if not ring:
            return [], True
        complete = after >= ring[0].id - 1 or after == 0
        if ring[-1].id <= after:
            return [], complete
        out: list[Event] = []
        for e in reversed(ring):
            if e.id <= after:
                break
            out.append(e)
        out.reverse()
        return out, complete

    def drop_hunt(self, hunt: str) -> None:
        self.by_hunt.pop(hunt, None)

    @property
    def last_id(self) -> int:
        return self.all[-1].id if self.all else 0
