"""A parsed HTTP request (`Request`), the file a large body is spooled to (`Spool`), and the
helpers that turn httptools' raw bytes into names a handler reads.

Everything here is built per request by `cairn.net.protocol`, so it is made to be cheap: header
names and the query are decoded only when a handler reads them.
"""

from __future__ import annotations

import tempfile
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

import msgspec

from cairn.net.config import ServerConfig

__all__ = ["Request", "Spool"]


_HEADER_NAMES: dict[bytes, str] = {}  # raw header name -> lower-case str, bounded
_HEADER_NAMES_MAX: Final = 1024


#: How clients spell the header every API call reads (RFC 9110 names are case-insensitive).
_AUTHORIZATION: Final = frozenset((b"Authorization", b"authorization", b"AUTHORIZATION"))


def _header_name(raw: bytes) -> str:
    name = _HEADER_NAMES.get(raw)
    if name is None:
        name = raw.decode("latin-1").lower()
        if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
            _HEADER_NAMES[raw] = name
    return name


class Request(msgspec.Struct, gc=False):
    """One parsed HTTP request.

    `params` holds the decoded path parameters. `headers` (lower-case names, repeated
    headers joined with ", ") and `query` (percent-decoded, last value wins) are built on
    first access from `raw_headers` and `raw_query`, so a handler pays only for what it reads.
    A msgspec Struct because it is built on every request and that is ~3x cheaper than a
    slotted class; untracked by the cycle collector (`gc=False`) because it holds only bytes,
    strings and containers of them, so it can never be part of a cycle.
    """

    method: str
    path: str
    raw_query: bytes
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    client: str
    params: dict[str, str]
    #: The first `Authorization` header's raw value when picked out while parsing; read it with `auth()`.
    authorization: bytes | None = None
    #: A `spool=True` route's body when it spanned reads: a `Spool` (then `body` is empty).
    spool: Any = None
    _headers: dict[str, str] | None = None
    _query: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Request headers by lower-case name."""
        h = self._headers
        if h is None:
            h = self._headers = {}
            names = _HEADER_NAMES
            for raw_name, raw_value in self.raw_headers:
                name = names.get(raw_name)
                if name is None:
                    name = _header_name(raw_name)
                value = raw_value.decode("latin-1")
                old = h.setdefault(name, value)
                if old is not value:
                    h[name] = old + ", " + value
        return h

    def auth(self) -> bytes | None:
        """The raw value of the first `Authorization` header, however it is spelt."""
        a = self.authorization
        return a if a is not None else self.header(b"authorization")

    def header(self, name: bytes) -> bytes | None:
        """The raw value of the first header called `name` (lower-case), without building `headers`."""
        n = len(name)
        for raw_name, raw_value in self.raw_headers:
            if len(raw_name) == n and (raw_name == name or raw_name.lower() == name):
                return raw_value
        return None

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, percent-decoded; a repeated name keeps its last value."""
        q = self._query
        if q is None:
            raw = self.raw_query
            q = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)) if raw else {}
            self._query = q
        return q

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        client: str = "127.0.0.1",
        params: dict[str, str] | None = None,
    ) -> Request:
        """A request made by hand, for testing handlers without a server."""
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        auth = next((v for k, v in raw if k.lower() == b"authorization"), None)
        return cls(method, path, query.encode(), raw, body, client, params or {}, auth)


class Uploads(Protocol):
    """The server side of spooling (`cairn.net.http.HttpServer`): where bodies go and how many are open."""

    config: ServerConfig
    _spools: int


class Spool:
    """A request body kept in an unnamed temporary file: `file` (read it from the start), `size`."""

    __slots__ = ("_server", "file", "size")

    def __init__(self, server: Uploads) -> None:
        self.file = tempfile.TemporaryFile(dir=server.config.spool_dir or None)  # noqa: SIM115 (closed by close())
        self.size = 0
        self._server: Uploads | None = server
        server._spools += 1

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.size += len(chunk)

    def done(self) -> None:
        """The whole body is in: flush it and rewind, for the handler to read."""
        self.file.flush()
        self.file.seek(0)

    def close(self, *_: Any) -> None:
        """Free the file and the upload slot (idempotent)."""
        if self._server is not None:
            self._server._spools -= 1
            self._server = None
            self.file.close()
