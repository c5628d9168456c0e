"""The HTTP/WebSocket transport on real sockets: a server on a spare port, under uvloop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import uvloop
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import generate_accept_token

from cairn.net.config import ServerConfig
from cairn.net.http import HttpServer
from cairn.net.request import Request
from cairn.net.response import Stream
from cairn.net.router import Router
from cairn.net.websocket import UPGRADE, ConnectionClosed, WebSocket, WebSocketEndpoint


def run(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(asyncio.wait_for(fn(*args, **kwargs), 15))

    return wrapper


@contextlib.asynccontextmanager
async def serving(router: Router, **config: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(router, ServerConfig(**config), upgrade=UPGRADE)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.shutdown(timeout=2)


async def request(
    port: int, raw: bytes, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send one raw request (on `conn` if given) and read one content-length response."""
    reader, writer = conn or await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    if conn is None:
        writer.close()
    return int(lines[0].split()[1]), headers, body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the server closes the connection within `seconds` (reading and dropping data)."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            if not data:
                return True
    except (TimeoutError, ConnectionError):
        return isinstance(reader.exception(), ConnectionError)
    return False


def basic_router() -> Router:
    r = Router()
    r.add("GET", "/hello", lambda req: b'{"hello":"world"}')

    async def slow(req: Request) -> bytes:
        await asyncio.sleep(float(req.query.get("t", "0.3")))
        return b'{"slow":true}'

    r.add("GET", "/slow", slow)
    r.add("POST", "/echo", lambda req: b'{"n":%d}' % len(req.body))
    return r


# -- HTTP ---------------------------------------------------------------------------------------


@run
async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async with serving(basic_router()) as server:
        conn = await asyncio.open_connection("127.0.0.1", server.port)
        for _ in range(3):
            status, headers, body = await request(server.port, get("/hello"), conn)
            assert status == 200 and body == b'{"hello":"world"}' and "connection" not in headers
        status, _, body = await request(server.port, b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", conn)
        assert (status, body) == (200, b'{"n":3}')
        conn[1].close()


@run
async def test_slow_loris_is_dropped_while_others_are_served() -> None:
    async with serving(basic_router(), header_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /hello HTTP/1.1\r\n")
        started = time.monotonic()

        async def dribble() -> None:
            with contextlib.suppress(ConnectionError):
                for i in range(30):
                    await asyncio.sleep(0.05)
                    writer.write(b"X-Drip-%d: 1\r\n" % i)

        dripper = asyncio.create_task(dribble())
        await asyncio.sleep(0.1)
        assert (await request(server.port, get("/hello")))[0] == 200  # others are served meanwhile
        assert await closed_within(reader, 1.0)
        assert 0.25 <= time.monotonic() - started < 1.0
        dripper.cancel()
        writer.close()
        assert (await request(server.port, get("/hello")))[0] == 200


@run
async def test_idle_and_half_open_clients_are_dropped() -> None:
    async with serving(basic_router(), idle_timeout=0.3) as server:
        silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", server.port)  # never speaks
        conn = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await request(server.port, get("/hello"), conn))[0] == 200  # then goes quiet
        assert await closed_within(silent_reader, 1.0)
        assert await closed_within(conn[0], 1.0)
        assert server.connections == 0
        silent_writer.close()
        conn[1].close()


@run
async def test_big_body_gets_413_and_the_server_still_answers() -> None:
    async with serving(basic_router(), max_body=1024) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = b"x" * 200_000
        writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)  # sent in full: the server drains it instead of resetting
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 ")
        assert b"connection: close" in head
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        err = msgspec.json.decode(await reader.readexactly(length))
        assert err["error"]["code"] == "body_too_large"
        assert await closed_within(reader, 3.0)
        writer.close()
        assert (await request(server.port, get("/hello")))[0] == 200


@run
async def test_pipelined_requests_over_a_socket_answer_in_order() -> None:
    async with serving(basic_router()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/slow?t=0.1") + get("/hello") + get("/slow?t=0") + get("/hello"))
        bodies = []
        for _ in range(4):
            _, _, body = await request(server.port, b"", (reader, writer))
            bodies.append(body)
        assert bodies == [b'{"slow":true}', b'{"hello":"world"}', b'{"slow":true}', b'{"hello":"world"}']
        writer.close()


# -- SSE ----------------------------------------------------------------------------------------


@run
async def test_sse_delivers_chunks_and_a_disconnect_frees_the_generator() -> None:
    freed = asyncio.Event()

    async def events(req: Request) -> Stream:
        async def gen() -> AsyncIterator[bytes]:
            try:
                for i in range(10_000):
                    yield b"id: %d\ndata: {}\n\n" % i
                    await asyncio.sleep(0.01)
            finally:
                freed.set()

        return Stream(gen())

    r = basic_router()
    r.add("GET", "/v1/events", events, stream=True)
    async with serving(r) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/v1/events"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"content-type: text/event-stream" in head and b"transfer-encoding: chunked" in head
        got = b""
        while got.count(b"data: {}") < 3:
            got += await reader.read(4096)
        assert b"id: 0\ndata: {}\n\n" in got and b"id: 2\n" in got
        writer.close()
        await asyncio.wait_for(freed.wait(), 2)
        await asyncio.sleep(0.05)
        assert server.connections == 0


# -- WebSocket ----------------------------------------------------------------------------------


class WSClient:
    """A small test client: handshake by hand, frames with wsproto's client side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = Connection(ConnectionType.CLIENT)
        self.parts: list[Any] = []

    @classmethod
    async def connect(cls, port: int, path: str = "/ws") -> WSClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path.encode(), key)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert b"sec-websocket-accept: " + generate_accept_token(key) in head
        return cls(reader, writer)

    def send(self, data: str | bytes) -> None:
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self.writer.write(self.conn.send(event))

    async def receive(self) -> Any:
        """The next whole message (str or bytes), Pong, or CloseConnection."""
        while True:
            for event in self.conn.events():
                if isinstance(event, TextMessage | BytesMessage):
                    self.parts.append(event.data)
                    if event.message_finished:
                        parts, self.parts = self.parts, []
                        return ("" if isinstance(event, TextMessage) else b"").join(parts)
                elif isinstance(event, Pong | CloseConnection):
                    return event
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            self.conn.receive_data(data or None)


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


class SyncEcho(WebSocketEndpoint):
    def on_message(self, ws: WebSocket, data: str | bytes) -> None:
        ws.send_nowait(data)


@pytest.mark.parametrize("path", ["/ws", "/ws-sync"])
@run
async def test_websocket_echoes_text_and_binary_frames(path: str) -> None:
    r = basic_router()
    r.add_websocket("/ws", echo)
    r.add_websocket("/ws-sync", SyncEcho())
    async with serving(r) as server:
        ws = await WSClient.connect(server.port, path)
        ws.send("héllo ⛏")
        assert await ws.receive() == "héllo ⛏"
        ws.send(b"\x00\x01\xff")
        assert await ws.receive() == b"\x00\x01\xff"
        big = "x" * 70_000  # 64-bit length frames both ways
        ws.send(big)
        assert await ws.receive() == big
        ws.writer.write(ws.conn.send(Ping(b"are you there")))
        pong = await ws.receive()
        assert isinstance(pong, Pong) and pong.payload == b"are you there"
        ws.writer.write(ws.conn.send(CloseConnection(code=1000)))
        closing = await ws.receive()
        assert isinstance(closing, CloseConnection) and closing.code == 1000
        ws.writer.close()
        # A plain GET on the WebSocket path is told to upgrade.
        status, headers, _ = await request(server.port, get(path))
        assert status == 426 and headers["upgrade"] == "websocket"


@run
async def test_websocket_oversize_message_closes_with_1009() -> None:
    r = basic_router()
    r.add_websocket("/ws", echo)
    async with serving(r, ws_max_message=1000) as server:
        ws = await WSClient.connect(server.port)
        ws.send(b"y" * 1000)  # exactly the cap is fine
        assert await ws.receive() == b"y" * 1000
        ws.send(b"z" * 1001)
        closing = await ws.receive()
        assert isinstance(closing, CloseConnection) and closing.code == 1009
        ws.writer.close()


@run
async def test_websocket_message_in_endless_empty_fragments_closes_with_1009() -> None:
    """Empty fragments add no bytes, but each is held until the message ends: they count against the cap."""
    r = basic_router()
    r.add_websocket("/ws", echo)
    async with serving(r, ws_max_message=1000) as server:
        ws = await WSClient.connect(server.port)
        ws.writer.write(ws.conn.send(TextMessage(data="ab", message_finished=False)))
        ws.writer.write(ws.conn.send(TextMessage(data="cd", message_finished=True)))
        assert await ws.receive() == "abcd"  # a fragmented message within the cap is whole
        ws.writer.write(ws.conn.send(TextMessage(data="", message_finished=False)))
        for _ in range(20):  # 64 bytes each: the cap is passed at the 16th
            ws.writer.write(ws.conn.send(TextMessage(data="", message_finished=False)))
        closing = await ws.receive()
        assert isinstance(closing, CloseConnection) and closing.code == 1009
        ws.writer.close()


@run
async def test_websocket_server_close_with_or_without_await() -> None:
    async def refuse(ws: WebSocket) -> None:
        await ws.close(4401, "unauthorized")

    async def bye(ws: WebSocket) -> None:
        ws.close(4000, "bye")
        await ws.wait_closed()

    r = basic_router()
    r.add_websocket("/refuse", refuse)
    r.add_websocket("/bye", bye)
    async with serving(r) as server:
        for path, code in [("/refuse", 4401), ("/bye", 4000)]:
            ws = await WSClient.connect(server.port, path)
            closing = await ws.receive()
            assert isinstance(closing, CloseConnection) and closing.code == code
            ws.writer.write(ws.conn.send(closing.response()))
            assert await closed_within(ws.reader, 2.0)
            ws.writer.close()


@run
async def test_websocket_handler_sees_close_and_request() -> None:
    seen: list[Any] = []

    async def handler(ws: WebSocket) -> None:
        seen.append(ws.request.params)
        try:
            await ws.receive()
        except ConnectionClosed as exc:
            seen.append(exc.code)

    r = basic_router()
    r.add_websocket("/session/{player}", handler)
    async with serving(r) as server:
        ws = await WSClient.connect(server.port, "/session/steve")
        ws.writer.write(ws.conn.send(CloseConnection(code=4000, reason="bye")))
        assert isinstance(await ws.receive(), CloseConnection)
        await asyncio.sleep(0.05)
        assert seen == [{"player": "steve"}, 4000]
        ws.writer.close()


# -- shutdown -----------------------------------------------------------------------------------


@run
async def test_graceful_shutdown_finishes_an_in_flight_request() -> None:
    r = basic_router()
    server = HttpServer(r, ServerConfig(), upgrade=UPGRADE)
    await server.start("127.0.0.1", 0)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(get("/slow?t=0.3"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    shutdown = asyncio.create_task(server.shutdown(timeout=5))
    assert await closed_within(idle_reader, 0.5)  # idle keep-alive connections go at once
    status, headers, body = await request(server.port, b"", (reader, writer))
    assert (status, body) == (200, b'{"slow":true}')
    assert headers["connection"] == "close"
    await shutdown
    assert time.monotonic() - started < 1.0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
    writer.close()
    idle_writer.close()


@run
async def test_shutdown_ends_streams_and_websockets_politely() -> None:
    async def events(req: Request) -> Stream:
        async def gen() -> AsyncIterator[bytes]:
            yield b"data: hi\n\n"
            await asyncio.sleep(3600)
            yield b"never"

        return Stream(gen())

    r = basic_router()
    r.add("GET", "/v1/events", events, stream=True)
    r.add_websocket("/ws", echo)
    server = HttpServer(r, ServerConfig(), upgrade=UPGRADE)
    await server.start("127.0.0.1", 0)
    sse_reader, sse_writer = await asyncio.open_connection("127.0.0.1", server.port)
    sse_writer.write(get("/v1/events"))
    await sse_reader.readuntil(b"data: hi\n\n\r\n")
    ws = await WSClient.connect(server.port)
    shutdown = asyncio.create_task(server.shutdown(timeout=5))
    closing = await ws.receive()
    assert isinstance(closing, CloseConnection) and closing.code == 1001
    ws.writer.write(ws.conn.send(closing.response()))
    assert await sse_reader.read() == b"0\r\n\r\n"  # the chunked body ends, then the connection
    started = time.monotonic()
    await shutdown
    assert time.monotonic() - started < 1.0
    assert server.connections == 0
    sse_writer.close()
    ws.writer.close()


@run
async def test_a_server_without_an_upgrade_refuses_websocket_routes_at_start() -> None:
    # HTTP does not import WebSocket: the upgrade is injected, and forgetting it is caught at start.
    r = basic_router()
    r.add_websocket("/ws", echo)
    with pytest.raises(ValueError, match="no upgrade"):
        await HttpServer(r, ServerConfig()).start("127.0.0.1", 0)
