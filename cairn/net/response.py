"""What a handler answers: a `Response`, `bytes` or `(status, body)` (both JSON), or a `Stream`;
and the transport's one error shape, `{"error": {"code", "message"}}` (`error_body`, `error_response`).

How these become bytes on the wire is `cairn.net.protocol`'s job (status lines and header blocks
built once, a template per content type and status).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, Final

import msgspec

from cairn.net.request import Request

__all__ = [
    "EVENT_STREAM",
    "JSON",
    "Handler",
    "Response",
    "Result",
    "Stream",
    "StreamHandler",
    "error_body",
    "error_response",
]

JSON: Final = "application/json"
EVENT_STREAM: Final = "text/event-stream"


class Response(msgspec.Struct):
    """A complete response. Handlers may also return `bytes` or `(status, body)` (both JSON)."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] | None = None


class Stream:
    """A streamed response: `chunks` yields bytes, each written as it comes (SSE by default).

    Each chunk is written once the client has drained the previous ones. With `keep_alive=False`
    the connection closes when the stream ends.
    """

    __slots__ = ("chunks", "content_type", "headers", "keep_alive", "status")

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        status: int = 200,
        content_type: str = EVENT_STREAM,
        headers: list[tuple[str, str]] | None = None,
        keep_alive: bool = True,
    ) -> None:
        self.chunks = chunks
        self.status = status
        self.content_type = content_type
        self.headers = headers
        self.keep_alive = keep_alive


Result = Response | bytes | tuple[int, bytes]
Handler = Callable[[Request], Result | Awaitable[Result]]
StreamHandler = Callable[[Request], Any]


def error_body(status: int, code: str, message: str, field: str | None = None) -> bytes:
    """The JSON error shape `{"error": {"code", "message"[, "field"]}}`.

    `status` is not part of the body; it is taken so call sites read like `error_response`.
    """
    del status
    err: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    return msgspec.json.encode({"error": err})


def error_response(status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """A JSON error `Response` with a stable `code`."""
    return Response(status, error_body(status, code, message), JSON, headers)
