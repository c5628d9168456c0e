"""Records: the facts a write produces. One record feeds the journal, the event stream and the boards.

Each record carries its `seq` (strictly rising, from the engine), `at` (UNIX seconds) and `ev`
(the id of the first event it emits). Replaying the same records gives the same state and events.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cairn.core.loot import Item


class Record(msgspec.Struct, tag_field="t", array_like=True, frozen=True):
    seq: int
    at: float
    ev: int


class HuntCreated(Record, tag="hc", frozen=True):
    hunt: str
    spec: bytes  # canonical JSON of the HuntSpec
    starts_at: float
    ends_at: float
    pos: list[tuple[int, int, int]]
    tiers: list[str]
    loot: list[list[Item]]
    tags: list[list[str]]
    # Live treasures of other hunts that ruled out a candidate site: placing again with these to avoid gives
    # `pos` (`hunt verify`). Older records list every live treasure near the area, which gives the same.
    avoid: list[tuple[int, int, int]]


class HuntStarted(Record, tag="hs", frozen=True):
    hunt: str


class HuntEnded(Record, tag="he", frozen=True):
    hunt: str
    reason: str  # "time" | "admin"


class Claimed(Record, tag="cl", frozen=True):
    hunt: str
    n: int
    player: str
    claim_id: str
    request_id: str | None
    share: float | None  # 1.0 for first-finder; None while a shared bounty's window is open
    items: list[Item]
    grant_id: str | None  # the grant created with the claim (first-finder)


class Settled(Record, tag="bs", frozen=True):
    """A shared bounty's window closed: the pool split among finders in claim order."""

    hunt: str
    n: int
    amounts: list[int]
    grant_ids: list[str]


class Acked(Record, tag="ga", frozen=True):
    grant_id: str


class Recurring(Record, tag="rs", frozen=True):
    """A recurring spec was registered (or replaced): its firings make hunt instances."""

    spec: bytes  # canonical JSON of the HuntSpec, with `schedule`


class WorldAdded(Record, tag="wa", frozen=True):
    """A world was registered at runtime: upload-only, empty until its sites are uploaded."""

    world: str


class WorldRetired(Record, tag="wr", frozen=True):
    """A runtime-registered world was retired (no live, scheduled or recurring hunt used it)."""

    world: str


class Admin(Record, tag="ad", frozen=True):
    """An operator's action (`cairn/core/admin.py`): what it does, on what, who asked and why.

    Applied like every other record; the engine also keeps each one in its audit log.
    """

    action: str  # "player.bar", "claim.void", ... (`cairn.core.admin.ACTIONS`)
    hunt: str  # the hunt it acts on; "" for none
    player: str  # the player it concerns; "" for none
    target: str  # what it acts on within that: a claim id, a grant id, a key id ... ("" for the hunt or player)
    label: str  # the label of the key that asked
    reason: str
    args: dict[str, Any] = {}


AnyRecord = (
    HuntCreated | HuntStarted | HuntEnded | Claimed | Settled | Acked | Recurring | WorldAdded | WorldRetired | Admin
)

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(AnyRecord)
_dec_many = msgspec.msgpack.Decoder(list[AnyRecord])


def encode(rec: Record) -> bytes:
    return _enc.encode(rec)


def decode(data: bytes) -> AnyRecord:
    rec: AnyRecord = _dec.decode(data)
    return rec


def encode_many(recs: list[AnyRecord]) -> bytes:
    return _enc.encode(recs)


def decode_many(data: bytes) -> list[AnyRecord]:
    return _dec_many.decode(data)
