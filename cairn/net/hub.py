"""Fan-out of events to subscribers (SSE streams, WebSocket sessions) through bounded queues.

Publishing never waits: a subscriber whose queue is full is cut off, told the id to resume
from, and the engine carries on. A slow subscriber never slows anyone else.
"""

from __future__ import annotations

import asyncio
from collections import deque

from cairn.core.events import Event

DEFAULT_QUEUE = 4096


class Subscriber:
    __slots__ = ("dropped", "hunt", "limit", "queue", "waiter")

    def __init__(self, hunt: str | None, limit: int) -> None:
        self.hunt = hunt
        self.limit = limit
        self.queue: deque[Event] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = False

    def push(self, ev: Event) -> bool:
        if len(self.queue) >= self.limit:
            self.dropped = True
            self._wake()
            return False
        self.queue.append(ev)
        self._wake()
        return True

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def get(self, timeout: float) -> list[Event]:
        """Wait up to `timeout` seconds for events; [] on timeout or when dropped."""
        if not self.queue and not self.dropped:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout)
            except TimeoutError:
                pass
            finally:
                self.waiter = None
        out = list(self.queue)
        self.queue.clear()
        return out


class Hub:
    """Subscribers by hunt (None: every hunt). `publish` is O(matching subscribers × events)."""

    def __init__(self, queue_limit: int = DEFAULT_QUEUE) -> None:
        self.queue_limit = queue_limit
        self.by_hunt: dict[str | None, set[Subscriber]] = {}
        self.dropped_total = 0

    def subscribe(self, hunt: str | None) -> Subscriber:
        sub = Subscriber(hunt, self.queue_limit)
        self.by_hunt.setdefault(hunt, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.by_hunt.get(sub.hunt)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.by_hunt[sub.hunt]

    def publish(self, events: list[Event]) -> None:
        if not self.by_hunt:
            return
        everyone = self.by_hunt.get(None, ())
        for ev in events:
            for sub in everyone:
                if not sub.dropped and not sub.push(ev):
                    self._drop(sub)
            for sub in self.by_hunt.get(ev.hunt, ()) if ev.hunt else ():
                if not sub.dropped and not sub.push(ev):
                    self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self.dropped_total += 1

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self.by_hunt.values())

    def depth(self) -> int:
        return max((len(sub.queue) for subs in self.by_hunt.values() for sub in subs), default=0)
