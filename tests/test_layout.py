"""The import graph is the flow (issue 15): a module imports only from its own stage or the
stages before it, so data moves forward and no stage reaches back into a later one."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bulksync"
STAGES = [
    ("shared", {"errors", "untrusted", "memo", "resources"}),
    ("read", {"sheets", "sheets.read", "sheets.atomic", "sheets.package"}),
    ("map, validate", {"columns", "mapping", "config", "suggest"}),
    ("preflight", {"preflight"}),
    ("plan", {"plan", "journal", "reconcile", "check"}),
    ("run", {"policy", "api", "runner", "resolve", "lock", "report", "execute", "refresh", "undo"}),
    ("write back", {"sheets.write_csv", "sheets.write_xlsx", "writeback"}),
    ("compose", {"sync", "__init__"}),
    ("edges", {"cli", "__main__", "demo", "template", "sandbox", "sandbox.server", "sandbox.__init__"}),
]
LEVEL = {name: level for level, (_, names) in enumerate(STAGES) for name in names}


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return name.removesuffix(".__init__") if name != "__init__" else name


def _imports(tree: ast.Module) -> list[tuple[int, str]]:
    """bulksync modules imported, at run time (``if TYPE_CHECKING`` blocks left out)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
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
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module(path)
        for line, imported in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if LEVEL.get(imported, 0) > LEVEL[name]:
                backwards.append(f"{name}:{line} imports {imported} "
                                 f"({STAGES[LEVEL[imported]][0]} after {STAGES[LEVEL[name]][0]})")
    assert backwards == []


def test_the_check_sees_a_backward_import() -> None:
    tree = ast.parse("from bulksync.columns import is_uuid\nif TYPE_CHECKING:\n    import bulksync.sync\n")
    assert _imports(tree) == [(1, "columns")]
