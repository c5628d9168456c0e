"""Players: the per-node, never journaled state of each player, and the limits that bound them."""

from __future__ import annotations

import math

import msgspec

from cairn.core.geometry import Pos


class Limits(msgspec.Struct, frozen=True):
    max_speed: float = 100.0  # blocks per second without teleport
    dig_rate: float = 10.0  # digs per second per player (token bucket)
    dig_burst: int = 20
    movement_slack: float = 8.0  # blocks of slack for tick jitter
    strict_players: bool = False  # hint and dig only for players announced through positions
    player_idle: float = 600.0  # seconds of silence after which a player's ephemeral state is forgotten
    max_players: int = 250_000  # players tracked at once; past it, new ones are refused until idle ones go


class Player:
    """Ephemeral per-player state: last position, dig tokens, anti-cheat flags. Not journaled."""

    __slots__ = ("flags", "last_pos", "last_t", "tokens", "tokens_t")

    def __init__(self) -> None:
        self.last_pos: Pos | None = None
        self.last_t = 0.0
        # The dig token bucket, as of `tokens_t`: refilled from the beginning of time, a new player's
        # bucket is full on its first dig.
        self.tokens = 0.0
        self.tokens_t = -math.inf
        self.flags = 0
