"""The API key registry (`cairn/core/keys.py`) through the engine's operator actions: create, revoke,
rotate, expiry, the last admin key, and replay rebuilding exactly the live registry."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from cairn.core.admin import Request
from cairn.core.engine import Engine
from cairn.core.errors import (
    KeyNotFound,
    KeyRevoked,
    LabelTaken,
    LastAdminKey,
    ReasonRequired,
    UnknownField,
    ValidationError,
)
from cairn.core.records import AnyRecord
from tests.support import SECRET, T0, grid_world

STATIC = {"env-admin": "admin", "env-game": "game"}


def new_engine() -> Engine:
    return Engine(SECRET, {"overworld": grid_world()})


class Ops:
    """An engine and the records its actions made, as the embedded runtime applies them."""

    def __init__(self) -> None:
        self.eng = new_engine()
        self.records: list[AnyRecord] = []
        self.n = 0

    def act(self, action: str, now: float, target: str = "", reason: str = "why", **args: Any) -> dict[str, Any]:
        if action in ("key.create", "key.rotate"):
            self.n += 1
            args.setdefault("id", f"k{self.n}")
            args.setdefault("hash", hashlib.sha256(f"secret-{self.n}".encode()).hexdigest())
        ask = Request(action, "", "", target, "env-admin", reason, {**args, "static": STATIC})
        out = self.eng.decide_admin(ask, now)
        self.eng.apply(out.records)
        self.records += out.records
        rec = out.records[0]
        assert rec.action == action and not isinstance(rec.args.get("static"), dict)  # not journaled
        return dict(rec.args)


def by_hash(eng: Engine, n: int) -> Any:
    return eng.api_keys.by_hash.get(hashlib.sha256(f"secret-{n}".encode()).hexdigest())


def test_create_revoke_rotate_expire_and_the_last_admin_key() -> None:
    ops = Ops()
    made = ops.act("key.create", T0, scope="game", label="plugin-eu")
    assert made == {"id": "k1", "label": "plugin-eu", "scope": "game", "hash": made["hash"]}
    key = by_hash(ops.eng, 1)
    assert key.id == "k1" and key.active(T0) and key.created == T0
    events = [e for e in ops.eng.new_events if e.type.startswith("key.")]
    assert events[-1].type == "key.created" and "hash" not in events[-1].data
    with pytest.raises(LabelTaken):
        ops.act("key.create", T0, scope="admin", label="plugin-eu")
    with pytest.raises(LabelTaken):
        ops.act("key.create", T0, scope="admin", label="env-admin")  # a static key's label is its id
    with pytest.raises(ValidationError):
        ops.act("key.create", T0, scope="root", label="x")
    with pytest.raises(ValidationError):
        ops.act("key.create", T0, scope="game", label="has space")
    with pytest.raises(ReasonRequired):
        ops.act("key.create", T0, reason=" ", scope="game", label="y")

    ops.act("key.revoke", T0 + 1, target="k1")
    assert not key.active(T0 + 1) and key.revoked == T0 + 1
    with pytest.raises(KeyRevoked):
        ops.act("key.revoke", T0 + 2, target="k1")
    with pytest.raises(KeyNotFound):
        ops.act("key.revoke", T0 + 2, target="nope")
    ops.act("key.create", T0 + 2, scope="game", label="plugin-eu")  # a revoked key's label is free again

    with pytest.raises(LastAdminKey):
        ops.act("key.revoke", T0 + 3, target="env-admin")
    ops.act("key.create", T0 + 3, scope="admin", label="ops")
    ops.act("key.revoke", T0 + 4, target="env-admin")
    assert not ops.eng.api_keys.keys["env-admin"].active(T0 + 4)
    ops_id = next(k.id for k in ops.eng.api_keys.keys.values() if k.label == "ops")
    with pytest.raises(LastAdminKey):
        ops.act("key.revoke", T0 + 5, target=ops_id)

    rotated = ops.act("key.rotate", T0 + 10, target=ops_id, overlap="10m")
    old, new = ops.eng.api_keys.keys[ops_id], ops.eng.api_keys.keys[rotated["id"]]
    assert (new.label, new.scope, rotated["overlap"]) == ("ops", "admin", 600.0)
    assert old.expires_at == T0 + 610 and old.active(T0 + 609.9) and not old.active(T0 + 610)
    assert ops.eng.api_keys.next_expiry(T0 + 11) == T0 + 610 and ops.eng.api_keys.next_expiry(T0 + 611) is None
    with pytest.raises(KeyRevoked):
        ops.act("key.rotate", T0 + 611, target=ops_id)  # expired
    for overlap in ("8d", "9" * 400 + "d"):  # too long, and too long for a float
        with pytest.raises(ValidationError):
            ops.act("key.rotate", T0 + 611, target=rotated["id"], overlap=overlap)
    default = ops.act("key.rotate", T0 + 611, target="env-game")  # a static key rotates into a runtime one
    assert default["overlap"] == 300.0 and ops.eng.api_keys.keys["env-game"].expires_at == T0 + 911
    # Past the overlap, the rotated admin key no longer counts: its successor is the last admin key.
    with pytest.raises(LastAdminKey):
        ops.act("key.revoke", T0 + 700, target=rotated["id"])
    ops.eng.api_keys._check()

    # Replay rebuilds the same registry from the records alone.
    again = new_engine()
    again.replay(ops.records)
    again.api_keys._check()

    def state(eng: Engine) -> list[tuple[Any, ...]]:
        return sorted((k.id, k.label, k.scope, k.hash, k.created, k.expires_at, k.revoked, k.static)
                      for k in eng.api_keys.keys.values())  # fmt: skip

    assert state(again) == state(ops.eng) and len(state(again)) == 7
    assert [r.action for r in again.audit] == [r.action for r in ops.eng.audit]


def test_a_static_keys_revocation_stays_with_its_secret() -> None:
    """A static key's id comes from its secret: revoking `keys.json`'s first game key, then removing it
    from the file, leaves the next one working; a new environment key is not born revoked."""
    from cairn.net.auth import Keys

    before = Keys(None, ["admin-key-0123456789"], ["game-one-0123456789", "game-two-0123456789"])
    static = before.static()
    first = next(k for k, _, secret in before.static_keys() if secret == b"game-one-0123456789")
    eng = new_engine()
    ask = Request("key.revoke", "", "", first, "ops", "leaked", {"static": static})
    eng.apply(eng.decide_admin(ask, T0).records)
    before.ring = eng.api_keys
    before.clock = lambda: T0 + 1
    assert before.find(b"game-one-0123456789") is not None
    assert before.active_static("game") == [b"game-two-0123456789"]
    after = Keys(None, ["admin-key-0123456789"], ["game-two-0123456789"], ring=eng.api_keys)  # line removed
    after.clock = lambda: T0 + 2
    assert after.active_static("game") == [b"game-two-0123456789"]
    env = Keys(None, ["admin-key-0123456789"], ["game-new-0123456789"], origin="env", ring=eng.api_keys)
    env.clock = lambda: T0 + 2
    assert env.active_static("game") == [b"game-new-0123456789"]


def test_an_overlap_past_any_float_is_a_validation_error() -> None:
    from cairn.core.keys import overlap_of

    for raw in (10**400, -(10**400), float("nan"), "8d", True):
        with pytest.raises(ValidationError):
            overlap_of(raw)
    assert overlap_of(90) == 90.0 and overlap_of("10m") == 600.0


def test_key_actions_refuse_a_field_they_do_not_take() -> None:
    ops = Ops()
    with pytest.raises(UnknownField, match="'bogus'"):
        ops.act("key.create", T0, scope="game", label="lobby", bogus=1)
    made = ops.act("key.create", T0, scope="game", label="lobby")
    for action in ("key.rotate", "key.revoke"):
        with pytest.raises(UnknownField, match="'bogus'"):
            ops.act(action, T0 + 1, target=made["id"], bogus=1)
    assert [r.action for r in ops.records] == ["key.create"]


def test_two_revocations_decided_at_once_never_leave_no_admin_key() -> None:
    """With Redis, two nodes can each decide to revoke one of the last two admin keys; the one applied
    second (in the stream's order, on every node) changes nothing."""
    static = {"env-admin": "admin", "env-game": "game"}
    eng = new_engine()
    made = eng.decide_admin(Request("key.create", "", "", "", "ops", "second admin", {
        "scope": "admin", "label": "ops-2", "id": "k1", "hash": hashlib.sha256(b"s1").hexdigest(),
        "static": static}), T0)  # fmt: skip
    eng.apply(made.records)
    a = eng.decide_admin(Request("key.revoke", "", "", "env-admin", "ops", "leaked", {"static": static}), T0 + 1)
    b = eng.decide_admin(Request("key.revoke", "", "", "k1", "ops", "leaked too", {"static": static}), T0 + 1)
    eng.apply([*a.records, *b.records])
    admins = [k.id for k in eng.api_keys.active(static, T0 + 2) if k.scope == "admin"]
    assert admins == ["k1"]  # the first revocation stands, the second was refused when applied
    replayed = new_engine()
    replayed.replay(eng.retained())
    assert [k.id for k in replayed.api_keys.active(static, T0 + 2) if k.scope == "admin"] == ["k1"]
