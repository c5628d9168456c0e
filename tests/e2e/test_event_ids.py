"""Event ids over SSE and the WebSocket session of a real `cairn serve`: 10,000 mixed events (proximity,
claims with the exits they cause, an end) and a restart. Live order equals replay order, and resuming after
any id gives exactly the events that follow it, on both transports."""

from __future__ import annotations

import itertools
import json
import random
import socket
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ADMIN, GAME, SMALL_WORLD, CairnServer, hunt_spec
from tests.e2e.test_session import WsClient

JOURNALED = {"hunt.scheduled", "hunt.started", "hunt.ended", "treasure.found", "treasure.claimed", "treasure.expired"}
Ev = tuple[int, str, str, str]  # id, type, hunt, data (as JSON)


def key(e: dict[str, Any]) -> Ev:
    return e["id"], e["type"], e["hunt"], json.dumps(e["data"], sort_keys=True)


class Sse:
    """One `GET /v1/events` stream, read incrementally (HTTP/1.0: not chunked)."""

    def __init__(self, port: int, after: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.sendall(f"GET /v1/events?after={after} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n\r\n"
                          .encode())  # fmt: skip
        self.buf = b""

    def until(self, hunt: str) -> list[Ev]:
        """Events up to and including the `hunt.started` of `hunt`."""
        out: list[Ev] = []
        while True:
            while b"\n\n" not in self.buf:
                chunk = self.sock.recv(1 << 16)
                assert chunk, "stream closed"
                self.buf += chunk
            frame, self.buf = self.buf.split(b"\n\n", 1)
            for line in frame.split(b"\n"):
                if line.startswith(b"data: {\"id\""):
                    e = json.loads(line[6:])
                    out.append(key(e))
                    if e["type"] == "hunt.started" and e["hunt"] == hunt:
                        return out

    def close(self) -> None:
        self.sock.close()


def ws_until(ws: WsClient, hunt: str) -> list[Ev]:
    out: list[Ev] = []
    while True:
        msg = ws.recv()
        if "event" in msg:
            e = msg["event"]
            out.append(key(e))
            if e["type"] == "hunt.started" and e["hunt"] == hunt:
                return out


def resumed(cairn: CairnServer, after: int, hunt: str, ws: bool) -> list[Ev]:
    if not ws:
        sse = Sse(cairn.port, after)
        try:
            return sse.until(hunt)
        finally:
            sse.close()
    client = WsClient(cairn.port, GAME)
    try:
        client.send({"id": 1, "op": "subscribe", "after": after})
        return ws_until(client, hunt)
    finally:
        client.close()


def marker(cairn: CairnServer, hunt: str) -> None:
    """A hunt whose `hunt.started` ends each read (far from the others' fences)."""
    spec = hunt_spec(hunt, treasures=1, area={"min": [300, -64, 300], "max": [400, 320, 400]})
    assert cairn.request("POST", "/v1/hunts", spec, key=ADMIN)[0] == 201


def test_ids_are_unique_in_send_order_and_resumable_over_sse_and_websocket(tmp_path: Path) -> None:
    cairn = CairnServer(tmp_path / "data", SMALL_WORLD + "\n[events]\nephemeral_seconds = 3600\n")
    cairn.start()
    try:
        spec = hunt_spec("h1", treasures=10, proximity={"radius": 16},
                         spawn={"tags_any": ["surface"], "min_spacing": 64})  # fmt: skip
        spots = [t["pos"] for t in cairn.request("POST", "/v1/hunts", spec, key=ADMIN)[1]["treasures"]]
        sse = Sse(cairn.port, 0)
        ws = WsClient(cairn.port, GAME)
        ws.send({"id": 1, "op": "subscribe", "after": 0})
        players = [f"p{i}" for i in range(500)]
        rnd = random.Random(16)

        def move(inside: bool) -> None:
            ups = []
            for i, p in enumerate(players):
                x, y, z = spots[i % len(spots)]
                dx = rnd.randint(-4, 4) if inside else 40 + rnd.randint(0, 4)
                ups.append({"player": p, "pos": [x + dx, y + 1, z], "teleport": True})
            status, out, _ = cairn.request("POST", "/v1/positions", {"world": "overworld", "updates": ups})
            assert status == 200 and out["errors"] == [], out

        for _ in range(9):  # 9 x 500 enters and as many exits
            move(True)
            move(False)
        move(True)  # every fence full: each claim below retires a fence with 50 players in it
        for n, at in enumerate(spots[:6]):
            dig = {"player": f"digger{n}", "pos": [at[0], at[1] + 1, at[2]], "at": at, "request_id": f"d{n}",
                   "teleport": True}  # fmt: skip
            assert cairn.request("POST", "/v1/hunts/h1/dig", dig)[1]["result"] == "found"
        assert cairn.request("POST", "/v1/hunts/h1/end", key=ADMIN)[0] == 200  # 4 expire; their exits follow
        marker(cairn, "m1")
        live = sse.until("m1")
        assert len(live) >= 10_000
        ids = [e[0] for e in live]
        assert ids == sorted(set(ids)), "unique, and sent in id order"
        assert ws_until(ws, "m1") == live, "the session sends the same events in the same order"
        assert resumed(cairn, 0, "m1", ws=False) == live, "replay order is live order"
        sse.close()
        ws.close()
        # Resume after a claim's or an end's events and the exits they caused (the ids that used to repeat),
        # and at random.
        ends = ("treasure.claimed", "hunt.ended")
        picks = [x[0] for a, b in itertools.pairwise(live) if a[1] in ends for x in (a, b)]
        assert len(picks) >= 10
        picks = [*rnd.sample(picks, 6), *rnd.sample(ids[:-1], 6)]
        for i, after in enumerate(picks):
            assert resumed(cairn, after, "m1", ws=i % 2 == 1) == [e for e in live if e[0] > after], after

        # A restart: the journaled events come back with the same ids and order; new ones follow them.
        assert cairn.stop() == 0
        cairn.start()
        marker(cairn, "m2")
        after_restart = resumed(cairn, ids[-1], "m2", ws=False)
        assert after_restart[0][0] > ids[-1] and [e[1] for e in after_restart][-1] == "hunt.started"
        for i, after in enumerate([0, *picks[:4]]):
            want = [e for e in live if e[0] > after and e[1] in JOURNALED] + after_restart
            assert resumed(cairn, after, "m2", ws=i % 2 == 0) == want, after
    finally:
        if cairn.proc is not None:
            cairn.kill()
