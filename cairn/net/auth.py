"""API keys and scopes. `admin` includes everything `game` can do.

Static keys live in `data_dir/keys.json` (created on first start, mode 0600), or come from
`CAIRN_ADMIN_KEY` / `CAIRN_GAME_KEY`; their ids are `static_id`s (`env-admin-3f2a9c1b`, `file-game-...`).
Every presented key is compared in constant time against every static key, so timing reveals
neither a key nor which one matched.

Keys made at runtime (`POST /v1/keys`, `cairn/core/keys.py`) are known by the SHA-256 of their
secret only, and found by a dict lookup of the presented key's SHA-256. That lookup's timing depends
on the hash, not on the secret: learning how much of a guessed hash matches says nothing about the
secret that produces it (finding one would take a preimage of SHA-256), so it needs no constant time.
A static key revoked or rotated by an operator action is refused like a runtime one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from cairn.core.errors import CairnError, Forbidden, Unauthorized
from cairn.core.keys import ApiKey, KeyRing

SCOPES = ("game", "admin")
MIN_KEY_LENGTH = 16  # a shorter key falls to guessing, however slowly failures are answered


class WeakKey(CairnError):
    """A key from the environment that is too short to hold against guessing."""

    code, status = "weak_key", 400


class KeyFile(msgspec.Struct):
    admin: list[str] = msgspec.field(default_factory=list)
    game: list[str] = msgspec.field(default_factory=list)


class Verified:
    """A cached verification: the key's scope and label, and the requests it answered since cached."""

    __slots__ = ("label", "requests", "scope")

    def __init__(self, scope: str, label: str) -> None:
        self.scope = scope
        self.label = label
        self.requests = 0


class Keys:
    def __init__(self, path: Path | None, admin: list[str], game: list[str], origin: str = "file",
                 ring: KeyRing | None = None) -> None:  # fmt: skip
        self.path = path
        self.admin = [k.encode() for k in admin]
        self.game = [k.encode() for k in game]
        self.created = False
        # Authorization header values already verified (constant time) -> scope. A lookup is keyed
        # by a per-process random SipHash, so its timing says nothing about the keys; only values
        # that matched a key enter it, and it is bounded against variants of one key. It is cleared
        # when a key is revoked or rotated, and when a rotation's overlap ends (`expire`).
        self.verified: dict[bytes, Verified] = {}
        self.origin = {"admin": origin, "game": origin}  # "env" or "file": how static keys are named
        self.ring = ring if ring is not None else KeyRing()  # the engine's runtime keys
        self.clock = time.time
        self.last_used: dict[str, float] = {}  # key id -> when this node last verified it
        self.uses: dict[str, int] = {}  # label -> requests counted before the cache was last dropped
        self.next_expiry: float | None = None  # when cached verifications must be dropped next

    @classmethod
    def load(cls, data_dir: Path, env: Mapping[str, str], host: str | None = None) -> Keys:
        """Keys from the environment if set, else from `keys.json`, creating it on first start."""
        check_env(env, host)
        path = data_dir / "keys.json"
        stored = KeyFile()
        if path.exists():
            stored = msgspec.json.decode(path.read_bytes(), type=KeyFile)
        admin = [env["CAIRN_ADMIN_KEY"]] if env.get("CAIRN_ADMIN_KEY") else stored.admin
        game = [env["CAIRN_GAME_KEY"]] if env.get("CAIRN_GAME_KEY") else stored.game
        keys = cls(path, admin, game)
        for scope in SCOPES:
            if env.get(f"CAIRN_{scope.upper()}_KEY"):
                keys.origin[scope] = "env"
        if not admin or not game:
            if not admin:
                stored.admin.append(_new_key("admin"))
            if not game:
                stored.game.append(_new_key("game"))
            _write(path, stored)
            origin = keys.origin
            keys = cls(path, admin or stored.admin, game or stored.game)
            keys.origin = origin
            keys.created = True
        return keys

    def create(self, scope: str) -> str:
        """Add a key of `scope` to keys.json and return it."""
        assert self.path is not None
        stored = msgspec.json.decode(self.path.read_bytes(), type=KeyFile) if self.path.exists() else KeyFile()
        key = _new_key(scope)
        getattr(stored, scope).append(key)
        _write(self.path, stored)
        getattr(self, scope).append(key.encode())
        self.verified.clear()
        return key

    def static_keys(self) -> list[tuple[str, str, bytes]]:
        """The static keys as (id, scope, secret), each id `static_id` of its secret."""
        return [(static_id(self.origin[scope], scope, secret), scope, secret)
                for scope in SCOPES for secret in getattr(self, scope)]  # fmt: skip

    def static(self) -> dict[str, str]:
        """The static keys' ids -> scopes, as operator actions on keys are told them."""
        return {key_id: scope for key_id, scope, _ in self.static_keys()}

    def active_static(self, scope: str) -> list[bytes]:
        """The secrets of the static keys of `scope` that no action revoked or expired."""
        now = self.clock()
        out = []
        for key_id, key_scope, secret in self.static_keys():
            key = self.ring.find(key_id, {key_id: key_scope})
            if key_scope == scope and key is not None and key.active(now):
                out.append(secret)
        return out

    def identify(self, header: str | bytes | None) -> ApiKey:
        """The active key of an `Authorization: Bearer <key>` header; raise Unauthorized if none is."""
        if type(header) is str:
            header = header.encode("utf-8", "replace")
        if not header or not header.startswith(b"Bearer "):
            raise Unauthorized("missing or malformed Authorization header (use: Bearer <key>)")
        token = header[7:].strip()
        key = self.find(token)
        now = self.clock()
        if key is None:
            raise Unauthorized("unknown API key")
        if not key.active(now):
            raise Unauthorized("this API key was revoked or has expired")
        self.last_used[key.id] = now
        return key

    def find(self, token: bytes) -> ApiKey | None:
        """The key whose secret is `token`, active or not: static keys compared in constant time,
        runtime keys looked up by SHA-256 (see the module's docstring)."""
        match = None
        for key_id, scope, secret in self.static_keys():
            if hmac.compare_digest(secret, token):
                match = key_id, scope
        if match is not None:
            return self.ring.find(match[0], dict([match]))
        return self.ring.by_hash.get(hashlib.sha256(token).hexdigest())

    def scope_of(self, header: str | bytes | None) -> str:
        """The scope of an `Authorization: Bearer <key>` header; raise Unauthorized if no active key matches."""
        return self.identify(header).scope

    def label_of(self, header: str | bytes | None) -> str:
        """The label of a verified key, as the audit log names who acted (a static key's is its id)."""
        return self.identify(header).label

    def expire(self) -> None:
        """Drop every cached verification: a key was revoked or rotated, or an overlap ended."""
        self._fold()
        self.next_expiry = self.ring.next_expiry(self.clock())

    def _fold(self) -> None:
        """Move the cached verifications' request counts to `uses`, and drop them."""
        uses = self.uses
        for v in self.verified.values():
            uses[v.label] = uses.get(v.label, 0) + v.requests
        self.verified.clear()

    def requests_by_label(self) -> dict[str, int]:
        """Requests per key label since start (`cairn_key_requests_total`)."""
        out = dict(self.uses)
        for v in self.verified.values():
            out[v.label] = out.get(v.label, 0) + v.requests
        return out

    def require(self, header: str | bytes | None, scope: str) -> str:
        v = self.verified.get(header) if type(header) is bytes else None  # type: ignore[arg-type]
        if v is None:
            key = self.identify(header)
            v = Verified(key.scope, key.label)
            if type(header) is bytes:
                if len(self.verified) >= _VERIFIED_MAX:
                    self._fold()
                self.verified[header] = v
        v.requests += 1
        have = v.scope
        if scope == "admin" and have != "admin":
            raise Forbidden("this route needs an admin key")
        return have


_VERIFIED_MAX = 64


def static_id(origin: str, scope: str, secret: bytes) -> str:
    """A static key's id: where it comes from (`env` or `file`), its scope, and the first 8 hex digits of
    its secret's SHA-256 (`env-admin-3f2a9c1b`). Bound to the secret, not to a position: a revocation
    stays with the key it revoked when keys.json loses a line or the environment gets a new key."""
    return f"{origin}-{scope}-{hashlib.sha256(secret).hexdigest()[:8]}"


def check_env(env: Mapping[str, str], host: str | None = None) -> None:
    """Refuse keys from the environment shorter than MIN_KEY_LENGTH, naming the variable.

    A server that listens on loopback only (`host`) starts anyway and logs a warning: only
    processes on this machine can guess there, and local benchmarks and tools use short keys.
    """
    for name in ("CAIRN_ADMIN_KEY", "CAIRN_GAME_KEY"):
        value = env.get(name, "")
        if value and len(value) < MIN_KEY_LENGTH:
            why = (f"{name} is {len(value)} characters long; use at least {MIN_KEY_LENGTH} "
                   "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")  # fmt: skip
            if host is not None and is_loopback(host):
                logging.getLogger("cairn.auth").warning(
                    "WEAK KEY: %s; allowed only because server.host %s is loopback", why, host)  # fmt: skip
                continue
            raise WeakKey(why, field=name)


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _new_key(scope: str) -> str:
    return f"ck_{scope}_{secrets.token_urlsafe(24)}"


def _write(path: Path, keys: KeyFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(keys)))
    os.replace(tmp, path)
