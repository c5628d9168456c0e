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


def test_core_sources_import_no_io_and_read_no_clock() -> None:
    problems = []
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    problems.append(f"{path.name}:{node.lineno} imports {name}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
                problems.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
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


def test_the_scan_catches_a_violation(tmp_path: Path) -> None:
    # The AST check must be able to fail: feed it a module that reads the clock.
    src = "import time\nx = time.time()\n"
    tree = ast.parse(src)
    hits = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") in CLOCK_CALLS]
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import) and n.names[0].name in FORBIDDEN]
    assert hits and imports
