"""Attacks on a real `cairn serve` over real sockets: each one held before, or is refused now."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from wsproto.events import BytesMessage

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
    cmd = [sys.executable, "-m", "cairn", "serve", "--port", "0", "--data-dir", str(tmp_path / "d")]
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
    dig = {"player": "digger", "pos": [0, 70, 0], "at": [1, 70, 0], "request_id": f"d{started}"}
    status, body, _ = cairn.request("POST", f"/v1/hunts/{hunt}/dig", dig)
    assert status in (200, 409), body
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
        timed_dig(cairn)
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
