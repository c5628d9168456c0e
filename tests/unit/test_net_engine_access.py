"""`cairn/net` never changes the engine's state itself: it asks the engine (or the runtime) through
methods. A scan of its sources flags any assignment, augmented assignment or `del` whose target
lies inside the engine (`eng.worlds[w] = ...`, `rt.engine.seq += 1`), a mutating container call on
the engine's state (`eng.players.pop(p)`), and `setattr` on it.

The engine is whatever is reached through an attribute named `eng` or `engine`, a variable of
that name, or a variable bound to either (`now, eng = clock(), self.rt.eng`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import cairn.net

NET = Path(cairn.net.__file__).parent
ENGINE_NAMES = frozenset({"eng", "engine"})
MUTATORS = frozenset({
    "pop", "popitem", "clear", "update", "setdefault", "append", "extend", "insert", "remove", "discard", "add",
    "appendleft", "popleft", "sort", "reverse", "__setitem__", "__delitem__",
})  # fmt: skip


def scan(source: str, name: str) -> list[str]:
    """Every change to the engine's state written in one module."""
    tree = ast.parse(source, name)
    names = set(ENGINE_NAMES)

    def is_engine(node: ast.expr) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr in ENGINE_NAMES) or (
            isinstance(node, ast.Name) and node.id in names
        )

    def inside_engine(node: ast.expr) -> bool:
        """`node` is the engine or part of its state (walks `a.b[c].d` down to `a`)."""
        while True:
            if is_engine(node):
                return True
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                node = node.value
            else:
                return False

    # Variables bound to the engine, including by tuple unpacking.
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=False))
                for t, v in pairs:
                    if isinstance(t, ast.Name) and is_engine(v):
                        names.add(t.id)
    problems = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        for t in flat:
            if isinstance(t, (ast.Attribute, ast.Subscript)) and inside_engine(t.value):
                problems.append(f"{name}:{t.lineno} assigns {ast.unparse(t)}")
        if isinstance(node, ast.Call):
            f = node.func
            if (
                isinstance(f, ast.Attribute) and f.attr in MUTATORS
                and not is_engine(f.value) and inside_engine(f.value)
            ):  # fmt: skip
                problems.append(f"{name}:{node.lineno} calls {ast.unparse(f)}()")
            if isinstance(f, ast.Name) and f.id in ("setattr", "delattr") and node.args and inside_engine(node.args[0]):
                problems.append(f"{name}:{node.lineno} calls {f.id}() on {ast.unparse(node.args[0])}")
    return problems


def test_net_modules_are_scanned() -> None:
    assert {"api.py", "dashboard.py", "session.py", "metrics.py"} <= {p.name for p in NET.glob("*.py")}


def test_net_never_changes_engine_state() -> None:
    problems = [p for path in sorted(NET.glob("*.py")) for p in scan(path.read_text(), path.name)]
    assert problems == []


def test_the_scan_catches_a_violation() -> None:
    # The check must be able to fail: each way of changing the engine's state is flagged, and
    # reading it, calling its methods or replacing the runtime's engine is not.
    bad = (
        "def f(self, rt, w, s):\n"
        "    now, e = 0, self.rt.eng\n"
        "    e.worlds[w] = s\n"
        "    rt.engine.world_version[w] += 1\n"
        "    self.rt.eng.seq = 3\n"
        "    del e.players[w]\n"
        "    e.pending.pop(w)\n"
        "    setattr(rt.eng, 'seq', 1)\n"
        "    e.dig(w)\n"
        "    x = e.worlds.get(w)\n"
        "    self.rt.eng = None\n"
    )
    assert scan(bad, "bad.py") == [
        "bad.py:3 assigns e.worlds[w]",
        "bad.py:4 assigns rt.engine.world_version[w]",
        "bad.py:5 assigns self.rt.eng.seq",
        "bad.py:6 assigns e.players[w]",
        "bad.py:7 calls e.pending.pop()",
        "bad.py:8 calls setattr() on rt.eng",
    ]
