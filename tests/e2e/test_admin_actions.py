"""Undoing and adjusting over HTTP, on the embedded store and on two Redis nodes: a claim voided on
node `a` is seen voided on node `b` (its grant, the leaderboard, its treasure hidden again), grants
cancelled and reissued, hunts extended, paused, renamed, ended and archived, flags cleared; all kept
through `kill -9`, audited with the key's label and the reason, and bad input refused."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from typing import Any

from tests.e2e.conftest import ADMIN, ADMIN_ID, GAME, CairnServer, hunt_spec
from tests.e2e.operator import Pair
from tests.e2e.redis_deploy import create, settle_wait

_rid = itertools.count()


def dig(node: CairnServer, player: str, at: list[int], hunt: str = "h1") -> tuple[int, Any]:
    body = {"player": player, "pos": at, "at": at, "request_id": f"r{next(_rid)}", "teleport": True}
    status, reply, _ = node.request("POST", f"/v1/hunts/{hunt}/dig", body, key=GAME)
    return status, reply


def claim(node: CairnServer, player: str, at: list[int]) -> dict[str, Any]:
    status, reply = dig(node, player, at)
    assert status == 200 and reply["result"] == "found", reply
    found: dict[str, Any] = reply["claim"]
    return found


def test_undo_and_adjust_seen_on_every_node_audited_and_kept(pair: Pair) -> None:
    a, b = pair.a, pair.b
    create(a, hunt_spec())
    create(a, hunt_spec("h2", treasures=2))
    spots = [t["pos"] for t in pair.admin(a, "GET", "/v1/hunts/h1?reveal=true")[1]["treasures"]]

    def see(node: CairnServer, path: str) -> Any:
        status, body = pair.admin(node, "GET", path)
        assert status == 200, (path, body)
        return body

    def score(node: CairnServer, player: str) -> float | None:
        records = see(node, f"/v1/leaderboards/alltime?player={player}")["records"]
        return records[0]["score"] if records else None

    assert settle_wait(lambda: pair.admin(b, "GET", "/v1/hunts/h1")[0] == 200, timeout=5)
    c1 = claim(b, "ann", spots[0])
    c2 = claim(b, "ann", spots[1])
    c3 = claim(b, "bob", spots[2])
    v2 = sum(i["value"] for i in c2["items"])
    grants = {g["claim_id"]: g["grant_id"] for p in ("ann", "bob") for g in see(b, f"/v1/players/{p}/grants")["grants"]}
    g1, g2, g3 = grants[c1["claim_id"]], grants[c2["claim_id"]], grants[c3["claim_id"]]
    assert b.request("POST", f"/v1/grants/{g3}/ack", key=GAME)[0] == 200

    # claim.void with rehide, on a; seen on b.
    status, body = pair.admin(a, "POST", f"/v1/claims/{c1['claim_id']}/void", {"reason": "x-ray", "rehide": True})
    assert status == 200, body
    assert (body["action"], body["by"], body["reason"], body["target"]) == ("claim.void", ADMIN_ID, "x-ray",
                                                                            c1["claim_id"])  # fmt: skip
    assert settle_wait(lambda: see(b, f"/v1/claims/{c1['claim_id']}").get("voided") is True, timeout=5)
    assert see(b, f"/v1/grants/{g1}")["status"] == "cancelled"
    assert g1 not in {g["grant_id"] for g in see(b, "/v1/players/ann/grants")["grants"]}
    assert score(b, "ann") == v2
    h1 = see(b, "/v1/hunts/h1")
    assert h1["treasures"][0]["state"] == "hidden" and h1["treasures_left"] == 8
    assert dig(b, "ann", spots[0])[1]["result"] == "taken"  # the voided player cannot find it again
    c4 = claim(b, "cid", spots[0])
    # Bad input.
    status, body = pair.admin(b, "POST", f"/v1/claims/{c1['claim_id']}/void", {"reason": "again"})
    assert status == 409 and body["error"]["code"] == "claim_voided"
    status, body = pair.admin(a, "POST", "/v1/claims/c_nope/void", {"reason": "x"})
    assert status == 404 and body["error"]["code"] == "claim_not_found"
    assert pair.admin(a, "POST", f"/v1/claims/{c2['claim_id']}/void", {})[1]["error"]["code"] == "reason_required"
    # On b, where c4 was just claimed: a may not have read it yet, and would answer 404 claim_not_found.
    status, body = pair.admin(b, "POST", f"/v1/claims/{c4['claim_id']}/void", {"reason": "x", "rehide": 1})
    assert status == 422

    # Two voids of one claim at once (one on each node): one wins, the other is told it lost.
    results: list[tuple[int, Any]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(
        pair.admin(n, "POST", f"/v1/claims/{c3['claim_id']}/void", {"reason": "race"}))) for n in (a, b)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in results) == [200, 409], results
    assert settle_wait(lambda: see(a, f"/v1/grants/{g3}")["status"] == "revoked", timeout=5)
    assert settle_wait(lambda: see(b, f"/v1/grants/{g3}")["status"] == "revoked", timeout=5)
    assert score(b, "bob") is None

    # grant.cancel and grant.reissue.
    assert pair.admin(a, "POST", f"/v1/grants/{g2}/cancel", {"reason": "duplicate"})[0] == 200
    status, body, _ = b.request("POST", f"/v1/grants/{g2}/ack", key=GAME)
    assert status == 409 and body["error"]["code"] == "grant_cancelled"
    status, body = pair.admin(b, "POST", f"/v1/grants/{g2}/cancel", {"reason": "again"})
    assert status == 409
    status, body = pair.admin(a, "POST", f"/v1/grants/{g2}/reissue", {"reason": "lost in a crash"})
    assert status == 200 and body["args"] == {"grant_id": f"{g2}.r1"}
    assert settle_wait(lambda: pair.admin(b, "GET", f"/v1/grants/{g2}.r1")[0] == 200, timeout=5)
    assert b.request("POST", f"/v1/grants/{g2}.r1/ack", key=GAME)[0] == 200
    assert b.request("POST", f"/v1/grants/{g2}.r1/ack", key=GAME)[0] == 200  # acking stays idempotent
    status, body = pair.admin(a, "POST", f"/v1/grants/{g2}.r1/cancel", {"reason": "x"})
    assert status == 409 and body["error"]["code"] == "grant_acked"

    # Hunts: extend, pause and resume, rename, end (SPEC: no body, idempotent), archive.
    ends = see(a, "/v1/hunts/h1")["ends_at"]
    status, body = pair.admin(a, "POST", "/v1/hunts/h1/extend", {"reason": "busy night", "by": "30m"})
    assert status == 200, body
    moved = datetime.fromisoformat(ends.replace("Z", "+00:00")).timestamp() + 1800
    assert settle_wait(lambda: see(b, "/v1/hunts/h1")["ends_at"] != ends, timeout=5)
    assert datetime.fromisoformat(see(b, "/v1/hunts/h1")["ends_at"].replace("Z", "+00:00")).timestamp() == moved
    status, body = pair.admin(a, "POST", "/v1/hunts/h1/extend", {"reason": "x", "ends_at": "2020-01-01T00:00:00Z"})
    assert status == 422
    assert pair.admin(a, "POST", "/v1/hunts/h1/pause", {"reason": "server restart"})[0] == 200
    assert settle_wait(lambda: dig(b, "dan", spots[5])[0] == 409, timeout=5)
    assert dig(b, "dan", spots[5])[1]["error"]["code"] == "hunt_paused"
    assert pair.admin(b, "POST", "/v1/hunts/h1/pause", {"reason": "again"})[0] == 409
    assert pair.admin(b, "POST", "/v1/hunts/h1/resume", {"reason": "back up"})[0] == 200
    assert settle_wait(lambda: dig(a, "dan", [0, 64, 0])[0] == 200, timeout=5)
    assert pair.admin(a, "PATCH", "/v1/hunts/h1", {"reason": "typo", "name": "Friday Night"})[0] == 200
    assert pair.admin(a, "PATCH", "/v1/hunts/h1", {"reason": "typo", "name": ""})[0] == 422
    assert settle_wait(lambda: see(b, "/v1/hunts/h1")["name"] == "Friday Night", timeout=5)
    status, body = pair.admin(a, "DELETE", "/v1/hunts/h1?reason=cleanup")
    assert status == 409 and body["error"]["code"] == "hunt_not_ended"
    status, body, _ = a.request("POST", "/v1/hunts/h2/end", key=ADMIN)
    assert status == 200 and body["state"] == "ended"
    assert a.request("POST", "/v1/hunts/h2/end", key=ADMIN)[0] == 200
    assert settle_wait(lambda: see(b, "/v1/hunts/h2")["state"] == "ended", timeout=5)
    assert pair.admin(b, "DELETE", "/v1/hunts/h2", {"reason": "cleanup"})[0] == 200
    assert settle_wait(lambda: [h["id"] for h in see(a, "/v1/hunts")["hunts"]] == ["h1"], timeout=5)
    assert sorted(h["id"] for h in see(a, "/v1/hunts?archived=true")["hunts"]) == ["h1", "h2"]
    assert see(a, "/v1/hunts/h2")["archived"] is True

    # player.clear_flags: an implausible move flags a player on b; the action clears it on every node.
    move = {"world": "overworld", "updates": [{"player": "eve", "pos": [0, 64, 0]}]}
    b.request("POST", "/v1/positions", move, key=GAME)
    move["updates"][0]["pos"] = [20_000, 64, 0]
    b.request("POST", "/v1/positions", move, key=GAME)
    assert see(b, "/v1/players/eve")["flags"] == 1
    assert pair.admin(a, "POST", "/v1/players/eve/flags/clear", {"reason": "lag spike"})[0] == 200
    assert settle_wait(lambda: see(b, "/v1/players/eve")["flags"] == 0, timeout=5)

    def after_restart(node: CairnServer) -> None:
        assert see(node, f"/v1/claims/{c1['claim_id']}")["voided"] is True
        assert see(node, f"/v1/claims/{c4['claim_id']}").get("voided") is None
        statuses = [see(node, f"/v1/grants/{g}")["status"] for g in (g1, g2, g3, f"{g2}.r1")]
        assert statuses == ["cancelled", "cancelled", "revoked", "acked"]
        assert score(node, "ann") == v2 and score(node, "bob") is None
        h1 = see(node, "/v1/hunts/h1")
        assert (h1["name"], h1["treasures"][0]["finders"], h1.get("paused")) == ("Friday Night", ["cid"], None)
        assert datetime.fromisoformat(h1["ends_at"].replace("Z", "+00:00")).timestamp() == moved
        assert [h["id"] for h in see(node, "/v1/hunts")["hunts"]] == ["h1"]

    after_restart(b)
    pair.restart()
    after_restart(b)
    after_restart(a)

    entries = see(b, "/v1/audit")["entries"]
    # Sorted: on Redis, a node rebuilds the log stream by stream (each hunt's, then the actions on none).
    got = sorted((e["action"], e["by"], e["reason"]) for e in entries)
    assert {e["by"] for e in entries} == {ADMIN_ID}  # the label of the key that acted
    assert got == sorted((action, ADMIN_ID, reason) for action, reason in [
        ("claim.void", "x-ray"), ("claim.void", "race"), ("grant.cancel", "duplicate"),
        ("grant.reissue", "lost in a crash"), ("hunt.extend", "busy night"), ("hunt.pause", "server restart"),
        ("hunt.resume", "back up"), ("hunt.rename", "typo"), ("hunt.end", "not given"), ("hunt.delete", "cleanup"),
        ("player.clear_flags", "lag spike"),
    ])  # fmt: skip
