"""Review 23 (issue 23, points 1 and 8): what a pull or a reset does where a table stands.

A pull is refused before its first read where the write-back would refuse it (Suptask
allows 100 reads per 15 minutes: they are not spent on a sheet that cannot take the
answers); a reset, which only empties bulksync's cells, is never refused for a table.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from bulksync.sandbox import Sandbox
from tests.conftest import TOKEN, add_table, run_cli, write_book


def _book(path: Path, rows: list[list[Any]], *, table: str | None = None, totals: bool = False) -> Path:
    return write_book(path, rows, edit=None if table is None else lambda ws: add_table(ws, table, totals=totals))


def _parts(book: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(book) as z:
        return {name: z.read(name) for name in z.namelist()}


# -- finding 14: pull checks where its columns go before reading ------------------------------

def test_pull_is_refused_before_its_first_read_where_the_columns_cannot_join(tmp_path: Path) -> None:
    """The reviewer's c_pull.py: plan refused the sheet with 0 requests, pull read every
    ticket and then could not write the answers in."""
    with Sandbox(token=TOKEN, samples=True) as sb:
        tickets = sb.tickets()[:3]
        book = _book(tmp_path / "pull.xlsx", [["ticketId", "ticketNumber", "status", "Notes"],
                                              *[[t["id"], t["ticketNumber"], "Closed", "n"] for t in tickets]],
                     table="A1:C4")
        before, sent = book.read_bytes(), len(sb.requests())
        env = {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}
        planned = run_cli("plan", str(book), env=env)
        pulled = run_cli("pull", str(book), env=env)
        assert pulled.returncode == 2, pulled.stdout + pulled.stderr
        said = ("row 1: column D (Notes) stands between table Tix (ending at column C) and column E (syncStatus), "
                "where bulksync's columns go, so they cannot join it: add the column(s) syncStatus, syncError to "
                "table Tix yourself")
        assert f"bulksync: error: {book}: {said}" in pulled.stderr
        assert f"{book}: {said}" in planned.stdout + planned.stderr  # the words plan gives it
        assert len(sb.requests()) == sent and book.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["pull.xlsx"]  # no side file either


def test_pull_counts_the_columns_it_would_add(tmp_path: Path) -> None:
    """A sheet of ticket numbers alone gets the six Suptask columns a pull fills: with room
    for bulksync's own four and no more, the pull is refused before reading, not after."""
    with Sandbox(token=TOKEN, samples=True) as sb:
        numbers = [t["ticketNumber"] for t in sb.tickets()[:2]]
        book = _book(tmp_path / "numbers.xlsx", [["ticketNumber"], *[[n] for n in numbers]])
        from openpyxl import load_workbook

        wb = load_workbook(book)
        ws = wb.active
        assert ws is not None
        ws.cell(row=3, column=16_380, value="far right")  # XEZ: room for four columns after it
        wb.save(book)
        before, sent = book.read_bytes(), len(sb.requests())
        pulled = run_cli("pull", str(book), env={"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN})
        assert pulled.returncode == 2, pulled.stdout + pulled.stderr
        assert (f"bulksync: error: {book}: row 1: has no room for the 9 column(s) bulksync adds (status, priority, "
                "assignee, requester, tags, description, ticketId, syncStatus, syncError) before XFD, Excel's last "
                "column: cells that hold something reach column XEZ; clear or move 5 column(s) at the right"
                in pulled.stderr)
        assert len(sb.requests()) == sent and book.read_bytes() == before


def test_pull_of_a_table_the_columns_join_still_reads_and_writes(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN, samples=True) as sb:
        tickets = sb.tickets()[:3]
        book = _book(tmp_path / "pull.xlsx", [["ticketId", "ticketNumber", "status"],
                                              *[[t["id"], t["ticketNumber"], "x"] for t in tickets]], table="A1:C4")
        pulled = run_cli("pull", str(book), "-q", env={"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN})
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert "3 pulled" in pulled.stdout and b'ref="A1:D4"' in _parts(book)["xl/tables/table1.xml"]


# -- finding 19: reset only empties cells, whatever the table ---------------------------------

RESET_ROWS = [["description", "priority", "ticketId", "ticketNumber", "syncStatus"],
              ["Printer jams", "High", "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95", 1, "created"],
              ["VPN drops", "Low", "1b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95", 2, "created"]]


@pytest.mark.parametrize(("rows", "table", "totals"), [
    pytest.param([*RESET_ROWS, ["Total", None, None, None, None]], "A1:B4", True, id="a-totals-row"),
    pytest.param([[*r[:2], "", *r[2:]] for r in RESET_ROWS], "A1:B3", False, id="an-empty-column-between"),
    pytest.param(RESET_ROWS, "A1:B2", False, id="rows-below-the-table"),
])
def test_reset_empties_bulksyncs_cells_beside_a_table_it_could_not_join(
        tmp_path: Path, rows: list[list[Any]], table: str, totals: bool) -> None:
    """The reviewer's h_reset.py: older bulksync columns right of a table with a totals row,
    and reset failed with a message about turning the totals row off. Nothing is added, so
    nothing joins: the cells are emptied, the table part is left byte for byte."""
    book = _book(tmp_path / "old.xlsx", rows, table=table, totals=totals)
    before = _parts(book)
    done = run_cli("reset", str(book), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{book}: 6 cell(s) cleared" in done.stdout
    after = _parts(book)
    assert {n for n in before if before[n] != after[n]} == {"xl/worksheets/sheet1.xml"}
    from bulksync.sheets.read import read_table

    frame = read_table(book).frame
    assert frame.iloc[:2, -3:].eq("").all().all() and frame.iloc[:2, 0].tolist() == ["Printer jams", "VPN drops"]


def test_push_still_refuses_the_table_that_reset_leaves(tmp_path: Path, sandbox: Sandbox) -> None:
    """Only a write that empties cells is let through: a push writes IDs, which must move
    with their rows."""
    from tests.conftest import CHANNEL, FORM

    book = _book(tmp_path / "old.xlsx", [*RESET_ROWS, ["Total", None, None, None, None]], table="A1:B4", totals=True)
    pushed = run_cli("push", str(book), "--form-id", FORM, "--channel", CHANNEL,
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert pushed.returncode == 1 and "row 4 is the totals row of table Tix" in pushed.stdout + pushed.stderr
    assert sandbox.requests() == []
