"""bulksync uses only the public interfaces of its dependencies (issue 15): an upgrade of one
of them must not break a push through a private module or attribute it changed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.test_layout import parsed

PACKAGE = Path(__file__).resolve().parent.parent / "bulksync"
DEPENDENCIES = ("httpx", "httpcore", "pandas", "pandera", "python_calamine", "lxml", "openpyxl",
                "click", "tqdm", "filelock", "platformdirs", "h11", "anyio", "numpy")
# Names a module imports a dependency as (import pandas as pd, lxml.etree as etree...).
ALIASES = r"(?:httpx|httpcore|pandas|pd|pandera|pa|python_calamine|lxml|etree|openpyxl|click|tqdm|" \
          r"filelock|platformdirs|np|numpy)"


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_private_module_of_a_dependency_is_imported() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(parsed(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] in DEPENDENCIES and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"{path.name}:{node.lineno}: {name}")
    assert found == []


def test_no_private_attribute_of_a_dependency_is_touched() -> None:
    private = re.compile(rf"\b{ALIASES}(?:\.[A-Za-z]\w*)*\._[a-z]\w*")
    reaching = re.compile(r"\._(pool|uri_reference|transport|mounts|network_backend|ssl_context)\b")
    found = [f"{path.name}:{n}: {line.strip()}"
             for path in _sources()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if private.search(line) or reaching.search(line)]
    assert found == []


def test_the_check_can_fail() -> None:
    private = re.compile(rf"\b{ALIASES}(?:\.[A-Za-z]\w*)*\._[a-z]\w*")
    assert private.search("url = httpx._urls.urlparse(x)")
    assert private.search("pd.core._libs")
    assert not private.search("httpx.AsyncClient(base_url=x)")
