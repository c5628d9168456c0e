"""Undoing and adjusting (`cairn/core/undo.py`) on the core: each action's effect, refusals, replay
equal to live operation, and a record applied twice applied once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import pytest

from cairn.core import views
from cairn.core.admin import Request
from cairn.core.boards import Boards, BoardSpec, Find
from cairn.core.engine import Engine
from cairn.core.errors import (
    AdminConflict,
    ClaimNotFound,
    ClaimVoided,
    GrantAcked,
    GrantCancelled,
    HuntNotActive,
    HuntNotEnded,
    HuntPaused,
    PlayerBarred,
    UnknownField,
    ValidationError,
)
from cairn.core.records import Admin, AnyRecord
from cairn.net import schemas
from tests.support import SECRET, T0, Live, create, engine, grid_world

A = T0 + 10  # when the actions happen


def act(eng: Live, action: str, now: float = A, **kw: Any) -> Admin:
    """Decide and apply an operator's action, as the embedded runtime does."""
    args = kw.pop("args", None)
    out = eng.decide_admin(Request(action, label="ops", reason=kw.pop("reason", "ticket 1"), args=args, **kw), now)
    eng.apply(out.records)
    rec = out.records[0]
    assert isinstance(rec, Admin)
    return rec


def find(eng: Live, n: int, player: str, now: float = T0 + 1, hunt: str = "h1") -> dict[str, Any]:
    pos = eng.hunts[hunt].treasures[n - 1].pos
    out = eng.dig(hunt, player, pos, pos, f"{player}-{n}-{now}", now, teleport=True)
    assert out.result["result"] == "found", out.result
    claim: dict[str, Any] = out.result["claim"]
    return claim


def score(eng: Engine, player: str, board: str = "alltime") -> float | None:
    return eng.boards.boards[board].current.score(player)


def types(eng: Engine) -> list[str]:
    return [e.type for e in eng.new_events]


# ---- claim.void ------------------------------------------------------------------------------------
def test_void_cancels_a_pending_grant_corrects_the_boards_and_can_hide_the_treasure_again() -> None:
    eng = engine()
    create(eng)
    c1 = find(eng, 1, "ann")
    c2 = find(eng, 2, "ann")
    value1 = sum(i["value"] for i in c1["items"])
    value2 = sum(i["value"] for i in c2["items"])
    assert score(eng, "ann") == value1 + value2
    grant = eng.claims[c1["claim_id"]].grant_id
    assert grant is not None
    p1 = eng.hunts["h1"].treasures[0].pos
    near = tuple(a + d for a, d in zip(p1, (3, 0, 0), strict=True))
    far = [(p1[0] + dx, p1[1], p1[2] + dz) for dx, dz in ((70, 0), (0, -70), (-100, 0), (0, 120), (200, 0))]
    bands = [eng.dig("h1", "dan", s, s, None, T0 + 3 + i, teleport=True).result["temperature"] for i, s in
             enumerate(far)]  # fmt: skip
    assert eng.hint("h1", "bob", near, None, T0 + 2, teleport=True).result["hint"]["temperature"] != "burning"
    eng.new_events.clear()

    act(eng, "claim.void", target=c1["claim_id"], args={"rehide": True})
    hint = eng.hint("h1", "bob", near, None, A + 100, teleport=True).result["hint"]
    assert hint["temperature"] == "burning", "hinted again"
    fresh = engine()
    fresh.replay(eng.retained())  # no cached temperature tiles
    after = [eng.dig("h1", "dan", s, s, None, A + 101 + i, teleport=True).result["temperature"] for i, s in
             enumerate(far)]  # fmt: skip
    assert after == [fresh.dig("h1", "dan", s, s, None, A + 101 + i, teleport=True).result["temperature"] for i, s
                     in enumerate(far)] != bands  # fmt: skip
    entered = eng.positions("overworld", [("eve", p1, True)], A + 200).result["events"]
    assert [(e.type, e.data["treasure"]) for e in entered] == [("proximity.enter", "h1#1")]
    assert eng.claim_view(eng.claims[c1["claim_id"]])["voided"] is True
    assert "voided" not in eng.claim_view(eng.claims[c2["claim_id"]])
    assert eng.grant_view(grant)["status"] == "cancelled"
    assert grant not in {g["grant_id"] for g in eng.grants_of("ann")}
    assert score(eng, "ann") == value2  # the voided find no longer counts
    assert types(eng)[:3] == ["claim.voided", "treasure.rehidden", "grant.cancelled"]
    view = eng.hunt_view("h1", A)
    assert view["treasures"][0]["state"] == "hidden" and view["treasures"][0]["finders"] == []
    assert view["treasures_left"] == 4
    # Live again: another player finds it; the voided player cannot claim it a second time.
    pos = eng.hunts["h1"].treasures[0].pos
    assert eng.dig("h1", "ann", pos, pos, "again", A + 1, teleport=True).result["result"] == "taken"
    c3 = find(eng, 1, "bob", A + 2)
    assert eng.hunt_view("h1", A + 2)["treasures"][0]["finders"] == ["bob"]
    assert score(eng, "bob") == value1
    with pytest.raises(ClaimVoided):
        act(eng, "claim.void", target=c1["claim_id"])
    with pytest.raises(ClaimNotFound):
        act(eng, "claim.void", target="c_nope")
    with pytest.raises(ValidationError):
        act(eng, "claim.void", target=c3["claim_id"], args={"rehide": "yes"})
    with pytest.raises(UnknownField):
        act(eng, "claim.void", target=c3["claim_id"], args={"rehid": True})


def test_void_of_an_acked_grant_revokes_it_and_rehide_is_refused_once_the_hunt_ended() -> None:
    eng = engine()
    create(eng)
    c = find(eng, 1, "ann")
    grant = eng.claims[c["claim_id"]].grant_id
    assert grant is not None
    eng.ack(grant, T0 + 2)
    eng.end_hunt("h1", T0 + 3)
    with pytest.raises(AdminConflict, match="cannot be hidden again"):
        act(eng, "claim.void", target=c["claim_id"], args={"rehide": True})
    eng.new_events.clear()
    act(eng, "claim.void", target=c["claim_id"])
    assert eng.grant_view(grant)["status"] == "revoked"
    revoked = [e for e in eng.new_events if e.type == "grant.revoked"]
    assert len(revoked) == 1 and revoked[0].data["player"] == "ann" and revoked[0].data["grant_id"] == grant
    assert revoked[0].data["items"] == c["items"]
    assert eng.ack(grant, A).records == ()  # acking an acked grant stays idempotent
    assert eng.hunt_view("h1", A)["treasures"][0]["state"] == "claimed"
    assert score(eng, "ann") is None
    # The dashboard's views, and a taken dig, leave the voided finder out too.
    t = eng.hunts["h1"].treasures[0]
    assert t.finders == ["ann"] and views.finders(eng, t) == []
    assert views.hunt_rows(eng, A, 30.0)[0]["finders"] == 0


def test_void_on_a_shared_bounty_waits_for_the_window_then_recounts() -> None:
    eng = engine()
    create(eng, prize={"mode": "shared_bounty", "window": "1m", "pool": 1000})
    c1 = find(eng, 1, "ann")
    find(eng, 1, "bob", T0 + 2)
    with pytest.raises(AdminConflict, match="window"):
        act(eng, "claim.void", target=c1["claim_id"])
    eng.tick(T0 + 120)
    assert score(eng, "ann") == 500
    act(eng, "claim.void", target=c1["claim_id"], now=T0 + 130)
    assert score(eng, "ann") is None and score(eng, "bob") == 500
    assert [g["grant_id"] for g in eng.grants_of("ann")] == []
    assert eng.hunt_view("h1", T0 + 130)["treasures"][0]["finders"] == ["bob"]


# ---- grants ----------------------------------------------------------------------------------------
def test_cancel_and_reissue() -> None:
    eng = engine()
    create(eng)
    g1 = eng.claims[find(eng, 1, "ann")["claim_id"]].grant_id
    g2 = eng.claims[find(eng, 2, "ann")["claim_id"]].grant_id
    assert g1 is not None and g2 is not None
    act(eng, "grant.cancel", target=g1)
    assert eng.grant_view(g1)["status"] == "cancelled"
    with pytest.raises(GrantCancelled):
        eng.ack(g1, A)
    with pytest.raises(GrantCancelled):
        act(eng, "grant.cancel", target=g1)
    eng.ack(g2, A)
    with pytest.raises(GrantAcked):
        act(eng, "grant.cancel", target=g2)

    eng.new_events.clear()
    rec = act(eng, "grant.reissue", target=g1)
    assert rec.hunt == "h1" and rec.player == "ann" and rec.args == {"grant_id": f"{g1}.r1"}
    new = eng.grant_view(f"{g1}.r1")
    assert new["status"] == "pending" and new["items"] == eng.grant_view(g1)["items"]
    assert types(eng) == ["grant.reissued"]  # the old one was cancelled already
    act(eng, "grant.reissue", target=g2)  # an acked grant given again: it stays acked
    assert eng.grant_view(g2)["status"] == "acked" and eng.grant_view(f"{g2}.r1")["status"] == "pending"
    rec = act(eng, "grant.reissue", target=f"{g1}.r1")
    assert eng.grant_view(f"{g1}.r1")["status"] == "cancelled"  # a pending one is replaced
    assert {g["grant_id"] for g in eng.grants_of("ann")} == {f"{g1}.r1.r1", f"{g2}.r1"}
    # Voiding the claim takes back every grant reissued for it.
    act(eng, "claim.void", target=eng.grants[g1].claim_id)
    assert eng.grant_view(f"{g1}.r1.r1")["status"] == "cancelled"
    with pytest.raises(ClaimVoided):
        act(eng, "grant.reissue", target=g1)


def test_a_grant_reissued_twice_pays_once() -> None:
    """A second reissue of a delivered grant while its first replacement is pending would be a second
    live payout for one claim (an operator's double click): refused until that one is delivered or cancelled."""
    eng = engine()
    create(eng)
    g = eng.claims[find(eng, 1, "ann")["claim_id"]].grant_id
    assert g is not None
    eng.apply(eng.ack(g, A).records)
    act(eng, "grant.reissue", target=g)
    with pytest.raises(AdminConflict, match=r"\.r1'.*still pending"):
        act(eng, "grant.reissue", target=g)
    assert f"{g}.r2" not in eng.grants
    assert [x["grant_id"] for x in eng.grants_of("ann")] == [f"{g}.r1"]  # one payout waits
    eng.apply(eng.ack(f"{g}.r1", A).records)
    act(eng, "grant.reissue", target=g)  # delivered: the operator may give it once more
    assert [x["grant_id"] for x in eng.grants_of("ann")] == [f"{g}.r2"]
    act(eng, "grant.cancel", target=f"{g}.r2")
    act(eng, "grant.reissue", target=g)  # cancelled: likewise
    assert [x["grant_id"] for x in eng.grants_of("ann")] == [f"{g}.r3"]


def test_an_ack_and_a_cancel_decided_at_once_apply_in_order() -> None:
    """Decided on two nodes against the same state, applied in the hunt's order: whichever came first wins."""
    for ack_first in (True, False):
        eng = engine()
        create(eng)
        g = eng.claims[find(eng, 1, "ann")["claim_id"]].grant_id
        assert g is not None
        ack = Engine.ack(eng, g, A).records
        cancel = Engine.decide_admin(eng, Request("grant.cancel", target=g, label="ops", reason="x"), A).records
        eng.apply([*ack, *cancel] if ack_first else [*cancel, *ack])
        assert eng.grant_view(g)["status"] == ("acked" if ack_first else "cancelled")


# ---- hunts -----------------------------------------------------------------------------------------
def test_extend_moves_the_end_timer() -> None:
    eng = engine()
    create(eng)  # 1h
    end = eng.hunts["h1"].ends_at
    act(eng, "hunt.extend", hunt="h1", args={"by": "30m"})
    assert eng.hunts["h1"].ends_at == end + 1800
    eng.tick(end + 1)
    assert eng.hunts["h1"].ended is None, "the END timer of the old end is ignored"
    assert eng.hunt_view("h1", end + 1)["state"] == "active"
    find(eng, 1, "ann", end + 2)
    with pytest.raises(ValidationError):
        act(eng, "hunt.extend", hunt="h1", args={"ends_at": "2020-01-01T00:00:00Z"})
    with pytest.raises(ValidationError):
        act(eng, "hunt.extend", hunt="h1", args={"by": "1h", "ends_at": "2030-01-01T00:00:00Z"})
    with pytest.raises(ValidationError):
        act(eng, "hunt.extend", hunt="h1", args={"ends_at": "tomorrow"})
    # Neither a time before year 1 nor a duration past any float (or in another script's digits) gets past the check.
    for args in ({"ends_at": "0001-01-01T00:00:00+01:00"}, {"by": "9" * 400 + "h"}, {"by": "\u0661h"}, {"by": "１h"}):
        with pytest.raises(ValidationError) as refused:
            act(eng, "hunt.extend", hunt="h1", args=args)
        assert refused.value.field == next(iter(args))
    assert eng.hunts["h1"].ends_at == end + 1800
    eng.tick(end + 1800)
    assert eng.hunts["h1"].ended is not None and eng.hunts["h1"].ended.at == end + 1800
    with pytest.raises(HuntNotActive):
        act(eng, "hunt.extend", hunt="h1", args={"by": "1h"}, now=end + 1900)


def test_pause_refuses_digs_and_hints_until_resumed() -> None:
    eng = engine()
    create(eng)
    act(eng, "hunt.pause", hunt="h1")
    pos = eng.hunts["h1"].treasures[0].pos
    with pytest.raises(HuntPaused):
        eng.dig("h1", "ann", pos, pos, "r", A + 1)
    with pytest.raises(HuntPaused):
        eng.hint("h1", "ann", pos, None, A + 1)
    assert eng.hunt_view("h1", A)["paused"] is True
    with pytest.raises(AdminConflict):
        act(eng, "hunt.pause", hunt="h1")
    act(eng, "hunt.resume", hunt="h1")
    with pytest.raises(AdminConflict):
        act(eng, "hunt.resume", hunt="h1")
    assert find(eng, 1, "ann", A + 2)


def test_a_paused_hunt_that_ended_is_not_resumed() -> None:
    eng = engine()
    create(eng)  # 1h
    act(eng, "hunt.pause", hunt="h1")
    end = eng.hunts["h1"].ends_at
    eng.tick(end)
    assert eng.hunts["h1"].ended is not None
    with pytest.raises(HuntNotActive):
        act(eng, "hunt.resume", hunt="h1", now=end + 1)
    assert not [e for e in eng.audit if e.action == "hunt.resume"]


def test_every_action_refuses_a_field_it_does_not_take() -> None:
    """SPEC: unknown fields are rejected; every action refuses a field it does not take, before it checks
    anything else (`Action.takes`, checked once in `Operator.admin`)."""
    eng = engine()
    create(eng)
    c = find(eng, 1, "ann")
    g = eng.claims[c["claim_id"]].grant_id
    hook = {"url": "https://example.com/hook", "events": ["hunt."], "secret": "s" * 32}
    act(eng, "webhook.add", target="wh1", args=hook)
    act(eng, "player.bar", player="bob")
    asks: list[dict[str, Any]] = [
        {"action": "player.bar", "player": "cy"},
        {"action": "player.unbar", "player": "bob"},
        {"action": "player.clear_flags", "player": "ann"},
        {"action": "claim.void", "target": c["claim_id"]},
        {"action": "grant.cancel", "target": g},
        {"action": "grant.reissue", "target": g},
        {"action": "hunt.extend", "hunt": "h1"},
        {"action": "hunt.pause", "hunt": "h1"},
        {"action": "hunt.rename", "hunt": "h1"},
        {"action": "webhook.add", "target": "wh2"},
        {"action": "webhook.remove", "target": "wh1"},
        {"action": "webhook.resume", "target": "wh1"},
    ]
    audited = len(eng.audit)
    for ask in asks:
        action = ask.pop("action")
        with pytest.raises(UnknownField, match="'bogus'"):
            act(eng, action, args={"bogus": 1}, **ask)
    assert len(eng.audit) == audited
    eng.apply(eng.end_hunt_admin(Request("hunt.end", "h1", label="ops", reason="done"), A).records)
    with pytest.raises(UnknownField):  # ending an ended hunt is idempotent, with a body it takes
        eng.end_hunt_admin(Request("hunt.end", "h1", label="ops", reason="again", args={"bogus": 1}), A)


def test_rename_end_and_archive() -> None:
    eng = engine()
    create(eng)
    act(eng, "hunt.rename", hunt="h1", args={"name": "Friday Night"})
    assert eng.list_hunts(A)[0]["name"] == "Friday Night"
    with pytest.raises(ValidationError):
        act(eng, "hunt.rename", hunt="h1", args={"name": ""})
    with pytest.raises(HuntNotEnded):
        act(eng, "hunt.delete", hunt="h1")
    out = eng.end_hunt_admin(Request("hunt.end", "h1", label="ops", reason="not given"), A)
    eng.apply(out.records)
    assert [type(r).__name__ for r in out.records] == ["Admin", "HuntEnded"]
    assert eng.end_hunt_admin(Request("hunt.end", "h1", label="ops", reason="again"), A).records == ()
    c_view = eng.hunt_view("h1", A)
    act(eng, "hunt.delete", hunt="h1", now=A + 1)
    assert eng.list_hunts(A + 1) == [] and [h["id"] for h in eng.list_hunts(A + 1, archived=True)] == ["h1"]
    assert eng.hunt_view("h1", A + 1)["archived"] is True
    assert views.hunt_rows(eng, A + 1, 30.0) == []  # nor in the dashboard's list
    assert eng.hunt_view("h1", A + 1)["treasures"] == c_view["treasures"]
    assert [r.action for r in eng.audit] == ["hunt.rename", "hunt.end", "hunt.delete"]


def test_clear_flags() -> None:
    eng = engine(max_speed=1.0, dig_rate=100.0, dig_burst=100)
    create(eng)
    eng.positions("overworld", [("ann", (0, 64, 0), False)], A)
    assert eng.positions("overworld", [("ann", (500, 64, 0), False)], A + 1).result["errors"]
    assert eng.players["ann"].flags == 1
    act(eng, "player.clear_flags", player="ann")
    assert eng.players["ann"].flags == 0
    assert eng.new_events[-1].type == "player.flags_cleared"


# ---- the boards ------------------------------------------------------------------------------------
@pytest.mark.parametrize("operator", ["incr", "best", "set"])
def test_boards_recount_equals_the_finds_that_still_count(operator: str) -> None:
    specs = [BoardSpec("b", operator=operator), BoardSpec("fast", metric="fastest_find_seconds", operator="best",
                                                           sort="asc")]  # fmt: skip
    finds = [Find(["b", "fast"], [], v, s, at) for v, s, at in [(5, 30.0, 1.0), (9, 10.0, 2.0), (3, 20.0, 3.0)]]
    for drop in range(3):
        kept = [f for i, f in enumerate(finds) if i != drop]
        live, fresh = Boards(specs), Boards(specs)
        for f in finds:
            live.record_find(f.hunt_boards, [], "ann", f.value, f.seconds, f.at)
        live.recount(["b", "fast"], [], "ann", kept, 10.0)
        for f in kept:
            fresh.record_find(f.hunt_boards, [], "ann", f.value, f.seconds, f.at)
        for name in ("b", "fast"):
            assert live.boards[name].current.snapshot() == fresh.boards[name].current.snapshot(), (operator, drop)


# ---- replay and idempotence ------------------------------------------------------------------------
class Logged(Live):
    """`Live`, keeping every record applied, in order."""

    __slots__ = ("log",)

    def apply(self, records: Iterable[AnyRecord]) -> None:
        records = list(records)
        self.log.extend(records)
        super().apply(records)


def game() -> tuple[Live, list[AnyRecord]]:
    """A game with every action, and every record in the order applied."""
    base = engine()
    eng = Logged(SECRET, {"overworld": grid_world()}, limits=base.limits)
    eng.log = []
    keep = eng.apply
    create(eng)
    create(eng, id="h2", area={"min": [-100, 0, -100], "max": [100, 200, 100]}, treasures=3)
    c1 = find(eng, 1, "ann")
    c2 = find(eng, 2, "bob")
    c3 = find(eng, 3, "ann")
    g2, g3 = eng.claims[c2["claim_id"]].grant_id, eng.claims[c3["claim_id"]].grant_id
    assert g2 is not None and g3 is not None
    eng.ack(g3, T0 + 2)
    act(eng, "claim.void", target=c1["claim_id"], args={"rehide": True})
    find(eng, 1, "cid", A + 1)
    act(eng, "claim.void", target=c3["claim_id"], now=A + 2)
    act(eng, "grant.reissue", target=g2, now=A + 3)
    act(eng, "grant.cancel", target=f"{g2}.r1", now=A + 4)
    act(eng, "hunt.extend", hunt="h1", args={"by": "2h"}, now=A + 5)
    act(eng, "hunt.pause", hunt="h1", now=A + 6)
    act(eng, "hunt.resume", hunt="h1", now=A + 6.1)
    act(eng, "hunt.pause", hunt="h1", now=A + 6.2)
    act(eng, "player.clear_flags", player="ann", now=A + 6.3)
    act(eng, "hunt.rename", hunt="h1", args={"name": "Renamed"}, now=A + 7)
    keep(eng.end_hunt_admin(Request("hunt.end", "h2", label="ops", reason="done"), A + 8).records)
    act(eng, "hunt.delete", hunt="h2", now=A + 9)
    act(eng, "player.bar", player="bob", now=A + 10)
    return eng, eng.log


def state(eng: Engine, now: float) -> Any:
    return (
        [eng.hunt_view(h, now, reveal=True) for h in sorted(eng.hunts)],
        eng.list_hunts(now),
        sorted((cid, repr(eng.claim_view(c))) for cid, c in eng.claims.items()),
        sorted((gid, repr(g.view())) for gid, g in eng.grants.items()),
        {p: eng.grants_of(p) for p in ("ann", "bob", "cid")},
        {b: eng.boards.read(b, {}, now) for b in eng.boards.boards},
        [(r.action, r.target, r.args) for r in eng.audit],
        sorted(eng.timers)[-1:],
    )


def test_replay_of_the_retained_records_and_of_the_whole_log_equals_live() -> None:
    live, log = game()
    now = A + 20
    want = state(live, now)
    for records in (live.retained(), log):
        fresh = Live(SECRET, {"overworld": grid_world()}, limits=live.limits)
        fresh.replay(records)
        assert state(fresh, now) == want
        # The extended end stands after replay: the old END timer does not end it.
        fresh.tick(live.hunts["h1"].created.ends_at + 1)
        assert fresh.hunts["h1"].ended is None


def test_an_action_applied_twice_is_applied_once() -> None:
    live, log = game()
    now = A + 20
    want = state(live, now)
    live.new_events.clear()
    live.apply([r for r in log if isinstance(r, Admin)])
    assert live.new_events == []
    assert state(live, now) == want


def test_every_event_of_the_actions_decodes_as_documented() -> None:
    live, _ = game()
    fresh2 = Live(SECRET, {"overworld": grid_world()}, limits=live.limits)
    fresh2.apply(live.retained())
    seen = set()
    for e in fresh2.new_events:
        typed = msgspec.json.decode(msgspec.json.encode(e), type=schemas.AnyEvent)
        seen.add(e.type)
        assert type(typed).__name__ != "dict"
    assert {"claim.voided", "treasure.rehidden", "grant.cancelled", "grant.revoked", "grant.reissued",
            "hunt.extended", "hunt.paused", "hunt.resumed", "hunt.renamed", "hunt.archived",
            "player.flags_cleared"} <= seen, seen  # fmt: skip


def test_a_bar_refuses_new_digs_and_hints_but_a_retried_claim_still_answers() -> None:
    eng = engine()
    create(eng)
    c = find(eng, 1, "ann", now=T0 + 1)  # request id "ann-1-<T0 + 1>"
    pos = eng.hunts["h1"].treasures[1].pos
    act(eng, "player.bar", player="ann")
    with pytest.raises(PlayerBarred):
        eng.dig("h1", "ann", pos, pos, "new", A + 1, teleport=True)
    with pytest.raises(PlayerBarred):
        eng.hint("h1", "ann", pos, None, A + 1, teleport=True)
    p1 = eng.hunts["h1"].treasures[0].pos
    again = eng.dig("h1", "ann", p1, p1, f"ann-1-{T0 + 1}", A + 2, teleport=True)  # the plugin's retry
    assert again.result["result"] == "found" and again.result["claim"] == c
    assert eng.dig("h1", "bob", pos, pos, "b", A + 2, teleport=True).result["result"] == "found"
    act(eng, "player.unbar", player="ann", now=A + 3)
    assert eng.dig("h1", "ann", pos, pos, "later", A + 4, teleport=True).result["result"] == "taken"


def test_a_taken_dig_names_no_voided_finder() -> None:
    eng = engine()
    create(eng)
    c = find(eng, 1, "ann")
    act(eng, "claim.void", target=c["claim_id"])  # not hidden again: still taken, by nobody who counts
    t = eng.hunts["h1"].treasures[0]
    out = eng.dig("h1", "bob", t.pos, t.pos, None, A + 1, teleport=True)
    assert out.result["result"] == "taken" and out.result["finders"] == []
