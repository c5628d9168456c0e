"""A world's immutable set of sites: packed numpy columns indexed by 16×16 chunk.

Layout (one row per site, struct of arrays so each column can be memory-mapped):

- `xz`: uint8, the column inside the site's chunk, `(x & 15) << 4 | (z & 15)`; the chunk gives the
  rest of x and z. `y`: int16; `tags`: uint32 bit mask over `tag_names`.
- Rows are sorted by (chunk key, x, z, y), with no two rows at the same position (inside a chunk
  that is (xz, y) order).
- `chunk_keys` (int64, strictly rising) lists the chunks that hold sites;
  `chunk_starts` (int64, length `len(chunk_keys) + 1`) gives each chunk's row range.

A chunk key packs `(x >> 4, z >> 4)` as `((cx + CHUNK_BIAS) << CHUNK_BITS) | (cz + CHUNK_BIAS)`, so
the chunks of one chunk column `cx` are contiguous and rise with `cz`: a box query is one binary
search per chunk column it overlaps. 10,000,000 sites take 7 bytes each plus 16 bytes per chunk
(int32 x and z columns took 14): a big world mapped from a pack is mostly these bytes, and they all
count in the server's RSS once hunts have been placed over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from cairn.core.errors import OutOfBounds, ValidationError
from cairn.core.geometry import MAX_XZ, MAX_Y, MIN_Y, Pos

CHUNK_SHIFT: Final = 4
CHUNK_BITS: Final = 22
CHUNK_BIAS: Final = 1 << (CHUNK_BITS - 1)
_CZ_MASK: Final = (1 << CHUNK_BITS) - 1
MAX_TAGS: Final = 32

#: The raw columns of a SiteSet and their dtypes, in the order `from_index_arrays` takes them.
ARRAY_DTYPES: Final[tuple[tuple[str, type[np.generic]], ...]] = (
    ("xz", np.uint8),
    ("y", np.int16),
    ("tags", np.uint32),
    ("chunk_keys", np.int64),
    ("chunk_starts", np.int64),
)

I64 = npt.NDArray[np.int64]


def _empty() -> I64:
    return np.zeros(0, dtype=np.int64)


def chunk_key(x: npt.ArrayLike, z: npt.ArrayLike) -> I64:
    """The chunk key of each block column (x, z), vectorised. O(n)."""
    cx = np.right_shift(np.asarray(x, dtype=np.int64), CHUNK_SHIFT)
    cz = np.right_shift(np.asarray(z, dtype=np.int64), CHUNK_SHIFT)
    out: I64 = ((cx + CHUNK_BIAS) << CHUNK_BITS) | (cz + CHUNK_BIAS)
    return out


def _chunk_key1(cx: int, cz: int) -> int:
    return ((cx + CHUNK_BIAS) << CHUNK_BITS) | (cz + CHUNK_BIAS)


def pack_xz(x: npt.ArrayLike, z: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """The in-chunk column byte `(x & 15) << 4 | (z & 15)` of each block column, vectorised. O(n).

    >>> pack_xz([17, -1], [2, -16]).tolist()
    [18, 240]
    """
    xs, zs = np.asarray(x), np.asarray(z)
    out: npt.NDArray[np.uint8] = ((xs & 15) << 4).astype(np.uint8)
    out |= (zs & 15).astype(np.uint8)
    return out


def chunk_origins(keys: npt.ArrayLike) -> tuple[I64, I64]:
    """The block x and z of the corner of each chunk key (`cx * 16`, `cz * 16`). O(n)."""
    k = np.asarray(keys, dtype=np.int64)
    x0: I64 = ((k >> CHUNK_BITS) - CHUNK_BIAS) << CHUNK_SHIFT
    z0: I64 = ((k & _CZ_MASK) - CHUNK_BIAS) << CHUNK_SHIFT
    return x0, z0


def _readonly(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A read-only view: O(1), works on memmaps too."""
    v = a.view()
    v.flags.writeable = False
    return v


def _expand_ranges(starts: I64, ends: I64) -> I64:
    """Concatenate `arange(s, e)` for each range, vectorised. O(total)."""
    lens = ends - starts
    keep = lens > 0
    starts, lens = starts[keep], lens[keep]
    if starts.size == 0:
        return _empty()
    if starts.size == 1:
        return np.arange(starts[0], starts[0] + lens[0], dtype=np.int64)
    offsets = np.cumsum(lens) - lens
    out: I64 = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - offsets, lens)
    return out


def _check_tag_names(tag_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(tag_names)
    if len(names) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags, got {len(names)}", field="tag_names")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"tag name {name!r} must be a non-empty string", field="tag_names")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValidationError(f"duplicate tag names: {', '.join(dupes)}", field="tag_names")
    return names


class SiteSet:
    """An immutable, chunk-indexed set of sites (positions plus tag masks).

    >>> s = SiteSet.from_arrays(np.array([[5, 64, 5], [1, 70, -3]]), np.array([1, 2], np.uint32),
    ...                         ["surface", "cave"])
    >>> len(s), s.pos(0), s.tags_of(1)
    (2, (1, 70, -3), ('surface',))
    >>> s.query((0, 0, 0), (15, 100, 15)).tolist()
    [1]
    """

    __slots__ = ("chunk_keys", "chunk_starts", "tag_names", "tags", "xz", "y")

    xz: npt.NDArray[np.uint8]
    y: npt.NDArray[np.int16]
    tags: npt.NDArray[np.uint32]
    chunk_keys: I64
    chunk_starts: I64
    tag_names: tuple[str, ...]

    def __init__(self) -> None:
        raise TypeError("use SiteSet.from_arrays or SiteSet.from_index_arrays")

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def from_index_arrays(
        cls,
        xz: npt.NDArray[np.uint8],
        y: npt.NDArray[np.int16],
        tags: npt.NDArray[np.uint32],
        chunk_keys: I64,
        chunk_starts: I64,
        tag_names: Sequence[str],
        *,
        check: bool = False,
    ) -> SiteSet:
        """Wrap already sorted and indexed columns (e.g. np.memmap) without copying.

        O(1): only dtypes and lengths are checked. With `check=True`, runs `_check()` (O(n)).
        """
        names = _check_tag_names(tag_names)
        arrays: tuple[np.ndarray[Any, Any], ...] = (xz, y, tags, chunk_keys, chunk_starts)
        for (name, dtype), arr in zip(ARRAY_DTYPES, arrays, strict=True):
            if arr.dtype != np.dtype(dtype) or arr.ndim != 1:
                raise ValidationError(
                    f"{name} must be a 1-d {np.dtype(dtype).name} array, got {arr.ndim}-d {arr.dtype.name}",
                    field=name,
                )
        n = xz.shape[0]
        if not (y.shape[0] == tags.shape[0] == n):
            raise ValidationError("xz, y and tags must have the same length", field="xz")
        if chunk_starts.shape[0] != chunk_keys.shape[0] + 1:
            raise ValidationError("chunk_starts must be one longer than chunk_keys", field="chunk_starts")
        self = object.__new__(cls)
        self.xz = _readonly(xz)
        self.y = _readonly(y)
        self.tags = _readonly(tags)
        self.chunk_keys = _readonly(chunk_keys)
        self.chunk_starts = _readonly(chunk_starts)
        self.tag_names = names
        if check:
            self._check()
        return self

    @classmethod
    def from_arrays(cls, xyz: npt.ArrayLike, tags: npt.ArrayLike, tag_names: Sequence[str]) -> SiteSet:
        """Build from unsorted positions (n, 3) and tag masks (n,), merging duplicate positions.

        Sorts into (chunk key, x, z, y) order and ORs the tags of sites at the same position.
        O(n log n) time; about 16 bytes per site of scratch memory on top of the result.
        """
        names = _check_tag_names(tag_names)
        pos = np.asarray(xyz)
        tg = np.asarray(tags)
        if pos.size == 0 and tg.size == 0:
            pos = pos.reshape(0, 3).astype(np.int64)
            tg = tg.reshape(0)
        if pos.ndim != 2 or pos.shape[1] != 3 or not np.issubdtype(pos.dtype, np.integer):
            raise ValidationError(f"xyz must be an (n, 3) integer array, got shape {pos.shape}", field="xyz")
        if tg.ndim != 1 or tg.shape[0] != pos.shape[0] or not np.issubdtype(tg.dtype, np.integer):
            raise ValidationError(f"tags must be a ({pos.shape[0]},) integer array, got shape {tg.shape}", field="tags")
        n = pos.shape[0]
        lo: tuple[int, ...] = ()
        hi: tuple[int, ...] = ()
        if n:
            lo, hi = _extent(pos)
            limit = 1 << len(names)
            if tg.dtype != np.uint32 or len(names) < MAX_TAGS:
                tmin, tmax = int(tg.min()), int(tg.max())
                if tmin < 0 or tmax >= limit:
                    bad = tmin if tmin < 0 else tmax
                    raise ValidationError(
                        f"tag mask {bad} uses bits beyond the {len(names)} tag names {list(names)}",
                        field="tags",
                    )
        xs, ys, zs, ts = _sorted_unique(pos, tg, lo, hi)
        keys, starts = build_chunk_index(xs, zs)
        return cls.from_index_arrays(pack_xz(xs, zs), ys, ts, keys, starts, names)

    @classmethod
    def empty(cls, tag_names: Sequence[str]) -> SiteSet:
        """A set with no sites and the vocabulary `tag_names` (a world before its sites arrive). O(1).

        >>> len(SiteSet.empty(["surface"]))
        0
        """
        return cls.from_arrays(np.zeros((0, 3), np.int64), np.zeros(0, np.uint32), tag_names)

    # ---- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of sites. O(1)."""
        return int(self.xz.shape[0])

    def __repr__(self) -> str:
        return f"SiteSet({len(self)} sites, {len(self.chunk_keys)} chunks, tags={list(self.tag_names)})"

    def mask(self, names: Iterable[str], field: str = "tags") -> int:
        """The bit mask of tag `names`; an unknown name raises ValidationError. O(len(names) * tags)."""
        if isinstance(names, str):
            names = (names,)
        m = 0
        for name in names:
            try:
                m |= 1 << self.tag_names.index(name)
            except ValueError:
                known = ", ".join(self.tag_names) or "(none)"
                raise ValidationError(
                    f"unknown tag {name!r} in {field}; known tags: {known}", field=field, tag=name
                ) from None
        return m

    def query(self, lo: Pos, hi: Pos, any_mask: int = 0, none_mask: int = 0) -> I64:
        """Ascending int64 indices of the sites in the inclusive box lo..hi that pass the tag masks.

        A site passes when `tags & any_mask != 0` (if `any_mask`) and `tags & none_mask == 0`.
        O(C log K + S): C chunk columns overlapped, K chunks, S sites in the overlapped chunks.
        """
        rows, keep = self._select(lo, hi, any_mask, none_mask)
        if keep is None:
            return rows
        out: I64 = rows[keep]
        return out

    def count(self, lo: Pos, hi: Pos, any_mask: int = 0, none_mask: int = 0) -> int:
        """The number of sites `query` would return. Same complexity as `query`."""
        rows, keep = self._select(lo, hi, any_mask, none_mask)
        return int(rows.shape[0]) if keep is None else int(np.count_nonzero(keep))

    def pos(self, i: int) -> Pos:
        """The position of site `i` as Python ints. O(log K)."""
        i = self._row(i)
        key = int(self.chunk_keys[int(np.searchsorted(self.chunk_starts, i, side="right")) - 1])
        b = int(self.xz[i])
        x = ((key >> CHUNK_BITS) - CHUNK_BIAS) << CHUNK_SHIFT | b >> 4
        z = ((key & _CZ_MASK) - CHUNK_BIAS) << CHUNK_SHIFT | b & 15
        return (x, int(self.y[i]), z)

    def positions(self, idx: npt.ArrayLike) -> I64:
        """The positions of sites `idx` as a (k, 3) int64 array. O(k log K)."""
        ix = np.asarray(idx, dtype=np.int64)
        out = np.empty((ix.shape[0], 3), dtype=np.int64)
        x0, z0 = chunk_origins(self.chunk_keys[np.searchsorted(self.chunk_starts, ix, side="right") - 1])
        b = self.xz[ix]
        out[:, 0] = x0 | (b >> 4)
        out[:, 1] = self.y[ix]
        out[:, 2] = z0 | (b & 15)
        return out

    @property
    def x(self) -> npt.NDArray[np.int32]:
        """Every site's x as a new int32 array. O(n) time and 4 bytes per site: for checks and tools."""
        x0, _ = chunk_origins(self.chunk_keys)
        out: npt.NDArray[np.int32] = (np.repeat(x0, np.diff(self.chunk_starts)) | (self.xz >> 4)).astype(np.int32)
        return out

    @property
    def z(self) -> npt.NDArray[np.int32]:
        """Every site's z as a new int32 array. O(n), like `x`."""
        _, z0 = chunk_origins(self.chunk_keys)
        out: npt.NDArray[np.int32] = (np.repeat(z0, np.diff(self.chunk_starts)) | (self.xz & 15)).astype(np.int32)
        return out

    def tags_of(self, i: int) -> tuple[str, ...]:
        """The tag names of site `i`, in `tag_names` order. O(tags)."""
        t = int(self.tags[self._row(i)])
        return tuple(name for bit, name in enumerate(self.tag_names) if t >> bit & 1)

    def index_of(self, p: Pos) -> int | None:
        """The index of the site at exactly `p`, or None. O(log K + log S_chunk)."""
        px, py, pz = (int(v) for v in p)
        if not (-MAX_XZ <= px <= MAX_XZ and -MAX_XZ <= pz <= MAX_XZ and MIN_Y <= py <= MAX_Y):
            return None
        key = _chunk_key1(px >> CHUNK_SHIFT, pz >> CHUNK_SHIFT)
        c = int(np.searchsorted(self.chunk_keys, key))
        if c >= self.chunk_keys.shape[0] or int(self.chunk_keys[c]) != key:
            return None
        a, b = int(self.chunk_starts[c]), int(self.chunk_starts[c + 1])
        # Rows in a chunk are sorted by xz, then y: narrow one column at a time.
        for col, v in ((self.xz, (px & 15) << 4 | pz & 15), (self.y, py)):
            part = col[a:b]
            lo = int(np.searchsorted(part, v, side="left"))
            hi = int(np.searchsorted(part, v, side="right"))
            a, b = a + lo, a + hi
            if a == b:
                return None
        return a

    def nbytes(self) -> int:
        """Bytes held by the site columns and the chunk index. O(1)."""
        return int(
            self.xz.nbytes
            + self.y.nbytes
            + self.tags.nbytes
            + self.chunk_keys.nbytes
            + self.chunk_starts.nbytes
        )

    # ---- internals ----------------------------------------------------------------------------

    def _row(self, i: int) -> int:
        n = len(self)
        i = int(i)
        if not 0 <= i < n:
            raise IndexError(f"site index {i} out of range for {n} sites")
        return i

    def _ranges(self, x0: int, x1: int, z0: int, z1: int) -> tuple[I64, I64]:
        """Chunk ranges [start, end) of the chunks overlapping columns x0..x1, z0..z1, ascending."""
        keys = self.chunk_keys
        k = keys.shape[0]
        if k == 0:
            return _empty(), _empty()
        cx0, cx1 = x0 >> CHUNK_SHIFT, x1 >> CHUNK_SHIFT
        cz0, cz1 = z0 >> CHUNK_SHIFT, z1 >> CHUNK_SHIFT
        a = int(np.searchsorted(keys, _chunk_key1(cx0, cz0)))
        b = int(np.searchsorted(keys, _chunk_key1(cx1, cz1), side="right"))
        if a >= b:
            return _empty(), _empty()
        # Only chunk columns that hold chunks in [a, b) matter.
        first_cx = (int(keys[a]) >> CHUNK_BITS) - CHUNK_BIAS
        last_cx = (int(keys[b - 1]) >> CHUNK_BITS) - CHUNK_BIAS
        ncols = last_cx - first_cx + 1
        if ncols * 2 * max(1, k.bit_length()) < (b - a):
            # Few chunk columns, many chunks: one binary search pair per chunk column.
            cxs = np.arange(first_cx, last_cx + 1, dtype=np.int64) + CHUNK_BIAS
            ca = np.searchsorted(keys, (cxs << CHUNK_BITS) | (cz0 + CHUNK_BIAS))
            cb = np.searchsorted(keys, (cxs << CHUNK_BITS) | (cz1 + CHUNK_BIAS), side="right")
        else:
            # Many sparse chunk columns: scan the chunks between a and b.
            ccz = (keys[a:b] & ((1 << CHUNK_BITS) - 1)) - CHUNK_BIAS
            hit = np.flatnonzero((ccz >= cz0) & (ccz <= cz1)) + a
            ca, cb = hit, hit + 1
        return ca, cb

    def _select(self, lo: Pos, hi: Pos, any_mask: int, none_mask: int) -> tuple[I64, npt.NDArray[np.bool_] | None]:
        """Candidate rows and a keep mask over them (None: keep all)."""
        for name, m in (("any_mask", any_mask), ("none_mask", none_mask)):
            if not 0 <= int(m) < 1 << MAX_TAGS:
                raise ValidationError(f"{name} must be a 32-bit unsigned mask, got {m}", field=name)
        x0, y0, z0 = (int(v) for v in lo)
        x1, y1, z1 = (int(v) for v in hi)
        # Sites all lie inside the world limits, so clamping the box changes nothing.
        x0, z0, y0 = max(x0, -MAX_XZ), max(z0, -MAX_XZ), max(y0, MIN_Y)
        x1, z1, y1 = min(x1, MAX_XZ), min(z1, MAX_XZ), min(y1, MAX_Y)
        if x0 > x1 or y0 > y1 or z0 > z1:
            return _empty(), None
        ca, cb = self._ranges(x0, x1, z0, z1)
        starts = self.chunk_starts
        rows = _expand_ranges(starts[ca], starts[cb])
        if rows.shape[0] == 0:
            return rows, None
        keep: npt.NDArray[np.bool_] | None = None

        def both(m: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
            return m if keep is None else np.logical_and(keep, m, out=keep)

        # Only the chunks that straddle an edge of the box need a per-site test on x and z: a
        # site's x (z) is its chunk's corner plus the high (low) half of its xz byte.
        if x0 & 15 or (x1 + 1) & 15 or z0 & 15 or (z1 + 1) & 15:
            chunks = _expand_ranges(ca, cb)
            ox, oz = chunk_origins(self.chunk_keys[chunks])
            edge = (ox < x0) | (ox + 15 > x1) | (oz < z0) | (oz + 15 > z1)
            if edge.any():
                first = starts[chunks[edge]]
                lens = starts[chunks[edge] + 1] - first
                at = np.searchsorted(rows, first)  # where those chunks' rows sit in `rows`
                b = self.xz[_expand_ranges(first, first + lens)]
                xs = np.repeat(ox[edge], lens) | (b >> 4)
                zs = np.repeat(oz[edge], lens) | (b & 15)
                keep = np.ones(rows.shape[0], dtype=np.bool_)
                keep[_expand_ranges(at, at + lens)] = (xs >= x0) & (xs <= x1) & (zs >= z0) & (zs <= z1)
        if y0 > MIN_Y or y1 < MAX_Y:
            ys = self.y[rows]
            keep = both((ys >= y0) & (ys <= y1))
        if any_mask or none_mask:
            ts = self.tags[rows]
            if any_mask:
                keep = both((ts & np.uint32(any_mask)) != 0)
            if none_mask:
                keep = both((ts & np.uint32(none_mask)) == 0)
        return rows, keep

    def fault(self) -> str | None:
        """The first broken invariant (order, duplicates, index, tag bits, limits) in words, or None. O(n).

        The checks a pack from outside must pass before it is served (`cairn.worlds.pack.validate`).
        """
        n = len(self)
        keys, starts = self.chunk_keys, self.chunk_starts
        if starts.shape[0] != keys.shape[0] + 1 or int(starts[0]) != 0 or int(starts[-1]) != n:
            return "the chunk index does not cover the sites"
        if n and bool(np.any(np.diff(starts) <= 0)):
            return "the chunk index has an empty or backwards chunk"
        if bool(np.any(np.diff(keys) <= 0)):
            return "the chunk keys are not strictly rising"
        names = self.tag_names
        if len(names) < MAX_TAGS and n and int(self.tags.max()) >> len(names):
            return f"a site uses a tag bit beyond the {len(names)} tag names"
        if n == 0:
            return None
        if int(self.y.min()) < MIN_Y or int(self.y.max()) > MAX_Y:
            return "a site lies outside the world limits"
        ox, oz = chunk_origins(keys)
        if min(int(ox.min()), int(oz.min())) < -MAX_XZ or max(int(ox.max()), int(oz.max())) + 15 > MAX_XZ:
            # A chunk reaches past the limits: look at its sites (rare: worlds end well inside them).
            x, z = self.x, self.z
            if min(int(x.min()), int(z.min())) < -MAX_XZ or max(int(x.max()), int(z.max())) > MAX_XZ:
                return "a site lies outside the world limits"
        # Inside a chunk, rows rise by (xz, y): one int32 (xz << 16 | y + 2**15) per row.
        local = (self.xz.astype(np.int32) << 16) | (self.y.astype(np.int32) + (1 << 15))
        same_chunk = np.ones(n - 1, dtype=np.bool_)
        same_chunk[starts[1:-1] - 1] = False
        if not bool(np.all((local[1:] > local[:-1]) | ~same_chunk)):
            return "the sites are not sorted, or two share a position"
        return None

    def _check(self) -> None:
        """Assert every invariant (dtypes, read-only columns, and `fault`). O(n)."""
        names = self.tag_names
        assert len(names) <= MAX_TAGS and len(set(names)) == len(names)
        assert all(isinstance(t, str) and t for t in names)
        arrays: tuple[np.ndarray[Any, Any], ...] = (self.xz, self.y, self.tags, self.chunk_keys, self.chunk_starts)
        for (_, dtype), arr in zip(ARRAY_DTYPES, arrays, strict=True):
            assert arr.dtype == np.dtype(dtype) and arr.ndim == 1
            assert not arr.flags.writeable
        assert self.y.shape[0] == self.tags.shape[0] == len(self)
        problem = self.fault()
        assert problem is None, problem


def build_chunk_index(x: npt.NDArray[np.integer[Any]], z: npt.NDArray[np.integer[Any]]) -> tuple[I64, I64]:
    """Chunk keys and row starts for columns already sorted by chunk key. O(n)."""
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    cx = np.right_shift(x, CHUNK_SHIFT)
    cz = np.right_shift(z, CHUNK_SHIFT)
    change = (cx[1:] != cx[:-1]) | (cz[1:] != cz[:-1])
    first = np.flatnonzero(np.concatenate(([True], change)))
    keys = chunk_key(x[first], z[first])
    starts = np.append(first, n).astype(np.int64)
    return keys, starts


def _extent(pos: np.ndarray[Any, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-axis min and max of (n, 3) positions; raises OutOfBounds naming a site outside the world."""
    lo = tuple(int(v) for v in pos.min(axis=0))
    hi = tuple(int(v) for v in pos.max(axis=0))
    limits = ((-MAX_XZ, MAX_XZ), (MIN_Y, MAX_Y), (-MAX_XZ, MAX_XZ))
    for axis, (lim_lo, lim_hi) in enumerate(limits):
        if lo[axis] < lim_lo or hi[axis] > lim_hi:
            bad_val = lo[axis] if lo[axis] < lim_lo else hi[axis]
            row = int(np.flatnonzero(pos[:, axis] == bad_val)[0])
            raise OutOfBounds(
                f"site {row} at {[int(v) for v in pos[row]]} is outside the world limits "
                f"(|x|,|z| <= {MAX_XZ}, {MIN_Y} <= y <= {MAX_Y})",
                field="xyz",
            )
    return lo, hi


def _sorted_unique(
    pos: np.ndarray[Any, Any], tags: np.ndarray[Any, Any], lo: tuple[int, ...], hi: tuple[int, ...]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int16], npt.NDArray[np.int32], npt.NDArray[np.uint32]]:
    """Columns sorted by (chunk key, x, z, y), duplicate positions merged by OR-ing their tags.

    Packs each position into one int64 relative to the extent lo..hi, so positions decode from the
    sorted keys; when the row number fits beside it, one SIMD sort of (key, row) replaces argsort.
    Scratch memory: about three int64 columns at a time.
    """
    n = pos.shape[0]
    if n == 0:
        i32 = np.zeros(0, dtype=np.int32)
        return i32, np.zeros(0, dtype=np.int16), i32.copy(), np.zeros(0, dtype=np.uint32)
    cx_min, cz_min, y_min = lo[0] >> CHUNK_SHIFT, lo[2] >> CHUNK_SHIFT, lo[1]
    bx = ((hi[0] >> CHUNK_SHIFT) - cx_min).bit_length()
    bz = ((hi[2] >> CHUNK_SHIFT) - cz_min).bit_length()
    by = (hi[1] - y_min).bit_length()
    kbits = bx + bz + 2 * CHUNK_SHIFT + by
    order: I64
    if kbits > 63:
        # Sites spread over most of the world: fall back to a lexicographic sort.
        x, y, z = (pos[:, a].astype(np.int64) for a in range(3))
        order = np.lexsort((y, z, x, chunk_key(x, z)))
        x, y, z = x[order], y[order], z[order]
        dup = (x[1:] == x[:-1]) & (y[1:] == y[:-1]) & (z[1:] == z[:-1])
        xs, ys, zs = x.astype(np.int32), y.astype(np.int16), z.astype(np.int32)
        del x, y, z
    else:
        # key = (cx, cz, x & 15, z & 15, y), each field relative to the extent; one scratch column.
        key = pos[:, 0].astype(np.int64)
        key >>= CHUNK_SHIFT
        key -= cx_min
        key <<= bz
        t = pos[:, 2].astype(np.int64)
        t >>= CHUNK_SHIFT
        t -= cz_min
        key |= t
        for axis in (0, 2):
            key <<= CHUNK_SHIFT
            t[:] = pos[:, axis]
            t &= 15
            key |= t
        key <<= by
        t[:] = pos[:, 1]
        t -= y_min
        key |= t
        del t
        ibits = max(1, (n - 1).bit_length())
        if kbits + ibits <= 63:
            key <<= ibits
            key |= np.arange(n, dtype=np.int64)
            key.sort()
            order = key & ((1 << ibits) - 1)
            key >>= ibits
        else:
            order = np.argsort(key)
            key = key[order]
        dup = key[1:] == key[:-1]
        # Decode the fields back out of the sorted keys, straight into the final dtypes.
        ys = (key & ((1 << by) - 1)).astype(np.int16)
        ys += np.int16(y_min)
        key >>= by
        zs = (key & 15).astype(np.int32)
        key >>= CHUNK_SHIFT
        xs = (key & 15).astype(np.int32)
        key >>= CHUNK_SHIFT
        zs |= (((key & ((1 << bz) - 1)) + cz_min) << CHUNK_SHIFT).astype(np.int32)
        key >>= bz
        key += cx_min
        key <<= CHUNK_SHIFT
        xs |= key.astype(np.int32)
        del key
    ts = tags[order].astype(np.uint32)
    del order
    if n > 1 and dup.any():
        first = np.flatnonzero(np.concatenate(([True], ~dup)))
        ts = np.bitwise_or.reduceat(ts, first).astype(np.uint32)
        xs, ys, zs = xs[first], ys[first], zs[first]
    return xs, ys, zs, ts
