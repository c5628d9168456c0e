"""Board: every read against a brute-force model, tie order, operators, invariants under stress."""

from __future__ import annotations

import math
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core.errors import ValidationError
from cairn.core.leaderboard import Board

SORTS = ("desc", "asc")
OPERATORS = ("incr", "best", "set")


# ---- reference model --------------------------------------------------------------------------


class Model:
    """The leaderboard spelled out: a dict of (score, at), sorted from scratch on every read."""

    def __init__(self, sort: str, operator: str) -> None:
        self.sort, self.operator = sort, operator
        self.entries: dict[str, tuple[float, float]] = {}

    def submit(self, player: str, value: float, at: float) -> bool:
        if player not in self.entries:
            self.entries[player] = (float(value), float(at))
            return True
        current, _ = self.entries[player]
        if self.operator == "incr":
            new = current + value
        elif self.operator == "best":
            better = value > current if self.sort == "desc" else value < current
            new = value if better else current
        else:
            new = value
        if new == current:
            return False
        self.entries[player] = (float(new), float(at))
        return True

    def ordered(self) -> list[tuple[str, float, float]]:
        sign = -1 if self.sort == "desc" else 1
        rows = sorted(self.entries.items(), key=lambda kv: (sign * kv[1][0], kv[1][1], kv[0]))
        return [(p, s, a) for p, (s, a) in rows]

    def records(self) -> list[tuple[int, str, float]]:
        return [(i + 1, p, s) for i, (p, s, _) in enumerate(self.ordered())]

    def around(self, player: str, limit: int) -> list[tuple[int, str, float]]:
        recs = self.records()
        names = [r[1] for r in recs]
        if player not in names or limit <= 0:
            return []
        pos = names.index(player)
        # Brute force: the window of `limit` that holds the player with its centre closest to them,
        # preferring the window that puts more records above the player.
        best = None
        for start in range(max(1, len(recs) - limit + 1)):
            window = recs[start : start + limit]
            if not any(r[1] == player for r in window):
                continue
            above, below = pos - start, len(window) - 1 - (pos - start)
            cost = (abs(above - below), -above)
            if best is None or cost < best[0]:
                best = (cost, window)
        assert best is not None
        return best[1]


def assert_same(board: Board, model: Model, probe: list[str]) -> None:
    board._check()
    recs = model.records()
    assert len(board) == len(recs)
    assert board.snapshot() == model.ordered()
    assert board.top(len(recs) + 5) == recs
    for cursor in (0, 1, len(recs) // 2, max(0, len(recs) - 1), len(recs)):
        for limit in (0, 1, 3, 10):
            assert board.top(limit, cursor) == recs[cursor : cursor + limit], (limit, cursor)
    ranks = {p: r for r, p, _ in recs}
    for p in probe:
        assert board.rank(p) == ranks.get(p)
        assert board.score(p) == (model.entries[p][0] if p in model.entries else None)
        for limit in (1, 2, 3, 4, 7):
            assert board.around(p, limit) == model.around(p, limit), (p, limit)


# ---- properties ---------------------------------------------------------------------------------

PLAYERS = [f"p{i:02d}" for i in range(24)]
values = st.one_of(st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
ops = st.lists(
    st.tuples(st.sampled_from(PLAYERS), values, st.integers(0, 6).map(float)),
    max_size=120,
)


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("sort", SORTS)
@settings(max_examples=60, deadline=None)
@given(ops=ops, load=st.sampled_from([2, 3, 4, 1000]))
def test_matches_brute_force(sort: str, operator: str, ops: list[tuple[str, float, float]], load: int) -> None:
    board = Board(sort, operator, load=load)  # type: ignore[arg-type]
    model = Model(sort, operator)
    for player, value, at in ops:
        assert board.submit(player, value, at) == model.submit(player, value, at)
        board._check()
    assert_same(board, model, [*PLAYERS[:6], "nobody"])


@settings(max_examples=40, deadline=None)
@given(ops=ops, sort=st.sampled_from(SORTS), operator=st.sampled_from(OPERATORS))
def test_snapshot_round_trips(ops: list[tuple[str, float, float]], sort: str, operator: str) -> None:
    board = Board(sort, operator, load=3)  # type: ignore[arg-type]
    for op in ops:
        board.submit(*op)
    again = Board.from_snapshot(board.snapshot(), sort, operator, load=3)  # type: ignore[arg-type]
    again._check()
    assert again.snapshot() == board.snapshot()
    assert again.top(50) == board.top(50)


def test_stress_seeded() -> None:
    """20,000 random submits and removes on a small-load board, checked against the model."""
    seed = int(os.environ.get("CAIRN_SEED", random.randrange(2**32)))
    print(f"leaderboard stress seed={seed} (rerun with CAIRN_SEED={seed})")
    rng = random.Random(seed)
    for sort in SORTS:
        for operator in OPERATORS:
            board = Board(sort, operator, load=8)  # type: ignore[arg-type]
            model = Model(sort, operator)
            players = [f"u{i}" for i in range(400)]
            for step in range(20_000 // 6):
                p = rng.choice(players)
                if rng.random() < 0.05:
                    assert board.remove(p) == (model.entries.pop(p, None) is not None)
                else:
                    value = float(rng.randint(-20, 20)) if rng.random() < 0.7 else rng.uniform(-1e3, 1e3)
                    at = float(rng.randint(0, 50))
                    assert board.submit(p, value, at) == model.submit(p, value, at), (seed, step)
                if step % 97 == 0:
                    board._check()
            # Empty it down to zero through the merge and delete paths, then fill it again.
            assert_same(board, model, rng.sample(players, 20))
            for p in list(model.entries):
                assert board.remove(p)
                del model.entries[p]
                if len(model.entries) % 37 == 0:
                    board._check()
            board._check()
            assert len(board) == 0 and board.top(10) == [] and board.snapshot() == []
            for p in players[:50]:
                board.submit(p, 1.0, 0.0)
                model.submit(p, 1.0, 0.0)
            assert_same(board, model, players[:5])


# ---- ties ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", SORTS)
def test_tie_earlier_time_first(sort: str) -> None:
    board = Board(sort, "set")  # type: ignore[arg-type]
    board.submit("zed", 10, at=100.0)
    board.submit("amy", 10, at=200.0)
    board.submit("mid", 10, at=150.0)
    assert [p for _, p, _ in board.top(3)] == ["zed", "mid", "amy"]
    assert board.rank("zed") == 1 and board.rank("amy") == 3


@pytest.mark.parametrize("sort", SORTS)
def test_tie_same_score_and_time_by_player_id(sort: str) -> None:
    board = Board(sort, "incr")  # type: ignore[arg-type]
    for p in ("carol", "alice", "bob"):
        board.submit(p, 7, at=5.0)
    assert board.top(3) == [(1, "alice", 7.0), (2, "bob", 7.0), (3, "carol", 7.0)]
    assert board.around("bob", 1) == [(2, "bob", 7.0)]


def test_score_beats_time_and_id() -> None:
    desc = Board("desc", "set")
    desc.submit("a", 1, at=0.0)
    desc.submit("b", 2, at=9.0)
    assert [p for _, p, _ in desc.top(2)] == ["b", "a"]
    asc = Board("asc", "set")
    asc.submit("a", 1, at=9.0)
    asc.submit("b", 2, at=0.0)
    assert [p for _, p, _ in asc.top(2)] == ["a", "b"]


def test_best_equal_score_keeps_time_reached() -> None:
    board = Board("desc", "best")
    board.submit("late", 5, at=10.0)
    board.submit("early", 5, at=20.0)
    assert board.submit("early", 5, at=1.0) is False  # equal: not an improvement, time stays 20
    assert board.reached_at("early") == 20.0
    assert board.rank("late") == 1
    assert board.submit("early", 6, at=30.0) is True
    assert board.rank("early") == 1 and board.reached_at("early") == 30.0


def test_best_asc_keeps_lower() -> None:
    board = Board("asc", "best")
    assert board.submit("a", 30, 1.0) is True
    assert board.submit("a", 40, 2.0) is False
    assert board.submit("a", 20, 3.0) is True
    assert board.score("a") == 20.0 and board.reached_at("a") == 3.0


def test_incr_and_set_move_time_only_when_score_changes() -> None:
    incr = Board("desc", "incr")
    incr.submit("a", 3, 1.0)
    assert incr.submit("a", 0, 5.0) is False and incr.reached_at("a") == 1.0
    assert incr.submit("a", 2, 6.0) is True and incr.score("a") == 5.0 and incr.reached_at("a") == 6.0
    assert incr.submit("a", -5, 7.0) is True and incr.score("a") == 0.0
    st_ = Board("desc", "set")
    st_.submit("a", 3, 1.0)
    assert st_.submit("a", 3, 5.0) is False and st_.reached_at("a") == 1.0
    assert st_.submit("a", 1, 6.0) is True and st_.score("a") == 1.0


def test_new_player_incr_zero_is_ranked() -> None:
    board = Board()
    assert board.submit("a", 0, 1.0) is True
    assert board.rank("a") == 1 and board.score("a") == 0.0


# ---- edges --------------------------------------------------------------------------------------


def test_empty_and_unknown() -> None:
    board = Board()
    board._check()
    assert len(board) == 0 and board.top(10) == [] and board.top(10, 5) == []
    assert board.rank("x") is None and board.score("x") is None and board.around("x", 5) == []
    board.submit("x", 1, 0.0)
    assert board.around("nobody", 5) == [] and board.around("x", 0) == [] and board.top(0) == []
    assert board.around("x", 10) == [(1, "x", 1.0)]


def test_around_clamps_at_both_ends() -> None:
    board = Board()
    for i in range(10):
        board.submit(f"p{i}", i, 0.0)  # p9 is rank 1
    assert [r[0] for r in board.around("p9", 4)] == [1, 2, 3, 4]
    assert [r[0] for r in board.around("p0", 4)] == [7, 8, 9, 10]
    assert [r[0] for r in board.around("p4", 4)] == [4, 5, 6, 7]  # p4 is rank 6: two above, one below
    assert [r[0] for r in board.around("p4", 5)] == [4, 5, 6, 7, 8]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_rejected(bad: float) -> None:
    board = Board()
    with pytest.raises(ValidationError) as e:
        board.submit("a", bad, 0.0)
    assert e.value.code == "validation_error" and e.value.field == "value"
    with pytest.raises(ValidationError) as e:
        board.submit("a", 1.0, bad)
    assert e.value.field == "at"
    assert len(board) == 0


def test_incr_overflow_rejected_and_entry_kept() -> None:
    board = Board()
    board.submit("a", 1.7e308, 0.0)
    with pytest.raises(ValidationError):
        board.submit("a", 1.7e308, 1.0)
    board._check()
    assert board.score("a") == 1.7e308


def test_bad_arguments() -> None:
    with pytest.raises(ValidationError):
        Board("up")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Board("desc", "max")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Board().top(1, -1)
    with pytest.raises(ValidationError):
        Board.from_snapshot([("a", 1.0, 0.0), ("a", 2.0, 0.0)])


def test_negative_zero_reads_as_zero() -> None:
    board = Board("asc", "set")
    board.submit("a", -0.0, 0.0)
    assert math.copysign(1.0, board.score("a") or 0.0) == 1.0
    board.submit("b", 0.0, 1.0)
    assert [p for _, p, _ in board.top(2)] == ["a", "b"]


def test_large_board_splits_and_ranks() -> None:
    """Enough players for several default-load sublists; checked against a sort."""
    rng = random.Random(7)
    board = Board()
    scores = {f"p{i}": float(rng.randint(0, 500)) for i in range(5000)}
    for p, s in scores.items():
        board.submit(p, s, 0.0)
    board._check()
    assert len(board._lists) > 2
    expected = sorted(scores, key=lambda p: (-scores[p], p))
    assert [p for _, p, _ in board.top(5000)] == expected
    for p in rng.sample(expected, 50):
        assert board.rank(p) == expected.index(p) + 1
