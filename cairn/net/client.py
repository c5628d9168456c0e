"""A small keep-alive HTTP/1.1 client on asyncio + httptools' response parser.

Used by `cairn demo` and `cairn bench`; it speaks JSON to one Cairn server.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httptools
import msgspec


class HttpError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class _Response:
    __slots__ = ("body", "done", "headers", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(raw)
        resp = _Response()
        parser = httptools.HttpResponseParser(resp)
        while not resp.done:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            parser.feed_data(data)
        resp.status = parser.get_status_code()
        return resp.status, resp.headers, b"".join(resp.body)

    def close(self) -> None:
        self.writer.close()


class HttpClient:
    """JSON over keep-alive connections; `max_connections` requests may be in flight at once."""

    def __init__(self, base: str, key: str | None = None, max_connections: int = 64) -> None:
        u = urlsplit(base)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.key = key
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(max_connections)
        self.enc = msgspec.json.Encoder()

    def _raw(self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self.key:
            lines.append(f"Authorization: Bearer {self.key}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")

    async def raw(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; returns (status, headers, body bytes)."""
        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            if conn is None:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                conn = Connection(reader, writer)
            try:
                status, hdrs, data = await conn.request(self._raw(method, path, body, headers))
            except BaseException:
                conn.close()
                raise
            if hdrs.get("connection", "").lower() == "close":
                conn.close()
            else:
                self.idle.append(conn)
            return status, hdrs, data

    async def call(self, method: str, path: str, obj: Any = None) -> tuple[int, Any]:
        body = None if obj is None else self.enc.encode(obj)
        status, _, data = await self.raw(method, path, body)
        return status, msgspec.json.decode(data) if data else None

    async def get(self, path: str) -> Any:
        status, body = await self.call("GET", path)
        if status >= 400:
            raise HttpError(status, body)
        return body

    async def post(self, path: str, obj: Any = None) -> Any:
        status, body = await self.call("POST", path, obj if obj is not None else {})
        if status >= 400:
            raise HttpError(status, body)
        return body

    # the demo's Client protocol
    async def hint(self, hunt: str, player: str, pos: list[int]) -> dict[str, Any]:
        status, body = await self.call("POST", f"/v1/hunts/{hunt}/hint", {"player": player, "pos": pos})
        return dict(body) if status == 200 else {}

    async def dig(self, hunt: str, player: str, pos: list[int], at: list[int], rid: str) -> dict[str, Any]:
        payload = {"player": player, "pos": pos, "at": at, "request_id": rid}
        status, body = await self.call("POST", f"/v1/hunts/{hunt}/dig", payload)
        return dict(body) if status == 200 else {}

    async def grants(self, player: str) -> list[dict[str, Any]]:
        body = await self.get(f"/v1/players/{player}/grants")
        return list(body["grants"])

    async def ack(self, grant_id: str) -> dict[str, Any]:
        return dict(await self.post(f"/v1/grants/{grant_id}/ack"))

    async def close(self) -> None:
        for c in self.idle:
            c.close()
        self.idle.clear()
