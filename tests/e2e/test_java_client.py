"""The Java client compiles with javac and its example runs against a live `cairn serve`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec
from tests.support import ci

SRC = Path(__file__).resolve().parents[2] / "clients" / "java" / "src"


def test_java_example_runs_against_a_live_server(cairn: CairnServer, tmp_path: Path) -> None:
    if shutil.which("javac") is None:
        if ci():
            pytest.fail("javac is missing under CI=true; .ci/run installs default-jdk-headless")
        pytest.skip("javac not installed (apt-get install default-jdk-headless)")
    status, _, _ = cairn.request("POST", "/v1/hunts", hunt_spec("friday-night"), key=ADMIN)
    assert status == 201
    out = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(out), *map(str, sorted(SRC.glob("cairn/*.java")))], check=True)
    run = subprocess.run(
        ["java", "-cp", str(out), "cairn.Example", cairn.url, GAME, "friday-night"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "hunts: 1" in lines
    assert any(line.startswith("hint: {") for line in lines)
    assert any(line.startswith("dig: ") for line in lines)
    assert "error code: hunt_not_found" in lines
    assert lines[-1] == "example ok"
