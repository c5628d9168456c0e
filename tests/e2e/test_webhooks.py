"""Webhooks against a real receiver that fails 30% of requests and sometimes hangs past the timeout:
every event a target asks for arrives at least once, signed; a target that keeps failing is paused and
resumed; a `kill -9` of the engine mid-delivery loses nothing."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.e2e.conftest import ADMIN, GAME, SMALL_WORLD, CairnServer, hunt_spec
from tests.e2e.operator import Pair
from tests.e2e.redis_deploy import create, read_events, settle_wait

CONFIG = SMALL_WORLD + """
[webhooks]
timeout = 0.4
backoff_first = 0.05
backoff_max = 0.3
max_failures = 8
"""
_rid = itertools.count()


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The verification docs/webhooks.md gives, as a receiver would write it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    t = int(parts["t"])
    if abs(time.time() - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    """A real HTTP server in a thread: per path, `fail` (share answered 500), `hang` (share held past the
    timeout) or `down` (every request 500). It keeps what it answered 200 to, by path."""

    def __init__(self) -> None:
        self.fail = 0.3
        self.hang = 0.1
        self.down: set[str] = set()
        self.got: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        self.requests = 0
        self.lock = threading.Lock()
        self.rng = random.Random(7)
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with rx.lock:
                    rx.requests += 1
                    roll = rx.rng.random()
                    down = self.path in rx.down
                if down or roll < rx.fail:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if roll < rx.fail + rx.hang:
                    time.sleep(0.8)  # past the timeout: the engine gave up; nothing counts as received
                    return
                with rx.lock:
                    rx.got.setdefault(self.path, []).append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self, path: str) -> set[int]:
        with self.lock:
            return {int(h["Cairn-Event-Id"]) for h, _ in self.got.get(path, [])}

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CairnServer]:
    s = CairnServer(Path(tmp_path_factory.mktemp("wh")) / "data", CONFIG)
    s.start()
    yield s
    s.kill()


def admin(srv: CairnServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, reply, _ = srv.request(method, path, body, key=ADMIN)
    return status, reply


def add(srv: CairnServer, url: str, events: list[str], fmt: str = "cairn") -> dict[str, Any]:
    status, body = admin(srv, "POST", "/v1/webhooks", {"url": url, "events": events, "format": fmt,
                                                        "reason": "announce finds"})  # fmt: skip
    assert status == 201, body
    return body  # type: ignore[no-any-return]


def webhook(srv: CairnServer, wid: str) -> dict[str, Any]:
    hooks = admin(srv, "GET", "/v1/webhooks")[1]["webhooks"]
    return next(h for h in hooks if h["id"] == wid)  # type: ignore[no-any-return]


def play(srv: CairnServer, hunt: str, n: int = 6) -> list[dict[str, Any]]:
    """A hunt with `n` treasures, each found by its own player, then ended: its events."""
    made = create(srv, hunt_spec(hunt, treasures=n))
    for i, t in enumerate(made["treasures"]):
        body = {"player": f"p{hunt}{i}", "pos": t["pos"], "at": t["pos"], "request_id": f"r{next(_rid)}"}
        status, reply, _ = srv.request("POST", f"/v1/hunts/{hunt}/dig", body, key=GAME)
        assert status == 200 and reply["result"] == "found", reply
    assert admin(srv, "POST", f"/v1/hunts/{hunt}/end")[0] == 200
    return read_events(srv, hunt, 0, "hunt.ended")


def test_targets_are_checked_listed_and_never_show_the_secret(srv: CairnServer, rx: Receiver) -> None:
    for bad in ({"url": "ftp://x/y", "events": ["hunt."]}, {"url": "http://", "events": ["hunt."]},
                {"url": "http://a.example/x", "events": []}, {"url": "http://a.example/x", "events": ["Bad Type"]},
                {"url": "http://a.example/x", "events": ["hunt."], "format": "slack"},
                {"url": "http://a.example/x", "events": ["hunt."], "secret": "short"},
                {"url": "http://a.example/x", "events": ["hunt."], "colour": "red"}):  # fmt: skip
        status, body = admin(srv, "POST", "/v1/webhooks", {**bad, "reason": "test"})
        assert status == 422, (bad, body)
    assert admin(srv, "POST", "/v1/webhooks", {"url": rx.url("/x"), "events": ["hunt."]})[0] == 400  # no reason
    assert srv.request("POST", "/v1/webhooks", {"url": rx.url("/x"), "events": ["hunt."], "reason": "r"},
                       key=GAME)[0] == 403  # fmt: skip
    made = add(srv, rx.url("/tmp"), ["hunt."])
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 30
    listed = webhook(srv, made["id"])
    assert listed["state"] == "active" and listed["backlog"] == 0 and "secret" not in listed
    audit = admin(srv, "GET", "/v1/audit?action=webhook.")[1]["entries"]
    assert audit[0]["action"] == "webhook.add" and "secret" not in audit[0].get("args", {})
    assert made["secret"] not in str(audit)
    stream = read_events(srv, "", 0, "webhook.added")  # game-scoped: never the URL (Discord's carry a token)
    assert any(e["type"] == "webhook.added" for e in stream) and rx.url("/tmp") not in str(stream)
    assert admin(srv, "DELETE", f"/v1/webhooks/{made['id']}?reason=test")[0] == 200
    assert admin(srv, "DELETE", f"/v1/webhooks/{made['id']}?reason=test")[0] == 404
    assert made["id"] not in str(admin(srv, "GET", "/v1/webhooks")[1])


def test_every_event_arrives_signed_through_failures_and_hangs(srv: CairnServer, rx: Receiver) -> None:
    cairn_hook = add(srv, rx.url("/cairn"), ["treasure.", "hunt.started", "hunt.ended"])
    discord_hook = add(srv, rx.url("/discord"), ["treasure.claimed"], "discord")
    events = play(srv, "wh1")
    want = {e["id"] for e in events if e["type"].startswith(("treasure.", "hunt.started", "hunt.ended"))}
    claimed = {e["id"] for e in events if e["type"] == "treasure.claimed"}
    assert len(claimed) == 6 and len(want) >= 14
    assert settle_wait(lambda: want <= rx.ids("/cairn") and claimed <= rx.ids("/discord"), timeout=15), (
        want - rx.ids("/cairn"), claimed - rx.ids("/discord"))  # fmt: skip
    assert rx.requests > len(want) + len(claimed), "the receiver failed some: they were retried"
    for headers, body in rx.got["/cairn"]:
        assert verify(cairn_hook["secret"], headers["Cairn-Signature"], body)
        assert not verify(discord_hook["secret"], headers["Cairn-Signature"], body)
        ev = msgspec.json.decode(body)
        assert ev["id"] == int(headers["Cairn-Event-Id"]) and ev["hunt"] == "wh1"
    for headers, body in rx.got["/discord"]:
        assert verify(discord_hook["secret"], headers["Cairn-Signature"], body)
        msg = msgspec.json.decode(body)
        assert "claimed" in msg["content"] and msg["embeds"][0]["title"].startswith("Treasure claimed")
    assert settle_wait(lambda: webhook(srv, cairn_hook["id"])["backlog"] == 0, timeout=5)
    hook = webhook(srv, cairn_hook["id"])
    assert hook["state"] == "active" and hook["last_success_at"]
    for h in (cairn_hook, discord_hook):
        assert admin(srv, "DELETE", f"/v1/webhooks/{h['id']}?reason=done")[0] == 200


def test_a_failing_target_is_paused_and_resumed(srv: CairnServer, rx: Receiver) -> None:
    rx.down.add("/dead")
    hook = add(srv, rx.url("/dead"), ["*"])
    events = play(srv, "wh2", n=2)
    assert settle_wait(lambda: webhook(srv, hook["id"])["state"] == "paused", timeout=10)
    paused = webhook(srv, hook["id"])
    assert paused["failures"] >= 8 and paused["last_error"] and paused["backlog"] >= len(events)
    rx.down.discard("/dead")
    status, body = admin(srv, "POST", f"/v1/webhooks/{hook['id']}/resume", {"reason": "receiver fixed"})
    assert status == 200 and body["action"] == "webhook.resume"
    assert settle_wait(lambda: {e["id"] for e in events} <= rx.ids("/dead"), timeout=15)
    assert settle_wait(lambda: webhook(srv, hook["id"])["backlog"] == 0, timeout=5)
    assert webhook(srv, hook["id"])["state"] == "active"
    assert admin(srv, "POST", "/v1/webhooks/wh_nope/resume", {"reason": "x"})[0] == 404
    assert admin(srv, "DELETE", f"/v1/webhooks/{hook['id']}?reason=done")[0] == 200


def test_kill_9_mid_delivery_loses_nothing(srv: CairnServer, rx: Receiver) -> None:
    rx.down.add("/crash")
    hook = add(srv, rx.url("/crash"), ["treasure.claimed", "hunt."])
    events = play(srv, "wh3", n=4)
    want = {e["id"] for e in events if e["type"] == "treasure.claimed" or e["type"].startswith("hunt.")}
    assert settle_wait(lambda: webhook(srv, hook["id"])["failures"] >= 1, timeout=5)
    srv.kill()
    srv.start()
    assert webhook(srv, hook["id"])["backlog"] >= 1  # still pending after the restart (the receiver is still down)
    rx.down.discard("/crash")
    assert settle_wait(lambda: want <= rx.ids("/crash"), timeout=15), want - rx.ids("/crash")
    assert webhook(srv, hook["id"])["state"] == "active"

    # An outbox that lost what it held (its file gone with the crash): the events the engine replays
    # after the outbox's high-water id are enqueued again, and arrive.
    rx.down.add("/crash")
    before = rx.ids("/crash")
    events = play(srv, "wh4", n=2)
    want = {e["id"] for e in events if e["type"] == "treasure.claimed" or e["type"].startswith("hunt.")}
    srv.kill()
    for f in srv.data_dir.glob("webhooks.db*"):
        f.unlink()
    rx.down.discard("/crash")
    srv.start()
    assert settle_wait(lambda: want <= rx.ids("/crash"), timeout=15), want - rx.ids("/crash")
    assert not want & before


def test_targets_apply_on_every_node_and_one_node_delivers(pair: Pair) -> None:
    """With Redis, a target added on one node is listed on the other, and only the lease holder
    queues events: a healthy receiver gets each event once, not once per node."""
    r = Receiver()
    r.fail = r.hang = 0.0
    try:
        status, made = admin(pair.a, "POST", "/v1/webhooks", {"url": r.url("/pair"), "events": ["hunt.", "treasure."],
                                                               "reason": "both nodes"})  # fmt: skip
        assert status == 201, made
        assert settle_wait(lambda: made["id"] in str(admin(pair.b, "GET", "/v1/webhooks")[1]), timeout=5)
        events = play(pair.a, "wp1", n=3)
        want = [e["id"] for e in events if e["type"].startswith(("hunt.", "treasure."))]
        assert settle_wait(lambda: set(want) <= r.ids("/pair"), timeout=10), set(want) - r.ids("/pair")
        time.sleep(0.5)
        got = [int(h["Cairn-Event-Id"]) for h, _ in r.got["/pair"]]
        assert sorted(got) == sorted(want), "each event once"
        assert admin(pair.b, "DELETE", f"/v1/webhooks/{made['id']}?reason=done")[0] == 200
        assert settle_wait(lambda: made["id"] not in str(admin(pair.a, "GET", "/v1/webhooks")[1]), timeout=5)
    finally:
        r.close()


@pytest.mark.parametrize("pair", ["redis"], indirect=True)
def test_a_new_lease_holder_sends_what_a_dead_one_had_not(pair: Pair) -> None:
    """Redis: the lease holder dies (kill -9, for good) holding deliveries; the node that takes the
    lease queues the events after the shared cursor, and they arrive (one node: see
    test_kill_9_mid_delivery_loses_nothing)."""
    r = Receiver()
    r.fail = r.hang = 0.0
    r.down.add("/fo")
    try:
        status, made = admin(pair.a, "POST", "/v1/webhooks", {"url": r.url("/fo"), "events": ["hunt.", "treasure."],
                                                               "reason": "failover"})  # fmt: skip
        assert status == 201, made
        assert settle_wait(lambda: made["id"] in str(admin(pair.b, "GET", "/v1/webhooks")[1]), timeout=5)
        events = play(pair.a, "wf1", n=3)
        want = {e["id"] for e in events if e["type"].startswith(("hunt.", "treasure."))}
        leader = settle_wait(lambda: next((n for n in pair.nodes if webhook(n, made["id"])["backlog"] >= len(want)),
                                          None), timeout=10)  # fmt: skip
        assert leader is not None, "the lease holder holds the deliveries"
        time.sleep(1.5)  # its cursor is shared once a second
        leader.kill()
        r.down.discard("/fo")
        assert settle_wait(lambda: want <= r.ids("/fo"), timeout=15), want - r.ids("/fo")
    finally:
        r.close()
