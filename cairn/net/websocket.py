"""WebSocket on the HTTP server: the handshake on a request httptools already parsed, then
framing with wsproto's frame-level `Connection` (no h11 involved).

A route gets one of two handler shapes (see `Router.add_websocket`):

- `async def handler(ws)`: one task per connection. `await ws.receive()` returns `str`
  (text frame) or `bytes` (binary frame) and raises `ConnectionClosed` once closed;
  `await ws.send(str | bytes)` waits while the client is not reading.
- A `WebSocketEndpoint` subclass: the sync fast path. `on_message` runs inside the
  protocol callback with no task and no future per message; reply with `ws.send_nowait`.
  Reading pauses while the client does not drain our writes, which bounds the replies.

Ping frames get pongs automatically. An idle connection gets a ping after half of
`idle_timeout` and is dropped after all of it. A message over `ws_max_message` closes the
connection with 1009; in a fragmented message each fragment counts 64 bytes more than it holds, so
that a message in millions of empty fragments is refused too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, generate_accept_token

from cairn.net.flow import FlowControl, set_reading
from cairn.net.http import HttpServer
from cairn.net.request import Request
from cairn.net.response import Response, error_response

__all__ = ["UPGRADE", "ConnectionClosed", "WebSocket", "WebSocketEndpoint", "WebSocketHandler", "handshake"]

log = logging.getLogger("cairn.net.websocket")
#: What each fragment of a fragmented message costs against `ws_max_message` besides its bytes: a held
#: fragment is an object too, so a message in many tiny (or empty) fragments meets the cap as a big one does.
_FRAGMENT_COST: Final = 64

_CLOSE_TIMEOUT: Final = 2.0  # how long we wait for the client's Close after sending ours
_MAX_INBOX: Final = 64  # received messages queued for an async handler before reading pauses


class _Done:
    """An awaitable that is already done: lets `close()` be called with or without `await`."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


_DONE: Final = _Done()


class ConnectionClosed(Exception):
    """The WebSocket is closed; `code` is the close code (1006: the connection dropped)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class WebSocketEndpoint:
    """Sync fast path: subclass and override; every callback runs inside the protocol."""

    def on_connect(self, ws: WebSocket) -> None:
        """The handshake is done."""

    def on_message(self, ws: WebSocket, data: str | bytes) -> None:
        """One complete message; reply with `ws.send_nowait`."""

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        """The connection closed, from either side (1006: dropped)."""


WebSocketHandler = Callable[["WebSocket"], Awaitable[None]] | WebSocketEndpoint

_H16: Final = struct.Struct("!BBH")
_H64: Final = struct.Struct("!BBQ")
_SHORT_TEXT: Final = [bytes((0x81, n)) for n in range(126)]
_SHORT_BINARY: Final = [bytes((0x82, n)) for n in range(126)]


def _encode(data: str | bytes | bytearray | memoryview) -> bytes:
    """One unmasked, unfragmented server frame: text for `str`, binary for bytes-like."""
    payload: bytes | bytearray | memoryview
    if isinstance(data, str):
        payload = data.encode()
        short, op = _SHORT_TEXT, 0x81
    else:
        payload = data
        short, op = _SHORT_BINARY, 0x82
    n = len(payload)
    if n < 126:
        return short[n] + payload
    if n < 65536:
        return _H16.pack(op, 126, n) + payload
    return _H64.pack(op, 127, n) + payload


_SWITCHING: Final = (
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: %s\r\n\r\n"
)


def handshake(headers: dict[str, str]) -> bytes | Response:
    """Check an upgrade request's headers: the 101 response to send, or the error to answer."""
    if headers.get("sec-websocket-version") != "13":
        return error_response(
            426, "unsupported_websocket_version", "only WebSocket version 13 is supported",
            [("sec-websocket-version", "13")],
        )  # fmt: skip
    key = headers.get("sec-websocket-key", "").strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        return error_response(400, "bad_request", "missing or malformed Sec-WebSocket-Key")
    return _SWITCHING % generate_accept_token(key.encode())


class WebSocket(asyncio.Protocol):
    """One WebSocket connection; it replaces the HTTP protocol on the transport."""

    __slots__ = (
        "_auth_failures",
        "_close_code",
        "_close_reason",
        "_closed",
        "_config",
        "_conn",
        "_endpoint",
        "_flow",
        "_frag_size",
        "_frags",
        "_handler",
        "_inbox",
        "_loop",
        "_lost",
        "_out",
        "_ping_sent",
        "_reading_paused",
        "_server",
        "_t_close",
        "_t_recv",
        "_task",
        "_timer",
        "_transport",
        "_waiter",
        "request",
    )

    def __init__(self, server: HttpServer, request: Request, handler: WebSocketHandler) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self._server = server
        self._config = server.config
        self._loop = loop
        self._handler = handler
        self._endpoint = handler if isinstance(handler, WebSocketEndpoint) else None
        self._conn = Connection(ConnectionType.SERVER)
        self._transport: asyncio.Transport = None  # type: ignore[assignment]
        self._flow = FlowControl(loop)
        self._inbox: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[str | bytes] | None = None
        self._frags: list[Any] = []
        self._frag_size = 0
        self._close_code: int | None = None
        self._close_reason = ""
        self._closed: asyncio.Future[None] = loop.create_future()
        self._lost = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._t_recv = self._t_close = 0.0
        self._ping_sent = False
        self._reading_paused = False
        self._out: list[bytes] | None = None
        self._auth_failures = 0

    # -- public API ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once a Close was sent or received, or the connection dropped."""
        return self._close_code is not None

    @property
    def close_code(self) -> int | None:
        """The close code, once closed."""
        return self._close_code

    async def receive(self) -> str | bytes:
        """The next message: `str` from a text frame, `bytes` from a binary one.

        Raises ConnectionClosed once the connection is closed and every queued message is read.
        """
        inbox = self._inbox
        if inbox:
            msg = inbox.popleft()
            if self._reading_paused:
                self._update_reading()
            return msg
        if self._close_code is not None:
            raise ConnectionClosed(self._close_code, self._close_reason)
        if self._waiter is not None:
            raise RuntimeError("another task is already waiting in receive()")
        fut: asyncio.Future[str | bytes] = self._loop.create_future()
        self._waiter = fut
        try:
            return await fut
        finally:
            if self._waiter is fut:
                self._waiter = None

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, data: str | bytes) -> None:
        """Send one message (text for `str`); waits while the client is not reading."""
        self.send_nowait(data)
        if self._flow.paused:
            try:
                await self._flow.drain()
            except ConnectionResetError:
                raise ConnectionClosed(1006, "connection lost") from None

    def send_nowait(self, data: str | bytes) -> None:
        """Send one message without waiting; for the sync fast path."""
        if self._close_code is not None:
            raise ConnectionClosed(self._close_code, self._close_reason)
        if self._transport.is_closing():
            raise ConnectionClosed(1006, "connection lost")
        if self._out is not None:
            self._out.append(_encode(data))  # inside data_received: sent together at its end
        else:
            self._transport.write(_encode(data))

    def close(self, code: int = 1000, reason: str = "") -> Awaitable[None]:
        """Start the closing handshake; the TCP connection closes when the client answers.

        Acts at once. The result may be awaited (`await ws.close()`), which also returns at
        once; `wait_closed()` waits for the connection to be gone.
        """
        if self._close_code is not None or self._lost:
            return _DONE
        with contextlib.suppress(LocalProtocolError):
            self._write(self._conn.send(CloseConnection(code=code, reason=reason or None)))
        self._t_close = self._loop.time()
        self._mark_closed(code, reason)
        self._arm(self._t_close + _CLOSE_TIMEOUT)
        return _DONE

    def auth_failed(self) -> tuple[float, bool]:
        """A key refused on this connection: seconds to wait before answering, and whether to
        close after the answer (the server's brake, per connection and per address)."""
        self._auth_failures += 1
        return self._server.auth_brake(self.request.client, self._auth_failures)

    async def wait_closed(self) -> None:
        """Return once the connection is closed, from either side."""
        await asyncio.shield(self._closed)

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, transport: asyncio.Transport, response: bytes, trailing: bytes) -> None:
        """Take over `transport` from the HTTP protocol after writing the 101 `response`."""
        self._transport = transport
        transport.write(response)
        transport.set_protocol(self)
        self._server._add_conn(self, self.request.client)
        self._t_recv = self._loop.time()
        self._arm(self._t_recv + self._config.idle_timeout / 2)
        if self._endpoint is not None:
            try:
                self._endpoint.on_connect(self)
            except Exception:
                log.exception("WebSocket on_connect failed for %s", self.request.path)
                self.close(1011, "internal error")
        else:
            self._task = self._loop.create_task(self._run())
            self._task.add_done_callback(self._task_done)
        if self._server._shutting_down:
            self.close(1001, "server shutting down")
        if trailing:
            self.data_received(trailing)

    async def _run(self) -> None:
        try:
            await self._handler(self)  # type: ignore[operator]
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("WebSocket handler failed for %s", self.request.path)
            self.close(1011, "internal error")
        self.close(1000)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._maybe_untrack()

    def _maybe_untrack(self) -> None:
        if self._lost and (self._task is None or self._task.done()):
            self._server._drop_conn(self)

    def begin_shutdown(self) -> None:
        """Server shutdown: close with 1001 (going away)."""
        self.close(1001, "server shutting down")

    def abort(self) -> None:
        """Drop the connection and cancel the handler."""
        if self._task is not None:
            self._task.cancel()
        if not self._lost:
            self._transport.abort()

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover
        pass  # attach() wires the transport; the connection was made for HTTP

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flow.abort()
        self._mark_closed(1006, "connection lost")
        self._maybe_untrack()

    def pause_writing(self) -> None:
        self._flow.pause()
        self._update_reading()

    def resume_writing(self) -> None:
        self._flow.resume()
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        self._t_recv = self._loop.time()
        self._ping_sent = False
        conn = self._conn
        try:
            conn.receive_data(data)
        except LocalProtocolError:
            return  # the closing handshake finished; ignore trailing bytes
        # Replies written while handling this read go out in one write (one syscall).
        self._out = []
        try:
            self._handle_events(conn)
        finally:
            self._flush_out()

    def _handle_events(self, conn: Connection) -> None:
        limit = self._config.ws_max_message
        for event in conn.events():
            t = type(event)
            if t is TextMessage or t is BytesMessage:
                if self._close_code is not None:
                    continue  # closing: drop late messages
                part = event.data  # type: ignore[attr-defined]
                size = self._frag_size + (len(part) if t is BytesMessage or part.isascii() else len(part.encode()))
                if self._frags or not event.message_finished:  # type: ignore[attr-defined]
                    size += _FRAGMENT_COST  # a fragmented message: each part counts for its object too
                if size > limit:
                    self._frags, self._frag_size = [], 0
                    self.close(1009, "message too big")
                    continue
                if not event.message_finished:  # type: ignore[attr-defined]
                    self._frags.append(part)
                    self._frag_size = size
                    continue
                if self._frags:
                    self._frags.append(part)
                    part = ("" if t is TextMessage else b"").join(self._frags)
                    self._frags, self._frag_size = [], 0
                self._deliver(part)
            elif t is Ping:
                self._write(conn.send(event.response()))  # type: ignore[attr-defined]
            elif t is CloseConnection:
                self._on_close_frame(event)  # type: ignore[arg-type]
                return

    # -- internals -----------------------------------------------------------------------------

    def _deliver(self, msg: str | bytes) -> None:
        endpoint = self._endpoint
        if endpoint is not None:
            try:
                endpoint.on_message(self, msg)
            except ConnectionClosed:
                pass
            except Exception:
                log.exception("WebSocket on_message failed for %s", self.request.path)
                self.close(1011, "internal error")
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(msg)
            return
        self._inbox.append(msg)
        if len(self._inbox) >= _MAX_INBOX:
            self._update_reading()

    def _on_close_frame(self, event: CloseConnection) -> None:
        """The client closed (or sent bytes we could not parse): answer, then close TCP."""
        with contextlib.suppress(LocalProtocolError):  # raised when this answers our own Close
            self._write(self._conn.send(event.response()))
        self._mark_closed(event.code, event.reason or "")
        self._flush_out()
        self._transport.close()

    def _mark_closed(self, code: int, reason: str) -> None:
        if self._close_code is not None:
            return
        self._close_code, self._close_reason = int(code), reason
        if not self._closed.done():
            self._closed.set_result(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_exception(ConnectionClosed(self._close_code, reason))
        if self._endpoint is not None:
            try:
                self._endpoint.on_close(self, self._close_code, reason)
            except Exception:
                log.exception("WebSocket on_close failed for %s", self.request.path)

    def _write(self, data: bytes) -> None:
        if data and not self._lost:
            if self._out is not None:
                self._out.append(data)
            else:
                self._transport.write(data)

    def _flush_out(self) -> None:
        out, self._out = self._out, None
        if out and not self._lost and not self._transport.is_closing():
            self._transport.writelines(out)

    def _update_reading(self) -> None:
        if self._lost:
            return
        pause = self._flow.paused or len(self._inbox) >= _MAX_INBOX
        self._reading_paused = set_reading(self._transport, self._reading_paused, pause)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        """Closing handshake deadline, send timeout, and keepalive pings on idle connections."""
        self._timer = None
        if self._lost:
            return
        now = self._loop.time()
        config = self._config
        if self._close_code is not None:
            if now >= self._t_close + _CLOSE_TIMEOUT:
                self._transport.close()
                return
            self._arm(self._t_close + _CLOSE_TIMEOUT)
            return
        if self._flow.paused and now >= self._flow.paused_at + config.send_timeout:
            self._transport.abort()
            return
        idle = now - self._t_recv
        if idle >= config.idle_timeout:
            self._transport.abort()
            return
        half = config.idle_timeout / 2
        if idle >= half and not self._ping_sent:
            self._ping_sent = True
            self._write(self._conn.send(Ping(b"cairn")))
        deadline = self._t_recv + (config.idle_timeout if self._ping_sent else half)
        if self._flow.paused:
            deadline = min(deadline, self._flow.paused_at + config.send_timeout)
        self._arm(min(deadline, now + self._server._tick))


class _Upgrade:
    """The WebSocket upgrade the server is given (`cairn.net.http.Upgrade`)."""

    __slots__ = ()

    def handshake(self, headers: dict[str, str]) -> bytes | Response:
        return handshake(headers)

    def attach(
        self, server: HttpServer, request: Request, handler: Any, transport: asyncio.Transport,
        accepted: bytes, trailing: bytes,
    ) -> None:  # fmt: skip
        WebSocket(server, request, handler).attach(transport, accepted, trailing)


UPGRADE: Final = _Upgrade()
