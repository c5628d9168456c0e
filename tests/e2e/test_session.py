"""The WebSocket session over a real socket: JSON and MessagePack frames, batches, pushed events."""

from __future__ import annotations

import json
import socket
from typing import Any

import msgspec
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request, TextMessage

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec


class WsClient:
    """A small blocking WebSocket client on wsproto, for tests."""

    def __init__(self, port: int, key: str | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
        self.sock.sendall(self.ws.send(Request(host="127.0.0.1", target="/v1/session", extra_headers=headers)))
        self.pending: list[Any] = []
        self.closed: CloseConnection | None = None
        while not any(isinstance(e, AcceptConnection) for e in self.pending) and self.closed is None:
            self._read()
        self.pending = [e for e in self.pending if not isinstance(e, AcceptConnection)]

    def _read(self) -> None:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        for ev in self.ws.events():
            if isinstance(ev, CloseConnection):
                self.closed = ev
            else:
                self.pending.append(ev)

    def send(self, obj: Any, binary: bool = False) -> None:
        msg = BytesMessage(msgspec.msgpack.encode(obj)) if binary else TextMessage(json.dumps(obj))
        self.sock.sendall(self.ws.send(msg))

    def recv(self) -> Any:
        parts: list[Any] = []  # a long message may arrive in parts (wsproto hands each read's share)
        while True:
            while not self.pending:
                if self.closed is not None:
                    raise ConnectionError(f"closed {self.closed.code}")
                self._read()
            ev = self.pending.pop(0)
            parts.append(ev.data)
            if ev.message_finished:
                break
        if isinstance(ev, BytesMessage):
            return msgspec.msgpack.decode(b"".join(parts))
        return json.loads("".join(parts))

    def close(self) -> None:
        self.sock.close()


def test_session_json_msgpack_batch_and_pushed_events(cairn: CairnServer) -> None:
    status, hunt, _ = cairn.request("POST", "/v1/hunts", hunt_spec(), key=ADMIN)
    assert status == 201
    t0, t1 = hunt["treasures"][0]["pos"], hunt["treasures"][1]["pos"]
    ws = WsClient(cairn.port, GAME)
    try:
        ws.send({"id": 1, "op": "subscribe", "hunt": "h1", "after": 0})
        first = ws.recv()
        assert first == {"id": 1, "result": {"subscribed": True, "complete": True}}
        assert ws.recv()["event"]["type"] == "hunt.started"  # the backlog
        dig = {"op": "dig", "hunt": "h1", "player": "alice", "pos": [t0[0], t0[1] + 1, t0[2]], "at": t0}
        ws.send({"id": 2, **dig, "request_id": "w1"})
        replies = [ws.recv() for _ in range(3)]
        reply = next(r for r in replies if r.get("id") == 2)
        assert reply["result"]["result"] == "found"
        pushed = [r["event"]["type"] for r in replies if "event" in r]
        assert pushed == ["treasure.found", "treasure.claimed"]
        # MessagePack binary frame with a batch: one result per op, errors in their slots.
        ops = [
            {
                "op": "dig",
                "hunt": "h1",
                "player": "bob",
                "pos": [t1[0], t1[1] + 1, t1[2]],
                "at": t1,
                "request_id": "w2",
            },
            {"op": "dig", "hunt": "nope", "player": "bob", "pos": [0, 0, 0], "at": [0, 0, 0], "request_id": "w3"},
            {"op": "hint", "hunt": "h1", "player": "carol", "pos": [0, 70, 0]},
        ]
        ws.send({"id": 3, "ops": ops}, binary=True)
        got = ws.recv()
        while "event" in got:
            got = ws.recv()
        assert got["id"] == 3 and len(got["results"]) == 3
        assert got["results"][0]["result"] == "found"
        assert got["results"][1]["error"]["code"] == "hunt_not_found"
        assert "hint" in got["results"][2]
        ws.send({"id": 4, "op": "teleport"})
        err = ws.recv()
        while "event" in err:
            err = ws.recv()
        assert err["id"] == 4 and err["error"]["code"] == "validation_error"
        ws.sock.sendall(ws.ws.send(TextMessage("{not json")))
        bad = ws.recv()
        while "event" in bad:  # events are pushed once their records are durable: maybe after a reply
            bad = ws.recv()
        assert bad["error"]["code"] == "invalid_body"
        ws.send({"id": 5, "op": "ping"})
        pong = ws.recv()
        while "event" in pong:
            pong = ws.recv()
        assert pong == {"id": 5, "result": "pong"}
        # A positions op with one bad update: the others apply, the bad one is reported by index.
        ups = [{"player": "dan", "pos": [9000, 70, 9000]}, {"player": "eve", "pos": [0, 9999, 0]}]
        for frame in ({"id": 6, "op": "positions", "world": "overworld", "updates": ups},
                      {"id": 6, "ops": [{"op": "positions", "world": "overworld", "updates": ups}]}):  # fmt: skip
            ws.send(frame, binary=True)
            got = ws.recv()
            while "event" in got:
                got = ws.recv()
            res = got["result"] if "result" in got else got["results"][0]
            assert [(e["index"], e["error"]["field"]) for e in res["errors"]] == [(1, "updates[1].pos[1]")], got
        status, dan, _ = cairn.request("GET", "/v1/players/dan", key=ADMIN)
        assert dan["last_pos"] == [9000, 70, 9000]
    finally:
        ws.close()


def test_session_auth_by_op_and_refusal(cairn: CairnServer) -> None:
    ws = WsClient(cairn.port, None)
    try:
        ws.send({"id": 1, "op": "ping"})
        assert ws.recv()["error"]["code"] == "unauthorized"
        ws.send({"id": 2, "op": "auth", "key": "wrong"})
        assert ws.recv()["error"]["code"] == "unauthorized"
        ws.send({"id": 3, "op": "auth", "key": GAME})
        assert ws.recv() == {"id": 3, "result": {"scope": "game"}}
        ws.send({"id": 4, "op": "ping"})
        assert ws.recv()["result"] == "pong"
    finally:
        ws.close()
    bad = WsClient(cairn.port, "wrong-key")
    try:
        try:
            bad.recv()
            raise AssertionError("a bad key must close the session")
        except ConnectionError as e:
            assert "4401" in str(e)
    finally:
        bad.close()
