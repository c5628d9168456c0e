"""The engine: the live state of every hunt, and the rules that change it, in two phases.

1. A command *decides*: `dig`, `ack`, `end_hunt`, `create_hunt`, `register_world`, `retire_world`,
   `register_recurring` and `tick` read the state and return an `Outcome` (the reply, the records,
   the seq the reply waits for). They change no durable state.
2. `apply(records)` is the one way durable state changes. Live operation applies a command's
   records right after deciding it (the embedded runtime) or once they are committed (a Redis node,
   which also applies the records other nodes committed); `replay` rebuilds the state after a
   restart through the same code.

It is a deterministic state machine: time comes in as an argument and nothing here does I/O. A
command is decided without an `await`, so within one process no lock is needed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, NoReturn

import msgspec

from cairn.core import hints, placement
from cairn.core import loot as lootmod
from cairn.core.admin import ACTIONS, Operator
from cairn.core.admin import Request as AdminRequest
from cairn.core.boards import DEFAULT_BOARDS, Boards
from cairn.core.errors import (
    GrantCancelled,
    GrantNotFound,
    HintCooldown,
    HuntExists,
    HuntNotActive,
    HuntNotFound,
    HuntPaused,
    ImplausibleMovement,
    OutOfReach,
    PlayerBarred,
    PlayerNotJoined,
    RateLimited,
    TooManyPlayers,
    UnknownWorld,
    WorldInUse,
    WorldNotFound,
)
from cairn.core.events import Event, EventLog
from cairn.core.geometry import Pos, dist2, hdist
from cairn.core.grants import Grant, claim_id_of, grant_id_of, split_pool
from cairn.core.hunts import NEAR, Hunt, Plan, PlanInput, StalePlan, TimerKind, Treasure, compute_plan
from cairn.core.ids import Ids, event_span
from cairn.core.keys import KeyRing
from cairn.core.loot import Item, LootTable
from cairn.core.placement import LiveTreasures
from cairn.core.players import Limits, Player
from cairn.core.proximity import ProximityIndex
from cairn.core.records import (
    Acked,
    Admin,
    AnyRecord,
    Claimed,
    HuntCreated,
    HuntEnded,
    HuntStarted,
    Record,
    Recurring,
    Settled,
    WorldAdded,
    WorldRetired,
)
from cairn.core.schedule import Cron, stamp
from cairn.core.sites import SiteSet
from cairn.core.spec import HuntSpec, check_start, encode_spec, only_fields, parse_duration, rfc3339, starts_at_ts
from cairn.core.webhooks import Target as WebhookTarget

#: The engine and what its callers use with it; hunts, players and grants live in their own modules.
__all__ = [
    "EMPTY_WORLD_TAGS", "MISSES", "NEAR", "NONE_LEFT", "Due", "Engine", "Grant", "Hunt", "Limits", "Outcome", "Plan",
    "PlanInput", "Player", "StalePlan", "TimerKind", "Treasure", "claim_id_of", "compute_plan", "grant_id_of",
    "split_pool",
]  # fmt: skip

CELL = 16  # treasure lookup cell for digs, in blocks
TILE_BUDGET = 2048  # temperature tiles kept over all hunts (4 KiB each, 8 MiB in all) before the cache is dropped
NOTHING: tuple[AnyRecord, ...] = ()
NO_ERRORS: tuple[dict[str, Any], ...] = ()  # a positions reply's `errors` when every update applied
#: The tag vocabulary of a world registered at runtime, until its sites are uploaded.
EMPTY_WORLD_TAGS = ("surface", "cave", "underwater")
SWEEP_STEP = 4096  # players (and hint entries) looked at per `tick` when forgetting idle ones


class Outcome(NamedTuple):
    """What a command did: the reply, the records to make durable, and the seq to wait for."""

    result: Any
    records: Sequence[AnyRecord]
    wait_seq: int  # the reply may be sent once every record up to here is durable


#: The reply to a hint when every live treasure of the hunt is one the player has claimed (or none is live).
NONE_LEFT = Outcome({"hint": {}, "next_hint_in": 0, "none_left": True}, (), 0)
#: The reply to a miss, by temperature band: shared, since replies are never mutated.
MISSES = tuple(Outcome({"result": "miss", "temperature": band}, (), 0) for band in hints.TEMPERATURES)
# A treasure found in `around` is at most NEAR away: the band of its squared distance is one index
# in this table (`hints.bands_by_d2`), the same band as `hints.temperature_band` of its distance.
_NEAR2 = NEAR * NEAR
_NEAR_BANDS = hints.bands_by_d2(_NEAR2)
# The dig path's constants as plain globals (one lookup each, not two).
_TILE_SHIFT, _TILE_MASK, _NEAR_FLAG = hints.TILE_SHIFT, hints.TILE - 1, hints.NEAR_FLAG
_dist = math.dist


class Due(NamedTuple):
    """A timer that fell due in `Engine.tick`, and the records it decided (none: nothing to do)."""

    timer: tuple[float, TimerKind, str, int]  # (due, kind, hunt, n), as queued in `Engine.timers`
    records: list[AnyRecord]


def _around(h: Hunt, at: Pos, mine: Sequence[int] | None, tol: int) -> tuple[list[Treasure], int]:
    """One pass over the treasures in `at`'s neighbourhood list, which holds every treasure within NEAR
    of it: those within `tol` of `at` on every axis (none when `tol` < 0: a temperature alone), and the
    squared horizontal distance to the nearest live one whose index is not in `mine` (the player's
    claims), or NEAR² + 1 when none is that close. The dig and `_temperature` share it."""
    ax, ay, az = at
    near: list[Treasure] = []
    best = NEAR * NEAR + 1
    around = h.around
    if around is None:
        around = h.make_around()
    s = h.around_shift
    for t in around.get(((ax >> s) << 32) + (az >> s), ()):
        p = t.pos
        dx, dz = p[0] - ax, p[2] - az
        if -tol <= dx <= tol and -tol <= dz <= tol and -tol <= p[1] - ay <= tol:
            near.append(t)
        if t.live and (mine is None or t.n - 1 not in mine):
            d = dx * dx + dz * dz
            if d < best:
                best = d
    return near, best


class Engine(Operator):
    """The live state of every hunt, and the rules that change it (see the module docstring).

    Commands decide and `apply` changes the durable state: hunts, treasures, claims, grants,
    recurring specs and runtime worlds, all rebuilt from records by `replay`. The ids a command
    reserves while deciding (`ids`, an `Ids`) are an allocator, not state. Some state is per node
    and never journaled, so commands change it as they decide: player positions, dig token buckets
    and anti-cheat flag counts (`players`), hint cooldowns (`last_hint`), proximity fences'
    occupants, hint escalation steps, uploaded sites (`replace_sites`), the due-timer queue
    (`timers`, re-armed by apply), the temperature tile cache, and the ephemeral events they emit.
    A restart forgets them.

    Views (`hunt_view`, `list_hunts`, `recurring_view`, `claims_of`, `finds`, `grants_of`, `grant_view`,
    `claim_view`, `pending_older_than`, `world_users`) read the state and change nothing.
    """

    # Slots keep every `self.x` of the hot path a slot load. A plain instance keeps its attributes
    # inline only up to 29 of them (CPython 3.11); past that a dig miss got about 5% slower.
    __slots__ = (
        "_burst", "_max_speed", "_rate", "_slack", "api_keys", "audit", "audited", "barred", "boards", "by_player",
        "by_request", "claimed", "claims", "events", "grants", "holding", "hunts", "ids", "landmarks", "last_emitted",
        "last_hint", "limits", "live_treasures", "loot_tables", "new_events", "pending", "players", "proximity",
        "quiet_through", "recurring", "registered", "reissued", "secret", "sweep", "tiles_kept", "timers", "voided",
        "webhooks", "world_version", "worlds",
    )  # fmt: skip

    def __init__(
        self,
        secret: bytes,
        worlds: dict[str, SiteSet],
        loot_tables: dict[str, LootTable] | None = None,
        limits: Limits | None = None,
        landmarks: Sequence[hints.Landmark] = (),
        boards: Boards | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.secret = secret
        self.worlds = worlds
        self.loot_tables = loot_tables if loot_tables is not None else {"default": lootmod.DEFAULT_LOOT}
        self.limits = lim = limits or Limits()
        # The limits as plain floats, read on every dig and move.
        self._max_speed, self._slack = float(lim.max_speed), float(lim.movement_slack)
        self._rate, self._burst = float(lim.dig_rate), float(lim.dig_burst)
        self.ids = Ids()  # the highest seq and event id applied or reserved
        # While `apply` runs: the events it causes that no record journals (the proximity exits of a
        # treasure it retires), emitted with fresh ids once every record given is applied.
        self.holding: list[tuple[str, str, float, dict[str, Any]]] | None = None
        # hunt -> the id of its last event emitted. Per hunt: with Redis, a hunt's journaled ids come
        # from its own stream and rise per hunt only, so another hunt's later id must not renumber them.
        self.last_emitted: dict[str, int] = {}
        self.hunts: dict[str, Hunt] = {}
        self.claims: dict[str, Claimed] = {}
        # (hunt, player, request_id) -> claim_id: a request_id replays only within its own hunt.
        self.by_request: dict[tuple[str, str, str], str] = {}
        # (hunt, player) -> indices of the treasures claimed; a tuple, since players claim a few each
        self.claimed: dict[tuple[str, str], tuple[int, ...]] = {}
        self.grants: dict[str, Grant] = {}
        self.pending: dict[str, dict[str, Grant]] = {}  # player -> pending grants, oldest first
        self.players: dict[str, Player] = {}
        # player -> their claims over all hunts, oldest first (history, hint adaptation): the claim itself
        # while a player has one (most players: no list each), then a list.
        self.by_player: dict[str, Claimed | list[Claimed]] = {}
        self.last_hint: dict[tuple[str, str], tuple[float, str | None, dict[str, Any] | None]] = {}
        self.landmarks = list(landmarks)
        self.proximity: dict[str, ProximityIndex] = {w: ProximityIndex() for w in worlds}
        # Per world, the live treasures that placement keeps `min_spacing` away from.
        self.live_treasures: dict[str, LiveTreasures] = {w: LiveTreasures() for w in worlds}
        self.world_version: dict[str, int] = {}
        self.registered: dict[str, WorldAdded] = {}  # worlds registered at runtime (not in the config)
        self.timers: list[tuple[float, TimerKind, str, int]] = []  # (due, kind, hunt, n)
        self.events = events if events is not None else EventLog()
        self.quiet_through = 0  # replay builds no events for records up to this seq
        self.recurring: dict[str, tuple[HuntSpec, Recurring, Cron]] = {}
        self.boards = boards if boards is not None else Boards(list(DEFAULT_BOARDS))
        self.new_events: list[Event] = []  # drained by the transport after each call
        self.tiles_kept = 0  # temperature tiles cached over all hunts (a cache; not state)
        # The idle sweep's place: names of players and hint entries still to look at (`forget_idle`).
        self.sweep: tuple[list[str], list[tuple[str, str]], float] = ([], [], 0.0)
        self.audit: list[Admin] = []  # operator actions (`cairn/core/admin.py`)
        self.audited: set[int] = set()
        self.barred: dict[str, Admin] = {}
        self.voided: dict[str, Admin] = {}  # claim id -> the action that voided it (`cairn/core/undo.py`)
        self.reissued: dict[str, list[str]] = {}  # claim id -> its grants reissued, in order
        self.webhooks: dict[str, WebhookTarget] = {}  # webhook targets (`cairn/core/webhooks.py`)
        self.api_keys = KeyRing()

    # ---- time and ids -------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        """The highest seq applied or reserved."""
        return self.ids.seq

    @property
    def last_event(self) -> int:
        """The highest event id used or reserved."""
        return self.ids.event

    def event_span(self, rec: AnyRecord) -> int:
        """How many event ids `rec` takes when applied (`ids.event_span`, with its hunt's treasure count)."""
        h = self.hunts.get(rec.hunt) if isinstance(rec, HuntEnded) else None
        return event_span(rec, len(h.treasures) if h is not None else 0)

    def _emit(self, ev_id: int, typ: str, hunt: str, at: float, data: dict[str, Any]) -> None:
        """Emit an event with id `ev_id` (a record's reserved id, or a fresh one from `ids.events`).

        Events are emitted in id order, so a subscriber's live order is the replay order. A record's
        events take the ids reserved for it, in order; what `apply` causes that is not journaled (the
        proximity exits of a treasure it retires) takes fresh ids after every record given is applied
        (`holding`), since the later records' ids were reserved before. Only a record applied
        from another node (Redis) can come with an id at or below the last one of its hunt (after an
        event this node made for that hunt and did not journal): it takes the next id.
        """
        last, ids = self.last_emitted, self.ids
        if ev_id <= last.get(hunt, 0):
            ev_id = ids.event + 1
        last[hunt] = ev_id
        if ev_id > ids.event:
            ids.event = ev_id
        if ids.seq <= self.quiet_through:
            return  # replaying old history: only the tail's events are rebuilt
        ev = Event(ev_id, typ, hunt, rfc3339(at), data)
        self.events.add(ev, at)
        self.new_events.append(ev)

    def emit(self, typ: str, hunt: str, now: float, data: dict[str, Any]) -> None:
        """An event that is not journaled (proximity, anti-cheat)."""
        if self.holding is not None:
            self.holding.append((typ, hunt, now, data))
            return
        self._emit(self.ids.events(now), typ, hunt, now, data)

    # ---- hunts --------------------------------------------------------------------------------
    def hunt(self, hunt_id: str) -> Hunt:
        h = self.hunts.get(hunt_id)
        if h is None:
            raise HuntNotFound(f"no hunt {hunt_id!r}", field="hunt")
        return h

    def plan_input(self, spec: HuntSpec) -> PlanInput:
        """Gather what placement needs, on the loop; `compute_plan` then runs anywhere."""
        if spec.id in self.hunts:
            raise HuntExists(f"hunt {spec.id!r} already exists", field="id")
        sites = self.worlds.get(spec.world)
        if sites is None:
            raise UnknownWorld(f"world {spec.world!r} is not configured", field="world")
        table = lootmod.table_named(self.loot_tables, spec.loot)
        self.boards.check(spec.leaderboards)
        sites.mask(spec.spawn.tags_any, "spawn.tags_any")
        sites.mask(spec.spawn.tags_none, "spawn.tags_none")
        live = self._live(spec.world)
        avoid = live.within(*placement.avoid_box(spec)) if spec.spawn.min_spacing > 0 else []
        key = placement.placement_key(self.secret, spec)
        return PlanInput(spec, sites, avoid, self.world_version.get(spec.world, 0), key, table, live.clock)

    def _live(self, world: str) -> LiveTreasures:
        live = self.live_treasures.get(world)
        if live is None:
            live = self.live_treasures[world] = LiveTreasures()
        return live

    def create_hunt(self, plan: Plan, now: float) -> Outcome:
        """Decide a hunt from a plan: its `HuntCreated` record, and `HuntStarted` when it starts now.
        Raises StalePlan when it may break `min_spacing`: a treasure placed since it was computed is
        live within `min_spacing` of its area (other hunts leave it valid), or the sites changed.

        The result is None: the reply is `hunt_view(id, now, reveal=True)`, a view of the state once
        the records are applied, which the runtime builds after applying them."""
        spec = plan.spec
        if spec.id in self.hunts:
            raise HuntExists(f"hunt {spec.id!r} already exists", field="id")
        if self.world_version.get(plan.world, 0) != plan.world_version:
            raise StalePlan(spec.id)
        if spec.spawn.min_spacing > 0 and self._live(plan.world).added_since(plan.mark, *placement.avoid_box(spec)):
            raise StalePlan(spec.id)
        start = starts_at_ts(spec, now)
        check_start(start)  # a spec was checked alone; here `now` stands for an absent start
        end = start + parse_duration(spec.duration, "duration")
        if end <= now:
            raise HuntNotActive(f"hunt {spec.id!r} would already have ended at {rfc3339(end)}", field="starts_at")
        ids = self.ids
        rec = ids.stamp(HuntCreated(
            0, now, 0, spec.id, encode_spec(spec), start, end, plan.pos, plan.tiers, plan.loot, plan.tags, plan.avoid,
        ), now)  # fmt: skip
        records: list[AnyRecord] = [rec]
        if start <= now:
            records.append(ids.stamp(HuntStarted(0, now, 0, spec.id), now))
        return Outcome(None, records, records[-1].seq)

    def end_hunt(self, hunt_id: str, now: float) -> Outcome:
        """Decide ending a hunt now; ending an ended hunt decides nothing (idempotent). The result is
        None: the reply is `hunt(id).summary(now)` once the records are applied (built by the runtime)."""
        h = self.hunt(hunt_id)
        if h.ended is not None:
            return Outcome(None, NOTHING, h.ended.seq)
        records = self._end(h, min(now, h.ends_at), "admin" if now < h.ends_at else "time")
        return Outcome(None, records, records[-1].seq)

    def end_hunt_admin(self, req: AdminRequest, now: float) -> Outcome:
        """`end_hunt` asked by an operator: the action's record (`hunt.end`, audited), then the records
        that end the hunt. An ended hunt decides nothing, as `end_hunt` (and writes no audit entry)."""
        h = self.hunt(req.hunt)
        if h.ended is not None:
            only_fields(req.args, ACTIONS["hunt.end"].takes)  # idempotent, but a bad body is refused as when live
            return Outcome(None, NOTHING, h.ended.seq)
        rec, _ = self.admin(req, now)
        records = [rec, *self._end(h, min(now, h.ends_at), "admin" if now < h.ends_at else "time")]
        return Outcome(None, records, records[-1].seq)

    def _end(
        self, h: Hunt, at: float, reason: str, started: bool = False, settled: frozenset[int] = frozenset()
    ) -> list[AnyRecord]:
        """The records that end `h` at `at`: its start if it never started, each open treasure's
        settlement, the end. `started` and `settled` (treasure numbers): what `tick` decided already
        and is not applied yet."""
        ids = self.ids
        records: list[AnyRecord] = []
        if h.started is None and not started and at >= h.starts_at:
            records.append(ids.stamp(HuntStarted(0, h.starts_at, 0, h.id), at))
        for t in h.treasures:
            if t.state == "open" and t.n not in settled:
                records.append(self._settle(t, min(at, t.window_ends)))
        records.append(ids.stamp(HuntEnded(0, at, 0, h.id, reason), at, len(h.treasures)))
        return records

    def finders_of(self, t: Treasure) -> list[str]:
        """A treasure's finders in claim order, but for those whose claim an operator voided."""
        if not self.voided:
            return t.finders
        return [c.player for c in t.claims if c.claim_id not in self.voided]

    def hunt_view(self, hunt_id: str, now: float, reveal: bool = False) -> dict[str, Any]:
        h = self.hunt(hunt_id)
        out = h.summary(now)
        out["prize"] = {"mode": h.spec.prize.mode}
        out["treasures"] = [t.view(reveal) for t in h.treasures]
        if self.voided:
            for t, tv in zip(h.treasures, out["treasures"], strict=True):
                tv["finders"] = self.finders_of(t)
        if h.paused is not None:
            out["paused"] = True
        if h.archived is not None:
            out["archived"] = True
        if reveal:
            out["spec"] = msgspec.json.decode(h.spec_json)
        return out

    def list_hunts(self, now: float, archived: bool = False) -> list[dict[str, Any]]:
        """Every hunt's summary; an archived hunt (`hunt.delete`) only with `archived`."""
        return [h.summary(now) for h in self.hunts.values() if archived or h.archived is None]

    # ---- worlds -------------------------------------------------------------------------------
    def register_world(self, world: str, now: float) -> Outcome:
        """Register an upload-only world (empty until its sites are uploaded). Idempotent: a world
        that exists already (configured or registered) is left as it is, with no record."""
        if world in self.worlds:
            return Outcome({"world": world, "created": False}, NOTHING, 0)
        rec = self.ids.stamp(WorldAdded(0, now, 0, world), now)
        return Outcome({"world": world, "created": True}, (rec,), rec.seq)

    def replace_sites(self, world: str, sites: SiteSet) -> None:
        """Give a known world new sites (an upload). Live hunts keep their treasures: their positions
        live in the hunts, not in the SiteSet. Bumping the version makes a placement computed
        against the old sites plan again."""
        if world not in self.worlds:
            raise WorldNotFound(f"no world {world!r}", field="world")
        self.worlds[world] = sites
        self.world_version[world] = self.world_version.get(world, 0) + 1

    def world_users(self, world: str, now: float) -> list[str]:
        """The hunts that keep `world` in use: live or scheduled ones, and recurring specs."""
        users = [h.id for h in self.hunts.values() if h.world == world and h.ended is None and now < h.ends_at]
        users += [f"{sid} (recurring)" for sid, (spec, _, _) in self.recurring.items() if spec.world == world]
        return users

    def retire_world(self, world: str, now: float) -> Outcome:
        """Retire a runtime-registered world that no live, scheduled or recurring hunt uses."""
        if world not in self.worlds:
            raise WorldNotFound(f"no world {world!r}", field="world")
        users = self.world_users(world, now)
        if users:
            shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
            raise WorldInUse(f"world {world!r} is used by {shown}", field="world", hunts=users)
        rec = self.ids.stamp(WorldRetired(0, now, 0, world), now)
        return Outcome({"world": world, "retired": True}, (rec,), rec.seq)

    # ---- recurring hunts ---------------------------------------------------------------------------
    def register_recurring(self, spec: HuntSpec, now: float) -> Outcome:
        """Decide registering (or replacing) a spec with a `schedule`; each firing makes a hunt
        `<id>@<YYYYMMDDTHHMM>`. The result is None: the reply is `recurring_view(id, now)` once the
        record is applied (built by the runtime)."""
        if spec.schedule is None:
            raise ValueError("not a recurring spec")
        if spec.world not in self.worlds:
            raise UnknownWorld(f"world {spec.world!r} is not configured", field="world")
        lootmod.table_named(self.loot_tables, spec.loot)
        self.boards.check(spec.leaderboards)
        sites = self.worlds[spec.world]
        sites.mask(spec.spawn.tags_any, "spawn.tags_any")
        sites.mask(spec.spawn.tags_none, "spawn.tags_none")
        body = encode_spec(spec)
        old = self.recurring.get(spec.id)
        if old is not None and old[1].spec == body:
            return Outcome(None, NOTHING, old[1].seq)
        rec = self.ids.stamp(Recurring(0, now, 0, body), now)
        return Outcome(None, (rec,), rec.seq)

    def recurring_view(self, spec_id: str, now: float) -> dict[str, Any]:
        spec, _, cron = self.recurring[spec_id]
        nxt = cron.next_after(datetime.fromtimestamp(now, UTC))
        return {
            "id": spec.id,
            "schedule": spec.schedule,
            "duration": spec.duration,
            "max_concurrent": spec.max_concurrent,
            "next_firing": rfc3339(nxt.timestamp()) if nxt else None,
            "instances": sorted(h for h in self.hunts if h.startswith(spec.id + "@")),
        }

    def due_instances(self, now: float) -> list[HuntSpec]:
        """Instances to create now: the latest firing if it is still inside its duration (older missed
        firings are skipped), and the next firing ahead of time, both within `max_concurrent`."""
        out: list[HuntSpec] = []
        t = datetime.fromtimestamp(now, UTC)
        for spec, _, cron in self.recurring.values():
            dur = parse_duration(spec.duration, "duration")
            planned: list[float] = []  # starts of instances planned in this call
            for firing in (cron.prev_at_or_before(t), cron.next_after(t)):
                if firing is None:
                    continue
                start = firing.timestamp()
                iid = f"{spec.id}@{stamp(firing)}"
                if iid in self.hunts or start + dur <= now:
                    continue
                prefix = spec.id + "@"
                overlapping = sum(
                    1 for h in self.hunts.values()
                    if h.id.startswith(prefix) and h.ended is None and h.starts_at < start + dur and start < h.ends_at
                )  # fmt: skip
                overlapping += sum(1 for p in planned if p < start + dur and start < p + dur)
                if overlapping >= spec.max_concurrent:
                    continue
                planned.append(start)
                seed = f"{spec.seed if spec.seed is not None else spec.id}@{stamp(firing)}"
                out.append(msgspec.structs.replace(spec, id=iid, starts_at=firing, schedule=None, seed=seed))
        return out

    # ---- digs ---------------------------------------------------------------------------------
    def dig(
        self, hunt_id: str, player: str, pos: Pos, at: Pos, request_id: str | None, now: float, teleport: bool = False
    ) -> Outcome:
        """Decide one dig: miss, found (a claim) or taken. Replays of a claiming request_id return the claim.
        `teleport`: the player got to `pos` by teleport (a portal), so it is not movement-checked.

        The result is what the player sees once the records are applied: a found dig's temperature
        leaves out the treasure it claims; a dig on a shared bounty whose window is due settles it
        (the `Settled` record) and is `taken`. Only the player's position and dig tokens change here."""
        # `by_player` holds every player's claims and never shrinks: a player not in it has no claim
        # anywhere, so neither claim lookup below can match (most digs, and the cheapest check).
        known = player in self.by_player
        if request_id is not None and known:
            cid = self.by_request.get((hunt_id, player, request_id))
            if cid is not None:  # a retried dig that claimed: its claim, even for a player barred since
                c = self.claims[cid]
                temperature = self._temperature(self.hunts[c.hunt], player, at)
                return Outcome({"result": "found", "temperature": temperature, "claim": self.claim_view(c)}, NOTHING,
                               c.seq)  # fmt: skip
        if self.barred and player in self.barred:
            raise PlayerBarred(f"player {player!r} is barred from hunts", field="player")
        h = self.hunts.get(hunt_id)
        if h is None:
            raise HuntNotFound(f"no hunt {hunt_id!r}", field="hunt")
        if h.ended is not None or not h.starts_at <= now < h.ends_at:
            raise HuntNotActive(f"hunt {hunt_id!r} is {h.state_at(now)}", field="hunt")
        if h.paused is not None:
            raise HuntPaused(f"hunt {hunt_id!r} is paused", field="hunt")
        if _dist(pos, at) > h.reach:
            raise OutOfReach(f"dig at {list(at)} is farther than reach {h.reach:g} from the player", field="at")
        # A dig outside the hunt's area is decided like any other (a miss, or a treasure at the edge
        # within tolerance): players break blocks everywhere, so it is an outcome, not an error.
        ax, az = at[0], at[2]
        self._move(player, pos, teleport, now, hunt_id, True)
        mine = self.claimed.get((hunt_id, player)) if known else None
        if mine is None:
            # The common case, a miss by a player with no claim here: one lookup in the tile.
            tile = h.tiles.get((ax >> _TILE_SHIFT, az >> _TILE_SHIFT))
            if tile is None:
                tile = self._tile(h, ax, az)
            band = tile[((ax & _TILE_MASK) << _TILE_SHIFT) | (az & _TILE_MASK)]
            if band < _NEAR_FLAG:
                return MISSES[band]
        # One pass over the treasures within NEAR of the dig: the candidates within tolerance, and
        # the nearest live one this player has not claimed (which answers most temperatures).
        near, best = _around(h, at, mine, h.tolerance)
        if not near:  # a miss: the common case
            if best <= _NEAR2:
                return MISSES[_NEAR_BANDS[best]]
            return Outcome({"result": "miss", "temperature": self._temperature(h, player, at)}, NOTHING, 0)
        if len(near) > 1:
            near.sort(key=lambda t: (dist2(t.pos, at), t.n))
        result, wait = "miss", 0
        for t in near:
            if mine is not None and t.n - 1 in mine:
                result, wait = "taken", max(wait, t.seq)
                continue
            if t.state == "open" and now >= t.window_ends:  # the window closed: settled, and so taken
                settled = self._settle(t, t.window_ends)
                temperature = self._temperature(h, player, at, t.n - 1)
                taken = {"result": "taken", "temperature": temperature, "finders": self.finders_of(t)}
                return Outcome(taken, (settled,), settled.seq)
            if t.state == "hidden" or t.state == "open":
                rec = self._claim(h, t, player, request_id, now)
                view: dict[str, Any] = {"result": "found", "temperature": self._temperature(h, player, at, t.n - 1)}
                view["claim"] = self.claim_view(rec)
                return Outcome(view, (rec,), rec.seq)
            taken = {"result": "taken", "temperature": self._temperature(h, player, at), "finders": self.finders_of(t)}
            return Outcome(taken, NOTHING, t.seq)
        return Outcome({"result": result, "temperature": self._temperature(h, player, at)}, NOTHING, wait)

    def _tile(self, h: Hunt, x: int, z: int) -> bytes:
        """Make and keep the temperature tile holding column (x, z); drop every tile past the budget."""
        if self.tiles_kept >= TILE_BUDGET:
            for other in self.hunts.values():
                other.tiles.clear()
            self.tiles_kept = 0
        key = (x >> hints.TILE_SHIFT, z >> hints.TILE_SHIFT)
        tile = h.tiles[key] = h.field.band_tile(key[0], key[1], h.tolerance)
        self.tiles_kept += 1
        return tile

    def _claim(self, h: Hunt, t: Treasure, player: str, request_id: str | None, now: float) -> Claimed:
        cid = claim_id_of(t.id, player)
        if h.spec.prize.mode == "first_finder":
            rec = Claimed(0, now, 0, h.id, t.n, player, cid, request_id, 1.0, t.items, grant_id_of(cid, "loot"))
        else:
            rec = Claimed(0, now, 0, h.id, t.n, player, cid, request_id, None, [], None)
        return self.ids.stamp(rec, now)

    def _settle(self, t: Treasure, at: float) -> Settled:
        spec = t.hunt.spec.prize
        amounts = split_pool(spec.pool, len(t.claims))
        grants = [grant_id_of(c.claim_id, "pool") for c in t.claims]
        return self.ids.stamp(Settled(0, at, 0, t.hunt.id, t.n, amounts, grants), at)

    def _temperature(self, h: Hunt, player: str, at: Pos, also: int = -1) -> str:
        """The band of horizontal distance from `at` to the nearest live treasure this player has not
        claimed, leaving out treasure index `also` too (one a decided record claims or retires)."""
        mine = self.claimed.get((h.id, player))
        if also >= 0:
            mine = (*mine, also) if mine is not None else (also,)
        # Every treasure within NEAR of `at` is in its neighbourhood list: if the nearest one
        # there is that close, it is the nearest of all. Else ask the numpy field.
        best = _around(h, at, mine, -1)[1]
        if best <= _NEAR2:
            return hints.TEMPERATURES[_NEAR_BANDS[best]]
        i = h.field.nearest(at, mine)
        return "cold" if i is None else hints.temperature_band(hdist(at, h.treasures[i].pos))

    # ---- hints --------------------------------------------------------------------------------
    def hint(
        self, hunt_id: str, player: str, pos: Pos, request_id: str | None, now: float, teleport: bool = False
    ) -> Outcome:
        """A hint about the nearest treasure this player has not claimed, subject to a per-hunt cooldown.
        `teleport` as for `dig`."""
        h = self.hunts.get(hunt_id)
        if h is None:
            raise HuntNotFound(f"no hunt {hunt_id!r}", field="hunt")
        key = (hunt_id, player)
        last = self.last_hint.get(key)
        if last is not None and request_id is not None and last[1] == request_id and last[2] is not None:
            return Outcome(last[2], NOTHING, 0)  # a replayed hint: same reply, no second cooldown
        if self.barred and player in self.barred:
            raise PlayerBarred(f"player {player!r} is barred from hunts", field="player")
        if h.ended is not None or not h.starts_at <= now < h.ends_at:
            raise HuntNotActive(f"hunt {hunt_id!r} is {h.state_at(now)}", field="hunt")
        if h.paused is not None:
            raise HuntPaused(f"hunt {hunt_id!r} is paused", field="hunt")
        mine = self.claimed.get(key)
        field = h.field
        if field.live_count == (0 if mine is None else sum(1 for i in mine if field.is_live(i))):
            return NONE_LEFT  # nothing to hint at: no cooldown starts, the position is not taken
        if last is not None and now < last[0]:
            wait = last[0] - now
            raise HintCooldown(f"next hint in {wait:.1f}s", retry_after=round(wait, 3), next_hint_in=math.ceil(wait))
        self._move(player, pos, teleport, now, hunt_id)
        i = field.nearest(pos, mine)
        assert i is not None  # the count above found a live treasure this player has not claimed
        t = h.treasures[i]
        body = dict(hints.build_hint(
            h.spec.hints.kinds, pos, t.pos, t.tags, hints.hint_progress(now, h.starts_at, h.solve_by),
            t.hint_key, self.landmarks, finds_by_player=self.finds(player),
            policy=h.spec.hints.adapt, world=h.world,
        ))  # fmt: skip
        reply = {"hint": body, "next_hint_in": math.ceil(h.cooldown)}
        # The reply is kept only to answer a replay of its request_id (about 1 KB a player otherwise).
        self.last_hint[key] = (now + h.cooldown, request_id, reply if request_id is not None else None)
        return Outcome(reply, NOTHING, 0)

    def _move(self, player: str, pos: Pos, teleport: bool, now: float, hunt: str, dig: bool = False) -> Player:
        """Check a reported position against the last one; raise ImplausibleMovement if too fast.

        With `dig`, then take one dig from the player's token bucket (`dig_rate` per second, up to
        `dig_burst`; a new player starts with a full bucket), or raise RateLimited. One call on the
        dig path, which runs for every dig.
        """
        p = self.players.get(player)
        if p is None:
            p = self._new_player(player, False)
        last = p.last_pos
        if last is not None and not teleport:
            dt = now - p.last_t
            # The movement rule; `positions` inlines the same expression (both are hot paths).
            if _dist(pos, last) > (self._max_speed * dt + self._slack if dt > 0.0 else self._slack):
                self._flag_movement(player, p, last, pos, now, hunt)
        p.last_pos = pos
        p.last_t = now
        if not dig:
            return p
        tokens = p.tokens + (now - p.tokens_t) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        p.tokens_t = now
        if tokens < 1.0:
            p.tokens = tokens
            rate = self._rate
            raise RateLimited(f"more than {rate:g} digs per second", retry_after=round((1.0 - tokens) / rate, 3))
        p.tokens = tokens - 1.0
        return p

    def _flag_movement(self, player: str, p: Player, last: Pos, pos: Pos, now: float, hunt: str) -> NoReturn:
        """A move broke the movement rule: count it, emit `anticheat.flagged`, refuse the position."""
        p.flags += 1
        self.emit("anticheat.flagged", hunt, now, {
            "player": player, "reason": "implausible_movement",
            "distance": round(math.sqrt(dist2(last, pos)), 1), "seconds": round(now - p.last_t, 3),
        })  # fmt: skip
        raise ImplausibleMovement(
            f"moved {math.sqrt(dist2(last, pos)):.1f} blocks in {max(0.0, now - p.last_t):.3f}s "
            f"(max_speed {self.limits.max_speed:g} blocks/s)",
            field="pos",
        )

    def claim_view(self, c: Claimed) -> dict[str, Any]:
        return {
            "claim_id": c.claim_id,
            "treasure": f"{c.hunt}#{c.n}",
            "player": c.player,
            "at": rfc3339(c.at),
            "share": self._share(c),
            "items": lootmod.item_wire(self._items(c)),
            **({"voided": True} if self.voided and c.claim_id in self.voided else {}),
        }

    def _share(self, c: Claimed) -> float | None:
        if c.share is not None:
            return c.share
        amount = self._pool_amount(c)
        return None if amount is None else amount / self.hunts[c.hunt].spec.prize.pool

    def _items(self, c: Claimed) -> list[Item]:
        if c.share is not None:
            return c.items
        amount = self._pool_amount(c)
        return [] if amount is None else [Item(self.hunts[c.hunt].spec.prize.item, amount, amount)]

    def _pool_amount(self, c: Claimed) -> int | None:
        """A shared-bounty finder's part of the pool, once the window has closed."""
        t = self.hunts[c.hunt].treasures[c.n - 1]
        if t.settled is None:
            return None
        return t.settled.amounts[t.claims.index(c)]

    # ---- positions -------------------------------------------------------------------------------
    def positions(
        self, world: str, updates: Sequence[tuple[str, Pos, bool]], now: float, index: Sequence[int] | None = None
    ) -> Outcome:
        """Apply a tick of player positions; return the proximity events they cause.

        Each update stands alone: one that moves implausibly fast is not applied and is reported in
        `errors` with its index (`index[i]` when given: its place in the request), the rest apply.
        """
        prox = self.proximity.get(world)
        if prox is None:
            raise UnknownWorld(f"world {world!r} is not configured", field="world")
        lim = self.limits
        players = self.players
        max_speed, slack = self._max_speed, self._slack
        errors: list[dict[str, Any]] | None = None
        new = 0
        for i, (player, pos, teleport) in enumerate(updates):
            p = players.get(player)
            if p is None:
                new += 1
                continue
            last = p.last_pos
            if last is None or teleport:
                continue
            dt = now - p.last_t
            # The movement rule of `_move`, inlined: most updates pass it, and a call each would show.
            if _dist(pos, last) > (max_speed * dt + slack if dt > 0.0 else slack):
                try:
                    self._flag_movement(player, p, last, pos, now, "")
                except ImplausibleMovement as e:
                    at = i if index is None else index[i]
                    e.field = f"updates[{at}].pos"
                    e.message = f"{player}: {e.message}"
                    if errors is None:
                        errors = []
                    errors.append({"index": at, "i": i, **e.to_wire()})
        if new and len(players) + new > lim.max_players:
            self._new_player(updates[0][0], True, new)  # raises TooManyPlayers
        if errors is not None:
            refused = {e.pop("i") for e in errors}
            updates = [u for i, u in enumerate(updates) if i not in refused]
        start = len(self.new_events)
        for player, pos, _ in updates:
            p = players.get(player)
            if p is None:
                p = players[player] = Player()
            p.last_pos = pos
            p.last_t = now
        if len(updates) >= 16:  # a tick of many players: the index filters the quiet ones with numpy
            names = [u[0] for u in updates]
            events = prox.update_many(names, [u[1][0] for u in updates], [u[1][1] for u in updates],
                                      [u[1][2] for u in updates])  # fmt: skip
        else:
            events = [e for player, pos, _ in updates for e in prox.update(player, pos)]
        for typ, who, key in events:
            self.emit(typ, prox.hunt_of(key), now, {"player": who, "treasure": key})
        return Outcome({"events": self.new_events[start:], "errors": errors or NO_ERRORS}, NOTHING, 0)

    def leave(self, player: str) -> None:
        """A player logged out: forget ephemeral state (position, proximity). Claims and grants stay."""
        self.players.pop(player, None)
        for prox in self.proximity.values():
            prox.drop_player(player)

    def _new_player(self, player: str, joining: bool, count: int = 1) -> Player:
        """Track a player not tracked yet (new, or forgotten while idle). A position update joins a
        player; with `limits.strict_players` a hint or dig does not. Raises past `limits.max_players`."""
        lim = self.limits
        if not joining and lim.strict_players:
            raise PlayerNotJoined(
                f"player {player!r} has not joined: send a position update for them first (limits.strict_players)",
                field="player",
            )
        if len(self.players) + count > lim.max_players:
            raise TooManyPlayers(
                f"{len(self.players):,} players are tracked (limits.max_players = {lim.max_players:,}); players "
                f"silent for {lim.player_idle:g}s are forgotten",
                retry_after=1.0,
            )
        p = self.players[player] = Player()
        return p

    def forget_idle(self, now: float) -> int:
        """Forget players silent for `limits.player_idle` seconds (as `leave` does), and hint cooldowns that
        ended that long ago. Durable state (claims, grants) is untouched. Looks at SWEEP_STEP
        names of each per call; a pass over all starts at most every `player_idle / 4` seconds.
        Returns how many players were forgotten."""
        names, hinted, started = self.sweep
        idle = self.limits.player_idle
        if not names and not hinted:
            if now - started < idle / 4:
                return 0
            names, hinted, started = list(self.players), list(self.last_hint), now
        cut = now - idle
        players, last_hint = self.players, self.last_hint
        gone = 0
        for _ in range(min(SWEEP_STEP, len(names))):
            name = names.pop()
            p = players.get(name)
            if p is not None and p.last_t < cut:
                self.leave(name)
                gone += 1
        for _ in range(min(SWEEP_STEP, len(hinted))):
            key = hinted.pop()
            last = last_hint.get(key)
            if last is not None and last[0] < cut:  # its cooldown ended `idle` seconds ago
                del last_hint[key]
        self.sweep = (names, hinted, started)
        return gone

    # ---- players' claims and grants --------------------------------------------------------------
    def claims_of(self, player: str) -> list[Claimed]:
        """The player's claims over all hunts, oldest first. O(1) lookup; a new list of their claims."""
        had = self.by_player.get(player)
        if had is None:
            return []
        return list(had) if isinstance(had, list) else [had]

    def finds(self, player: str) -> int:
        """How many claims the player has made, over all hunts (hint adaptation). O(1)."""
        had = self.by_player.get(player)
        return 0 if had is None else len(had) if isinstance(had, list) else 1

    def grants_of(self, player: str) -> list[dict[str, Any]]:
        return [g.view() for g in self.pending.get(player, {}).values()]

    def grant_view(self, grant_id: str) -> dict[str, Any]:
        g = self.grants.get(grant_id)
        if g is None:
            raise GrantNotFound(f"no grant {grant_id!r}", field="grant_id")
        return g.view()

    def ack_view(self, grant_id: str) -> dict[str, Any]:
        """The reply to an ack, once applied: the grant, or GrantCancelled when a cancel came first."""
        g = self.grants.get(grant_id)
        if g is not None and g.ack is None and g.undone is not None:
            raise GrantCancelled(f"grant {grant_id!r} was cancelled: {g.undone.reason}", field="grant_id")
        return self.grant_view(grant_id)

    def ack(self, grant_id: str, now: float) -> Outcome:
        """Decide marking a grant delivered. Idempotent: a second ack decides nothing and waits for the
        first. The result is None: the reply is `grant_view(grant_id)` once the record is applied."""
        g = self.grants.get(grant_id)
        if g is None:
            raise GrantNotFound(f"no grant {grant_id!r}", field="grant_id")
        if g.ack is not None:
            return Outcome(None, NOTHING, g.ack.seq)
        if g.undone is not None:
            raise GrantCancelled(f"grant {grant_id!r} was cancelled: {g.undone.reason}", field="grant_id")
        rec = self.ids.stamp(Acked(0, now, 0, grant_id), now)
        return Outcome(None, (rec,), rec.seq)

    def pending_older_than(self, age: float, now: float) -> list[dict[str, Any]]:
        out = []
        for grants in self.pending.values():
            for g in grants.values():
                c = self.claims[g.claim_id]
                if now - c.at >= age:
                    out.append(g.view())
        return out

    # ---- time ---------------------------------------------------------------------------------
    def tick(self, now: float, lead: bool = True) -> list[Due]:
        """Decide everything due by `now`: hunt starts and ends, bounty windows closing, one `Due` per
        timer that decided records (applied by the caller, in order). On the way, what is not journaled
        happens here: old events expire, idle players are forgotten, boards roll, hints escalate (an
        escalation due after a timer that decided records waits for the next tick, once they are applied).

        Without `lead` (a Redis node not holding the scheduler lease) timers that decide records stay
        queued for later. A timer whose records are not applied after all is queued again with `rearm`.
        """
        self.events.expire(now)
        self.forget_idle(now)
        for board, period in self.boards.roll(now):
            self.emit("leaderboard.reset", "", now, {"board": board, "period": period})
        out: list[Due] = []
        # What this call decided and is not applied yet: a later timer must not decide it again.
        started: set[str] = set()
        ended: set[str] = set()
        settled: dict[str, set[int]] = {}
        later = []
        timers = self.timers
        while timers and timers[0][0] <= now:
            item = heapq.heappop(timers)
            due, kind, hunt_id, n = item
            h = self.hunts.get(hunt_id)
            if h is None or h.ended is not None or hunt_id in ended:
                continue
            if kind == TimerKind.END and due != h.ends_at:
                continue  # an operator moved the end (`hunt.extend`): the timer of the new end stands
            if kind == TimerKind.ESCALATE:
                if out:  # its event would take an id before those of the records decided: next tick
                    later.append(item)
                else:
                    self._escalate(h, due)
                continue
            if not lead:
                # Kept for when this node leads, unless it no longer applies (a start or a window
                # another node's records already decided): else every tick would pop it again.
                if not (kind == TimerKind.START and h.started is not None) and not (
                    kind == TimerKind.SETTLE and h.treasures[n - 1].state != "open"
                ):
                    later.append(item)
                continue
            records: list[AnyRecord] = []
            if kind == TimerKind.START and h.started is None and hunt_id not in started:
                records = [self.ids.stamp(HuntStarted(0, due, 0, hunt_id), due)]
                started.add(hunt_id)
            elif kind == TimerKind.SETTLE:
                t = h.treasures[n - 1]
                done = settled.setdefault(hunt_id, set())
                if t.state == "open" and t.window_ends <= now and n not in done:
                    records = [self._settle(t, t.window_ends)]
                    done.add(n)
            elif kind == TimerKind.END:
                records = self._end(h, due, "time", hunt_id in started, frozenset(settled.get(hunt_id, ())))
                ended.add(hunt_id)
            if records:
                out.append(Due(item, records))
        for item in later:
            heapq.heappush(timers, item)
        return out

    def rearm(self, timer: tuple[float, TimerKind, str, int]) -> None:
        """Queue a timer again: the records it decided were not applied (a Redis commit failed)."""
        heapq.heappush(self.timers, timer)

    def _escalate(self, h: Hunt, due: float) -> None:
        step = hints.escalation_step(due, h.starts_at, h.solve_by)
        if step > h.step:
            h.step = step
            self.emit("hint.escalated", h.id, due, {"step": step, "of": hints.DEFAULT_STEPS})
        nxt = hints.next_escalation_at(due, h.starts_at, h.solve_by)
        if nxt is not None and nxt < h.ends_at:
            heapq.heappush(self.timers, (nxt, TimerKind.ESCALATE, h.id, 0))

    # ---- the one way durable state changes ------------------------------------------------------
    def apply(self, records: Iterable[AnyRecord]) -> None:
        """Apply records, in order, and emit their events: the one way durable state changes.

        Used live (right after deciding, or once a Redis commit succeeds), for the records of other
        nodes, and by `replay`. Each record takes the event ids it carries; the allocator moves on past
        its seq and ids. A record whose effect is already there (its claim, settlement, ack, start, end
        or hunt exists) changes nothing, so applying one twice is safe. The events applying causes
        that no record journals take fresh ids once all `records` are applied (see `_emit`).
        """
        held: list[tuple[str, str, float, dict[str, Any]]] = []
        self.holding = held
        try:
            for rec in records:
                self._apply(rec)
        finally:
            self.holding = None
        for typ, hunt, at, data in held:
            self.emit(typ, hunt, at, data)

    def _apply(self, rec: AnyRecord) -> None:
        """Apply one record (`apply`)."""
        ids = self.ids
        if rec.seq > ids.seq:
            ids.seq = rec.seq
        if isinstance(rec, Claimed):
            if rec.claim_id not in self.claims:
                self._apply_claimed(rec)
        elif isinstance(rec, Acked):
            g = self.grants[rec.grant_id]
            if g.ack is not None or g.undone is not None:  # acked already, or cancelled before this ack
                return
            g.ack = rec
            grants = self.pending.get(g.player)
            if grants is not None:
                grants.pop(rec.grant_id, None)
                if not grants:
                    del self.pending[g.player]
        elif isinstance(rec, Settled):
            if self.hunts[rec.hunt].treasures[rec.n - 1].settled is None:
                self._apply_settled(rec)
        elif isinstance(rec, Recurring):
            spec = msgspec.json.decode(rec.spec, type=HuntSpec)
            assert spec.schedule is not None
            self.recurring[spec.id] = (spec, rec, Cron.parse(spec.schedule))
        elif isinstance(rec, HuntCreated):
            if rec.hunt in self.hunts:
                return
            rec, spec = self._dedupe(rec)
            h = Hunt(rec, spec, placement.placement_key(self.secret, spec))
            self.hunts[rec.hunt] = h
            self._live(h.world).add(rec.pos)
            heapq.heappush(self.timers, (rec.starts_at, TimerKind.START, rec.hunt, 0))
            heapq.heappush(self.timers, (rec.ends_at, TimerKind.END, rec.hunt, 0))
            if rec.starts_at > rec.at:
                self._emit(rec.ev, "hunt.scheduled", h.id, rec.at, {"starts_at": rfc3339(rec.starts_at)})
        elif isinstance(rec, HuntStarted):
            h = self.hunts[rec.hunt]
            if h.started is not None:
                return
            h.started = rec
            prox = self.proximity.get(h.world)  # None: an ended hunt of a world retired since (replay)
            radius = h.spec.proximity.radius
            for t in h.treasures:
                if prox is not None and (t.state == "hidden" or t.state == "open"):
                    prox.add(t.id, h.id, t.pos, radius)
            nxt = hints.next_escalation_at(rec.at, h.starts_at, h.solve_by)
            if nxt is not None and nxt < h.ends_at:
                heapq.heappush(self.timers, (nxt, TimerKind.ESCALATE, h.id, 0))
            self._emit(
                rec.ev, "hunt.started", h.id, rec.at, {"ends_at": rfc3339(h.ends_at), "treasures": len(h.treasures)}
            )
        elif isinstance(rec, HuntEnded):
            h = self.hunts[rec.hunt]
            if h.ended is not None:
                return
            h.ended = rec
            ev = rec.ev
            expired = [t for t in h.treasures if t.state == "hidden"]
            for t in expired:
                t.state = "expired"
                self._emit(ev, "treasure.expired", h.id, rec.at, {"treasure": t.id, "tier": t.tier})
                ev += 1
            # `treasures_left` counts the treasures never claimed, here as in the hunt's summary.
            self._emit(ev, "hunt.ended", h.id, rec.at, {"reason": rec.reason, "treasures_left": h.left})
            # Retired after the record's own events: the proximity exits this emits take the ids after them.
            for t in expired:
                self._retire(h, t, rec.at)
        elif isinstance(rec, WorldAdded):
            self.registered[rec.world] = rec
            if rec.world not in self.worlds:
                self.worlds[rec.world] = SiteSet.empty(EMPTY_WORLD_TAGS)
                self.proximity[rec.world] = ProximityIndex()
                self.live_treasures[rec.world] = LiveTreasures()
                # A placement planned against an earlier world of this name plans again.
                self.world_version[rec.world] = self.world_version.get(rec.world, 0) + 1
        elif isinstance(rec, Admin):
            self._apply_admin(rec)
        elif isinstance(rec, WorldRetired):
            self.registered.pop(rec.world, None)
            self.worlds.pop(rec.world, None)
            self.proximity.pop(rec.world, None)
            self.live_treasures.pop(rec.world, None)
            self.world_version[rec.world] = self.world_version.get(rec.world, 0) + 1

    def _apply_claimed(self, rec: Claimed) -> None:
        h = self.hunts[rec.hunt]
        t = h.treasures[rec.n - 1]
        self._add_claim(rec, t)
        quiet = rec.seq <= self.quiet_through
        data = {} if quiet else {"treasure": t.id, "tier": t.tier, "player": rec.player, "claim_id": rec.claim_id}
        self._emit(rec.ev, "treasure.found", h.id, rec.at, data)
        if rec.grant_id is not None:
            self._add_grant(Grant(rec.grant_id, rec.player, rec.claim_id, rec.items))
        if rec.share is not None:
            value = sum(i.value for i in rec.items)
            self.boards.record_find(h.spec.leaderboards, h.spec.tags, rec.player, value, rec.at - h.starts_at, rec.at)
            t.state = "claimed"
            h.left -= 1
            claimed = data if quiet else {**data, "finders": [rec.player]}
            self._emit(rec.ev + 1, "treasure.claimed", h.id, rec.at, claimed)
            self._retire(h, t, rec.at)  # after the claim's events: see `_emit`
        elif t.state == "hidden":
            t.state = "open"
            t.window_ends = rec.at + h.window
            heapq.heappush(self.timers, (t.window_ends, TimerKind.SETTLE, h.id, t.n))

    def _add_claim(self, rec: Claimed, t: Treasure) -> None:
        """What every claim adds: the claim, its request id, the player's claims (two indexes), the treasure's
        finders. The first part of `_apply_claimed`, and all of it for a quiet claim on an open treasure
        (`replay`'s fast path)."""
        cid = rec.claim_id
        self.claims[cid] = rec
        if rec.request_id is not None:
            self.by_request[(rec.hunt, rec.player, rec.request_id)] = cid
        player = rec.player
        key = (rec.hunt, player)
        claimed = self.claimed
        claimed[key] = (*claimed.get(key, ()), rec.n - 1)
        by_player = self.by_player
        had = by_player.get(player)
        if had is None:
            by_player[player] = rec
        elif isinstance(had, list):
            had.append(rec)
        else:
            by_player[player] = [had, rec]
        t.add_claim(rec)
        t.seq = rec.seq

    def _apply_settled(self, rec: Settled) -> None:
        h = self.hunts[rec.hunt]
        t = h.treasures[rec.n - 1]
        t.state = "claimed"
        t.seq = rec.seq
        t.settled = rec
        h.left -= 1
        item = h.spec.prize.item
        for c, amount, gid in zip(t.claims, rec.amounts, rec.grant_ids, strict=True):
            self._add_grant(Grant(gid, c.player, c.claim_id, [Item(item, amount, amount)]))
            self.boards.record_find(h.spec.leaderboards, h.spec.tags, c.player, amount, c.at - h.starts_at, rec.at)
        self._emit(rec.ev, "treasure.claimed", h.id, rec.at, {
            "treasure": t.id, "tier": t.tier, "finders": t.finders, "shares": list(rec.amounts),
        })  # fmt: skip
        self._retire(h, t, rec.at)  # after the claim's event: see `_emit`

    def _retire(self, h: Hunt, t: Treasure, at: float) -> None:
        """A treasure stops being findable: no more hints, temperatures or proximity events."""
        h.retire(t)
        self._live(h.world).remove(t.pos)
        self.tiles_kept -= len(h.tiles)
        h.tiles.clear()
        prox = self.proximity.get(h.world)  # None: a world retired since (replaying an ended hunt)
        for typ, player, key in prox.remove(t.id) if prox is not None else ():
            self.emit(typ, h.id, at, {"player": player, "treasure": key})

    def _forget_tiles(self, h: Hunt) -> None:
        """Drop the temperature tiles of `h` (a treasure became live again)."""
        self.tiles_kept -= len(h.tiles)
        h.tiles.clear()

    def _dedupe(self, rec: HuntCreated) -> tuple[HuntCreated, HuntSpec]:
        """The record and its decoded spec, with each part equal to one of another hunt (a loot list, a
        tag list, a tier, a section of the spec) replaced by that one: hunts made from one template
        differ in little more than their id, area and positions. Every shared part is treated as
        immutable."""
        share = _SHARED.setdefault
        loot = [share(("loot", *items), items) for items in rec.loot]
        tags = [share(("tags", *t), t) for t in rec.tags]
        tiers = [share(("tier", t), t) for t in rec.tiers]
        rec = msgspec.structs.replace(rec, loot=loot, tags=tags, tiers=tiers)
        spec = msgspec.json.decode(rec.spec, type=HuntSpec)
        parts = {}
        for name in _SHARED_SPEC_PARTS:
            part = getattr(spec, name)
            parts[name] = share(("spec", name, msgspec.json.encode(part)), part)
        return rec, msgspec.structs.replace(spec, id=rec.hunt, **parts)

    def _add_grant(self, g: Grant) -> None:
        self.grants[g.grant_id] = g
        self.pending.setdefault(g.player, {})[g.grant_id] = g

    # ---- operator actions -----------------------------------------------------------------------
    def decide_admin(self, req: AdminRequest, now: float) -> Outcome:
        """Decide an operator's action (`cairn/core/admin.py`); `Outcome.result` is its record."""
        rec, seq = self.admin(req, now)
        return Outcome(rec, [rec], seq)

    # ---- replay and snapshots -----------------------------------------------------------------
    def replay(self, records: Iterable[AnyRecord], events_after: int = 0) -> int:
        """Rebuild state from records (journal or snapshot). Returns how many were applied.

        Events are rebuilt only for records with seq > `events_after` (the tail a client may
        still resume from); older ones only advance the event id counter.
        """
        self.quiet_through = events_after
        count = 0
        apply, add_claim, emit, ids = self._apply, self._add_claim, self._emit, self.ids
        hunts, claims = self.hunts, self.claims
        held: list[tuple[str, str, float, dict[str, Any]]] = []
        self.holding = held
        self.boards.begin_bulk()
        try:
            for rec in records:
                count += 1
                # Claims are nearly all of a long journal. One that only adds a finder to an open
                # treasure, old enough to rebuild no event, takes the short way: what `_apply_claimed`
                # does for it (`_add_claim`, and its event's id, not built), without the dispatch.
                if type(rec) is Claimed and rec.seq <= events_after and rec.share is None and rec.grant_id is None:
                    t = hunts[rec.hunt].treasures[rec.n - 1]
                    if t.state == "open" and rec.claim_id not in claims:
                        if rec.seq > ids.seq:
                            ids.seq = rec.seq
                        add_claim(rec, t)
                        emit(rec.ev, "treasure.found", rec.hunt, rec.at, _QUIET)
                        continue
                apply(rec)
        finally:
            self.holding = None
            self.boards.end_bulk()
        for typ, hunt, at, data in held:
            self.emit(typ, hunt, at, data)
        if events_after:
            self.events.floor = max(self.events.floor, self._first_rebuilt_id() - 1)
        self.quiet_through = 0
        self.new_events.clear()
        return count

    def _first_rebuilt_id(self) -> int:
        ring = self.events.all
        return ring[0].id if ring else self.last_event + 1

    def retained(self) -> list[AnyRecord]:
        """Every record the live state depends on, in seq order: the body of a snapshot."""
        out: list[AnyRecord] = []
        for h in self.hunts.values():
            out.append(h.created)
            if h.started is not None:
                out.append(h.started)
            if h.ended is not None:
                out.append(h.ended)
            for t in h.treasures:
                out.extend(t.claims)
                if t.settled is not None:
                    out.append(t.settled)
        out.extend(r for _, r, _ in self.recurring.values())
        out.extend(self.registered.values())
        out.extend(g.ack for g in self.grants.values() if g.ack is not None)
        out.extend(self.audit)
        # A claim voided with `rehide` left its treasure's claims: kept here, for the void that follows it.
        for r in self.voided.values():
            c = self.claims[r.target]
            if c not in self.hunts[c.hunt].treasures[c.n - 1].claims:
                out.append(c)
        out.sort(key=_seq)
        return out


#: The data of an event replay does not build (`Engine.replay`).
_QUIET: dict[str, Any] = {}
#: Equal parts of different hunts, by kind and value (`Engine._dedupe`). One table for the process, not
#: one per engine: the values are immutable, so equal ones are interchangeable wherever they are used.
_SHARED: dict[Any, Any] = {}
#: The sections of a HuntSpec shared between hunts that have equal ones (`Engine._dedupe`).
_SHARED_SPEC_PARTS = (
    "world", "duration", "prize", "spawn", "dig", "hints", "proximity", "loot", "tiers", "leaderboards", "tags",
)  # fmt: skip


def _seq(rec: Record) -> int:
    return rec.seq
