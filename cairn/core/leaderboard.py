"""One period of one leaderboard: players ranked by a complete order, with O(log n) writes and ranks.

The order is score (by `sort`), then the earlier time the current score was reached, then player id
ascending, so no two players ever share a rank. Each player is one key `(k, at, player)` with
`k = -score` for "desc" and `k = score` for "asc"; plain tuple order is then rank order.

Layout (the sortedcontainers design, written out because core takes no third-party containers):

- `_lists`: sorted sublists of keys, each holding 1..2*load keys, every key of sublist i below
  every key of sublist i+1; `_maxes[i]` is `_lists[i][-1]`, so one bisect finds a key's sublist.
- `_tree`: a Fenwick tree over the sublist lengths. It turns a (sublist, offset) pair into a
  rank and a rank into a pair in O(log m) for m sublists. Splits and merges rebuild it in O(m);
  they happen once per ~load/2 writes at most.
- `_keys`: player -> current key.

With the default load of 1,000 a million players take ~1,000 sublists.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Final, Literal

from cairn.core.errors import ValidationError

Sort = Literal["desc", "asc"]
Operator = Literal["incr", "best", "set"]
Key = tuple[float, float, str]
Record = tuple[int, str, float]

#: Target sublist length; sublists split above 2*load and merge below load/2.
DEFAULT_LOAD: Final = 1000

_SORTS: Final = ("desc", "asc")
_OPERATORS: Final = ("incr", "best", "set")


class Board:
    """One period of one leaderboard: players ranked with a complete order.

    >>> b = Board()
    >>> b.submit("ann", 5, at=10.0), b.submit("bob", 5, at=9.0), b.submit("cat", 7, at=11.0)
    (True, True, True)
    >>> b.top(3)
    [(1, 'cat', 7.0), (2, 'bob', 5.0), (3, 'ann', 5.0)]
    """

    __slots__ = ("_desc", "_keys", "_lists", "_load", "_maxes", "_op", "_sort", "_tree")

    def __init__(self, sort: Sort = "desc", operator: Operator = "incr", *, load: int = DEFAULT_LOAD) -> None:
        """An empty board. `sort` defaults to "desc" (highest first), `operator` to "incr".

        `load` (default 1,000) is the target sublist length; tests make it small to exercise splits.
        """
        if sort not in _SORTS:
            raise ValidationError(f"sort must be one of {', '.join(_SORTS)}, not {sort!r}", field="sort")
        if operator not in _OPERATORS:
            raise ValidationError(
                f"operator must be one of {', '.join(_OPERATORS)}, not {operator!r}", field="operator"
            )
        if load < 2:
            raise ValidationError(f"load must be at least 2, not {load}", field="load")
        self._sort: Sort = sort
        self._op: Operator = operator
        self._desc = sort == "desc"
        self._load = load
        self._keys: dict[str, Key] = {}
        self._lists: list[list[Key]] = []
        self._maxes: list[Key] = []
        self._tree: list[int] = [0]

    @classmethod
    def from_snapshot(
        cls,
        rows: Iterable[tuple[str, float, float]],
        sort: Sort = "desc",
        operator: Operator = "incr",
        *,
        load: int = DEFAULT_LOAD,
    ) -> Board:
        """A board holding `rows` of (player, score, at), e.g. from `snapshot()`. O(n log n).

        >>> Board.from_snapshot([("ann", 3.0, 1.0), ("bob", 4.0, 2.0)]).top(2)
        [(1, 'bob', 4.0), (2, 'ann', 3.0)]
        """
        board = cls(sort, operator, load=load)
        keys = board._keys
        for player, score, at in rows:
            board._valid(score, "score")
            board._valid(at, "at")
            if player in keys:
                raise ValidationError(f"player {player!r} appears twice", field="player")
            keys[player] = board._key(player, score + 0.0, at)
        ordered = sorted(keys.values())
        lists = [ordered[i : i + load] for i in range(0, len(ordered), load)]
        if len(lists) > 1 and len(lists[-1]) < load // 2:
            lists[-2].extend(lists.pop())
        board._lists = lists
        board._maxes = [sub[-1] for sub in board._lists]
        board._rebuild()
        return board

    # ---- properties ---------------------------------------------------------------------------------

    @property
    def sort(self) -> Sort:
        """The order of scores: "desc" (highest first) or "asc"."""
        return self._sort

    @property
    def operator(self) -> Operator:
        """How `submit` combines a value with the current score: "incr", "best" or "set"."""
        return self._op

    def __len__(self) -> int:
        """Number of ranked players. O(1)."""
        return len(self._keys)

    def __contains__(self, player: object) -> bool:
        return player in self._keys

    # ---- writes -------------------------------------------------------------------------------------

    def submit(self, player: str, value: float, at: float) -> bool:
        """Apply one score to `player` at time `at` (UNIX seconds); True if the entry changed. O(log n).

        "incr" adds `value` (a new player starts at 0), "best" keeps the better of old and new, "set"
        replaces. A result equal to the current score changes nothing, so the time reached stays put.

        >>> b = Board(operator="best")
        >>> b.submit("ann", 5, 1.0), b.submit("ann", 4, 2.0), b.submit("ann", 5, 3.0), b.score("ann")
        (True, False, False, 5.0)
        """
        if not -math.inf < value < math.inf:
            raise ValidationError(f"value must be a finite number, not {value!r}", field="value")
        if not -math.inf < at < math.inf:
            raise ValidationError(f"at must be a finite number, not {at!r}", field="at")
        old = self._keys.get(player)
        desc = self._desc
        if old is None:
            score = value + 0.0  # +0.0 turns -0.0 into 0.0
        else:
            current = -old[0] if desc else old[0]
            op = self._op
            if op == "incr":
                score = current + value
                if not -math.inf < score < math.inf:
                    raise ValidationError(f"score of {player!r} would overflow", field="value")
            elif op == "best":
                if (value <= current) if desc else (value >= current):
                    return False
                score = value
            else:
                score = value
            if score == current:
                return False
            score += 0.0
            key = (-score if desc else score, float(at), player)
            self._keys[player] = key
            self._move(old, key)
            return True
        key = (-score if desc else score, float(at), player)
        self._keys[player] = key
        self._insert(key)
        return True

    def remove(self, player: str) -> bool:
        """Drop `player` from the board; True if they were on it. O(log n)."""
        key = self._keys.pop(player, None)
        if key is None:
            return False
        self._remove(key)
        return True

    # ---- reads --------------------------------------------------------------------------------------

    def score(self, player: str) -> float | None:
        """The player's current score, or None if they have none. O(1)."""
        key = self._keys.get(player)
        if key is None:
            return None
        return -key[0] if self._desc else key[0]

    def reached_at(self, player: str) -> float | None:
        """When the player's current score was reached, or None. O(1)."""
        key = self._keys.get(player)
        return None if key is None else key[1]

    def rank(self, player: str) -> int | None:
        """The player's 1-based rank, or None if they have no score. O(log n).

        >>> b = Board(sort="asc")
        >>> b.submit("ann", 30, 1.0), b.submit("bob", 20, 1.0), b.rank("ann"), b.rank("zed")
        (True, True, 2, None)
        """
        key = self._keys.get(player)
        if key is None:
            return None
        return self._position(key) + 1

    def top(self, limit: int, cursor: int = 0) -> list[Record]:
        """Up to `limit` records (rank, player, score) starting at rank `cursor + 1`. O(log n + limit).

        >>> b = Board()
        >>> for i, p in enumerate("abcde"): _ = b.submit(p, i, 0.0)
        >>> b.top(2, cursor=1)
        [(2, 'd', 3.0), (3, 'c', 2.0)]
        """
        if cursor < 0:
            raise ValidationError(f"cursor must be >= 0, not {cursor}", field="cursor")
        n = len(self._keys)
        if limit <= 0 or cursor >= n:
            return []
        idx, offset = self._locate(cursor)
        return self._records(idx, offset, cursor + 1, min(limit, n - cursor))

    def around(self, player: str, limit: int) -> list[Record]:
        """`limit` records centred on `player`, shifted to stay inside the board; [] if unknown.

        With an even `limit` the extra record is above the player (the ones to catch). O(log n + limit).

        >>> b = Board()
        >>> for i, p in enumerate("abcde"): _ = b.submit(p, i, 0.0)
        >>> [r[1] for r in b.around("c", 3)], [r[1] for r in b.around("e", 3)]
        (['d', 'c', 'b'], ['e', 'd', 'c'])
        """
        key = self._keys.get(player)
        if key is None or limit <= 0:
            return []
        n = len(self._keys)
        idx = bisect_left(self._maxes, key)
        offset = bisect_left(self._lists[idx], key)
        pos = offset + self._prefix(idx)
        start = max(0, min(pos - limit // 2, n - limit))
        offset -= pos - start
        if offset < 0:  # the window starts in an earlier sublist
            idx, offset = self._locate(start)
        return self._records(idx, offset, start + 1, min(limit, n - start))

    def snapshot(self) -> list[tuple[str, float, float]]:
        """Every entry as (player, score, at) in rank order. O(n)."""
        if self._desc:
            return [(key[2], -key[0], key[1]) for sub in self._lists for key in sub]
        return [(key[2], key[0], key[1]) for sub in self._lists for key in sub]

    # ---- structure ----------------------------------------------------------------------------------

    def _key(self, player: str, score: float, at: float) -> Key:
        return (-score if self._desc else score, float(at), player)

    @staticmethod
    def _valid(x: float, field: str) -> None:
        if not -math.inf < x < math.inf:
            raise ValidationError(f"{field} must be a finite number, not {x!r}", field=field)

    def _insert(self, key: Key) -> None:
        maxes = self._maxes
        if not maxes:
            self._lists.append([key])
            maxes.append(key)
            self._rebuild()
            return
        idx = bisect_left(maxes, key)
        if idx == len(maxes):
            idx -= 1
            self._lists[idx].append(key)
            maxes[idx] = key
        else:
            insort(self._lists[idx], key)
        if len(self._lists[idx]) > 2 * self._load:
            self._split(idx)
        else:
            self._add(idx, 1)

    def _remove(self, key: Key) -> None:
        maxes = self._maxes
        lists = self._lists
        idx = bisect_left(maxes, key)
        sub = lists[idx]
        i = bisect_left(sub, key)
        del sub[i]
        if not sub:
            del lists[idx]
            del maxes[idx]
            self._rebuild()
            return
        if i == len(sub):
            maxes[idx] = sub[-1]
        if len(sub) < self._load // 2 and len(lists) > 1:
            self._merge(idx)
        else:
            self._add(idx, -1)

    def _move(self, old: Key, new: Key) -> None:
        """Replace `old` by `new`; when both belong to one sublist, its length and the tree stay put."""
        maxes = self._maxes
        lists = self._lists
        idx = bisect_left(maxes, old)
        if (idx == 0 or maxes[idx - 1] < new) and (idx == len(maxes) - 1 or new < lists[idx + 1][0]):
            sub = lists[idx]
            del sub[bisect_left(sub, old)]
            insort(sub, new)
            maxes[idx] = sub[-1]
            return
        self._remove(old)
        self._insert(new)

    def _split(self, idx: int) -> None:
        sub = self._lists[idx]
        half = len(sub) >> 1
        right = sub[half:]
        del sub[half:]
        self._lists.insert(idx + 1, right)
        self._maxes.insert(idx, sub[-1])
        self._rebuild()

    def _merge(self, idx: int) -> None:
        """Join the short sublist `idx` with a neighbour, then split again if the result is too long."""
        lists = self._lists
        if idx == len(lists) - 1:
            idx -= 1
        lists[idx].extend(lists[idx + 1])
        del lists[idx + 1]
        del self._maxes[idx]
        self._maxes[idx] = lists[idx][-1]
        if len(lists[idx]) > 2 * self._load:
            self._split(idx)
        else:
            self._rebuild()

    def _rebuild(self) -> None:
        """Fenwick tree over sublist lengths in O(m)."""
        tree = [0]
        tree.extend(len(sub) for sub in self._lists)
        m = len(tree) - 1
        for i in range(1, m + 1):
            j = i + (i & -i)
            if j <= m:
                tree[j] += tree[i]
        self._tree = tree

    def _add(self, idx: int, delta: int) -> None:
        tree = self._tree
        m = len(tree) - 1
        i = idx + 1
        while i <= m:
            tree[i] += delta
            i += i & -i

    def _position(self, key: Key) -> int:
        """0-based position of a key that is on the board."""
        idx = bisect_left(self._maxes, key)
        return bisect_left(self._lists[idx], key) + self._prefix(idx)

    def _prefix(self, idx: int) -> int:
        """Number of keys in sublists before `idx`."""
        tree = self._tree
        total = 0
        while idx:
            total += tree[idx]
            idx &= idx - 1
        return total

    def _records(self, idx: int, offset: int, rank: int, need: int) -> list[Record]:
        """`need` records from sublist `idx` at `offset` on, numbered from `rank`; `need` must fit."""
        lists = self._lists
        desc = self._desc
        out: list[Record] = []
        while need > 0:
            chunk = lists[idx][offset : offset + need]
            if desc:
                out.extend([(rank + j, key[2], -key[0]) for j, key in enumerate(chunk)])
            else:
                out.extend([(rank + j, key[2], key[0]) for j, key in enumerate(chunk)])
            rank += len(chunk)
            need -= len(chunk)
            idx += 1
            offset = 0
        return out

    def _locate(self, pos: int) -> tuple[int, int]:
        """(sublist, offset) of 0-based position `pos` < len(self), by descending the Fenwick tree."""
        tree = self._tree
        m = len(tree) - 1
        idx = 0
        step = 1 << (m.bit_length() - 1)
        while step:
            nxt = idx + step
            if nxt <= m and tree[nxt] <= pos:
                idx = nxt
                pos -= tree[nxt]
            step >>= 1
        return idx, pos

    def _check(self) -> None:
        """Assert every invariant of the structure. O(n)."""
        lists, maxes, keys, load = self._lists, self._maxes, self._keys, self._load
        assert len(lists) == len(maxes)
        assert len(self._tree) == len(lists) + 1
        total = 0
        prev: Key | None = None
        for i, sub in enumerate(lists):
            assert sub, f"sublist {i} is empty"
            assert len(sub) <= 2 * load, f"sublist {i} has {len(sub)} > {2 * load} keys"
            if len(lists) > 1:
                assert len(sub) >= load // 2, f"sublist {i} has {len(sub)} < {load // 2} keys"
            assert maxes[i] == sub[-1], f"maxes[{i}] is stale"
            for key in sub:
                assert prev is None or prev < key, f"keys out of order: {prev} !< {key}"
                prev = key
                player = key[2]
                assert keys.get(player) == key, f"index disagrees for {player!r}"
                assert math.isfinite(key[0]) and math.isfinite(key[1])
            total += len(sub)
        assert total == len(keys), f"{total} keys in sublists, {len(keys)} players"
        pos = 0
        for i, sub in enumerate(lists):
            prefix = self._prefix(i)
            assert prefix == pos, f"Fenwick prefix of sublist {i} is {prefix}, not {pos}"
            pos += len(sub)
        # Fenwick totals by descent must agree too.
        if keys:
            assert self._locate(total - 1) == (len(lists) - 1, len(lists[-1]) - 1)
