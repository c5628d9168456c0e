"""API keys managed at runtime, on the embedded store and on two Redis nodes: a key made on one node
works on the other; revoked, it is refused there within a second and its open WebSocket session and
event stream are cut off; a rotation's overlap is honoured; all of it survives `kill -9` and is audited."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from tests.e2e.conftest import ADMIN, ADMIN_ID, GAME_ID, CairnServer, hunt_spec
from tests.e2e.operator import Pair
from tests.e2e.redis_deploy import create, settle_wait
from tests.e2e.test_session import WsClient


def status_with(node: CairnServer, key: str) -> int:
    return node.request("GET", "/v1/hunts", key=key)[0]


def dig_with(node: CairnServer, key: str, rid: str) -> int:
    body = {"player": "p1", "pos": [0, 64, 0], "at": [0, 64, 0], "request_id": rid}
    return node.request("POST", "/v1/hunts/h1/dig", body, key=key)[0]


def key_requests(node: CairnServer, label: str) -> int:
    text = urllib.request.urlopen(node.url + "/metrics", timeout=5).read().decode()
    m = re.search(rf'^cairn_key_requests_total{{key="{re.escape(label)}"}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def keys_of(pair: Pair, node: CairnServer) -> dict[str, dict[str, Any]]:
    status, body = pair.admin(node, "GET", "/v1/keys")
    assert status == 200, body
    return {k["id"]: k for k in body["keys"]}


def open_sse(node: CairnServer, key: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
    head = b""
    while b"retry:" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def read_to_end(s: socket.socket, timeout: float = 3.0) -> bytes:
    s.settimeout(timeout)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def test_runtime_keys_on_every_node_revoked_rotated_and_kept(pair: Pair) -> None:
    a, b = pair.a, pair.b
    create(a, hunt_spec())
    status, made = pair.admin(a, "POST", "/v1/keys", {"scope": "game", "label": "plugin-eu", "reason": "EU plugin"})
    assert status == 201, made
    secret, kid = made["secret"], made["id"]
    assert secret.startswith(f"ck_game_{kid}_") and made["label"] == "plugin-eu" and made["scope"] == "game"
    assert settle_wait(lambda: status_with(b, secret) == 200, timeout=5), "a key made on a works on b"
    assert dig_with(b, secret, "d1") == 200
    listed = keys_of(pair, b)
    assert listed[kid]["label"] == "plugin-eu" and listed[kid]["active"] and not listed[kid]["revoked"]
    assert listed[kid]["last_used"] is not None  # b verified it
    assert {ADMIN_ID, GAME_ID} <= set(listed) and listed[ADMIN_ID]["label"] == ADMIN_ID
    assert all("secret" not in k and "hash" not in k for k in listed.values())
    assert secret not in str(pair.admin(b, "GET", "/v1/audit")[1])
    before = key_requests(b, "plugin-eu")
    assert status_with(b, secret) == 200 and dig_with(b, secret, "d1b") == 200 and status_with(b, secret) == 200
    assert key_requests(b, "plugin-eu") == before + 2  # per label; digs are not counted

    # Bad input, each with its code.
    def refused(method: str, path: str, body: Any, status: int, code: str) -> None:
        got, reply = pair.admin(a, method, path, body)
        assert (got, reply["error"]["code"]) == (status, code), reply

    refused("POST", "/v1/keys", {"scope": "game", "label": "plugin-eu", "reason": "x"}, 409, "label_taken")
    refused("POST", "/v1/keys", {"scope": "root", "label": "x", "reason": "x"}, 422, "validation_error")
    refused("POST", "/v1/keys", {"scope": "game", "label": "bad label!", "reason": "x"}, 422, "validation_error")
    refused("POST", "/v1/keys", {"scope": "game", "label": "y"}, 400, "reason_required")
    refused("DELETE", "/v1/keys/k404?reason=x", None, 404, "key_not_found")
    refused("DELETE", f"/v1/keys/{ADMIN_ID}?reason=x", None, 409, "last_admin_key")
    refused("POST", f"/v1/keys/{kid}/rotate", {"reason": "x", "overlap": "8d"}, 422, "validation_error")
    refused("POST", f"/v1/keys/{kid}/rotate", {"reason": "x", "overlap": "9" * 400 + "d"}, 422, "validation_error")
    # A field the action does not take, even one the server fills in itself (the new key's id or hash).
    for field in ("bogus", "id", "hash", "static"):
        refused("POST", "/v1/keys", {"scope": "game", "label": "w", "reason": "x", field: "k"}, 422, "unknown_field")
        refused("POST", f"/v1/keys/{kid}/rotate", {"reason": "x", field: "k"}, 422, "unknown_field")
    refused("DELETE", f"/v1/keys/{kid}", {"reason": "x", "bogus": 1}, 422, "unknown_field")
    assert a.request("POST", "/v1/keys", {"scope": "game", "label": "z", "reason": "x"}, key=secret)[0] == 403

    # Revoked on a: refused on b within a second; b's session and stream with that key are cut off.
    ws = WsClient(b.port, secret)
    ws.send({"id": 1, "op": "ping"})
    assert ws.recv() == {"id": 1, "result": "pong"}
    sse = open_sse(b, secret)
    started = time.monotonic()
    status, entry = pair.admin(a, "DELETE", f"/v1/keys/{kid}?reason=leaked%20in%20a%20log")
    assert status == 200 and entry["action"] == "key.revoke" and entry["target"] == kid, entry
    assert settle_wait(lambda: status_with(b, secret) == 401, timeout=5, step=0.02)
    assert time.monotonic() - started < 1.0, "refused on b within a second"
    assert dig_with(b, secret, "d2") == 401  # the dig's cached verification is gone too
    with ws.sock:
        ws.sock.settimeout(5)
        while ws.closed is None:
            ws._read()
        assert ws.closed.code == 4001
    with sse:
        assert b"event: revoked" in read_to_end(sse)
    refused("DELETE", f"/v1/keys/{kid}", {"reason": "again"}, 409, "key_revoked")
    assert keys_of(pair, a)[kid]["revoked"]

    # Rotation: the old key works through the overlap (cached or not), then is refused; the new one works.
    status, ops = pair.admin(a, "POST", "/v1/keys", {"scope": "admin", "label": "ops", "reason": "on-call"})
    assert status == 201
    status, rot = pair.admin(a, "POST", f"/v1/keys/{ops['id']}/rotate", {"reason": "quarterly", "overlap": "2s"})
    assert status == 201 and rot["label"] == "ops" and rot["scope"] == "admin" and rot["replaces"] == ops["id"]
    assert settle_wait(lambda: status_with(b, rot["secret"]) == 200, timeout=5)
    assert status_with(b, ops["secret"]) == 200  # in the overlap, and now in b's cache
    assert keys_of(pair, b)[ops["id"]]["expires_at"] is not None
    assert settle_wait(lambda: status_with(b, ops["secret"]) == 401, timeout=4, step=0.1)
    assert status_with(b, rot["secret"]) == 200
    refused("POST", f"/v1/keys/{ops['id']}/rotate", {"reason": "x"}, 409, "key_revoked")

    # A static key revoked: cut off without a restart; the audit names who acted, on what, and why.
    status, _ = pair.admin(a, "DELETE", f"/v1/keys/{GAME_ID}?reason=rotating%20the%20env%20key")
    assert status == 200
    assert settle_wait(lambda: status_with(b, "e2e-game-key-0123456789") == 401, timeout=5)
    status, _, _ = a.request("POST", f"/v1/keys/{rot['id']}/rotate", {"reason": "by ops", "overlap": "0s"},
                             key=rot["secret"])  # fmt: skip
    assert status == 201  # a runtime admin key acts, and rotating itself to a zero overlap cuts itself off

    pair.restart()
    assert status_with(b, secret) == 401 and status_with(a, "e2e-game-key-0123456789") == 401
    assert status_with(b, ops["secret"]) == 401 and status_with(b, rot["secret"]) == 401
    assert keys_of(pair, b)[kid]["revoked"]
    audit = pair.admin(b, "GET", "/v1/audit?action=key.")[1]["entries"]
    assert [(e["action"], e.get("target"), e["by"], e["reason"]) for e in audit] == [
        ("key.rotate", rot["id"], "ops", "by ops"),
        ("key.revoke", GAME_ID, ADMIN_ID, "rotating the env key"),
        ("key.rotate", ops["id"], ADMIN_ID, "quarterly"),
        ("key.create", None, ADMIN_ID, "on-call"),
        ("key.revoke", kid, ADMIN_ID, "leaked in a log"),
        ("key.create", None, ADMIN_ID, "EU plugin"),
    ]
    assert audit[-1]["args"] == {"id": kid, "label": "plugin-eu", "scope": "game"}
    assert audit[-2]["args"]["label"] == "plugin-eu"


def test_cli_lists_creates_rotates_and_revokes_against_a_running_server(cairn: CairnServer) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cairn", "keys", *args, "--url", cairn.url],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "CAIRN_ADMIN_KEY": ADMIN})  # fmt: skip

    made = run("create", "--scope", "game", "--label", "cli-plugin", "--reason", "from the CLI")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("ck_game_") and status_with(cairn, secret) == 200
    kid = secret.split("_")[2]
    listed = run("list")
    assert listed.returncode == 0
    assert any(line.split()[:2] == [kid, "cli-plugin"] for line in listed.stdout.splitlines())
    assert secret not in listed.stdout
    rotated = run("rotate", kid, "--reason", "quarterly", "--overlap", "0s")
    assert rotated.returncode == 0, rotated.stderr
    successor = rotated.stdout.strip().splitlines()[-1]
    assert status_with(cairn, successor) == 200 and status_with(cairn, secret) == 401
    assert run("revoke", successor.split("_")[2]).returncode == 2  # no --reason
    assert run("revoke", successor.split("_")[2], "--reason", "done").returncode == 0
    assert status_with(cairn, successor) == 401
    again = run("revoke", successor.split("_")[2], "--reason", "done")
    assert again.returncode == 1 and "key_revoked" in again.stdout + again.stderr
