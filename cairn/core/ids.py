"""The id allocator: the seq numbers and event ids a command reserves while it decides.

Ids are not game state. A decided record carries its `seq` (strictly rising) and `ev` (the first of
the event ids its events take when applied); the allocator hands them out so that records decided
one after another, before any is applied, never share an id. `event_span` says how many event ids a
record takes: the allocator reserves that many, and a Redis commit asks the store to number that
many (`cairn/distributed.py`), so the two can never disagree.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from cairn.core.records import Admin, Claimed, HuntEnded, Record

R = TypeVar("R", bound=Record)

#: Records that emit no event (ev 0): an ack, a recurring spec, a world registered or retired.
_SILENT = frozenset({"ga", "rs", "wa", "wr"})
#: The event ids an operator's action takes: its own event and up to three it causes (a voided
#: claim's grant revoked, its treasure hidden again); unused ones are skipped.
ADMIN_SPAN = 4


def event_span(rec: Record, treasures: int = 0) -> int:
    """How many event ids `rec` takes when applied, at most. `treasures`: how many its hunt has (an
    end expires each treasure still hidden, one event each, before its own `hunt.ended`)."""
    if isinstance(rec, Claimed):
        return 2 if rec.share is not None else 1  # treasure.found, and treasure.claimed for a first finder
    if isinstance(rec, HuntEnded):
        return 1 + treasures
    if isinstance(rec, Admin):
        return ADMIN_SPAN
    tag = type(rec).__struct_config__.tag
    return 0 if tag in _SILENT else 1


class Ids:
    """The highest seq and event id applied or reserved. Replay and applied records move it on too."""

    __slots__ = ("event", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.event = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def events(self, now: float, n: int = 1) -> int:
        """Reserve `n` event ids, the first no lower than `now` in microseconds; return the first (0 for none)."""
        if n == 0:
            return 0
        first = self.event + 1
        t = int(now * 1_000_000)
        if t > first:
            first = t
        self.event = first + n - 1
        return first

    def stamp(self, rec: R, now: float, treasures: int = 0) -> R:
        """`rec` (decided with seq and ev 0) with the next seq and its event ids, reserved from `now`."""
        seq = self.next_seq()
        return msgspec.structs.replace(rec, seq=seq, ev=self.events(now, event_span(rec, treasures)))

    def seen(self, seq: int) -> None:
        """A record of seq `seq` exists (applied, or journaled): never hand it out again."""
        if seq > self.seq:
            self.seq = seq
