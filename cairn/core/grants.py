"""Grants: what a claim pays a player, pending until the game server acks it; claim and grant ids."""

from __future__ import annotations

import hashlib
from typing import Any

from cairn.core import loot as lootmod
from cairn.core.loot import Item
from cairn.core.records import Acked, Admin


class Grant:
    __slots__ = ("ack", "claim_id", "grant_id", "items", "player", "undone")

    def __init__(self, grant_id: str, player: str, claim_id: str, items: list[Item]) -> None:
        self.grant_id = grant_id
        self.player = player
        self.claim_id = claim_id
        self.items = items
        self.ack: Acked | None = None
        # The operator's action that took it back: cancelled while pending, revoked once acked.
        self.undone: Admin | None = None

    @property
    def status(self) -> str:
        """pending | acked | cancelled (taken back before delivery) | revoked (taken back after)."""
        if self.undone is not None:
            return "revoked" if self.ack is not None else "cancelled"
        return "acked" if self.ack is not None else "pending"

    def view(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "player": self.player,
            "claim_id": self.claim_id,
            "items": lootmod.item_wire(self.items),
            "status": self.status,
        }


def claim_id_of(treasure_id: str, player: str) -> str:
    """Claim ids are content-derived: one player claims one treasure at most once."""
    return "c_" + hashlib.blake2b(f"{treasure_id}\x00{player}".encode(), digest_size=10).hexdigest()


def grant_id_of(claim_id: str, kind: str) -> str:
    return "g_" + hashlib.blake2b(f"{claim_id}\x00{kind}".encode(), digest_size=10).hexdigest()


def split_pool(pool: int, finders: int) -> list[int]:
    """Split an integer pool exactly: earlier finders get the remainder, one unit each.

    >>> split_pool(1000, 3)
    [334, 333, 333]
    """
    base, rem = divmod(pool, finders)
    return [base + (1 if i < rem else 0) for i in range(finders)]
