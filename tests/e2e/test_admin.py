"""Operator actions over HTTP, on the embedded store and on two Redis nodes: seen on every node,
audited with the key's label and the reason, refused with clear errors, kept through `kill -9`."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.e2e.conftest import ADMIN_ID, GAME, CairnServer, hunt_spec
from tests.e2e.operator import Pair
from tests.e2e.redis_deploy import create, settle_wait

_rid = itertools.count()


def dig(node: CairnServer, player: str) -> tuple[int, Any]:
    body = {"player": player, "pos": [0, 64, 0], "at": [0, 64, 0], "request_id": f"r{next(_rid)}"}
    status, reply, _ = node.request("POST", "/v1/hunts/h1/dig", body, key=GAME)
    return status, reply


def test_a_bar_is_enforced_on_every_node_audited_and_kept(pair: Pair) -> None:
    create(pair.a, hunt_spec())
    status, body = pair.admin(pair.a, "POST", "/v1/players/steve/bar", {"reason": "x-ray mod, ticket 812"})
    assert status == 200, body
    assert body["action"] == "player.bar" and body["by"] == ADMIN_ID and body["reason"] == "x-ray mod, ticket 812"
    started = time.monotonic()
    barred = settle_wait(lambda: dig(pair.b, "steve")[0] == 403, timeout=5)
    assert barred and time.monotonic() - started < 1.0
    assert dig(pair.b, "steve")[1]["error"]["code"] == "player_barred"
    assert dig(pair.b, "alex")[0] == 200  # only the barred player
    status, body, _ = pair.b.request("POST", "/v1/hunts/h1/hint", {"player": "steve", "pos": [0, 64, 0]}, key=GAME)
    assert status == 403 and body["error"]["code"] == "player_barred"

    # Bad input: no reason, an empty one, twice, lifting a bar that is not there.
    assert pair.admin(pair.a, "POST", "/v1/players/alex/bar", {})[1]["error"]["code"] == "reason_required"
    assert pair.admin(pair.a, "POST", "/v1/players/alex/bar", {"reason": "  "})[0] == 400
    assert pair.admin(pair.a, "POST", "/v1/players/alex/bar", [1])[0] == 400
    status, body = pair.admin(pair.a, "POST", "/v1/players/steve/bar", {"reason": "again"})
    assert status == 409 and body["error"]["code"] == "conflict"
    status, body = pair.admin(pair.a, "DELETE", "/v1/players/alex/bar?reason=none")
    assert status == 409
    status, body, _ = pair.a.request("POST", "/v1/players/alex/bar", {"reason": "x"}, key=GAME)
    assert status == 403  # a game key may not act

    pair.restart()
    assert dig(pair.b, "steve")[0] == 403, "the bar survives kill -9"
    status, body = pair.admin(pair.b, "DELETE", "/v1/players/steve/bar?reason=appeal%20granted")
    assert status == 200 and body["reason"] == "appeal granted"
    assert settle_wait(lambda: dig(pair.a, "steve")[0] == 200, timeout=5)

    status, body = pair.admin(pair.b, "GET", "/v1/audit")
    assert status == 200
    entries = body["entries"]
    assert [(e["action"], e["player"], e["by"], e["reason"]) for e in entries] == [
        ("player.unbar", "steve", ADMIN_ID, "appeal granted"),
        ("player.bar", "steve", ADMIN_ID, "x-ray mod, ticket 812"),
    ]
    assert entries[0]["id"] > entries[1]["id"]
    page, _ = pair.admin(pair.a, "GET", "/v1/audit?limit=1")[1]["entries"], None
    assert [e["action"] for e in page] == ["player.unbar"]
    nxt = pair.admin(pair.a, "GET", "/v1/audit?limit=1")[1]["next_cursor"]
    assert [e["action"] for e in pair.admin(pair.a, "GET", f"/v1/audit?limit=1&cursor={nxt}")[1]["entries"]] == [
        "player.bar"
    ]
    assert pair.admin(pair.a, "GET", "/v1/audit?limit=0")[0] == 422
    assert pair.admin(pair.a, "GET", "/v1/audit?cursor=x")[0] == 422
