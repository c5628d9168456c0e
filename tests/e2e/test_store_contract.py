"""One contract, three stores: the same assertions through the HTTP API of a real `cairn serve`,
on the embedded store, on Redis and on the in-memory store. Claims, idempotency, grants, acks,
leaderboards, events and schedules (timers and recurring hunts). Where a check restarts the server,
the two durable stores must keep everything, and the in-memory one must keep nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from tests.e2e.conftest import ADMIN, GAME, SMALL_WORLD, CairnServer, hunt_spec
from tests.e2e.redis_deploy import Deployment, create, dig_body, read_events, settle_wait

MEMORY = SMALL_WORLD + '\n[store]\nkind = "memory"\n'


@pytest.fixture(params=["embedded", "redis", "memory"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CairnServer]:
    if request.param != "redis":
        srv = CairnServer(tmp_path / "data", MEMORY if request.param == "memory" else SMALL_WORLD)
        srv.start()
        yield srv
        if srv.proc is not None:
            srv.kill()
        return
    d = Deployment("single", request.getfixturevalue("redis_single"), tmp_path)
    d.flush()
    yield d.node()
    d.close()


def test_claims_idempotency_grants_acks_boards_events(node: CairnServer) -> None:
    spots = [t["pos"] for t in create(node, hunt_spec("c", treasures=3))["treasures"]]
    status, first, _ = node.request("POST", "/v1/hunts/c/dig", dig_body("alice", spots[0], "a1"))
    assert status == 200 and first["result"] == "found" and first["claim"]["share"] == 1.0
    claim = first["claim"]
    assert claim["treasure"] == "c#1" and claim["player"] == "alice" and claim["items"]
    # A replayed request_id: the same claim, no second effect.
    replay = node.request("POST", "/v1/hunts/c/dig", dig_body("alice", spots[0], "a1"))[1]
    assert replay["result"] == "found" and replay["claim"] == claim
    # Another player, and the same player with a new request: taken.
    assert node.request("POST", "/v1/hunts/c/dig", dig_body("bob", spots[0], "b1"))[1]["result"] == "taken"
    assert node.request("POST", "/v1/hunts/c/dig", dig_body("alice", spots[0], "a2"))[1]["result"] == "taken"
    miss = node.request("POST", "/v1/hunts/c/dig", dig_body("carol", [spots[1][0] + 40, spots[1][1], spots[1][2]], "m"))
    assert miss[1]["result"] == "miss" and "claim" not in miss[1]
    # The grant stays pending until acked; acking is idempotent.
    grants = node.request("GET", "/v1/players/alice/grants")[1]["grants"]
    assert [(g["claim_id"], g["status"]) for g in grants] == [(claim["claim_id"], "pending")]
    gid = grants[0]["grant_id"]
    acked = node.request("POST", f"/v1/grants/{gid}/ack")
    assert acked[0] == 200 and acked[1]["status"] == "acked"
    assert node.request("POST", f"/v1/grants/{gid}/ack")[1] == acked[1]
    assert node.request("GET", "/v1/players/alice/grants")[1] == {"grants": []}
    assert node.request("POST", "/v1/grants/g_nope/ack")[0] == 404
    # Leaderboards count the claim once, with the full tie order (score, earlier, then player id).
    assert node.request("POST", "/v1/hunts/c/dig", dig_body("bea", spots[1], "b2"))[1]["result"] == "found"
    assert node.request("POST", "/v1/hunts/c/dig", dig_body("cid", spots[2], "c2"))[1]["result"] == "found"
    value = {p: 0.0 for p in ("alice", "bea", "cid")}
    for t in node.request("GET", "/v1/hunts/c")[1]["treasures"]:
        value[t["finders"][0]] += sum(i["value"] for i in t["loot"])
    board = node.request("GET", "/v1/leaderboards/alltime")[1]
    assert [(r["player"], r["score"]) for r in board["records"]] == sorted(
        value.items(), key=lambda kv: (-kv[1], kv[0] != "alice")
    )
    finds = node.request("GET", "/v1/leaderboards/weekly?around=bea&limit=3")[1]
    assert {r["player"] for r in finds["records"]} == {"alice", "bea", "cid"} and finds["resets_at"]
    # Events: in order, resumable from any id.
    events = read_events(node, "c", 0, "treasure.claimed")
    assert [e["type"] for e in events[:3]] == ["hunt.started", "treasure.found", "treasure.claimed"]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    later = read_events(node, "c", ids[1], "treasure.claimed")
    assert later[0]["id"] == ids[2] and later[0]["data"]["player"] == "alice"


def test_timers_start_settle_and_end(node: CairnServer) -> None:
    start = time.time() + 1.5
    starts_at = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    prize = {"mode": "shared_bounty", "window": "1s", "pool": 10}
    spots = [t["pos"] for t in create(node, hunt_spec("s", treasures=1, starts_at=starts_at, duration="3s",
                                                       prize=prize))["treasures"]]  # fmt: skip
    early = node.request("POST", "/v1/hunts/s/dig", dig_body("ann", spots[0], "e"))
    assert early[0] == 409 and early[1]["error"]["code"] == "hunt_not_active"
    time.sleep(max(0.0, start - time.time()) + 0.05)
    ann = node.request("POST", "/v1/hunts/s/dig", dig_body("ann", spots[0], "1"))[1]
    ben = node.request("POST", "/v1/hunts/s/dig", dig_body("ben", spots[0], "2"))[1]
    assert ann["result"] == ben["result"] == "found" and ann["claim"]["share"] is None
    # The window closes: the pool splits 5/5, and the replay now shows the final share.
    assert settle_wait(lambda: node.request("GET", "/v1/hunts/s")[1]["treasures"][0]["state"] == "claimed")
    assert node.request("POST", "/v1/hunts/s/dig", dig_body("ann", spots[0], "1"))[1]["claim"]["share"] == 0.5
    assert [g["items"][0]["count"] for g in node.request("GET", "/v1/players/ben/grants")[1]["grants"]] == [5]
    assert settle_wait(lambda: node.request("GET", "/v1/hunts/s")[1]["state"] == "ended", timeout=6)
    types = [e["type"] for e in read_events(node, "s", 0, "hunt.ended") if e["type"] != "hint.escalated"]
    assert sorted(types) == sorted(["hunt.scheduled", "hunt.started", "treasure.found", "treasure.found",
                                    "treasure.claimed", "hunt.ended"])  # fmt: skip
    assert types[0] == "hunt.scheduled" and types[-1] == "hunt.ended"


def test_recurring_spec_makes_one_instance_per_firing(node: CairnServer) -> None:
    status, body, _ = node.request("POST", "/v1/hunts", hunt_spec("rec", schedule="* * * * *", duration="5m"),
                                   key=ADMIN)  # fmt: skip
    assert status in (200, 201), body

    def instances() -> list[str]:
        return [h["id"] for h in node.request("GET", "/v1/hunts")[1]["hunts"] if h["id"].startswith("rec@")]

    assert settle_wait(lambda: len(instances()) >= 1)
    now = datetime.now(UTC)
    assert f"rec@{now.strftime('%Y%m%dT%H%M')}" in instances() or len(instances()) >= 1
    assert len(instances()) == len(set(instances()))


def test_request_id_replays_only_within_its_hunt_and_survives_a_restart(node: CairnServer) -> None:
    east = {"min": [200, -64, 200], "max": [400, 320, 400]}
    spot = create(node, hunt_spec("east", treasures=2, area=east))["treasures"][0]["pos"]
    # "west" covers east's area too, and its treasures keep min_spacing (8) from east's: a dig at
    # east's treasure is inside west and misses there.
    create(node, hunt_spec("west", treasures=2))
    claim = node.request("POST", "/v1/hunts/east/dig", dig_body("alice", spot, "req-0"))[1]["claim"]

    def check() -> None:
        # The same (player, request_id) elsewhere is a new request: a missing hunt is missing, and
        # another hunt decides the dig itself (a miss there).
        missing = node.request("POST", "/v1/hunts/does-not-exist/dig", dig_body("alice", spot, "req-0"))
        assert missing[0] == 404 and missing[1]["error"]["code"] == "hunt_not_found", missing
        other = node.request("POST", "/v1/hunts/west/dig", dig_body("alice", spot, "req-0"))
        assert other[0] == 200 and other[1]["result"] == "miss" and "claim" not in other[1], other
        # In its own hunt the replay still gets the claim back.
        replay = node.request("POST", "/v1/hunts/east/dig", dig_body("alice", spot, "req-0"))[1]
        assert replay["result"] == "found" and replay["claim"] == claim

    check()
    node.kill()
    node.start()
    if kept_nothing(node):
        return
    check()


def test_worlds_registered_at_runtime_are_journaled_and_retired(node: CairnServer) -> None:
    def worlds() -> dict[str, dict[str, object]]:
        status, body, _ = node.request("GET", "/v1/worlds", key=ADMIN)
        assert status == 200, body
        return {w["world"]: w for w in body["worlds"]}

    assert worlds()["overworld"]["source"] == "procedural" and worlds()["overworld"]["runtime"] is False
    status, body, _ = node.request("PUT", "/v1/worlds/minecraft:the_end", key=ADMIN)
    assert status == 201 and body["world"] == "minecraft:the_end" and body["sites"] == 0, body
    assert body["source"] == "upload" and body["runtime"] is True and body["hunts"] == []
    assert node.request("PUT", "/v1/worlds/minecraft:the_end", {}, key=ADMIN)[0] == 200  # idempotent
    assert node.request("PUT", "/v1/worlds/overworld", key=ADMIN)[0] == 200
    assert node.request("PUT", "/v1/worlds/arena_1", key=GAME)[0] == 403
    for path, body_, code, field in [
        ("/v1/worlds/bad%20world", None, "validation_error", "world"),
        ("/v1/worlds/arena_1", {"generator": "procedural"}, "unknown_field", "generator"),
    ]:
        status, body, _ = node.request("PUT", path, body_, key=ADMIN)
        assert status == 422 and body["error"]["code"] == code and body["error"]["field"] == field, body
    # Sites go up to the new world as to a configured one; hunts are placed on them.
    rows = [{"x": 12 * i, "y": 70, "z": -30, "tags": ["surface"]} for i in range(30)]
    status, body, _ = node.request("PUT", "/v1/worlds/minecraft:the_end/sites", key=ADMIN,
                                   raw=b"\n".join(msgspec.json.encode(r) for r in rows),
                                   headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    assert status == 200 and body["sites"] == 30, body
    spec = hunt_spec("end", treasures=3, world="minecraft:the_end", duration="1h")
    placed = {tuple(t["pos"]) for t in create(node, spec)["treasures"]}
    assert placed <= {(r["x"], r["y"], r["z"]) for r in rows}
    assert worlds()["minecraft:the_end"]["hunts"] == ["end"] and worlds()["minecraft:the_end"]["sites"] == 30
    # A world in use cannot be retired; nor can a configured one or one that does not exist.
    for world, status_, code in [("minecraft:the_end", 409, "world_in_use"), ("overworld", 409, "world_configured"),
                                 ("nowhere", 404, "world_not_found")]:  # fmt: skip
        status, body, _ = node.request("DELETE", f"/v1/worlds/{world}", key=ADMIN)
        assert status == status_ and body["error"]["code"] == code and body["error"]["field"] == "world", body
    # Both survive a restart: the registered world with its sites, and the hunt placed in it.
    assert node.request("PUT", "/v1/worlds/arena_1", key=ADMIN)[0] == 201
    node.kill()
    node.start()
    if kept_nothing(node):
        assert set(worlds()) == {"overworld"}
        return
    listed = worlds()
    assert listed["minecraft:the_end"]["sites"] == 30 and listed["minecraft:the_end"]["hunts"] == ["end"]
    assert listed["arena_1"]["sites"] == 0 and listed["arena_1"]["runtime"] is True
    assert node.request("POST", "/v1/hunts/end/end", key=ADMIN)[0] == 200
    status, body, _ = node.request("DELETE", "/v1/worlds/minecraft:the_end", key=ADMIN)
    assert status == 200 and body == {"world": "minecraft:the_end", "retired": True}, body
    assert "minecraft:the_end" not in worlds()
    assert node.request("GET", "/v1/hunts/end/map", key=ADMIN)[0] == 200  # the dashboard's map of its ended hunt
    status, body, _ = node.request("PUT", "/v1/worlds/minecraft:the_end/sites", key=ADMIN, raw=b'{"x":1,"y":2,"z":3}',
                                   headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    assert status == 422 and body["error"]["code"] == "unknown_world", body
    node.kill()
    node.start()
    assert set(worlds()) == {"overworld", "arena_1"}
    assert node.request("GET", "/v1/hunts/end")[1]["state"] == "ended"  # the ended hunt outlives its world
    # Registered again: a new, empty world (the retired one's sites are gone).
    assert node.request("PUT", "/v1/worlds/minecraft:the_end", key=ADMIN)[1]["sites"] == 0


def kept_nothing(node: CairnServer) -> bool:
    """After a restart: True on the in-memory store, which must have kept nothing (no hunt, no
    world, no claim); False on a durable store, whose checks go on."""
    if "kind = \"memory\"" not in node.config.read_text():
        return False
    status, body, _ = node.request("GET", "/v1/hunts", key=ADMIN)
    assert status == 200 and body["hunts"] == [], body
    return True
