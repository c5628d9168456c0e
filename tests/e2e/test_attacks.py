"""Attacks on a real `cairn serve` over real sockets: each one held before, or is refused now."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from wsproto.events import BytesMessage
from wsproto.utilities import LocalProtocolError

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec
from tests.e2e.test_session import WsClient

BAD_UTF8 = b'{"\xff": 1}'


def no_tracebacks(cairn: CairnServer) -> None:
    text = cairn.log.read_text()
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]


def test_invalid_utf8_in_a_json_body_is_invalid_body_on_every_route(cairn: CairnServer) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("h1"), key=ADMIN)[0] == 201
    routes = [
        ("POST", "/v1/hunts", ADMIN), ("POST", "/v1/hunts/h1/hint", GAME), ("POST", "/v1/hunts/h1/dig", GAME),
        ("POST", "/v1/positions", GAME), ("POST", "/v1/batch", GAME), ("POST", "/v1/dashboard/login", None),
    ]  # fmt: skip
    for method, path, key in routes:
        status, body, _ = cairn.request(method, path, raw=BAD_UTF8, key=key)
        assert status == 400 and body["error"]["code"] == "invalid_body", (path, status, body)
    status, body, _ = cairn.request("POST", "/v1/hunts", raw=b'id = "\xff"', key=ADMIN,
                                    headers={"Content-Type": "application/toml"})  # fmt: skip
    assert status == 400 and body["error"]["code"] == "invalid_body", body
    no_tracebacks(cairn)


def test_a_messagepack_frame_with_bad_utf8_closes_the_session_with_1007(cairn: CairnServer) -> None:
    ws = WsClient(cairn.port, GAME)
    try:
        ws.sock.sendall(ws.ws.send(BytesMessage(b"\x82\xa2id\x01\xa2op\xa2\xff\xfe")))
        while ws.closed is None:
            ws._read()
        assert ws.closed.code == 1007, ws.closed
    finally:
        ws.close()
    no_tracebacks(cairn)


def test_serve_refuses_a_short_key_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "CAIRN_ADMIN_KEY": ADMIN, "CAIRN_GAME_KEY": "game-secret"}
    # Refused when listening beyond loopback (192.0.2.1 is a documentation address: were the check
    # missing, binding it would fail here rather than listen).
    cmd = [sys.executable, "-m", "cairn", "serve", "--host", "192.0.2.1", "--port", "0", "--data-dir",
           str(tmp_path / "d")]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=60, text=True)
    assert out.returncode == 2, out
    assert "CAIRN_GAME_KEY is 11 characters long; use at least 16" in out.stdout + out.stderr
    assert not (tmp_path / "d" / "journal.db").exists()  # refused before anything started


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def wait_for(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


_ = msgspec


# ---- event streams ---------------------------------------------------------------------------


def sse_socket(port: int, query: str = "after=0", key: str = GAME, rcvbuf: int = 4096) -> socket.socket:
    """An event stream that reads nothing (a small receive buffer, so the kernel holds little)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /v1/events?{query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
    return s


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def proximity_events(cairn: CairnServer, hunt: str, players: int, tag: str = "p") -> None:
    """2 × `players` proximity events in `hunt`: each player enters the fence of its first treasure, then leaves."""
    view = cairn.request("GET", f"/v1/hunts/{hunt}?reveal=true", key=ADMIN)[1]
    x, y, z = view["treasures"][0]["pos"]
    for far in (False, True):
        for lo in range(0, players, 5000):
            updates = [{"player": f"{tag}{hunt}-{i}", "pos": [x + (5000 if far else 1), y, z], "teleport": True}
                       for i in range(lo, min(players, lo + 5000))]  # fmt: skip
            status, body, _ = cairn.request("POST", "/v1/positions", {"world": "overworld", "updates": updates})
            assert status == 200, body


def timed_dig(cairn: CairnServer, hunt: str = "h1") -> float:
    started = time.perf_counter()
    dig = {"player": "digger", "pos": [-250, 70, 0], "at": [-249, 70, 0], "request_id": f"d{started}"}  # in h1's area
    status, body, _ = cairn.request("POST", f"/v1/hunts/{hunt}/dig", dig)
    assert status in (200, 409), body  # decided by the engine either way
    return time.perf_counter() - started


def test_event_stream_backlog_is_sent_under_flow_control(tmp_path: Path) -> None:
    from tests.e2e.conftest import SMALL_WORLD

    cairn = CairnServer(tmp_path / "data", SMALL_WORLD + "\n[events]\nmax_subscribers_per_key = 1000\n")
    cairn.start()
    streams: list[socket.socket] = []
    try:
        for h in range(8):
            spec = hunt_spec(f"h{h}", area={"min": [-400 + 100 * h, -64, -400], "max": [-300 + 100 * h, 320, 400]},
                             treasures=1)  # fmt: skip
            assert cairn.request("POST", "/v1/hunts", spec, key=ADMIN)[0] == 201
            proximity_events(cairn, f"h{h}", 1000)
        assert cairn.proc is not None
        before = rss_mib(cairn.proc.pid)
        for _ in range(300):  # each would be sent ~16,000 retained events (3.5 MiB) at once
            streams.append(sse_socket(cairn.port))
        time.sleep(1.0)
        timed_dig(cairn, "h4")  # its area holds the dig cell
        grew = rss_mib(cairn.proc.pid) - before
        assert grew < 120, f"RSS grew by {grew:.0f} MiB for 300 streams that do not read"
        s = streams.pop()
        s.settimeout(5)
        got = b""
        while got.count(b"event: proximity.") < 16_000:  # a reader still gets the whole backlog
            chunk = s.recv(1 << 20)
            assert chunk, "the stream ended early"
            got += chunk
        s.close()
    finally:
        for s in streams:
            s.close()
        cairn.kill()
    no_tracebacks(cairn)


def test_subscriptions_per_key_are_capped(tmp_path: Path) -> None:
    from tests.e2e.conftest import SMALL_WORLD

    cairn = CairnServer(tmp_path / "data", SMALL_WORLD + "\n[events]\nmax_subscribers_per_key = 3\n")
    cairn.start()
    try:
        held = [sse_socket(cairn.port, rcvbuf=65536) for _ in range(3)]
        for s in held:
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        extra = raw_request(cairn.port, f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n"
                                        "Connection: close\r\n\r\n".encode())  # fmt: skip
        assert extra.startswith(b"HTTP/1.1 429") and b"too_many_subscribers" in extra, extra
        ws = WsClient(cairn.port, GAME)  # the WebSocket's subscribe counts against the same key
        ws.send({"id": 1, "op": "subscribe"})
        assert ws.recv()["error"]["code"] == "too_many_subscribers"
        held.pop().close()
        again = f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n\r\n".encode()
        wait_for(lambda: raw_request(cairn.port, again, timeout=0.5).startswith(b"HTTP/1.1 200"))
        ws.close()
        for s in held:
            s.close()
    finally:
        cairn.kill()


def test_a_subscriber_cut_off_for_falling_behind_is_disconnected(cairn: CairnServer) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("h1", treasures=1), key=ADMIN)[0] == 201
    s = sse_socket(cairn.port, "hunt=h1&after=9999999999999999999")
    try:
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        proximity_events(cairn, "h1", 5000)  # 5,000 events at once: more than a queue holds (4,096)
        s.settimeout(5)
        got = b""
        while chunk := s.recv(1 << 20):  # raises TimeoutError if the server keeps the connection
            got += chunk
        assert b"event: dropped" in got and got.rstrip().endswith(b"0"), got[-200:]
    finally:
        s.close()


# ---- uploads ---------------------------------------------------------------------------------


def upload_head(world: str, length: int, key: str | None, ctype: str = "application/x-ndjson") -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"PUT /v1/worlds/{world}/sites HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()  # fmt: skip


def answer_to_head(port: int, head: bytes) -> bytes:
    """Send only the head of an upload: the answer must come without the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head + b'{"x": 1, "y": 64, "z": 1}\n')  # the body starts, and stalls
        return s.recv(65536)


def test_an_upload_is_refused_by_its_head_before_its_body_is_read(cairn: CairnServer) -> None:
    big = 238 << 20
    cases = [
        (upload_head("overworld", big, None), b"401", b"unauthorized"),
        (upload_head("overworld", big, "not-a-key-at-all-0000"), b"401", b"unauthorized"),
        (upload_head("overworld", big, GAME), b"403", b"forbidden"),
        (upload_head("nether", 1000, ADMIN), b"422", b"unknown_world"),
        (upload_head("overworld", (256 << 20) + 1, ADMIN), b"413", b"body_too_large"),
    ]
    for head, status, code in cases:
        got = answer_to_head(cairn.port, head)
        assert got.startswith(b"HTTP/1.1 " + status) and code in got, (head, got)
    assert cairn.proc is not None
    before = rss_mib(cairn.proc.pid)
    socks = []
    for _ in range(3):  # keyless uploads that do send their bodies: nothing is kept
        s = socket.create_connection(("127.0.0.1", cairn.port), timeout=10)
        s.sendall(upload_head("overworld", 64 << 20, None))
        socks.append(s)
    chunk = b"x" * (1 << 20)
    for _ in range(64):
        for s in socks:
            with contextlib.suppress(OSError):  # the server closed it: good
                s.sendall(chunk)
    assert rss_mib(cairn.proc.pid) - before < 32
    for s in socks:
        s.close()
    no_tracebacks(cairn)


def ndjson_sites(n: int) -> bytes:
    return b"".join(b'{"x": %d, "y": 64, "z": %d, "tags": ["surface", "forest"]}\n' % (i % 4000, i // 4000)
                    for i in range(n))  # fmt: skip


def test_an_ndjson_upload_is_parsed_as_a_stream(cairn: CairnServer) -> None:
    body = ndjson_sites(400_000)  # 22 MiB
    assert cairn.proc is not None
    before = rss_mib(cairn.proc.pid)
    status, info, _ = cairn.request("PUT", "/v1/worlds/overworld/sites", raw=body, key=ADMIN,
                                    headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    assert status == 200 and info["sites"] == 400_000, info
    peak = 0.0
    for line in Path(f"/proc/{cairn.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    size = len(body) / (1 << 20)
    assert peak - before < 2.5 * size, f"peak RSS grew by {peak - before:.0f} MiB for a {size:.0f} MiB upload"
    assert not list((cairn.data_dir / "uploads").iterdir())  # the spooled body is gone


def test_concurrent_uploads_are_capped(cairn: CairnServer) -> None:
    held = []
    for _ in range(2):  # the default cap: server.max_uploads = 2
        s = socket.create_connection(("127.0.0.1", cairn.port), timeout=5)
        s.sendall(upload_head("overworld", 64 << 20, ADMIN) + b'{"x": 1, "y": 64, "z": 1}\n')
        held.append(s)
    time.sleep(0.3)
    third = answer_to_head(cairn.port, upload_head("overworld", 64 << 20, ADMIN))
    assert third.startswith(b"HTTP/1.1 503") and b"too_many_uploads" in third, third
    held.pop().close()
    small = ndjson_sites(20_000)
    wait_for(lambda: cairn.request("PUT", "/v1/worlds/overworld/sites", raw=small, key=ADMIN,
                                   headers={"Content-Type": "application/x-ndjson"})[0] == 200)  # fmt: skip
    held.pop().close()


# ---- connection floods and key guessing --------------------------------------------------------


def connect_from(port: int, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def still_open(s: socket.socket) -> bool:
    if not select.select([s], [], [], 0)[0]:
        return True  # nothing to read, not even an end
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def keepalive_dig(s: socket.socket, n: int, key: str = GAME) -> bytes:
    body = b'{"player": "gs%d", "pos": [0, 70, 0], "at": [1, 70, 0], "request_id": "r%d"}' % (n % 64, n)
    s.sendall(b"POST /v1/hunts/h1/dig HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
              % (key.encode(), len(body), body))  # fmt: skip
    return s.recv(65536)


LIMITS = """
[server]
max_connections = 64
max_connections_per_address = 16
first_request_timeout = 1.0
"""


def test_idle_connections_are_capped_per_address_and_in_all(tmp_path: Path) -> None:
    from tests.e2e.conftest import SMALL_WORLD

    cairn = CairnServer(tmp_path / "data", SMALL_WORLD + LIMITS)
    cairn.start()
    socks: list[socket.socket] = []
    try:
        assert "open-files limit" in cairn.log.read_text()
        assert cairn.request("POST", "/v1/hunts", hunt_spec("h1"), key=ADMIN)[0] == 201
        game = connect_from(cairn.port, "127.0.0.1")  # a game server's keep-alive connection
        assert keepalive_dig(game, 0).startswith(b"HTTP/1.1 200")
        one = [connect_from(cairn.port, "127.0.0.2") for _ in range(40)]
        socks += one
        time.sleep(0.3)
        assert sum(still_open(s) for s in one) == 16  # one address: its cap
        for i in range(3, 9):  # six more addresses: 96 idle connections, over the cap of 64 in all
            socks += [connect_from(cairn.port, f"127.0.0.{i}") for _ in range(16)]
        time.sleep(0.3)
        assert sum(still_open(s) for s in socks) <= 63
        assert still_open(game) and keepalive_dig(game, 1).startswith(b"HTTP/1.1 200")
        fresh = connect_from(cairn.port, "127.0.0.1")  # a new game connection makes room for itself
        assert keepalive_dig(fresh, 2).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # the first-request deadline, not the 60 s idle timeout
        assert not any(still_open(s) for s in socks)
        assert still_open(game) and keepalive_dig(game, 3).startswith(b"HTTP/1.1 200")
        fresh.close()
        game.close()
    finally:
        for s in socks:
            s.close()
        cairn.kill()
    no_tracebacks(cairn)


BRAKE = """
[server]
auth_failures_slow = 2
auth_failures_close = 6
"""


def test_key_guessing_is_slowed_then_cut_off(tmp_path: Path) -> None:
    from tests.e2e.conftest import SMALL_WORLD

    cairn = CairnServer(tmp_path / "data", SMALL_WORLD + BRAKE)
    cairn.start()
    try:
        assert cairn.request("POST", "/v1/hunts", hunt_spec("h1"), key=ADMIN)[0] == 201
        # Pipelined guesses on one connection: a few answers, then the connection closes.
        guess = b"GET /v1/hunts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess-%04d-xxxxxxxxxx\r\n\r\n"
        with connect_from(cairn.port, "127.0.0.5") as s:
            s.settimeout(10)
            s.sendall(b"".join(guess % i for i in range(1000)))
            got = b""
            started = time.monotonic()
            while chunk := s.recv(65536):
                got += chunk
            took = time.monotonic() - started
        assert got.count(b"HTTP/1.1 401") == 6, got.count(b"HTTP/1.1 401")
        assert took > 0.5  # the answers after the second came late (0.1 + 0.2 + 0.4 + 0.8 s)
        # From the same address, a new connection is answered late and closed after one guess.
        with connect_from(cairn.port, "127.0.0.5") as s:
            s.settimeout(10)
            started = time.monotonic()
            s.sendall(guess % 1)
            got = s.recv(65536)
            assert got.startswith(b"HTTP/1.1 401") and b"connection: close" in got
            assert time.monotonic() - started > 0.5 and s.recv(65536) == b""
        # The WebSocket path: auth ops are braked the same way, then the session closes.
        ws = WsClient(cairn.port, None)
        started = time.monotonic()
        replies = 0
        try:
            for i in range(100):
                ws.send({"id": i, "op": "auth", "key": f"guess-{i:04d}-xxxxxxxxxx"})
                assert ws.recv()["error"]["code"] == "unauthorized"
                replies += 1
        except (ConnectionError, OSError, LocalProtocolError):
            pass
        assert replies <= 6 and ws.closed is not None and ws.closed.code == 4401, (replies, ws.closed)
        ws.close()
        # A game server with its key is never slowed, even from the same address.
        with connect_from(cairn.port, "127.0.0.5") as s:
            started = time.monotonic()
            assert keepalive_dig(s, 0).startswith(b"HTTP/1.1 200")
            assert time.monotonic() - started < 0.3
    finally:
        cairn.kill()
    no_tracebacks(cairn)
