"""Pipelined client connections for the load: HTTP/1.1 (httptools) and the WebSocket session (wsproto).

A send never waits for an earlier reply: requests are written when they are due and their
replies are matched in order (HTTP pipelining) or by frame id (WebSocket).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools
import msgspec
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, Request, TextMessage

# on_reply(scheduled, done, status, body, meta)
OnReply = Callable[[float, float, int, bytes, Any], None]
clock = time.monotonic


class ConnectionLost(Exception):
    pass


class HttpPipe(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with any number of requests in flight."""

    def __init__(self, host: str, port: int, key: str | None) -> None:
        self.host = f"{host}:{port}"
        self.auth = f"Authorization: Bearer {key}\r\n" if key else ""
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.parser = httptools.HttpResponseParser(self)
        self.waiting: deque[tuple[float, OnReply, Any]] = deque()
        self.chunks: list[bytes] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int, key: str | None) -> HttpPipe:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(host, port, key), host, port)
        return proto

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)
        now = clock()
        while self.waiting:
            sched, cb, meta = self.waiting.popleft()
            cb(sched, now, 0, b"", meta)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        done = clock()
        body = b"".join(self.chunks)
        self.chunks = []
        sched, cb, meta = self.waiting.popleft()
        cb(sched, done, self.parser.get_status_code(), body, meta)

    # sending
    def head(self, method: str, path: str, length: int | None, ctype: str = "application/json") -> bytes:
        body = f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n" if length is not None else ""
        return f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth}{body}\r\n".encode()

    def send(self, method: str, path: str, body: bytes | None, scheduled: float, cb: OnReply, meta: Any = None) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.waiting.append((scheduled, cb, meta))
        raw = self.head(method, path, None if body is None else len(body))
        self.transport.write(raw + body if body is not None else raw)
        return True

    async def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

        def done(_s: float, _d: float, status: int, data: bytes, _m: Any) -> None:
            if not fut.done():
                fut.set_result((status, data))

        if not self.send(method, path, body, clock(), done):
            raise ConnectionLost("connection closed")
        status, data = await fut
        if status == 0:
            raise ConnectionLost("connection closed")
        return status, data

    @property
    def inflight(self) -> int:
        return len(self.waiting)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class WsPipe(asyncio.Protocol):
    """One WebSocket session (`GET /v1/session`); a batch is one text frame `{"id", "ops"}`."""

    def __init__(self, host: str, port: int, key: str | None) -> None:
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.target = (host, port, key)
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.waiting: dict[int, tuple[float, OnReply, Any]] = {}
        self.next_id = 1
        self.parts: list[str] = []
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.dec = msgspec.json.Decoder()

    @classmethod
    async def open(cls, host: str, port: int, key: str | None) -> WsPipe:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(host, port, key), host, port)
        await asyncio.wait_for(proto.ready, 10)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        host, port, key = self.target
        extra = [(b"authorization", f"Bearer {key}".encode())] if key else []
        self.transport.write(self.ws.send(Request(host=f"{host}:{port}", target="/v1/session", extra_headers=extra)))

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for ev in self.ws.events():
            if isinstance(ev, TextMessage):
                self.parts.append(ev.data)
                if ev.message_finished:
                    text, self.parts = "".join(self.parts), []
                    self._reply(text.encode())
            elif isinstance(ev, AcceptConnection):
                self.ready.set_result(None)
            elif isinstance(ev, Ping):
                self._write(self.ws.send(ev.response()))
            elif isinstance(ev, RejectConnection | CloseConnection):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionLost(f"session refused: {ev!r}"))
                if self.transport is not None:
                    self.transport.close()
            elif isinstance(ev, BytesMessage):
                pass

    def _reply(self, raw: bytes) -> None:
        done = clock()
        msg = self.dec.decode(raw)
        fid = msg.get("id") if isinstance(msg, dict) else None
        entry = self.waiting.pop(fid, None) if type(fid) is int else None
        if entry is None:
            return  # a pushed event or an unmatched frame
        sched, cb, meta = entry
        cb(sched, done, 200 if "error" not in msg else 400, raw, meta)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.ready.done():
            self.ready.set_exception(ConnectionLost("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        now = clock()
        for sched, cb, meta in self.waiting.values():
            cb(sched, now, 0, b"", meta)
        self.waiting.clear()

    def send_ops(self, ops_json: bytes, scheduled: float, cb: OnReply, meta: Any = None) -> bool:
        """`ops_json` is the encoded list of ops."""
        if self.transport is None or self.transport.is_closing():
            return False
        fid = self.next_id
        self.next_id += 1
        self.waiting[fid] = (scheduled, cb, meta)
        frame = b'{"id":%d,"ops":%s}' % (fid, ops_json)
        self.transport.write(self.ws.send(TextMessage(data=frame.decode())))
        return True

    @property
    def inflight(self) -> int:
        return len(self.waiting)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
