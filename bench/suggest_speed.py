"""``bulksync mapping suggest`` on a big export (issue 27): a generated 50,000-row CSV of 9
columns and of 34, suggested in process (``suggest`` and ``render``, the file read once
beforehand) and process to process (``bulksync mapping suggest FILE --out M``, reading included).

    .venv/bin/python bench/suggest_speed.py                       # this tree
    .venv/bin/python bench/suggest_speed.py --before-tree DIR     # and an older tree beside it

``DIR`` holds an older commit's files (``git archive REV bulksync templates sample_data |
tar -x -C DIR``): its ``bulksync/suggest.py`` is loaded as a module of its own for the
in-process figure, and its ``bulksync`` package put first on ``PYTHONPATH`` for the process
figure. The sides are interleaved (A B A B ...), the best of REPEATS each, so that each ratio
is taken in one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROWS = 50_000
REPEATS = 3
STATUSES = ("Open", "In progress", "Pending", "Resolved", "Closed", "On hold", "Waiting on Vendor")
PRIORITIES = ("Low", "Normal", "High", "Urgent")
WORDS = ("printer", "vpn", "laptop", "password", "payroll", "email", "screen", "badge", "wifi", "access",
         "cannot", "broken", "slow", "reset", "new", "again", "after", "update", "the", "my", "is")


def export(path: Path, *, columns: int, rows: int = ROWS) -> Path:
    """A helpdesk export of ``rows`` tickets: the 9 columns a suggestion reads, then custom
    fields of every kind (categories, counts, dates, short text, flags) up to ``columns``."""
    import csv

    pick = random.Random(27)
    header = ["Ticket ID", "Subject", "Description", "Status", "Priority", "Requester Email", "Agent",
              "Tags", "Created"]
    kinds = ("category", "count", "date", "text", "flag")
    extra = [kinds[i % len(kinds)] for i in range(columns - len(header))]
    make: dict[str, Callable[[], str]] = {
        "category": lambda: pick.choice(("A", "B", "C", "Other")),
        "count": lambda: str(pick.randrange(20)),
        "date": lambda: f"2024-03-{pick.randrange(1, 29):02}",
        "text": lambda: " ".join(pick.choices(WORDS, k=3)),
        "flag": lambda: pick.choice(("yes", "no")),
    }
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header + [f"Custom {i} ({kind})" for i, kind in enumerate(extra)])
        for n in range(rows):
            out.writerow([f"HD-{1000 + n}", " ".join(pick.choices(WORDS, k=5)).capitalize(),
                          " ".join(pick.choices(WORDS, k=30)), pick.choice(STATUSES), pick.choice(PRIORITIES),
                          f"user{pick.randrange(800)}@example.com", pick.choice(("Tom Becker", "Priya Raman", "")),
                          ",".join(pick.sample(WORDS[:8], k=2)),
                          f"2024-{pick.randrange(1, 13):02}-{pick.randrange(1, 29):02} 09:12",
                          *(make[kind]() for kind in extra)])
    return path


def load(path: Path) -> ModuleType:
    """An older ``suggest.py`` as a module of its own, beside this tree's."""
    spec = importlib.util.spec_from_file_location("bulksync_suggest_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(run: Callable[[], object], seconds: list[float]) -> None:
    start = time.perf_counter()
    run()
    seconds.append(time.perf_counter() - start)


def command(sheet: Path, tree: Path | None) -> Callable[[], object]:
    """``bulksync mapping suggest sheet`` in a process of its own (``tree`` first on the path)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = sheet.with_suffix(f".{'before' if tree else 'now'}.toml")
    args = [sys.executable, "-m", "bulksync", "mapping", "suggest", str(sheet), "--out", str(out), "--force"]
    # Run from the sheet's folder: ``-m`` puts the working folder first on the path.
    return lambda: subprocess.run(args, env=env, check=True, capture_output=True, cwd=sheet.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before-tree", type=Path, help="an older commit's files, to time beside this tree")
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()

    import bulksync.suggest as now
    from bulksync.sheets.read import read_table

    sides: list[tuple[str, ModuleType, Path | None]] = [("this tree", now, None)]
    if args.before_tree:
        sides.insert(0, ("before", load(args.before_tree / "bulksync" / "suggest.py"), args.before_tree))
    folder = Path(tempfile.mkdtemp(prefix="bulksync-bench-suggest-"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"{args.rows} rows; {os.cpu_count()} cores ({cpu}); Python {platform.python_version()}; "
          f"best of {REPEATS}")
    names = [name for name, _, _ in sides]
    print("| columns | read once | " + " | ".join(f"in process, {n}" for n in names) + " | "
          + " | ".join(f"process, {n}" for n in names) + " |")
    print("|---|---|" + "---|" * 2 * len(sides))
    for columns in (9, 34):
        sheet = export(folder / f"export{columns}.csv", columns=columns, rows=args.rows)
        start = time.perf_counter()
        table = read_table(sheet)
        read = time.perf_counter() - start
        inside: list[list[float]] = [[] for _ in sides]
        process: list[list[float]] = [[] for _ in sides]
        for _ in range(REPEATS):
            for (_, module, tree), a, b in zip(sides, inside, process, strict=True):
                timed(lambda m=module, t=table: m.render(m.suggest(t)), a)
                timed(command(sheet, tree), b)
        print(f"| {columns} | {read:.2f} s | " + " | ".join(f"{min(s):.2f} s" for s in (*inside, *process)) + " |")


if __name__ == "__main__":
    main()
