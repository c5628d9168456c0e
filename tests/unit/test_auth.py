"""API keys: scopes, refusal, and comparisons that do not depend on where a key differs."""

from __future__ import annotations

import contextlib
import hmac
from pathlib import Path

import pytest

from cairn.core.errors import Forbidden, Unauthorized
from cairn.net import auth
from cairn.net.auth import Keys


def test_scopes_and_refusals(tmp_path: Path) -> None:
    keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": "adm", "CAIRN_GAME_KEY": "gam"})
    assert keys.scope_of("Bearer adm") == "admin" and keys.scope_of("Bearer gam") == "game"
    assert keys.require("Bearer adm", "game") == "admin"
    with pytest.raises(Forbidden):
        keys.require("Bearer gam", "admin")
    for bad in (None, "", "Basic abc", "Bearer ", "Bearer ad", "Bearer adm2"):
        with pytest.raises(Unauthorized):
            keys.scope_of(bad)


def test_every_known_key_is_compared_in_constant_time_whatever_matches(tmp_path: Path, monkeypatch) -> None:
    keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": "adm", "CAIRN_GAME_KEY": "gam"})
    keys.create("game")
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for header in ("Bearer adm", "Bearer gam", "Bearer nope"):
        calls.clear()
        with contextlib.suppress(Unauthorized):
            keys.scope_of(header)
        assert len(calls) == len(keys.admin) + len(keys.game)  # no early exit on the first match


def test_keys_file_is_created_once_and_private(tmp_path: Path) -> None:
    first = Keys.load(tmp_path, {})
    assert first.created and (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    second = Keys.load(tmp_path, {})
    assert not second.created and second.admin == first.admin and second.game == first.game


def test_verified_header_cache_keeps_scopes_refusals_and_its_bound(tmp_path: Path) -> None:
    keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": "adm", "CAIRN_GAME_KEY": "gam"})
    for _ in range(3):  # the second and third pass are answered from the cache
        assert keys.require(b"Bearer gam", "game") == "game"
        with pytest.raises(Forbidden):
            keys.require(b"Bearer gam", "admin")
        assert keys.require(b"Bearer adm", "admin") == "admin"
        for bad in (b"Bearer nope", b"Bearer ga", b"Bearer gam2", b"bearer gam", b""):
            with pytest.raises(Unauthorized):
                keys.require(bad, "game")
    assert set(keys.verified) == {b"Bearer gam", b"Bearer adm"}  # refused values never enter it
    for i in range(200):  # padded variants of a valid key are valid, but the cache stays bounded
        assert keys.require(b"Bearer gam" + b" " * i, "game") == "game"
    assert len(keys.verified) <= 64
