"""Fan-out of events to subscribers (SSE streams, WebSocket sessions) through bounded queues.

Publishing never waits: a subscriber whose queue is full is cut off, told the id to resume
from, and the engine carries on. A slow subscriber never slows anyone else. Each API key may
hold at most `max_per_key` subscriptions at once, and each event's SSE frame is encoded once
for every subscriber (`frame`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable

import msgspec

from cairn.core.errors import CairnError
from cairn.core.events import Event

DEFAULT_QUEUE = 4096
DEFAULT_PER_KEY = 256
_FRAMES_MAX = 32_768  # encoded frames kept: more than a live burst, bounded against a backlog replay
_encode = msgspec.json.Encoder().encode


class TooManySubscribers(CairnError):
    """A key already holds as many event subscriptions as `events.max_subscribers_per_key`."""

    code, status = "too_many_subscribers", 429


class Subscriber:
    __slots__ = ("dropped", "hunt", "limit", "owner", "queue", "revoked", "waiter")

    def __init__(self, hunt: str | None, limit: int, owner: bytes = b"") -> None:
        self.hunt = hunt
        self.owner = owner
        self.limit = limit
        self.queue: deque[Event] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = False
        self.revoked = False  # its key was revoked: it ends, and is not to resume

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


#: Seconds a subscriber waits for events before `follow` yields an empty batch (a keep-alive).
IDLE = 15.0
#: Backlog events per batch: about 32 KiB of SSE, under the transport's high-water mark.
BACKLOG_PIECE = 128


async def follow(
    sub: Subscriber, backlog: list[Event], after: int, settled: Awaitable[None] | None
) -> AsyncGenerator[list[Event], None]:
    """What one subscriber is sent (an SSE stream or a WebSocket session), in batches, each event once.

    First, once `settled` (the engine's state is durable) is done, the `backlog` in pieces of
    `BACKLOG_PIECE`: each is sent only once the client has drained the last (flow control), so a
    client that does not read holds one piece, not the whole backlog. Then the live events with
    ids after the last sent, as they come. An empty batch means `IDLE` seconds passed with none.
    It ends once the subscriber was dropped and its queue is drained: the client resumes after
    the last id sent (or `after`).
    """
    if settled is not None:
        await settled
    last = after
    for i in range(0, len(backlog), BACKLOG_PIECE):
        piece = backlog[i : i + BACKLOG_PIECE]
        last = piece[-1].id
        yield piece
    del backlog
    while True:
        evs = await sub.get(IDLE)
        fresh = [e for e in evs if e.id > last]
        if fresh:
            last = fresh[-1].id
            yield fresh
        elif not evs:
            if sub.dropped:
                return
            yield fresh


class Hub:
    """Subscribers by hunt (None: every hunt). `publish` is O(matching subscribers × events)."""

    def __init__(self, queue_limit: int = DEFAULT_QUEUE, max_per_key: int = DEFAULT_PER_KEY) -> None:
        self.queue_limit = queue_limit
        self.max_per_key = max_per_key
        self.by_hunt: dict[str | None, set[Subscriber]] = {}
        self.per_key: dict[bytes, int] = {}
        self.dropped_total = 0
        # id(event) -> (event, its SSE frame); holding the event keeps its id from being reused.
        self._frames: dict[int, tuple[Event, bytes]] = {}

    def subscribe(self, hunt: str | None, owner: bytes = b"") -> Subscriber:
        """A new subscription for `owner` (the API key); TooManySubscribers past the key's cap."""
        held = self.per_key.get(owner, 0)
        if held >= self.max_per_key:
            raise TooManySubscribers(
                f"this key holds {held} event subscriptions already (events.max_subscribers_per_key)"
            )
        self.per_key[owner] = held + 1
        sub = Subscriber(hunt, self.queue_limit, owner)
        self.by_hunt.setdefault(hunt, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.by_hunt.get(sub.hunt)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self.by_hunt[sub.hunt]
            left = self.per_key.get(sub.owner, 1) - 1
            if left > 0:
                self.per_key[sub.owner] = left
            else:
                self.per_key.pop(sub.owner, None)

    def frame(self, ev: Event) -> bytes:
        """The SSE frame of `ev`, encoded once however many subscribers send it."""
        hit = self._frames.get(id(ev))
        if hit is not None and hit[0] is ev:
            return hit[1]
        data = b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.id, ev.type.encode(), _encode(ev))
        frames = self._frames
        if len(frames) >= _FRAMES_MAX:
            del frames[next(iter(frames))]  # the oldest
        frames[id(ev)] = (ev, data)
        return data

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

    def end(self, sub: Subscriber) -> None:
        """End `sub` once its queue is drained: its key was revoked or expired."""
        sub.revoked = sub.dropped = True
        sub._wake()

    def _drop(self, sub: Subscriber) -> None:
        self.dropped_total += 1

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self.by_hunt.values())

    def depth(self) -> int:
        return max((len(sub.queue) for subs in self.by_hunt.values() for sub in subs), default=0)
