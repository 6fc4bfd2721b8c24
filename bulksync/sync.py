"""The pipeline behind the public door: read → map → validate → plan → run → write back."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bulksync.columns import OWNED_COLUMNS, Rows, ValidationReport, select_rows, validate_rows
from bulksync.config import Settings, resolve_settings
from bulksync.errors import SheetError, TokenMissing
from bulksync.plan import Plan, plan_rows
from bulksync.report import PushResult, RowResult
from bulksync.sheets.read import CsvFormat, Table, read_table

if TYPE_CHECKING:
    import httpx

    from bulksync.runner import ProgressCallback

__all__ = ["Loaded", "load", "plan", "push", "validate"]

TOKEN_ENV = "SUPTASK_API_TOKEN"


@dataclass(frozen=True, eq=False)
class Loaded:
    """A sheet read, mapped and validated: everything before the plan."""

    table: Table
    rows: Rows
    report: ValidationReport
    settings: Settings


def load(path: Path | str, settings: Settings) -> Loaded:
    """Read ``path``, map its columns and validate it."""
    table = read_table(path, sheet=settings.sheet)
    rows = select_rows(table, settings.defaults)
    return Loaded(table, rows, validate_rows(rows, table.path), settings)


def validate(path: Path | str, *, sheet: str | None = None, config: Path | str | None = None,
             form_id: str | None = None, channel: str | None = None,
             set: Mapping[str, str] | None = None) -> ValidationReport:
    """Every problem of the sheet at ``path``, with row numbers and columns. Sends nothing.

    ``form_id``/``channel`` fill rows that create a ticket; ``set`` gives fields a value on
    every row; ``config`` is a bulksync.toml (default: the one beside the sheet, if any).
    """
    settings = resolve_settings(path, config=config, sheet=sheet, form_id=form_id,
                                channel=channel, set=set)
    return load(path, settings).report


def plan(path: Path | str, *, sheet: str | None = None, config: Path | str | None = None,
         form_id: str | None = None, channel: str | None = None,
         set: Mapping[str, str] | None = None) -> tuple[ValidationReport, Plan]:
    """What a push would send for the valid rows, and the report. Needs no token; sends nothing."""
    settings = resolve_settings(path, config=config, sheet=sheet, form_id=form_id,
                                channel=channel, set=set)
    loaded = load(path, settings)
    return loaded.report, _plan(loaded)


def _plan(loaded: Loaded) -> Plan:
    if loaded.report.sheet_invalid:
        return Plan(())
    return plan_rows(loaded.rows, exclude=loaded.report.invalid_rows)


def push(
    path: Path | str,
    *,
    token: str | None = None,
    api_url: str | None = None,
    sheet: str | None = None,
    config: Path | str | None = None,
    form_id: str | None = None,
    channel: str | None = None,
    set: Mapping[str, str] | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    skip_invalid: bool = False,
    on_progress: ProgressCallback | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PushResult:
    """Send the sheet's rows to Suptask and write the outcome back into the sheet.

    A sheet with invalid rows is refused (nothing sent, file untouched) unless
    ``skip_invalid``, which sends the valid rows and marks the others. The
    token comes from ``token`` or ``SUPTASK_API_TOKEN``.
    """
    from bulksync.api import SuptaskClient
    from bulksync.runner import RunStats, run_operations

    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise TokenMissing()
    settings = resolve_settings(path, config=config, sheet=sheet, form_id=form_id,
                                channel=channel, set=set, api_url=api_url,
                                concurrency=concurrency, rate=rate)
    loaded = load(path, settings)
    report = loaded.report
    results: dict[int, RowResult] = {}
    if report.sheet_invalid or (not report.valid and not skip_invalid):
        return PushResult(path=loaded.table.path, results=_invalid(report), requests=0,
                          written_to=None, ignored_columns=report.ignored_columns, report=report,
                          refused=True)
    the_plan = _plan(loaded)
    if skip_invalid:
        results.update(_invalid(report))
    for op in the_plan.operations:
        if op.kind == "skip":
            results[op.row_number] = RowResult(op.row_number, "skipped", ticket_id=op.ticket_id,
                                               error="no field to change")
    stats = RunStats()

    async def run() -> None:
        async with SuptaskClient(token=token, base_url=settings.api_url, transport=transport,
                                 max_connections=settings.concurrency) as client:
            await run_operations(client, the_plan.operations, results,
                                 concurrency=settings.concurrency, rate=settings.rate,
                                 on_progress=on_progress, stats=stats)

    interrupted = False
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        interrupted = True
    written = write_back(loaded.table, results)
    result = PushResult(path=loaded.table.path, results=results, requests=stats.requests,
                        written_to=written, ignored_columns=report.ignored_columns,
                        report=report, stopped=str(stats.stopped) if stats.stopped else "")
    if interrupted:
        raise KeyboardInterrupt  # the results are in the sheet; the caller decides the exit
    return result


def _invalid(report: ValidationReport) -> dict[int, RowResult]:
    messages: dict[int, list[str]] = {}
    for p in report.problems:
        if p.row_number > 1:
            messages.setdefault(p.row_number, []).append(f"{p.column}: {p.message}")
    return {row: RowResult(row, "invalid", error="; ".join(m)) for row, m in messages.items()}


def owned_cells(results: Mapping[int, RowResult]) -> dict[int, dict[str, str]]:
    """The cells bulksync writes for each row it has an outcome for."""
    cells: dict[int, dict[str, str]] = {}
    for row, r in results.items():
        c = {"syncStatus": r.status, "syncError": r.error}
        if r.status == "created" and r.ticket_id:
            c["ticketId"] = r.ticket_id
            if r.ticket_number is not None:
                c["ticketNumber"] = str(r.ticket_number)
        cells[row] = c
    return cells


def write_back(table: Table, results: Mapping[int, RowResult]) -> Path | None:
    """Write the outcomes into the sheet; if that cannot be done, beside it. Never loses an ID."""
    from bulksync.sheets.write_csv import write_csv
    from bulksync.sheets.write_xlsx import write_xlsx

    if not results:
        return None
    cells = owned_cells(results)
    present = {h.strip() for h in table.header}
    used = {name for c in cells.values() for name, v in c.items() if v}
    columns = tuple(n for n in OWNED_COLUMNS if n in present or n in used or n == "syncStatus")
    cells = {row: {k: v for k, v in c.items() if k in columns} for row, c in cells.items()}
    try:
        if isinstance(table.format, CsvFormat):
            return write_csv(table, cells, columns=columns)
        return write_xlsx(table, cells, columns=columns)
    except (SheetError, OSError):
        return _write_beside(table.path, results)


def results_path(path: Path) -> Path:
    return path.with_name(path.name + ".bulksync-results.csv")


def _write_beside(path: Path, results: Mapping[int, RowResult]) -> Path:
    from bulksync.sheets.atomic import replace_file
    from bulksync.sheets.write_csv import neutralise

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", *OWNED_COLUMNS])
    for row in sorted(results):
        r = results[row]
        w.writerow([row, r.ticket_id or "", r.ticket_number or "", r.status, neutralise(r.error)])
    target = results_path(path)
    replace_file(target, buf.getvalue().encode("utf-8"))
    return target
