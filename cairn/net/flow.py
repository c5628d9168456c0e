"""Flow control for one connection: write backpressure (`FlowControl`) and pausing reads (`set_reading`).

The transport calls `pause()` and `resume()` as its write buffer crosses its high- and
low-water marks; writers (`cairn.net.protocol`'s streams, `cairn.net.websocket`) await `drain()`.
A connection that stays paused longer than `ServerConfig.send_timeout` is dropped by its owner.
"""

from __future__ import annotations

import asyncio

__all__ = ["FlowControl", "set_reading"]


def set_reading(transport: asyncio.Transport, paused: bool, pause: bool) -> bool:
    """Pause or resume reading from `transport` if `pause` differs from `paused` (what was last asked of
    it) and it is not closing; returns what now holds. A connection keeps that flag, so that the
    transport is asked only on a change."""
    if pause == paused or transport.is_closing():
        return paused
    if pause:
        transport.pause_reading()
    else:
        transport.resume_reading()
    return pause


class FlowControl:
    """Write backpressure: the transport pauses and resumes us; writers await `drain()`."""

    __slots__ = ("_loop", "_waiters", "paused", "paused_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] = []
        self.paused = False
        self.paused_at = 0.0

    def pause(self) -> None:
        """The transport's write buffer is above its high-water mark."""
        if not self.paused:
            self.paused = True
            self.paused_at = self._loop.time()

    def resume(self) -> None:
        """The write buffer drained below its low-water mark: wake the writers."""
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def abort(self) -> None:
        """The connection is gone: writers waiting for a drain get ConnectionResetError."""
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_exception(ConnectionResetError("connection lost"))

    async def drain(self) -> None:
        """Return once the transport accepts writes again."""
        if self.paused:
            fut = self._loop.create_future()
            self._waiters.append(fut)
            await fut
