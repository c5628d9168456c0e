"""HttpProtocol fed raw bytes through a mock transport: no sockets (uvicorn-style)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httptools
import msgspec
import pytest

from cairn.net.config import ServerConfig
from cairn.net.http import HttpServer
from cairn.net.protocol import CORK_AT, Cork, HttpProtocol
from cairn.net.request import Request
from cairn.net.response import Response, Stream, error_body, error_response
from cairn.net.router import Router
from cairn.net.websocket import UPGRADE


class MockTransport:
    """Records what the protocol writes and how it drives the connection. `buffer` is what the peer
    has once the loop iteration ends: fast replies held until then (`HttpProtocol._cork`) are in it."""

    def __init__(self, cork: Cork | None = None) -> None:
        self.written = bytearray()
        self.cork = cork or Cork()
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self.read_paused = False

    @property
    def buffer(self) -> bytearray:
        self.cork.flush()
        return self.written

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def writelines(self, parts: list[bytes]) -> None:
        for p in parts:
            self.write(p)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("10.0.0.7", 40000) if name == "peername" else default


class Reply:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def replies(buf: bytes | bytearray) -> list[Reply]:
    """Parse every complete response in `buf`."""
    out: list[Reply] = []

    class P:
        def on_message_begin(self) -> None:
            out.append(Reply())

        def on_header(self, name: bytes, value: bytes) -> None:
            out[-1].headers[name.decode().lower()] = value.decode()

        def on_body(self, body: bytes) -> None:
            out[-1].body += body

        def on_headers_complete(self) -> None:
            out[-1].status = parser.get_status_code()

    parser = httptools.HttpResponseParser(P())
    parser.feed_data(bytes(buf))
    return out


def run(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 10))

    return wrapper


def connect(router: Router, on_error: Any = None, **config: Any) -> tuple[HttpProtocol, MockTransport]:
    server = HttpServer(router, ServerConfig(**config), on_error, UPGRADE)
    protocol = HttpProtocol(server)
    transport = MockTransport(server._cork)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def app() -> Router:
    r = Router()
    r.add("GET", "/hello", lambda req: b'{"hello":"world"}')

    def echo(req: Request) -> Response:
        out = {
            "method": req.method,
            "path": req.path,
            "params": req.params,
            "query": req.query,
            "body": req.body.decode(),
            "client": req.client,
            "ctype": req.headers.get("content-type"),
        }
        return Response(201, msgspec.json.encode(out), headers=[("x-echo", "1")])

    r.add("POST", "/v1/hunts/{hunt}/dig", echo)

    async def slow(req: Request) -> tuple[int, bytes]:
        await asyncio.sleep(float(req.query.get("t", "0.02")))
        return 200, b'{"slow":"%s"}' % req.query.get("n", "").encode()

    r.add("GET", "/slow", slow)
    r.add("GET", "/sync", lambda req: (200, b'{"sync":"%s"}' % req.query.get("n", "").encode()))
    return r


# -- basics -----------------------------------------------------------------------------------


@run
async def test_simple_get() -> None:
    p, t = connect(app())
    p.data_received(get("/hello"))
    [r] = replies(t.buffer)
    assert r.status == 200
    assert r.body == b'{"hello":"world"}'
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == "17"
    assert "date" in r.headers
    assert "connection" not in r.headers
    assert not t.closed


@run
async def test_a_busy_server_writes_fast_replies_together_when_the_loop_iteration_ends() -> None:
    """An iteration with CORK_AT fast replies or more makes the next hold its fast replies and write
    them all at its end, back to back; a quiet iteration makes the next write them at once."""
    router = app()
    p, t = connect(router)
    conns = [(p, t)]
    for _ in range(CORK_AT):
        q = HttpProtocol(p._server)
        u = MockTransport(p._server._cork)
        q.connection_made(u)  # type: ignore[arg-type]
        conns.append((q, u))
    for q, u in conns[:CORK_AT]:
        q.data_received(get("/hello"))
        assert len(replies(u.written)) == 1  # not busy yet: written at once
    await asyncio.sleep(0)  # the iteration ends, busy
    p.data_received(get("/hello") + get("/hello"))
    other, u = conns[-1]
    other.data_received(get("/hello"))
    assert len(replies(t.written)) == 1 and u.written == b""  # held
    p.data_received(get("/sync?n=1"))  # a rendered reply is written at once, after what its connection holds
    assert [r.body for r in replies(t.written)] == [b'{"hello":"world"}'] * 3 + [b'{"sync":"1"}']
    await asyncio.sleep(0)
    assert [r.body for r in replies(u.written)] == [b'{"hello":"world"}']
    assert p._server._cork.held == []
    await asyncio.sleep(0)  # an iteration of 3 replies: the next is quiet
    other.data_received(get("/hello"))
    assert len(replies(u.written)) == 2


@run
async def test_a_held_reply_that_cannot_be_written_drops_only_its_connection(caplog: Any) -> None:
    p, t = connect(app())
    q = HttpProtocol(p._server)
    u = MockTransport(p._server._cork)
    q.connection_made(u)  # type: ignore[arg-type]
    p._cork.on = True

    def broken(data: bytes) -> None:
        raise RuntimeError("Cannot call write() after write_eof()")

    t.write = broken  # type: ignore[method-assign]
    p.data_received(get("/hello"))
    q.data_received(get("/hello"))
    with caplog.at_level(logging.ERROR, "cairn.net.http"):
        await asyncio.sleep(0)
    assert t.aborted and [r.status for r in replies(u.written)] == [200]
    assert "could not write a held reply" in caplog.text
    q.data_received(get("/hello"))  # the next iteration is not stuck
    await asyncio.sleep(0)
    assert [r.status for r in replies(u.written)] == [200, 200]


@run
async def test_a_held_reply_is_written_before_any_other_write_on_its_connection() -> None:
    for i, (data, closes) in enumerate([
        (get("/hello") + get("/nope"), False),  # fast, then a 404 off the fast path, in one read
        (get("/hello"), False),  # then the client half-closes: the transport closes after the reply
        (get("/hello") + get("/sync?n=1", "Connection: close\r\n"), True),  # the last one closes
    ]):  # fmt: skip
        p, t = connect(app())
        p._cork.on = True  # a busy server
        p.data_received(data)
        if i == 1:
            assert t.written == b""
            p.eof_received()
        statuses = [r.status for r in replies(t.written)]
        assert statuses == ([200, 404] if i == 0 else [200] if i == 1 else [200, 200]), statuses
        assert t.closed == closes


@run
async def test_post_with_body_params_query_headers() -> None:
    p, t = connect(app())
    p.data_received(post("/v1/hunts/friday%20night/dig?x=1&y=%C3%A9", b'{"a":1}', "Content-Type: application/json\r\n"))
    [r] = replies(t.buffer)
    assert r.status == 201
    assert r.headers["x-echo"] == "1"
    assert r.json() == {
        "method": "POST",
        "path": "/v1/hunts/friday night/dig",
        "params": {"hunt": "friday night"},
        "query": {"x": "1", "y": "é"},
        "body": '{"a":1}',
        "client": "10.0.0.7",
        "ctype": "application/json",
    }


@run
async def test_request_split_across_reads() -> None:
    p, t = connect(app())
    raw = post("/v1/hunts/h/dig", b'{"split":true}')
    for i in range(0, len(raw), 7):
        p.data_received(raw[i : i + 7])
    [r] = replies(t.buffer)
    assert r.status == 201 and r.json()["body"] == '{"split":true}'


@run
async def test_chunked_body() -> None:
    p, t = connect(app())
    p.data_received(
        b"POST /v1/hunts/h/dig HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    [r] = replies(t.buffer)
    assert r.json()["body"] == "abcdefg"


@run
async def test_head_has_length_but_no_body() -> None:
    p, t = connect(app())
    p.data_received(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n" + get("/hello"))
    raw = bytes(t.buffer)
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 17" in head
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no body in between


# -- ordering and flow ------------------------------------------------------------------------


@run
async def test_pipelined_mixed_sync_async_in_order() -> None:
    p, t = connect(app())
    p.data_received(
        get("/slow?n=1&t=0.05") + get("/sync?n=2") + get("/slow?n=3&t=0") + get("/sync?n=4") + get("/hello")
    )
    assert t.buffer == b""  # the sync answers wait behind the slow head
    await asyncio.sleep(0.1)
    rs = replies(t.buffer)
    assert [r.body for r in rs] == [
        b'{"slow":"1"}',
        b'{"sync":"2"}',
        b'{"slow":"3"}',
        b'{"sync":"4"}',
        b'{"hello":"world"}',
    ]
    assert not t.closed


@run
async def test_sync_handler_runs_inside_the_callback() -> None:
    seen: list[asyncio.Task[Any] | None] = []
    r = Router()
    r.add("GET", "/x", lambda req: (seen.append(asyncio.current_task()), b"{}")[1])
    p, t = connect(r)
    marker = asyncio.current_task()
    p.data_received(get("/x"))
    assert seen == [marker]  # no task of its own: the caller's
    assert replies(t.buffer)[0].status == 200


@run
async def test_inflight_cap_pauses_reading_until_drained() -> None:
    gate = asyncio.Event()
    started = []

    async def blocked(req: Request) -> bytes:
        started.append(req.query["n"])
        await gate.wait()
        return b'{"n":%s}' % req.query["n"].encode()

    r = Router()
    r.add("GET", "/b", blocked)
    p, t = connect(r, max_inflight=2)
    p.data_received(get("/b?n=1") + get("/b?n=2") + get("/b?n=3") + get("/b?n=4"))
    await settle()
    assert t.read_paused
    assert started == ["1", "2"]  # the rest wait, parsed but not started
    gate.set()
    await settle(20)
    assert [r.body for r in replies(t.buffer)] == [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":4}']
    assert not t.read_paused


@run
async def test_write_backpressure_pauses_reading() -> None:
    p, t = connect(app())
    p.pause_writing()
    assert t.read_paused
    p.resume_writing()
    assert not t.read_paused


# -- connection management --------------------------------------------------------------------


@run
async def test_keep_alive_by_default_and_connection_close() -> None:
    p, t = connect(app())
    p.data_received(get("/hello"))
    assert not t.closed
    p.data_received(get("/hello", "Connection: close\r\n") + get("/hello"))  # nothing after close is read
    rs = replies(t.buffer)
    assert len(rs) == 2
    assert rs[1].headers["connection"] == "close"
    assert t.closed


@run
async def test_http10_closes_unless_keep_alive() -> None:
    p, t = connect(app())
    p.data_received(b"GET /hello HTTP/1.0\r\n\r\n")
    [r] = replies(t.buffer)
    assert r.status == 200 and r.headers["connection"] == "close"
    assert t.closed

    p, t = connect(app())
    p.data_received(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    [r] = replies(t.buffer)
    assert r.headers["connection"] == "keep-alive"
    assert not t.closed


@run
async def test_client_half_close_still_gets_pending_answers() -> None:
    p, t = connect(app())
    p.data_received(get("/slow?n=1"))
    assert p.eof_received() is True
    await asyncio.sleep(0.05)
    assert [r.body for r in replies(t.buffer)] == [b'{"slow":"1"}']
    assert t.closed


# -- errors -----------------------------------------------------------------------------------


@run
async def test_not_found_and_method_not_allowed_keep_the_connection() -> None:
    p, t = connect(app())
    p.data_received(get("/nope") + b"DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n" + get("/hello"))
    nf, mna, ok = replies(t.buffer)
    assert nf.status == 404 and nf.json()["error"]["code"] == "not_found"
    assert mna.status == 405 and mna.json()["error"]["code"] == "method_not_allowed"
    assert mna.headers["allow"] == "GET, HEAD"
    assert ok.status == 200
    assert not t.closed


@run
async def test_malformed_request_gets_400_and_close() -> None:
    p, t = connect(app())
    p.data_received(b"GARBAGE\r\n\r\n")
    [r] = replies(t.buffer)
    assert r.status == 400
    assert r.json() == {"error": {"code": "bad_request", "message": "malformed HTTP request"}}
    assert r.headers["connection"] == "close"
    assert t.eof_written  # half-closed, draining what the client still sends
    p.data_received(get("/hello"))  # ignored
    assert len(replies(t.buffer)) == 1


@run
async def test_malformed_after_pending_answers_comes_last() -> None:
    p, t = connect(app())
    p.data_received(get("/slow?n=1") + b"BAD REQUEST LINE\r\n\r\n")
    await asyncio.sleep(0.05)
    ok, bad = replies(t.buffer)
    assert ok.status == 200 and bad.status == 400


@run
async def test_413_on_content_length_before_reading_the_body() -> None:
    called = []
    r = Router()
    r.add("POST", "/up", lambda req: called.append(1) or b"{}")
    p, t = connect(r, max_body=100)
    p.data_received(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n")
    [resp] = replies(t.buffer)
    assert resp.status == 413 and resp.json()["error"]["code"] == "body_too_large"
    assert t.eof_written and not called
    p.data_received(b"x" * 101)  # the client's upload is drained and discarded
    assert len(replies(t.buffer)) == 1


@run
async def test_413_on_chunked_overflow() -> None:
    r = Router()
    r.add("POST", "/up", lambda req: b"{}")
    p, t = connect(r, max_body=10)
    p.data_received(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n")
    assert t.buffer == b""
    p.data_received(b"6\r\nghijkl\r\n")
    [resp] = replies(t.buffer)
    assert resp.status == 413 and resp.json()["error"]["code"] == "body_too_large"
    assert t.eof_written


@run
async def test_route_max_body_overrides_server_cap() -> None:
    r = Router()
    r.add("PUT", "/big", lambda req: b'{"n":%d}' % len(req.body), max_body=1000)
    p, t = connect(r, max_body=10)
    p.data_received(b"PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n" + b"x" * 500)
    assert replies(t.buffer)[0].body == b'{"n":500}'


@run
async def test_route_max_body_below_server_cap() -> None:
    r = Router()
    r.add("POST", "/small", lambda req: b"{}", max_body=4)
    p, t = connect(r)
    p.data_received(post("/small", b"12345") + post("/small", b"1234"))
    too_big, ok = replies(t.buffer)
    assert too_big.status == 413 and ok.status == 200
    assert not t.closed  # the body was within the server's cap and fully read


@run
async def test_headers_too_large() -> None:
    p, t = connect(app(), max_header_bytes=1024)
    p.data_received(b"GET /hello HTTP/1.1\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    [r] = replies(t.buffer)
    assert r.status == 431 and r.json()["error"]["code"] == "headers_too_large"

    p, t = connect(app(), max_header_bytes=1024)
    p.data_received(b"GET /hello HTTP/1.1\r\nX-Big: ")
    for _ in range(5):
        p.data_received(b"a" * 300)  # dribbled across reads, never finished
    [r] = replies(t.buffer)
    assert r.status == 431


@run
async def test_expect_100_continue() -> None:
    p, t = connect(app())
    p.data_received(b"POST /v1/hunts/h/dig HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert bytes(t.buffer) == b"HTTP/1.1 100 Continue\r\n\r\n"
    p.data_received(b"{}")
    assert b"201 Created" in t.buffer


@run
async def test_handler_exception_is_500_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def boom(req: Request) -> bytes:
        raise RuntimeError("secret detail")

    async def aboom(req: Request) -> bytes:
        raise KeyError("secret async detail")

    r = Router()
    r.add("GET", "/boom", boom)
    r.add("GET", "/aboom", aboom)
    p, t = connect(r)
    with caplog.at_level(logging.ERROR, logger="cairn.net.http"):
        p.data_received(get("/boom") + get("/aboom"))
        await settle()
    rs = replies(t.buffer)
    for resp in rs:
        assert resp.status == 500
        assert resp.body == b'{"error":{"code":"internal","message":"internal error"}}'
        assert b"secret" not in resp.body and b"Traceback" not in t.buffer
    assert "secret detail" in caplog.text and "Traceback" in caplog.text
    assert "secret async detail" in caplog.text
    assert not t.closed


@run
async def test_on_error_maps_app_errors() -> None:
    class OutOfReach(Exception):
        pass

    def on_error(exc: Exception) -> Response | None:
        if isinstance(exc, OutOfReach):
            return error_response(422, "out_of_reach", str(exc))
        return None

    async def far(req: Request) -> bytes:
        raise OutOfReach("dig is 9 blocks away")

    def other(req: Request) -> bytes:
        raise ValueError("unmapped")

    r = Router()
    r.add("GET", "/far", far)
    r.add("GET", "/other", other)
    p, t = connect(r, on_error=on_error)
    p.data_received(get("/far") + get("/other"))
    await settle()
    far_r, other_r = replies(t.buffer)
    assert far_r.status == 422
    assert far_r.json() == {"error": {"code": "out_of_reach", "message": "dig is 9 blocks away"}}
    assert other_r.status == 500


@run
async def test_bad_handler_result_is_500(caplog: pytest.LogCaptureFixture) -> None:
    r = Router()
    r.add("GET", "/dict", lambda req: {"not": "bytes"})  # type: ignore[arg-type,return-value]
    p, t = connect(r)
    with caplog.at_level(logging.ERROR):
        p.data_received(get("/dict"))
    assert replies(t.buffer)[0].status == 500


# -- timeouts ---------------------------------------------------------------------------------


@run
async def test_header_timeout_drops_a_slow_head() -> None:
    p, t = connect(app(), header_timeout=0.05)
    p.data_received(b"GET /hello HTTP/1.1\r\nHo")
    await asyncio.sleep(0.03)
    p.data_received(b"st: t\r\n")  # progress does not extend the deadline
    await asyncio.sleep(0.1)
    assert t.closed and t.buffer == b""


@run
async def test_idle_keep_alive_timeout() -> None:
    p, t = connect(app(), idle_timeout=0.05)
    p.data_received(get("/hello"))
    await asyncio.sleep(0.02)
    assert not t.closed
    await asyncio.sleep(0.1)
    assert t.closed


@run
async def test_busy_connection_is_not_idle() -> None:
    r = Router()

    async def slow(req: Request) -> bytes:
        await asyncio.sleep(0.15)
        return b"{}"

    r.add("GET", "/slow", slow)
    p, t = connect(r, idle_timeout=0.05)
    p.data_received(get("/slow"))
    await asyncio.sleep(0.1)
    assert not t.closed
    await asyncio.sleep(0.1)
    assert replies(t.buffer)[0].status == 200


# -- streaming --------------------------------------------------------------------------------


@run
async def test_stream_writes_chunks_and_disconnect_closes_the_generator() -> None:
    closed = asyncio.Event()
    more = asyncio.Event()

    async def events(req: Request) -> Stream:
        async def gen() -> Any:
            try:
                yield b"data: 1\n\n"
                yield b""  # skipped: it would end the chunked body
                yield b"data: 2\n\n"
                await more.wait()
                yield b"data: 3\n\n"
            finally:
                closed.set()

        return Stream(gen(), headers=[("x-stream", "yes")])

    r = Router()
    r.add("GET", "/events", events, stream=True)
    p, t = connect(r)
    p.data_received(get("/events"))
    await settle()
    raw = bytes(t.buffer)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-type: text/event-stream\r\n" in raw and b"transfer-encoding: chunked\r\n" in raw
    assert b"x-stream: yes\r\n" in raw
    assert raw.endswith(b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n")
    p.connection_lost(None)
    await settle()
    assert closed.is_set()


@run
async def test_a_client_that_closes_its_side_ends_its_stream_at_once() -> None:
    # A closed event-stream client sends FIN: its stream (and subscription) ends now, not at the
    # next keep-alive write, which can be many seconds away.
    closed = asyncio.Event()

    async def events(req: Request) -> Stream:
        async def gen() -> Any:
            try:
                yield b"retry: 1000\n\n"
                await asyncio.sleep(3600)  # an idle stream: nothing to write for a long time
                yield b": keep-alive\n\n"
            finally:
                closed.set()

        return Stream(gen())

    r = Router()
    r.add("GET", "/events", events, stream=True)
    p, t = connect(r)
    p.data_received(get("/events"))
    await settle()
    assert bytes(t.buffer).startswith(b"HTTP/1.1 200 OK\r\n")
    assert p.eof_received() is True
    await settle()
    assert closed.is_set() and t.closed


@run
async def test_stream_handler_may_answer_with_a_plain_error() -> None:
    def events(req: Request) -> Response:
        return error_response(401, "unauthorized", "no key")

    r = Router()
    r.add("GET", "/events", events, stream=True)
    p, t = connect(r)
    p.data_received(get("/events") + get("/events"))
    await settle()
    assert [x.status for x in replies(t.buffer)] == [401, 401]


@run
async def test_finished_stream_ends_chunked_body_and_keeps_connection() -> None:
    async def gen() -> Any:
        yield b"data: only\n\n"

    r = Router()
    r.add("GET", "/events", lambda req: gen(), stream=True)
    r.add("GET", "/hello", lambda req: b"{}")
    p, t = connect(r)
    p.data_received(get("/events") + get("/hello"))
    await settle(10)
    sse, hello = replies(t.buffer)
    assert sse.body == b"data: only\n\n" and hello.status == 200
    assert not t.closed


# -- pieces -----------------------------------------------------------------------------------


def test_router_static_dynamic_and_precedence() -> None:
    r = Router()
    h = [lambda req, i=i: i for i in range(6)]
    r.add("GET", "/v1/hunts", h[0])
    r.add("GET", "/v1/hunts/{hunt}", h[1])
    r.add("POST", "/v1/hunts/{hunt}/dig", h[2])
    r.add("GET", "/v1/grants/pending", h[3])
    r.add("POST", "/v1/grants/{grant_id}/ack", h[4])
    r.add("GET", "/v1/hunts/special/x", h[5])

    def hit(path: str) -> tuple[list[str], dict[str, str]] | None:
        found = r.match(path)
        return None if found is None else (sorted(found[0]), found[1])

    assert hit("/v1/hunts") == (["GET"], {})
    assert hit("/v1/hunts/abc") == (["GET"], {"hunt": "abc"})
    assert hit("/v1/hunts/abc/dig") == (["POST"], {"hunt": "abc"})
    assert hit("/v1/hunts/special") == (["GET"], {"hunt": "special"})  # backtracks to the param
    assert hit("/v1/grants/pending") == (["GET"], {})
    assert hit("/v1/grants/g%2F1/ack") == (["POST"], {"grant_id": "g/1"})
    assert hit("/v1/hunts//dig") is None  # an empty segment is no parameter
    assert hit("/v1/nope") is None
    found = r.match("/v1/hunts/abc")
    assert found is not None
    found[1]["hunt"] = "mutated"
    assert r.match("/v1/hunts/abc") == (found[0], {"hunt": "abc"})  # the cache hands out copies
    with pytest.raises(ValueError, match="already registered"):
        r.add("POST", "/v1/hunts/{hunt}/dig", h[0])
    with pytest.raises(ValueError, match="already"):
        r.add("GET", "/v1/hunts/{other}/x", h[0])


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_body"):
        ServerConfig(max_body=0)
    with pytest.raises(ValueError, match="header_timeout"):
        ServerConfig(header_timeout=-1.0)


def test_error_body_shape() -> None:
    assert msgspec.json.decode(error_body(404, "not_found", "no such hunt")) == {
        "error": {"code": "not_found", "message": "no such hunt"}
    }
    assert msgspec.json.decode(error_body(422, "validation_error", "bad", field="pos")) == {
        "error": {"code": "validation_error", "message": "bad", "field": "pos"}
    }


def test_request_build_for_handler_tests() -> None:
    req = Request.build("POST", "/v1/x", query="a=1", headers={"Authorization": "Bearer k"}, body=b"{}")
    assert req.headers == {"authorization": "Bearer k"}
    assert req.query == {"a": "1"}
    assert req.params == {} and req.client == "127.0.0.1"


# -- an upgrade offer we do not take (h2c) -----------------------------------------------------

H2C = "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"


@run
async def test_h2c_offer_is_ignored_and_the_body_delivered_then_keep_alive_goes_on() -> None:
    p, t = connect(app())
    p.data_received(post("/v1/hunts/h/dig", b'{"from":"java"}', H2C) + get("/hello"))
    first, second = replies(t.buffer)
    assert first.status == 201 and first.json()["body"] == '{"from":"java"}'
    assert second.status == 200 and not t.closed


@run
async def test_h2c_offer_with_a_chunked_body_split_across_reads() -> None:
    p, t = connect(app())
    head = f"POST /v1/hunts/h/dig HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n{H2C}\r\n".encode()
    raw = head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    for i in range(0, len(raw), 11):
        p.data_received(raw[i : i + 11])
    [r] = replies(t.buffer)
    assert r.status == 201 and r.json()["body"] == "abcde"


@run
async def test_authorization_is_picked_out_per_request_and_never_carried_over() -> None:
    seen: list[tuple[bytes | None, bytes | None]] = []
    r = Router()
    r.add("GET", "/x", lambda req: (seen.append((req.authorization, req.auth())), b"{}")[1])
    p, t = connect(r)
    p.data_received(
        get("/x", "Authorization: Bearer a\r\nauthorization: Bearer second\r\n")  # the first one counts
        + get("/x")  # the next request on the connection has none: nothing carried over
        + get("/x", "AUTHORIZATION: Bearer c\r\n")
        + get("/x", "aUtHoRiZaTiOn: Bearer d\r\n")  # an unusual spelling: found by the scan
    )
    assert seen == [(b"Bearer a", b"Bearer a"), (None, None), (b"Bearer c", b"Bearer c"), (None, b"Bearer d")]
    assert [x.status for x in replies(t.buffer)] == [200] * 4
