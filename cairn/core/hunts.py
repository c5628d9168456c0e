"""Hunts and their treasures: placing a hunt (`compute_plan`), and the state of one placed hunt.

A `Hunt` is built by `Engine.apply` from its `HuntCreated` record and changed only there.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any, NamedTuple

from cairn.core import hints, placement, rng
from cairn.core import loot as lootmod
from cairn.core.geometry import Pos
from cairn.core.loot import Item, LootTable
from cairn.core.records import Admin, Claimed, HuntCreated, HuntEnded, HuntStarted, Settled
from cairn.core.sites import SiteSet
from cairn.core.spec import HuntSpec, parse_duration, rfc3339

NEAR = 64  # treasures this close to a dig are listed by one lookup (`Hunt.around`)



class TimerKind(IntEnum):
    """What a timer in `Engine.timers` does when it falls due. Equal times pop in this order."""

    START = 0  # the hunt starts
    SETTLE = 1  # a treasure's bounty window closes
    END = 2  # the hunt's time is up
    ESCALATE = 3  # the hint escalation steps up

class Plan(NamedTuple):
    """A placed hunt, ready to apply; computed off the event loop by `compute_plan`."""

    spec: HuntSpec
    world: str
    pos: list[Pos]
    tiers: list[str]
    loot: list[list[Item]]
    tags: list[list[str]]
    avoid: list[Pos]  # the live treasures that ruled out a candidate site (placing again with them gives `pos`)
    world_version: int
    mark: int  # the world's `LiveTreasures.clock` when the input was gathered


class PlanInput(NamedTuple):
    spec: HuntSpec
    sites: SiteSet
    avoid: list[Pos]  # the live treasures near the area (`placement.avoid_box`)
    world_version: int
    key: bytes
    table: LootTable
    mark: int = 0  # the world's `LiveTreasures.clock` when `avoid` was gathered


class Treasure:
    """One treasure of a hunt. Kept small: a big server holds about a hundred thousand of them, most never
    dug near, so what can be derived (`id`, `finders`, `hint_key`) is derived when asked for."""

    __slots__ = (
        "claims", "hunt", "items", "live", "n", "pos", "seq", "settled", "state", "tags", "tier", "window_ends",
    )  # fmt: skip

    def __init__(self, hunt: Hunt, n: int, pos: Pos, tier: str, items: list[Item], tags: list[str]) -> None:
        self.hunt = hunt
        self.n = n
        self.pos = pos
        self.tier = tier
        self.items = items  # shared with every treasure of the same loot: never mutated
        self.tags = tags  # shared likewise
        self.state = "hidden"
        self.live = True  # hidden or open: findable, hinted, temperature counts it
        self.claims: Sequence[Claimed] = ()  # a list from the first claim on
        self.window_ends = 0.0
        self.seq = 0  # last record that changed this treasure
        self.settled: Settled | None = None

    @property
    def id(self) -> str:
        return f"{self.hunt.id}#{self.n}"

    @property
    def finders(self) -> list[str]:
        """The players who claimed it, in claim order."""
        return [c.player for c in self.claims]

    @property
    def hint_key(self) -> bytes:
        """The key of its region boxes and riddles: the same for every player."""
        return rng.derive(self.hunt.key, "treasure", self.n)

    def add_claim(self, rec: Claimed) -> None:
        claims = self.claims
        if isinstance(claims, list):
            claims.append(rec)
        else:
            self.claims = [rec]

    def view(self, reveal: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "tier": self.tier,
            "state": self.state,
            "loot": lootmod.item_wire(self.items),
            "finders": self.finders,
        }
        if reveal:
            out["pos"] = list(self.pos)
            out["tags"] = list(self.tags)
        return out


class Hunt:
    __slots__ = (
        "_field", "archived", "around", "around_shift", "avoid", "cooldown", "created_at", "created_ends",
        "created_ev", "created_seq", "ended", "ends_at", "id", "key", "left", "name", "paused", "reach", "solve_by",
        "spec", "spec_json", "started", "starts_at", "step", "tiles", "tolerance", "treasures", "window", "world",
    )  # fmt: skip

    def __init__(self, rec: HuntCreated, spec: HuntSpec, key: bytes) -> None:
        self.id = rec.hunt
        # What `created` rebuilds the record from, besides the treasures (not kept twice).
        self.created_seq, self.created_at, self.created_ev = rec.seq, rec.at, rec.ev
        self.spec_json = rec.spec  # the spec's canonical JSON, as journaled
        self.avoid: Sequence[Pos] = tuple(rec.avoid)
        self.spec = spec
        self.key = key
        self.world = spec.world
        self.starts_at = rec.starts_at
        self.ends_at = rec.ends_at  # moved by an operator's `hunt.extend`
        self.created_ends = rec.ends_at  # as created (`created`)
        # Set by operator actions (`cairn/core/admin.py`): the action that paused or archived it, its new name.
        self.paused: Admin | None = None
        self.archived: Admin | None = None
        self.name = spec.name or rec.hunt
        solve = spec.hints.solve_by
        self.solve_by = rec.starts_at + parse_duration(solve, "hints.solve_by") if solve else rec.ends_at
        self.window = parse_duration(spec.prize.window, "prize.window")
        self.cooldown = parse_duration(spec.hints.cooldown, "hints.cooldown")
        self.step = 0  # the hint escalation step last announced
        self.started: HuntStarted | None = None
        self.ended: HuntEnded | None = None
        self.treasures = [
            Treasure(self, i + 1, p, t, items, tags)
            for i, (p, t, items, tags) in enumerate(zip(rec.pos, rec.tiers, rec.loot, rec.tags, strict=True))
        ]
        self.left = len(self.treasures)
        self.reach = float(spec.dig.reach)
        self.tolerance = spec.dig.tolerance
        # The dig and hint indexes are made on first use (`make_around`, `field`): of many live
        # hunts, most are not being dug at any one time, and these are most of a hunt's memory.
        self.around: dict[int, tuple[Treasure, ...]] | None = None
        self.around_shift = 6
        self._field: hints.TreasureField | None = None
        # Temperature tiles (`TreasureField.band_tile`), made on the first dig in each; a cache
        # that answers a miss by a player with no claim here in one lookup. Cleared on retire.
        self.tiles: dict[tuple[int, int], bytes] = {}

    @property
    def created(self) -> HuntCreated:
        """The record that created the hunt (equal to the one journaled), for snapshots and `hunt verify`."""
        ts = self.treasures
        return HuntCreated(
            self.created_seq, self.created_at, self.created_ev, self.id, self.spec_json, self.starts_at,
            self.created_ends, [t.pos for t in ts], [t.tier for t in ts], [t.items for t in ts], [t.tags for t in ts],
            list(self.avoid),
        )  # fmt: skip

    def make_around(self) -> dict[int, tuple[Treasure, ...]]:
        """Make `around`: for each square cell of `1 << around_shift` columns (key `(cx << 32) + cz`), every
        treasure within NEAR columns of some column of the cell on both axes, so that one lookup finds
        every treasure within NEAR of a point (all dig candidates, and the nearest when it is that close).

        Cells are 64 columns wide when treasures are dense (each is listed in 9 cells, and a lookup
        returns few), else 128 (each is listed in 4). Cells listing the same treasures share one
        tuple. O(n).
        """
        lo, hi = self.spec.area.min, self.spec.area.max
        columns = (hi[0] - lo[0] + 1) * (hi[2] - lo[2] + 1)
        # With 128-column cells, one lookup returns about this many treasures times 1/2: keep it low.
        shift = self.around_shift = 7 if len(self.treasures) * (128 + 2 * NEAR) ** 2 <= 2 * columns else 6
        cells: dict[int, list[Treasure]] = {}
        for t in self.treasures:
            x, z = t.pos[0], t.pos[2]
            for cx in range((x - NEAR) >> shift, ((x + NEAR) >> shift) + 1):
                for cz in range((z - NEAR) >> shift, ((z + NEAR) >> shift) + 1):
                    cells.setdefault((cx << 32) + cz, []).append(t)
        shared: dict[tuple[int, ...], tuple[Treasure, ...]] = {}
        around = {k: shared.setdefault(tuple(t.n for t in ts), tuple(ts)) for k, ts in cells.items()}
        self.around = around
        return around

    @property
    def field(self) -> hints.TreasureField:
        """The live treasures as numpy arrays, for nearest-treasure queries and temperature tiles."""
        f = self._field
        if f is None:
            f = self._field = hints.TreasureField(
                (t.pos for t in self.treasures), retired=[t.n - 1 for t in self.treasures if not t.live]
            )
        return f

    def unretire(self, t: Treasure) -> None:
        """`t` is findable again (an operator hid it again): the field is rebuilt on its next use."""
        t.live = True
        self._field = None

    def retire(self, t: Treasure) -> None:
        """`t` stops being findable (claimed or expired)."""
        t.live = False
        if self._field is not None:
            self._field.retire(t.n - 1)

    def state_at(self, now: float) -> str:
        if self.ended is not None or now >= self.ends_at:
            return "ended"
        return "active" if now >= self.starts_at else "scheduled"

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state_at(now),
            "world": self.world,
            "starts_at": rfc3339(self.starts_at),
            "ends_at": rfc3339(self.ended.at if self.ended else self.ends_at),
            "treasures_total": len(self.treasures),
            "treasures_left": self.left,
        }


def compute_plan(inp: PlanInput) -> Plan:
    """Place a hunt and roll its tiers and loot. Pure and thread-safe: run it off the event loop."""
    spec, sites, key = inp.spec, inp.sites, inp.key
    placed = placement.place(key, spec, sites, inp.avoid)
    chosen = placed.sites
    pos = [sites.pos(i) for i in chosen]
    tiers = [lootmod.roll_tier(key, n + 1, spec.tiers) for n in range(len(pos))]
    items = [lootmod.roll_items(key, n + 1, tier, inp.table) for n, tier in enumerate(tiers)]
    tags = [list(sites.tags_of(i)) for i in chosen]
    avoid = [inp.avoid[i] for i in placed.blockers]
    return Plan(spec, spec.world, pos, tiers, items, tags, avoid, inp.world_version, inp.mark)


class StalePlan(Exception):
    """A hunt was placed near this one's area, or the world's sites changed, since the plan was computed; plan again."""
