"""Placement: choose a hunt's treasure sites, honouring area, tags, spacing and exclusions.

A pure function of (secret, spec, seed, site set, treasures to avoid): `cairn hunt verify`
recomputes it bit for bit. Spacing and exclusions are horizontal (columns), because players
and hints think in columns: a cave treasure under a surface one is "the same place".

`LiveTreasures` is what placement avoids: the live treasures of one world, by cell, so that
gathering the ones near a new hunt's area costs what is near it, not what is in the world.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from cairn.core import rng
from cairn.core.errors import PlacementInfeasible
from cairn.core.geometry import Pos
from cairn.core.sites import SiteSet
from cairn.core.spec import HuntSpec

#: Candidates tested at once, at most; the first blocks are smaller (a hunt usually needs few).
BLOCK: Final = 4096
FIRST_BLOCK: Final = 64
#: log2 of the side of a `LiveTreasures` cell, in columns.
CELL_SHIFT: Final = 8

I64 = npt.NDArray[np.int64]


class Placed(NamedTuple):
    """The result of `place`."""

    sites: list[int]  # site indices, in treasure order
    blockers: list[int]  # indices into `avoid` of the positions that ruled out a candidate, ascending


def placement_key(secret: bytes, spec: HuntSpec) -> bytes:
    """The key every random choice of a hunt derives from: secret, hunt id and seed."""
    return rng.derive(secret, "hunt", spec.id, spec.seed if spec.seed is not None else spec.id)


def avoid_box(spec: HuntSpec) -> tuple[int, int, int, int]:
    """The columns `(x0, z0, x1, z1)`, inclusive, whose treasures can be too close to a site of the area."""
    gap = spec.spawn.min_spacing
    lo, hi = spec.area.min, spec.area.max
    return lo[0] - gap + 1, lo[2] - gap + 1, hi[0] + gap - 1, hi[2] + gap - 1


def eligible(spec: HuntSpec, sites: SiteSet) -> np.ndarray:
    """Indices of the sites inside the area with the right tags and outside every exclusion."""
    s = spec.spawn
    lo = (spec.area.min[0], spec.area.min[1], spec.area.min[2])
    hi = (spec.area.max[0], spec.area.max[1], spec.area.max[2])
    idx = sites.query(lo, hi, sites.mask(s.tags_any, "spawn.tags_any"), sites.mask(s.tags_none, "spawn.tags_none"))
    if s.exclude and len(idx):
        xyz = sites.positions(idx)
        keep = np.ones(len(idx), dtype=bool)
        for ex in s.exclude:
            dx = xyz[:, 0] - ex.center[0]
            dz = xyz[:, 2] - ex.center[2]
            keep &= dx * dx + dz * dz > ex.radius * ex.radius
        idx = idx[keep]
    return idx


def _too_close(xz: I64, ref: I64, spacing: int) -> tuple[I64, I64]:
    """The pairs (row of `xz`, row of `ref`) closer than `spacing`; `ref` sorted by x.

    Only the points of `ref` in a window of x around each row are compared, so the cost is the
    number of such pairs, not len(xz) * len(ref).
    """
    fx = ref[:, 0]
    lo = np.searchsorted(fx, xz[:, 0] - spacing, side="right")
    hi = np.searchsorted(fx, xz[:, 0] + spacing, side="left")
    n = hi - lo
    total = int(n.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(xz), dtype=np.int64), n)
    cols = np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(n) - n), n)
    d = xz[rows] - ref[cols]
    hit = (d * d).sum(axis=1) < spacing * spacing
    return rows[hit], cols[hit]


def place(key: bytes, spec: HuntSpec, sites: SiteSet, avoid: Sequence[Pos] = ()) -> Placed:
    """Site indices for the hunt's treasures, in treasure order, and the positions of `avoid` that mattered.

    Candidates are visited in a permutation seeded by `key`; a candidate is taken when it is at
    least `min_spacing` (horizontal) from every treasure taken and every position in `avoid`.
    `blockers` lists the positions of `avoid` that ruled out a candidate visited: placing again
    with only those to avoid gives the same sites. Raises PlacementInfeasible with the counts
    when fewer than `spec.treasures` fit. O(E) for E eligible sites, plus the candidates visited
    times the positions of `avoid` and of the taken within `min_spacing` of them on the x axis.
    """
    idx = eligible(spec, sites)
    want, spacing = spec.treasures, spec.spawn.min_spacing
    order = idx[rng.generator(key).permutation(len(idx))] if len(idx) else idx
    taken: list[int] = []
    blockers: set[int] = set()
    if spacing <= 0:
        taken = [int(i) for i in order[:want]]
    else:
        fixed = np.array([(p[0], p[2]) for p in avoid], dtype=np.int64).reshape(-1, 2)
        by_x = np.argsort(fixed[:, 0], kind="stable")
        fixed = fixed[by_x]
        s2 = spacing * spacing
        chosen = np.empty((want, 2), dtype=np.int64)
        k = 0
        start = 0
        while start < len(order) and k < want:
            size = min(BLOCK, max(FIRST_BLOCK, 2 * (want - k)))
            block = sites.positions(order[start : start + size])[:, [0, 2]]
            ok = np.ones(len(block), dtype=bool)
            f_rows, f_cols = _too_close(block, fixed, spacing)
            ok[f_rows] = False
            k0 = k
            if k0:
                prev = chosen[:k0][np.argsort(chosen[:k0, 0], kind="stable")]
                ok[_too_close(block, prev, spacing)[0]] = False
            seen = len(block)  # candidates of this block visited
            for j in np.flatnonzero(ok).tolist():
                c = block[j]
                if k > k0:
                    d = chosen[k0:k] - c
                    if int((d * d).sum(axis=1).min()) < s2:
                        continue
                chosen[k] = c
                taken.append(int(order[start + j]))
                k += 1
                if k == want:
                    seen = j + 1
                    break
            blockers.update(by_x[f_cols[f_rows < seen]].tolist())
            start += len(block)
    if len(taken) < want:
        raise PlacementInfeasible(
            f"placed {len(taken)} of {want} with min_spacing={spacing}; {len(idx):,} eligible sites",
            field="treasures",
            placed=len(taken),
            wanted=want,
            eligible=len(idx),
        )
    return Placed(taken, sorted(blockers))


class _Cell:
    __slots__ = ("pts", "stamp")

    def __init__(self) -> None:
        self.pts: list[Pos] = []
        self.stamp = 0  # `LiveTreasures.clock` when a treasure was last added here


class LiveTreasures:
    """The positions of a world's live treasures, by cell of 256 x 256 columns: what placement avoids.

    `within` and `added_since` visit the cells of a box, or every occupied cell when there are
    fewer: O(min(cells of the box, occupied cells) + treasures listed in them). `add` is O(1)
    per position; `remove` O(treasures in the cell).

    >>> live = LiveTreasures()
    >>> live.add([(10, 64, 10), (600, 64, 600)]); mark = live.clock
    >>> live.within(0, 0, 100, 100), live.added_since(mark, 0, 0, 100, 100)
    ([(10, 64, 10)], False)
    >>> live.add([(20, 64, 20)]); live.added_since(mark, 0, 0, 100, 100), live.added_since(mark, 500, 500, 700, 700)
    (True, False)
    """

    __slots__ = ("_cells", "_count", "clock")

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], _Cell] = {}
        self._count = 0
        #: Rises by one on each `add`; `added_since` compares against a value read earlier.
        self.clock = 0

    def __len__(self) -> int:
        return self._count

    def add(self, positions: Iterable[Pos]) -> None:
        """Add the treasures of one hunt."""
        self.clock += 1
        cells = self._cells
        for p in positions:
            key = (p[0] >> CELL_SHIFT, p[2] >> CELL_SHIFT)
            c = cells.get(key)
            if c is None:
                c = cells[key] = _Cell()
            c.pts.append(p)
            c.stamp = self.clock
            self._count += 1

    def remove(self, p: Pos) -> None:
        """Remove one treasure at `p` (claimed, expired or its hunt dropped)."""
        key = (p[0] >> CELL_SHIFT, p[2] >> CELL_SHIFT)
        c = self._cells[key]
        c.pts.remove(p)
        self._count -= 1
        if not c.pts:
            # A plan that could not see the treasures added here cannot be hurt by them once gone.
            del self._cells[key]

    def _cells_in(self, x0: int, z0: int, x1: int, z1: int) -> Iterator[_Cell]:
        cells = self._cells
        cx0, cz0, cx1, cz1 = x0 >> CELL_SHIFT, z0 >> CELL_SHIFT, x1 >> CELL_SHIFT, z1 >> CELL_SHIFT
        if cx1 < cx0 or cz1 < cz0:
            return
        if (cx1 - cx0 + 1) * (cz1 - cz0 + 1) <= len(cells):
            for cx in range(cx0, cx1 + 1):
                for cz in range(cz0, cz1 + 1):
                    c = cells.get((cx, cz))
                    if c is not None:
                        yield c
        else:
            for (cx, cz), c in cells.items():
                if cx0 <= cx <= cx1 and cz0 <= cz <= cz1:
                    yield c

    def within(self, x0: int, z0: int, x1: int, z1: int) -> list[Pos]:
        """The live treasures in columns x0..x1, z0..z1 (inclusive)."""
        return [p for c in self._cells_in(x0, z0, x1, z1) for p in c.pts if x0 <= p[0] <= x1 and z0 <= p[2] <= z1]

    def added_since(self, mark: int, x0: int, z0: int, x1: int, z1: int) -> bool:
        """Whether a treasure added after `clock` was `mark` may still be live in columns x0..x1, z0..z1.

        Conservative: true as well when one was added and removed since, next to one still there.
        """
        return any(c.stamp > mark for c in self._cells_in(x0, z0, x1, z1))

    def _check(self) -> None:
        assert self._count == sum(len(c.pts) for c in self._cells.values())
        for (cx, cz), c in self._cells.items():
            assert c.pts, "an empty cell is dropped"
            assert 0 < c.stamp <= self.clock
            for p in c.pts:
                assert (p[0] >> CELL_SHIFT, p[2] >> CELL_SHIFT) == (cx, cz)
