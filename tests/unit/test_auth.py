"""API keys: scopes, refusal, and comparisons that do not depend on where a key differs."""

from __future__ import annotations

import contextlib
import hmac
from pathlib import Path

import pytest

from cairn.core.errors import Forbidden, Unauthorized
from cairn.net import auth
from cairn.net.auth import Keys, WeakKey

ADM = "adm-0123456789abcdef"
GAM = "gam-0123456789abcdef"


def test_scopes_and_refusals(tmp_path: Path) -> None:
    keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": GAM})
    assert keys.scope_of("Bearer " + ADM) == "admin" and keys.scope_of("Bearer " + GAM) == "game"
    assert keys.require("Bearer " + ADM, "game") == "admin"
    with pytest.raises(Forbidden):
        keys.require("Bearer " + GAM, "admin")
    for bad in (None, "", "Basic abc", "Bearer ", "Bearer ad", "Bearer " + ADM + "2"):
        with pytest.raises(Unauthorized):
            keys.scope_of(bad)


def test_every_known_key_is_compared_in_constant_time_whatever_matches(tmp_path: Path, monkeypatch) -> None:
    keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": GAM})
    keys.create("game")
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for header in ("Bearer " + ADM, "Bearer " + GAM, "Bearer nope"):
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
    keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": GAM})
    for _ in range(3):  # the second and third pass are answered from the cache
        assert keys.require(b"Bearer " + GAM.encode(), "game") == "game"
        with pytest.raises(Forbidden):
            keys.require(b"Bearer " + GAM.encode(), "admin")
        assert keys.require(b"Bearer " + ADM.encode(), "admin") == "admin"
        for bad in (b"Bearer nope", b"Bearer ga", b"Bearer " + GAM.encode() + b"2", b"bearer " + GAM.encode(), b""):
            with pytest.raises(Unauthorized):
                keys.require(bad, "game")
    assert set(keys.verified) == {b"Bearer " + GAM.encode(), b"Bearer " + ADM.encode()}  # refused values never enter it
    for i in range(200):  # padded variants of a valid key are valid, but the cache stays bounded
        assert keys.require(b"Bearer " + GAM.encode() + b" " * i, "game") == "game"
    assert len(keys.verified) <= 64


def test_a_short_key_from_the_environment_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(WeakKey) as e:
        Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": "game-secret"})
    assert e.value.field == "CAIRN_GAME_KEY" and "at least 16" in e.value.message
    assert not (tmp_path / "keys.json").exists()
    Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": "g" * 16})
    for host in ("0.0.0.0", "192.0.2.1", "::", "game.example"):  # beyond loopback, or not known to be loopback
        with pytest.raises(WeakKey):
            Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": "game-secret"}, host)


def test_a_short_key_on_a_loopback_server_starts_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        caplog.clear()
        keys = Keys.load(tmp_path, {"CAIRN_ADMIN_KEY": ADM, "CAIRN_GAME_KEY": "game-secret"}, host)
        assert keys.require(b"Bearer game-secret", "game") == "game"
        assert any("WEAK KEY: CAIRN_GAME_KEY is 11 characters long" in r.getMessage() for r in caplog.records), host
