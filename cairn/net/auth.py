"""API keys and scopes. `admin` includes everything `game` can do.

Keys live in `data_dir/keys.json` (created on first start, mode 0600), or come from
`CAIRN_ADMIN_KEY` / `CAIRN_GAME_KEY`. Every presented key is compared in constant time
against every known key, so timing reveals neither a key nor which one matched.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import msgspec

from cairn.core.errors import CairnError, Forbidden, Unauthorized

SCOPES = ("game", "admin")
MIN_KEY_LENGTH = 16  # a shorter key falls to guessing, however slowly failures are answered


class WeakKey(CairnError):
    """A key from the environment that is too short to hold against guessing."""

    code, status = "weak_key", 400


class KeyFile(msgspec.Struct):
    admin: list[str] = msgspec.field(default_factory=list)
    game: list[str] = msgspec.field(default_factory=list)


class Keys:
    def __init__(self, path: Path | None, admin: list[str], game: list[str]) -> None:
        self.path = path
        self.admin = [k.encode() for k in admin]
        self.game = [k.encode() for k in game]
        self.created = False
        # Authorization header values already verified (constant time) -> scope. A lookup is keyed
        # by a per-process random SipHash, so its timing says nothing about the keys; only values
        # that matched a key enter it, and it is bounded against variants of one key.
        self.verified: dict[bytes, str] = {}

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
        if not admin or not game:
            if not admin:
                stored.admin.append(_new_key("admin"))
            if not game:
                stored.game.append(_new_key("game"))
            _write(path, stored)
            keys = cls(path, admin or stored.admin, game or stored.game)
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

    def scope_of(self, header: str | bytes | None) -> str:
        """The scope of an `Authorization: Bearer <key>` header; raise Unauthorized if none matches."""
        if type(header) is str:
            header = header.encode("utf-8", "replace")
        if not header or not header.startswith(b"Bearer "):
            raise Unauthorized("missing or malformed Authorization header (use: Bearer <key>)")
        token = header[7:].strip()
        admin = game = False
        for k in self.admin:
            admin |= hmac.compare_digest(k, token)
        for k in self.game:
            game |= hmac.compare_digest(k, token)
        if admin:
            return "admin"
        if game:
            return "game"
        raise Unauthorized("unknown API key")

    def label_of(self, header: str | bytes | None) -> str:
        """The label of a verified key, as the audit log names who acted: a static key's is its scope."""
        return self.scope_of(header)

    def require(self, header: str | bytes | None, scope: str) -> str:
        have = self.verified.get(header) if type(header) is bytes else None  # type: ignore[arg-type]
        if have is None:
            have = self.scope_of(header)
            if type(header) is bytes:
                if len(self.verified) >= _VERIFIED_MAX:
                    self.verified.clear()
                self.verified[header] = have
        if scope == "admin" and have != "admin":
            raise Forbidden("this route needs an admin key")
        return have


_VERIFIED_MAX = 64


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
