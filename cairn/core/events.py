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

    `add` is O(1); `after` is O(k) in the events returned. `floor` is the highest id that may
    be missing (events before a restart that were not rebuilt); resuming below it, or below an
    event a ring has dropped, is reported as incomplete so the client knows there is a gap.
    """

    def __init__(self, per_hunt: int = 2048, total: int = 65536) -> None:
        self.per_hunt = per_hunt
        self.total = total
        self.all: deque[Event] = deque()
        self.by_hunt: dict[str, deque[Event]] = {}
        self.floor = 0
        self.lost_all = 0  # highest id dropped from `all`
        self.lost: dict[str, int] = {}  # per hunt: highest id dropped from its ring

    def add(self, ev: Event) -> None:
        ring = self.all
        if len(ring) >= self.total:
            self.lost_all = ring.popleft().id
        ring.append(ev)
        if ev.hunt:
            ring = self.by_hunt.get(ev.hunt)  # type: ignore[assignment]
            if ring is None:
                ring = self.by_hunt[ev.hunt] = deque()
            elif len(ring) >= self.per_hunt:
                self.lost[ev.hunt] = ring.popleft().id
            ring.append(ev)

    def after(self, after: int, hunt: str | None = None) -> tuple[list[Event], bool]:
        """Events with id > `after` (of one hunt, or all) and whether none after `after` is missing."""
        if hunt is None:
            ring, lost = self.all, self.lost_all
        else:
            ring, lost = self.by_hunt.get(hunt, deque()), self.lost.get(hunt, 0)
        complete = after >= max(self.floor, lost)
        out: list[Event] = []
        for e in reversed(ring):
            if e.id <= after:
                break
            out.append(e)
        out.reverse()
        return out, complete
