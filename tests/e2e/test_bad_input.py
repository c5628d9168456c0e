"""Hostile input to a real server: every answer is a 4xx with a stable code, never a traceback."""

from __future__ import annotations

from wsproto.events import BytesMessage, TextMessage

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec
from tests.e2e.test_session import WsClient

DEEP_JSON = b"[" * 5000 + b"]" * 5000
DEEP_MSGPACK = b"\x91" * 5000 + b"\xc0"


def no_internal_errors(cairn: CairnServer) -> None:
    assert "internal error" not in cairn.log.read_text(), "a request reached the 500 path"


def test_deeply_nested_bodies_are_invalid_body_not_500(cairn: CairnServer) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("h1"), key=ADMIN)[0] == 201
    cases = [  # (path, body, key, the code): bodies that only a recursive decode can reject
        ("/v1/batch", b'{"ops":' + DEEP_JSON + b"}", None, "invalid_body"),
        ("/v1/hunts", DEEP_JSON, ADMIN, "invalid_body"),
        ("/v1/hunts/h1/dig", b'{"player":' + DEEP_JSON + b"}", None, None),  # typed: refused early
    ]
    for path, raw, key, code in cases:
        status, body, _ = cairn.request("POST", path, raw=raw, **({"key": key} if key else {}))
        assert 400 <= status < 500 and (code is None or body["error"]["code"] == code), (path, body)
    bad_op = b'{"ops":[{"op":"dig","hunt":' + DEEP_JSON + b"}]}"
    status, body, _ = cairn.request("POST", "/v1/batch", raw=bad_op)
    assert status in (200, 400), body
    if status == 200:  # only that op fails
        assert body["results"][0]["error"]["code"] in ("invalid_body", "validation_error"), body
    no_internal_errors(cairn)


def test_site_upload_with_a_coordinate_past_64_bits_is_refused(cairn: CairnServer) -> None:
    big = b"99999999999999999999999"
    cases = [
        (b'{"x":1,"y":64,"z":' + big + b"}", "application/x-ndjson"),
        (b"1,2," + big, "text/csv"),
    ]
    for raw, ctype in cases:
        status, body, _ = cairn.request(
            "PUT", "/v1/worlds/overworld/sites", raw=raw, key=ADMIN, headers={"Content-Type": ctype}
        )
        assert status == 422 and body["error"]["code"] == "invalid_sites", (ctype, body)
    no_internal_errors(cairn)


def test_event_stream_after_must_be_a_plain_non_negative_id(cairn: CairnServer) -> None:
    for bad in ("-5", "1_0", "%20%201", "abc", "99999999999999999999999"):
        status, body, _ = cairn.request("GET", f"/v1/events?after={bad}")
        assert status == 422 and body["error"]["field"] == "after", (bad, body)


def test_dashboard_login_with_a_bad_body_is_invalid_body(cairn: CairnServer) -> None:
    status, body, _ = cairn.request("POST", "/v1/dashboard/login", raw=b"garbage", key=None)
    assert status == 400 and body["error"]["code"] == "invalid_body", body
    status, body, _ = cairn.request("POST", "/v1/dashboard/login", {"token": "x", "extra": 1}, key=None)
    assert status == 422, body


def test_session_survives_bad_subscribe_grants_and_deep_frames(cairn: CairnServer) -> None:
    ws = WsClient(cairn.port, None)  # frames are decoded before auth: these need no key
    try:
        ws.sock.sendall(ws.ws.send(TextMessage(DEEP_JSON.decode())))
        assert ws.recv()["error"]["code"] == "invalid_body"
        ws.sock.sendall(ws.ws.send(BytesMessage(DEEP_MSGPACK)))
        assert ws.recv()["error"]["code"] == "invalid_body"
        ws.send({"id": 1, "op": "auth", "key": ADMIN})
        assert ws.recv()["result"]["scope"] == "admin"
        for i, frame in enumerate([
            {"op": "subscribe", "hunt": [1]},
            {"op": "subscribe", "hunt": {"a": 1}},
            {"op": "subscribe", "after": -5},
            {"op": "grants", "player": [1]},
        ], start=2):  # fmt: skip
            ws.send({"id": i, **frame})
            reply = ws.recv()
            assert reply["id"] == i and reply["error"]["code"] == "validation_error", reply
        ws.send({"id": 99, "op": "ping"})
        assert ws.recv() == {"id": 99, "result": "pong"}  # still open
    finally:
        ws.close()
    no_internal_errors(cairn)


def test_player_ids_outside_the_pattern_are_refused_with_the_field(cairn: CairnServer) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("h1"), key=ADMIN)[0] == 201
    # A trailing newline passes a `$`-anchored `re.search`; the id must match the whole pattern.
    for bad in ("", "a b", "ok\n", "x" * 65, "joueur-é", "a/b"):
        dig = {"player": bad, "pos": [0, 64, 0], "at": [0, 63, 0], "request_id": "r1"}
        status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig)
        assert status == 422 and body["error"]["field"] == "player", (bad, body)
        status, body, _ = cairn.request("POST", "/v1/hunts/h1/hint", {"player": bad, "pos": [0, 64, 0]})
        assert status == 422 and body["error"]["field"] == "player", (bad, body)
        ops = [
            {"op": "positions", "world": "overworld", "updates": [{"player": "fine", "pos": [0, 64, 0]},
                                                                  {"player": bad, "pos": [0, 64, 0]}]},
            {"op": "dig", "hunt": "h1", **dig},
        ]  # fmt: skip
        status, body, _ = cairn.request("POST", "/v1/batch", {"ops": ops})
        assert status == 200, body
        moved, dug = body["results"]
        assert [(e["index"], e["error"]["field"]) for e in moved["errors"]] == [(1, "updates[1].player")], (bad, body)
        assert dug["error"]["field"] == "player", (bad, body)
    for bad in ("a%20b", "ok%0A", "x" * 65, "joueur-%C3%A9"):  # path parameters follow the same rule
        routes = [("GET", f"/v1/players/{bad}/grants", GAME), ("POST", f"/v1/players/{bad}/leave", GAME),
                  ("GET", f"/v1/players/{bad}", ADMIN)]  # fmt: skip
        for method, path, key in routes:
            status, body, _ = cairn.request(method, path, key=key)
            assert status == 422 and body["error"]["code"] == "validation_error", (path, body)
            assert body["error"]["field"] == "player", (path, body)
    # The session's ops follow the same rules: the same structs as HTTP and the batch.
    ws = WsClient(cairn.port, GAME)
    try:
        frames = [
            ({"op": "grants", "player": "ok\n"}, "validation_error", "player"),
            ({"op": "leave", "player": "a b"}, "validation_error", "player"),
            ({"op": "grants", "player": "fine", "extra": 1}, "unknown_field", "extra"),
            ({"op": "ack"}, "validation_error", "grant_id"),  # the missing field is named
            ({"op": "subscribe", "after": True}, "validation_error", "after"),
            ({"op": "subscribe", "hunt": "Not A Hunt"}, "validation_error", "hunt"),
            ({"op": "fly"}, "validation_error", "op"),
            ({"ops": [{"op": "ping"}], "more": 1}, "unknown_field", "more"),
        ]
        for i, (frame, code, field) in enumerate(frames):
            ws.send({"id": i, **frame})
            reply = ws.recv()
            assert reply["id"] == i and reply["error"]["code"] == code, (frame, reply)
            assert reply["error"].get("field") == field, (frame, reply)
        ws.send({"id": 50, "op": "leave", "player": "Some_Player.9:x-Y"})
        assert ws.recv() == {"id": 50, "result": {"player": "Some_Player.9:x-Y", "left": True}}
    finally:
        ws.close()
    assert cairn.request("GET", "/v1/players/Some_Player.9:x-Y/grants")[0] == 200
    good = {"player": "Some_Player.9:x-Y", "pos": [0, 64, 0], "at": [0, 63, 0], "request_id": "r2"}
    assert cairn.request("POST", "/v1/hunts/h1/dig", good)[0] == 200
    no_internal_errors(cairn)
