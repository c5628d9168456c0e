"""Request and response schemas of the HTTP API, as msgspec structs.

The same structs validate requests and generate `/v1/openapi.json`, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from cairn.core.geometry import MAX_XZ, MAX_Y, MIN_Y

XZ = Annotated[int, msgspec.Meta(ge=-MAX_XZ, le=MAX_XZ)]
Y = Annotated[int, msgspec.Meta(ge=MIN_Y, le=MAX_Y)]
Position = Annotated[tuple[XZ, Y, XZ], msgspec.Meta(description="[x, y, z] block coordinates")]
PlayerId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the game's player id")]
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
HuntId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]{1,48}(@[0-9]{8}T[0-9]{4})?$")]
WorldId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    pass


class DigRequest(Body):
    player: PlayerId
    pos: Position
    at: Position
    request_id: RequestId


class HintRequest(Body):
    player: PlayerId
    pos: Position
    request_id: RequestId | None = None


class PositionUpdate(Body):
    player: PlayerId
    pos: Position
    teleport: bool = False


class PositionsRequest(Body):
    world: WorldId
    updates: Annotated[list[PositionUpdate], msgspec.Meta(max_length=10_000)]


class DigOp(Body, tag_field="op", tag="dig"):
    hunt: HuntId
    player: PlayerId
    pos: Position
    at: Position
    request_id: RequestId


class HintOp(Body, tag_field="op", tag="hint"):
    hunt: HuntId
    player: PlayerId
    pos: Position
    request_id: RequestId | None = None


class PositionsOp(Body, tag_field="op", tag="positions"):
    world: WorldId
    updates: Annotated[list[PositionUpdate], msgspec.Meta(max_length=10_000)]


Op = DigOp | HintOp | PositionsOp


class BatchRequest(Body):
    ops: Annotated[list[Op], msgspec.Meta(max_length=1000)]


class RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    """The batch envelope, decoded first so that one bad op fails only its own slot."""

    ops: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=1000)]


# ---- responses (for the OpenAPI document) ---------------------------------------------------------
class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(msgspec.Struct):
    error: ErrorDetail


class ItemOut(msgspec.Struct):
    item: str
    count: int
    value: int


class ClaimOut(msgspec.Struct):
    claim_id: str
    treasure: str
    player: str
    at: str
    share: float | None
    items: list[ItemOut]


class DigResponse(msgspec.Struct):
    result: Literal["miss", "found", "taken"]
    temperature: str
    claim: ClaimOut | None = None


class RegionOut(msgspec.Struct):
    min: list[int]
    max: list[int]


class HintBody(msgspec.Struct):
    temperature: str | None = None
    vertical: str | None = None
    bearing: str | None = None
    region: RegionOut | None = None
    riddle: str | None = None


class HintResponse(msgspec.Struct):
    hint: HintBody
    next_hint_in: int


class EventOut(msgspec.Struct):
    id: int
    type: str
    hunt: str
    at: str
    data: dict[str, Any]


class PositionsResponse(msgspec.Struct):
    events: list[EventOut]


class BatchResponse(msgspec.Struct):
    results: list[dict[str, Any]]


class HuntSummary(msgspec.Struct):
    id: str
    name: str
    state: Literal["scheduled", "active", "ended"]
    world: str
    starts_at: str
    ends_at: str
    treasures_total: int
    treasures_left: int


class HuntList(msgspec.Struct):
    hunts: list[HuntSummary]


class TreasureOut(msgspec.Struct):
    id: str
    tier: str
    state: Literal["hidden", "open", "claimed", "expired"]
    loot: list[ItemOut]
    finders: list[str]
    pos: list[int] | None = None


class HuntOut(msgspec.Struct):
    id: str
    name: str
    state: str
    world: str
    starts_at: str
    ends_at: str
    treasures_total: int
    treasures_left: int
    treasures: list[TreasureOut]


class GrantOut(msgspec.Struct):
    grant_id: str
    player: str
    claim_id: str
    items: list[ItemOut]
    status: Literal["pending", "acked"]


class GrantList(msgspec.Struct):
    grants: list[GrantOut]


class LeaderboardRecord(msgspec.Struct):
    rank: int
    player: str
    score: float


class LeaderboardOut(msgspec.Struct):
    board: str
    period: str
    resets_at: str | None
    records: list[LeaderboardRecord]


class Health(msgspec.Struct):
    status: str


class SiteRow(msgspec.Struct):
    """One site of an uploaded list (`PUT /v1/worlds/{world}/sites`); NDJSON sends one per line."""

    x: int
    y: int
    z: int
    tags: list[str] = msgspec.field(default_factory=list)


class SitesUploaded(msgspec.Struct):
    world: str
    sites: int
    chunks: int
    tags: list[str]
    bytes: int
    seconds: float
