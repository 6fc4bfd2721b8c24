"""XLSX write-back at 100,000 rows: time, and peak memory with and without 60 MB of other content.

Each measurement runs in a fresh process (peak RSS is per process). The
workbook is built once with openpyxl's write-only mode; the "heavy" copy adds
a 60 MB media part, standing in for images and other sheets.

    .venv/bin/python bench/xlsx_writeback.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def build(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Tickets")
    ws.append(["description", "priority", "status", "assignee", "tags", "notes"])
    for i in range(rows):
        ws.append([f"Ticket {i}: printer on floor {i % 9} jams", "High", "Open", "U05KQ2M8Z1A",
                   "hardware,printer", f"note {i}"])
    wb.save(path)


def add_heavy_part(src: Path, dst: Path, megabytes: int) -> None:
    shutil.copy(src, dst)
    with zipfile.ZipFile(dst, "a") as z:
        z.writestr("xl/media/big.bin", os.urandom(megabytes << 20), compress_type=zipfile.ZIP_STORED)


def measure(path: Path) -> dict[str, float]:
    """Child process: read the table, write bulksync's three columns into every row."""
    from bulksync.sheets.read import read_table
    from bulksync.sheets.write_xlsx import write_xlsx

    started = time.perf_counter()
    table = read_table(path)
    read_s = time.perf_counter() - started
    cells = {row: {"ticketId": f"00000000-0000-4000-8000-{row:012d}", "ticketNumber": str(row),
                   "syncStatus": "created"} for row in table.frame.index}
    t = time.perf_counter()
    write_xlsx(table, cells, columns=("ticketId", "ticketNumber", "syncStatus"))
    write_s = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"read_s": read_s, "write_s": write_s, "peak_mb": peak_mb}


def run_child(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "plain.xlsx"
        build(base, args.rows)
        heavy = Path(tmp) / "heavy.xlsx"
        add_heavy_part(base, heavy, 60)
        for name, path in (("plain", base), ("with 60 MB more", heavy)):
            work = Path(tmp) / f"work-{path.name}"
            shutil.copy(path, work)
            r = run_child(work)
            print(f"{name:16} rows={args.rows} size={path.stat().st_size / 1e6:.1f}MB "
                  f"read={r['read_s']:.2f}s write-back={r['write_s']:.2f}s peak={r['peak_mb']:.0f}MB")


if __name__ == "__main__":
    main()
