"""Proximity: which players are near which live treasures, as enter/exit events.

Rules (the SPEC's "within a treasure's proximity.radius"):

- Distance is 3D Euclidean, like the dig reach, so a player on the surface does not
  "enter" a treasure in a cave 40 blocks below.
- A player enters when `distance <= radius` and exits only when
  `distance > radius + hysteresis` (2 blocks by default), so someone standing on the edge
  does not flicker in and out.
- `update` returns all exits (sorted by treasure key) then all enters (sorted by key).
- `remove` (claimed, expired, hunt ended) returns an exit for every player inside, sorted
  by player, so every enter is matched by exactly one exit and a plugin can clear its UI.
  `drop_player` (logout) returns nothing: the player is gone.
- `add` returns nothing; a player already inside the new radius gets the enter event on
  their next `update`.

How it stays fast: treasures live in a spatial hash of square cells over (x, z). A
treasure with a radius up to half a cell is listed in the one cell holding its centre;
a bigger one in every cell its radius touches. A full check of a player scans the 3x3
cells around it and leaves a *safe radius*: how far the player may move from that spot
with no event possible (bounded by the distance to the edge of the 3x3 block and by every
scanned treasure's enter or exit sphere). An update within the safe radius costs one dict
lookup and a few integer operations; only the others pay for a scan, whose length
depends on the treasure density, never on the number of treasures or hunts.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from itertools import repeat
from typing import Final

import numpy as np
import numpy.typing as npt

from cairn.core.geometry import Pos

Event = tuple[str, str, str]
"""`(type, player, treasure key)` with type `proximity.enter` or `proximity.exit`."""

ENTER: Final = "proximity.enter"
EXIT: Final = "proximity.exit"

#: Default cell side in blocks (see benchmarks/RESULTS.md, "Proximity", for the choice).
DEFAULT_CELL: Final = 32
#: Default extra distance beyond the radius before a player exits.
DEFAULT_HYSTERESIS: Final = 2

# Cell coordinates are packed into one int: cx * _PACK + cz, with |cz| < _PACK / 2.
_PACK: Final = 1 << 32
_NEIGHBOURS: Final = tuple(dx * _PACK + dz for dx in (-1, 0, 1) for dz in (-1, 0, 1))
#: A check rescans the 3x3 cells when less than this much of the block's safety is left,
#: rather than leave the player a small safe radius (tuned for the default cell, whose
#: scans leave 17 to 32 blocks; correct for any value > 0).
RESCAN_BELOW: Final = 12.0
# Safe radii are shrunk by this much so float rounding can never hide an event.
_EPS: Final = 1e-6

# A treasure: (key, x, y, z, radius, hunt). One tuple, shared by the key map and the cells.
_Entry = tuple[str, int, int, int, int, str]


class _Player:
    __slots__ = ("block", "block2", "bx", "by", "bz", "cands", "cell", "inside", "slot")

    def __init__(self, slot: int) -> None:
        self.slot = slot  # this player's row in ProximityIndex._anchor
        # Block anchor: where the last 3x3 scan ran. Within `block` of it, `cands` holds
        # every treasure the player could enter.
        self.bx = self.by = self.bz = 0
        self.block = self.block2 = 0.0
        self.cands: tuple[_Entry, ...] = ()
        self.cell: int | None = None
        self.inside: set[str] = set()


class ProximityIndex:
    """Live treasures of one world and the players near them.

    Complexity: `update` is O(1) amortised for a bounded treasure density: one dict lookup
    while the player stays within its safe radius, else a check of its cached candidates,
    else a scan of 3x3 cells. `add` and `remove` are O(cells touched + players near).

    >>> ix = ProximityIndex()
    >>> ix.add("hunt#1", "hunt", (0, 64, 0), 16)
    >>> ix.update("ana", (10, 64, 0))
    [('proximity.enter', 'ana', 'hunt#1')]
    >>> ix.update("ana", (17, 64, 0)), ix.update("ana", (19, 64, 0))
    ([], [('proximity.exit', 'ana', 'hunt#1')])
    """

    __slots__ = (
        "_anchor",
        "_anchored",
        "_cell",
        "_cells",
        "_free",
        "_occupants",
        "_players",
        "_slot",
        "_small",
        "_treasures",
        "checks",
        "hysteresis",
        "scans",
    )

    def __init__(self, cell: int = DEFAULT_CELL, hysteresis: int = DEFAULT_HYSTERESIS) -> None:
        if cell < 2:
            raise ValueError(f"cell side must be >= 2, got {cell}")
        if not 0 <= hysteresis <= cell // 2:
            raise ValueError(f"hysteresis must be within 0..{cell // 2}, got {hysteresis}")
        self._cell = cell
        # Radii up to this are listed in one cell; the block safety allows for them.
        self._small = cell // 2
        self.hysteresis = hysteresis
        self._treasures: dict[str, _Entry] = {}
        self._cells: dict[int, tuple[_Entry, ...]] = {}
        self._players: dict[str, _Player] = {}
        # The fast path's state, one row of 4 doubles per player slot: x, y, z where the last
        # check ran and safe2, the squared radius around it within which no event is
        # possible. Flat doubles keep the hot data small and let `update_many` read it
        # with numpy.
        self._slot: dict[str, int] = {}
        self._anchor = array("d")
        self._free: list[int] = []
        # Players by the cell of their block anchor, to invalidate them when a treasure
        # near them is added or removed.
        self._anchored: dict[int, set[str]] = {}
        # Players inside each treasure, for `remove`.
        self._occupants: dict[str, set[str]] = {}
        #: Updates that went past the fast path (metrics), and of those, the 3x3 scans.
        self.checks = 0
        self.scans = 0

    # --- treasures ----------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of live treasures."""
        return len(self._treasures)

    def __contains__(self, key: object) -> bool:
        return key in self._treasures

    def hunt_of(self, key: str) -> str:
        """The hunt of a live treasure (for the event envelope)."""
        return self._treasures[key][5]

    def _cells_of(self, x: int, z: int, r: int) -> list[int]:
        """The cells a treasure is listed in: its own, or all its radius touches if big."""
        c = self._cell
        if r <= self._small:
            return [(x // c) * _PACK + z // c]
        return [
            cx * _PACK + cz
            for cx in range((x - r) // c, (x + r) // c + 1)
            for cz in range((z - r) // c, (z + r) // c + 1)
        ]

    def _invalidate_near(self, cells: list[int]) -> None:
        """Force a 3x3 scan on the next update of every player whose last scan covered `cells`."""
        touched = {ck + n for ck in cells for n in _NEIGHBOURS}
        anchored, players, anchor = self._anchored, self._players, self._anchor
        for ck in touched:
            for p in anchored.get(ck, ()):
                st = players[p]
                st.block2 = 0.0
                anchor[4 * st.slot + 3] = 0.0

    def add(self, key: str, hunt: str, pos: Pos, radius: int) -> None:
        """Start watching treasure `key` (like `friday-night#3`). O(cells touched + players near)."""
        if key in self._treasures:
            raise ValueError(f"treasure {key!r} is already in the proximity index")
        if radius < 0:
            raise ValueError(f"proximity radius must be >= 0, got {radius}")
        x, y, z = pos
        entry: _Entry = (key, x, y, z, radius, hunt)
        self._treasures[key] = entry
        cells = self._cells
        listed = self._cells_of(x, z, radius)
        for ck in listed:
            cells[ck] = (*cells.get(ck, ()), entry)
        self._invalidate_near(listed)

    def remove(self, key: str) -> list[Event]:
        """Stop watching `key`; returns an exit for each player inside, sorted by player.

        Removing an unknown key returns [] (idempotent).
        """
        entry = self._treasures.pop(key, None)
        if entry is None:
            return []
        cells = self._cells
        listed = self._cells_of(entry[1], entry[3], entry[4])
        for ck in listed:
            rest = tuple(e for e in cells[ck] if e is not entry)
            if rest:
                cells[ck] = rest
            else:
                del cells[ck]
        # Cached candidate lists may hold the entry: rescan those players.
        self._invalidate_near(listed)
        occupants = self._occupants.pop(key, set())
        for p in occupants:
            self._players[p].inside.discard(key)
        return [(EXIT, p, key) for p in sorted(occupants)]

    # --- players --------------------------------------------------------------------------

    def update(self, player: str, pos: Pos) -> list[Event]:
        """Move `player` to `pos`; returns exits (sorted by key) then enters (sorted by key).

        O(1) while the player stays within its safe radius; else a check of a few cached
        candidates, or a 3x3 cell scan.
        """
        x, y, z = pos
        slot = self._slot.get(player)
        if slot is not None:
            a, i = self._anchor, 4 * slot
            dx, dy, dz = x - a[i], y - a[i + 1], z - a[i + 2]
            if dx * dx + dy * dy + dz * dz < a[i + 3]:
                return []
        return self._check_player(player, x, y, z)

    def update_many(
        self,
        players: Sequence[str],
        xs: Sequence[int] | npt.NDArray[np.integer],
        ys: Sequence[int] | npt.NDArray[np.integer],
        zs: Sequence[int] | npt.NDArray[np.integer],
    ) -> list[Event]:
        """`update(players[i], (xs[i], ys[i], zs[i]))` for each i in order, events concatenated.

        Same result as the loop; the fast-path test runs vectorised with numpy, so only
        the updates that may cause an event pay for Python work. For a positions request
        or a tick frame carrying many updates.
        """
        n = len(players)
        if not len(xs) == len(ys) == len(zs) == n:
            raise ValueError(f"update_many needs equal lengths, got {n}, {len(xs)}, {len(ys)}, {len(zs)}")
        if n == 0:
            return []
        px = np.asarray(xs, dtype=np.int64)
        py = np.asarray(ys, dtype=np.int64)
        pz = np.asarray(zs, dtype=np.int64)
        slots = np.fromiter(map(self._slot.get, players, repeat(-1)), dtype=np.intp, count=n)
        if len(set(players)) != n or not self._anchor:
            # A player twice in one batch: later rows depend on earlier ones, so go one by one.
            todo: list[int] = list(range(n))
            check = self._update_xyz
        else:
            known = slots >= 0
            rows = np.frombuffer(self._anchor, dtype=np.float64).reshape(-1, 4)[np.where(known, slots, 0)]
            d2 = (px - rows[:, 0]) ** 2 + (py - rows[:, 1]) ** 2 + (pz - rows[:, 2]) ** 2
            todo = np.flatnonzero(~(known & (d2 < rows[:, 3]))).tolist()
            check = self._check_player
        events: list[Event] = []
        if todo:
            sel = np.array(todo, dtype=np.intp)
            for i, x, y, z in zip(todo, px[sel].tolist(), py[sel].tolist(), pz[sel].tolist(), strict=True):
                evs = check(players[i], x, y, z)
                if evs:
                    events += evs
        return events

    def _update_xyz(self, player: str, x: int, y: int, z: int) -> list[Event]:
        return self.update(player, (x, y, z))

    def _check_player(self, player: str, x: int, y: int, z: int) -> list[Event]:
        """The slow path: events at (x, y, z) and a new safe radius around it."""
        self.checks += 1
        st = self._players.get(player)
        if st is None:
            st = self._new_player(player)
        dx, dy, dz = x - st.bx, y - st.by, z - st.bz
        d2 = dx * dx + dy * dy + dz * dz
        safe = st.block - math.sqrt(d2) if d2 < st.block2 else 0.0  # the block's safety left here
        if safe < RESCAN_BELOW:
            safe = self._scan(player, st, x, y, z)
        inside = st.inside
        h = self.hysteresis
        exits: list[str] = []
        if inside:
            treasures = self._treasures
            for key in inside:
                _, tx, ty, tz, r, _ = treasures[key]
                d2 = (x - tx) * (x - tx) + (y - ty) * (y - ty) + (z - tz) * (z - tz)
                out = r + h
                if d2 > out * out:
                    exits.append(key)
                    m = math.sqrt(d2) - r  # from now on it may be entered again
                else:
                    m = out - math.sqrt(d2)
                if m < safe:
                    safe = m
        enters: list[str] = []
        for key, tx, ty, tz, r, _ in st.cands:
            if inside and key in inside:
                continue  # handled above; one that just exited is beyond r + h: no re-enter
            d2 = (x - tx) * (x - tx) + (y - ty) * (y - ty) + (z - tz) * (z - tz)
            if d2 <= r * r:
                enters.append(key)
                m = r + h - math.sqrt(d2)
            else:
                m = math.sqrt(d2) - r
            if m < safe:
                safe = m
        safe -= _EPS
        a, i = self._anchor, 4 * st.slot
        a[i], a[i + 1], a[i + 2], a[i + 3] = x, y, z, (safe * safe if safe > 0.0 else 0.0)
        if not exits and not enters:
            return []
        events: list[Event] = []
        occupants = self._occupants
        if exits:
            exits.sort()
            for key in exits:
                inside.discard(key)
                occ = occupants[key]
                occ.discard(player)
                if not occ:
                    del occupants[key]
                events.append((EXIT, player, key))
        if enters:
            enters.sort()
            for key in enters:
                inside.add(key)
                occupants.setdefault(key, set()).add(player)
                events.append((ENTER, player, key))
        return events

    def _scan(self, player: str, st: _Player, x: int, y: int, z: int) -> float:
        """Collect the treasures of the 3x3 cells around (x, z) as the player's candidates.

        Returns the block's safety: while the player stays closer than this to (x, y, z),
        no treasure outside the candidates can be entered.
        """
        self.scans += 1
        c, small = self._cell, self._small
        cx, cz = x // c, z // c
        # A small unlisted treasure's centre is beyond the block's edge; a big one's whole
        # radius is.
        block = float(min(x - (cx - 1) * c + 1, (cx + 2) * c - x, z - (cz - 1) * c + 1, (cz + 2) * c - z) - small)
        ck = cx * _PACK + cz
        cells = self._cells
        cands: list[_Entry] = []
        for n in _NEIGHBOURS:
            lst = cells.get(ck + n)
            if lst is not None:
                cands += lst
        for e in cands:
            if e[4] > small:  # big ones are listed in several cells: keep one of each
                cands = list({e[0]: e for e in cands}.values())
                break
        st.cands = tuple(cands)
        st.bx, st.by, st.bz = x, y, z
        st.block = block
        st.block2 = (block - _EPS) ** 2
        if st.cell != ck:
            if st.cell is not None:
                self._unanchor(player, st.cell)
            st.cell = ck
            anchored = self._anchored.get(ck)
            if anchored is None:
                self._anchored[ck] = {player}
            else:
                anchored.add(player)
        return block

    def _new_player(self, player: str) -> _Player:
        if self._free:
            slot = self._free.pop()
        else:
            slot = len(self._anchor) // 4
            self._anchor.extend((0.0, 0.0, 0.0, 0.0))
        st = self._players[player] = _Player(slot)
        self._slot[player] = slot
        return st

    def _unanchor(self, player: str, ck: int) -> None:
        s = self._anchored[ck]
        s.discard(player)
        if not s:
            del self._anchored[ck]

    def drop_player(self, player: str) -> None:
        """Forget `player` (logout) without events. Idempotent."""
        st = self._players.pop(player, None)
        if st is None:
            return
        del self._slot[player]
        self._anchor[4 * st.slot + 3] = 0.0
        self._free.append(st.slot)
        if st.cell is not None:
            self._unanchor(player, st.cell)
        for key in st.inside:
            occ = self._occupants[key]
            occ.discard(player)
            if not occ:
                del self._occupants[key]

    def inside(self, player: str) -> frozenset[str]:
        """The treasure keys `player` is currently inside."""
        st = self._players.get(player)
        return frozenset(st.inside) if st is not None else frozenset()

    def players_inside(self, key: str) -> frozenset[str]:
        """The players currently inside treasure `key`."""
        return frozenset(self._occupants.get(key, ()))

    @property
    def player_count(self) -> int:
        return len(self._players)

    # --- invariants -------------------------------------------------------------------------

    def _check(self) -> None:
        """Assert every invariant (for tests). O(players x treasures)."""
        c, h, small = self._cell, self.hysteresis, self._small
        listed: dict[int, int] = {}
        for key, entry in self._treasures.items():
            k, x, _, z, r, _ = entry
            assert k == key and r >= 0, key
            for ck in self._cells_of(x, z, r):
                assert sum(e is entry for e in self._cells[ck]) == 1, (key, ck)
                listed[ck] = listed.get(ck, 0) + 1
        assert {ck: len(lst) for ck, lst in self._cells.items()} == listed
        assert self._slot == {p: st.slot for p, st in self._players.items()}
        assert sorted([*self._slot.values(), *self._free]) == list(range(len(self._anchor) // 4))
        occupants: dict[str, set[str]] = {}
        anchored: dict[int, set[str]] = {}
        for p, st in self._players.items():
            for key in st.inside:
                assert key in self._treasures, (p, key)
                occupants.setdefault(key, set()).add(p)
            i = 4 * st.slot
            ax, ay, az, safe2 = self._anchor[i], self._anchor[i + 1], self._anchor[i + 2], self._anchor[i + 3]
            for key in st.inside:
                _, tx, ty, tz, r, _ = self._treasures[key]
                assert math.dist((ax, ay, az), (tx, ty, tz)) <= r + h + 1e-9, (p, key)
            assert st.cell is not None, p  # a player is only created by a check, which scans
            anchored.setdefault(st.cell, set()).add(p)
            bx, bz = st.bx // c, st.bz // c
            assert st.cell == bx * _PACK + bz, p
            edge = min(st.bx - (bx - 1) * c + 1, (bx + 2) * c - st.bx, st.bz - (bz - 1) * c + 1, (bz + 2) * c - st.bz)
            assert st.block == edge - small, p
            if st.block2 == 0.0:
                assert safe2 == 0.0, p  # an invalidated block invalidates the fast path too
                continue
            block = {e[0]: e for n in _NEIGHBOURS for e in self._cells.get(st.cell + n, ())}
            assert sorted(block) == sorted(e[0] for e in st.cands), p
            assert all(block[e[0]] is e for e in st.cands), p
            if safe2 == 0.0:
                continue
            safe = math.sqrt(safe2)
            assert safe + math.dist((ax, ay, az), (st.bx, st.by, st.bz)) <= st.block + 1e-9, p
            for key, tx, ty, tz, r, _ in self._treasures.values():
                d = math.dist((ax, ay, az), (tx, ty, tz))
                if key in st.inside:
                    assert safe <= r + h - d + 1e-9, (p, key)
                else:
                    assert d > r and safe <= d - r + 1e-9, (p, key)
        assert occupants == self._occupants
        assert anchored == self._anchored
