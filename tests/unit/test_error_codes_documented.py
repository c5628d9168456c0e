"""Every error code Cairn can send is in docs/api.md's table of errors, under its status: a plugin
author reads that table to handle them, so a code missing from it is a code nobody handles."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import cairn
from cairn.core.errors import CairnError

ROOT = Path(__file__).resolve().parents[2]
#: Codes that never reach an HTTP client, and why.
NOT_HTTP = {
    "config_error": "a bad configuration stops `cairn serve` or a CLI command before anything is served",
    "weak_key": "a weak key in the environment stops `cairn serve` at start",
    "import_failed": "`cairn world import`, on the command line",
    "journal_pruned": "recovery reads a journal from its snapshot on; never on a request's path",
}


def documented() -> dict[int, set[str]]:
    text = (ROOT / "docs/api.md").read_text()
    table = text[text.index("| status | codes |") :].split("\n\n", 1)[0]
    out: dict[int, set[str]] = {}
    for row in table.splitlines()[2:]:
        status, codes = row.strip("|").split("|", 1)
        out.setdefault(int(status), set()).update(re.findall(r"`([a-z_]+)`", codes))
    return out


def raised() -> set[tuple[int, str]]:
    """(status, code) of every error class, and of every reply the transport builds itself."""
    for info in pkgutil.walk_packages(cairn.__path__, "cairn."):
        if info.name != "cairn.__main__":
            importlib.import_module(info.name)
    found = set()
    todo = list(CairnError.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        found.add((cls.status, cls.code))
    for path in (ROOT / "cairn/net").glob("*.py"):
        found |= {(int(s), c) for s, c in re.findall(r'error_response\((\d+), "([a-z_]+)"', path.read_text())}
    return found


def test_every_error_code_is_in_the_api_docs_under_its_status() -> None:
    table = documented()
    missing = sorted(
        (status, code) for status, code in raised() if code not in NOT_HTTP and code not in table.get(status, set())
    )
    assert not missing, f"error codes missing from docs/api.md's table (status, code): {missing}"
