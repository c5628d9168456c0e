"""A player's history (`cairn.core.ledger.history`) and a hunt's export rows, on the engine alone.

History pages are newest first by (at, kind, id), strictly below their cursor: stable while new
entries arrive. The per-player index behind them (`Engine.by_player`) is the same after replay
(either path) as live.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest

from cairn.core import ledger
from cairn.core import records as rec
from cairn.core.admin import Request as AdminRequest
from cairn.core.engine import Limits
from cairn.core.errors import InvalidCursor
from cairn.core.grants import grant_id_of
from cairn.core.records import AnyRecord
from tests.support import SECRET, T0, Live, create, grid_world, positions

WORLD = grid_world()
SHARED = {"mode": "shared_bounty", "window": "30s", "pool": 100}


class Journaled(Live):
    """The live engine, keeping every record it applies: its journal."""

    __slots__ = ("log",)

    def __init__(self) -> None:
        super().__init__(SECRET, {"overworld": WORLD}, limits=Limits(dig_rate=1e6, dig_burst=10**6, max_speed=1e9))
        self.log: list[AnyRecord] = []

    def apply(self, records: Iterable[AnyRecord]) -> None:
        records = list(records)
        self.log.extend(records)
        super().apply(records)


def dig(eng: Live, hunt: str, n: int, player: str, now: float) -> Any:
    p = positions(eng, hunt)[n - 1]
    return eng.dig(hunt, player, (p[0], p[1] + 1, p[2]), p, None, now, teleport=True).result


def everything(eng: Live, player: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = ledger.history(eng, player, ledger.MAX_LIMIT)["entries"]
    return out


def test_entries_newest_first_with_grant_states_and_acks() -> None:
    eng = Journaled()
    create(eng, id="ff", treasures=3)
    c1 = dig(eng, "ff", 1, "ann", T0 + 1)["claim"]
    c2 = dig(eng, "ff", 2, "ann", T0 + 2)["claim"]
    dig(eng, "ff", 3, "bob", T0 + 3)
    g1 = eng.claims_of("ann")[0].grant_id
    assert g1 is not None
    eng.ack(g1, T0 + 4)
    page = ledger.history(eng, "ann")
    assert page["player"] == "ann" and page["next_cursor"] is None
    got = [(e["kind"], e["at"][-7:-1], e.get("claim_id"), e.get("state")) for e in page["entries"]]
    assert got == [
        ("ack", "04.000", c1["claim_id"], None),
        ("grant", "02.000", c2["claim_id"], "pending"),
        ("claim", "02.000", c2["claim_id"], None),
        ("grant", "01.000", c1["claim_id"], "acked"),
        ("claim", "01.000", c1["claim_id"], None),
    ]
    claim = page["entries"][-1]
    t1 = eng.hunts["ff"].treasures[0]
    assert claim == {
        "kind": "claim", "at": c1["at"], "hunt": "ff", "claim_id": c1["claim_id"], "treasure": "ff#1",
        "tier": t1.tier, "share": 1.0, "items": c1["items"],
    }  # fmt: skip
    grant = page["entries"][-2]
    assert grant["grant_id"] == g1 and grant["items"] == c1["items"] and grant["treasure"] == "ff#1"
    assert page["entries"][0] == {
        "kind": "ack", "at": grant["at"][:-7] + "04.000Z", "hunt": "ff", "grant_id": g1, "claim_id": c1["claim_id"],
        "treasure": "ff#1",
    }  # fmt: skip
    assert [e["kind"] for e in everything(eng, "bob")] == ["grant", "claim"]


def test_a_shared_bounty_grant_appears_when_its_window_closes() -> None:
    eng = Journaled()
    create(eng, id="sb", treasures=2, prize=SHARED)
    dig(eng, "sb", 1, "ann", T0 + 1)
    dig(eng, "sb", 1, "bob", T0 + 2)
    [claim] = everything(eng, "ann")
    assert claim["kind"] == "claim" and claim["share"] is None and claim["items"] == []
    eng.tick(T0 + 40)  # the window closed at T0 + 31
    entries = everything(eng, "ann")
    assert [(e["kind"], e["at"][-7:-1]) for e in entries] == [("grant", "31.000"), ("claim", "01.000")]
    assert entries[0]["state"] == "pending" and entries[0]["items"][0]["count"] == 50
    assert entries[1]["share"] == 0.5 and entries[1]["items"] == entries[0]["items"]
    eng.ack(entries[0]["grant_id"], T0 + 50)
    assert [e["kind"] for e in everything(eng, "ann")] == ["ack", "grant", "claim"]
    assert everything(eng, "ann")[1]["state"] == "acked"


def test_an_unknown_player_has_an_empty_history() -> None:
    eng = Journaled()
    create(eng, id="ff", treasures=2)
    dig(eng, "ff", 1, "ann", T0 + 1)
    assert ledger.history(eng, "nobody") == {"player": "nobody", "entries": [], "next_cursor": None}


def test_pages_are_stable_while_entries_arrive() -> None:
    seed = random.randrange(2**32)
    rnd = random.Random(seed)
    eng = Journaled()
    create(eng, id="a", treasures=40)
    create(eng, id="b", treasures=40, prize=SHARED)
    # Claims, some at the very same instant (ties broken by kind, then id), some acked.
    t = T0 + 1
    for n in range(1, 25):
        dig(eng, rnd.choice("ab"), n, "ann", t)
        t += rnd.choice((0.0, 0.0, 0.5, 1.0))
    for g in list(eng.grants)[::2]:
        eng.ack(g, t)
    before = everything(eng, "ann")
    assert len(before) > 30
    pages: list[dict[str, Any]] = []
    cursor = None
    n = 25
    while True:
        page = ledger.history(eng, "ann", rnd.randint(1, 9), cursor)
        pages.extend(page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # Meanwhile: new claims, acks of old grants and a window closing, all newer than any entry paged.
        t += 1
        n += 1
        dig(eng, rnd.choice("ab"), n, "ann", t)
        pending = [g for g in eng.grants.values() if g.ack is None and g.player == "ann"]
        if pending:
            eng.ack(rnd.choice(pending).grant_id, t)
        eng.tick(t)
    # Each page read the states of its own moment: compare what identifies each entry.
    ident = [(e["kind"], e["at"], e.get("claim_id"), e.get("grant_id")) for e in pages]
    assert ident == [(e["kind"], e["at"], e.get("claim_id"), e.get("grant_id")) for e in before], seed
    now = everything(eng, "ann")
    assert len(now) > len(before)


def test_a_page_holds_the_greatest_keys_below_its_cursor() -> None:
    eng = Journaled()
    create(eng, id="ff", treasures=6)
    for n in range(1, 7):
        dig(eng, "ff", n, "ann", T0 + 1)  # one instant: the order is kind, then id
    full = everything(eng, "ann")
    keys = [(e["kind"], e.get("grant_id") or e["claim_id"]) for e in full]
    assert keys == sorted(keys, key=lambda k: (ledger.RANK[k[0]], k[1]), reverse=True)
    first = ledger.history(eng, "ann", 5)
    assert first["entries"] == full[:5] and first["next_cursor"] is not None
    rest = ledger.history(eng, "ann", 500, first["next_cursor"])
    assert rest["entries"] == full[5:] and rest["next_cursor"] is None
    exact = ledger.history(eng, "ann", len(full))
    assert exact["entries"] == full and exact["next_cursor"] is None


@pytest.mark.parametrize("cursor", [
    "%%%", "not-base64!", "", "AAAA", ledger.encode_cursor((T0, 0, "c_1"))[:-2],
    "WzEsImNsYWltIl0",  # [1,"claim"]: two of three parts
    "WzEsIndoYXQiLCJjXzEiXQ",  # [1,"what","c_1"]: no such kind
    "WyJ4IiwiY2xhaW0iLCJjXzEiXQ",  # ["x","claim","c_1"]
    "WzEsImNsYWltIiwiIl0",  # [1,"claim",""]
])  # fmt: skip
def test_a_cursor_not_made_here_is_refused(cursor: str) -> None:
    eng = Journaled()
    with pytest.raises(InvalidCursor) as e:
        ledger.decode_cursor(cursor)
    assert e.value.code == "invalid_cursor" and e.value.status == 400 and e.value.field == "cursor"
    if cursor:
        with pytest.raises(InvalidCursor):
            ledger.history(eng, "ann", 10, cursor)


def test_cursors_round_trip_every_kind() -> None:
    for rank in range(len(ledger.KINDS)):
        key = (T0 + 0.123456789, rank, "g_0123abcd")
        assert ledger.decode_cursor(ledger.encode_cursor(key)) == key


def journal_and_history(eng: Journaled, players: list[str]) -> Any:
    return [ledger.history(eng, p, 500) for p in players]


def test_replay_gives_the_live_index_and_history() -> None:
    eng = Journaled()
    create(eng, id="ff", treasures=8)
    create(eng, id="sb", treasures=8, prize=SHARED)
    players = ["ann", "bob", "cy"]
    for n in range(1, 9):
        for i, p in enumerate(players):
            if (n + i) % 2:
                dig(eng, "ff", n, p, T0 + n + i / 10)
            dig(eng, "sb", n, p, T0 + n + i / 10)
    eng.tick(T0 + 20)  # some windows closed
    for g in list(eng.grants)[::3]:
        eng.ack(g, T0 + 21)
    log = rec.decode_many(rec.encode_many(eng.log))
    for events_after in (0, log[-1].seq):  # every record applied, and replay's fast path for old claims
        again = Journaled()
        again.replay(log, events_after=events_after)
        assert again.by_player == eng.by_player
        assert {p: again.finds(p) for p in players} == {p: eng.finds(p) for p in players}
        assert journal_and_history(again, players) == journal_and_history(eng, players)
    snap = Journaled()
    snap.replay(rec.decode_many(rec.encode_many(eng.retained())))
    assert journal_and_history(snap, players) == journal_and_history(eng, players)
    assert sum(len(eng.claims_of(p)) for p in players) == len(eng.claims)


def act(eng: Journaled, action: str, player: str, label: str, reason: str, now: float) -> None:
    eng.apply(eng.decide_admin(AdminRequest(action, player=player, label=label, reason=reason), now).records)


def test_operator_actions_about_the_player_are_entries() -> None:
    eng = Journaled()
    create(eng, id="ff", treasures=2)
    c = dig(eng, "ff", 1, "ann", T0 + 1)["claim"]
    act(eng, "player.bar", "ann", "ops-1", "x-ray mod", T0 + 2)
    act(eng, "player.bar", "bob", "ops-1", "spam", T0 + 3)
    act(eng, "player.unbar", "ann", "ops-2", "appeal", T0 + 4)
    entries = everything(eng, "ann")
    assert [(e["kind"], e.get("action")) for e in entries] == [
        ("admin", "player.unbar"), ("admin", "player.bar"), ("grant", None), ("claim", None),
    ]  # fmt: skip
    bar = eng.audit[0]
    assert entries[1] == {
        "kind": "admin", "at": c["at"][:-7] + "02.000Z", "hunt": None, "action": "player.bar", "target": None,
        "reason": "x-ray mod", "by": "ops-1", "id": bar.ev,
    }  # fmt: skip
    assert [e["by"] for e in everything(eng, "bob")] == ["ops-1"]
    cursor = ledger.history(eng, "ann", 1)["next_cursor"]
    assert ledger.history(eng, "ann", 5, cursor)["entries"] == entries[1:]
    again = Journaled()
    again.replay(rec.decode_many(rec.encode_many(eng.log)))
    assert everything(again, "ann") == entries


def test_export_rows_cover_every_claim_once_in_chunks() -> None:
    eng = Journaled()
    create(eng, id="sb", treasures=5, prize=SHARED)
    for n in range(1, 6):
        for p in ("ann", "bob", "cy")[: n % 3 + 1]:
            dig(eng, "sb", n, p, T0 + n)
    eng.tick(T0 + 32.5)  # the windows of #1 and #2 closed
    eng.ack(next(g for g in eng.grants.values() if g.player == "bob").grant_id, T0 + 34)
    rows, pos = ledger.export_rows(eng, "sb", (0, 0), 10_000)
    assert pos == (5, 0) and len(rows) == len(eng.claims)
    assert [(r["treasure"], r["player"]) for r in rows] == [
        (f"sb#{c.n}", c.player) for t in eng.hunts["sb"].treasures for c in t.claims
    ]
    assert {r["claim_id"] for r in rows} == set(eng.claims)
    by_state = {(r["treasure"], r["player"]): (r["grant_state"], r["value"], r["share"]) for r in rows}
    assert by_state[("sb#1", "ann")] == ("pending", 50, 0.5)
    assert by_state[("sb#1", "bob")] == ("acked", 50, 0.5)
    assert by_state[("sb#3", "ann")] == (None, 0, None)  # its window is still open: no grant yet
    acked = next(r for r in rows if r["grant_state"] == "acked")
    assert acked["player"] == "bob" and acked["acked_at"].endswith("34.000Z")
    assert acked["grant_id"] == grant_id_of(acked["claim_id"], "pool")
    for size in (1, 2, 4, 7):
        chunked, pos = [], (0, 0)
        while True:
            part, pos = ledger.export_rows(eng, "sb", pos, size)
            if not part:
                break
            assert len(part) <= size
            chunked.extend(part)
        assert chunked == rows
