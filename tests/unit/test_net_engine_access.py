"""`cairn/net` never touches the engine's attributes: it asks the engine (or the runtime) through
methods, and reads through the views of `cairn.core.views`. A scan of its sources flags any
assignment, augmented assignment or `del` whose target lies inside the engine (`eng.worlds[w] = ...`,
`rt.engine.seq += 1`), a mutating container call on the engine's state (`eng.players.pop(p)`), and
`setattr` on it; a second scan flags every read of an engine attribute (`eng.players`,
`self.rt.eng.events.after(...)`, `getattr(eng, "boards")`): an attribute of the engine may only be called.

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


def engine_names(tree: ast.AST) -> set[str]:
    """`eng`, `engine`, and the variables bound to an expression that is the engine."""
    names = set(ENGINE_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=False))
                for t, v in pairs:
                    if isinstance(t, ast.Name) and is_engine(v, names):
                        names.add(t.id)
    return names


def is_engine(node: ast.expr, names: set[str]) -> bool:
    """`node` is the engine: an attribute named `eng` or `engine`, or a variable bound to it."""
    return (isinstance(node, ast.Attribute) and node.attr in ENGINE_NAMES) or (
        isinstance(node, ast.Name) and node.id in names
    )


# Reads of engine attributes allowed on the hot path, by (module, function): the quota's new-player
# check tests `player in players` on the engine's player table in place (a view would add a Python
# call to every dig, hint and positions request), and a dig with no records looks at `new_events`
# before it answers without a task. Nothing else may read an engine attribute.
HOT_PATH_READS: dict[tuple[str, str], frozenset[str]] = {
    ("api.py", "dig"): frozenset({"players", "new_events"}),
    ("api.py", "hint"): frozenset({"players"}),
    ("api.py", "positions"): frozenset({"players"}),
    ("api.py", "positions_each"): frozenset({"players"}),
    ("api.py", "run_ops"): frozenset({"players"}),
}


def scan_reads(source: str, name: str, allowed: dict[tuple[str, str], frozenset[str]] | None = None) -> list[str]:
    """Every attribute of the engine read (not called) in one module, but the `allowed` ones."""
    tree = ast.parse(source, name)
    names = engine_names(tree)
    allowed = HOT_PATH_READS if allowed is None else allowed
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    problems: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if (
            isinstance(node, ast.Attribute) and is_engine(node.value, names) and id(node) not in called
            and node.attr not in allowed.get((name, function), frozenset())
        ):  # fmt: skip
            problems.append(f"{name}:{node.lineno} reads {ast.unparse(node)}")
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "vars") and node.args and is_engine(node.args[0], names)
        ):  # fmt: skip
            problems.append(f"{name}:{node.lineno} calls {node.func.id}() on {ast.unparse(node.args[0])}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return problems


def scan(source: str, name: str) -> list[str]:
    """Every change to the engine's state written in one module."""
    tree = ast.parse(source, name)
    names = engine_names(tree)

    def is_eng(node: ast.expr) -> bool:
        return is_engine(node, names)

    def inside_engine(node: ast.expr) -> bool:
        """`node` is the engine or part of its state (walks `a.b[c].d` down to `a`)."""
        while True:
            if is_eng(node):
                return True
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                node = node.value
            else:
                return False

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
                and not is_eng(f.value) and inside_engine(f.value)
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


def test_net_never_reads_engine_attributes() -> None:
    problems = [p for path in sorted(NET.glob("*.py")) for p in scan_reads(path.read_text(), path.name)]
    assert problems == []


def test_the_read_scan_catches_a_read() -> None:
    # The check must be able to fail: each way of reading the engine's state is flagged; calling its
    # methods, reading the runtime's engine, passing the engine to a view, and the hot path's
    # allowed reads in their own function are not.
    bad = (
        "def f(self, rt, w):\n"
        "    now, e = 0, self.rt.eng\n"
        "    x = e.worlds.get(w)\n"
        "    n = len(rt.engine.players)\n"
        "    b = self.api.rt.eng.events.after(0, None)\n"
        "    g = getattr(self.rt.eng, 'boards', None)\n"
        "    m = e.hunt\n"
        "    e.dig(w)\n"
        "    views.player(e, w)\n"
        "    if rt.engine is None:\n"
        "        return e.players\n"
        "def dig(self):\n"
        "    eng = self.rt.engine\n"
        "    return eng.players, eng.new_events, eng.hunts\n"
    )
    allowed = {("bad.py", "dig"): frozenset({"players", "new_events"})}
    assert scan_reads(bad, "bad.py", allowed) == [
        "bad.py:3 reads e.worlds",
        "bad.py:4 reads rt.engine.players",
        "bad.py:5 reads self.api.rt.eng.events",
        "bad.py:6 calls getattr() on self.rt.eng",
        "bad.py:7 reads e.hunt",
        "bad.py:11 reads e.players",
        "bad.py:14 reads eng.hunts",
    ]
