"""cairn/core does no I/O: it imports no I/O module and never reads the clock."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import cairn.core

FORBIDDEN = {
    "asyncio", "socket", "sqlite3", "redis", "coredis", "aiohttp", "httptools", "uvloop", "requests",
    "urllib", "http", "subprocess", "threading", "multiprocessing", "selectors", "ssl", "time", "io",
    "pathlib", "shutil", "tempfile", "logging", "os", "random",
}  # fmt: skip
CLOCK_CALLS = {"time", "monotonic", "perf_counter", "now", "utcnow", "today", "time_ns", "monotonic_ns"}
CORE = Path(cairn.core.__file__).parent


def core_modules() -> list[str]:
    return [f"cairn.core.{m.name}" for m in pkgutil.iter_modules([str(CORE)])]


def test_there_are_core_modules() -> None:
    assert {"cairn.core.engine", "cairn.core.sites", "cairn.core.placement"} <= set(core_modules())


def scan(source: str, name: str) -> list[str]:
    """Every I/O import and clock read in one module's source."""
    problems = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for imported in names:
            if imported.split(".")[0] in FORBIDDEN:
                problems.append(f"{name}:{node.lineno} imports {imported}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            problems.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
    return problems


def test_core_sources_import_no_io_and_read_no_clock() -> None:
    problems = [p for path in sorted(CORE.glob("*.py")) for p in scan(path.read_text(), path.name)]
    assert problems == []


def test_importing_every_core_module_loads_no_io_module() -> None:
    code = (
        "import sys, importlib\n"
        f"for m in {core_modules()!r}: importlib.import_module(m)\n"
        "bad = sorted(n for n in ('asyncio','socket','sqlite3','redis','coredis','uvloop','httptools','aiohttp')"
        " if n in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_scan_catches_a_violation() -> None:
    # The check must be able to fail: the same scan flags a module that imports I/O and reads the clock.
    bad = "import time\nfrom asyncio import sleep\nfrom datetime import datetime\nx = datetime.now()\n"
    problems = scan(bad, "bad.py")
    assert problems == ["bad.py:1 imports time", "bad.py:2 imports asyncio", "bad.py:4 calls .now()"]
