"""`/v1/openapi.json`: every route the server answers, described from the msgspec structs that validate requests.

`ROUTES` is the one place a route is documented: a route registered on the router with no entry
here, or an entry with no route, fails `tests/integration/test_openapi.py`. The document is served
without a key (it holds no data, only the shape of the API).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from cairn.core.spec import HuntSpec
from cairn.net import schemas

JSON = "application/json"
ANY_OBJECT: dict[str, Any] = {"type": "object"}


class Param(NamedTuple):
    """A query parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""


class Doc(NamedTuple):
    """One route's entry: `body` and `reply` are a msgspec struct (JSON), a `{media type: schema}`
    dict, or None; schemas may name components as `"#Name"` (see `_ref`)."""

    method: str
    path: str
    scope: str  # "none", "game", "admin"; "bind" for /metrics (server.metrics_from)
    summary: str
    reply: Any = None
    body: Any = None
    status: int = 200
    query: tuple[Param, ...] = ()
    description: str = ""
    tag: str = "game"


# ---- the shapes that are not JSON structs ------------------------------------------------------
def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_EVENT_TYPES = [t.__struct_config__.tag for t in schemas.AnyEvent.__args__]  # type: ignore[attr-defined]


def _sse(event: dict[str, Any], data: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": event,
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {"type": "string", "contentMediaType": JSON, "contentSchema": _ref(data)},
        },
    }


# Open API 3.1: the `schema` of an event stream describes one event (its `event`, `id` and `data` fields).
EVENT_STREAM = {
    "text/event-stream": {
        "schema": {
            "oneOf": [
                _sse({"enum": _EVENT_TYPES}, "AnyEvent"),
                _sse({"const": "gap"}, "StreamGap"),
                _sse({"const": "dropped"}, "StreamDropped"),
                _sse({"const": "revoked"}, "StreamRevoked"),
            ]
        }
    }
}
SITES_BODY = {
    "application/x-ndjson": {"schema": {"type": "string", "description": "one SiteRow (JSON) per line; also sent "
                             "as application/ndjson, application/jsonl or application/json"}},
    "text/csv": {"schema": {"type": "string", "description": "columns x,y,z,tags (a header row is optional); "
                            "tags separated by `;`, `|` or spaces"}},
    "application/vnd.cairn.site-pack": {"schema": {"type": "string", "format": "binary", "description":
                                        "a site pack (docs/site-pack.md); also application/octet-stream"}},
}
STATIC = {t: {"schema": {"type": "string"}} for t in ("text/html; charset=utf-8", "text/css; charset=utf-8",
          "text/javascript; charset=utf-8", "image/svg+xml", "image/png", "image/x-icon")}
EXPORT = {
    "text/csv": {"schema": {"type": "string", "description": "a header row, then one row per claim: the fields "
                 "of ExportRow in order, `items` as a JSON array, a null as an empty cell"}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "one ExportRow (JSON) per line"}},
}
METRICS = {"text/plain; version=0.0.4": {"schema": {"type": "string", "description": "Prometheus text format"}}}

SESSION = """WebSocket (RFC 6455). Text frames carry JSON, binary frames MessagePack; each reply uses the format
of its request. Authenticate with this request's `Authorization` header, or with an `auth` op first.
Client frames: one op `{"id", "op", ...}` (`SessionFrameOp`), or a batch `{"id", "ops": [...]}` of dig, hint
and positions ops (`SessionBatchFrame`, ops as in `POST /v1/batch`). Server frames: `{"id", "result"}`,
`{"id", "results": [...]}` (one per batch op, an error in its slot), `{"id", "error"}`, and pushed
`{"event": AnyEvent}` after a `subscribe` (`SessionPush`), or `{"dropped": {"resume_after"}}` once when the
subscription fell too far behind and ended. See docs/api.md, WebSocket session. Without an
`Upgrade: websocket` header: 426."""


# The session's frames, for the document: the ops are the structs `session.py` decodes with.
SessionFrameOp = schemas.DigOp | schemas.HintOp | schemas.PositionsOp | schemas.SessionOp


class SessionBatchFrame(msgspec.Struct):
    id: int | str | None
    ops: list[schemas.Op]


class SessionReply(msgspec.Struct):
    id: int | str | None
    result: Any = None
    results: list[Any] | None = None
    error: schemas.ErrorDetail | None = None


class SessionDropped(msgspec.Struct):
    resume_after: int  # subscribe again with `after` set to it


class SessionPush(msgspec.Struct):
    """A pushed frame: an event, or (last, once) that the subscription fell too far behind and ended."""

    event: schemas.AnyEvent | None = None
    dropped: SessionDropped | None = None


ANY_ID: dict[str, Any] = {"type": "string", "minLength": 1}
# Path ids with a format of their own (a hunt id that names no hunt is a 404, not a 422).
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "player": {"type": "string", "pattern": schemas.PLAYER_PATTERN},
    "world": {"type": "string", "pattern": schemas.WORLD_PATTERN},
    "webhook": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"},
    "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
BOOL = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}
EVENT_ID = {"type": "string", "pattern": "^[0-9]{1,19}$"}

# fmt: off
ROUTES: list[Doc] = [
    # probes, metrics, this document
    Doc("get", "/healthz", "none", "Liveness", schemas.Health, tag="probes"),
    Doc("get", "/readyz", "none", "Readiness: the store is reachable (503 not_ready when not)", schemas.Health,
        tag="probes"),
    Doc("get", "/metrics", "bind", "Prometheus metrics, to the addresses in server.metrics_from (else 403)", METRICS,
        tag="probes"),
    Doc("get", "/v1/openapi.json", "none", "This document (no key needed)", {JSON: {"schema": ANY_OBJECT}},
        tag="probes"),
    # hunts
    Doc("post", "/v1/hunts", "admin", "Create a hunt from a spec (JSON, or TOML with Content-Type application/toml)",
        schemas.HuntOut, HuntSpec, 201, tag="hunts"),
    Doc("get", "/v1/hunts", "game", "List hunts", schemas.HuntList, query=(
        Param("archived", BOOL, "list archived (deleted) hunts too"),), tag="hunts"),
    Doc("get", "/v1/hunts/{hunt}", "game", "One hunt; reveal=true (admin) adds positions", schemas.HuntOut,
        query=(Param("reveal", BOOL, "admin only: add treasure positions and the spec"),), tag="hunts"),
    Doc("post", "/v1/hunts/{hunt}/end", "admin", "End a hunt now (idempotent); the optional body's reason goes to "
        "the audit log (`hunt.end`)", schemas.HuntSummary, schemas.EndBody, tag="hunts"),
    Doc("get", "/v1/hunts/{hunt}/export", "admin", "Every claim of a hunt with its grant, as CSV or NDJSON "
        "(for disputes and payouts; ended hunts too)", EXPORT,
        query=(Param("format", {"type": "string", "enum": ["csv", "ndjson"]}, "csv (default) or ndjson"),),
        description="One row per claim, in treasure order, then claim order: `ExportRow`. Streamed; a bad "
        "`format` is a 400 `bad_request`.", tag="hunts"),
    # the hot path
    Doc("post", "/v1/hunts/{hunt}/hint", "game", "Ask for a hint", schemas.HintResponse, schemas.HintRequest),
    Doc("post", "/v1/hunts/{hunt}/dig", "game", "Dig a block", schemas.DigResponse, schemas.DigRequest),
    Doc("post", "/v1/positions", "game", "Player positions", schemas.PositionsResponse, schemas.PositionsRequest),
    Doc("post", "/v1/batch", "game", "Many ops in one request", schemas.BatchResponse, schemas.BatchRequest),
    # players and grants
    Doc("get", "/v1/players/{player}", "admin", "A player's finds, anti-cheat flags and last position",
        schemas.PlayerOut),
    Doc("get", "/v1/players/{player}/grants", "game", "A player's pending grants", schemas.GrantList),
    Doc("get", "/v1/players/{player}/history", "game", "A player's claims, grants, acks and admin actions, newest "
        "first", schemas.HistoryOut, query=(
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "entries per page (default 50)"),
            Param("cursor", {"type": "string"}, "the `next_cursor` of the page before (400 invalid_cursor if not)"),
        ), description="Entries are ordered by (at, kind, id), newest first; a page holds the entries strictly "
        "after its cursor, so pages never repeat or skip an entry, whatever is added meanwhile. An unknown "
        "player has an empty history."),
    Doc("post", "/v1/players/{player}/leave", "game", "A player logged out: forget their position and proximity "
        "state (claims and grants stay)", schemas.LeftOut),
    Doc("get", "/v1/grants/pending", "admin", "Pending grants older than a number of minutes, every player",
        schemas.GrantList, query=(Param("older_than_minutes", {"type": "number", "minimum": 0}),)),
    Doc("post", "/v1/grants/{grant_id}/ack", "game", "Mark a grant delivered (idempotent)", schemas.GrantOut),
    # leaderboards, events, session
    Doc("get", "/v1/leaderboards/{board}", "game", "A leaderboard", schemas.LeaderboardOut, query=(
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        Param("cursor", {"type": "integer", "minimum": 0, "maximum": 10**9}, "rank offset for paging"),
        Param("around", {"type": "string"}, "a player: the records around theirs"),
        Param("player", {"type": "string"}, "a player: their record only"),
        Param("period", {"type": "string"}, "an archived period (its start, RFC 3339)"),
    ), tag="leaderboards"),
    Doc("get", "/v1/events", "game", "Server-sent events, resumable from an event id", EVENT_STREAM, query=(
        Param("after", EVENT_ID, "resume after this event id (or the Last-Event-ID header)"),
        Param("hunt", {"type": "string"}, "only this hunt's events"),
    ), description="Each event is `id: <id>`, `event: <type>`, `data: <AnyEvent JSON>`. `event: gap` opens a "
       "stream that misses events; `event: dropped` ends the stream of a subscriber that fell behind; "
       "`event: revoked` ends a stream whose key was revoked or expired. "
       "A comment line keeps an idle stream alive every 15 s.", tag="events"),
    Doc("get", "/v1/session", "game", "WebSocket session: request/response frames and pushed events",
        status=101, description=SESSION, tag="events"),
    # worlds
    Doc("get", "/v1/worlds", "admin", "Every world: source, sites, chunks, hunts using it", schemas.WorldList,
        tag="worlds"),
    Doc("put", "/v1/worlds/{world}", "admin", "Register an upload-only world at runtime (idempotent: 200 when it "
        "exists); the body is empty or {}", schemas.WorldOut, status=201, tag="worlds"),
    Doc("delete", "/v1/worlds/{world}", "admin", "Retire a world registered at runtime that no live, scheduled or "
        "recurring hunt uses", schemas.WorldRetiredOut, tag="worlds"),
    Doc("put", "/v1/worlds/{world}/sites", "admin", "Replace a world's sites, streamed and parsed off the event "
        "loop", schemas.SitesUploaded, SITES_BODY, tag="worlds"),
    # operator actions and the audit log
    Doc("get", "/v1/audit", "admin", "Operator actions, newest first, with the key's label and the reason",
        schemas.AuditList, query=(
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            Param("cursor", {"type": "string", "pattern": "^[0-9]{1,19}$"}, "`next_cursor` of the page before"),
            Param("action", {"type": "string"}, "one action (`player.bar`), or a prefix ending in `.` (`player.`)"),
            Param("hunt", {"type": "string"}, "only actions on this hunt"),
            Param("player", {"type": "string"}, "only actions on this player"),
        ), tag="operator"),
    Doc("post", "/v1/players/{player}/bar", "admin", "Bar a player from hunts: their digs and hints are refused "
        "with 403 player_barred on every node", schemas.AuditEntry, schemas.ActionBody, tag="operator"),
    Doc("delete", "/v1/players/{player}/bar", "admin", "Lift a player's bar (reason in the body or `?reason=`)",
        schemas.AuditEntry, query=(Param("reason", {"type": "string", "minLength": 1}),), tag="operator"),
    # undoing and adjusting
    Doc("get", "/v1/claims/{claim_id}", "admin", "One claim; `voided: true` once voided", schemas.ClaimOut,
        tag="operator"),
    Doc("post", "/v1/claims/{claim_id}/void", "admin", "Void a claim: its grants cancelled (pending) or revoked "
        "(acked), the leaderboards recounted; `rehide` hides its treasure again", schemas.AuditEntry,
        schemas.VoidBody, tag="operator"),
    Doc("get", "/v1/grants/{grant_id}", "game", "One grant, whatever its status (pending, acked, cancelled, "
        "revoked)", schemas.GrantOut),
    Doc("post", "/v1/grants/{grant_id}/cancel", "admin", "Cancel a pending grant (409 grant_acked once delivered)",
        schemas.AuditEntry, schemas.ActionBody, tag="operator"),
    Doc("post", "/v1/grants/{grant_id}/reissue", "admin", "Give a grant again under a new id (`args.grant_id`); the "
        "old one, if pending, is cancelled", schemas.AuditEntry, schemas.ActionBody, tag="operator"),
    Doc("post", "/v1/hunts/{hunt}/extend", "admin", "Move a live hunt's end later", schemas.AuditEntry,
        schemas.ExtendBody, tag="operator"),
    Doc("post", "/v1/hunts/{hunt}/pause", "admin", "Pause a live hunt: digs and hints get 409 hunt_paused (the end "
        "does not move)", schemas.AuditEntry, schemas.ActionBody, tag="operator"),
    Doc("post", "/v1/hunts/{hunt}/resume", "admin", "Resume a paused hunt", schemas.AuditEntry, schemas.ActionBody,
        tag="operator"),
    Doc("patch", "/v1/hunts/{hunt}", "admin", "Rename a hunt", schemas.AuditEntry, schemas.RenameBody,
        tag="operator"),
    Doc("delete", "/v1/hunts/{hunt}", "admin", "Archive an ended hunt (reason in the body or `?reason=`): gone "
        "from the list, still readable", schemas.AuditEntry, query=(Param("reason", {"type": "string",
        "minLength": 1}),), tag="operator"),
    Doc("post", "/v1/players/{player}/flags/clear", "admin", "Reset a player's anti-cheat flag count on every node",
        schemas.AuditEntry, schemas.ActionBody, tag="operator"),
    # webhooks (operator actions)
    Doc("post", "/v1/webhooks", "admin", "Add a webhook target: the events it is sent, signed with its secret "
        "(shown in this reply only); docs/webhooks.md", schemas.WebhookCreated, schemas.WebhookBody, status=201,
        tag="operator"),
    Doc("get", "/v1/webhooks", "admin", "Every webhook target and its delivery state (never the secret)",
        schemas.WebhookList, tag="operator"),
    Doc("delete", "/v1/webhooks/{webhook}", "admin", "Remove a webhook target and its pending deliveries (reason "
        "in the body or `?reason=`)", schemas.AuditEntry, query=(Param("reason", {"type": "string", "minLength": 1}),),
        tag="operator"),
    Doc("post", "/v1/webhooks/{webhook}/resume", "admin", "Resume a paused webhook target: its backlog is sent",
        schemas.AuditEntry, schemas.ActionBody, tag="operator"),
    # API keys (operator actions)
    Doc("get", "/v1/keys", "admin", "Every API key (static and runtime), never its secret", schemas.KeyList,
        tag="operator"),
    Doc("post", "/v1/keys", "admin", "Create an API key: its secret is shown in this reply only", schemas.KeyMade,
        schemas.KeyCreateBody, 201, tag="operator"),
    Doc("delete", "/v1/keys/{id}", "admin", "Revoke a key: refused on every node within a second, its WebSocket "
        "sessions closed (4001) and event streams ended (reason in the body or `?reason=`)", schemas.AuditEntry,
        query=(Param("reason", {"type": "string", "minLength": 1}),), tag="operator"),
    Doc("post", "/v1/keys/{id}/rotate", "admin", "Rotate a key: a successor with the same label and scope (secret "
        "shown once); the old key works until the overlap ends", schemas.KeyMade, schemas.KeyRotateBody, 201,
        tag="operator"),
    # dashboard (static files, and its admin views)
    Doc("get", "/dashboard", "none", "The dashboard page", STATIC, tag="dashboard"),
    Doc("get", "/dashboard/", "none", "The dashboard page", STATIC, tag="dashboard"),
    Doc("get", "/dashboard/{file}", "none", "A dashboard file (app.js, style.css, favicon.svg)", STATIC,
        tag="dashboard"),
    Doc("post", "/v1/dashboard/login", "none", "Trade a one-time login token (from `cairn demo`) for the admin key",
        {JSON: {"schema": {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}}}},
        {JSON: {"schema": {"type": "object", "required": ["token"], "additionalProperties": False,
                           "properties": {"token": {"type": "string"}}}}}, tag="dashboard"),
    Doc("get", "/v1/dashboard/hunts", "admin", "Every hunt's summary with its players and finders",
        {JSON: {"schema": ANY_OBJECT}}, tag="dashboard"),
    Doc("get", "/v1/hunts/{hunt}/map", "admin", "A hunt's area, site density, treasures (with positions)",
        {JSON: {"schema": ANY_OBJECT}}, tag="dashboard"),
    Doc("get", "/v1/hunts/{hunt}/live", "admin", "A hunt's recent players, digs and treasure states",
        {JSON: {"schema": ANY_OBJECT}}, query=(Param("seen", {"type": "string"}, "the seq the caller has"),),
        tag="dashboard"),
    Doc("get", "/v1/admin/health", "admin", "Request rate, latency, memory and subscribers over the last minutes",
        {JSON: {"schema": ANY_OBJECT}}, tag="dashboard"),
]
# fmt: on

#: A second success status of a route (its first is in ROUTES), with its description.
ALSO_OK = {("put", "/v1/worlds/{world}"): (200, "The world exists already (nothing changed)")}

ERRORS = {
    "400": "Malformed body",
    "401": "Missing or unknown key",
    "403": "Wrong scope",
    "404": "Not found",
    "409": "Conflict (hunt not active, paused or not ended, exists; claim voided; grant acked or cancelled)",
    "413": "Body too large",
    "415": "Unsupported content type",
    "422": "Invalid input",
    "426": "Upgrade required (WebSocket)",
    "429": "Rate limited or hint cooldown",
    "503": "Store unavailable",
}
# Schemas only named by descriptions and `_ref`, not by a route's body or reply.
EXTRA = [schemas.ErrorResponse, schemas.AnyEvent, schemas.StreamGap, schemas.StreamDropped, SessionFrameOp,
         SessionBatchFrame, SessionReply, SessionPush, schemas.ExportRow, schemas.StreamRevoked]


def _content(x: Any) -> dict[str, Any]:
    if isinstance(x, dict):
        return x
    return {JSON: {"schema": _ref(x.__name__)}}


def build_openapi() -> bytes:
    types = [t for d in ROUTES for t in (d.body, d.reply) if t is not None and not isinstance(t, dict)] + EXTRA
    out, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    # The unions have no name of their own: name them, so that descriptions can refer to them.
    components["AnyEvent"] = out[types.index(schemas.AnyEvent)]
    components["SessionFrameOp"] = out[types.index(SessionFrameOp)]
    paths: dict[str, Any] = {}
    for d in ROUTES:
        op: dict[str, Any] = {
            "summary": d.summary,
            "operationId": f"{d.method}_{d.path}".replace("/", "_").replace(".", "_").strip("_"),
            "tags": [d.tag],
        }
        if d.description:
            op["description"] = d.description
        params: list[dict[str, Any]] = [
            {"name": seg[1:-1], "in": "path", "required": True, "schema": PATH_PARAMS.get(seg[1:-1], ANY_ID)}
            for seg in d.path.split("/")
            if seg.startswith("{")
        ]
        params += [{"name": p.name, "in": "query", "required": False, "schema": p.schema,
                    **({"description": p.description} if p.description else {})} for p in d.query]
        if params:
            op["parameters"] = params
        if d.scope in ("game", "admin"):
            op["security"] = [{"bearer": []}]
            op["x-scope"] = d.scope
        if d.body is not None:
            op["requestBody"] = {"required": True, "content": _content(d.body)}
        responses: dict[str, Any] = {str(d.status): {"description": "OK"}}
        if d.reply is not None:
            responses[str(d.status)]["content"] = _content(d.reply)
        also = ALSO_OK.get((d.method, d.path))
        if also is not None:
            responses[str(also[0])] = {**responses[str(d.status)], "description": also[1]}
        err = {"content": {JSON: {"schema": _ref("ErrorResponse")}}}
        for code, text in ERRORS.items():
            responses[code] = {"description": text, **err}
        op["responses"] = responses
        paths.setdefault(d.path, {})[d.method] = op
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Cairn", "version": "1", "description": "Treasure hunt engine for game servers. "
                 "This document is served without a key."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return msgspec.json.encode(doc)


def documented() -> set[tuple[str, str]]:
    """Every (METHOD, path pattern) that `ROUTES` documents."""
    return {(d.method.upper(), d.path) for d in ROUTES}
