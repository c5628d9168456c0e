"""The ledger: what each player claimed and was granted, read two ways. Read-only; no I/O.

- A player's **history** (`history`): their claims, grants, acks and the admin actions about them,
  newest first, a page at a time. Each source below yields the player's entries as
  `(key, build, arg)`; the key `(at, kind rank, id)` is unique and orders every entry completely.
  A page holds the `limit` greatest keys strictly below the cursor (the last key of the page
  before), so paging never repeats or skips an entry that was there when the first page was read,
  whatever is added meanwhile. A new kind of entry is one more source in `SOURCES`.
- A hunt's **export** (`export_rows`): one row per claim, with its grant, in treasure order and then
  claim order, a chunk at a time (claims are only ever appended, so a position stays valid).

A player's entries come from `Engine.claims_of` (an index kept by `_add_claim`, on the live and
the replay path alike), so a page costs O(e log limit) for a player with e entries, whoever else plays.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

import msgspec

from cairn.core import loot as lootmod
from cairn.core.engine import Engine, Grant, Treasure
from cairn.core.errors import InvalidCursor
from cairn.core.grants import grant_id_of
from cairn.core.records import Admin, Claimed
from cairn.core.spec import rfc3339

#: Entry kinds, by rank: entries at the same instant are ordered by it (an ack after its grant,
#: a grant after its claim).
KINDS = ("claim", "grant", "ack", "admin")
RANK = {k: i for i, k in enumerate(KINDS)}
DEFAULT_LIMIT, MAX_LIMIT = 50, 500

Key = tuple[float, int, str]  # (at, rank of the kind, id): unique per entry
Row = tuple[Key, Callable[[Engine, Any], dict[str, Any]], Any]  # an entry, built only if on the page
Source = Callable[[Engine, str], Iterator[Row]]


# ---- the sources of a player's history ------------------------------------------------------------
def claim_entries(eng: Engine, player: str) -> Iterator[Row]:
    """Each claim the player made."""
    for c in eng.claims_of(player):
        yield (c.at, 0, c.claim_id), _claim, c


def grant_entries(eng: Engine, player: str) -> Iterator[Row]:
    """Each grant made to the player, with its state, and each ack of one."""
    grants = eng.grants
    for c in eng.claims_of(player):
        g, at = _grant_of(eng, c, grants)
        if g is None:
            continue
        yield (at, 1, g.grant_id), _grant, (c, g, at)
        if g.ack is not None:
            yield (g.ack.at, 2, g.grant_id), _ack, (c, g)


def admin_entries(eng: Engine, player: str) -> Iterator[Row]:
    """Each operator action about the player (`Engine.audit`, the applied `Admin` records). O(actions)."""
    for rec in eng.audit:
        if rec.player == player:
            yield (rec.at, 3, f"{rec.ev:020d}"), _admin, rec


SOURCES: tuple[Source, ...] = (claim_entries, grant_entries, admin_entries)


def _claim(eng: Engine, c: Claimed) -> dict[str, Any]:
    view = eng.claim_view(c)
    return {
        "kind": "claim", "at": view["at"], "hunt": c.hunt, "claim_id": c.claim_id, "treasure": view["treasure"],
        "tier": _tier(eng, c), "share": view["share"], "items": view["items"],
    }  # fmt: skip


def _grant(eng: Engine, arg: tuple[Claimed, Grant, float]) -> dict[str, Any]:
    c, g, at = arg
    return {
        "kind": "grant", "at": rfc3339(at), "hunt": c.hunt, "grant_id": g.grant_id, "claim_id": c.claim_id,
        "treasure": f"{c.hunt}#{c.n}", "items": lootmod.item_wire(g.items), "state": g.status,
    }  # fmt: skip


def _ack(eng: Engine, arg: tuple[Claimed, Grant]) -> dict[str, Any]:
    c, g = arg
    assert g.ack is not None
    return {
        "kind": "ack", "at": rfc3339(g.ack.at), "hunt": c.hunt, "grant_id": g.grant_id, "claim_id": c.claim_id,
        "treasure": f"{c.hunt}#{c.n}",
    }  # fmt: skip


def _admin(eng: Engine, rec: Admin) -> dict[str, Any]:
    return {
        "kind": "admin", "at": rfc3339(rec.at), "hunt": rec.hunt or None, "action": rec.action,
        "target": rec.target or None, "reason": rec.reason, "by": rec.label, "id": rec.ev,
    }  # fmt: skip


def _tier(eng: Engine, c: Claimed) -> str:
    return eng.hunts[c.hunt].treasures[c.n - 1].tier


def _grant_of(eng: Engine, c: Claimed, grants: dict[str, Grant]) -> tuple[Grant | None, float]:
    """The grant a claim made, and when: a first-finder's with the claim, a shared bounty's finder's when
    its window closed (none while it is open)."""
    if c.grant_id is not None:
        return grants.get(c.grant_id), c.at
    settled = eng.hunts[c.hunt].treasures[c.n - 1].settled
    if settled is None:
        return None, 0.0
    return grants.get(grant_id_of(c.claim_id, "pool")), settled.at


# ---- pages ---------------------------------------------------------------------------------------
def history(
    eng: Engine, player: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None,
    sources: tuple[Source, ...] = SOURCES,
) -> dict[str, Any]:  # fmt: skip
    """One page of the player's history, newest first: `{player, entries, next_cursor}`. A player with no
    entries (or unknown) has an empty history. Raises InvalidCursor for a cursor not made here."""
    below = None if cursor is None else decode_cursor(cursor)
    rows = (row for source in sources for row in source(eng, player) if below is None or row[0] < below)
    top = heapq.nlargest(limit + 1, rows, key=_key)
    more = len(top) > limit
    del top[limit:]
    return {
        "player": player,
        "entries": [build(eng, arg) for _, build, arg in top],
        "next_cursor": encode_cursor(top[-1][0]) if more else None,
    }


_key = itemgetter(0)


def encode_cursor(key: Key) -> str:
    """An opaque cursor for "the entries after this one": URL-safe base64 of `[at, kind, id]`.

    >>> decode_cursor(encode_cursor((1795716000.25, 1, "g_ab"))) == (1795716000.25, 1, "g_ab")
    True
    """
    at, rank, id_ = key
    return base64.urlsafe_b64encode(msgspec.json.encode([at, KINDS[rank], id_])).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Key:
    """The key a cursor stands for; InvalidCursor if it is not one `encode_cursor` could have made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, kind, id_ = msgspec.json.decode(raw, type=tuple[float, str, str])
    except (ValueError, binascii.Error, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidCursor("cursor is not one this server handed out", field="cursor") from None
    if kind not in RANK or not math.isfinite(at) or not id_ or len(id_) > 128:
        raise InvalidCursor("cursor is not one this server handed out", field="cursor")
    return at, RANK[kind], id_


# ---- a hunt's export -----------------------------------------------------------------------------
#: The columns of an export row, in order.
EXPORT_FIELDS = (
    "hunt", "treasure", "tier", "claim_id", "player", "at", "share", "value", "items", "grant_id", "grant_state",
    "acked_at", "voided",
)  # fmt: skip


def _claims_of(eng: Engine, hunt: str, t: Treasure) -> Sequence[Claimed]:
    """The treasure's claims, with those an operator voided and hid the treasure again after (they left it)."""
    claims: Sequence[Claimed] = t.claims
    if eng.voided:
        have = {c.claim_id for c in claims}
        gone = [eng.claims[cid] for cid in eng.voided if cid not in have and cid in eng.claims]
        gone = [c for c in gone if c.hunt == hunt and c.n == t.n]
        if gone:
            claims = sorted([*claims, *gone], key=lambda c: c.seq)
    return claims


def export_rows(
    eng: Engine, hunt: str, pos: tuple[int, int] = (0, 0), count: int = 1000
) -> tuple[list[dict[str, Any]], tuple[int, int]]:
    """Up to `count` rows of the hunt's claims from `pos` (treasure index, claim index), each with its grant
    (`EXPORT_FIELDS`), and the position after them. Raises HuntNotFound. O(count)."""
    h = eng.hunt(hunt)
    grants = eng.grants
    ti, ci = pos
    out: list[dict[str, Any]] = []
    treasures = h.treasures
    while ti < len(treasures) and len(out) < count:
        t = treasures[ti]
        claims = _claims_of(eng, hunt, t)
        while ci < len(claims) and len(out) < count:
            c = claims[ci]
            ci += 1
            view = eng.claim_view(c)
            g, _ = _grant_of(eng, c, grants)
            out.append({
                "hunt": hunt, "treasure": view["treasure"], "tier": t.tier, "claim_id": c.claim_id,
                "player": c.player, "at": view["at"], "share": view["share"],
                "value": sum(i.value for i in g.items) if g is not None else 0, "items": view["items"],
                "grant_id": g.grant_id if g is not None else None, "grant_state": g.status if g is not None else None,
                "acked_at": rfc3339(g.ack.at) if g is not None and g.ack is not None else None,
                "voided": c.claim_id in eng.voided,
            })  # fmt: skip
        if ci >= len(claims):
            ti, ci = ti + 1, 0
    return out, (ti, ci)
