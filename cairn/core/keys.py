"""API keys managed at runtime: created, revoked and rotated by operator actions (`key.*`).

The registry holds what the `Admin` records of those actions say, so replay rebuilds it. A key made
at runtime is kept by the SHA-256 of its secret only (the secret is shown once, to the operator who
made it). Keys from the server's configuration (the environment, `keys.json`: "static" keys) are
not in the records; the transport names them (`static`: id -> scope) to each action, and the
registry holds a static key only once an action revoked or rotated it.

A key is active until it is revoked or its rotation's overlap ends (`expires_at`). There is always
at least one active admin key: revoking the last one is refused, so the operator cannot lock
themselves out.
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol

from cairn.core.errors import AdminConflict, KeyNotFound, KeyRevoked, LabelTaken, LastAdminKey, ValidationError
from cairn.core.records import Admin
from cairn.core.spec import parse_duration

SCOPES = ("game", "admin")
DEFAULT_OVERLAP = 300.0  # seconds a rotated key keeps working
MAX_OVERLAP = 7 * 86400.0
_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_HASH = re.compile(r"[0-9a-f]{64}\Z")


class ApiKey:
    """One key: who it is (id, label, scope), its secret's SHA-256 ("" for a static key), its life."""

    __slots__ = ("created", "expires_at", "hash", "id", "label", "revoked", "scope", "static")

    def __init__(self, key_id: str, label: str, scope: str, hash: str, created: float, static: bool = False) -> None:
        self.id = key_id
        self.label = label
        self.scope = scope
        self.hash = hash
        self.created = created
        self.static = static
        self.expires_at: float | None = None  # the end of a rotation's overlap
        self.revoked: float | None = None  # when

    def active(self, now: float) -> bool:
        return self.revoked is None and (self.expires_at is None or now < self.expires_at)


class KeyRing:
    """The runtime keys by id and by hash, and the static keys an action changed. Lookups are O(1)."""

    __slots__ = ("by_hash", "keys")

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.by_hash: dict[str, ApiKey] = {}

    def find(self, key_id: str, static: dict[str, str]) -> ApiKey | None:
        """The key `key_id`: a runtime key, or a static one (its label is its id)."""
        key = self.keys.get(key_id)
        if key is None and key_id in static:
            key = ApiKey(key_id, key_id, static[key_id], "", 0.0, static=True)
        return key

    def active(self, static: dict[str, str], now: float) -> list[ApiKey]:
        """Every active key, static ones included, in id order. O(keys)."""
        found = [k for k in (self.find(i, static) for i in static) if k is not None]
        found += [k for k in self.keys.values() if not k.static]
        return sorted((k for k in found if k.active(now)), key=lambda k: k.id)

    def next_expiry(self, now: float) -> float | None:
        """The earliest end of an overlap still to come (when cached verifications must be dropped)."""
        ends = [k.expires_at for k in self.keys.values() if k.revoked is None and k.expires_at is not None]
        return min((e for e in ends if e > now), default=None)

    def add(self, key: ApiKey) -> None:
        self.keys[key.id] = key
        if key.hash:
            self.by_hash[key.hash] = key

    def _check(self) -> None:
        assert all(self.keys[k.id] is k for k in self.by_hash.values())
        assert all(k.hash and self.by_hash[k.hash] is k for k in self.keys.values() if not k.static)


# ---- the actions: check (decide) and apply, registered in `cairn.core.admin.ACTIONS` ----------------
class Request(Protocol):
    """What the actions read of `cairn.core.admin.Request`."""

    @property
    def target(self) -> str: ...
    @property
    def args(self) -> dict[str, Any] | None: ...


class Operator(Protocol):
    """What the actions use of `cairn.core.admin.Operator` (the engine)."""

    api_keys: KeyRing

    def admin_event(self, rec: Admin, typ: str, data: dict[str, Any], offset: int = 0) -> None: ...


#: The args the transport adds to a key action's body: the new key's id and hash, and the static keys.
MADE = ("id", "hash", "static")


def _static(req: Request) -> dict[str, str]:
    raw = (req.args or {}).get("static") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _new(req: Request, ring: KeyRing) -> tuple[str, str]:
    """The new key's id and hash, as the transport made them."""
    args = req.args or {}
    key_id, digest = args.get("id"), args.get("hash")
    if not isinstance(key_id, str) or not _ID.match(key_id) or key_id in ring.keys:
        raise ValidationError("the new key's id is missing or taken", field="id")
    if not isinstance(digest, str) or not _HASH.match(digest) or digest in ring.by_hash:
        raise ValidationError("the new key's hash must be 64 lowercase hex digits", field="hash")
    return key_id, digest


def _target(op: Operator, req: Request, static: dict[str, str], now: float) -> ApiKey:
    key = op.api_keys.find(req.target, static)
    if key is None:
        raise KeyNotFound(f"no API key {req.target!r}", field="id")
    if not key.active(now):
        raise KeyRevoked(f"API key {req.target!r} is revoked or expired already", field="id")
    return key


def overlap_of(raw: Any) -> float:
    """Seconds from a duration ("90s", "10m", "1h30m", "7d", or a number of seconds), 0 to 7 days."""
    if raw is None:
        return DEFAULT_OVERLAP
    if isinstance(raw, str):
        secs = parse_duration(raw, "overlap")
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        secs = float(raw) if -1e18 < raw < 1e18 else math.inf  # a JSON integer may be too big for a float
    else:
        raise ValidationError('overlap is a duration such as "90s", "10m", "2h" or "7d"', field="overlap")
    if not 0 <= secs <= MAX_OVERLAP:
        raise ValidationError("overlap must be between 0 and 7 days", field="overlap")
    return secs


def check_create(op: Operator, req: Request, now: float) -> dict[str, Any]:
    args = req.args or {}
    scope, label = args.get("scope"), args.get("label")
    if scope not in SCOPES:
        raise ValidationError('scope must be "game" or "admin"', field="scope")
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ValidationError("label must be 1-64 characters of [A-Za-z0-9_.:-]", field="label")
    if any(k.label == label for k in op.api_keys.active(_static(req), now)):
        raise LabelTaken(f"an active key has the label {label!r} already", field="label")
    key_id, digest = _new(req, op.api_keys)
    return {"id": key_id, "label": label, "scope": scope, "hash": digest}


def apply_create(op: Operator, rec: Admin) -> None:
    a = rec.args
    op.api_keys.add(ApiKey(a["id"], a["label"], a["scope"], a["hash"], rec.at))
    op.admin_event(rec, "key.created", {"id": a["id"], "label": a["label"], "scope": a["scope"]})


def check_revoke(op: Operator, req: Request, now: float) -> dict[str, Any]:
    static = _static(req)
    key = _target(op, req, static, now)
    others = [k.id for k in op.api_keys.active(static, now) if k.scope == "admin" and k.id != key.id]
    if key.scope == "admin" and not others:
        raise LastAdminKey("this is the last active admin key: create another before revoking it", field="id")
    args: dict[str, Any] = {"label": key.label, "scope": key.scope, "static": key.static}
    if key.scope == "admin":
        args["admins"] = others  # checked again when applied: see `apply_revoke`
    return args


def _still_admin(op: Operator, rec: Admin) -> bool:
    """Whether one of the other admin keys active when `rec` was decided is still active when it applies.
    With Redis, two nodes may each revoke one of the last two admin keys: both decisions pass, and the
    one applied second (the same one on every node, in the stream's order) must not lock the operator out."""
    ring = op.api_keys
    for key_id in rec.args.get("admins") or ():
        key = ring.keys.get(key_id)
        if key is None or key.active(rec.at):  # a static key the ring never saw is active
            return True
    return False


def _held(op: Operator, rec: Admin) -> ApiKey:
    """The key `rec` acts on; a static key enters the registry now."""
    key = op.api_keys.keys.get(rec.target)
    if key is None:
        key = ApiKey(rec.target, rec.args["label"], rec.args["scope"], "", 0.0, static=True)
        op.api_keys.add(key)
    return key


def apply_revoke(op: Operator, rec: Admin) -> None:
    if rec.args.get("scope") == "admin" and "admins" in rec.args and not _still_admin(op, rec):
        return  # it would leave no admin key: the revocation is refused (`cairn/net/keys.py` answers 409)
    key = _held(op, rec)
    if key.revoked is None:
        key.revoked = rec.at
    op.admin_event(rec, "key.revoked", {"id": key.id, "label": key.label, "scope": key.scope})


def check_rotate(op: Operator, req: Request, now: float) -> dict[str, Any]:
    key = _target(op, req, _static(req), now)
    if key.expires_at is not None:
        raise AdminConflict(f"API key {key.id!r} was rotated already; rotate its successor", field="id")
    overlap = overlap_of((req.args or {}).get("overlap"))
    key_id, digest = _new(req, op.api_keys)
    return {"id": key_id, "hash": digest, "label": key.label, "scope": key.scope, "static": key.static,
            "overlap": overlap}  # fmt: skip


def apply_rotate(op: Operator, rec: Admin) -> None:
    a = rec.args
    old = _held(op, rec)
    ends = rec.at + float(a["overlap"])
    if old.expires_at is None or ends < old.expires_at:
        old.expires_at = ends
    op.api_keys.add(ApiKey(a["id"], a["label"], a["scope"], a["hash"], rec.at))
    op.admin_event(rec, "key.rotated", {"id": old.id, "new_id": a["id"], "label": a["label"], "scope": a["scope"],
                                        "expires_at": ends})  # fmt: skip
