"""Per-key quotas: digs, hints and new players per second, over all of a key's players.

Cooldowns and dig rates are per player, and the caller names the player: a key could spread its
requests over fresh player ids. These token buckets bound what one key does in all, whatever ids
it uses. The defaults sit well above what a game server with thousands of players sends.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Final

from cairn.core.errors import KeyQuota

DIG, HINT, NEW_PLAYER = 0, 1, 2
_WHAT: Final = ("digs", "hints", "new players")
_KEYS: Final = ("key_dig", "key_hint", "new_players")


class KeyQuotas:
    """Token buckets per API key, one for each of DIG, HINT and NEW_PLAYER. O(1) per `take`.

    >>> q = KeyQuotas([(1.0, 2.0), (0.0, 0.0), (0.0, 0.0)])
    >>> q.take(b"Bearer k", DIG, 2, now=0.0)
    >>> q.take(b"Bearer k", DIG, 1, now=0.5)
    Traceback (most recent call last):
    cairn.core.errors.KeyQuota: this key is past its quota of digs (1/s, burst 2; limits.key_dig_rate)
    >>> q.take(b"Bearer other", DIG, 1, now=0.5)  # another key has its own buckets
    """

    __slots__ = ("buckets", "by_header", "rates")

    def __init__(self, rates: list[tuple[float, float]]) -> None:
        self.rates = rates  # (per second, burst) by kind; a rate of 0 is no quota
        # key -> [tokens by kind..., time of each]; only verified keys reach here, so few entries
        self.buckets: dict[bytes, list[float]] = {}
        # Authorization value -> its key's buckets: variants of one key ("Bearer  k") share them.
        self.by_header: dict[bytes | None, list[float]] = {}

    def take(self, header: bytes | None, kind: int, n: int, now: float) -> None:
        """Take `n` tokens of `kind` from the bucket of the key in `header`, or raise KeyQuota."""
        rate, burst = self.rates[kind]
        if rate <= 0.0 or n <= 0:
            return
        b = self.by_header.get(header)
        if b is None:
            b = self._buckets(header, now)
        t = 3 + kind  # the times follow the three token counts
        tokens = b[kind] + (now - b[t]) * rate
        if tokens > burst:
            tokens = burst
        b[t] = now
        if tokens < n:
            b[kind] = tokens
            raise _refused(kind, rate, burst, n, tokens)
        b[kind] = tokens - n

    def charger(self, kind: int) -> Callable[[bytes | None, str, Container[str], float], None]:
        """`charge(header, player, players, now)` for `kind` (DIG or HINT): `take(header, kind, 1, now)`,
        then `take(header, NEW_PLAYER, 1, now)` if `player` is not in `players` (a refused `kind` takes
        no new player). One call, with the same arithmetic, for what every dig and hint runs. O(1).

        >>> q = KeyQuotas([(1.0, 1.0), (0.0, 0.0), (1.0, 1.0)])
        >>> dig = q.charger(DIG)
        >>> dig(b"Bearer k", "p1", {"p1"}, 0.0)
        >>> dig(b"Bearer k", "p2", set(), 0.5)
        Traceback (most recent call last):
        cairn.core.errors.KeyQuota: this key is past its quota of digs (1/s, burst 1; limits.key_dig_rate)
        >>> dig(b"Bearer k", "p2", set(), 1.0)  # the refused dig took no new player, so one is left
        """
        take, by_header, buckets = self.take, self.by_header, self._buckets
        rate, burst = self.rates[kind]
        t = 3 + kind  # the times follow the three token counts

        def charge(header: bytes | None, player: str, players: Container[str], now: float) -> None:
            b = by_header.get(header)
            if b is None:
                b = buckets(header, now)
            tokens = b[kind] + (now - b[t]) * rate  # `take` with n = 1, inlined
            if tokens > burst:
                tokens = burst
            b[t] = now
            if tokens < 1:
                b[kind] = tokens
                raise _refused(kind, rate, burst, 1, tokens)
            b[kind] = tokens - 1
            if player not in players:
                take(header, NEW_PLAYER, 1, now)

        def charge_new(header: bytes | None, player: str, players: Container[str], now: float) -> None:
            if player not in players:  # no quota on `kind`
                take(header, NEW_PLAYER, 1, now)

        return charge if rate > 0.0 else charge_new

    def _buckets(self, header: bytes | None, now: float) -> list[float]:
        key = header[7:].strip() if header else b""
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = [r[1] for r in self.rates] + [now] * len(self.rates)
        if len(self.by_header) >= 256:  # variants are bounded by what auth verifies; stay small anyway
            self.by_header.clear()
        self.by_header[header] = b
        return b


def _refused(kind: int, rate: float, burst: float, n: int, tokens: float) -> KeyQuota:
    return KeyQuota(
        f"this key is past its quota of {_WHAT[kind]} ({rate:g}/s, burst {burst:g}; limits.{_KEYS[kind]}_rate)",
        retry_after=round((min(n, burst) - tokens) / rate, 3),
    )
