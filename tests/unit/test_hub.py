"""`follow`, the one push loop behind SSE streams and WebSocket sessions."""

from __future__ import annotations

import asyncio

import pytest

from cairn.core.events import Event
from cairn.net import hub
from cairn.net.hub import Hub, follow


def ev(i: int) -> Event:
    return Event(i, "treasure.found", "h1", "2026-12-07T10:00:00Z", {})


def ids(batch: list[Event]) -> list[int]:
    return [e.id for e in batch]


def test_follow_sends_the_backlog_in_pieces_then_each_live_event_once_and_ends_when_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub, "IDLE", 0.01)
    monkeypatch.setattr(hub, "BACKLOG_PIECE", 2)

    async def main() -> list[list[int]]:
        h = Hub(queue_limit=3)
        sub = h.subscribe("h1")
        settled = asyncio.get_running_loop().create_future()
        batches = follow(sub, [ev(1), ev(2), ev(3)], 0, settled)
        first = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.02)
        assert not first.done()  # nothing leaves before the state is durable
        settled.set_result(None)
        got = [ids(await first), ids(await anext(batches))]
        h.publish([ev(3), ev(4)])  # 3 came in the backlog already: sent once
        got.append(ids(await anext(batches)))
        got.append(ids(await anext(batches)))  # idle: an empty batch, for a keep-alive
        h.publish([ev(5), ev(6), ev(7), ev(8)])  # one more than the queue holds: dropped
        assert sub.dropped
        got.append(ids(await anext(batches)))  # what the queue held still goes out
        with pytest.raises(StopAsyncIteration):
            await anext(batches)
        return got

    assert asyncio.run(main()) == [[1, 2], [3], [4], [], [5, 6, 7]]
