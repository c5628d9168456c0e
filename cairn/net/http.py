"""The HTTP server (`HttpServer`): listens on one TCP port, admits and counts connections within
the limits of its `ServerConfig`, brakes clients that guess keys, and drains everything on shutdown.

The transport knows nothing about Cairn: the app registers handlers on a `Router`. Its modules,
one job each (as uvicorn splits its own):

- `cairn.net.config`: `ServerConfig`, the limits and timeouts.
- `cairn.net.request`: `Request`, and `Spool` for a large body.
- `cairn.net.response`: `Response`, `Stream` and the error shape.
- `cairn.net.router`: `Router`, and the handler shapes it accepts.
- `cairn.net.flow`: `FlowControl`, write backpressure.
- `cairn.net.protocol`: `HttpProtocol`, one connection: parsing, pipelining, timeouts, serialization.
- `cairn.net.http` (this module): `HttpServer`, the listening socket and the connections' accounts.

The server speaks WebSocket through the `Upgrade` it is given
(`HttpServer(upgrade=cairn.net.websocket.UPGRADE)`), so the HTTP modules do not import that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from cairn.net.config import ServerConfig
from cairn.net.protocol import Cork, HttpProtocol, _refresh_date
from cairn.net.request import Request
from cairn.net.response import Response
from cairn.net.router import Router

__all__ = ["HttpServer", "Upgrade"]

log = logging.getLogger("cairn.net.http")

_AUTH_WINDOW: Final = 60.0  # seconds over which an address's refused keys are counted
_AUTH_DELAY_MIN: Final = 0.05  # the first late answer; each further failure doubles it...
_AUTH_DELAY_MAX: Final = 2.0  # ...up to this
_AUTH_ADDRESSES_MAX: Final = 65_536
_RELEASE_AFTER: Final = 256  # connections closed before `on_quiet` is due
_QUIET: Final = 1.0  # seconds without a connection closing after a flood before `on_quiet`


class Upgrade(Protocol):
    """How the server turns an upgrade request into a WebSocket. It is injected
    (`HttpServer(upgrade=cairn.net.websocket.UPGRADE)`) so that HTTP does not import WebSocket."""

    def handshake(self, headers: dict[str, str]) -> bytes | Response:
        """The 101 response to send, or the error to answer."""
        ...

    def attach(
        self, server: HttpServer, request: Request, handler: Any, transport: asyncio.Transport,
        accepted: bytes, trailing: bytes,
    ) -> None:  # fmt: skip
        """Take over `transport` after the handshake accepted the upgrade."""
        ...


class HttpServer:
    """Serves a `Router` on one TCP port; `shutdown()` drains it in a fixed order."""

    def __init__(
        self,
        router: Router,
        config: ServerConfig | None = None,
        on_error: Callable[[Exception], Response | None] | None = None,
        upgrade: Upgrade | None = None,
    ) -> None:
        self.router = router
        self.upgrade = upgrade
        self.config = config or ServerConfig()
        self.on_error = on_error
        self.port = 0
        c = self.config
        # Connection timers fire at least this often, so no deadline is missed.
        self._tick = min(c.header_timeout, c.body_timeout, c.idle_timeout, c.send_timeout, c.first_request_timeout)
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[Any, str] = {}  # connection -> client address
        self._per_address: dict[str, int] = {}
        # Connections by age that may not have completed a request yet: the first to go at the cap.
        self._fresh: dict[Any, None] = {}
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in c.trusted_addresses]
        self.refused = 0  # connections refused or dropped for a connection limit
        self._t_warned = 0.0
        self._auth_failures: dict[str, tuple[int, float]] = {}  # address -> (401s within a minute, last)
        #: Called once many connections have closed and closing has paused for a second (after a
        #: flood), to hand back the memory they held; the app sets it.
        self.on_quiet: Callable[[], None] | None = None
        self._drops = 0  # connections closed since on_quiet last ran
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._t_drop = 0.0
        self._spools = 0  # request bodies being spooled or handled
        self._shutting_down = False
        self._drained: asyncio.Future[None] | None = None
        self._date_timer: asyncio.TimerHandle | None = None
        self._cork = Cork()  # fast replies held to the end of a busy loop iteration

    @property
    def connections(self) -> int:
        """Open connections, HTTP and WebSocket."""
        return len(self._connections)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port; port 0 picks a free port, exposed as `.port`."""
        if self.router.websockets and self.upgrade is None:
            raise ValueError("the router has WebSocket endpoints but the server was given no upgrade")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpProtocol(self), host, port, backlog=self.config.backlog, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tick_date()

    def _tick_date(self) -> None:
        _refresh_date()
        self._date_timer = asyncio.get_running_loop().call_later(1.0, self._tick_date)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; let in-flight requests finish (up to `timeout`); close every
        connection (idle keep-alive at once, SSE streams ended, WebSockets with 1001); then
        drop whatever is left.
        """
        if self._server is None or self._shutting_down:
            return
        self._shutting_down = True
        loop = asyncio.get_running_loop()
        self._server.close()
        for conn in list(self._connections):
            conn.begin_shutdown()
        if self._connections:
            self._drained = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), timeout)
            except TimeoutError:
                log.warning("shutdown: %d connections still open after %.1fs", len(self._connections), timeout)
        for conn in list(self._connections):
            conn.abort()
        if self._connections:
            self._drained = loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drained), 1.0)
        await self._server.wait_closed()
        if self._date_timer is not None:
            self._date_timer.cancel()
            self._date_timer = None

    def _admit_conn(self, conn: HttpProtocol, address: str) -> bool:
        """Count a new connection in, or refuse it over a limit. O(1) amortised."""
        c = self.config
        if self._per_address.get(address, 0) >= c.max_connections_per_address and not self._is_trusted(address):
            return self._refuse(f"{address} holds {c.max_connections_per_address} connections")
        if len(self._connections) >= c.max_connections and not self._drop_fresh():
            return self._refuse(f"{c.max_connections} connections are open")
        self._add_conn(conn, address)
        self._fresh[conn] = None
        return True

    def auth_brake(self, address: str, on_connection: int) -> tuple[float, bool]:
        """A refused key from `address`, the `on_connection`-th on its connection: how long to wait
        before answering, and whether to close the connection after the answer.

        Failures are counted per connection and per address (over a sliding minute). Behind a
        trusted proxy every client shares its address, so only the connection's own count applies.
        """
        c = self.config
        if self._is_trusted(address):
            n = on_connection
        else:
            now = asyncio.get_running_loop().time()
            n, last = self._auth_failures.get(address, (0, now))
            n = 1 if now - last > _AUTH_WINDOW else n + 1
            if len(self._auth_failures) >= _AUTH_ADDRESSES_MAX:
                self._auth_failures.clear()  # bounded against floods from many addresses
            self._auth_failures[address] = (n, now)
            n = max(n, on_connection)
        over = n - c.auth_failures_slow
        delay = min(_AUTH_DELAY_MAX, _AUTH_DELAY_MIN * 2 ** min(over, 16)) if over > 0 else 0.0
        return delay, on_connection >= c.auth_failures_close or n >= c.auth_failures_close

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def _drop_fresh(self) -> bool:
        """Drop the oldest connection that has not completed a request, to make room; False if none."""
        fresh = self._fresh
        while fresh:
            conn = next(iter(fresh))
            del fresh[conn]
            if not conn._ka_mode and conn._phase != 2 and not conn._closed and not conn._upgraded and not conn._queue:
                conn._halted = True
                conn._transport.abort()
                self.refused += 1
                return True
        return False

    def _quiet(self) -> None:
        """Once connections have stopped falling for a while: call `on_quiet`."""
        loop = asyncio.get_running_loop()
        wait = self._t_drop + _QUIET - loop.time()
        if wait > 0:
            self._quiet_timer = loop.call_later(wait, self._quiet)
            return
        self._quiet_timer = None
        self._drops = 0
        if self.on_quiet is not None and not self._shutting_down:
            try:
                self.on_quiet()
            except Exception:
                log.exception("on_quiet failed")

    def _refuse(self, why: str) -> bool:
        self.refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._t_warned >= 10.0:  # a flood must not flood the log too
            self._t_warned = now
            log.warning("connection refused: %s (%d refused so far)", why, self.refused)
        return False

    def _add_conn(self, conn: Any, address: str = "") -> None:
        self._connections[conn] = address
        self._per_address[address] = self._per_address.get(address, 0) + 1

    def _drop_conn(self, conn: Any) -> None:
        address = self._connections.pop(conn, None)
        self._fresh.pop(conn, None)
        if address is not None:
            left = self._per_address[address] - 1
            if left:
                self._per_address[address] = left
            else:
                del self._per_address[address]
            self._drops += 1
            if self._drops >= _RELEASE_AFTER:
                loop = asyncio.get_running_loop()
                self._t_drop = loop.time()
                if self._quiet_timer is None:
                    self._quiet_timer = loop.call_later(_QUIET, self._quiet)
        if not self._connections and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
