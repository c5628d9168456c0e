"""Hints: bands, bearing, the shrinking region box, riddles, adaptation and nearest-treasure."""

from __future__ import annotations

import ast
import doctest
import itertools
import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cairn.core import hints, proximity, schedule
from cairn.core.errors import ValidationError
from cairn.core.geometry import MAX_XZ, bearing_angle
from cairn.core.hints import (
    DEFAULT_STEPS,
    TEMPERATURES,
    AdaptPolicy,
    Landmark,
    TreasureField,
    adapt,
    build_hint,
    escalation_step,
    hint_progress,
    next_escalation_at,
    region_at_step,
    region_box,
    riddle,
    step_for_progress,
    temperature_band,
    vertical_word,
)

coord = st.integers(-MAX_XZ, MAX_XZ)
height = st.integers(-2048, 4096)
positions = st.tuples(coord, height, coord)
keys = st.binary(min_size=1, max_size=32)
LANDMARKS = [
    Landmark("the Old Mill", "overworld", (120, 70, -40)),
    Landmark("Stonewatch", "overworld", (-900, 90, 400)),
    Landmark("the Sunken Bell", "overworld", (2500, 40, 2500)),
    Landmark("the Nether Gate", "nether", (0, 64, 0)),
]


def width(box: tuple[tuple[int, int], tuple[int, int]]) -> tuple[int, int]:
    (x0, z0), (x1, z1) = box
    return x1 - x0 + 1, z1 - z0 + 1


# --- temperature and vertical -----------------------------------------------------------------


def test_temperature_band_edges() -> None:
    cases = [(0, "burning"), (8, "burning"), (8.01, "hot"), (32, "hot"), (32.5, "warm"), (96, "warm")]
    cases += [(96.1, "cool"), (256, "cool"), (256.001, "cold"), (1e9, "cold")]
    for d, band in cases:
        assert temperature_band(d) == band, d


def test_the_band_table_of_squared_distances_matches_temperature_band() -> None:
    # Brute force over every squared distance up to past the last band's edge, cold included.
    limit2 = 300 * 300
    table = hints.bands_by_d2(limit2)
    assert len(table) == limit2 + 1
    for d2 in range(limit2 + 1):
        assert TEMPERATURES[table[d2]] == temperature_band(math.sqrt(d2)), d2


@given(st.floats(0, 1e8), st.floats(0, 1e8))
def test_temperature_band_is_monotone_in_distance(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert TEMPERATURES.index(temperature_band(lo)) <= TEMPERATURES.index(temperature_band(hi))


@given(st.integers(-6000, 6000))
def test_vertical_word(dy: int) -> None:
    word = vertical_word(dy)
    assert word == ("above" if dy > 2 else "below" if dy < -2 else "level")


# --- bearing ------------------------------------------------------------------------------------


@given(positions, positions)
def test_bearing_within_22_5_degrees_of_true_direction(
    player: tuple[int, int, int], treasure: tuple[int, int, int]
) -> None:
    assume((player[0], player[2]) != (treasure[0], treasure[2]))
    hint = build_hint(["bearing"], player, treasure, [], 0.0, b"k")
    true = math.degrees(math.atan2(treasure[0] - player[0], -(treasure[2] - player[2]))) % 360.0
    diff = abs(true - bearing_angle(hint["bearing"])) % 360.0
    assert min(diff, 360.0 - diff) <= 22.5 + 1e-9


# --- region box --------------------------------------------------------------------------------


@given(positions, st.floats(-1.0, 3.0), keys)
def test_region_contains_treasure_and_shrinks_to_end_size(
    treasure: tuple[int, int, int], progress: float, key: bytes
) -> None:
    box = region_box(treasure, progress, key)
    (x0, z0), (x1, z1) = box
    assert x0 <= treasure[0] <= x1 and z0 <= treasure[2] <= z1
    w = width(box)
    assert max(w) <= 512
    if progress >= 1.0:
        assert max(w) <= 16
    assert min(x0, z0) >= -MAX_XZ and max(x1, z1) <= MAX_XZ


@given(positions, keys, st.integers(1, 12))
def test_region_boxes_are_nested_and_discrete(treasure: tuple[int, int, int], key: bytes, steps: int) -> None:
    boxes = [region_at_step(treasure, s, key, steps) for s in range(steps + 1)]
    for outer, inner in itertools.pairwise(boxes):
        (ox0, oz0), (ox1, oz1) = outer
        (ix0, iz0), (ix1, iz1) = inner
        assert ox0 <= ix0 <= ix1 <= ox1 and oz0 <= iz0 <= iz1 <= oz1
        assert width(inner) <= width(outer)
    assert max(width(boxes[-1])) <= 16
    # Within one step the box does not move, whatever the progress inside it.
    for s in range(steps):
        lo, hi = s / steps, (s + 1) / steps
        for p in (lo, (lo + hi) / 2, math.nextafter(hi, 0.0)):
            assert region_box(treasure, p, key, steps=steps) == boxes[step_for_progress(p, steps)]


def test_region_sizes_halve_from_start_to_end() -> None:
    sides = [width(region_at_step((5, 64, 5), s, b"k"))[0] for s in range(DEFAULT_STEPS + 1)]
    assert sides == [512, 256, 128, 64, 32, 16]
    # start_size is rounded down to end_size times a power of two.
    assert width(region_box((0, 0, 0), 0.0, b"k", start_size=500, end_size=10))[0] == 320
    with pytest.raises(ValidationError, match=r"^region sizes need 1 <= end_size <= start_size"):
        region_box((0, 0, 0), 0.0, b"k", start_size=8, end_size=16)


def test_region_offset_is_not_always_centred() -> None:
    offsets: Counter[tuple[int, int]] = Counter()
    treasure = (1234, 64, -987)
    n = 4000
    for i in range(n):
        (x0, z0), _ = region_box(treasure, 1.0, f"hunt#{i}".encode())
        offsets[(treasure[0] - x0, treasure[2] - z0)] += 1
    xs = Counter(dx for dx, _ in offsets.elements())
    assert sorted(xs) == list(range(16))  # every offset in the 16-wide box happens
    assert max(xs.values()) < 2 * n / 16  # and none dominates
    centred = sum(c for (dx, dz), c in offsets.items() if dx in (7, 8) and dz in (7, 8))
    assert centred < 0.05 * n


# --- escalation and adaptation ---------------------------------------------------------------------


def test_escalation_steps_over_time() -> None:
    start, solve = 1_000.0, 1_000.0 + 90 * 60
    assert [escalation_step(start + m * 60, start, solve) for m in (-5, 0, 17, 18, 45, 89, 90, 200)] == [
        0, 0, 0, 1, 2, 4, 5, 5,
    ]  # fmt: skip
    t0 = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    assert escalation_step(datetime(2026, 11, 27, 20, 30, tzinfo=UTC), t0, datetime(2026, 11, 27, 20, 30)) == 5
    assert hint_progress(start, start, start) == 1.0  # solve_by at start: the guarantee at once


@given(st.floats(0, 1e6), st.floats(1, 1e6), st.floats(-1e6, 2e6), st.integers(1, 10))
def test_next_escalation_at_is_exactly_the_next_step(start: float, span: float, now: float, steps: int) -> None:
    solve = start + span
    step = escalation_step(now, start, solve, steps)
    t = next_escalation_at(now, start, solve, steps)
    if step == steps:
        assert t is None
        return
    assert t is not None and t >= now
    assert escalation_step(t, start, solve, steps) == step + 1
    assert escalation_step(math.nextafter(t, -math.inf), start, solve, steps) == step


policies = st.builds(
    AdaptPolicy,
    enabled=st.booleans(),
    new_player_max_finds=st.integers(0, 5),
    new_player_bonus=st.integers(0, 5),
    frequent_from=st.integers(1, 10),
    frequent_every=st.integers(1, 5),
    max_penalty=st.integers(0, 6),
)


@given(st.integers(-3, 15), st.integers(0, 100), policies, st.integers(1, 10))
def test_adapt_bounds_and_solve_guarantee(step: int, finds: int, policy: AdaptPolicy, steps: int) -> None:
    eff = adapt(step, finds, policy, steps)
    if step >= steps:
        assert eff == steps  # from solve_by on, nobody gets a vaguer box
    else:
        assert 0 <= eff <= steps - 1
    assert adapt(step, finds + 1, policy, steps) <= eff  # more finds: never sharper


def test_adapt_default_policy_table() -> None:
    assert [adapt(2, f) for f in (0, 1, 2, 3, 5, 6, 9, 50)] == [3, 2, 2, 1, 1, 0, 0, 0]
    assert adapt(4, 0) == 4  # the last box is kept for solve_by
    assert adapt(5, 50) == 5
    assert adapt(2, 50, AdaptPolicy(enabled=False)) == 2


def test_adapt_policy_decodes_with_documented_defaults() -> None:
    assert msgspec.json.decode(b"{}", type=AdaptPolicy) == AdaptPolicy()
    assert AdaptPolicy() == AdaptPolicy(True, 0, 1, 3, 3, 2)
    with pytest.raises(msgspec.ValidationError, match="Expected `int` >= 0"):
        msgspec.json.decode(b'{"new_player_bonus": -1}', type=AdaptPolicy)
    with pytest.raises(msgspec.ValidationError, match="unknown field `bonus`"):
        msgspec.json.decode(b'{"bonus": 1}', type=AdaptPolicy)


@given(positions, positions, st.integers(0, 1000), policies, keys)
@settings(max_examples=50)
def test_solve_guarantee_holds_for_everyone(
    player: tuple[int, int, int], treasure: tuple[int, int, int], finds: int, policy: AdaptPolicy, key: bytes
) -> None:
    hint = build_hint(["region"], player, treasure, [], 1.0, key, finds_by_player=finds, policy=policy)
    region = hint["region"]
    assert region["max"][0] - region["min"][0] + 1 <= 16 and region["max"][1] - region["min"][1] + 1 <= 16


# --- riddles ------------------------------------------------------------------------------------


tag_lists = st.lists(st.sampled_from(["surface", "cave", "underwater", "forest", "desert", "snowy_taiga"]), max_size=4)


@given(tag_lists, positions, keys, st.integers(0, 5))
def test_riddle_is_deterministic_and_coordinate_free(
    tags: list[str], treasure: tuple[int, int, int], key: bytes, step: int
) -> None:
    text = riddle(tags, treasure, LANDMARKS, key, step, world="overworld")
    assert text == riddle(list(reversed(tags)), treasure, list(LANDMARKS), key, step, world="overworld")
    assert not re.search(r"\d", text)  # no coordinates, no distances in numbers
    assert text[0].isupper() and text.endswith(".") and "  " not in text
    assert "Nether Gate" not in text


@given(positions, keys, st.integers(0, 5), st.data())
def test_riddle_says_nothing_the_box_does_not(
    treasure: tuple[int, int, int], key: bytes, step: int, data: st.DataObject
) -> None:
    # Any other treasure spot in the same box (same height band) gets the same riddle.
    (x0, z0), (x1, z1) = region_at_step(treasure, step, key)
    other = (data.draw(st.integers(x0, x1)), treasure[1], data.draw(st.integers(z0, z1)))
    assert region_at_step(other, step, key) == region_at_step(treasure, step, key)
    tags = ["surface", "forest"]
    assert riddle(tags, other, LANDMARKS, key, step) == riddle(tags, treasure, LANDMARKS, key, step)


def test_riddle_templates_vary_and_name_the_landmark() -> None:
    texts = {riddle(["surface", "forest"], (130, 70, -300), LANDMARKS, f"k{i}".encode(), 5) for i in range(60)}
    assert len(texts) >= 6
    assert all("the Old Mill" in t and "in the forest" in t for t in texts)
    assert riddle(["cave"], (0, -30, 0), [], b"k", 0).endswith(".")
    late = riddle(["surface"], (130, 70, -300), LANDMARKS, b"k", 5)
    assert re.search(r"\bnorth\b", late, re.IGNORECASE), late  # the box lies north of the mill


# --- nearest treasure ------------------------------------------------------------------------------


small = st.integers(-40, 40)


@given(
    st.lists(st.tuples(small, small, small), max_size=60),
    st.tuples(small, small, small),
    st.data(),
)
def test_nearest_equals_brute_force(
    pts: list[tuple[int, int, int]], player: tuple[int, int, int], data: st.DataObject
) -> None:
    field = TreasureField(pts)
    n = len(pts)
    retired = data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n)) if n else set()
    for i in retired:
        field.retire(i)
    excluded = data.draw(st.sets(st.integers(-3, n + 3), max_size=40))
    as_mask = data.draw(st.booleans())
    exclude: set[int] | np.ndarray = excluded
    if as_mask:
        exclude = np.zeros(n, dtype=bool)
        exclude[[i for i in excluded if 0 <= i < n]] = True
    candidates = [
        ((p[0] - player[0]) ** 2 + (p[2] - player[2]) ** 2, i)
        for i, p in enumerate(pts)
        if i not in retired and i not in excluded
    ]
    expected = min(candidates)[1] if candidates else None
    assert field.nearest(player, exclude) == expected
    assert field.live_count == n - len(retired)
    if expected is not None:
        assert field.pos(expected) == pts[expected]


def test_nearest_edge_cases() -> None:
    assert TreasureField([]).nearest((0, 0, 0)) is None
    f = TreasureField([(30_000_000, 0, 30_000_000), (-30_000_000, 0, -30_000_000)])
    assert f.nearest((-30_000_000, 0, 30_000_000)) == 0  # exact tie at the world's corners: lowest index
    with pytest.raises(ValueError, match=r"^exclude mask has shape \(3,\), expected \(2,\)$"):
        f.nearest((0, 0, 0), np.zeros(3, dtype=bool))
    assert f.nearest((30_000_000, 0, 30_000_000), np.array([0])) == 1  # an int array lists indices
    assert f.xz.tolist() == [[30_000_000, 30_000_000], [-30_000_000, -30_000_000]] and f.y.tolist() == [0, 0]
    f.retire(0)
    f.retire(0)
    assert f.live_count == 1 and not f.is_live(0) and f.nearest((30_000_000, 0, 30_000_000)) == 1


# --- the hint reply ---------------------------------------------------------------------------------


def test_build_hint_shape_and_order() -> None:
    hint = build_hint(
        ["riddle", "region", "bearing", "temperature"],
        (0, 64, 0),
        (40, 60, -40),
        ["surface", "forest"],
        1.0,
        b"k",
        LANDMARKS,
    )
    assert list(hint) == ["temperature", "vertical", "bearing", "region", "riddle"]
    assert hint["temperature"] == "warm" and hint["vertical"] == "below" and hint["bearing"] == "NE"
    assert hint["region"] == {"min": [28, -55], "max": [43, -40]}
    assert isinstance(hint["riddle"], str)
    assert build_hint(["temperature"], (0, 64, 0), (4, 70, 0), [], 0.0, b"k") == {
        "temperature": "burning",
        "vertical": "above",
    }
    assert list(build_hint(["riddle"], (0, 64, 0), (40, 60, -40), [], 0.0, b"k")) == ["riddle"]
    assert build_hint([], (0, 64, 0), (40, 60, -40), [], 0.0, b"k") == {}
    assert msgspec.json.decode(msgspec.json.encode(hint)) == hint  # plain JSON types


def test_build_hint_rejects_unknown_kinds() -> None:
    with pytest.raises(ValidationError) as info:
        build_hint(["temperature", "compass"], (0, 0, 0), (1, 0, 1), [], 0.0, b"k")
    assert info.value.field == "hints.kinds"
    assert info.value.message == "unknown hint kind 'compass'; expected one of temperature, bearing, region, riddle"


# --- module hygiene -------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [hints, proximity, schedule])
def test_doctests_pass(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("module", [hints, proximity, schedule])
def test_core_module_imports_no_io(module: object) -> None:
    allowed = {"__future__", "array", "bisect", "calendar", "collections", "dataclasses", "datetime", "hashlib",
               "itertools", "math", "typing", "numpy", "msgspec", "cairn"}  # fmt: skip
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            assert top in allowed, name
            assert top != "cairn" or name.startswith("cairn.core"), name


# --- temperature tiles: the miss fast path must agree with the band of the true nearest ----------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-400, 400), st.integers(0, 300), st.integers(-400, 400)), min_size=1, max_size=40),
    st.sets(st.integers(0, 39), max_size=20),
    st.integers(0, 4),
    st.tuples(st.integers(-8, 7), st.integers(-8, 7)),
)
def test_band_tile_matches_brute_force(
    pts: list[tuple[int, int, int]], dead: set[int], tol: int, tile: tuple[int, int]
) -> None:
    field = hints.TreasureField(pts)
    for i in dead:
        if i < len(pts):
            field.retire(i)
    tx, tz = tile
    data = field.band_tile(tx, tz, tol)
    assert len(data) == hints.TILE * hints.TILE
    live = [p for i, p in enumerate(pts) if i not in dead]
    rng = np.random.default_rng(len(pts) * 7 + tol)
    cols = [(0, 0), (hints.TILE - 1, hints.TILE - 1), (0, hints.TILE - 1)]
    cols += [tuple(c) for c in rng.integers(0, hints.TILE, size=(60, 2))]
    for dx, dz in cols:
        x, z = tx * hints.TILE + int(dx), tz * hints.TILE + int(dz)
        byte = data[dx * hints.TILE + dz]
        want = hints.COLD if not live else hints.temperature_band(min(math.hypot(p[0] - x, p[2] - z) for p in live))
        assert hints.TEMPERATURES[byte & ~hints.NEAR_FLAG] == want, (x, z)
        close = any(abs(p[0] - x) <= tol and abs(p[2] - z) <= tol for p in pts)  # dead ones too
        assert bool(byte & hints.NEAR_FLAG) == close, (x, z)


def test_band_tile_band_edges_are_inclusive() -> None:
    field = hints.TreasureField([(0, 64, 0)])
    expect = {8: "burning", 9: "hot", 32: "hot", 33: "warm", 96: "warm", 97: "cool", 256: "cool", 257: "cold"}
    for x, band in expect.items():
        tile = field.band_tile(x >> hints.TILE_SHIFT, 0, 0)
        byte = tile[(x & (hints.TILE - 1)) * hints.TILE]
        assert hints.TEMPERATURES[byte & ~hints.NEAR_FLAG] == band == hints.temperature_band(x), x
