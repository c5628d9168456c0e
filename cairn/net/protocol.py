"""One HTTP/1.1 connection on httptools (`HttpProtocol`): limits, timeouts, pipelining, SSE
streaming, and the serialization of responses.

The protocol parses a request, routes it (`cairn.net.router`), runs its handler and writes the
answer. Responses on one connection leave in request order, whatever mix of sync and async
handlers produced them. Exceptions from handlers go to the server's `on_error(exc) ->
Response | None`. None, or an exception from `on_error` itself, gives a 500 `internal` and a
logged traceback.

The transport's own errors use `{"error": {"code", "message"}}` with the stable codes
`bad_request` (400), `not_found` (404), `method_not_allowed` (405), `body_too_large` (413),
`expectation_failed` (417), `upgrade_required` (426), `headers_too_large` (431), `internal` (500),
`shutting_down` (503), `too_many_uploads` (503) and `insufficient_storage` (507).

The per-request path reads only globals of this module, so what it reads or calls a method on
lives here: the response templates (refreshed once a second with the Date header by
`_refresh_date`) and `_METHOD_NAMES`. (A method called on an imported name compiles to an
attribute load and a bound-method object instead of LOAD_METHOD.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from http import HTTPStatus
from types import CoroutineType
from typing import Any, Final, Protocol

import httptools

from cairn.net.config import ServerConfig
from cairn.net.flow import FlowControl, set_reading
from cairn.net.request import _AUTHORIZATION, Request, Spool
from cairn.net.response import EVENT_STREAM, JSON, Response, Stream, error_response
from cairn.net.router import _PLAIN, _STREAM, _WEBSOCKET, Route, Router, _allow

__all__ = ["CORK_AT", "Cork", "Host", "HttpProtocol"]

# The transport's log, whichever of its modules writes.
log = logging.getLogger("cairn.net.http")


class Host(Protocol):
    """What a connection asks of the server that accepted it (`cairn.net.http.HttpServer`)."""

    router: Router
    config: ServerConfig
    upgrade: Any
    on_error: Callable[[Exception], Response | None] | None
    _tick: float
    _shutting_down: bool
    _spools: int
    #: The fast replies of this loop iteration, and whether they are held to its end (`Cork`).
    _cork: Cork

    def _admit_conn(self, conn: HttpProtocol, address: str) -> bool: ...

    def _drop_conn(self, conn: Any) -> None: ...

    def auth_brake(self, address: str, on_connection: int) -> tuple[float, bool]: ...


_INTERNAL: Final = error_response(500, "internal", "internal error")
_NOT_FOUND: Final = error_response(404, "not_found", "no such path")
_BAD_REQUEST: Final = error_response(400, "bad_request", "malformed HTTP request")
_TOO_LARGE: Final = error_response(413, "body_too_large", "request body is too large")
_HEADERS_TOO_LARGE: Final = error_response(431, "headers_too_large", "request headers are too large")


# ---------------------------------------------------------------------------------------------
# Serialization: status lines and header blocks built once


_STATUS_LINES: Final[dict[int, bytes]] = {int(s): b"HTTP/1.1 %d %s\r\n" % (s, s.phrase.encode()) for s in HTTPStatus}
_NO_BODY_STATUS: Final = frozenset({204, 304})
_METHOD_NAMES: Final[dict[bytes, str]] = {
    m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")
}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status {status}")
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d Unknown\r\n" % status
    return line


def _http_date() -> bytes:
    return b"date: " + formatdate(usegmt=True).encode() + b"\r\n"


def _make_template(content_type: str, status: int) -> bytes:
    """b"<status line><date><content-type><content-length: %d>\r\n\r\n%s", to fill with `%`."""
    return b"%s%scontent-type: %s\r\ncontent-length: %%d\r\n\r\n%%s" % (
        _status_line(status).replace(b"%", b"%%"),
        _date_line,
        content_type.encode("latin-1"),
    )


_date_line: bytes = _http_date()
# content type -> status -> template; the inner dicts keep their identity across refreshes.
_templates: dict[str, dict[int, bytes]] = {JSON: {}}
_json_templates: Final = _templates[JSON]
_json_ok: bytes = _make_template(JSON, 200)  # the hottest template, read directly by the fast path


def _refresh_date() -> None:
    """Called once a second by running servers: the Date header, and templates built with it."""
    global _date_line, _json_ok
    _date_line = _http_date()
    for by_status in _templates.values():
        by_status.clear()
    _json_ok = _make_template(JSON, 200)


def _build_template(content_type: str, status: int) -> bytes | None:
    if status in _NO_BODY_STATUS or status < 200:
        return None
    by_status = _templates.get(content_type)
    if by_status is None:
        if len(_templates) >= 64:
            return None  # many ad-hoc content types: build each response on the general path
        by_status = _templates[content_type] = {}
    tmpl = by_status[status] = _make_template(content_type, status)
    return tmpl


def _header_lines(headers: list[tuple[str, str]]) -> bytes:
    out = []
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid response header {name!r}")
        out.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    return b"".join(out)


# Render modes: bits of one int per request.
_KA: Final = 1  # keep the connection open after this response
_HTTP10: Final = 2  # the client speaks HTTP/1.0
_HEAD: Final = 4  # HEAD request: headers only
_LINGER: Final = 8  # close after this response, draining the client's unread upload first


def _render(res: Any, mode: int) -> bytes:
    """Serialize a handler result; `mode == _KA` with no extra headers is the template fast path."""
    t = type(res)
    if t is bytes:
        if mode == _KA:
            return _json_ok % (len(res), res)
        status, body, ctype, extra = 200, res, JSON, None
    elif t is Response or isinstance(res, Response):
        status, body, ctype, extra = res.status, res.body, res.content_type, res.headers
    elif t is tuple and len(res) == 2:
        status, body = res
        ctype, extra = JSON, None
    else:
        raise TypeError(f"handler returned {t.__name__}; expected Response, bytes or (status, body)")
    if mode == _KA and extra is None:
        by_status = _json_templates if ctype is JSON else _templates.get(ctype)
        tmpl = by_status.get(status) if by_status is not None else None
        if tmpl is None:
            tmpl = _build_template(ctype, status)
        if tmpl is not None:
            return tmpl % (len(body), body)
    # General path: extra headers, connection management, HEAD, bodiless statuses.
    parts = [_status_line(status), _date_line]
    no_body = status in _NO_BODY_STATUS or status < 200
    if not no_body:
        parts.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (ctype.encode("latin-1"), len(body)))
    if extra:
        parts.append(_header_lines(extra))
    if not mode & _KA:
        parts.append(b"connection: close\r\n")
    elif mode & _HTTP10:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(b"\r\n")
    if not no_body and not mode & _HEAD:
        parts.append(body)
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# The protocol


class _Halt(Exception):
    """Raised from a parser callback to stop parsing the rest of the current read."""


class _Slot:
    """A response the pipeline owes: ready `data`, or a `task` still running.

    Stream slots carry `turn`, resolved when every earlier response has been written.
    """

    __slots__ = ("data", "mode", "request", "task", "turn")

    def __init__(
        self,
        mode: int,
        data: bytes | None = None,
        task: asyncio.Future[Any] | None = None,
        request: Request | None = None,
    ) -> None:
        self.mode = mode
        self.data = data
        self.task = task
        self.request = request
        self.turn: asyncio.Future[None] | None = None


_MAX_HEADERS: Final = 100  # header lines per request; beyond: 431

_STREAMED: Final = object()  # a stream task's result: it wrote its own bytes
_LINGER_SECONDS: Final = 2.0
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_SHUTTING_DOWN: Final = error_response(503, "shutting_down", "server is shutting down")
_EXPECT_FAILED: Final = error_response(417, "expectation_failed", "unsupported Expect header")
_TOO_MANY_UPLOADS: Final = error_response(
    503, "too_many_uploads", "too many uploads are being received; try again later", [("retry-after", "5")]
)
_NO_SPACE: Final = error_response(507, "insufficient_storage", "no room to keep the request body")


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parse with httptools, route, run handlers, write in order."""

    __slots__ = (
        "_auth",
        "_auth_failures",
        "_backlog",
        "_big",
        "_body",
        "_body_len",
        "_braked",
        "_cap",
        "_client",
        "_closed",
        "_config",
        "_cork",
        "_draining_close",
        "_flow",
        "_halted",
        "_ka_mode",
        "_limit",
        "_lingering",
        "_loop",
        "_max_body",
        "_max_header_bytes",
        "_out",
        "_parser",
        "_phase",
        "_plain_again",
        "_queue",
        "_raw",
        "_reading_paused",
        "_router",
        "_server",
        "_shutting_down",
        "_spill",
        "_t_begin",
        "_t_idle",
        "_t_linger",
        "_t_open",
        "_t_recv",
        "_targets",
        "_time",
        "_timer",
        "_transport",
        "_upgraded",
        "_url",
        "_ws_pending",
    )

    def __init__(self, server: Host) -> None:
        loop = asyncio.get_running_loop()
        config = server.config
        self._server = server
        self._router = server.router
        self._targets = server.router._targets
        self._cork = server._cork
        self._out: bytes | None = None  # fast replies not written yet: see _cork
        self._config = config
        self._loop = loop
        self._time = loop.time
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport = None  # type: ignore[assignment]
        self._flow = FlowControl(loop)
        self._client = ""
        self._queue: deque[_Slot] = deque()
        # Parsed requests waiting for the in-flight cap: (request, route, mode, early reply).
        self._backlog: deque[tuple[Request | None, Route | None, int, Any]] = deque()
        self._cap = config.max_inflight
        self._max_header_bytes = config.max_header_bytes
        self._timer: asyncio.TimerHandle | None = None
        self._t_recv = self._t_begin = self._t_idle = self._t_linger = self._t_open = 0.0
        self._phase = 0  # 0 between requests, 1 reading headers, 2 reading the body
        self._halted = False  # read no more requests on this connection
        self._closed = False
        self._draining_close = False  # close once every owed response is written
        self._lingering = False
        self._shutting_down = False
        self._reading_paused = False
        self._upgraded = False
        self._ws_pending: tuple[Request, Route] | None = None
        # An upgrade offer we do not take (h2c): the head to parse again as plain HTTP/1.1.
        self._plain_again: bytes | None = None
        # The request being parsed.
        self._url = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._auth: bytes | None = None
        self._auth_failures = 0  # 401s answered on this connection
        self._braked = False  # too many: stop parsing, close after the answer
        self._ka_mode = 0  # mode bits of a keep-alive response to this client, once known
        self._max_body = config.max_body
        self._big = False
        self._body: Any = None
        self._body_len = 0
        # Bytes of a head spanning reads (phase 1), or 0 once a body spanning reads was
        # checked (phase 2); -1 before either.
        self._spill = -1
        self._limit = config.max_body

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if isinstance(peer, tuple) and peer else ""
        if not self._server._admit_conn(self, self._client):
            self._closed = self._halted = True
            transport.abort()  # over a connection limit: refused before it costs a timer
            return
        self._t_recv = self._t_idle = self._t_open = now = self._time()
        self._timer = self._loop.call_at(now + self._server._tick, self._on_timer)
        if self._server._shutting_down:
            self._halted = True
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = self._halted = True
        self._out = None
        self._parser = None  # type: ignore[assignment]  # it refers back to us: free both without the collector
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _drop_slots(self._queue)
        body = self._body
        if body is not None and type(body) is not bytes and type(body) is not list:
            body.close()  # a spool still being received
        for req, _route, _mode, _early in self._backlog:
            if req is not None and req.spool is not None:
                req.spool.close()
        self._backlog.clear()
        self._flow.abort()
        self._server._drop_conn(self)

    def eof_received(self) -> bool | None:
        self._uncork()  # the transport closes when this returns: what was answered goes first
        if self._queue or self._backlog:
            # The client half-closed after sending: answer what it sent, then close.
            self._halted = self._draining_close = True
            head = self._queue[0] if self._queue else None
            if head is not None and head.turn is not None and head.task is not None:
                # A stream (an event stream) never ends by itself: a client that closed has left,
                # and its subscription must not wait for the next keep-alive write to find out.
                head.task.cancel()
            return True
        return None

    def pause_writing(self) -> None:
        self._flow.pause()
        self._update_reading()

    def resume_writing(self) -> None:
        self._flow.resume()
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        self._t_recv = self._time()
        if self._halted:
            return  # closing, lingering, or the request was the last one
        if len(data) > self._max_header_bytes:
            self._receive_big(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self._parse_failed(exc)
            return
        if self._phase:
            self._partial(data)

    def _receive_big(self, data: bytes) -> None:
        """A read big enough to hold a too-large head by itself: on_headers_complete measures."""
        self._big = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self._parse_failed(exc)
            return
        finally:
            self._big = False
        if self._phase:
            self._partial(data)

    def _parse_failed(self, exc: httptools.HttpParserError) -> None:
        if isinstance(exc, httptools.HttpParserCallbackError):
            if isinstance(exc.__context__, _Halt):
                return  # a callback already answered and stopped the parse
            log.error("HTTP parser callback failed", exc_info=exc.__context__)
            res = _INTERNAL
        else:
            res = _BAD_REQUEST
        if not self._halted:  # else: bytes after a final request, which we ignore
            self._halted = True
            self._reply(res, _LINGER)

    def _partial(self, data: bytes) -> None:
        """A request is still arriving after this read: bound it before reading on."""
        if self._phase == 1:
            # Its head spans reads: bound what httptools buffers for it.
            if self._spill < 0:
                self._spill = 0
            else:
                self._spill += len(data)
            if self._spill > self._max_header_bytes or len(self._raw) > _MAX_HEADERS:
                self._halted = True
                self._reply(_HEADERS_TOO_LARGE, _LINGER)
        elif self._spill < 0:
            # Its body spans reads (a small one rarely does): check what the head announced,
            # once, before reading on. Bodies are also counted as they arrive, in on_body.
            self._spill = 0
            length = 0
            expect = None
            for name, value in self._raw:
                if len(name) == 14 and name.lower() == b"content-length":
                    length = int(value)
                elif len(name) == 6 and name.lower() == b"expect":
                    expect = value
            route = self._route()
            if length > self._limit:
                self._halted = True
                self._reply(_TOO_LARGE, _LINGER)
            elif route is not None and (route.head is not None or route.spool) and not self._check_head(route):
                pass  # refused: answered, and the body is never read
            elif expect is not None:
                if expect.lower() != b"100-continue":
                    self._halted = True
                    self._reply(_EXPECT_FAILED, _LINGER)
                elif not self._queue and not self._backlog:
                    self._uncork()
                    self._transport.write(_CONTINUE)

    def _route_limit(self) -> int:
        """The body cap of the request being read: its route's own, else the server's."""
        self._route()
        return self._limit

    def _route(self) -> Route | None:
        """The route of the request being read; sets its body cap."""
        target = self._router.resolve(self._url)
        methods = target[2]
        route = None
        if methods is not None:
            raw_method = self._parser.get_method()
            route = methods.get(_METHOD_NAMES.get(raw_method) or raw_method.decode("latin-1"))
        self._limit = self._max_body if route is None or route.max_body is None else route.max_body
        return route

    def _check_head(self, route: Route) -> bool:
        """Run the route's head check on a request whose body is still to come; start its spool.

        False when refused: the answer is queued and the connection closes without reading on.
        """
        raw_method = self._parser.get_method()
        path, query, _methods, params = self._router.resolve(self._url)
        method = _METHOD_NAMES.get(raw_method) or raw_method.decode("latin-1")
        req = Request(method, path, query, list(self._raw), b"", self._client, params, self._auth)
        res: Any = None
        if route.head is not None:
            try:
                route.head(req)
            except Exception as exc:
                res = self._handler_error(exc, req)
        if res is None and route.spool:
            if self._server._spools >= self._config.max_uploads:
                res = _TOO_MANY_UPLOADS
            else:
                try:
                    spool = Spool(self._server)
                    body = self._body
                    for chunk in (() if body is None else [body] if type(body) is bytes else body):
                        spool.write(chunk)
                except OSError as exc:
                    log.error("could not spool a request body: %s", exc)
                    res = _NO_SPACE
                else:
                    self._body = spool
        if res is None:
            return True
        self._halted = True
        if type(res) is Response and res.status == 401:
            self._auth_failures += 1  # a refused key on an upload is a guess like any other
            delay = self._server.auth_brake(self._client, self._auth_failures)[0]
            if delay > 0 and not self._backlog:
                self._start_task(_answer_later(res, delay), req, _LINGER)
                return False
        self._reply(res, _LINGER)
        return False

    # -- httptools callbacks -------------------------------------------------------------------

    # No on_message_begin: one Python call less per request. A request begins, for the
    # header timeout, with its first URL bytes; per-request state is reset when it completes.

    def on_url(self, url: bytes) -> None:
        if self._phase == 0:
            self._phase = 1
            self._t_begin = self._t_recv
            self._url = url
        else:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Little else here: headers are decoded only if the handler reads them, and the
        # transport's own (content-length, expect) only matter for a body spanning reads.
        # `Authorization` in its usual spellings is kept aside, as every API call reads it (a scan of
        # the list cost more); `Request.auth()` falls back to the scan for any other spelling.
        self._raw.append((name, value))
        if name in _AUTHORIZATION and self._auth is None:
            self._auth = value

    def on_headers_complete(self) -> None:
        self._phase = 2
        if self._big or self._spill >= 0:
            # The head came in a big read or over several: measure it exactly.
            size = len(self._url) + sum(len(n) + len(v) for n, v in self._raw)
            if size > self._max_header_bytes or len(self._raw) > _MAX_HEADERS:
                self._fail(_HEADERS_TOO_LARGE)
            self._spill = -1

    def on_body(self, chunk: bytes) -> None:
        body = self._body
        n = self._body_len = len(chunk) if body is None else self._body_len + len(chunk)
        if n > self._limit and n > self._route_limit():
            self._fail(_TOO_LARGE)
        if body is None:
            self._body = chunk
        elif type(body) is list:
            body.append(chunk)
        elif type(body) is bytes:
            self._body = [body, chunk]
        else:
            try:
                body.write(chunk)  # a Spool
            except OSError as exc:
                log.error("could not spool a request body: %s", exc)
                self._fail(_NO_SPACE)

    def on_message_complete(self) -> None:
        self._phase = 0
        parser = self._parser
        if parser.should_upgrade() and self._ignored_upgrade():
            return  # parsed again, body and all, as plain HTTP/1.1 by _serve_plain
        raw_method = parser.get_method()
        method = _METHOD_NAMES.get(raw_method) or raw_method.decode("latin-1")
        target = self._targets.get(self._url)
        if target is None:
            target = self._router.resolve(self._url)
        path, query, methods, params = target
        body = self._body
        spool = None
        if body is None:
            body = b""
        elif type(body) is list:
            body = b"".join(body)
        elif type(body) is not bytes:
            spool, body = body, b""
            spool.done()
        if parser.should_keep_alive():
            mode = self._ka_mode
            if not mode:
                # HTTP/1.0 keep-alive must be said; a client keeps its version, so ask once.
                mode = self._ka_mode = _KA | _HTTP10 if parser.get_http_version() == "1.0" else _KA
        else:
            mode = 0
            self._halted = True  # the last request on this connection
        route = methods.get(method) if methods is not None else None
        req = Request(method, path, query, self._raw, body, self._client, params, self._auth)  # read-only by handlers
        if spool is not None:
            req.spool = spool
        self._raw = []
        self._auth = None
        self._body = None
        self._spill = -1
        self._limit = self._max_body
        if route is None or not route.fast or mode != _KA or self._queue or self._backlog:
            self._complete(req, route, methods, mode)
            if self._braked:
                raise _Halt  # the pipelined requests after a refused key are not read
            return
        # Fast path: a plain handler, nothing owed ahead of it: it runs right here.
        try:
            res = route.handler(req)
        except Exception as exc:
            res = self._handler_error(exc, req)
            if type(res) is Response and res.status == 401:
                self._auth_failed(res, req, mode)
                if self._braked:
                    raise _Halt from None
                return
        t = type(res)
        if t is bytes:
            # A 200: written now, or held to the end of the loop iteration when the server is busy
            # (`Cork`). Any other write on the connection writes what it holds first (`_uncork`).
            data = _json_ok % (len(res), res)
            cork = self._cork
            cork.replies += 1
            if not cork.scheduled:
                cork.scheduled = True
                self._loop.call_soon(cork.end)
            if not cork.on:
                self._transport.write(data)
                return
            out = self._out
            if out is None:
                self._out = data
                cork.held.append(self)
            else:
                self._out = out + data  # pipelined replies, in order
            return
        if t is not Response and t is not tuple and not isinstance(res, Response):
            self._start_task(res, req, mode)
            return
        try:
            data = _render(res, mode)
        except Exception as exc:
            data = self._render_failure(exc, req, mode)
        if self._out is not None:
            self._uncork()
        self._transport.write(data)

    def _uncork(self) -> None:
        """Write the held fast replies, if any, now (before anything else is written, or the transport closes)."""
        data = self._out
        if data is not None:
            self._out = None
            if not self._closed and not self._transport.is_closing():
                self._transport.write(data)

    def _complete(self, req: Request, route: Route | None, methods: dict[str, Route] | None, mode: int) -> None:
        """Every request off the fast path: errors, HEAD, streams, WebSockets, queued ones."""
        self._uncork()
        if req.method == "HEAD":
            mode |= _HEAD
            if route is None and methods is not None:
                get = methods.get("GET")
                if get is not None and get.kind == _PLAIN:
                    route = get
        if route is None:
            if methods is None:
                self._reply(_NOT_FOUND, mode)
            else:
                allow = [("allow", _allow(methods))]
                self._reply(error_response(405, "method_not_allowed", f"{req.method} is not allowed here", allow), mode)
            return
        if route.max_body is not None and len(req.body) > route.max_body:
            self._reply(_TOO_LARGE, mode)  # within the server's cap, so already read: keep the connection
            return
        if route.kind == _WEBSOCKET:
            self._websocket_request(req, route, mode)
        else:
            self._admit(req, route, mode)

    # -- dispatch and ordering -----------------------------------------------------------------

    def _admit(self, req: Request, route: Route, mode: int) -> None:
        """Run a request now, or park it while the in-flight cap is reached."""
        if len(self._queue) >= self._cap or self._backlog:
            self._backlog.append((req, route, mode, None))
            self._update_reading()
            return
        self._dispatch(req, route, mode)

    def _dispatch(self, req: Request, route: Route, mode: int) -> None:
        queue = self._queue
        if route.kind == _STREAM:
            slot = _Slot(mode, request=req)
            slot.turn = self._loop.create_future()
            if not queue:
                slot.turn.set_result(None)
            slot.task = task = self._loop.create_task(self._run_stream(slot, req, route))
            task.add_done_callback(self._on_task_done)
            queue.append(slot)
            self._update_reading()
            return
        try:
            res = route.handler(req)
        except Exception as exc:
            res = self._handler_error(exc, req)
            if type(res) is Response and res.status == 401:
                if req.spool is not None:
                    req.spool.close()
                self._auth_failed(res, req, mode)
                return
        t = type(res)
        if t is bytes or t is Response or t is tuple or isinstance(res, Response):
            if req.spool is not None:
                req.spool.close()
            self._send(res, mode, req)
        else:
            self._start_task(res, req, mode)

    def _start_task(self, res: Any, req: Request, mode: int) -> None:
        try:
            task = self._loop.create_task(res) if type(res) is CoroutineType else asyncio.ensure_future(res)
        except TypeError as exc:
            if req.spool is not None:
                req.spool.close()
            self._send(self._handler_error(exc, req), mode, req)
            return
        task.add_done_callback(self._on_task_done)
        if req.spool is not None:
            task.add_done_callback(req.spool.close)
        self._queue.append(_Slot(mode, None, task, req))
        if len(self._queue) >= self._cap:
            self._update_reading()

    def _reply(self, res: Any, mode: int, req: Request | None = None) -> None:
        """Answer the request just parsed, after everything owed before it."""
        if self._backlog:
            self._backlog.append((None, None, mode, res))
            return
        self._send(res, mode, req)

    def _send(self, res: Any, mode: int, req: Request | None = None) -> None:
        """Write a ready result now, or queue it behind the responses still running."""
        try:
            data = _render(res, mode)
        except Exception as exc:
            data = self._render_failure(exc, req, mode)
        if self._queue:
            self._queue.append(_Slot(mode, data))
            self._update_reading()
            return
        if self._closed or self._transport.is_closing():
            return
        self._uncork()
        self._transport.write(data)
        if not mode & _KA:
            self._close_after_write(mode)

    def _fail(self, res: Response) -> None:
        """A request we cannot read further: answer it, close after, stop parsing now."""
        self._halted = True
        self._reply(res, _LINGER)
        raise _Halt

    def _on_task_done(self, task: asyncio.Future[Any]) -> None:
        if not self._closed and not self._transport.is_closing():
            self._flush()

    def _flush(self) -> None:
        """Write every ready response at the head of the queue, in order; admit the backlog."""
        queue = self._queue
        out = []
        final = -1
        while queue:
            slot = queue[0]
            data = slot.data
            if data is None:
                task = slot.task
                assert task is not None
                if not task.done():
                    turn = slot.turn
                    if turn is not None:
                        if not turn.done():
                            turn.set_result(None)
                        if self._shutting_down:
                            task.cancel()
                    break
                data = self._task_result(slot, task)
            queue.popleft()
            if data:
                out.append(data)
            if not slot.mode & _KA:
                final = slot.mode
                break
        self._uncork()
        if out:
            self._transport.writelines(out)
        if final >= 0:
            self._close_after_write(final)
            return
        backlog = self._backlog
        while backlog and len(queue) < self._cap and not self._halted_for_good():
            req, route, mode, early = backlog.popleft()
            if route is None:
                self._send(early, mode)
            else:
                assert req is not None
                self._dispatch(req, route, mode)
        if not queue and not backlog:
            self._t_idle = self._time()
            if self._draining_close and not self._closed:
                self._transport.close()
                return
        self._update_reading()

    def _halted_for_good(self) -> bool:
        return self._closed or self._transport.is_closing()

    def _task_result(self, slot: _Slot, task: asyncio.Future[Any]) -> bytes:
        req = slot.request
        if task.cancelled():
            res: Any = _SHUTTING_DOWN if self._shutting_down else _INTERNAL
        else:
            exc = task.exception()
            if exc is not None:
                assert req is not None
                res = self._handler_error(exc, req)
                if type(res) is Response and res.status == 401:
                    self._auth_failures += 1
                    if self._server.auth_brake(self._client, self._auth_failures)[1]:
                        slot.mode &= ~_KA
                        self._halted = True
            else:
                res = task.result()
                if res is _STREAMED:
                    return b""
        mode = slot.mode
        if self._shutting_down and len(self._queue) == 1 and not self._backlog:
            mode &= ~_KA
            slot.mode = mode
        try:
            return _render(res, mode)
        except Exception as exc:
            return self._render_failure(exc, req, mode)

    def _auth_failed(self, res: Response, req: Request, mode: int) -> None:
        """Answer a refused key under the brake: later as failures mount, then closing."""
        self._auth_failures += 1
        delay, close = self._server.auth_brake(self._client, self._auth_failures)
        if close:
            self._braked = self._halted = True
            mode &= ~_KA
        if delay > 0:
            self._start_task(_answer_later(res, delay), req, mode)
        else:
            self._send(res, mode, req)

    def _handler_error(self, exc: BaseException, req: Request) -> Any:
        """Map a handler's exception through `on_error`; anything unmapped is a logged 500."""
        on_error = self._server.on_error
        if on_error is not None and isinstance(exc, Exception):
            try:
                res = on_error(exc)
            except Exception:
                log.exception("on_error failed")
                res = None
            if res is not None:
                return res
        log.error("unhandled error in %s %s", req.method, req.path, exc_info=exc)
        return _INTERNAL

    def _render_failure(self, exc: Exception, req: Request | None, mode: int) -> bytes:
        where = f"{req.method} {req.path}" if req is not None else "a response"
        log.error("could not serialize the result of %s", where, exc_info=exc)
        return _render(_INTERNAL, mode)

    def _update_reading(self) -> None:
        """Read while there is room: pause for write backpressure, the in-flight cap or a halt."""
        if self._closed or self._upgraded:
            return
        pause = not self._lingering and (
            self._flow.paused or self._halted or len(self._queue) >= self._cap or bool(self._backlog)
        )
        self._reading_paused = set_reading(self._transport, self._reading_paused, pause)

    # -- closing -------------------------------------------------------------------------------

    def _close_after_write(self, mode: int) -> None:
        self._uncork()
        self._halted = True
        _drop_slots(self._queue)
        self._backlog.clear()
        if self._closed or self._transport.is_closing():
            return
        if not mode & _LINGER:
            self._transport.close()
            return
        # Half-close and discard what the client still sends, so it reads our answer
        # instead of a reset.
        self._lingering = True
        self._t_linger = self._time()
        if self._transport.can_write_eof():
            self._transport.write_eof()
        self._update_reading()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._t_linger + _LINGER_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        """The connection's one lazy timer: enforce whichever deadline its state has."""
        self._timer = None
        if self._closed or self._upgraded:
            return
        config = self._config
        flow = self._flow
        now = self._time()
        if self._lingering:
            deadline = self._t_linger + _LINGER_SECONDS
        elif flow.paused:
            deadline = flow.paused_at + config.send_timeout
        elif self._reading_paused:
            deadline = float("inf")  # we stopped reading: the client is not the slow one
        elif self._phase == 1:
            deadline = self._t_begin + config.header_timeout
            if not self._ka_mode:  # the first request: its head is due soon after the connect
                deadline = min(deadline, self._t_open + config.first_request_timeout)
        elif self._phase == 2:
            deadline = self._t_recv + config.body_timeout
        elif self._queue or self._backlog:
            deadline = float("inf")
        else:
            # From the last request's start or the last async answer, not the last read: bytes
            # that never reach a URL (a dribbled method) do not keep a connection alive.
            deadline = max(self._t_begin, self._t_idle) + config.idle_timeout
            if not self._ka_mode:
                deadline = min(deadline, self._t_open + config.first_request_timeout)
        if now >= deadline:
            self._halted = True
            self._uncork()
            if flow.paused or self._lingering:
                self._transport.abort()
            else:
                self._transport.close()
            return
        self._timer = self._loop.call_at(min(deadline, now + self._server._tick), self._on_timer)

    def begin_shutdown(self) -> None:
        """Server shutdown: close if idle, else finish what is owed, then close."""
        self._shutting_down = True
        if self._closed or self._lingering:
            return
        self._halted = True
        self._uncork()
        if not self._queue and not self._backlog:
            self._transport.close()
            return
        self._draining_close = True
        self._update_reading()
        head = self._queue[0] if self._queue else None
        if head is not None and head.turn is not None and head.task is not None:
            head.task.cancel()  # a stream: end it politely (see _run_stream)

    def abort(self) -> None:
        """Drop the connection now."""
        if not self._closed:
            self._transport.abort()

    # -- streaming -----------------------------------------------------------------------------

    async def _run_stream(self, slot: _Slot, req: Request, route: Route) -> Any:
        try:
            res = route.handler(req)
            if hasattr(res, "__await__"):
                res = await res
        except Exception as exc:
            res = self._handler_error(exc, req)
            if type(res) is Response and res.status == 401:
                self._auth_failures += 1
                delay, close = self._server.auth_brake(self._client, self._auth_failures)
                if close:
                    slot.mode &= ~_KA
                    self._halted = True
                await asyncio.sleep(delay)
            return res
        if type(res) is bytes or type(res) is tuple or isinstance(res, Response):
            return res
        stream = res if isinstance(res, Stream) else Stream(res)
        chunks = stream.chunks
        if not hasattr(chunks, "__aiter__"):
            return self._handler_error(TypeError(f"stream handler returned {type(res).__name__}"), req)
        it: AsyncIterator[bytes] = chunks.__aiter__()
        try:
            assert slot.turn is not None
            await slot.turn
            chunked = slot.mode & (_KA | _HTTP10) == _KA
            if not chunked or not stream.keep_alive:
                slot.mode &= ~_KA  # the body, or the connection, ends with the stream
            head = [_status_line(stream.status), _date_line]
            head.append(b"content-type: %s\r\n" % stream.content_type.encode("latin-1"))
            if stream.content_type == EVENT_STREAM and not any(
                k.lower() == "cache-control" for k, _ in stream.headers or ()
            ):
                head.append(b"cache-control: no-cache\r\n")
            if stream.headers:
                head.append(_header_lines(stream.headers))
            if chunked:
                head.append(b"transfer-encoding: chunked\r\n")
            if not slot.mode & _KA:
                head.append(b"connection: close\r\n")
            head.append(b"\r\n")
            transport, flow = self._transport, self._flow
            transport.write(b"".join(head))
            try:
                async for chunk in it:
                    if not chunk:
                        continue  # an empty chunk would end a chunked body
                    if transport.is_closing():
                        break
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    if flow.paused:
                        await flow.drain()
            except asyncio.CancelledError:
                if not (self._shutting_down and not self._closed):
                    raise  # the client left
                slot.mode &= ~_KA  # shutdown: finish the body politely, then close
            except ConnectionResetError:
                return _STREAMED
            except Exception:
                log.exception("stream for %s %s failed", req.method, req.path)
                slot.mode &= ~_KA
                # Closing without the last chunk tells the client the stream broke.
                return _STREAMED
            if chunked and not transport.is_closing():
                transport.write(b"0\r\n\r\n")
            return _STREAMED
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.exception("closing the stream for %s %s failed", req.method, req.path)

    # -- WebSocket upgrade ---------------------------------------------------------------------

    def _websocket_request(self, req: Request, route: Route, mode: int) -> None:
        if not self._parser.should_upgrade() or "websocket" not in req.headers.get("upgrade", "").lower():
            self._reply(
                error_response(426, "upgrade_required", "this path speaks WebSocket", [("upgrade", "websocket")]),
                mode,
            )
            return
        if self._queue or self._backlog:
            self._fail(error_response(400, "bad_request", "upgrade while responses are pending"))
        self._ws_pending = (req, route)

    def _ignored_upgrade(self) -> bool:
        """An `Upgrade` other than websocket (e.g. h2c from Java's HttpClient): RFC 9110 lets the server
        ignore it. llhttp has already stopped before the body, so keep the head without the upgrade
        to parse it again, with what follows, as a plain HTTP/1.1 request."""
        raw = self._raw
        offer = b"".join(v for n, v in raw if n.lower() == b"upgrade").lower()
        if b"websocket" in offer or not offer or self._parser.get_method() == b"CONNECT":
            return False
        lines = [b"%s %s HTTP/1.1" % (self._parser.get_method(), self._url)]
        for name, value in raw:
            low = name.lower()
            if low in (b"upgrade", b"http2-settings"):
                continue
            if low == b"connection":
                tokens = [t.strip() for t in value.split(b",")]
                value = b", ".join(t for t in tokens if t.lower() not in (b"upgrade", b"http2-settings"))
                if not value:
                    continue
            lines.append(name + b": " + value)
        self._plain_again = b"\r\n".join(lines) + b"\r\n\r\n"
        self._raw = []
        self._body = None
        return True

    def _serve_plain(self, trailing: bytes) -> None:
        head, self._plain_again = self._plain_again or b"", None
        self._parser = httptools.HttpRequestParser(self)
        self.data_received(head + trailing)

    def _on_upgrade(self, trailing: bytes) -> None:
        if self._plain_again is not None:
            self._serve_plain(trailing)  # an offer we ignored: the same request, as HTTP/1.1
            return
        pending, self._ws_pending = self._ws_pending, None
        self._halted = True
        self._uncork()
        if pending is None:
            # An upgrade we do not speak: the request was answered; nothing more can be parsed.
            if not self._queue and not self._backlog:
                self._transport.close()
            else:
                self._draining_close = True
                self._update_reading()
            return
        req, route = pending
        upgrade = self._server.upgrade
        assert upgrade is not None  # start() refuses WebSocket routes without one
        accepted = upgrade.handshake(req.headers)
        if isinstance(accepted, Response):
            self._reply(accepted, _LINGER)
            return
        self._upgraded = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._server._drop_conn(self)
        if self._reading_paused:
            self._transport.resume_reading()
        upgrade.attach(self._server, req, route.handler, self._transport, accepted, trailing)


#: Fast replies in one loop iteration from which the next iteration's are held to its end.
CORK_AT: Final = 8


class Cork:
    """A server's fast 200 replies (a handler's `bytes`), per loop iteration. When an iteration answered
    `CORK_AT` or more, the next one holds them and writes them all at its end, back to back: a client that reads
    many connections from one thread (wrk, an NIO selector) is then woken once per batch instead of
    once per reply, which costs the server's core less kernel time (benchmarks/RESULTS.md). A quieter
    server writes each reply at once, so a reply never waits behind other work at moderate load; errors
    and other rendered replies are always written at once."""

    __slots__ = ("held", "on", "replies", "scheduled")

    def __init__(self) -> None:
        self.held: list[HttpProtocol] = []  # connections holding replies (`HttpProtocol._out`)
        self.on = False  # hold this iteration's fast replies
        self.replies = 0  # fast replies in this iteration
        self.scheduled = False  # `end` is due at the end of this iteration

    def flush(self) -> None:
        """Write every held reply now. A connection whose write fails is dropped; the others are written."""
        held, self.held = self.held, []
        for conn in held:
            try:
                conn._uncork()
            except Exception:
                log.exception("could not write a held reply; dropping the connection")
                conn.abort()

    def end(self) -> None:
        """The loop iteration is over: decide about the next, and write what this one held."""
        self.on = self.replies >= CORK_AT
        self.replies = 0
        self.scheduled = False
        self.flush()


async def _answer_later(res: Response, delay: float) -> Response:
    await asyncio.sleep(delay)
    return res


def _drop_slots(queue: deque[_Slot]) -> None:
    """Cancel what still runs; mark finished failures as seen so asyncio does not log them."""
    for slot in queue:
        task = slot.task
        if task is not None:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()
    queue.clear()
