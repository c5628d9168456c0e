"""Dependency audit: deptry, the lock file against pyproject.toml, and the inventory in docs/dependencies.md.

    python tools/audit.py            check everything; exit 1 on any problem (make audit)
    python tools/audit.py --write    rewrite docs/dependencies.md from the installed environment

The inventory lists every distribution in requirements.lock as installed: version, licence,
whether it ships compiled code (a shared library in its RECORD), and its size on disk (the
sizes its RECORD declares, so the numbers do not depend on byte-compiled caches). Native code
is where memory-safety risk lives. The output is deterministic: the same environment gives the
same file, and the audit fails when the committed file differs.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "dependencies.md"
FREEZE_SKIPS = {"pip", "setuptools", "wheel", "distribute"}  # `pip freeze` leaves these to the venv itself
NATIVE = re.compile(r"\.(so|pyd|dylib)(\.[0-9.]+)?$")


def pins(reqs: list[str]) -> dict[str, str]:
    """name -> pinned version (`==`) for each requirement; unpinned ones map to ''."""
    out = {}
    for line in reqs:
        r = Requirement(line)
        spec = [s for s in r.specifier if s.operator == "=="]
        out[canonicalize_name(r.name)] = spec[0].version if spec else ""
    return out


def read_pyproject() -> tuple[dict[str, str], dict[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return pins(project.get("dependencies", [])), pins(project.get("optional-dependencies", {}).get("dev", []))


def read_lock() -> dict[str, str]:
    out = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version.strip()
    return out


def requires(dist: metadata.Distribution, extras: frozenset[str] = frozenset()) -> list[tuple[str, frozenset[str]]]:
    """What `dist` (with `extras`) needs here: (name, extras asked of it), markers evaluated."""
    out = []
    for line in dist.requires or []:
        r = Requirement(line)
        if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("", *extras)):
            out.append((canonicalize_name(r.name), frozenset(r.extras)))
    return out


def closure(roots: list[str], installed: dict[str, metadata.Distribution]) -> set[str]:
    """Every distribution the `roots` need, directly or not, extras included."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(r, frozenset()) for r in roots]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        dist = installed.get(item[0])
        if dist is not None:
            todo.extend(requires(dist, item[1]))
    return {name for name, _ in seen}


def installed_dists() -> dict[str, metadata.Distribution]:
    out: dict[str, metadata.Distribution] = {}
    for d in metadata.distributions():
        name = d.metadata["Name"]
        if name:
            out.setdefault(canonicalize_name(name), d)
    return out


def licence(dist: metadata.Distribution) -> str:
    md = dist.metadata
    expr = md.get("License-Expression")
    if expr:
        return expr.strip()
    classifiers = [c.split(" :: ")[-1] for c in md.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (md.get("License") or "").strip()
    if text and len(text) <= 60 and "\n" not in text:
        return text
    if classifiers:
        return ", ".join(sorted(set(classifiers)))
    if text:
        return text.splitlines()[0][:60] + " …"
    return "unknown"


@dataclass
class Item:
    name: str
    version: str
    licence: str
    native: int  # shared libraries shipped
    native_bytes: int
    size: int
    runtime: bool


def is_executable_binary(path: Path) -> bool:
    """A native program shipped as a script (e.g. a Rust or Go binary): ELF or Mach-O magic."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


def inspect(name: str, dist: metadata.Distribution, runtime: bool) -> Item:
    size = native = native_bytes = 0
    for f in dist.files or []:
        n = f.size or 0  # files without a declared size (.pyc caches, RECORD itself) are not counted
        size += n
        if NATIVE.search(f.name) or ("." not in f.name and is_executable_binary(Path(str(f.locate())))):
            native += 1
            native_bytes += n
    return Item(dist.metadata["Name"], dist.version, licence(dist), native, native_bytes, size, runtime)


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.0f} kB"


def render(items: list[Item]) -> str:
    rt = [i for i in items if i.runtime]
    nat = [i for i in items if i.native]
    lines = [
        "# Dependencies",
        "",
        "Generated by `python tools/audit.py --write` from the environment installed from `requirements.lock`;",
        "`make audit` fails when this file is stale. Compiled code is any shared library or native executable",
        "in the distribution's RECORD: that is where memory-safety risk lives. Size is the sum of the file sizes",
        "the RECORD declares.",
        "",
        f"- {len(items)} distributions: {len(rt)} needed at run time (`cairn serve`), {len(items) - len(rt)} for "
        "development and tests only.",
        f"- {len(nat)} ship compiled code ({sum(i.native for i in nat)} shared libraries or executables, "
        f"{mb(sum(i.native_bytes for i in nat))}); "
        f"{len([i for i in rt if i.native])} of them are needed at run time: "
        + ", ".join(i.name for i in rt if i.native)
        + ".",
        f"- Total size on disk: {mb(sum(i.size for i in items))} ({mb(sum(i.size for i in rt))} at run time).",
        "",
        "| distribution | version | licence | needed for | compiled code | size |",
        "|---|---|---|---|---|---|",
    ]
    for i in sorted(items, key=lambda i: (not i.runtime, i.name.lower())):
        compiled = f"yes: {i.native} ({mb(i.native_bytes)})" if i.native else "no"
        lic = i.licence.replace("|", "/")
        lines.append(f"| {i.name} | {i.version} | {lic} | {'run time' if i.runtime else 'dev'} | {compiled} | "
                     f"{mb(i.size)} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def inventory(problems: list[str]) -> str:
    runtime, _dev = read_pyproject()
    lock = read_lock()
    installed = installed_dists()
    run_names = closure(list(runtime), installed)
    items = []
    for name, version in sorted(lock.items()):
        dist = installed.get(name)
        if dist is None:
            problems.append(f"{name}=={version} is in requirements.lock but not installed")
            continue
        if dist.version != version:
            problems.append(f"{name}: requirements.lock has {version}, the environment has {dist.version}")
        items.append(inspect(name, dist, name in run_names))
    return render(items)


def check_lock(problems: list[str]) -> None:
    """Every pin of pyproject.toml is in the lock at its version, and the lock holds what they need."""
    runtime, dev = read_pyproject()
    lock = read_lock()
    for name, version in sorted({**dev, **runtime}.items()):
        if not version:
            problems.append(f"pyproject.toml: {name} is not pinned with ==")
        elif name not in lock:
            problems.append(f"requirements.lock lacks {name}=={version} (pinned in pyproject.toml)")
        elif lock[name] != version:
            problems.append(f"requirements.lock has {name}=={lock[name]}, pyproject.toml pins {version}")
    installed = installed_dists()
    needed = closure([*runtime, *dev], installed)
    for name in sorted(needed - set(lock) - {"cairn"} - FREEZE_SKIPS):
        if name in installed:
            problems.append(f"requirements.lock lacks {name}, which a pinned dependency needs")
    for name in sorted(set(lock) - needed):
        problems.append(f"requirements.lock has {name}, which nothing in pyproject.toml needs")


def check_deptry(problems: list[str]) -> None:
    deptry = Path(sys.executable).with_name("deptry")
    proc = subprocess.run([str(deptry), "cairn"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        problems.append("deptry found dependency issues:\n" + (proc.stdout + proc.stderr).strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="rewrite docs/dependencies.md")
    ap.add_argument("--skip-deptry", action="store_true")
    args = ap.parse_args(argv)
    problems: list[str] = []
    text = inventory(problems)
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        if not args.skip_deptry:
            check_deptry(problems)
        check_lock(problems)
        old = DOC.read_text() if DOC.exists() else ""
        if old != text:
            diff = "".join(list(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                     "docs/dependencies.md", "generated", n=0))[:40])  # fmt: skip
            problems.append("docs/dependencies.md is stale; run `make dependencies` (tools/audit.py --write):\n" + diff)
    for p in problems:
        print(f"audit: {p}", file=sys.stderr)
    if not problems and not args.write:
        print("audit: ok (deptry clean, lock matches pyproject.toml, docs/dependencies.md up to date)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
