"""Block positions, boxes, distances and compass bearings.

Positions are integer block coordinates `(x, y, z)`, y up, north is -z.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from cairn.core.errors import OutOfBounds

MAX_XZ = 30_000_000
MIN_Y = -2048
MAX_Y = 4096

Pos = tuple[int, int, int]

BEARINGS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


class Box(NamedTuple):
    """An axis-aligned box of blocks, both corners inclusive."""

    min: Pos
    max: Pos

    def contains(self, p: Pos) -> bool:
        lo, hi = self.min, self.max
        return lo[0] <= p[0] <= hi[0] and lo[1] <= p[1] <= hi[1] and lo[2] <= p[2] <= hi[2]


def check_pos(p: Pos, field: str = "pos") -> Pos:
    """Return `p` if it lies inside the world limits, else raise `OutOfBounds`."""
    x, y, z = p
    if not (-MAX_XZ <= x <= MAX_XZ and -MAX_XZ <= z <= MAX_XZ and MIN_Y <= y <= MAX_Y):
        raise OutOfBounds(
            f"position {list(p)} is outside the world limits (|x|,|z| <= {MAX_XZ}, {MIN_Y} <= y <= {MAX_Y})",
            field=field,
        )
    return p


def dist2(a: Pos, b: Pos) -> int:
    """Squared Euclidean distance, exact in integers."""
    dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return dx * dx + dy * dy + dz * dz


def dist(a: Pos, b: Pos) -> float:
    return math.sqrt(dist2(a, b))


def hdist(a: Pos, b: Pos) -> float:
    """Horizontal (x, z) distance."""
    return math.hypot(a[0] - b[0], a[2] - b[2])


def chebyshev(a: Pos, b: Pos) -> int:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1]), abs(a[2] - b[2]))


def bearing(frm: Pos, to: Pos) -> str:
    """The 8-point compass direction from `frm` to `to` (north is -z, east is +x).

    >>> bearing((0, 0, 0), (0, 0, -10))
    'N'
    >>> bearing((0, 0, 0), (10, 0, 10))
    'SE'
    """
    dx, dz = to[0] - frm[0], to[2] - frm[2]
    if dx == 0 and dz == 0:
        return "N"
    # Angle clockwise from north, in degrees.
    angle = math.degrees(math.atan2(dx, -dz)) % 360.0
    return BEARINGS[int((angle + 22.5) // 45.0) % 8]


def bearing_angle(name: str) -> float:
    """The centre angle of a compass point, clockwise from north, in degrees."""
    return BEARINGS.index(name) * 45.0
