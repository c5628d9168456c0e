"""Placement: choose a hunt's treasure sites, honouring area, tags, spacing and exclusions.

A pure function of (secret, spec, seed, site set, treasures to avoid): `cairn hunt verify`
recomputes it bit for bit. Spacing and exclusions are horizontal (columns), because players
and hints think in columns: a cave treasure under a surface one is "the same place".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cairn.core import rng
from cairn.core.errors import PlacementInfeasible
from cairn.core.geometry import Pos
from cairn.core.sites import SiteSet
from cairn.core.spec import HuntSpec

BLOCK = 4096


def placement_key(secret: bytes, spec: HuntSpec) -> bytes:
    """The key every random choice of a hunt derives from: secret, hunt id and seed."""
    return rng.derive(secret, "hunt", spec.id, spec.seed if spec.seed is not None else spec.id)


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


def place(key: bytes, spec: HuntSpec, sites: SiteSet, avoid: Sequence[Pos] = ()) -> list[int]:
    """Site indices for the hunt's treasures, in treasure order.

    Candidates are visited in a permutation seeded by `key`; a candidate is taken when it is at
    least `min_spacing` (horizontal) from every treasure taken and every position in `avoid`.
    Raises PlacementInfeasible with the counts when fewer than `spec.treasures` fit.
    O(E) for E eligible sites, vectorised in blocks.
    """
    idx = eligible(spec, sites)
    want, spacing = spec.treasures, spec.spawn.min_spacing
    order = idx[rng.generator(key).permutation(len(idx))] if len(idx) else idx
    taken: list[int] = []
    if spacing <= 0:
        taken = [int(i) for i in order[:want]]
    else:
        xz = sites.positions(order)[:, [0, 2]] if len(order) else np.empty((0, 2), dtype=np.int64)
        fixed = np.array([(p[0], p[2]) for p in avoid], dtype=np.int64).reshape(-1, 2)
        s2 = spacing * spacing
        chosen = np.empty((want, 2), dtype=np.int64)
        k = 0
        for start in range(0, len(order), BLOCK):
            block = xz[start : start + BLOCK]
            ok = np.ones(len(block), dtype=bool)
            for ref in (fixed, chosen[:k]):
                if len(ref):
                    d = block[:, None, :] - ref[None, :, :]
                    ok &= (d * d).sum(axis=2).min(axis=1) >= s2
            for j in np.flatnonzero(ok):
                c = block[j]
                if k:
                    d = chosen[:k] - c
                    if int((d * d).sum(axis=1).min()) < s2:
                        continue
                chosen[k] = c
                taken.append(int(order[start + j]))
                k += 1
                if k == want:
                    break
            if k == want:
                break
    if len(taken) < want:
        raise PlacementInfeasible(
            f"placed {len(taken)} of {want} with min_spacing={spacing}; {len(idx):,} eligible sites",
            field="treasures",
            placed=len(taken),
            wanted=want,
            eligible=len(idx),
        )
    return taken
