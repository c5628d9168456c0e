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
