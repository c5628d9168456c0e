"""ProximityIndex: scripted command/expected-reply lists (Tile38 style) and a seeded stress test."""

from __future__ import annotations

import math
import os
import random
from typing import Any

import pytest

from cairn.core.proximity import ENTER, EXIT, ProximityIndex

Step = tuple[Any, ...]


def run_script(ix: ProximityIndex, script: list[Step]) -> None:
    """Run (command, *args, expected) rows; `_check()` after each one."""
    for n, (cmd, *args, expected) in enumerate(script):
        got: object
        if cmd == "add":
            ix.add(*args)
            got = None
        elif cmd == "update":
            got = ix.update(*args)
        elif cmd == "remove":
            got = ix.remove(*args)
        elif cmd == "drop":
            ix.drop_player(*args)
            got = None
        elif cmd == "inside":
            got = ix.inside(*args)
        elif cmd == "occupants":
            got = ix.players_inside(*args)
        else:
            raise AssertionError(f"unknown command {cmd!r}")
        assert got == expected, f"step {n}: {cmd} {args}"
        ix._check()


def enter(player: str, key: str) -> tuple[str, str, str]:
    return (ENTER, player, key)


def exit_(player: str, key: str) -> tuple[str, str, str]:
    return (EXIT, player, key)


def test_enter_exit_and_reenter_with_hysteresis() -> None:
    run_script(
        ProximityIndex(),
        [
            ("add", "h#1", "h", (0, 64, 0), 16, None),
            ("update", "ana", (100, 64, 0), []),
            ("update", "ana", (17, 64, 0), []),
            ("update", "ana", (16, 64, 0), [enter("ana", "h#1")]),  # distance == radius enters
            ("inside", "ana", frozenset({"h#1"})),
            ("update", "ana", (18, 64, 0), []),  # radius + hysteresis still inside
            ("update", "ana", (19, 64, 0), [exit_("ana", "h#1")]),
            ("inside", "ana", frozenset()),
            ("update", "ana", (17, 64, 0), []),  # outside again: needs <= radius to re-enter
            ("update", "ana", (10, 64, 0), [enter("ana", "h#1")]),
        ],
    )


def test_standing_on_the_edge_does_not_flicker() -> None:
    script: list[Step] = [
        ("add", "h#1", "h", (0, 64, 0), 16, None),
        ("update", "ana", (16, 64, 0), [enter("ana", "h#1")]),
    ]
    for x in (17, 18, 17, 16, 18, 15, 18, 17, 16, 18):
        script.append(("update", "ana", (x, 64, 0), []))
    script.append(("update", "ana", (12, 64, 13), []))  # diagonal, distance 17.7
    script.append(("update", "ana", (13, 64, 13), [exit_("ana", "h#1")]))  # 18.38 > 18
    run_script(ProximityIndex(), script)


def test_distance_is_3d() -> None:
    run_script(
        ProximityIndex(),
        [
            ("add", "h#1", "h", (0, 20, 0), 16, None),
            ("update", "ana", (0, 37, 0), []),  # right above, 17 blocks up
            ("update", "ana", (0, 36, 0), [enter("ana", "h#1")]),
            ("update", "ana", (0, 38, 0), []),
            ("update", "ana", (0, 39, 0), [exit_("ana", "h#1")]),
            ("update", "ana", (3, 20, 4), [enter("ana", "h#1")]),
        ],
    )


def test_teleport_across_the_map() -> None:
    run_script(
        ProximityIndex(),
        [
            ("add", "h#1", "h", (0, 64, 0), 16, None),
            ("add", "far#1", "far", (29_999_990, 64, -29_999_990), 16, None),
            ("update", "ana", (5, 64, 5), [enter("ana", "h#1")]),
            ("update", "ana", (29_999_999, 64, -29_999_999), [exit_("ana", "h#1"), enter("ana", "far#1")]),
            ("update", "ana", (-30_000_000, 64, 30_000_000), [exit_("ana", "far#1")]),
            ("update", "ana", (0, 64, -16), [enter("ana", "h#1")]),
        ],
    )


def test_two_hunts_overlapping_exits_before_enters_each_sorted() -> None:
    run_script(
        ProximityIndex(),
        [
            ("add", "b-hunt#1", "b-hunt", (20, 64, 0), 16, None),
            ("add", "a-hunt#1", "a-hunt", (0, 64, 0), 16, None),
            ("update", "ana", (10, 64, 0), [enter("ana", "a-hunt#1"), enter("ana", "b-hunt#1")]),
            ("update", "ana", (37, 64, 0), [exit_("ana", "a-hunt#1")]),  # b at 17: still inside
            ("update", "ana", (-5, 64, 0), [exit_("ana", "b-hunt#1"), enter("ana", "a-hunt#1")]),
            ("add", "c-hunt#2", "c-hunt", (-10, 64, 0), 8, None),
            ("add", "c-hunt#1", "c-hunt", (-40, 64, 0), 8, None),
            ("update", "ana", (-34, 64, 0), [exit_("ana", "a-hunt#1"), enter("ana", "c-hunt#1")]),
            (
                "update",
                "ana",
                (-10, 64, 3),
                [exit_("ana", "c-hunt#1"), enter("ana", "a-hunt#1"), enter("ana", "c-hunt#2")],
            ),
        ],
    )


def test_treasure_claimed_while_players_inside() -> None:
    run_script(
        ProximityIndex(),
        [
            ("add", "h#1", "h", (0, 64, 0), 16, None),
            ("add", "h#2", "h", (10, 64, 0), 16, None),
            ("update", "zed", (1, 64, 1), [enter("zed", "h#1"), enter("zed", "h#2")]),
            ("update", "ana", (-1, 64, 0), [enter("ana", "h#1"), enter("ana", "h#2")]),
            ("update", "bob", (40, 64, 0), []),
            ("remove", "h#1", [exit_("ana", "h#1"), exit_("zed", "h#1")]),  # sorted by player
            ("occupants", "h#1", frozenset()),
            ("inside", "ana", frozenset({"h#2"})),
            ("update", "ana", (0, 64, 0), []),  # gone: no enter for it
            ("update", "ana", (100, 64, 0), [exit_("ana", "h#2")]),
            ("remove", "h#1", []),  # idempotent
            ("remove", "nope#1", []),
            ("occupants", "h#2", frozenset({"zed"})),
        ],
    )


def test_added_treasure_enters_on_next_update() -> None:
    run_script(
        ProximityIndex(),
        [
            ("update", "ana", (3, 64, 3), []),
            ("update", "bob", (300, 64, 300), []),
            ("add", "h#1", "h", (0, 64, 0), 16, None),
            ("update", "bob", (301, 64, 300), []),
            ("update", "ana", (3, 64, 3), [enter("ana", "h#1")]),
            ("add", "h#2", "h", (2, 64, 2), 4, None),
            ("update", "ana", (3, 64, 3), [enter("ana", "h#2")]),
        ],
    )


def test_drop_player_forgets_without_events() -> None:
    run_script(
        ProximityIndex(),
        [
            ("add", "h#1", "h", (0, 64, 0), 16, None),
            ("update", "ana", (0, 64, 0), [enter("ana", "h#1")]),
            ("drop", "ana", None),
            ("inside", "ana", frozenset()),
            ("occupants", "h#1", frozenset()),
            ("drop", "ana", None),  # idempotent
            ("remove", "h#1", []),
            ("add", "h#1", "h", (0, 64, 0), 16, None),
            ("update", "ana", (0, 64, 0), [enter("ana", "h#1")]),  # a fresh player again
        ],
    )


def test_big_radius_spans_many_cells() -> None:
    ix = ProximityIndex(cell=16)
    script: list[Step] = [
        ("add", "big#1", "big", (0, 64, 0), 100, None),
        ("add", "small#1", "small", (50, 64, 0), 5, None),
        ("update", "ana", (-101, 64, 0), []),
        ("update", "ana", (-100, 64, 0), [enter("ana", "big#1")]),
    ]
    # Walk across the whole disc, cell after cell: no flicker, one exit at the far side.
    for x in range(-99, 103, 3):
        expected: list[tuple[str, str, str]] = []
        if x == 45:
            expected = [enter("ana", "small#1")]
        elif x == 60:  # 10 > 5 + 2; at 57 it is exactly 7
            expected = [exit_("ana", "small#1")]
        script.append(("update", "ana", (x, 64, 0), expected))
    script.append(("update", "ana", (103, 64, 0), [exit_("ana", "big#1")]))
    run_script(ix, script)
    assert ix.hunt_of("big#1") == "big" and "big#1" in ix and len(ix) == 2


def test_update_many_matches_update_and_keeps_input_order() -> None:
    ix = ProximityIndex()
    ix.add("h#1", "h", (0, 64, 0), 16)
    ix.add("h#2", "h", (100, 64, 0), 16)
    assert ix.update_many([], [], [], []) == []
    got = ix.update_many(["zed", "ana", "bob"], [100, 0, 50], [64, 64, 64], [0, 0, 0])
    assert got == [enter("zed", "h#2"), enter("ana", "h#1")]
    ix._check()
    # The same player twice in one batch is applied in order.
    got = ix.update_many(["ana", "ana", "zed"], [100, 0, 100], [64, 64, 64], [0, 0, 0])
    assert got == [exit_("ana", "h#1"), enter("ana", "h#2"), exit_("ana", "h#2"), enter("ana", "h#1")]
    ix._check()
    with pytest.raises(ValueError, match=r"^update_many needs equal lengths, got 1, 1, 0, 1$"):
        ix.update_many(["ana"], [1], [], [1])


def test_errors_are_exact() -> None:
    ix = ProximityIndex()
    ix.add("h#1", "h", (0, 64, 0), 16)
    with pytest.raises(ValueError, match=r"^treasure 'h#1' is already in the proximity index$"):
        ix.add("h#1", "h", (0, 64, 0), 16)
    with pytest.raises(ValueError, match=r"^proximity radius must be >= 0, got -1$"):
        ix.add("h#2", "h", (0, 64, 0), -1)
    with pytest.raises(ValueError, match=r"^cell side must be >= 2, got 1$"):
        ProximityIndex(cell=1)
    with pytest.raises(ValueError, match=r"^hysteresis must be within 0\.\.16, got 17$"):
        ProximityIndex(hysteresis=17)


# --- seeded stress test against the brute-force rule ---------------------------------------


class Model:
    """The rule, O(treasures) per update: what ProximityIndex must match."""

    def __init__(self, hysteresis: int) -> None:
        self.h = hysteresis
        self.treasures: dict[str, tuple[tuple[int, int, int], int]] = {}
        self.inside: dict[str, set[str]] = {}

    def update(self, player: str, pos: tuple[int, int, int]) -> list[tuple[str, str, str]]:
        inside = self.inside.setdefault(player, set())
        exits, enters = [], []
        for key, (tpos, r) in self.treasures.items():
            d = math.dist(pos, tpos)
            if key in inside:
                if d > r + self.h:
                    exits.append(key)
            elif d <= r:
                enters.append(key)
        inside.difference_update(exits)
        inside.update(enters)
        return [exit_(player, k) for k in sorted(exits)] + [enter(player, k) for k in sorted(enters)]

    def remove(self, key: str) -> list[tuple[str, str, str]]:
        if self.treasures.pop(key, None) is None:
            return []
        out = sorted(p for p, s in self.inside.items() if key in s)
        for p in out:
            self.inside[p].discard(key)
        return [exit_(p, key) for p in out]


@pytest.mark.parametrize("cell", [8, 32])
def test_random_actions_match_brute_force(cell: int) -> None:
    seed = int(os.environ.get("CAIRN_TEST_SEED", random.randrange(2**32)))
    print(f"seed={seed} cell={cell} (rerun with CAIRN_TEST_SEED={seed})")
    rng = random.Random(seed)
    ix = ProximityIndex(cell=cell, hysteresis=2)
    model = Model(2)
    players = [f"p{i}" for i in range(8)]
    pos = {p: (rng.randint(-150, 150), rng.randint(0, 40), rng.randint(-150, 150)) for p in players}
    serial = 0
    for step in range(1200):
        roll = rng.random()
        if roll < 0.06 and len(model.treasures) < 60:
            serial += 1
            key = f"h{serial % 5}#{serial}"
            tpos = (rng.randint(-150, 150), rng.randint(0, 40), rng.randint(-150, 150))
            r = rng.choice([0, 3, 8, 16, 16, 40])
            ix.add(key, key.split("#")[0], tpos, r)
            model.treasures[key] = (tpos, r)
        elif roll < 0.10 and model.treasures:
            key = rng.choice(sorted(model.treasures))
            assert ix.remove(key) == model.remove(key), (seed, step)
        elif roll < 0.12:
            p = rng.choice(players)
            ix.drop_player(p)
            model.inside.pop(p, None)
        elif roll < 0.20:
            batch = rng.sample(players, rng.randint(1, len(players)))
            if rng.random() < 0.3:
                batch.append(batch[0])  # a duplicate forces the one-by-one path
            xs, ys, zs, expected = [], [], [], []
            for p in batch:
                x, y, z = pos[p]
                pos[p] = (x + rng.randint(-3, 3), y + rng.randint(-1, 1), z + rng.randint(-3, 3))
                xs.append(pos[p][0])
                ys.append(pos[p][1])
                zs.append(pos[p][2])
                expected += model.update(p, pos[p])
            assert ix.update_many(batch, xs, ys, zs) == expected, (seed, step)
        else:
            p = rng.choice(players)
            x, y, z = pos[p]
            if rng.random() < 0.03:  # teleport
                pos[p] = (rng.randint(-150, 150), rng.randint(0, 40), rng.randint(-150, 150))
            else:
                pos[p] = (x + rng.randint(-3, 3), y + rng.randint(-1, 1), z + rng.randint(-3, 3))
            assert ix.update(p, pos[p]) == model.update(p, pos[p]), (seed, step)
        for p in players:
            assert ix.inside(p) == frozenset(model.inside.get(p, ())), (seed, step, p)
        ix._check()
    assert ix.checks > 0 and ix.scans > 0
