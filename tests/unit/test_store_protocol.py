"""All three stores satisfy the `Store` protocol (`cairn/store/base.py`), as mypy checks it: the runtime
takes any of them from the composition root, and a member one of them lacks or types differently fails here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
from cairn.distributed import RedisNodeStore
from cairn.store.base import Store
from cairn.store.embedded import EmbeddedStore
from cairn.store.memory import MemoryStore


def embedded(s: EmbeddedStore) -> Store:
    return s


def redis(s: RedisNodeStore) -> Store:
    return s


def memory(s: MemoryStore) -> Store:
    return s
"""


def check(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    path = tmp_path / "store_check.py"
    path.write_text(source)
    monkeypatch.chdir(ROOT)  # mypy finds `cairn` from the working directory
    cache = os.environ.get("MYPY_CACHE_DIR", str(ROOT / ".mypy_cache"))
    out, err, status = api.run(["--follow-imports=silent", "--cache-dir", cache, "--no-error-summary", str(path)])
    return out + err, status


def test_every_store_satisfies_the_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, status = check(CHECK, tmp_path, monkeypatch)
    assert status == 0, out


def test_a_store_missing_a_member_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = CHECK + "\n\nclass Partial:\n    kind = 'x'\n\n\ndef partial(s: Partial) -> Store:\n    return s\n"
    out, status = check(bad, tmp_path, monkeypatch)
    assert status == 1 and "Partial" in out, out
