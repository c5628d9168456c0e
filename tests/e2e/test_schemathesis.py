"""Schemathesis fuzzes a live `cairn serve` from its own /v1/openapi.json: no 5xx, no schema violation."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN, SMALL_WORLD, CairnServer, hunt_spec

CONFIG = """
[parameters]
"path.hunt" = "h1"
"path.player" = "alice"
"path.board" = "weekly"
"path.file" = "app.js"

# An event stream never ends by itself: read a few events, or stop soon after it goes quiet.
[[operations]]
include-path = "/v1/events"
request-timeout = 0.5
max-stream-events = 5

# The fuzzer learns key ids (`env-admin-<hash>`) from GET /v1/keys: revoking or rotating its own key would lock
# it out, so these act on a key that does not exist (bodies are still fuzzed; the answer is a 404).
[[operations]]
include-path = "/v1/keys/{id}"
parameters = { "path.id" = "k-absent" }

[[operations]]
include-path = "/v1/keys/{id}/rotate"
parameters = { "path.id" = "k-absent" }
"""


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[CairnServer]:
    """A server without the key-guessing brake: the fuzzer's keyless and bad-key requests all come from one
    address, and a late 401 (the brake at work, tested in test_attacks.py) would read as a timeout."""
    brake_off = "\n[server]\nauth_failures_slow = 1000000\nauth_failures_close = 1000000\n"
    srv = CairnServer(tmp_path / "data", SMALL_WORLD + brake_off)
    srv.start()
    yield srv
    srv.kill()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzzed: CairnServer, tmp_path: Path) -> None:
    cairn = fuzzed
    assert cairn.request("POST", "/v1/hunts", hunt_spec("h1", treasures=20), key=ADMIN)[0] == 201
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    st = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(st), "run", cairn.url + "/v1/openapi.json", "-H", f"Authorization: Bearer {ADMIN}",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
         "-n", "60", "--seed", "7", "--no-color", "--generation-database", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m, out[-2000:]
    generated, passed = int(m.group(1)), int(m.group(2))
    assert generated >= 1000 and passed == generated, out[-2000:]
    assert cairn.request("GET", "/healthz", key=None)[0] == 200
