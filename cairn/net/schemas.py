"""Request and response schemas of the HTTP API, as msgspec structs.

The same structs validate requests and generate `/v1/openapi.json`, so they cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

import msgspec

from cairn.core.geometry import MAX_XZ, MAX_Y, MIN_Y

XZ = Annotated[int, msgspec.Meta(ge=-MAX_XZ, le=MAX_XZ)]
Y = Annotated[int, msgspec.Meta(ge=MIN_Y, le=MAX_Y)]
Position = Annotated[tuple[XZ, Y, XZ], msgspec.Meta(description="[x, y, z] block coordinates")]
PLAYER_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
# Player ids are checked by `_check_player` (each body's `__post_init__`), not by a msgspec `pattern`:
# msgspec's check cost 0.42 µs per body, a plain `fullmatch` 0.19 µs (a dig's whole decode was 0.71 µs),
# and `fullmatch` also refuses the trailing newline that `$` lets through. The schema still says it.
PlayerId = Annotated[
    str, msgspec.Meta(extra_json_schema={"pattern": PLAYER_PATTERN}, description="the game's player id")
]
_player_match = re.compile(PLAYER_PATTERN[1:-1]).fullmatch


def player_ok(player: str) -> bool:
    """Whether `player` is a valid player id (`PLAYER_PATTERN`, the whole string)."""
    return _player_match(player) is not None


RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
HUNT_PATTERN: Final = r"^[a-z0-9-]{1,48}(@[0-9]{8}T[0-9]{4})?$"
HuntId = Annotated[str, msgspec.Meta(pattern=HUNT_PATTERN)]
_hunt_match = re.compile(HUNT_PATTERN[1:-1]).fullmatch


def hunt_ok(hunt: str) -> bool:
    """Whether `hunt` is a valid hunt id (`HUNT_PATTERN`, the whole string)."""
    return _hunt_match(hunt) is not None


WORLD_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"  # `world`, `world_nether`, `minecraft:overworld`
WorldId = Annotated[str, msgspec.Meta(pattern=WORLD_PATTERN)]
_world_match = re.compile(WORLD_PATTERN[1:-1]).fullmatch


def world_ok(world: str) -> bool:
    """Whether `world` is a valid world id (`WORLD_PATTERN`, the whole string)."""
    return _world_match(world) is not None


class Body(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A request body. Decoded bodies hold only strings, numbers and containers of them, so the
    cycle collector need not track them (`gc=False`): one dig decodes one."""


def _check_player(body: Any) -> None:
    """`__post_init__` of the bodies with a `player`: msgspec turns the ValueError into a
    ValidationError at the body's path, and `validation_error` reads the field from the message."""
    if _player_match(body.player) is None:
        raise ValueError(f"`player` must match regex {PLAYER_PATTERN!r}")


class DigRequest(Body):
    player: PlayerId
    pos: Position
    at: Position
    request_id: RequestId
    teleport: bool = False  # the player got to `pos` by teleport: not movement-checked

    __post_init__ = _check_player


class HintRequest(Body):
    player: PlayerId
    pos: Position
    request_id: RequestId | None = None
    teleport: bool = False  # as for a dig

    __post_init__ = _check_player


class PositionUpdate(Body):
    player: PlayerId
    pos: Position
    teleport: bool = False

    __post_init__ = _check_player


class PositionsRequest(Body):
    world: WorldId
    updates: Annotated[list[PositionUpdate], msgspec.Meta(max_length=10_000)]


class DigOp(Body, tag_field="op", tag="dig"):
    hunt: HuntId
    player: PlayerId
    pos: Position
    at: Position
    request_id: RequestId
    teleport: bool = False  # the player got to `pos` by teleport: not movement-checked

    __post_init__ = _check_player


class HintOp(Body, tag_field="op", tag="hint"):
    hunt: HuntId
    player: PlayerId
    pos: Position
    request_id: RequestId | None = None
    teleport: bool = False  # as for a dig

    __post_init__ = _check_player


class PositionsOp(Body, tag_field="op", tag="positions"):
    world: WorldId
    updates: Annotated[list[PositionUpdate], msgspec.Meta(max_length=10_000)]


Op = DigOp | HintOp | PositionsOp


class LoosePositions(Body):
    """A positions body whose updates did not all decode: each is then checked alone (`PositionUpdate`),
    so that a bad one is reported with its index instead of refusing the rest."""

    world: WorldId
    updates: Annotated[list[Any], msgspec.Meta(max_length=10_000)]


class LoosePositionsOp(Body, tag_field="op", tag="positions"):
    """`LoosePositions` as a batch or session op."""

    world: WorldId
    updates: Annotated[list[Any], msgspec.Meta(max_length=10_000)]


# ---- the WebSocket session's other ops (`cairn/net/session.py`); dig, hint and positions are `Op` ----
class SubscribeOp(Body, tag_field="op", tag="subscribe"):
    hunt: HuntId | None = None  # None: every hunt
    after: Annotated[int, msgspec.Meta(ge=0)] = 0


class UnsubscribeOp(Body, tag_field="op", tag="unsubscribe"):
    pass


class GrantsOp(Body, tag_field="op", tag="grants"):
    player: PlayerId

    __post_init__ = _check_player


class AckOp(Body, tag_field="op", tag="ack"):
    grant_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LeaveOp(Body, tag_field="op", tag="leave"):
    player: PlayerId

    __post_init__ = _check_player


class AuthOp(Body, tag_field="op", tag="auth"):
    key: str


class PingOp(Body, tag_field="op", tag="ping"):
    pass


SessionOp = SubscribeOp | UnsubscribeOp | GrantsOp | AckOp | LeaveOp | AuthOp | PingOp


class BatchFrame(Body):
    """A session frame with `ops` (its `id` taken off): each op is decoded alone, as in `/v1/batch`."""

    ops: Annotated[list[Any], msgspec.Meta(max_length=1000)]


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
    voided: bool | None = None  # true once an operator voided the claim (absent otherwise)


class DigResponse(msgspec.Struct):
    """`finders` comes with `taken` when another player claimed the treasure: who, in claim order."""

    result: Literal["miss", "found", "taken"]
    temperature: str
    claim: ClaimOut | None = None
    finders: list[str] | None = None


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
    none_left: bool = False  # true (and `hint` empty) when no live treasure is left that the player has not claimed


class EventOut(msgspec.Struct):
    id: int
    type: str
    hunt: str
    at: str
    data: dict[str, Any]


class UpdateError(msgspec.Struct):
    """A refused update of a positions request: its place in `updates`, and why."""

    index: int
    error: ErrorDetail


class PositionsResponse(msgspec.Struct):
    events: list[ProximityEnter | ProximityExit]
    errors: list[UpdateError]


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
    paused: bool | None = None  # an operator paused it (absent otherwise)
    archived: bool | None = None  # an operator deleted (archived) it


class GrantOut(msgspec.Struct):
    grant_id: str
    player: str
    claim_id: str
    items: list[ItemOut]
    status: Literal["pending", "acked", "cancelled", "revoked"]


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


class WorldRequest(Body):
    """`PUT /v1/worlds/{world}`: no fields yet (an empty body is the same)."""


class WorldOut(msgspec.Struct):
    world: str
    source: Literal["procedural", "pack", "upload"]
    runtime: bool  # registered through the API (not in the config file)
    sites: int
    chunks: int
    tags: list[str]
    hunts: list[str]  # the live, scheduled and recurring hunts that use it


class WorldList(msgspec.Struct):
    worlds: list[WorldOut]


class WorldRetiredOut(msgspec.Struct):
    world: str
    retired: bool


class SitesUploaded(msgspec.Struct):
    world: str
    sites: int
    chunks: int
    tags: list[str]
    bytes: int
    seconds: float


class PlayerOut(msgspec.Struct):
    player: str
    finds: int
    flags: int
    last_pos: list[int] | None
    pending_grants: int
    barred: Barred | None = None


class Barred(msgspec.Struct):
    by: str
    reason: str
    since: str


# ---- operator actions --------------------------------------------------------------------------------
class ActionBody(msgspec.Struct):
    """An operator action's body: the `reason` is required (a DELETE may pass `?reason=` instead)."""

    reason: str


class AuditEntry(msgspec.Struct):
    """One operator action: `id` is its event id (the audit log's cursor), `by` the label of the key."""

    id: int
    at: str
    action: str
    by: str
    reason: str
    hunt: str | None = None
    player: str | None = None
    target: str | None = None
    args: dict[str, Any] | None = None


class VoidBody(msgspec.Struct):
    """`POST /v1/claims/{claim_id}/void`: `rehide` hides its treasure again (first-finder, hunt active)."""

    reason: str
    rehide: bool = False


class ExtendBody(msgspec.Struct):
    """`POST /v1/hunts/{hunt}/extend`: either `by` (a duration, `30m`) or `ends_at` (RFC 3339)."""

    reason: str
    by: str | None = None
    ends_at: str | None = None


class RenameBody(msgspec.Struct):
    reason: str
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class EndBody(msgspec.Struct):
    """`POST /v1/hunts/{hunt}/end`: the body is optional (the audit log says "not given")."""

    reason: str | None = None


class AuditList(msgspec.Struct):
    entries: list[AuditEntry]
    next_cursor: str | None


class KeyCreateBody(msgspec.Struct):
    """`POST /v1/keys`: a new key's scope and label (1-64 of [A-Za-z0-9_.:-], unique among active keys)."""

    scope: Literal["game", "admin"]
    label: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    reason: str


class KeyRotateBody(msgspec.Struct):
    """`POST /v1/keys/{id}/rotate`: how long the old key keeps working (default 5m, at most 7d)."""

    reason: str
    overlap: Annotated[str, msgspec.Meta(pattern=r"^([0-9]+(ms|s|m|h|d|w))+$")] | None = None


class KeyMade(msgspec.Struct):
    """A new key: `secret` is shown in this reply only (the server keeps its SHA-256)."""

    id: str
    label: str
    scope: str
    created: str
    secret: str
    audit_id: int
    replaces: str | None = None
    replaced_expires_at: str | None = None


class KeyOut(msgspec.Struct):
    """A key, never its secret. `origin`: env, file (static keys) or runtime; `last_used`: on this node."""

    id: str
    label: str
    scope: str
    origin: str
    created: str | None
    last_used: str | None
    expires_at: str | None
    revoked: bool
    revoked_at: str | None
    active: bool


class KeyList(msgspec.Struct):
    keys: list[KeyOut]


class LeftOut(msgspec.Struct):
    player: str
    left: bool


# ---- a player's history (`GET /v1/players/{player}/history`), by kind -----------------------------
class ClaimEntry(msgspec.Struct, tag_field="kind", tag="claim"):
    at: str
    hunt: str
    claim_id: str
    treasure: str
    tier: str
    share: float | None
    items: list[ItemOut]


class GrantEntry(msgspec.Struct, tag_field="kind", tag="grant"):
    at: str
    hunt: str
    grant_id: str
    claim_id: str
    treasure: str
    items: list[ItemOut]
    state: Annotated[str, msgspec.Meta(description="pending, acked (more states may come)")]


class AckEntry(msgspec.Struct, tag_field="kind", tag="ack"):
    at: str
    hunt: str
    grant_id: str
    claim_id: str
    treasure: str


class AdminEntry(msgspec.Struct, tag_field="kind", tag="admin"):
    at: str
    hunt: Annotated[str | None, msgspec.Meta(description="the hunt acted on; null for none")]
    action: str
    target: Annotated[str | None, msgspec.Meta(description="what was acted on (a claim id ...); null for none")]
    reason: str
    by: Annotated[str, msgspec.Meta(description="the label of the admin key that acted")]
    id: Annotated[int, msgspec.Meta(description="the action's audit entry id (GET /v1/audit)")]


HistoryEntry = ClaimEntry | GrantEntry | AckEntry | AdminEntry


class HistoryOut(msgspec.Struct):
    player: str
    entries: list[HistoryEntry]
    next_cursor: Annotated[str | None, msgspec.Meta(description="pass as `cursor` for the next page; null: no more")]


class ExportRow(msgspec.Struct):
    """One claim of a hunt with its grant (`GET /v1/hunts/{hunt}/export`); CSV columns in this order,
    `items` there as a JSON array."""

    hunt: str
    treasure: str
    tier: str
    claim_id: str
    player: str
    at: str
    share: float | None
    value: int
    items: list[ItemOut]
    grant_id: str | None
    grant_state: str | None
    acked_at: str | None
    voided: bool


# ---- events (`GET /v1/events`, session pushes), by type -------------------------------------------
class HuntScheduledData(msgspec.Struct):
    starts_at: str


class HuntStartedData(msgspec.Struct):
    ends_at: str
    treasures: int


class HuntEndedData(msgspec.Struct):
    reason: Literal["time", "admin"]
    treasures_left: int


class TreasureData(msgspec.Struct):
    treasure: str
    tier: str


class TreasureFoundData(msgspec.Struct):
    treasure: str
    tier: str
    player: str
    claim_id: str


class TreasureClaimedData(msgspec.Struct):
    """First-finder: the claim's `player` and `claim_id`; shared bounty: every finder's `shares`."""

    treasure: str
    tier: str
    finders: list[str]
    player: str | None = None
    claim_id: str | None = None
    shares: list[int] | None = None


class ProximityData(msgspec.Struct):
    player: str
    treasure: str


class HintEscalatedData(msgspec.Struct):
    step: int
    of: int


class AnticheatData(msgspec.Struct):
    player: str
    reason: str
    distance: float
    seconds: float


class AdminData(msgspec.Struct):
    """An operator action's event: who (`by`, the key's label), why, and what it acted on."""

    by: str
    reason: str
    player: str | None = None


class ClaimVoidedData(AdminData):
    claim_id: str = ""
    treasure: str = ""
    rehide: bool = False


class GrantData(AdminData):
    """`grant.cancelled` (taken back before delivery), `grant.revoked` (after: take the items back)."""

    grant_id: str = ""
    claim_id: str = ""
    items: list[ItemOut] = msgspec.field(default_factory=list)


class GrantReissuedData(GrantData):
    replaces: str = ""  # the grant it replaces


class TreasureRehiddenData(AdminData):
    treasure: str = ""
    tier: str = ""


class HuntExtendedData(AdminData):
    ends_at: str = ""
    was: str = ""


class HuntRenamedData(AdminData):
    name: str = ""
    was: str = ""


class KeyData(AdminData):
    """A `key.*` event: the key acted on (never its secret or hash); a rotation names its successor."""

    id: str = ""
    label: str = ""
    scope: str = ""
    new_id: str | None = None
    expires_at: float | None = None


class LeaderboardResetData(msgspec.Struct):
    board: str
    period: str


class _Event(msgspec.Struct, tag_field="type"):
    id: int
    hunt: str  # "" for events of no hunt (leaderboard.reset)
    at: str


class HuntScheduled(_Event, tag="hunt.scheduled"):
    data: HuntScheduledData


class HuntStarted(_Event, tag="hunt.started"):
    data: HuntStartedData


class HuntEnded(_Event, tag="hunt.ended"):
    data: HuntEndedData


class TreasureFound(_Event, tag="treasure.found"):
    data: TreasureFoundData


class TreasureClaimed(_Event, tag="treasure.claimed"):
    data: TreasureClaimedData


class TreasureExpired(_Event, tag="treasure.expired"):
    data: TreasureData


class ProximityEnter(_Event, tag="proximity.enter"):
    data: ProximityData


class ProximityExit(_Event, tag="proximity.exit"):
    data: ProximityData


class HintEscalated(_Event, tag="hint.escalated"):
    data: HintEscalatedData


class AnticheatFlagged(_Event, tag="anticheat.flagged"):
    data: AnticheatData


class LeaderboardReset(_Event, tag="leaderboard.reset"):
    data: LeaderboardResetData


class PlayerBarred(_Event, tag="player.barred"):
    data: AdminData


class PlayerUnbarred(_Event, tag="player.unbarred"):
    data: AdminData


class ClaimVoided(_Event, tag="claim.voided"):
    data: ClaimVoidedData


class TreasureRehidden(_Event, tag="treasure.rehidden"):
    data: TreasureRehiddenData


class GrantCancelled(_Event, tag="grant.cancelled"):
    data: GrantData


class GrantRevoked(_Event, tag="grant.revoked"):
    data: GrantData


class GrantReissued(_Event, tag="grant.reissued"):
    data: GrantReissuedData


class HuntExtended(_Event, tag="hunt.extended"):
    data: HuntExtendedData


class HuntPaused(_Event, tag="hunt.paused"):
    data: AdminData


class HuntResumed(_Event, tag="hunt.resumed"):
    data: AdminData


class HuntRenamed(_Event, tag="hunt.renamed"):
    data: HuntRenamedData


class HuntArchived(_Event, tag="hunt.archived"):
    data: AdminData


class PlayerFlagsCleared(_Event, tag="player.flags_cleared"):
    data: AdminData


# ---- webhooks ---------------------------------------------------------------------------------------
class WebhookData(AdminData):
    webhook: str = ""


class WebhookAdded(_Event, tag="webhook.added"):
    data: WebhookData


class WebhookRemoved(_Event, tag="webhook.removed"):
    data: WebhookData


class WebhookResumed(_Event, tag="webhook.resumed"):
    data: WebhookData


class WebhookBody(msgspec.Struct, forbid_unknown_fields=True):
    """A new webhook target: event types or prefixes ending in `.` (`hunt.`), or `*` for every event."""

    url: str
    events: list[str]
    reason: str
    format: Literal["cairn", "discord"] = "cairn"
    secret: str | None = None  # 16-256 characters; generated when absent


class WebhookCreated(msgspec.Struct):
    """The new target; `secret` is shown here only, never again."""

    id: str
    url: str
    events: list[str]
    format: str
    secret: str


class WebhookOut(msgspec.Struct):
    """A target and its delivery state: `failures` are failed attempts in a row, `backlog` pending deliveries."""

    id: str
    url: str
    events: list[str]
    format: str
    state: Literal["active", "paused"]
    failures: int
    last_error: str | None
    last_success_at: str | None
    backlog: int
    dropped: int


class WebhookList(msgspec.Struct):
    webhooks: list[WebhookOut]


class KeyCreated(_Event, tag="key.created"):
    data: KeyData


class KeyRevoked(_Event, tag="key.revoked"):
    data: KeyData


class KeyRotated(_Event, tag="key.rotated"):
    data: KeyData


AnyEvent = (
    HuntScheduled | HuntStarted | HuntEnded | TreasureFound | TreasureClaimed | TreasureExpired | ProximityEnter
    | ProximityExit | HintEscalated | AnticheatFlagged | LeaderboardReset | PlayerBarred | PlayerUnbarred
    | ClaimVoided | TreasureRehidden | GrantCancelled | GrantRevoked | GrantReissued | HuntExtended | HuntPaused
    | HuntResumed | HuntRenamed | HuntArchived | PlayerFlagsCleared
    | WebhookAdded | WebhookRemoved | WebhookResumed
    | KeyCreated | KeyRevoked | KeyRotated
)  # fmt: skip


class StreamGap(msgspec.Struct):
    """`event: gap`: events after `after` were dropped before this stream began."""

    after: int


class StreamDropped(msgspec.Struct):
    """`event: dropped`: the subscriber fell behind; resume with `after=resume_after`."""

    resume_after: int


class StreamRevoked(msgspec.Struct):
    """`event: revoked`: the stream's key was revoked or expired; `after` is the last id sent."""

    after: int
