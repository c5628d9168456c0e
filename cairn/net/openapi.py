"""`/v1/openapi.json`, generated from the same msgspec structs that validate requests."""

from __future__ import annotations

from typing import Any

import msgspec

from cairn.core.spec import HuntSpec
from cairn.net import schemas

Route = tuple[str, str, str, type | None, type | None, int, str]  # method, path, scope, body, reply, status, summary

ROUTES: list[Route] = [
    ("get", "/healthz", "none", None, schemas.Health, 200, "Liveness"),
    ("get", "/readyz", "none", None, schemas.Health, 200, "Readiness: the store is reachable"),
    ("post", "/v1/hunts", "admin", HuntSpec, schemas.HuntOut, 201, "Create a hunt from a spec"),
    ("get", "/v1/hunts", "game", None, schemas.HuntList, 200, "List hunts"),
    ("get", "/v1/hunts/{hunt}", "game", None, schemas.HuntOut, 200, "One hunt; ?reveal=true (admin) adds positions"),
    ("post", "/v1/hunts/{hunt}/end", "admin", None, schemas.HuntSummary, 200, "End a hunt now (idempotent)"),
    ("post", "/v1/hunts/{hunt}/hint", "game", schemas.HintRequest, schemas.HintResponse, 200, "Ask for a hint"),
    ("post", "/v1/hunts/{hunt}/dig", "game", schemas.DigRequest, schemas.DigResponse, 200, "Dig a block"),
    ("post", "/v1/positions", "game", schemas.PositionsRequest, schemas.PositionsResponse, 200, "Player positions"),
    ("post", "/v1/batch", "game", schemas.BatchRequest, schemas.BatchResponse, 200, "Many ops in one request"),
    ("get", "/v1/players/{player}/grants", "game", None, schemas.GrantList, 200, "A player's pending grants"),
    ("post", "/v1/grants/{grant_id}/ack", "game", None, schemas.GrantOut, 200, "Mark a grant delivered"),
    ("get", "/v1/leaderboards/{board}", "game", None, schemas.LeaderboardOut, 200, "A leaderboard"),
    ("get", "/v1/worlds", "admin", None, schemas.WorldList, 200, "Every world: source, sites, chunks, hunts using it"),
    ("put", "/v1/worlds/{world}", "admin", schemas.WorldRequest, schemas.WorldOut, 201,
     "Register an upload-only world at runtime (idempotent: 200 when it exists); body empty or {}"),
    ("delete", "/v1/worlds/{world}", "admin", None, schemas.WorldRetiredOut, 200,
     "Retire a world registered at runtime that no live, scheduled or recurring hunt uses"),
    ("put", "/v1/worlds/{world}/sites", "admin", schemas.SiteRow, schemas.SitesUploaded, 200,
     "Replace a world's sites: NDJSON (one SiteRow per line), CSV or a site pack (docs/site-pack.md)"),
]

#: A second success status of a route (its first is in ROUTES), with its description.
ALSO_OK = {("put", "/v1/worlds/{world}"): (200, "The world exists already (nothing changed)")}

ERRORS = {
    "400": "Malformed body",
    "401": "Missing or unknown key",
    "403": "Wrong scope",
    "404": "Not found",
    "409": "Conflict (hunt not active, exists)",
    "413": "Body too large",
    "422": "Invalid input",
    "429": "Rate limited or hint cooldown",
    "503": "Store unavailable",
}


def build_openapi() -> bytes:
    types = [t for r in ROUTES for t in (r[3], r[4]) if t is not None] + [schemas.ErrorResponse]
    _, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    paths: dict[str, Any] = {}
    for method, path, scope, body, reply, status, summary in ROUTES:
        op: dict[str, Any] = {"summary": summary, "operationId": f"{method}_{path}".replace("/", "_").strip("_")}
        params = [
            {"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for seg in path.split("/")
            if seg.startswith("{")
        ]
        if params:
            op["parameters"] = params
        if scope != "none":
            op["security"] = [{"bearer": []}]
        if body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
            }
        responses: dict[str, Any] = {
            str(status): {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{reply.__name__}"}}},
            }
        }
        also = ALSO_OK.get((method, path))
        if also is not None:
            responses[str(also[0])] = {**responses[str(status)], "description": also[1]}
        err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        for code, text in ERRORS.items():
            responses[code] = {"description": text, **err}
        op["responses"] = responses
        paths.setdefault(path, {})[method] = op
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Cairn", "version": "1", "description": "Treasure hunt engine for game servers."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return msgspec.json.encode(doc)
