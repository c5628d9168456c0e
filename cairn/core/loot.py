"""Loot tables and tier rolls, deterministic from (secret, hunt key, treasure number)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from cairn.core import rng
from cairn.core.errors import UnknownLootTable
from cairn.core.spec import TIERS


class Item(msgspec.Struct, array_like=True, frozen=True):
    """`{"item": id, "count": n, "value": v}` on the wire (see `item_wire`)."""

    item: str
    count: int
    value: int


class LootEntry(msgspec.Struct, forbid_unknown_fields=True):
    item: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.-]+:[a-z0-9_./-]+$")]
    weight: Annotated[int, msgspec.Meta(ge=1)] = 1
    count: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(min_length=2, max_length=2)] = (
        msgspec.field(default_factory=lambda: [1, 1])
    )
    value: Annotated[int, msgspec.Meta(ge=0)] = 1


LootTable = dict[str, list[LootEntry]]

# Rolls per tier: rarer treasures carry more items.
ROLLS = {"common": 1, "uncommon": 2, "rare": 2, "epic": 3, "legendary": 4}


def _e(item: str, weight: int, lo: int, hi: int, value: int) -> LootEntry:
    return LootEntry(item=item, weight=weight, count=[lo, hi], value=value)


DEFAULT_LOOT: LootTable = {
    "common": [
        _e("minecraft:gold_ingot", 10, 1, 3, 5),
        _e("minecraft:iron_ingot", 12, 2, 5, 2),
        _e("minecraft:bread", 8, 2, 6, 1),
    ],
    "uncommon": [
        _e("minecraft:diamond", 6, 1, 2, 20),
        _e("minecraft:golden_apple", 4, 1, 2, 15),
        _e("minecraft:emerald", 8, 2, 4, 10),
    ],
    "rare": [
        _e("minecraft:diamond", 8, 2, 4, 20),
        _e("minecraft:enchanted_book", 4, 1, 1, 60),
        _e("minecraft:name_tag", 3, 1, 1, 40),
    ],
    "epic": [
        _e("minecraft:netherite_scrap", 6, 1, 2, 120),
        _e("minecraft:enchanted_golden_apple", 3, 1, 1, 200),
        _e("minecraft:totem_of_undying", 2, 1, 1, 250),
    ],
    "legendary": [
        _e("minecraft:netherite_ingot", 5, 1, 2, 500),
        _e("minecraft:elytra", 2, 1, 1, 1500),
        _e("minecraft:nether_star", 2, 1, 1, 1200),
    ],
}


def roll_tier(key: bytes, n: int, weights: dict[str, int]) -> str:
    """The tier of treasure `n`, weighted by the spec's `tiers`, in the fixed tier order."""
    ordered = [(t, weights.get(t, 0)) for t in TIERS if weights.get(t, 0) > 0]
    return rng.weighted_choice(ordered, rng.unit(key, "tier", n))


def roll_items(key: bytes, n: int, tier: str, table: LootTable) -> list[Item]:
    """The items of treasure `n`: `ROLLS[tier]` weighted draws, merged by item id in draw order."""
    entries = table.get(tier) or table.get("common") or []
    if not entries:
        return []
    weights = [(str(i), e.weight) for i, e in enumerate(entries)]
    counts: dict[str, list[int]] = {}
    for r in range(ROLLS[tier]):
        e = entries[int(rng.weighted_choice(weights, rng.unit(key, "item", n, r)))]
        lo, hi = e.count
        count = lo + int(rng.unit(key, "count", n, r) * (hi - lo + 1))
        acc = counts.setdefault(e.item, [0, 0])
        acc[0] += count
        acc[1] += count * e.value
    return [Item(item, c, v) for item, (c, v) in counts.items()]


def table_named(tables: dict[str, LootTable], name: str) -> LootTable:
    if name not in tables:
        known = ", ".join(sorted(tables)) or "none"
        raise UnknownLootTable(f"loot table {name!r} is not configured (known: {known})", field="loot")
    return tables[name]


def item_wire(items: list[Item]) -> list[dict[str, object]]:
    return [{"item": i.item, "count": i.count, "value": i.value} for i in items]
