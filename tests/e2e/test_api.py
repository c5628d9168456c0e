"""Every route of SPEC.md over real HTTP against a real `cairn serve`: results, scopes and error codes."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec

TEMPERATURES = ("burning", "hot", "warm", "cool", "cold")


def make_hunt(cairn: CairnServer, hunt_id: str = "h1", **kw) -> dict:
    status, body, _ = cairn.request("POST", "/v1/hunts", hunt_spec(hunt_id, **kw), key=ADMIN)
    assert status == 201, body
    return body


def dig_body(player: str, at: list[int], rid: str, pos: list[int] | None = None) -> dict:
    return {"player": player, "pos": pos or [at[0], at[1] + 1, at[2]], "at": at, "request_id": rid}


def test_probes_openapi_and_metrics(cairn: CairnServer) -> None:
    assert cairn.request("GET", "/healthz", key=None)[:2] == (200, {"status": "ok"})
    assert cairn.request("GET", "/readyz", key=None)[0] == 200
    status, doc, _ = cairn.request("GET", "/v1/openapi.json", key=None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert "/v1/hunts/{hunt}/dig" in doc["paths"] and "/v1/events" in doc["paths"]
    # The document needs no key, and a wrong one does not stop it either.
    assert cairn.request("GET", "/v1/openapi.json", key="not-a-key")[:2] == (200, doc)
    req = urllib_get(cairn.url + "/metrics")
    assert "cairn_request_seconds" in req and "cairn_process_resident_memory_bytes" in req


def urllib_get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_auth_401_and_scope_403(cairn: CairnServer) -> None:
    assert cairn.request("GET", "/v1/hunts", key=None)[1]["error"]["code"] == "unauthorized"
    status, body, _ = cairn.request("GET", "/v1/hunts", key="wrong")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body, _ = cairn.request("POST", "/v1/hunts", hunt_spec(), key=GAME)
    assert status == 403 and body["error"]["code"] == "forbidden"
    make_hunt(cairn)
    status, body, _ = cairn.request("GET", "/v1/hunts/h1?reveal=true", key=GAME)
    assert status == 403
    assert cairn.request("POST", "/v1/hunts/h1/end", key=GAME)[0] == 403


def test_create_list_get_and_secrecy(cairn: CairnServer) -> None:
    created = make_hunt(cairn, seed="top-secret")
    assert created["treasures_total"] == 10 and all("pos" in t for t in created["treasures"])
    status, listing, _ = cairn.request("GET", "/v1/hunts")
    assert status == 200
    (h,) = listing["hunts"]
    assert set(h) == {"id", "name", "state", "world", "starts_at", "ends_at", "treasures_total", "treasures_left"}
    status, view, _ = cairn.request("GET", "/v1/hunts/h1")
    text = json.dumps(view)
    assert "pos" not in text and "top-secret" not in text
    for t in created["treasures"]:
        assert json.dumps(t["pos"]) not in text
    status, revealed, _ = cairn.request("GET", "/v1/hunts/h1?reveal=true", key=ADMIN)
    assert [t["pos"] for t in revealed["treasures"]] == [t["pos"] for t in created["treasures"]]
    assert cairn.request("GET", "/v1/hunts/nope")[0] == 404


def test_create_errors(cairn: CairnServer) -> None:
    status, body, _ = cairn.request(
        "POST", "/v1/hunts", hunt_spec(treasures=500, spawn={"min_spacing": 400}), key=ADMIN
    )
    assert status == 422 and body["error"]["code"] == "placement_infeasible"
    assert "of 500 with min_spacing=400" in body["error"]["message"]
    status, body, _ = cairn.request("POST", "/v1/hunts", {**hunt_spec(), "color": "red"}, key=ADMIN)
    assert status == 422 and body["error"]["code"] == "unknown_field"
    status, body, _ = cairn.request("POST", "/v1/hunts", hunt_spec(treasures="many"), key=ADMIN)
    assert status == 422 and body["error"]["field"] == "treasures"
    status, body, _ = cairn.request("POST", "/v1/hunts", raw=b"{not json", key=ADMIN)
    assert status == 400 and body["error"]["code"] == "invalid_body"
    for spec in (hunt_spec(leaderboards=["weekyl"]), hunt_spec(leaderboards=["weekyl"], schedule="0 * * * *")):
        status, body, _ = cairn.request("POST", "/v1/hunts", spec, key=ADMIN)
        assert status == 422 and body["error"]["code"] == "unknown_leaderboard", body
        assert body["error"]["field"] == "leaderboards" and "'weekyl'" in body["error"]["message"]
    assert cairn.request("GET", "/v1/hunts")[1]["hunts"] == []
    # solve_by past the end: the final hint would never come.
    late = hunt_spec(duration="1h", hints={"cooldown": "0s", "solve_by": "90m"})
    status, body, _ = cairn.request("POST", "/v1/hunts", late, key=ADMIN)
    assert status == 422 and body["error"]["code"] == "validation_error", body
    assert body["error"]["field"] == "hints.solve_by"
    # `<spec id>@<start>` names a recurring hunt's instances: a hunt created by hand cannot take such an id,
    # or a recurring spec would adopt it as its own instance.
    for instance_like in ("friday@20270101T1900", "a@20279999T9999"):
        status, body, _ = cairn.request("POST", "/v1/hunts", hunt_spec(instance_like), key=ADMIN)
        assert (status, body["error"]["code"], body["error"]["field"]) == (422, "validation_error", "id"), body
    on_time = hunt_spec("on-time", duration="1h", hints={"cooldown": "0s", "solve_by": "1h"})
    assert cairn.request("POST", "/v1/hunts", on_time, key=ADMIN)[0] == 201
    make_hunt(cairn)
    status, body, _ = cairn.request("POST", "/v1/hunts", hunt_spec(), key=ADMIN)
    assert status == 409 and body["error"]["code"] == "hunt_exists"
    hunts = cairn.request("GET", "/v1/hunts")[1]["hunts"]
    assert [h["treasures_total"] for h in hunts] == [10, 10]  # nothing half-written


def test_dig_found_taken_miss_replay_and_errors(cairn: CairnServer) -> None:
    created = make_hunt(cairn)
    at = created["treasures"][0]["pos"]
    status, found, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("alice", at, "a1"))
    assert status == 200 and found["result"] == "found"
    claim = found["claim"]
    assert set(claim) == {"claim_id", "treasure", "player", "at", "share", "items"} and claim["share"] == 1.0
    assert claim["at"].endswith("Z")
    status, taken, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("bob", at, "b1"))
    assert taken["result"] == "taken" and "claim" not in taken
    replay = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("alice", at, "a1"))[1]
    assert replay["claim"] == claim
    far = [at[0] - 300 if at[0] > 0 else at[0] + 300, at[1], at[2]]  # inside the area (x in -400..400)
    miss = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("carol", far, "c1"))[1]
    assert miss["result"] == "miss" and miss["temperature"] in TEMPERATURES
    # Outside the hunt's area: a plain miss with its temperature (breaking blocks anywhere is play, not an error).
    for i, outside in enumerate(([401, 70, 0], [0, 70, -401])):
        status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body(f"olga{i}", outside, f"o{i}"))
        assert status == 200 and body["result"] == "miss" and body["temperature"] in TEMPERATURES, body
    status, body, _ = cairn.request(
        "POST", "/v1/hunts/h1/dig", dig_body("carol", at, "c2", pos=[at[0] + 9, at[1], at[2]])
    )
    assert status == 422 and body["error"]["code"] in ("out_of_reach", "implausible_movement")
    status, body, _ = cairn.request(
        "POST", "/v1/hunts/h1/dig", dig_body("dave", at, "d1", pos=[at[0] + 9, at[1], at[2]])
    )
    assert status == 422 and body["error"]["code"] == "out_of_reach"
    status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", {**dig_body("dave", at, "d2"), "tier": "legendary"})
    assert status == 422 and body["error"]["code"] == "unknown_field"
    status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("bad name!", at, "x"))
    assert status == 422 and body["error"]["field"] == "player"
    status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("eve", [40_000_000, 0, 0], "x"))
    assert status == 422
    assert cairn.request("POST", "/v1/hunts/nope/dig", dig_body("eve", at, "x"))[0] == 404
    cairn.request("POST", "/v1/hunts/h1/end", key=ADMIN)
    status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("frank", at, "f1"))
    assert status == 409 and body["error"]["code"] == "hunt_not_active"


def test_rate_limit_429_with_retry_after(tmp_path) -> None:
    srv = CairnServer(tmp_path / "d", env={"CAIRN_LIMITS_DIG_RATE": "1", "CAIRN_LIMITS_DIG_BURST": "2"})
    srv.start()
    try:
        created = make_hunt(srv)
        at = created["treasures"][0]["pos"]
        far = [at[0] - 200 if at[0] > 0 else at[0] + 200, at[1], at[2]]  # inside the area (x in -400..400)
        codes = [srv.request("POST", "/v1/hunts/h1/dig", dig_body("p", far, f"r{i}"))[0] for i in range(3)]
        assert codes == [200, 200, 429]
        status, body, headers = srv.request("POST", "/v1/hunts/h1/dig", dig_body("p", far, "r9"))
        assert status == 429 and body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
    finally:
        srv.kill()


def test_hint_and_cooldown(cairn: CairnServer) -> None:
    make_hunt(cairn, hints={"cooldown": "30s", "kinds": ["temperature", "bearing", "region", "riddle"]})
    status, body, _ = cairn.request(
        "POST", "/v1/hunts/h1/hint", {"player": "alice", "pos": [0, 70, 0], "request_id": "h1"}
    )
    assert status == 200 and set(body["hint"]) == {"temperature", "vertical", "bearing", "region", "riddle"}
    assert body["next_hint_in"] == 30
    again = cairn.request("POST", "/v1/hunts/h1/hint", {"player": "alice", "pos": [0, 70, 0], "request_id": "h1"})
    assert again[0] == 200 and again[1] == body  # a replayed request_id: same hint, no new cooldown
    status, err, headers = cairn.request("POST", "/v1/hunts/h1/hint", {"player": "alice", "pos": [0, 70, 0]})
    assert status == 429 and err["error"]["code"] == "hint_cooldown" and err["error"]["retry_after"] > 0
    assert "Retry-After" in headers


def test_positions_and_implausible_movement(cairn: CairnServer) -> None:
    # Treasures 64 apart: no other fence reaches the spots used below (each within 40 of treasure 1).
    created = make_hunt(cairn, proximity={"radius": 16}, spawn={"tags_any": ["surface"], "min_spacing": 64})
    x, y, z = created["treasures"][0]["pos"]
    body = {"world": "overworld", "updates": [{"player": "alice", "pos": [x + 40, y, z], "teleport": True}]}
    assert cairn.request("POST", "/v1/positions", body)[1] == {"events": [], "errors": []}
    body = {"world": "overworld", "updates": [{"player": "alice", "pos": [x + 5, y, z], "teleport": True}]}
    status, out, _ = cairn.request("POST", "/v1/positions", body)
    assert status == 200 and [e["type"] for e in out["events"]] == ["proximity.enter"]
    assert out["events"][0]["data"]["treasure"] == "h1#1" and "pos" not in out["events"][0]["data"]
    body = {"world": "overworld", "updates": [{"player": "alice", "pos": [x + 5000, y, z]}]}
    status, out, _ = cairn.request("POST", "/v1/positions", body)
    assert status == 200 and out["events"] == [] and len(out["errors"]) == 1, out
    err = out["errors"][0]
    assert err["index"] == 0 and err["error"]["code"] == "implausible_movement"
    assert err["error"]["field"] == "updates[0].pos"
    status, info, _ = cairn.request("GET", "/v1/players/alice", key=ADMIN)
    assert info["flags"] == 1
    # Logging out drops the proximity state: coming back inside the fence enters again.
    assert cairn.request("POST", "/v1/players/alice/leave")[1] == {"player": "alice", "left": True}
    body = {"world": "overworld", "updates": [{"player": "alice", "pos": [x + 5, y, z]}]}
    status, out, _ = cairn.request("POST", "/v1/positions", body)
    assert status == 200 and [e["type"] for e in out["events"]] == ["proximity.enter"]
    assert cairn.request("POST", "/v1/positions", {"world": "nether", "updates": []})[0] == 422


def test_dig_and_hint_accept_teleport_after_a_portal_trip(cairn: CairnServer) -> None:
    make_hunt(cairn)
    far = [390, 70, 390]  # 550 blocks from the first report, at once: a portal, not a walk
    body = {"world": "overworld", "updates": [{"player": "ann", "pos": [0, 70, 0]}]}
    assert cairn.request("POST", "/v1/positions", body)[0] == 200
    status, err, _ = cairn.request("POST", "/v1/hunts/h1/dig", dig_body("ann", [far[0], 69, far[2]], "d1", far))
    assert status == 422 and err["error"]["code"] == "implausible_movement" and err["error"]["field"] == "pos"
    status, out, _ = cairn.request("POST", "/v1/hunts/h1/dig",
                                   {**dig_body("ann", [far[0], 69, far[2]], "d2", far), "teleport": True})  # fmt: skip
    assert status == 200 and out["result"] == "miss", out
    back = [0, 70, 10]
    status, out, _ = cairn.request("POST", "/v1/hunts/h1/hint", {"player": "ann", "pos": back, "teleport": True})
    assert status == 200 and "hint" in out, out
    ops = [{"op": "dig", "hunt": "h1", **dig_body("ann", [far[0], 69, far[2]], "d3", far), "teleport": True},
           {"op": "hint", "hunt": "h1", "player": "bob", "pos": back, "teleport": False}]  # fmt: skip
    status, out, _ = cairn.request("POST", "/v1/batch", {"ops": ops})
    assert status == 200 and out["results"][0]["result"] == "miss" and "hint" in out["results"][1], out
    status, err, _ = cairn.request("POST", "/v1/hunts/h1/hint", {"player": "ann", "pos": back, "teleport": "yes"})
    assert status == 422 and err["error"]["code"] == "validation_error" and err["error"]["field"] == "teleport"


def test_one_bad_update_does_not_sink_a_positions_batch(cairn: CairnServer) -> None:
    created = make_hunt(cairn, proximity={"radius": 16}, spawn={"tags_any": ["surface"], "min_spacing": 64})
    x, y, z = created["treasures"][0]["pos"]
    start = {"world": "overworld", "updates": [{"player": p, "pos": [x + 40, y, z]} for p in ("a", "b", "c", "d")]}
    assert cairn.request("POST", "/v1/positions", start)[1] == {"events": [], "errors": []}
    ups = [
        {"player": "a", "pos": [x + 2, y, z]},  # a walk into the fence
        {"player": "b", "pos": [x + 4000, y, z]},  # a portal trip without `teleport`
        {"player": "c", "pos": [x + 3, 9999, z]},  # above the world's height limit
        {"player": "bad id!", "pos": [x, y, z]},
        {"player": "d", "pos": [x + 4, y, z], "teleport": True},
    ]
    expected = [
        (1, "implausible_movement", "updates[1].pos"), (2, "validation_error", "updates[2].pos[1]"),
        (3, "validation_error", "updates[3].player"),
    ]  # fmt: skip
    for path, body, pick in [
        ("/v1/positions", {"world": "overworld", "updates": ups}, lambda out: out),
        ("/v1/batch", {"ops": [{"op": "positions", "world": "overworld", "updates": ups}]},
         lambda out: out["results"][0]),
    ]:  # fmt: skip
        cairn.request("POST", "/v1/players/a/leave")
        cairn.request("POST", "/v1/players/d/leave")
        status, out, _ = cairn.request("POST", path, body)
        assert status == 200, out
        out = pick(out)
        got = [(e["index"], e["error"]["code"], e["error"]["field"]) for e in out["errors"]]
        assert got == expected, out
        entered = sorted(e["data"]["player"] for e in out["events"] if e["type"] == "proximity.enter")
        assert entered == ["a", "d"], out
    # b was not moved: its next plausible step from where it was is accepted.
    step = {"world": "overworld", "updates": [{"player": "b", "pos": [x + 39, y, z]}]}
    assert cairn.request("POST", "/v1/positions", step)[1]["errors"] == []
    # The request as a whole is still refused for a bad world or envelope.
    status, err, _ = cairn.request("POST", "/v1/positions", {"world": "no such!", "updates": ups})
    assert status == 422 and err["error"]["field"] == "world"


def test_batch_results_in_order_with_errors_in_their_slots(cairn: CairnServer) -> None:
    created = make_hunt(cairn)
    at = created["treasures"][2]["pos"]
    ops = [
        {"op": "dig", "hunt": "h1", **dig_body("alice", at, "b1")},
        {"op": "dig", "hunt": "nope", **dig_body("bob", at, "b2")},
        {"op": "hint", "hunt": "h1", "player": "carol", "pos": [0, 70, 0]},
        # Far from the hunt's area: no treasure can be near, whatever the placement secret chose.
        {"op": "positions", "world": "overworld", "updates": [{"player": "dave", "pos": [9000, 70, 9000]}]},
        {"op": "fly", "hunt": "h1"},
        {"op": "dig", "hunt": "h1", **dig_body("erin", at, "b3"), "tier": "epic"},
    ]
    status, out, _ = cairn.request("POST", "/v1/batch", {"ops": ops})
    assert status == 200 and len(out["results"]) == 6
    r = out["results"]
    assert r[0]["result"] == "found" and r[1]["error"]["code"] == "hunt_not_found"
    assert "hint" in r[2] and r[3] == {"events": [], "errors": []}
    assert r[4]["error"]["code"] in ("validation_error", "unknown_field") and r[5]["error"]["code"] == "unknown_field"
    status, _body, _ = cairn.request("POST", "/v1/batch", {"ops": [{"op": "hint"}] * 1001})
    assert status == 422


def test_grants_and_ack(cairn: CairnServer) -> None:
    created = make_hunt(cairn)
    at = created["treasures"][0]["pos"]
    cairn.request("POST", "/v1/hunts/h1/dig", dig_body("alice", at, "a1"))
    _status, grants, _ = cairn.request("GET", "/v1/players/alice/grants")
    (g,) = grants["grants"]
    assert g["status"] == "pending" and g["items"]
    assert cairn.request("POST", f"/v1/grants/{g['grant_id']}/ack")[1]["status"] == "acked"
    assert cairn.request("POST", f"/v1/grants/{g['grant_id']}/ack")[1]["status"] == "acked"
    assert cairn.request("GET", "/v1/players/alice/grants")[1]["grants"] == []
    assert cairn.request("POST", "/v1/grants/g_nope/ack")[0] == 404
    status, board, _ = cairn.request("GET", "/v1/leaderboards/weekly?limit=5")
    assert status == 200 and board["board"] == "weekly" and board["resets_at"].endswith("Z")
    assert board["records"][0]["player"] == "alice" and board["records"][0]["rank"] == 1
    status, board, _ = cairn.request("GET", "/v1/leaderboards/alltime?around=alice&limit=3")
    assert status == 200 and board["records"][0]["score"] > 0 and board["resets_at"] is None
    assert cairn.request("GET", "/v1/leaderboards/nope")[1]["error"]["code"] == "board_not_found"
    _, pending, _ = cairn.request("GET", "/v1/grants/pending?older_than_minutes=0", key=ADMIN)
    assert pending["grants"] == []


def test_query_parameters_out_of_their_form_are_422(cairn: CairnServer) -> None:
    """A query value that is not what its parameter takes is a 422 naming it: not an empty answer, not every
    row, not a stream held open for an id that cannot exist."""
    make_hunt(cairn)
    bad = [
        ("/v1/grants/pending?older_than_minutes=nan", ADMIN, "older_than_minutes"),
        ("/v1/grants/pending?older_than_minutes=-inf", ADMIN, "older_than_minutes"),
        ("/v1/grants/pending?older_than_minutes=-1", ADMIN, "older_than_minutes"),
        ("/v1/leaderboards/weekly?around=bad%20id", None, "around"),
        ("/v1/leaderboards/weekly?player=%00", None, "player"),
        ("/v1/leaderboards/weekly?limit=%2B5", None, "limit"),
        ("/v1/leaderboards/weekly?cursor=1_000", None, "cursor"),
        ("/v1/events?hunt=%00", None, "hunt"),
        ("/v1/events?hunt=" + "a" * 5000, None, "hunt"),
        ("/v1/audit?limit=%2B5", ADMIN, "limit"),
        ("/v1/audit?limit=%201", ADMIN, "limit"),
        ("/v1/audit?cursor=1_000", ADMIN, "cursor"),
        ("/v1/audit?limit=%D9%A1", ADMIN, "limit"),  # an Arabic-Indic 1
    ]
    for path, key, field in bad:
        status, body, _ = cairn.request("GET", path, **({"key": key} if key else {}))
        assert (status, body["error"]["code"], body["error"].get("field")) == (422, "validation_error", field), path
    assert cairn.request("GET", "/v1/audit?limit=5", key=ADMIN)[0] == 200
    assert cairn.request("GET", "/v1/grants/pending?older_than_minutes=2.5", key=ADMIN)[0] == 200


def test_body_cap_413_and_server_still_answers(cairn: CairnServer) -> None:
    status, body, _ = cairn.request("POST", "/v1/batch", raw=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert cairn.request("GET", "/healthz", key=None)[0] == 200


def test_malformed_http_and_unknown_path(cairn: CairnServer) -> None:
    with socket.create_connection(("127.0.0.1", cairn.port), timeout=5) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 400")
    assert cairn.request("GET", "/v2/nothing")[0] == 404
    assert cairn.request("DELETE", "/v1/hunts")[0] == 405
    assert cairn.request("GET", "/healthz", key=None)[0] == 200


def test_sse_stream_resumes_after_disconnect(cairn: CairnServer) -> None:
    created = make_hunt(cairn)

    def read_events(after: int, want: int) -> list[dict]:
        with socket.create_connection(("127.0.0.1", cairn.port), timeout=5) as s:
            head = f"GET /v1/events?hunt=h1&after={after} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n"
            s.sendall(head.encode() + b"\r\n")
            buf, events = b"", []
            deadline = time.monotonic() + 10
            while len(events) < want and time.monotonic() < deadline:
                buf += s.recv(65536)
                events = [
                    json.loads(line[6:])
                    for line in buf.decode(errors="replace").split("\n")
                    if line.startswith('data: {"id"')
                ]
            return events

    first = read_events(0, 1)
    assert first[0]["type"] == "hunt.started"
    last = first[-1]["id"]
    for i, t in enumerate(created["treasures"][:3]):
        cairn.request("POST", "/v1/hunts/h1/dig", dig_body(f"p{i}", t["pos"], f"r{i}"))
    resumed = read_events(last, 6)
    assert all(e["id"] > last for e in resumed)
    assert [e["type"] for e in resumed[:2]] == ["treasure.found", "treasure.claimed"]
    ids = [e["id"] for e in resumed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "bad", [b'{"player": "a"', b"[]", b'{"player": 5, "pos": [0,0,0], "at": [0,0,0], "request_id": "x"}']
)
def test_bad_bodies_get_clear_4xx(cairn: CairnServer, bad: bytes) -> None:
    make_hunt(cairn)
    status, body, _ = cairn.request("POST", "/v1/hunts/h1/dig", raw=bad)
    assert 400 <= status < 500 and body["error"]["code"] in ("invalid_body", "validation_error")
    assert cairn.request("GET", "/healthz", key=None)[0] == 200


def test_sse_pushes_live_events_to_a_connected_subscriber(cairn: CairnServer) -> None:
    created = make_hunt(cairn)
    with socket.create_connection(("127.0.0.1", cairn.port), timeout=5) as s:
        head = f"GET /v1/events?hunt=h1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GAME}\r\n\r\n"
        s.sendall(head.encode())
        buf = b""
        while b"hunt.started" not in buf:
            buf += s.recv(65536)
        at = created["treasures"][0]["pos"]
        assert cairn.request("POST", "/v1/hunts/h1/dig", dig_body("alice", at, "live"))[1]["result"] == "found"
        deadline = time.monotonic() + 5
        while b"treasure.claimed" not in buf and time.monotonic() < deadline:
            buf += s.recv(65536)
    assert b"event: treasure.found" in buf and b"event: treasure.claimed" in buf


def test_authorization_header_name_in_any_case(cairn: CairnServer) -> None:
    """Header names are case-insensitive (RFC 9110): the usual spellings are picked out while parsing,
    any other is found by a scan; a wrong key is refused either way."""
    import http.client

    make_hunt(cairn)

    def send(method: str, path: str, name: str, key: str, body: dict | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", cairn.port, timeout=10)
        try:
            conn.putrequest(method, path)
            conn.putheader(name, f"Bearer {key}")
            data = json.dumps(body).encode() if body is not None else b""
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            return conn.getresponse().status
        finally:
            conn.close()

    dig = dig_body("casey", [3, 64, 3], "case-1", pos=[3, 65, 3])
    hint = {"player": "casey", "pos": [3, 65, 3]}
    for name in ("Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"):
        assert send("POST", "/v1/hunts/h1/dig", name, GAME, dig) == 200, name
        assert send("POST", "/v1/hunts/h1/hint", name, GAME, hint) in (200, 429), name
        assert send("GET", "/v1/hunts/h1?reveal=1", name, ADMIN) == 200, name
        assert send("POST", "/v1/hunts/h1/dig", name, "not-a-key", dig) == 401, name
