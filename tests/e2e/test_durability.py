"""SPEC guarantees 3 and 4 against a real `cairn serve`: kill -9 mid-stream loses no acknowledged
claim, applies none twice, and keeps every grant pending until it is acked."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec


@pytest.mark.parametrize("durability", ["fsync", "os"])
def test_kill_9_mid_stream_keeps_every_acknowledged_claim_exactly_once(tmp_path: Path, durability: str) -> None:
    srv = CairnServer(tmp_path / "data", env={"CAIRN_STORE_DURABILITY": durability})
    srv.start()
    try:
        status, hunt, _ = srv.request(
            "POST", "/v1/hunts", hunt_spec(treasures=400, spawn={"tags_any": ["surface"]}), key=ADMIN
        )
        assert status == 201, hunt
        spots = [t["pos"] for t in hunt["treasures"]]
        acked: list[tuple[str, str, str]] = []  # (player, treasure, claim_id)
        lock = threading.Lock()
        stop = threading.Event()

        def worker(w: int) -> None:
            for i in range(w, len(spots), 8):
                if stop.is_set():
                    return
                x, y, z = spots[i]
                player = f"p{i}"
                try:
                    code, body, _ = srv.request("POST", "/v1/hunts/h1/dig", {
                        "player": player, "pos": [x, y + 1, z], "at": [x, y, z], "request_id": f"r{i}",
                    })  # fmt: skip
                except OSError:
                    return
                if code == 200 and body["result"] == "found":
                    with lock:
                        acked.append((player, body["claim"]["treasure"], body["claim"]["claim_id"]))
                        if len(acked) >= 120:
                            stop.set()

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(worker, w) for w in range(8)]
            stop.wait(60)
            srv.kill()  # while the workers are still digging
            for f in futures:
                f.result()
        assert len(acked) >= 120

        srv.start()
        status, after, _ = srv.request("GET", "/v1/hunts/h1?reveal=true", key=ADMIN)
        assert status == 200
        finders = {t["id"]: t["finders"] for t in after["treasures"]}
        for player, treasure, _ in acked:
            assert finders[treasure] == [player], f"{treasure}: acknowledged claim of {player} lost or doubled"
        assert all(len(f) <= 1 for f in finders.values())
        # A replayed request_id gets the same claim back after the restart, and has no second effect.
        player, treasure, claim_id = acked[0]
        i = int(player[1:])
        x, y, z = spots[i]
        code, body, _ = srv.request("POST", "/v1/hunts/h1/dig", {
            "player": player, "pos": [x, y + 1, z], "at": [x, y, z], "request_id": f"r{i}",
        })  # fmt: skip
        assert code == 200 and body["claim"]["claim_id"] == claim_id
        # Every acknowledged claim's grant is still pending.
        for player, _, cid in acked[:20]:
            code, body, _ = srv.request("GET", f"/v1/players/{player}/grants")
            assert [g["claim_id"] for g in body["grants"]] == [cid]
    finally:
        srv.kill()


def test_grant_survives_a_kill_between_claim_and_ack_and_is_acked_exactly_once(tmp_path: Path) -> None:
    srv = CairnServer(tmp_path / "data")
    srv.start()
    try:
        _, hunt, _ = srv.request("POST", "/v1/hunts", hunt_spec(), key=ADMIN)
        x, y, z = hunt["treasures"][0]["pos"]
        dig = {"player": "alice", "pos": [x, y + 1, z], "at": [x, y, z], "request_id": "a1"}
        code, dug, _ = srv.request("POST", "/v1/hunts/h1/dig", dig)
        assert code == 200 and dug["result"] == "found"
        srv.kill()  # the player logged out and the engine died before the plugin delivered the reward
        srv.start()
        _, grants, _ = srv.request("GET", "/v1/players/alice/grants")
        assert len(grants["grants"]) == 1 and grants["grants"][0]["status"] == "pending"
        gid = grants["grants"][0]["grant_id"]
        first = srv.request("POST", f"/v1/grants/{gid}/ack")
        second = srv.request("POST", f"/v1/grants/{gid}/ack")
        assert first[0] == second[0] == 200 and first[1]["status"] == second[1]["status"] == "acked"
        srv.kill()
        srv.start()
        _, grants, _ = srv.request("GET", "/v1/players/alice/grants")
        assert grants["grants"] == []  # the ack was durable before it was answered
        code, again, _ = srv.request("POST", f"/v1/grants/{gid}/ack")
        assert code == 200 and again["status"] == "acked"
    finally:
        srv.kill()


def test_sigterm_shuts_down_cleanly_and_restart_replays(tmp_path: Path) -> None:
    srv = CairnServer(tmp_path / "data")
    srv.start()
    _, hunt, _ = srv.request("POST", "/v1/hunts", hunt_spec(), key=ADMIN)
    x, y, z = hunt["treasures"][1]["pos"]
    srv.request("POST", "/v1/hunts/h1/dig", {"player": "bob", "pos": [x, y + 1, z], "at": [x, y, z], "request_id": "b"})
    assert srv.stop() == 0
    srv.start()
    try:
        _, view, _ = srv.request("GET", "/v1/hunts/h1")
        assert view["treasures"][1]["finders"] == ["bob"] and view["treasures_left"] == 9
    finally:
        srv.kill()


def test_a_failed_journal_shows_nothing_unsaved_stops_and_a_restart_replays_it(tmp_path: Path) -> None:
    """The disk fills under a live server: the claim that could not be saved is never shown (not
    by a read, the event stream or the dashboard), the server stops with status 75, and after a
    restart the state is exactly what the journal holds."""
    srv = CairnServer(tmp_path / "data", env={"CAIRN_STORE_FAIL_STOP_GRACE": "1.5"})
    srv.start()
    try:
        _, hunt, _ = srv.request("POST", "/v1/hunts", hunt_spec(treasures=2), key=ADMIN)
        spots = [t["pos"] for t in hunt["treasures"]]

        def dig(player: str, n: int, rid: str) -> tuple[int, Any, dict[str, str]]:
            body = {"player": player, "pos": spots[n], "at": spots[n], "request_id": rid}
            return srv.request("POST", "/v1/hunts/h1/dig", body)

        assert dig("alice", 0, "a")[1]["result"] == "found"  # durable before the disk fills
        stream = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        stream.sendall(f"GET /v1/events?hunt=h1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n\r\n".encode())
        # The disk is full from here: the kernel refuses to grow any file of the server past the
        # journal's WAL as it is now (EFBIG), so the next commit fails inside SQLite.
        assert srv.proc is not None
        wal = (srv.data_dir / "journal.db-wal").stat().st_size
        assert (srv.log.stat().st_size) < wal, "the log must stay writable to show the failure"
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (wal, resource.RLIM_INFINITY))
        seen: list[tuple[str, int, Any]] = []
        done = threading.Event()

        def read_all_the_time() -> None:
            paths = ["/v1/players/bob/grants", "/v1/hunts/h1", "/v1/leaderboards/alltime", "/v1/hunts",
                     "/v1/dashboard/hunts"]  # fmt: skip
            while not done.is_set():
                for path in paths:
                    try:
                        status, body, _ = srv.request("GET", path, key=ADMIN)
                    except OSError:
                        return  # the server is gone
                    seen.append((path, status, body))

        reader = threading.Thread(target=read_all_the_time)
        reader.start()
        status, body, _ = dig("bob", 1, "b")
        assert status == 503 and body["error"]["code"] == "journal_failed", body
        assert srv.request("GET", "/healthz", key=None)[0] == 503
        assert srv.request("GET", "/readyz", key=None)[0] == 503
        metrics = urllib.request.urlopen(srv.url + "/metrics", timeout=5).read().decode()
        assert "\ncairn_journal_failed 1\n" in metrics
        assert srv.proc.wait(30) == 75  # fail-stop, after the grace
        srv.proc = None
        done.set()
        reader.join(30)
        stream.settimeout(2)
        events = b""
        with contextlib.suppress(OSError):
            while chunk := stream.recv(65536):
                events += chunk
        stream.close()
        # Nothing unsaved was ever shown: every read that answered 200 lacks bob's claim.
        shown = [(p, b) for p, s, b in seen if s == 200 and "bob" in json.dumps(b)]
        assert not shown, shown[:3]
        assert {s for _, s, _ in seen} <= {200, 503} and any(s == 503 for _, s, _ in seen), seen[-3:]
        assert b'"player":"alice"' in events and b"bob" not in events
        assert "journal writer failed" in srv.log.read_text()

        srv.start()  # a supervisor's restart: the state is what the journal holds
        assert srv.request("GET", "/v1/players/bob/grants")[1] == {"grants": []}
        assert len(srv.request("GET", "/v1/players/alice/grants")[1]["grants"]) == 1
        view = srv.request("GET", "/v1/hunts/h1")[1]
        assert [t["finders"] for t in view["treasures"]] == [["alice"], []]
        board = srv.request("GET", "/v1/leaderboards/alltime")[1]
        assert [r["player"] for r in board["records"]] == ["alice"]
        assert dig("bob", 1, "b")[1]["result"] == "found"  # the lost request, retried: now it claims
        assert len(srv.request("GET", "/v1/players/bob/grants")[1]["grants"]) == 1
    finally:
        srv.kill()
