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


def test_a_session_subscription_that_fell_behind_is_released_and_the_session_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A WebSocket subscriber past its queue is told `dropped` with `resume_after`; its slot, which counts
    against the key's `events.max_subscribers_per_key`, is freed; the session stays for its other ops."""
    from types import SimpleNamespace
    from typing import Any

    from cairn.net.session import Session
    from tests.support import engine

    monkeypatch.setattr(hub, "IDLE", 0.01)

    class Ws:
        def __init__(self) -> None:
            self.gate = asyncio.Event()  # the client does not read until it is set
            self.sent: list[Any] = []

        async def send(self, data: Any) -> None:
            await self.gate.wait()
            self.sent.append(data)

    async def main() -> tuple[list[Any], int, Any, Any]:
        h = Hub(queue_limit=3)
        api = SimpleNamespace(hub=h, rt=SimpleNamespace(eng=engine(), settled=lambda: None))
        ws = Ws()
        session = Session(api, ws, "game", b"Bearer k")  # type: ignore[arg-type]
        session.subscribe("h1", 0, False)
        await asyncio.sleep(0.02)
        h.publish([ev(1)])  # the pusher takes it and waits for the client
        await asyncio.sleep(0.02)
        h.publish([ev(i) for i in range(2, 9)])  # more than its queue of 3: dropped
        ws.gate.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if session.pusher is None:
                break
        return ws.sent, h.subscribers, session.sub, await session.handle({"id": 9, "op": "ping"}, False)

    sent, subscribers, sub, ping = asyncio.run(main())
    assert sent[-1] == '{"dropped":{"resume_after":4}}', sent
    assert subscribers == 0 and sub is None
    assert ping == {"id": 9, "result": "pong"}  # the session still answers
