"""``bulksync demo``: the three jobs against a sandbox, on copies of the bundled samples."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulksync.journal import HOME_ENV
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from bulksync.sync import push

__all__ = ["run_demo"]


def _edit_first_row(path: Path, column: str, value: str) -> str:
    """Change one cell the way a user would in Excel; return the row's ticketId."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    rows[1][header.index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return rows[1][header.index("ticketId")]


def _ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row["ticketId"] for row in csv.DictReader(f) if row.get("ticketId")]


def run_demo(folder: Path | None, *, echo: Callable[[str], None] = print) -> int:
    work = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="bulksync-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    # The demo keeps its state in its own folder: it changes nothing of yours.
    home = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(work / ".bulksync-state")
    try:
        return _run(work, echo)
    finally:
        if home is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = home


def _run(work: Path, echo: Callable[[str], None]) -> int:
    shutil.copytree(bundled("sample_data"), work, dirs_exist_ok=True)
    echo(f"Working on copies of the sample sheets in {work}")
    with Sandbox() as sb:
        echo(f"Sandbox (a local stand-in for the Suptask API) at {sb.url}\n")
        options: dict[str, Any] = {"token": sb.token, "api_url": sb.url}

        sheet = work / "new-tickets.csv"
        echo(f"1. Create tickets: bulksync push {sheet.name}")
        r = push(sheet, **options)
        echo(f"   {r.counts['created']} created with {r.requests} requests; ticketId, "
             f"ticketNumber and syncStatus written back into {sheet.name}")

        ticket = _edit_first_row(sheet, "priority", "CRITICAL")
        echo("\n2. Round trip: set row 2's priority to CRITICAL, then push the same file again")
        r = push(sheet, **options)
        echo(f"   {r.counts['created']} created, {r.counts['updated']} updated, "
             f"{r.counts['unchanged']} unchanged, {r.requests} request: the written-back IDs make "
             "a second push update, never duplicate, and only what changed is sent")
        stored = next(t for t in sb.tickets() if t["id"] == ticket)
        echo(f"   ticket #{stored['ticketNumber']} now has priority {stored['priority']}")

        close = work / "close-these.csv"
        ids = _ids(sheet)[:3]
        close.write_text("ticketId,reason\n" + "".join(f"{i},demo\n" for i in ids), encoding="utf-8")
        echo(f"\n3. Bulk close: bulksync push {close.name} --set status=Closed")
        r = push(close, set={"status": "Closed"}, **options)
        closed = sum(1 for t in sb.tickets() if t["status"] == "Closed")
        echo(f"   {r.counts['updated']} updated; the sandbox now holds {closed} closed tickets")

        xlsx = work / "new-tickets.xlsx"
        echo(f"\n4. The same tickets from Excel: bulksync push {xlsx.name}")
        r = push(xlsx, **options)
        matched = r.summary()["matched"]
        echo(f"   {matched} rows match tickets already created from {sheet.name}: not created "
             f"again, their IDs written into the workbook's Tickets sheet (its other sheet and "
             f"formatting kept); {r.counts['created'] - matched} new tickets")
        echo("   (a row matches another sheet's only when every cell is the same, your own "
             "columns included: rows that differ in any cell are other tickets)")
        ok = r.ok
        echo(f"\nThe sandbox holds {len(sb.tickets())} tickets after {len(sb.requests())} requests.")
    echo(f"Open the written-back files in {work}")
    return 0 if ok else 1
