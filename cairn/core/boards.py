"""Leaderboards fed by claims: periods that reset on a cron line, archives, reads.

Scores come from claim records only, through the same `Engine.apply` live and in replay, so each
claim counts exactly once, across restarts too. A period rolls over lazily: at the first record
or read at or after its reset time, so replay rolls over exactly where live operation did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import msgspec

from cairn.core.errors import NotFound, UnknownLeaderboard
from cairn.core.leaderboard import Board
from cairn.core.schedule import Cron
from cairn.core.spec import query_int, rfc3339

KEEP_PERIODS = 60  # archived periods kept per board


class BoardSpec(msgspec.Struct, frozen=True):
    id: str
    metric: Literal["finds", "value", "fastest_find_seconds"] = "value"
    operator: Literal["incr", "best", "set"] = "incr"
    sort: Literal["desc", "asc"] = "desc"
    reset: str | None = None
    hunt_tags: tuple[str, ...] = ()


#: The boards of a server with no `[[leaderboards]]` in its config (SPEC.md).
DEFAULT_BOARDS = (BoardSpec("weekly", reset="0 0 * * MON"), BoardSpec("alltime"))


class Find(NamedTuple):
    """One find as the boards count it (`Boards.record_find`'s arguments), for `Boards.recount`."""

    hunt_boards: list[str]
    hunt_tags: list[str]
    value: int
    seconds: float
    at: float


class BoardNotFound(NotFound):
    code = "board_not_found"


class Leaderboard:
    """One configured board: the current period and the archived ones."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec
        self.cron = Cron.parse(spec.reset, "leaderboards.reset") if spec.reset else None
        self.period_start = 0.0
        self.resets_at: float | None = None
        self.current = Board(spec.sort, spec.operator)
        self.archive: dict[str, Board] = {}
        # During replay, scores are aggregated here and the board is built once (O(n log n)).
        self.pending: dict[str, tuple[float, float]] | None = None

    def submit(self, player: str, value: float, at: float) -> None:
        pending = self.pending
        if pending is None:
            self.current.submit(player, value, at)
            return
        old = pending.get(player)
        if old is None:
            pending[player] = (value, at)
            return
        score, _ = old
        op = self.spec.operator
        if op == "incr":
            new = score + value
        elif op == "set":
            new = value
        else:
            better = value > score if self.spec.sort == "desc" else value < score
            new = value if better else score
        if new != score:  # as Board.submit: an unchanged score keeps the time it was reached
            pending[player] = (new, at)

    def drop(self, player: str) -> None:
        """Take `player` off the current period (in bulk mode too). O(log n)."""
        if self.pending is not None:
            self.pending.pop(player, None)
        else:
            self.current.remove(player)

    def flush(self) -> None:
        """Build the current board from what bulk mode aggregated."""
        if self.pending:
            self.current = Board.from_snapshot(
                ((p, score, at) for p, (score, at) in self.pending.items()), self.spec.sort, self.spec.operator
            )
        if self.pending is not None:
            self.pending = {}

    def roll(self, now: float) -> bool:
        """Start a new period if `now` is at or past the reset time; True if one was archived."""
        if self.cron is None:
            return False
        if self.resets_at is None:
            prev = self.cron.prev_at_or_before(datetime.fromtimestamp(now, UTC))
            self.period_start = prev.timestamp() if prev else 0.0
            self._next(now)
            return False
        if now < self.resets_at:
            return False
        self.flush()
        self.archive[self.period_name()] = self.current
        while len(self.archive) > KEEP_PERIODS:
            del self.archive[next(iter(self.archive))]
        prev = self.cron.prev_at_or_before(datetime.fromtimestamp(now, UTC))
        self.period_start = prev.timestamp() if prev else now
        self.current = Board(self.spec.sort, self.spec.operator)
        self._next(now)
        return True

    def _next(self, now: float) -> None:
        assert self.cron is not None
        nxt = self.cron.next_after(datetime.fromtimestamp(now, UTC))
        self.resets_at = nxt.timestamp() if nxt else None

    def period_name(self) -> str:
        return rfc3339(self.period_start) if self.cron else "alltime"


class Boards:
    """Every configured leaderboard; `record_find` is called once per claim."""

    def __init__(self, specs: list[BoardSpec]) -> None:
        self.boards = {s.id: Leaderboard(s) for s in specs}
        self._depth = 0

    def check(self, names: list[str]) -> None:
        """Raise UnknownLeaderboard for the first of a hunt spec's `leaderboards` that is not configured."""
        for i, name in enumerate(names):
            if name not in self.boards:
                known = ", ".join(sorted(self.boards)) or "none"
                raise UnknownLeaderboard(
                    f"leaderboards[{i}]: no leaderboard {name!r} is configured (known: {known})", field="leaderboards"
                )

    def roll(self, now: float) -> list[tuple[str, str]]:
        """Roll every board due; returns (board, archived period) pairs for `leaderboard.reset`."""
        out = []
        for b in self.boards.values():
            before = b.period_name()
            if b.roll(now):
                out.append((b.spec.id, before))
        return out

    def record_find(
        self, hunt_boards: list[str], hunt_tags: list[str], player: str, value: int, seconds: float, at: float
    ) -> None:
        for name in hunt_boards:
            b = self.boards.get(name)
            if b is None:
                continue
            if b.spec.hunt_tags and not set(b.spec.hunt_tags) & set(hunt_tags):
                continue
            b.roll(at)
            metric = b.spec.metric
            score = 1.0 if metric == "finds" else float(value) if metric == "value" else seconds
            b.submit(player, score, at)

    def recount(self, hunt_boards: list[str], hunt_tags: list[str], player: str, finds: list[Find], at: float) -> None:
        """Score `player` again on the boards a find of a hunt with `hunt_boards` and `hunt_tags` counted on,
        from `finds`: every find of theirs that still counts, in time order (a voided claim's left out).
        Only the current period is recounted; archived periods stay as they closed. O(k log n) for k finds.

        >>> boards = Boards([BoardSpec("alltime")])
        >>> boards.record_find(["alltime"], [], "ann", 5, 1.0, 10.0)
        >>> boards.record_find(["alltime"], [], "ann", 7, 1.0, 20.0)
        >>> boards.recount(["alltime"], [], "ann", [Find(["alltime"], [], 7, 1.0, 20.0)], 30.0)
        >>> boards.boards["alltime"].current.score("ann")
        7.0
        """
        for name in hunt_boards:
            b = self.boards.get(name)
            if b is None or (b.spec.hunt_tags and not set(b.spec.hunt_tags) & set(hunt_tags)):
                continue
            b.roll(at)
            b.drop(player)
            metric = b.spec.metric
            for f in finds:
                if f.at < b.period_start or name not in f.hunt_boards:
                    continue
                if b.spec.hunt_tags and not set(b.spec.hunt_tags) & set(f.hunt_tags):
                    continue
                b.submit(player, 1.0 if metric == "finds" else float(f.value) if metric == "value" else f.seconds, f.at)

    def begin_bulk(self) -> None:
        """Replay is starting: aggregate scores and build each board once at the matching `end_bulk`.

        Calls nest; only the outermost pair switches modes.
        """
        self._depth += 1
        if self._depth == 1:
            for b in self.boards.values():
                if len(b.current) == 0:
                    b.pending = {}

    def end_bulk(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            for b in self.boards.values():
                b.flush()
                b.pending = None

    def read(self, name: str, query: dict[str, str], now: float) -> dict[str, Any]:
        """The SPEC reply: `{board, period, resets_at, records: [{rank, player, score}]}` (+ cursor)."""
        b = self.boards.get(name)
        if b is None:
            raise BoardNotFound(f"no leaderboard {name!r}; configured: {', '.join(sorted(self.boards))}", field="board")
        b.roll(now)
        limit = query_int(query, "limit", 10, 1, 1000)
        cursor = query_int(query, "cursor", 0, 0, 10**9)
        period = query.get("period")
        board = b.current
        if period and period != b.period_name():
            if period not in b.archive:
                known = ", ".join(list(b.archive)[-5:]) or "none"
                raise NotFound(f"no period {period!r} of {name!r} (recent: {known})", field="period")
            board = b.archive[period]
        around = query.get("around")
        one = query.get("player")
        if one:
            rank = board.rank(one)
            score = board.score(one)
            rows = [] if rank is None or score is None else [(rank, one, score)]
        elif around:
            rows = board.around(around, limit)
        else:
            rows = board.top(limit, cursor)
        out: dict[str, Any] = {
            "board": name,
            "period": period or b.period_name(),
            "resets_at": rfc3339(b.resets_at) if b.resets_at is not None and board is b.current else None,
            "records": [{"rank": r, "player": p, "score": s} for r, p, s in rows],
        }
        if not around and not one and len(rows) == limit and cursor + limit < len(board):
            out["next_cursor"] = cursor + limit
        if b.archive:
            out["periods"] = list(b.archive)[-10:]
        return out
