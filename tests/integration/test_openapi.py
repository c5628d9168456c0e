"""/v1/openapi.json describes every route the router answers, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from cairn import config as configmod
from cairn.bootstrap import make_runtime
from cairn.net import openapi, schemas
from cairn.net.api import Api
from cairn.net.auth import Keys
from cairn.net.hub import Hub
from cairn.net.metrics import Metrics
from cairn.net.server import build_router
from tests.support import Live, grid_world, spec


def server_router(tmp_path: Path) -> object:
    rt = make_runtime(configmod.load(None, env={}), tmp_path)
    api = Api(rt, Keys.load(tmp_path, os.environ), Hub(), Metrics())
    return build_router(api)[0]


def test_the_document_and_the_router_agree_both_ways(tmp_path: Path) -> None:
    router = server_router(tmp_path)
    routes = router.patterns()  # type: ignore[attr-defined]
    documented = openapi.documented()
    assert routes - documented == set(), "routes with no entry in cairn.net.openapi.ROUTES"
    assert documented - routes == set(), "entries in cairn.net.openapi.ROUTES with no route"
    doc = msgspec.json.decode(openapi.build_openapi())
    assert {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} == routes
    # The check can fail: a route registered without an entry is found.
    router.add("GET", "/v1/undocumented", lambda req: b"{}")  # type: ignore[attr-defined]
    assert router.patterns() - documented == {("GET", "/v1/undocumented")}  # type: ignore[attr-defined]


def test_the_document_describes_what_the_routes_send(tmp_path: Path) -> None:
    doc = msgspec.json.decode(openapi.build_openapi())
    paths = doc["paths"]
    sse = paths["/v1/events"]["get"]["responses"]["200"]["content"]
    assert list(sse) == ["text/event-stream"]
    assert {"application/x-ndjson", "text/csv", "application/vnd.cairn.site-pack"} == set(
        paths["/v1/worlds/{world}/sites"]["put"]["requestBody"]["content"]
    )
    components = doc["components"]["schemas"]
    assert "101" in paths["/v1/session"]["get"]["responses"] and "SessionFrameOp" in components
    ops = {m["$ref"].rsplit("/", 1)[1] for m in components["SessionFrameOp"]["anyOf"]}
    assert {"DigOp", "HintOp", "PositionsOp", "SubscribeOp", "LeaveOp", "AuthOp", "PingOp"} <= ops
    # A positions reply lists each refused update with its index.
    assert components["PositionsResponse"]["required"] == ["events", "errors"]
    assert components["UpdateError"]["required"] == ["index", "error"]
    for method, path in (("put", "/v1/worlds/{world}"), ("get", "/v1/worlds"), ("delete", "/v1/worlds/{world}")):
        assert paths[path][method]["x-scope"] == "admin"
    assert "security" not in paths["/v1/openapi.json"]["get"]
    assert paths["/v1/players/{player}"]["get"]["x-scope"] == "admin"
    # Every event type the engine emits decodes as the documented event union.
    eng = Live(b"s", {"overworld": grid_world()})
    from cairn.core.engine import compute_plan

    out = eng.create_hunt(compute_plan(eng.plan_input(spec(id="e", treasures=2, duration="1h"))), 1000.0)
    pos = out.result["treasures"][0]["pos"]
    eng.positions("overworld", [("p1", tuple(pos), True)], 1001.0)
    eng.dig("e", "p1", tuple(pos), tuple(pos), "r1", 1002.0)
    eng.positions("overworld", [("p1", (pos[0] + 500, pos[1], pos[2]), True)], 1003.0)
    eng.end_hunt("e", 1004.0)
    seen = set()
    for e in eng.new_events:
        typed = msgspec.json.decode(msgspec.json.encode(e), type=schemas.AnyEvent)
        seen.add(type(typed).__name__)
    assert {"HuntStarted", "TreasureFound", "TreasureClaimed", "ProximityEnter", "HuntEnded",
            "TreasureExpired"} <= seen, seen  # fmt: skip
