"""Write back: every row's outcome into the cells bulksync owns, in the same file.

The sheet is rewritten only in bulksync's four columns (``ticketId``, ``ticketNumber``,
``syncStatus``, ``syncError``), atomically (a temp file, then a rename). When that is
not safe (the sheet is read-only, or changed by someone else during the run) or fails,
the outcomes go to ``FILE.bulksync-results.csv`` beside it: an ID is never lost.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from bulksync.columns import OWNED_COLUMNS
from bulksync.results import RowResult
from bulksync.sheets.table import CsvFormat, Table

__all__ = ["new_sheet", "owned_cells", "run_report_path", "results_path", "write_back", "write_beside",
           "write_run_report"]


def owned_cells(results: Mapping[int, RowResult], columns: tuple[str, ...]) -> dict[int, dict[str, str]]:
    """The cells bulksync writes, among ``columns``, for each row it has an outcome for.

    Rows with the same outcome and no new ID share one (read-only) mapping, which the
    writers meet by identity."""
    error = "syncError" in columns
    ids = "ticketId" in columns
    numbers = "ticketNumber" in columns
    cells: dict[int, dict[str, str]] = {}
    same: dict[tuple[str, str], dict[str, str]] = {}  # rows with one status and error share cells
    for row, r in results.items():
        if r.status == "created" and r.ticket_id:
            c: dict[str, str] = {"syncStatus": r.status}
            if error:
                c["syncError"] = r.error
            if ids:
                c["ticketId"] = r.ticket_id
            if numbers and r.ticket_number is not None:
                c["ticketNumber"] = str(r.ticket_number)
        else:
            shared = same.get((r.status, r.error))
            if shared is None:
                shared = same[(r.status, r.error)] = (
                    {"syncStatus": r.status, "syncError": r.error} if error else {"syncStatus": r.status})
            c = shared
        cells[row] = c
    return cells


class Written(NamedTuple):
    """Where a write-back put the outcomes (None: nowhere, there were none) and, when that
    is not the sheet itself, why."""

    path: Path | None
    note: str = ""


def write_back(table: Table, results: Mapping[int, RowResult],
               values: Mapping[int, Mapping[str, str]] | None = None) -> Written:
    """Write the outcomes into the sheet, or beside it when that is not safe. Never loses an ID.

    ``values``: cells of Suptask columns to write too (what a pull read), by row; only
    columns the sheet has. Returns where the outcomes went and, when that is not the sheet
    itself, why.
    """
    from bulksync.sheets.write_csv import write_csv
    from bulksync.sheets.write_xlsx import write_xlsx

    if not results:
        return Written(None)
    present = {h.strip() for h in table.header}
    # A column the sheet lacks is added only when some row has a value for it.
    created = [r for r in results.values() if r.status == "created" and r.ticket_id]
    used = {"syncStatus"}
    if any(r.error for r in results.values()):
        used.add("syncError")
    if created:
        used.add("ticketId")
    if any(r.ticket_number is not None for r in created):
        used.add("ticketNumber")
    columns = tuple(n for n in OWNED_COLUMNS if n in present or n in used)
    cells: Mapping[int, Mapping[str, str]] = owned_cells(results, columns)
    if values:
        cells = {row: {**cells.get(row, {}), **values.get(row, {})} for row in {*cells, *values}}
        added = dict.fromkeys(c for row in sorted(values) for c in values[row] if c not in columns)
        columns = (*added, *columns)  # new columns before bulksync's status columns
    from bulksync.sheets.atomic import read_only

    if read_only(table.path):
        beside = write_beside(table.path, results)
        return Written(beside, f"{table.path} is read-only, so it was not overwritten; the results are in "
                        f"{beside} and the journal keeps them: make the sheet writable and push again "
                        "to write them in")
    if table.changed():
        beside = write_beside(table.path, results)
        return Written(beside, f"{table.path} was changed by someone else during the run, so it was not "
                        f"overwritten; the results are in {beside} and the journal keeps them: "
                        "the next push writes them into the sheet")
    sheet_cells, sheet_columns = in_sheet_names(table, cells, columns)
    try:
        if isinstance(table.format, CsvFormat):
            return Written(write_csv(table, sheet_cells, columns=sheet_columns))
        return Written(write_xlsx(table, sheet_cells, columns=sheet_columns))
    except Exception as e:  # noqa: BLE001 - whatever stops the write-back, the IDs go beside the file
        beside = write_beside(table.path, results)
        return Written(beside, f"could not write into {table.path} ({e}); the results are in {beside}")


def in_sheet_names(table: Table, cells: Mapping[int, Mapping[str, str]], columns: tuple[str, ...]
                   ) -> tuple[Mapping[int, Mapping[str, str]], tuple[str, ...]]:
    """``cells`` and ``columns`` under the headers the sheet gives bulksync's columns
    (``ticket_id`` for ``ticketId``), so that the writers fill those columns, not new ones.
    Rows that shared one mapping still share one."""
    rename = {n: table.header[i].strip() for n in columns
              if (i := table.position(n)) is not None and table.header[i].strip() != n}
    if not rename:
        return cells, columns
    renamed: dict[int, dict[str, str]] = {}
    out: dict[int, Mapping[str, str]] = {}
    for row, these in cells.items():
        same = renamed.get(id(these))
        if same is None:
            same = renamed[id(these)] = {rename.get(k, k): v for k, v in these.items()}
        out[row] = same
    return out, tuple(rename.get(n, n) for n in columns)


REPORT_COLUMNS = ("row", "legacyId", "ticketId", "ticketNumber", "operation", "outcome", "error",
                  "links", "replies")


def run_report_path(path: Path) -> Path:
    """Where a migration's run report goes by default: beside the export."""
    return path.with_name(path.name + ".bulksync-report.csv")


def write_run_report(target: Path, results: Mapping[int, RowResult], *, operations: Mapping[int, str],
                 legacy_ids: Mapping[int, str], sides: Mapping[int, Mapping[str, int]],
                 known: Mapping[int, tuple[str, str]] | None = None) -> Path:
    """The run report: one line per row with an outcome (what a migration delivers: each
    legacy ticket's new ticket), in UTF-8 with a BOM so that Excel reads it right. ``known``:
    (ticketId, ticketNumber) the sheet holds, for rows whose result names none (a rerun's
    unchanged rows). Every cell is neutralised: the legacy IDs are the export's and the
    errors the server's."""
    from bulksync.sheets.atomic import replace_file
    from bulksync.untrusted import neutralise

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(REPORT_COLUMNS)
    for row in sorted(results):
        r = results[row]
        side = sides.get(row, {})
        sheet_id, sheet_number = (known or {}).get(row, ("", ""))
        w.writerow([row, neutralise(legacy_ids.get(row, "")), r.ticket_id or neutralise(sheet_id),
                    neutralise(sheet_number) if r.ticket_number is None else r.ticket_number,
                    operations.get(row, ""),
                    r.status, neutralise(r.error), side.get("link", 0), side.get("reply", 0)])
    replace_file(target, b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    return target


def results_path(path: Path) -> Path:
    return path.with_name(path.name + ".bulksync-results.csv")


def write_beside(path: Path, results: Mapping[int, RowResult]) -> Path:
    from bulksync.sheets.atomic import replace_file
    from bulksync.untrusted import neutralise

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", *OWNED_COLUMNS])
    for row in sorted(results):
        r = results[row]
        w.writerow([row, r.ticket_id or "", r.ticket_number or "", r.status, neutralise(r.error)])
    target = results_path(path)
    replace_file(target, buf.getvalue().encode("utf-8"))
    return target


def new_sheet(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """A new .csv (UTF-8) or .xlsx with ``header`` and ``rows``, written atomically."""
    import csv
    import io

    from bulksync.sheets.atomic import replace_file
    from bulksync.sheets.read import XLSX_SUFFIXES

    if path.suffix.lower() in XLSX_SUFFIXES:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("Tickets")
        for row in (header, *rows):
            sheet.append(row)
        replace_file(path, lambda f: book.save(f))
    else:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows])
        replace_file(path, buf.getvalue().encode("utf-8"))
