"""`make audit` (tools/audit.py): lock against pyproject pins, the inventory, staleness."""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_audit(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("cairn_audit", ROOT / "tools" / "audit.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    mod.ROOT = root
    mod.DOC = root / "docs" / "dependencies.md"
    return mod


def project(tmp: Path, deps: list[str], dev: list[str], lock: list[str]) -> ModuleType:
    (tmp / "docs").mkdir(exist_ok=True)
    (tmp / "pyproject.toml").write_text(
        "[project]\nname = 'x'\ndependencies = " + repr(deps) + "\n[project.optional-dependencies]\ndev = " + repr(dev)
    )
    (tmp / "requirements.lock").write_text("\n".join(lock) + "\n")
    return load_audit(tmp)


def version(name: str) -> str:
    return metadata.version(name)


def test_lock_must_hold_every_pin_at_its_version(tmp_path: Path) -> None:
    ws, h11, pytest_v = version("wsproto"), version("h11"), version("pytest")
    ok = project(tmp_path, [f"wsproto=={ws}"], [], [f"wsproto=={ws}", f"h11=={h11}"])
    problems: list[str] = []
    ok.check_lock(problems)
    assert problems == []

    bad = project(tmp_path, [f"wsproto=={ws}", "msgspec"], [f"pytest=={pytest_v}"], ["wsproto==0.0.1", "numpy==1.0"])
    problems = []
    bad.check_lock(problems)
    text = "\n".join(problems)
    assert f"requirements.lock has wsproto==0.0.1, pyproject.toml pins {ws}" in text
    assert "msgspec is not pinned with ==" in text
    assert f"requirements.lock lacks pytest=={pytest_v}" in text
    assert "requirements.lock lacks h11, which a pinned dependency needs" in text  # wsproto needs h11
    assert "requirements.lock has numpy, which nothing in pyproject.toml needs" in text


def test_inventory_reports_licence_compiled_code_and_size(tmp_path: Path) -> None:
    ms, ws, h11 = version("msgspec"), version("wsproto"), version("h11")
    audit = project(
        tmp_path, [f"msgspec=={ms}"], [f"wsproto=={ws}"], [f"msgspec=={ms}", f"wsproto=={ws}", f"h11=={h11}"]
    )
    problems: list[str] = []
    text = audit.inventory(problems)
    assert problems == []
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "run time" in rows["msgspec"] and "yes: " in rows["msgspec"]  # msgspec ships a C extension
    assert "| dev |" in rows["wsproto"] and "| no |" in rows["wsproto"]
    assert "MIT" in rows["h11"]
    assert text == audit.inventory([])  # deterministic
    assert "1 ship compiled code" in text


def test_audit_fails_when_the_inventory_is_stale_or_the_environment_differs(tmp_path: Path) -> None:
    ms = version("msgspec")
    audit = project(tmp_path, [f"msgspec=={ms}"], [], [f"msgspec=={ms}"])
    assert audit.main(["--write"]) == 0
    assert audit.main(["--skip-deptry"]) == 0
    doc = tmp_path / "docs" / "dependencies.md"
    doc.write_text(doc.read_text().replace(ms, "0.0.0"))
    assert audit.main(["--skip-deptry"]) == 1
    audit.main(["--write"])
    (tmp_path / "requirements.lock").write_text("msgspec==0.0.0\n")
    problems: list[str] = []
    audit.inventory(problems)
    assert problems == [f"msgspec: requirements.lock has 0.0.0, the environment has {ms}"]


@pytest.mark.parametrize("missing", ["not-a-real-dist-xyz==1.0"])
def test_a_locked_dist_that_is_not_installed_is_reported(tmp_path: Path, missing: str) -> None:
    audit = project(tmp_path, [], [], [missing])
    problems: list[str] = []
    audit.inventory(problems)
    assert problems == ["not-a-real-dist-xyz==1.0 is in requirements.lock but not installed"]
