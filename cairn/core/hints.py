"""Hints: temperature, bearing, a shrinking region box and riddles, all derived server-side.

Everything here is a pure function of its arguments; time and randomness come in as
arguments (`now`, `progress`, `key`), so replay and `hunt verify` see the same hints.

The region box is the only hint that narrows down over time. Its design is chosen so that
players cannot pool hints to beat it:

- Boxes are cells of one grid per treasure. The grid's origin comes from `key`, and its
  cell side halves at each level, from `start_size` down to `end_size`. A box at one level
  therefore lies inside every box of a coarser level (the boxes are nested), and the
  treasure sits at a pseudo-random, never fixed, offset inside each box.
- Because the boxes are nested, the intersection of any set of boxes (several steps,
  several players with different adaptations) is just the finest of them: asking again,
  or comparing notes, reveals nothing beyond the sharpest box anyone was given.
- The riddle talks about the box, not the treasure (see `riddle`), so it adds no
  horizontal position information beyond the box of the same step.

`key` must be the same for every player of a treasure (derive it from the server secret,
the hunt id and the treasure id), or players with different keys could intersect boxes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Final, TypedDict

import msgspec
import numpy as np
import numpy.typing as npt

from cairn.core.errors import ValidationError
from cairn.core.geometry import MAX_XZ, Pos, bearing, hdist

# --- temperature and vertical words ---------------------------------------------------

TEMPERATURE_BANDS: Final = (
    (8.0, "burning"),
    (32.0, "hot"),
    (96.0, "warm"),
    (256.0, "cool"),
)
COLD: Final = "cold"
#: Every band, hottest first; a band's index rises with distance.
TEMPERATURES: Final = (*(name for _, name in TEMPERATURE_BANDS), COLD)

#: Side of a temperature tile (`TreasureField.band_tile`), a power of two.
TILE_SHIFT: Final = 6
TILE: Final = 1 << TILE_SHIFT
#: Set in a tile byte when a treasure is within dig tolerance of the column.
NEAR_FLAG: Final = 8
_BAND_LIMITS2: Final = np.array([int(limit) ** 2 for limit, _ in TEMPERATURE_BANDS], dtype=np.int64)

#: `|dy|` at most this many blocks reads as "level".
LEVEL_SLACK: Final = 2


def temperature_band(hdist: float) -> str:
    """The temperature word for a horizontal distance (SPEC bands, upper bounds inclusive).

    >>> temperature_band(8), temperature_band(8.5), temperature_band(300)
    ('burning', 'hot', 'cold')
    """
    for limit, name in TEMPERATURE_BANDS:
        if hdist <= limit:
            return name
    return COLD


def bands_by_d2(limit2: int) -> bytes:
    """A table of the bands of squared horizontal distances: byte `d2` (0 to `limit2`) is the index in
    `TEMPERATURES` of the band of an integer squared distance `d2`, the same as `temperature_band` of
    its square root. A hot path decides a band with one index: no square root, no comparisons."""
    return np.searchsorted(_BAND_LIMITS2, np.arange(limit2 + 1, dtype=np.int64), side="left").astype(np.uint8).tobytes()


def vertical_word(dy: int) -> str:
    """Where the treasure is relative to the player, with `dy = treasure.y - player.y`.

    >>> vertical_word(5), vertical_word(-2), vertical_word(-3)
    ('above', 'level', 'below')
    """
    if dy > LEVEL_SLACK:
        return "above"
    if dy < -LEVEL_SLACK:
        return "below"
    return "level"


# --- nearest treasure -------------------------------------------------------------------



class TreasureField:
    """The treasures of one hunt as numpy arrays, for "nearest treasure" queries.

    Index `i` is treasure `<hunt>#<i + 1>`. A retired (claimed or expired) treasure keeps
    its index and is never returned again.

    Complexity: `nearest` is O(n) vectorised (about 5 µs at n = 1,000), `retire` O(1).

    >>> f = TreasureField([(0, 64, 0), (100, 64, 0), (10, 70, 10)])
    >>> f.nearest((90, 64, 0)), f.nearest((90, 64, 0), exclude={1})
    (1, 2)
    >>> f.retire(2); f.nearest((0, 64, 0), exclude={0}), f.live_count
    (1, 2)
    """

    __slots__ = ("_dead", "_live", "_n2", "_n_dead", "_pts", "_slot", "_x2", "_z2")

    def __init__(self, positions: Iterable[Pos], retired: Iterable[int] = ()) -> None:
        self._pts = np.array(list(positions), dtype=np.int64).reshape(-1, 3)
        self._dead = np.zeros(len(self._pts), dtype=bool)
        self._dead[list(retired)] = True
        self._n_dead = int(self._dead.sum())
        self._compact()

    def _compact(self) -> None:
        # Only live treasures are kept in the query arrays, so a query never masks the dead.
        # |t - p|^2 = |t|^2 - 2 t.p + |p|^2, and |p|^2 is the same for every t: ranking by
        # |t|^2 - 2 t.p needs three vectorised operations. float64 is exact here: every term
        # stays below 2e15 < 2**53, and float64 arithmetic vectorises better than int64.
        self._live = np.flatnonzero(~self._dead)
        self._slot = {int(i): k for k, i in enumerate(self._live)}  # treasure index -> row
        pts = self._pts[self._live]
        x, z = pts[:, 0].astype(np.float64), pts[:, 2].astype(np.float64)
        self._n2 = x * x + z * z
        self._x2 = 2.0 * x
        self._z2 = 2.0 * z

    def __len__(self) -> int:
        return len(self._dead)

    @property
    def live_count(self) -> int:
        """How many treasures are not retired."""
        return len(self._dead) - self._n_dead

    @property
    def xz(self) -> npt.NDArray[np.int64]:
        """The (x, z) columns, shape (n, 2)."""
        return self._pts[:, [0, 2]]

    @property
    def y(self) -> npt.NDArray[np.int64]:
        """The y column, shape (n,)."""
        return self._pts[:, 1]

    def pos(self, i: int) -> Pos:
        """The position of treasure index `i`."""
        x, y, z = self._pts[i].tolist()
        return (x, y, z)

    def is_live(self, i: int) -> bool:
        return not self._dead[i]

    def retire(self, i: int) -> None:
        """Stop returning treasure `i` from `nearest` (claimed or expired). Idempotent; O(n)."""
        if not self._dead[i]:
            self._dead[i] = True
            self._n_dead += 1
            self._compact()

    def band_tile(self, tx: int, tz: int, tolerance: int) -> bytes:
        """The temperature of every column of one TILE×TILE tile, for a player who has claimed nothing.

        Byte `(x - x0) * TILE + (z - z0)` is the index in `TEMPERATURES` of the band of the
        horizontal distance from column (x, z) to the nearest live treasure, plus `NEAR_FLAG`
        when some treasure, live or not, lies within `tolerance` of the column on both
        horizontal axes (a dig there must look closer). Integer arithmetic, so the bands match
        `temperature_band` exactly; only treasures that can be nearest somewhere in the tile
        are compared.
        """
        x0, z0 = tx * TILE, tz * TILE
        x1, z1 = x0 + TILE - 1, z0 + TILE - 1
        xs, zs = self._pts[:, 0], self._pts[:, 2]
        cold = len(TEMPERATURE_BANDS)
        bands = np.full((TILE, TILE), cold, dtype=np.uint8)
        live = ~self._dead
        if live.any():
            # Squared distance from each treasure to the tile (nearest point) and to its farthest corner.
            ndx = np.maximum(np.maximum(x0 - xs, xs - x1), 0)
            ndz = np.maximum(np.maximum(z0 - zs, zs - z1), 0)
            fdx = np.maximum(np.abs(xs - x0), np.abs(xs - x1))
            fdz = np.maximum(np.abs(zs - z0), np.abs(zs - z1))
            near2, far2 = ndx * ndx + ndz * ndz, fdx * fdx + fdz * fdz
            bound = min(int(far2[live].min()), _BAND_LIMITS2[-1])
            cand = np.flatnonzero(live & (near2 <= bound))
            if len(cand):
                gx = np.arange(x0, x0 + TILE, dtype=np.int64)[:, None, None] - xs[cand]
                gz = np.arange(z0, z0 + TILE, dtype=np.int64)[None, :, None] - zs[cand]
                d2 = (gx * gx + gz * gz).min(axis=2)
                bands = np.searchsorted(_BAND_LIMITS2, d2, side="left").astype(np.uint8)
        t = tolerance
        close = np.flatnonzero((xs >= x0 - t) & (xs <= x1 + t) & (zs >= z0 - t) & (zs <= z1 + t))
        for i in close.tolist():
            x, z = int(xs[i]), int(zs[i])
            rows = slice(max(x - t, x0) - x0, min(x + t, x1) - x0 + 1)
            cols = slice(max(z - t, z0) - z0, min(z + t, z1) - z0 + 1)
            bands[rows, cols] |= NEAR_FLAG
        return bands.tobytes()

    def nearest(self, pos: Pos, exclude: npt.NDArray[np.bool_] | Collection[int] | None = None) -> int | None:
        """The index of the live treasure horizontally nearest to `pos`, or None if none is left.

        `exclude` is a boolean mask of length n or a collection of indices (for example the
        treasures this player has already claimed). Ties go to the lowest index.
        """
        n = len(self._dead)
        live = self._live
        if len(live) == 0:
            return None
        d2 = self._x2 * float(pos[0])
        d2 += self._z2 * float(pos[2])
        np.subtract(self._n2, d2, out=d2)  # squared distance minus |pos|^2: same order, same ties
        if exclude is not None and len(exclude):
            if isinstance(exclude, np.ndarray) and exclude.dtype == np.bool_:
                if exclude.shape != (n,):
                    raise ValueError(f"exclude mask has shape {exclude.shape}, expected ({n},)")
                d2[exclude[live]] = np.inf
            else:
                slot = self._slot
                rows = [k for k in (slot.get(int(i)) for i in exclude) if k is not None]
                if rows:
                    d2[rows] = np.inf
        best = int(d2.argmin())
        if d2[best] == np.inf:
            return None
        return int(live[best])


# --- escalation over time ------------------------------------------------------------------

#: Escalation steps between `starts_at` (step 0) and `solve_by` (the last step).
DEFAULT_STEPS: Final = 5
#: Region box side at step 0, in columns.
DEFAULT_START_SIZE: Final = 512
#: Region box side at `solve_by`, in columns (the SPEC's solve guarantee is 16).
DEFAULT_END_SIZE: Final = 16

Time = float | datetime


def _seconds(t: Time) -> float:
    """UNIX seconds of `t`; a naive datetime is read as UTC."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t.timestamp()
    return float(t)


def hint_progress(now: Time, starts_at: Time, solve_by: Time) -> float:
    """How far the hunt is from `starts_at` (0.0) to `solve_by` (1.0), clamped to [0, 1].

    >>> hint_progress(150.0, 100.0, 200.0), hint_progress(500.0, 100.0, 200.0)
    (0.5, 1.0)
    """
    s, e, t = _seconds(starts_at), _seconds(solve_by), _seconds(now)
    if t >= e:
        return 1.0
    if t <= s:
        return 0.0
    return (t - s) / (e - s)


def _check_steps(steps: int) -> None:
    if steps < 1:
        raise ValidationError(f"hint escalation needs at least 1 step, got {steps}", field="hints")


def step_for_progress(progress: float, steps: int = DEFAULT_STEPS) -> int:
    """The escalation step for a progress: `floor(progress * steps)`, and `steps` only at 1.0.

    >>> [step_for_progress(p) for p in (0.0, 0.19, 0.2, 0.99, 1.0, 7.0)]
    [0, 0, 1, 4, 5, 5]
    """
    _check_steps(steps)
    if progress >= 1.0:
        return steps
    if progress <= 0.0:
        return 0
    return min(steps - 1, math.floor(progress * steps))


def escalation_step(now: Time, starts_at: Time, solve_by: Time, steps: int = DEFAULT_STEPS) -> int:
    """The hint escalation step at `now`: 0 at `starts_at`, `steps` from `solve_by` on.

    Steps are discrete so that hints change a few times per hunt, not every second.

    >>> escalation_step(0.0, 0.0, 100.0), escalation_step(45.0, 0.0, 100.0), escalation_step(100.0, 0.0, 100.0)
    (0, 2, 5)
    """
    return step_for_progress(hint_progress(now, starts_at, solve_by), steps)


def next_escalation_at(now: Time, starts_at: Time, solve_by: Time, steps: int = DEFAULT_STEPS) -> float | None:
    """UNIX seconds of the next step change after `now` (for `hint.escalated`), or None after the last.

    >>> next_escalation_at(0.0, 0.0, 100.0), next_escalation_at(100.0, 0.0, 100.0)
    (20.0, None)
    """
    step = escalation_step(now, starts_at, solve_by, steps)
    if step >= steps:
        return None
    s, e = _seconds(starts_at), _seconds(solve_by)
    t = max(s + (e - s) * (step + 1) / steps, _seconds(now))
    # Float rounding may land a hair off; nudge to the first instant of the next step.
    while escalation_step(t, s, e, steps) <= step:
        t = math.nextafter(t, math.inf)
    while escalation_step(earlier := math.nextafter(t, -math.inf), s, e, steps) > step:
        t = earlier
    return t


class AdaptPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How hints adapt to a player's record (`hints.adapt` in a hunt spec).

    The effective step is `step + bonus - penalty`, where a new player (at most
    `new_player_max_finds` finds) gets `new_player_bonus` steps sharper and a frequent
    finder (at least `frequent_from` finds) gets one step vaguer, plus one more per
    `frequent_every` further finds, at most `max_penalty`. Before `solve_by` the result is
    clamped to `[0, steps - 1]`, so the final, sharpest box is kept for the solve guarantee;
    from `solve_by` on everyone gets the last step, whatever their record.
    """

    #: Set to false to give everyone the plain time-based step. Default: true.
    enabled: bool = True
    #: A player with at most this many finds counts as new. Default: 0.
    new_player_max_finds: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: Steps sharper for a new player. Default: 1.
    new_player_bonus: Annotated[int, msgspec.Meta(ge=0)] = 1
    #: Finds from which a player counts as a frequent finder. Default: 3.
    frequent_from: Annotated[int, msgspec.Meta(ge=1)] = 3
    #: One more step vaguer per this many finds beyond `frequent_from`. Default: 3.
    frequent_every: Annotated[int, msgspec.Meta(ge=1)] = 3
    #: A frequent finder is never more than this many steps vaguer. Default: 2.
    max_penalty: Annotated[int, msgspec.Meta(ge=0)] = 2


DEFAULT_ADAPT: Final = AdaptPolicy()


def adapt(step: int, finds_by_player: int, policy: AdaptPolicy = DEFAULT_ADAPT, steps: int = DEFAULT_STEPS) -> int:
    """The effective escalation step for a player with `finds_by_player` finds.

    >>> adapt(2, 0), adapt(2, 1), adapt(2, 3), adapt(2, 9), adapt(4, 0), adapt(5, 99)
    (3, 2, 1, 0, 4, 5)
    """
    _check_steps(steps)
    if step >= steps:
        return steps  # the solve guarantee: from solve_by on, nobody gets a vaguer box
    step = max(0, step)
    if not policy.enabled:
        return step
    delta = 0
    if finds_by_player <= policy.new_player_max_finds:
        delta += policy.new_player_bonus
    if finds_by_player >= policy.frequent_from:
        extra = (finds_by_player - policy.frequent_from) // policy.frequent_every
        delta -= min(policy.max_penalty, 1 + extra)
    return min(steps - 1, max(0, step + delta))


# --- region box -----------------------------------------------------------------------------

Region = tuple[tuple[int, int], tuple[int, int]]


def region_levels(start_size: int = DEFAULT_START_SIZE, end_size: int = DEFAULT_END_SIZE) -> int:
    """How many times the box halves: the largest L with `end_size * 2**L <= start_size`.

    The box side at level j is `end_size * 2**(L - j)`; so `start_size` is rounded down to
    `end_size` times a power of two (512 and 16 give sides 512, 256, 128, 64, 32, 16).
    """
    if end_size < 1 or start_size < end_size:
        raise ValidationError(
            f"region sizes need 1 <= end_size <= start_size, got start_size={start_size}, end_size={end_size}",
            field="hints",
        )
    return (start_size // end_size).bit_length() - 1


def _grid_origin(key: bytes, side0: int) -> tuple[int, int]:
    d = hashlib.blake2b(key, digest_size=16, person=b"cairn.region").digest()
    return int.from_bytes(d[:8], "little") % side0, int.from_bytes(d[8:], "little") % side0


def region_at_step(
    treasure: Pos,
    step: int,
    key: bytes,
    steps: int = DEFAULT_STEPS,
    start_size: int = DEFAULT_START_SIZE,
    end_size: int = DEFAULT_END_SIZE,
) -> Region:
    """The region box `((min_x, min_z), (max_x, max_z))`, inclusive, for escalation step `step`.

    From step `steps` on it is `end_size` wide; boxes of later steps nest inside earlier
    ones. Boxes are clipped to the world limits, so they may be narrower at the edge.
    """
    _check_steps(steps)
    levels = region_levels(start_size, end_size)
    level = (min(max(step, 0), steps) * levels) // steps
    side = end_size << (levels - level)
    ox, oz = _grid_origin(key, end_size << levels)
    x, z = treasure[0], treasure[2]
    x0 = x - (x - ox) % side
    z0 = z - (z - oz) % side
    x1, z1 = x0 + side - 1, z0 + side - 1
    if x0 < -MAX_XZ or z0 < -MAX_XZ or x1 > MAX_XZ or z1 > MAX_XZ:
        x0, z0 = max(x0, -MAX_XZ), max(z0, -MAX_XZ)
        x1, z1 = min(x1, MAX_XZ), min(z1, MAX_XZ)
    return (x0, z0), (x1, z1)


def region_box(
    treasure: Pos,
    progress: float,
    key: bytes,
    start_size: int = DEFAULT_START_SIZE,
    end_size: int = DEFAULT_END_SIZE,
    steps: int = DEFAULT_STEPS,
) -> Region:
    """The region box at a progress in [0, 1] (see `hint_progress`): `start_size` wide at 0,
    `end_size` wide at 1, halving in discrete steps, always holding the treasure column.

    Boxes are nested: each one lies inside the boxes of all earlier steps.

    >>> (lo, hi) = region_box((100, 64, -40), 1.0, b"k"); hi[0] - lo[0] + 1, lo[0] <= 100 <= hi[0]
    (16, True)
    """
    return region_at_step(treasure, step_for_progress(progress, steps), key, steps, start_size, end_size)


# --- riddles ----------------------------------------------------------------------------------


class Landmark(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A named place players know (`[[landmarks]]` in the config)."""

    name: str
    world: str
    pos: Pos


#: Tags that say where a site is, not which biome it is in.
SETTING_TAGS: Final = ("underwater", "cave", "surface")

_SETTING_RANK: Final = {t: i for i, t in enumerate(SETTING_TAGS)}
_SETTING_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    "surface": ("under the open sky", "out in the open", "where the sun can find it"),
    "cave": ("down in a cave", "deep in the rock", "where no daylight reaches"),
    "underwater": ("beneath the water", "under the waves", "where the fish keep watch"),
    "": ("well hidden", "tucked away", "out of plain sight"),
}

# (upper bound of y, exclusive; phrase). Coarse on purpose: one band spans tens of blocks.
_HEIGHT_BANDS: Final = (
    (0, "at the roots of the world"),
    (50, "low down"),
    (80, "near the level of the sea"),
    (140, "high up"),
)
_HEIGHT_TOP: Final = "among the peaks"

_POINT_WORDS: Final = {
    "N": "north",
    "NE": "north-east",
    "E": "east",
    "SE": "south-east",
    "S": "south",
    "SW": "south-west",
    "W": "west",
    "NW": "north-west",
}
_QUARTER_WORDS: Final = ("north", "east", "south", "west")

# Templates per situation. Fields: where (setting), biome ("in the forest"), height, near
# (the landmark clause). Every template ends with a full stop and starts lower-case; the
# first letter is capitalised afterwards.
_TEMPLATES: Final[dict[tuple[bool, bool], tuple[str, ...]]] = {
    (True, True): (
        "{where} {biome}, {near}.",
        "seek it {biome}, {near}, {where}.",
        "{near}, {biome}, it waits {height}.",
        "it lies {height} {biome}, {where}, {near}.",
    ),
    (True, False): (
        "{where} {biome}, it waits {height}.",
        "seek it {biome}, {where}.",
        "it lies {height} {biome}, {where}.",
    ),
    (False, True): (
        "{where}, {near}.",
        "seek it {height}, {near}.",
        "{near}, it waits {where}.",
        "it lies {height}, {where}, {near}.",
    ),
    (False, False): (
        "{where}, it waits {height}.",
        "seek it {height}, {where}.",
        "it lies {where}, {height}.",
    ),
}


def _height_phrase(y: int) -> str:
    for top, phrase in _HEIGHT_BANDS:
        if y < top:
            return phrase
    return _HEIGHT_TOP


def _pick(options: Sequence[str], h: int, salt: int) -> str:
    return options[(h >> (8 * salt)) % len(options)]


def _landmark_clause(box: Region, landmarks: Sequence[Landmark], sharp: bool, h: int) -> str:
    (x0, z0), (x1, z1) = box
    cx, cz = (x0 + x1) / 2.0, (z0 + z1) / 2.0
    half = max(x1 - x0, z1 - z0) / 2.0
    best: Landmark | None = None
    best_d2 = math.inf
    for lm in landmarks:
        lx, _, lz = lm.pos
        d2 = (lx - cx) * (lx - cx) + (lz - cz) * (lz - cz)
        if d2 < best_d2 or (d2 == best_d2 and best is not None and lm.name < best.name):
            best, best_d2 = lm, d2
    if best is None:
        return ""
    best_d = math.sqrt(best_d2)
    name = best.name
    if best_d <= max(half, 24.0):
        return _pick((f"close to {name}", f"not far from {name}", f"around {name}"), h, 5)
    dx, dz = cx - best.pos[0], cz - best.pos[2]
    if sharp:
        word = _POINT_WORDS[bearing((0, 0, 0), (round(dx), 0, round(dz)))]
    else:
        angle = math.degrees(math.atan2(dx, -dz)) % 360.0
        word = _QUARTER_WORDS[int((angle + 45.0) // 90.0) % 4]
    if best_d <= 128.0:
        return f"a short walk {word} of {name}"
    if best_d <= 512.0:
        return f"{word} of {name}"
    if best_d <= 2048.0:
        return f"a long way {word} of {name}"
    return f"far to the {word} of {name}"


#: Biome tags that are adjectives read as a place ("in the snowfields", not "in the snowy").
_BIOME_NOUNS: Final = {"snowy": "snowfields", "frozen": "frozen lands", "sandy": "sands", "dark_forest": "dark forest"}


def _biome_noun(tag: str) -> str:
    return _BIOME_NOUNS.get(tag, tag).replace("_", " ").replace("-", " ")


def riddle(
    tags: Iterable[str],
    pos: Pos,
    landmarks: Sequence[Landmark],
    key: bytes,
    step: int,
    steps: int = DEFAULT_STEPS,
    start_size: int = DEFAULT_START_SIZE,
    end_size: int = DEFAULT_END_SIZE,
    world: str | None = None,
    box: Region | None = None,
) -> str:
    """A riddle for a treasure at `pos`, deterministic for (key, step).

    It names the site's setting (surface, cave, underwater), biome and a coarse height
    band, and places the step's region box relative to the nearest landmark: a 4-point
    direction before the halfway step, 8 points after, and a rough distance band. It is
    built from the box, never from `pos` itself (except the height band), so it reveals no
    more than the region hint of the same step, and it never contains coordinates.
    `world`, when given, keeps only that world's landmarks; `box` skips recomputing it.

    >>> riddle(["surface", "forest"], (130, 70, -300), [Landmark("the Old Mill", "overworld", (120, 70, -40))],
    ...        b"k", 5)
    'North of the Old Mill, in the forest, it waits near the level of the sea.'
    """
    setting, rank, biome_set = "", len(SETTING_TAGS), set()
    for t in tags:
        r = _SETTING_RANK.get(t)
        if r is None:
            biome_set.add(t)
        elif r < rank:
            setting, rank = t, r
    biomes = sorted(biome_set)
    if world is not None:
        landmarks = [lm for lm in landmarks if lm.world == world]
    if box is None:
        box = region_at_step(pos, step, key, steps, start_size, end_size)
    d = hashlib.blake2b(key + step.to_bytes(4, "little", signed=True), digest_size=8, person=b"cairn.riddle").digest()
    h = int.from_bytes(d, "little")
    near = _landmark_clause(box, landmarks, 2 * step >= steps, h)
    text = _pick(_TEMPLATES[bool(biomes), bool(near)], h, 0).format(
        where=_pick(_SETTING_PHRASES[setting], h, 1),
        biome="in the " + _biome_noun(_pick(biomes, h, 2)) if biomes else "",
        height=_height_phrase(pos[1]),
        near=near,
    )
    return text[0].upper() + text[1:]


# --- the hint reply ---------------------------------------------------------------------------

#: The hint kinds a hunt may enable, in reply order.
HINT_KINDS: Final = ("temperature", "bearing", "region", "riddle")


class RegionReply(TypedDict):
    min: list[int]
    max: list[int]


class Hint(TypedDict, total=False):
    """The SPEC's `hint` object; only the hunt's enabled kinds are present."""

    temperature: str
    vertical: str
    bearing: str
    region: RegionReply
    riddle: str


def check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    """Return `kinds` as a set, or raise ValidationError naming an unknown kind."""
    ks = frozenset(kinds)
    unknown = sorted(ks.difference(HINT_KINDS))
    if unknown:
        raise ValidationError(
            f"unknown hint kind {unknown[0]!r}; expected one of {', '.join(HINT_KINDS)}",
            field="hints.kinds",
        )
    return ks


def build_hint(
    kinds: Iterable[str],
    player_pos: Pos,
    treasure_pos: Pos,
    treasure_tags: Iterable[str],
    progress: float,
    key: bytes,
    landmarks: Sequence[Landmark] = (),
    *,
    finds_by_player: int = 0,
    policy: AdaptPolicy = DEFAULT_ADAPT,
    steps: int = DEFAULT_STEPS,
    start_size: int = DEFAULT_START_SIZE,
    end_size: int = DEFAULT_END_SIZE,
    world: str | None = None,
) -> Hint:
    """The hint for a player about one treasure (normally `TreasureField.nearest`).

    `progress` is `hint_progress(now, starts_at, solve_by)`; the region and riddle use the
    step `adapt(step_for_progress(progress), finds_by_player, policy)`. Keys come in SPEC
    order: temperature, vertical, bearing, region, riddle.

    >>> build_hint(["temperature", "bearing", "region"], (0, 64, 0), (40, 60, -40), ["surface"], 1.0, b"k")
    {'temperature': 'warm', 'vertical': 'below', 'bearing': 'NE', 'region': {'min': [28, -55], 'max': [43, -40]}}
    """
    ks = check_kinds(kinds)
    hint: Hint = {}
    if "temperature" in ks:
        hint["temperature"] = temperature_band(hdist(player_pos, treasure_pos))
        hint["vertical"] = vertical_word(treasure_pos[1] - player_pos[1])
    if "bearing" in ks:
        hint["bearing"] = bearing(player_pos, treasure_pos)
    if "region" in ks or "riddle" in ks:
        step = adapt(step_for_progress(progress, steps), finds_by_player, policy, steps)
        box = region_at_step(treasure_pos, step, key, steps, start_size, end_size)
        if "region" in ks:
            hint["region"] = {"min": [box[0][0], box[0][1]], "max": [box[1][0], box[1][1]]}
        if "riddle" in ks:
            hint["riddle"] = riddle(
                treasure_tags, treasure_pos, landmarks, key, step, steps, start_size, end_size, world, box
            )
    return hint
