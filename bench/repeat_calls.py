"""The Python API called again and again in one process (a notebook, a script, the tests), and
the widest sheet (issue 26, point 6): CPU per call, this tree against an older one.

    .venv/bin/python bench/repeat_calls.py                       # this tree
    .venv/bin/python bench/repeat_calls.py --before-tree DIR     # and an older tree beside it

``DIR`` holds an older commit's files (``git archive REV bulksync templates sample_data | tar -x -C DIR``); each
side runs in a process of its own with its ``bulksync`` first on ``PYTHONPATH``. Figures:

- ``push, push again``: ``bulksync.push`` of a 3-row sheet to a sandbox in the same process,
  then again after one cell changed; the median of 12 pairs (the first pair, which imports
  and warms up, left out), CPU of the whole process (the sandbox's threads included).
- ``validate XFD``: ``bulksync.validate`` of a 3-row workbook with a cell in XFD (16,384
  columns), the best of 5 calls after a first.
- ``select_rows 100k``: ``columns.select_rows`` of a 100,000-row, 20-column CSV read once
  beforehand (the tall sheet, that the wide one's change must not slow), the best of 5.

The sides are interleaved (A B A B), REPEATS runs each, so that each ratio is taken in one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPEATS = 2

INNER = r'''
import os, statistics, sys, tempfile, time
from pathlib import Path
import bulksync
from bulksync.columns import Defaults, select_rows
from bulksync.sandbox import Sandbox
from bulksync.sheets.read import read_table

folder = Path(sys.argv[1])
os.environ["BULKSYNC_HOME"] = tempfile.mkdtemp()
form, channel = "6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84", "C076K6Y74L1"
with Sandbox(token="bench-token") as sb:
    pairs = []
    for n in range(13):
        sheet = Path(tempfile.mkdtemp()) / "t.csv"
        sheet.write_text(f"description\nA{n}\nB{n}\nC{n}\n")  # its own rows: not copies of the last
        start = time.process_time()
        first = bulksync.push(sheet, token="bench-token", api_url=sb.url, form_id=form, channel=channel)
        sheet.write_text(sheet.read_text().replace(f"A{n},", f"A{n} edited,"))
        again = bulksync.push(sheet, token="bench-token", api_url=sb.url)
        pairs.append(time.process_time() - start)
        assert first.ok and again.ok and first.counts["created"] == 3 and again.counts["updated"] == 1
pair = statistics.median(pairs[1:])

def best(call, times=5):
    call()
    spent = []
    for _ in range(times):
        start = time.process_time()
        call()
        spent.append(time.process_time() - start)
    return min(spent)

wide = best(lambda: bulksync.validate(folder / "wide.xlsx"))
table = read_table(folder / "tall.csv")
tall = best(lambda: select_rows(table, Defaults(form_id=form, channel=channel)))
print(f"{pair:.4f} {wide:.4f} {tall:.4f} {bulksync.__file__}")
'''


def make_files(folder: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    for row in (["description", "notes"], ["Printer jams", "x"], ["VPN drops", ""]):
        book.active.append(row)
    book.active.cell(row=3, column=16_384, value="last")
    book.save(folder / "wide.xlsx")
    header = ["description", "status", "priority"] + [f"c{i}" for i in range(17)]
    lines = [",".join(header)] + [",".join([f"Ticket {r}", "Open", "High"] + [
        f" v{r}-{i} " if i % 3 else "" for i in range(17)]) for r in range(100_000)]
    (folder / "tall.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure(tree: Path, folder: Path) -> tuple[float, float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # Run from the files' folder: from here, ``-c`` would put this tree first on sys.path.
    done = subprocess.run([sys.executable, "-c", INNER, str(folder)], capture_output=True, text=True, env=env,
                          cwd=folder)
    if done.returncode:
        raise SystemExit(f"{tree}: the measurement failed:\n{done.stderr}")
    *figures, imported = done.stdout.split()
    if not Path(imported).is_relative_to(tree):
        raise SystemExit(f"{tree}: the measurement imported another bulksync: {imported}")
    pair, wide, tall = map(float, figures)
    return pair, wide, tall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-tree", type=Path, help="an older tree's files, measured beside this one")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    sides = {"before": args.before_tree.resolve()} if args.before_tree else {}
    sides["after"] = here
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as folder:
        make_files(Path(folder))
        figures: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
        for _ in range(REPEATS):
            for side, tree in sides.items():
                figures[side].append(measure(tree, Path(folder)))
    for side, runs in figures.items():
        pair, wide, tall = (min(r[i] for r in runs) for i in range(3))
        print(f"{side}: push, push again {pair * 1000:.0f} ms; validate XFD {wide:.2f} s; "
              f"select_rows 100k {tall:.3f} s")


if __name__ == "__main__":
    main()
