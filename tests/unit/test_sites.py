"""SiteSet: queries against a brute-force filter, duplicates, masks, index, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core.errors import OutOfBounds, ValidationError
from cairn.core.geometry import MAX_XZ, MAX_Y, MIN_Y
from cairn.core.sites import SiteSet, build_chunk_index, chunk_key

TAGS = ("surface", "cave", "underwater", "forest", "desert")


# ---- reference model --------------------------------------------------------------------------


def reference(xyz: np.ndarray, tags: np.ndarray) -> dict[tuple[int, int, int], int]:
    """Positions to OR-ed tag masks: what a SiteSet must hold."""
    ref: dict[tuple[int, int, int], int] = {}
    for p, t in zip(xyz.tolist(), tags.tolist(), strict=True):
        ref[tuple(p)] = ref.get(tuple(p), 0) | t
    return ref


def brute_query(ref, lo, hi, any_mask=0, none_mask=0) -> list[tuple[int, int, int]]:
    out = []
    for p, t in ref.items():
        inside = all(lo[a] <= p[a] <= hi[a] for a in range(3))
        if inside and (any_mask == 0 or t & any_mask) and not t & none_mask:
            out.append(p)
    return sorted(out)


def as_set(s: SiteSet) -> dict[tuple[int, int, int], int]:
    return {s.pos(i): int(s.tags[i]) for i in range(len(s))}


def check_queries(s: SiteSet, ref, boxes, masks) -> None:
    for lo, hi in boxes:
        for any_mask, none_mask in masks:
            idx = s.query(lo, hi, any_mask, none_mask)
            assert idx.dtype == np.int64
            assert bool(np.all(np.diff(idx) > 0)), "indices not strictly ascending"
            got = sorted(map(tuple, s.positions(idx).tolist()))
            want = brute_query(ref, lo, hi, any_mask, none_mask)
            assert got == want, (lo, hi, any_mask, none_mask)
            assert s.count(lo, hi, any_mask, none_mask) == len(want)


def random_box(rng: np.random.Generator, span: int, yspan: tuple[int, int]):
    a = rng.integers(-span, span, 3)
    b = rng.integers(-span, span, 3)
    a[1], b[1] = rng.integers(*yspan, 2)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return tuple(int(v) for v in lo), tuple(int(v) for v in hi)


# ---- hypothesis ------------------------------------------------------------------------------

coord = st.integers(-70, 70)
site = st.tuples(st.tuples(coord, st.integers(-5, 5), coord), st.integers(0, (1 << len(TAGS)) - 1))
box = st.tuples(
    st.tuples(st.integers(-80, 80), st.integers(-6, 6), st.integers(-80, 80)),
    st.tuples(st.integers(-80, 80), st.integers(-6, 6), st.integers(-80, 80)),
)


@settings(max_examples=150, deadline=None)
@given(
    sites=st.lists(site, max_size=120),
    boxes=st.lists(box, min_size=1, max_size=4),
    any_mask=st.integers(0, 31),
    none_mask=st.integers(0, 31),
)
def test_query_matches_brute_force(sites, boxes, any_mask, none_mask):
    xyz = np.array([p for p, _ in sites], dtype=np.int64).reshape(-1, 3)
    tags = np.array([t for _, t in sites], dtype=np.uint32)
    s = SiteSet.from_arrays(xyz, tags, TAGS)
    s._check()
    ref = reference(xyz, tags)
    assert as_set(s) == ref
    # Normalised boxes, plus the raw ones (possibly inverted: empty).
    boxes = [(tuple(map(min, lo, hi)), tuple(map(max, lo, hi))) for lo, hi in boxes] + list(boxes)
    check_queries(s, ref, boxes, [(0, 0), (any_mask, none_mask)])


# ---- seeded stress ---------------------------------------------------------------------------

LAYOUTS = {
    # name: (x/z span, y range): each exercises a different sort or query path.
    "dense": (40, (-3, 3)),  # many duplicates, packed key + (key, row) sort
    "tall": (300, (-64, 320)),  # many chunks per chunk column: per-column binary search
    "wide": (4_000, (-64, 320)),  # sparse chunks: chunk scan
    "argsort": (8_000_000, (MIN_Y, MAX_Y)),  # key fits int64 but the row number does not
    "lexsort": (MAX_XZ, (MIN_Y, MAX_Y)),  # key does not fit int64
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("seed", range(6))
def test_seeded_stress(layout, seed):
    print(f"stress seed={seed} layout={layout}")
    span, yspan = LAYOUTS[layout]
    rng = np.random.default_rng([seed, len(layout)])
    n = int(rng.integers(1, 3000))
    xyz = np.empty((n, 3), dtype=np.int64)
    xyz[:, 0] = rng.integers(-span, span + 1, n)
    xyz[:, 2] = rng.integers(-span, span + 1, n)
    if layout == "tall":
        xyz[:, 0] = rng.integers(-20, 20, n)
    xyz[:, 1] = rng.integers(yspan[0], yspan[1] + 1, n)
    # Repeat some positions so merging is exercised everywhere.
    rep = rng.integers(0, n, n // 5)
    xyz = np.concatenate([xyz, xyz[rep]])
    tags = rng.integers(0, 1 << len(TAGS), xyz.shape[0], dtype=np.uint32)
    s = SiteSet.from_arrays(xyz, tags, TAGS)
    s._check()
    ref = reference(xyz, tags)
    assert as_set(s) == ref
    boxes = [random_box(rng, span, yspan) for _ in range(8)]
    boxes.append(((-span, yspan[0], -span), (span, yspan[1], span)))
    boxes.append(((-MAX_XZ - 5, MIN_Y - 5, -MAX_XZ - 5), (MAX_XZ + 5, MAX_Y + 5, MAX_XZ + 5)))
    boxes.append(((0, 0, 0), (15, 100, 15)))  # chunk-aligned
    check_queries(s, ref, boxes, [(0, 0), (1, 0), (0, 2), (6, 8)])
    # Every site is found at its own index; a neighbouring free cell is not.
    for i in rng.integers(0, len(s), 50).tolist():
        p = s.pos(i)
        assert s.index_of(p) == i
        q = (p[0], p[1] + 1, p[2])
        assert (s.index_of(q) is None) == (q not in ref)


def test_sort_order_is_chunk_then_x_z_y():
    xyz = np.array([[17, 0, 0], [3, 5, 2], [3, 4, 2], [3, 9, 1], [-1, 0, 0], [0, 0, -1], [0, 0, 16]])
    s = SiteSet.from_arrays(xyz, np.zeros(7, np.uint32), TAGS)
    got = [s.pos(i) for i in range(len(s))]
    # chunks (-1,0), (0,-1), (0,0), (0,1), (1,0); inside (0,0): x, then z, then y.
    assert got == [(-1, 0, 0), (0, 0, -1), (3, 9, 1), (3, 4, 2), (3, 5, 2), (0, 0, 16), (17, 0, 0)]
    assert s.chunk_keys.tolist() == chunk_key([-1, 0, 0, 0, 17], [0, -1, 0, 16, 0]).tolist()
    assert s.chunk_starts.tolist() == [0, 1, 2, 5, 6, 7]


def test_same_input_any_order_gives_identical_arrays():
    rng = np.random.default_rng(11)
    xyz = rng.integers(-500, 500, (5000, 3))
    xyz = np.concatenate([xyz, xyz[:700]])
    tags = rng.integers(0, 32, xyz.shape[0], dtype=np.uint32)
    perm = rng.permutation(xyz.shape[0])
    a = SiteSet.from_arrays(xyz, tags, TAGS)
    b = SiteSet.from_arrays(xyz[perm].astype(np.int32), tags[perm], TAGS)
    for name in ("xz", "x", "y", "z", "tags", "chunk_keys", "chunk_starts"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


# ---- duplicates, masks, accessors ------------------------------------------------------------


def test_duplicates_merge_their_tags():
    xyz = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 3, 3]])
    s = SiteSet.from_arrays(xyz, np.array([1, 4, 1, 2], np.uint32), TAGS)
    assert len(s) == 2
    assert s.tags_of(s.index_of((1, 2, 3))) == ("surface", "underwater")
    assert s.tags_of(s.index_of((1, 3, 3))) == ("cave",)


def test_mask_and_tags_of():
    s = SiteSet.from_arrays(np.array([[0, 0, 0]]), np.array([0b10010], np.uint32), TAGS)
    assert s.mask(["surface"]) == 1
    assert s.mask(["cave", "forest"]) == 0b1010
    assert s.mask([]) == 0
    assert s.tags_of(0) == ("cave", "desert")
    assert s.count((0, 0, 0), (0, 0, 0), any_mask=s.mask(["desert"])) == 1
    assert s.count((0, 0, 0), (0, 0, 0), none_mask=s.mask(["cave"])) == 0


def test_unknown_tag_names_the_tag_the_field_and_the_known_tags():
    s = SiteSet.from_arrays(np.zeros((0, 3), np.int64), np.zeros(0, np.uint32), TAGS)
    with pytest.raises(ValidationError) as exc:
        s.mask(["surface", "lava"], field="spawn.tags_any")
    err = exc.value
    assert err.code == "validation_error"
    assert err.field == "spawn.tags_any"
    assert err.message == (
        "unknown tag 'lava' in spawn.tags_any; known tags: surface, cave, underwater, forest, desert"
    )


def test_empty_set():
    s = SiteSet.from_arrays(np.zeros((0, 3), np.int32), np.zeros(0, np.uint32), TAGS)
    s._check()
    assert len(s) == 0
    assert s.query((-10, -10, -10), (10, 10, 10)).tolist() == []
    assert s.count((-10, -10, -10), (10, 10, 10)) == 0
    assert s.index_of((0, 0, 0)) is None
    assert s.positions(np.zeros(0, np.int64)).shape == (0, 3)


def test_pos_positions_and_index_errors():
    xyz = np.array([[5, -7, 9], [-30, 2, 4]])
    s = SiteSet.from_arrays(xyz, np.array([1, 2], np.uint32), TAGS)
    i = s.index_of((5, -7, 9))
    p = s.pos(i)
    assert p == (5, -7, 9) and all(type(v) is int for v in p)
    pos = s.positions(np.array([1, 0]))
    assert pos.dtype == np.int64 and pos.tolist() == [list(s.pos(1)), list(s.pos(0))]
    with pytest.raises(IndexError):
        s.pos(2)
    with pytest.raises(IndexError):
        s.tags_of(-1)
    assert s.index_of((5, -7, 10)) is None
    assert s.index_of((MAX_XZ + 1, 0, 0)) is None


def test_inverted_or_out_of_world_boxes():
    s = SiteSet.from_arrays(np.array([[0, 0, 0], [MAX_XZ, MAX_Y, -MAX_XZ]]), np.ones(2, np.uint32), TAGS)
    assert s.count((5, 0, 0), (0, 0, 0)) == 0
    assert s.count((-(10**12), -(10**9), -(10**12)), (10**12, 10**9, 10**12)) == 2
    assert s.query((MAX_XZ, MAX_Y, -MAX_XZ), (MAX_XZ, MAX_Y, -MAX_XZ)).tolist() == [s.index_of(s.pos(1))]
    with pytest.raises(ValidationError) as exc:
        s.query((0, 0, 0), (1, 1, 1), any_mask=-1)
    assert exc.value.field == "any_mask"


def test_arrays_are_read_only():
    s = SiteSet.from_arrays(np.array([[1, 1, 1]]), np.array([1], np.uint32), TAGS)
    for name in ("xz", "y", "tags", "chunk_keys", "chunk_starts"):
        with pytest.raises(ValueError):
            getattr(s, name)[0] = 0


def test_nbytes_is_7_bytes_per_site_plus_index():
    rng = np.random.default_rng(3)
    s = SiteSet.from_arrays(rng.integers(-100, 100, (1000, 3)), np.zeros(1000, np.uint32), TAGS)
    assert s.nbytes() == 7 * len(s) + 16 * len(s.chunk_keys) + 8


def test_x_and_z_decode_from_the_chunk_and_the_xz_byte():
    rng = np.random.default_rng(4)
    xyz = np.unique(rng.integers(-70_000, 70_000, (3000, 3)) // [1, 100, 1], axis=0)
    s = SiteSet.from_arrays(xyz, np.ones(xyz.shape[0], np.uint32), TAGS)
    got = sorted(zip(s.x.tolist(), s.y.tolist(), s.z.tolist(), strict=True))
    assert got == sorted(map(tuple, xyz.tolist()))
    assert s.x.dtype == s.z.dtype == np.int32
    assert [s.pos(i) for i in range(len(s))] == list(zip(s.x.tolist(), s.y.tolist(), s.z.tolist(), strict=True))
    assert s.positions(np.arange(len(s))).tolist() == [list(s.pos(i)) for i in range(len(s))]


# ---- from_index_arrays and _check ------------------------------------------------------------


def test_from_index_arrays_shares_memory_and_checks_on_request():
    rng = np.random.default_rng(5)
    a = SiteSet.from_arrays(rng.integers(-300, 300, (2000, 3)), np.ones(2000, np.uint32), TAGS)
    cols = [np.array(getattr(a, n)) for n in ("xz", "y", "tags", "chunk_keys", "chunk_starts")]
    b = SiteSet.from_index_arrays(*cols, TAGS, check=True)
    assert all(np.shares_memory(c, getattr(b, n)) for c, n in zip(cols, ("xz", "y", "tags"), strict=False))
    assert b.query((-50, -50, -50), (50, 50, 50)).tolist() == a.query((-50, -50, -50), (50, 50, 50)).tolist()
    # The index can be rebuilt from sorted x, z alone.
    keys, starts = build_chunk_index(a.x, a.z)
    assert np.array_equal(keys, a.chunk_keys) and np.array_equal(starts, a.chunk_starts)


def corrupt(s: SiteSet, **changes):
    cols = {n: np.array(getattr(s, n)) for n in ("xz", "y", "tags", "chunk_keys", "chunk_starts")}
    for name, fn in changes.items():
        fn(cols[name])
    return SiteSet.from_index_arrays(**cols, tag_names=s.tag_names)


@pytest.mark.parametrize(
    "changes",
    [
        {"y": lambda a: a.__setitem__(slice(0, 2), a[1::-1].copy())},  # swap two rows of one column
        {"xz": lambda a: a.__setitem__(0, 0x10)},  # rows of one chunk out of order
        {"y": lambda a: a.__setitem__(1, a[0]), "xz": lambda a: a.__setitem__(1, a[0])},  # duplicate position
        {"chunk_keys": lambda a: a.__setitem__(1, a[0])},  # chunk keys not rising
        {"chunk_keys": lambda a: a.__setitem__(1, chunk_key([MAX_XZ + 16], [0])[0])},  # beyond the limits
        {"y": lambda a: a.__setitem__(3, MAX_Y + 1)},  # beyond the limits
        {"tags": lambda a: a.__setitem__(0, 1 << 7)},  # tag bit beyond the names
        {"chunk_starts": lambda a: a.__setitem__(1, a[2])},  # an empty chunk
        {"chunk_starts": lambda a: a.__setitem__(2, a[2] + 1)},  # index past the rows
    ],
)
def test_check_catches_corruption(changes):
    xyz = np.array([[0, 0, 0], [0, 1, 0], [0, 2, 0], [20, 0, 0]])
    s = SiteSet.from_arrays(xyz, np.ones(4, np.uint32), TAGS)
    s._check()
    with pytest.raises(AssertionError):
        corrupt(s, **changes)._check()


def test_from_index_arrays_rejects_wrong_dtypes():
    s = SiteSet.from_arrays(np.array([[0, 0, 0]]), np.ones(1, np.uint32), TAGS)
    with pytest.raises(ValidationError) as exc:
        SiteSet.from_index_arrays(s.xz.astype(np.int64), s.y, s.tags, s.chunk_keys, s.chunk_starts, TAGS)
    assert exc.value.field == "xz"


# ---- input validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xyz", "tags", "names", "error", "field"),
    [
        ([[MAX_XZ + 1, 0, 0]], [0], TAGS, OutOfBounds, "xyz"),
        ([[0, MIN_Y - 1, 0]], [0], TAGS, OutOfBounds, "xyz"),
        ([[0, 0]], [0], TAGS, ValidationError, "xyz"),
        ([[0, 0, 0]], [0, 1], TAGS, ValidationError, "tags"),
        ([[0, 0, 0]], [1 << 5], TAGS, ValidationError, "tags"),
        ([[0, 0, 0]], [-1], TAGS, ValidationError, "tags"),
        ([[0, 0, 0]], [0], [f"t{i}" for i in range(33)], ValidationError, "tag_names"),
        ([[0, 0, 0]], [0], ["a", "b", "a"], ValidationError, "tag_names"),
        ([[0, 0, 0]], [0], ["a", ""], ValidationError, "tag_names"),
    ],
)
def test_bad_input(xyz, tags, names, error, field):
    with pytest.raises(error) as exc:
        SiteSet.from_arrays(np.array(xyz), np.array(tags), names)
    assert exc.value.field == field


def test_thirty_two_tags_use_every_bit():
    names = [f"t{i}" for i in range(32)]
    s = SiteSet.from_arrays(np.array([[0, 0, 0], [1, 0, 0]]), np.array([1 << 31, 1], np.uint32), names)
    s._check()
    assert s.tags_of(0) == ("t31",)
    assert s.count((0, 0, 0), (5, 5, 5), any_mask=s.mask(["t31"])) == 1


def test_docstring_examples():
    import doctest

    import cairn.core.sites

    assert doctest.testmod(cairn.core.sites).failed == 0
