"""No import cycle between the modules of `cairn`.

Every import counts, wherever it is written: at module level, inside a function (a deferred
import is still a dependency, only a later one) and under `if TYPE_CHECKING:` (a cycle of types
is still a cycle of modules). Only imports of `cairn` modules make edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cairn

PACKAGE = Path(cairn.__file__).parent


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports, from the sources under `root`."""
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports the module pkg.mod when there is one
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_package_is_scanned() -> None:
    graph = import_graph(PACKAGE)
    assert {"cairn.app", "cairn.net.http", "cairn.core.engine"} <= set(graph)
    assert "cairn.core.engine" in graph["cairn.app"]


def test_cairn_has_no_import_cycle() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_net_imports_no_wiring_module() -> None:
    # The server is handed the runtime it serves: the transport does not choose the store.
    wiring = {"cairn.bootstrap", "cairn.cli", "cairn.distributed"}
    graph = import_graph(PACKAGE)
    assert {m: sorted(graph[m] & wiring) for m in graph if m.startswith("cairn.net") and graph[m] & wiring} == {}


def test_the_check_finds_a_cycle(tmp_path: Path) -> None:
    # The check must be able to fail: a deferred import, a relative one and a TYPE_CHECKING one
    # each close a cycle in a small fake package.
    pkg = tmp_path / "fake"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from fake import b\n")
    (pkg / "b.py").write_text("def later():\n    from fake import a\n")
    (pkg / "sub" / "c.py").write_text("from ..sub import d\n")
    (pkg / "sub" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fake.sub.c\n")
    (pkg / "e.py").write_text("import fake.a\n")  # imports into a cycle without being part of it
    assert cycles(import_graph(pkg)) == [["fake.a", "fake.b"], ["fake.sub.c", "fake.sub.d"]]


HTTP_TRANSPORT = ("config", "request", "response", "router", "flow", "protocol", "http")


def test_the_http_transport_does_not_import_websocket() -> None:
    # The server is given its WebSocket upgrade (`HttpServer(upgrade=...)`): no module of the HTTP
    # transport reaches `cairn.net.websocket`, directly or through another module.
    graph = import_graph(PACKAGE)
    reached: dict[str, list[str]] = {}
    for name in (f"cairn.net.{m}" for m in HTTP_TRANSPORT):
        seen, stack = set(), [name]
        while stack:
            for dep in graph[stack.pop()] - seen:
                seen.add(dep)
                stack.append(dep)
        if "cairn.net.websocket" in seen:
            reached[name] = sorted(seen)
    assert reached == {}
