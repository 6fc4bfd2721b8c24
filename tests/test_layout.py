"""The import graph is the flow (issue 15): a module imports only from its own stage or the
stages before it, so data moves forward and no stage reaches back into a later one."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bulksync"
STAGES = [
    ("shared", {"errors", "untrusted", "memo", "resources", "places", "clock"}),
    ("read", {"sheets", "sheets.table", "sheets.read", "sheets.atomic", "sheets.package"}),
    ("map, validate", {"columns", "mapping", "config", "suggest"}),
    ("preflight", {"preflight"}),
    ("plan", {"plan", "journal", "reconcile"}),
    ("request engine", {"policy", "api", "results", "engine", "stop"}),
    ("run", {"lock", "run", "resolve", "threeway", "pulling", "undo"}),
    ("write back", {"sheets.write_csv", "sheets.write_xlsx", "writeback"}),
    ("compose", {"sync", "__init__"}),
    ("edges", {"cli", "__main__", "demo", "template", "sandbox", "sandbox.server", "sandbox.__init__"}),
]
LEVEL = {name: level for level, (_, names) in enumerate(STAGES) for name in names}


@functools.cache
def parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for every check of the package's code (these, and
    tests/test_docs.py's, tests/test_public_interfaces.py's). Nothing changes the trees."""
    return ast.parse(path.read_text(encoding="utf-8"))


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return name.removesuffix(".__init__") if name != "__init__" else name


def _imports(tree: ast.Module, *, types: bool = True) -> list[tuple[int, str]]:
    """bulksync modules imported; ``types=False``: at run time only (the body of an
    ``if TYPE_CHECKING:`` left out, and nothing else)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if not types and isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bulksync"):
            found.append((node.lineno, node.module.removeprefix("bulksync").lstrip(".") or "__init__"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.removeprefix("bulksync.")) for a in node.names
                      if a.name.startswith("bulksync.")]
    return found


def test_every_module_has_a_stage() -> None:
    assert {_module(p) for p in PACKAGE.rglob("*.py")} <= set(LEVEL)


def test_no_module_imports_from_a_later_stage() -> None:
    """Not even for a type: a hand-off's type lives at the stage that makes it, or before."""
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module(path)
        for line, imported in _imports(parsed(path)):
            if LEVEL.get(imported, 0) > LEVEL[name]:
                backwards.append(f"{name}:{line} imports {imported} "
                                 f"({STAGES[LEVEL[imported]][0]} after {STAGES[LEVEL[name]][0]})")
    assert backwards == []


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` (module → modules it imports), as a path; [] if none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for imported in sorted(graph.get(name, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[name] = 2
        return []

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return []


def test_the_import_graph_has_no_cycle() -> None:
    graph = {_module(p): {imported for _, imported in _imports(parsed(p), types=False)}
             for p in PACKAGE.rglob("*.py")}
    assert _cycle(graph) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_the_check_sees_a_backward_import() -> None:
    tree = ast.parse("from bulksync.columns import is_uuid\nif TYPE_CHECKING:\n    import bulksync.sync\n"
                     "if not TYPE_CHECKING:\n    from bulksync.cli import main\n")
    assert _imports(tree) == [(1, "columns"), (3, "sync"), (5, "cli")]
    assert _imports(tree, types=False) == [(1, "columns"), (5, "cli")]


def _flag(node: ast.expr) -> bool:
    """Whether an argument is a bool by its form: True/False, a comparison, a ``not``."""
    return (isinstance(node, ast.Constant) and isinstance(node.value, bool)) or isinstance(node, ast.Compare) \
        or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not))


def _wide_calls(tree: ast.Module) -> list[tuple[int, str]]:
    """Calls that pass more than five arguments by position, or a bool by position (True,
    False, a comparison, a ``not``; ``bool(...)`` aside): a hand-off that should be made by
    name (issue 26)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            positional = [a for a in node.args if not isinstance(a, ast.Starred)]
            flags = [a for a in positional if _flag(a)] if ast.unparse(node.func) != "bool" else []
            if len(positional) > 5 or flags:
                found.append((node.lineno, ast.unparse(node.func)))
    return found


def test_hand_offs_are_made_by_name() -> None:
    wide = [f"{_module(p)}:{line} {func}" for p in sorted(PACKAGE.rglob("*.py"))
            for line, func in _wide_calls(parsed(p))]
    assert wide == []


def test_the_hand_off_check_sees_a_wide_call() -> None:
    tree = ast.parse("f(1, 2, 3, 4, 5)\ng(1, 2, 3, 4, 5, 6)\nh(x, False)\nk(*args, 1, 2, 3, 4, 5)\nm(a=True)\n"
                     "n(c, c in numeric)\np(not q)\nbool(a and b == c)\n")
    assert _wide_calls(tree) == [(2, "g"), (3, "h"), (6, "n"), (7, "p")]
