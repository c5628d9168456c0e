"""A player's history and a hunt's export, on a real `cairn serve`: pages, cursors, CSV and NDJSON that
parse back to the claims, `cairn hunt export`, `kill -9` and a restart; and history across two Redis nodes."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec
from tests.e2e.redis_deploy import Deployment, create, settle_wait
from tests.e2e.test_cli import cairn as cairn_cli
from tests.redis_helpers import RedisServer

SHARED = {"mode": "shared_bounty", "window": "1s", "pool": 90}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CairnServer]:
    s = CairnServer(tmp_path_factory.mktemp("history") / "data")
    s.start()
    yield s
    if s.proc is not None:
        s.kill()


@pytest.fixture(scope="module")
def game(srv: CairnServer) -> dict[str, Any]:
    """Hunt `ff` (first finder): ann claims 4 treasures, bob 1, one of ann's grants acked. Hunt `sb` (a
    shared bounty, 1 s window): ann and bob claim #1, and the window closes."""
    spots = {}
    for spec in (hunt_spec("ff", treasures=6), hunt_spec("sb", treasures=2, prize=SHARED)):
        status, body, _ = srv.request("POST", "/v1/hunts", spec, key=ADMIN)
        assert status == 201, body
        spots[spec["id"]] = [t["pos"] for t in body["treasures"]]
    claims = [dig(srv, "ff", spots["ff"][n], "ann") for n in range(4)]
    claims.append(dig(srv, "ff", spots["ff"][4], "bob"))
    claims += [dig(srv, "sb", spots["sb"][0], p) for p in ("ann", "bob")]
    assert settle_wait(lambda: srv.request("GET", "/v1/hunts/sb")[1]["treasures"][0]["state"] == "claimed")
    grants = srv.request("GET", "/v1/players/ann/grants")[1]["grants"]
    assert srv.request("POST", f"/v1/grants/{grants[0]['grant_id']}/ack")[0] == 200
    return {"spots": spots, "claims": claims}


def dig(srv: CairnServer, hunt: str, at: list[int], player: str) -> dict[str, Any]:
    body = {"player": player, "pos": at, "at": at, "request_id": f"{hunt}-{player}-{at}", "teleport": True}
    status, reply, _ = srv.request("POST", f"/v1/hunts/{hunt}/dig", body)
    assert status == 200 and reply["result"] == "found", reply
    claim: dict[str, Any] = reply["claim"]
    return claim


def history(srv: CairnServer, player: str, query: str = "limit=500", key: str = GAME) -> Any:
    status, body, _ = srv.request("GET", f"/v1/players/{player}/history?{query}", key=key)
    assert status == 200, body
    return body


def get_raw(srv: CairnServer, path: str, key: str = ADMIN) -> tuple[int, bytes, Any]:
    """Status, body and headers (looked up in any case) of a GET."""
    req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def test_history_pages_newest_first_and_stable_while_claims_arrive(srv: CairnServer, game: dict[str, Any]) -> None:
    full = history(srv, "ann")
    assert full["player"] == "ann" and full["next_cursor"] is None
    entries = full["entries"]
    kinds = [e["kind"] for e in entries]
    assert kinds.count("claim") == 5 and kinds.count("ack") == 1 and kinds.count("grant") == 5
    assert kinds[0] == "ack" and [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    ann_claims = {c["claim_id"]: c for c in game["claims"] if c["player"] == "ann"}
    for e in entries:
        if e["kind"] == "claim":
            c = ann_claims[e["claim_id"]]
            assert (e["treasure"], e["at"]) == (c["treasure"], c["at"])
            if c["share"] is not None:  # else a shared bounty's, made before its window closed
                assert (e["items"], e["share"]) == (c["items"], c["share"])
    states = sorted(e["state"] for e in entries if e["kind"] == "grant")
    assert states == ["acked", "pending", "pending", "pending", "pending"]
    pool = next(e for e in entries if e["kind"] == "grant" and e["hunt"] == "sb")
    assert pool["items"][0]["count"] == 45 and pool["at"] > ann_claims[pool["claim_id"]]["at"]
    # Page by 3 while ann makes a new claim between pages: the pages are exactly the history read first.
    paged, cursor, extra = [], None, iter([game["spots"]["ff"][5]])
    for _ in range(10):  # 11 entries: 4 pages
        page = history(srv, "ann", "limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["entries"]) <= 3
        paged += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        spot = next(extra, None)
        if spot is not None:
            dig(srv, "ff", spot, "ann")
    assert paged == entries
    now = history(srv, "ann")["entries"]
    assert len(now) == len(entries) + 2 and now[2:] == entries  # the new claim and its grant, on top
    # Admin keys read it too; an unknown player has an empty history, as GET /v1/players/{p} has zeros.
    assert history(srv, "ann", key=ADMIN)["entries"] == now
    assert history(srv, "nobody") == {"player": "nobody", "entries": [], "next_cursor": None}
    assert srv.request("GET", "/v1/players/nobody", key=ADMIN)[1]["finds"] == 0


def test_operator_actions_show_in_the_players_history(srv: CairnServer) -> None:
    assert srv.request("POST", "/v1/players/dan/bar", {"reason": "x-ray mod"}, key=ADMIN)[0] == 200
    assert srv.request("DELETE", "/v1/players/dan/bar?reason=appeal", key=ADMIN)[0] == 200
    entries = history(srv, "dan")["entries"]
    audit = srv.request("GET", "/v1/audit?player=dan", key=ADMIN)[1]["entries"]
    assert [(e["kind"], e["action"], e["reason"], e["id"]) for e in entries] == [
        ("admin", a["action"], a["reason"], a["id"]) for a in audit
    ]
    assert [e["action"] for e in entries] == ["player.unbar", "player.bar"] and entries[0]["hunt"] is None


@pytest.mark.parametrize("query, status, code", [
    ("cursor=bm90LWEtY3Vyc29y", 400, "invalid_cursor"),
    ("cursor=%25%25", 400, "invalid_cursor"),
    ("limit=0", 422, "validation_error"),
    ("limit=501", 422, "validation_error"),
    ("limit=ten", 422, "validation_error"),
    ("limit=-1", 422, "validation_error"),
])  # fmt: skip
def test_bad_cursor_or_limit_is_a_clear_4xx(srv: CairnServer, query: str, status: int, code: str) -> None:
    got, body, _ = srv.request("GET", f"/v1/players/ann/history?{query}")
    assert (got, body["error"]["code"], body["error"]["field"]) == (status, code, query.split("=")[0])


def test_history_needs_a_key_and_a_valid_player(srv: CairnServer) -> None:
    assert srv.request("GET", "/v1/players/ann/history", key=None)[0] == 401
    assert srv.request("GET", "/v1/players/bad%20id/history")[1]["error"]["code"] == "validation_error"


def rows_csv(data: bytes) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    for r in rows:
        r["items"] = json.loads(r["items"])
        r["share"] = float(r["share"]) if r["share"] else None
        r["value"] = int(r["value"])
        for k in ("grant_id", "grant_state", "acked_at"):
            r[k] = r[k] or None
        r["voided"] = {"true": True, "false": False}[r["voided"]]
    return rows


def check_export(srv: CairnServer, hunt: str, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    status, data, headers = get_raw(srv, f"/v1/hunts/{hunt}/export?format=csv")
    assert status == 200 and headers["content-type"] == "text/csv", (status, data)
    head = b"hunt,treasure,tier,claim_id,player,at,share,value,items,grant_id,grant_state,acked_at,voided\r\n"
    assert data.startswith(head)
    from_csv = rows_csv(data)
    status, data, headers = get_raw(srv, f"/v1/hunts/{hunt}/export?format=ndjson")
    assert status == 200 and headers["content-type"] == "application/x-ndjson"
    from_ndjson = [json.loads(line) for line in data.splitlines()]
    assert from_csv == from_ndjson
    mine = [c for c in claims if c["treasure"].startswith(f"{hunt}#")]
    assert sorted((r["claim_id"], r["player"], r["at"], r["treasure"]) for r in from_ndjson) == sorted(
        (c["claim_id"], c["player"], c["at"], c["treasure"]) for c in mine
    )
    return from_ndjson


def test_export_as_csv_and_ndjson_matches_the_claims_and_survives_kill_9(
    srv: CairnServer, game: dict[str, Any], tmp_path: Path
) -> None:
    claims = [{**e, "player": p} for p in ("ann", "bob") for e in history(srv, p)["entries"] if e["kind"] == "claim"]
    assert {c["claim_id"] for c in game["claims"]} <= {c["claim_id"] for c in claims}
    ff = check_export(srv, "ff", claims)
    assert len(ff) == 6 and all(r["grant_id"] and r["share"] == 1.0 and r["value"] > 0 for r in ff)
    assert sorted(r["grant_state"] for r in ff) == ["acked"] + ["pending"] * 5
    assert [r["acked_at"] is not None for r in ff] == [r["grant_state"] == "acked" for r in ff]
    ann_grants = {e["grant_id"]: e["state"] for e in history(srv, "ann")["entries"] if e["kind"] == "grant"
                  and e["hunt"] == "ff"}  # fmt: skip
    assert {r["grant_id"]: r["grant_state"] for r in ff if r["player"] == "ann"} == ann_grants
    sb = check_export(srv, "sb", claims)
    assert [(r["player"], r["share"], r["value"], r["grant_state"]) for r in sb] == [
        ("ann", 0.5, 45, "pending"), ("bob", 0.5, 45, "pending"),
    ]  # fmt: skip
    # Errors: bad format, no such hunt, a game key.
    status, data, _ = get_raw(srv, "/v1/hunts/ff/export?format=xml")
    assert status == 400 and json.loads(data)["error"]["code"] == "bad_request"
    assert get_raw(srv, "/v1/hunts/nope/export")[0] == 404
    assert get_raw(srv, "/v1/hunts/ff/export", key=GAME)[0] == 403
    # `cairn hunt export` asks the server for the same bytes.
    out = tmp_path / "ff.ndjson"
    run = cairn_cli("hunt", "export", "ff", "--format", "ndjson", "--url", srv.url, "--out", str(out),
                    env={"CAIRN_ADMIN_KEY": ADMIN})  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == get_raw(srv, "/v1/hunts/ff/export?format=ndjson")[1]
    run = cairn_cli("hunt", "export", "ff", "--url", srv.url, env={"CAIRN_ADMIN_KEY": ADMIN})
    assert run.returncode == 0 and rows_csv(run.stdout.encode()) == ff
    bad = cairn_cli("hunt", "export", "nope", "--url", srv.url, env={"CAIRN_ADMIN_KEY": ADMIN})
    assert bad.returncode == 1 and "hunt_not_found" in bad.stderr and "Traceback" not in bad.stderr
    # An ended hunt exports the same; so does a server restarted after kill -9, and history with it.
    assert srv.request("POST", "/v1/hunts/ff/end", key=ADMIN)[0] == 200
    assert check_export(srv, "ff", claims) == ff
    before = {p: history(srv, p) for p in ("ann", "bob")}
    srv.kill()
    srv.start()
    assert check_export(srv, "ff", claims) == ff and check_export(srv, "sb", claims) == sb
    assert {p: history(srv, p) for p in ("ann", "bob")} == before


def test_a_claim_on_one_redis_node_shows_in_history_on_the_other(redis_single: RedisServer, tmp_path: Path) -> None:
    deploy = Deployment("single", redis_single, tmp_path)
    deploy.flush()
    try:
        a, b = deploy.node(), deploy.node()
        spots = [t["pos"] for t in create(a, hunt_spec("rh", treasures=3))["treasures"]]
        assert settle_wait(lambda: b.request("GET", "/v1/hunts/rh")[0] == 200)
        claim = dig(a, "rh", spots[0], "ann")
        seen = settle_wait(lambda: history(b, "ann")["entries"])
        cid = claim["claim_id"]
        assert [(e["kind"], e["claim_id"]) for e in seen] == [("grant", cid), ("claim", cid)]
        assert seen == history(a, "ann")["entries"]
        grant = seen[0]["grant_id"]
        assert b.request("POST", f"/v1/grants/{grant}/ack")[0] == 200  # acked on B, seen on A
        assert settle_wait(lambda: history(a, "ann")["entries"][0]["kind"] == "ack")
        status, data, _ = get_raw(b, "/v1/hunts/rh/export?format=ndjson")
        assert status == 200 and json.loads(data)["grant_state"] == "acked"
    finally:
        deploy.close()
