"""Preflight: read → map → validate. Everything a run knows about the sheet before it plans.

Nothing here reads the state store or the network: a sheet that fails preflight is
refused before bulksync has looked at anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bulksync.columns import (
    CUSTOM_FIELD_PREFIX,
    OWNED_COLUMNS,
    TICKET_ID,
    Headers,
    Problem,
    Rows,
    ValidationReport,
    aliases,
    canonical_column,
    lost_digits,
    select_rows,
    validate_rows,
)
from bulksync.config import Settings
from bulksync.errors import SheetError
from bulksync.mapping import Mapped, apply_mapping, export_preset
from bulksync.sheets.package import columns_refusal
from bulksync.sheets.read import read_table, sheet_identity
from bulksync.sheets.table import Table, XlsxFormat

__all__ = ["Prepared", "prepare", "prepare_listed", "read_sheet", "refuse_no_room_to_pull", "sheet_statuses"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """A sheet read, mapped and validated.

    ``table`` is the sheet as it is on disk (what is written back into); ``mapped`` is it
    in Suptask's columns (what is sent); ``rows`` the rows selected for sending;
    ``scope`` the sheet's identity (its real path), for the state store's row keys.
    """

    table: Table
    mapped: Mapped
    rows: Rows
    report: ValidationReport
    scope: str


def prepare(path: Path | str, settings: Settings) -> Prepared:
    """Read ``path``, map its columns and validate every row, in one report.

    Problems of the mapping (an unmapped value or user) join the schema's, and the
    report names the sheet's own columns (a mapped export's headers, not Suptask's).
    """
    table = _read(path, settings, aliased=settings.mapping is None)
    mapped = apply_mapping(table, settings.mapping, users=settings.users,
                           default_requester=settings.default_requester, comments=settings.comments)
    headers = Headers(settings.columns, settings.own_columns, guess=settings.mapping is None)
    rows = _shown(select_rows(mapped.table, settings.defaults, headers), table, settings)
    report = validate_rows(rows, table.path)
    if mapped.problems:
        report = report.with_problems(mapped.problems, superseding=True)
    lost = lost_digits(table, _id_columns(table, settings))
    if lost:
        report = report.with_problems(tuple(lost), superseding=True)
    source_of = dict(mapped.source_of) if settings.mapping else {
        column: table.header[i].strip() for column, i in table.aliases.items()}
    report = report.with_problems(_errors(table, rows, headers, settings, source_of), superseding=True)
    if source_of:
        report = report.renamed(source_of)
    report = report.with_problems(_room(table, rows), superseding=True)
    preset = export_preset(table.header) if settings.mapping is None else None
    if preset is not None:  # pushed as it is, its statuses and names would go out raw
        report = report.with_problems((Problem(1, None, (
            f"this looks like a {preset.title()} export: push it with --mapping {preset} --users "
            "users.csv (Slack member IDs by email), or --default-requester U…"),
            "export-without-mapping", preset),))
    report = replace(report, notes=table.notes + mapped.notes + _hidden_note(table, settings)).on_header_row(
        table.header_row)
    return Prepared(table, mapped, rows, report, sheet_identity(table.path))


def prepare_listed(path: Path | str, settings: Settings) -> Prepared:
    """The sheet's rows that name a ticket, checked (ticketIds are UUIDs, each once): what a
    bulk delete acts on. No mapping: a delete sheet lists Suptask's own IDs."""
    table = _read(path, settings, aliased=True)
    rows = _shown(select_rows(table, settings.defaults, Headers(settings.columns, settings.own_columns)),
                  table, settings)
    rows = replace(rows, frame=rows.frame[rows.frame["ticketId"].ne("")])
    report = validate_rows(rows, table.path).renamed(
        {column: table.header[i].strip() for column, i in table.aliases.items()}).with_problems(_room(table, rows))
    # A delete sends no field, so no column is "not sent": none is named as such.
    report = replace(report, notes=table.notes + _hidden_note(table, settings),
                     ignored_columns=()).on_header_row(table.header_row)
    return Prepared(table, Mapped(table, (), {}, {}, {}), rows, report, sheet_identity(table.path))


def _room(table: Table, rows: Rows) -> tuple[Problem, ...]:
    """Before anything is sent: whether the write-back can put bulksync's four columns into
    the workbook (room before XFD; a table or filter on the header row they can join; the
    rows to write inside that table), decided by the function the writer itself uses."""
    if not isinstance(table.format, XlsxFormat):
        return ()
    last = int(rows.frame.index.max()) if len(rows.frame) else table.header_row
    refusal = columns_refusal(table, owned=OWNED_COLUMNS, last_row=last)
    if refusal is None:
        return ()
    return (Problem(1, None, refusal.message, refusal.code, None),)


def refuse_no_room_to_pull(table: Table, *, adding: tuple[str, ...] = ()) -> None:
    """Before a pull reads anything (its reads are Suptask's scarcest allowance): raise
    :class:`SheetError`, in the words ``plan`` gives the same problem, where the write-back
    could not put into the workbook bulksync's columns and ``adding`` (the Suptask columns
    the pull fills that the sheet lacks), down to the last row that names a ticket. The
    custom fields a sheet of numbers alone gains are known only from the answers: not
    counted here."""
    if not isinstance(table.format, XlsxFormat):
        return
    named = [table.frame[at].str.strip().ne("") for n in (TICKET_ID, "ticketNumber")
             if (at := table.position(n)) is not None]
    rows = [int(r) for r in table.frame.index[named[0] | named[-1]]] if named else []
    refusal = columns_refusal(table, owned=OWNED_COLUMNS, last_row=max(rows, default=table.header_row),
                              adding=adding)
    if refusal is not None:
        raise SheetError(table.path, refusal.message, row_number=1)


def _errors(table: Table, rows: Rows, headers: Headers, settings: Settings,
            source_of: dict[str, str]) -> tuple[Problem, ...]:
    """Cells a workbook shows as a value that is not one to send, in the rows to send and the
    columns bulksync reads (Suptask's, or a mapping's sources; not those ``--set`` fills):
    Excel error cells (``#N/A``: a formula that failed) and formulas whose value was never
    stored (bulksync cannot calculate them)."""
    marks = [(cell, "excel-error") for cell in table.errors] + [(cell, "uncached-formula") for cell in table.uncached]
    if not marks:
        return ()
    problems = []
    read = _names(settings, aliased=settings.mapping is None)
    column_of = {source: column for column, source in source_of.items()}
    for (row, position), code in sorted(marks):
        header = table.header[position].strip() if position < len(table.header) else ""
        if not read(header) or header in headers.own or row not in rows.frame.index:
            continue
        column = column_of.get(header) or canonical_column(header, headers.named) or header
        if column in settings.defaults.set:
            continue
        shown = str(table.frame.at[row, position])
        message = (f"holds the Excel error {shown} (a formula that failed): fix it or clear the cell"
                   if code == "excel-error" else
                   f"holds a formula ({shown}) whose value was never saved (the file was written by a "
                   "program and not recalculated): open and save it in Excel or LibreOffice, or clear the cell")
        problems.append(Problem(row, column, message, code, shown))
    return tuple(problems)


def _shown(rows: Rows, table: Table, settings: Settings) -> Rows:
    """The rows without those a workbook's filter hides (unless ``include_hidden``): a bulk
    close of a filtered list closes what the user sees, not what they hid."""
    if not table.hidden or settings.include_hidden:
        return rows
    return rows.only(~rows.frame.index.isin(list(table.hidden)))


def _hidden_note(table: Table, settings: Settings) -> tuple[str, ...]:
    if not table.hidden:
        return ()
    count = len(table.hidden)
    if settings.include_hidden:
        return (f"{count} row(s) hidden by the sheet's filter are included (--include-hidden)",)
    return (f"{count} row(s) hidden by the sheet's filter are left out (--include-hidden to push them)",)


def _id_columns(table: Table, settings: Settings) -> dict[str, int]:
    """Where the sheet holds IDs and numbers that must survive exactly: ticketId, ticketNumber,
    custom fields and a mapping's legacy ID (column name as the sheet has it → position)."""
    names = [TICKET_ID, "ticketNumber"]
    if settings.mapping is not None and settings.mapping.legacy_id:
        names.append(settings.mapping.legacy_id)
    out = {n: p for n in names if (p := table.position(n)) is not None}
    for i, header in enumerate(table.header):
        column = canonical_column(header, settings.columns) if settings.mapping is None else None
        if column is not None and column.startswith(CUSTOM_FIELD_PREFIX):
            out[column] = i
    return out


def read_sheet(path: Path | str, settings: Settings) -> Table:
    """The sheet as ``check`` reads it (its header row, encoding and delimiter from the
    settings), unchecked: for what changes bulksync's own cells alone (reset)."""
    return _read(path, settings, aliased=settings.mapping is None)


def _read(path: Path | str, settings: Settings, *, aliased: bool) -> Table:
    """The sheet; ``aliased``: a sheet in Suptask's columns, whose headers are matched as
    people write them (a mapped export's headers are the mapping's business)."""
    table = read_table(path, sheet=settings.sheet, max_unpacked=settings.max_unpacked_mb << 20,
                       encoding=settings.encoding, delimiter=settings.delimiter,
                       header_row=settings.header_row, names=_names(settings, aliased=aliased))
    return (replace(table, aliases=aliases(table.header, settings.columns, settings.own_columns))
            if aliased else table)


def _names(settings: Settings, *, aliased: bool) -> Callable[[str], bool]:
    """Whether a header cell names a column this read uses: a Suptask or bulksync column as
    people write it, or a source column of the mapping."""
    if not aliased and settings.mapping is not None:
        sources = frozenset(settings.mapping.all_sources())
        return lambda cell: cell.strip() in sources
    return lambda cell: canonical_column(cell, settings.columns) is not None


def sheet_statuses(table: Table, status: str) -> set[int]:
    """Rows whose syncStatus cell (as the sheet has it now) is ``status``."""
    where = table.position("syncStatus")
    if where is None:
        return set()
    column = table.frame[where]
    return {int(r) for r in column.index[column.str.strip().eq(status)]}
