"""The column contract: which columns are Suptask's, which are bulksync's, and the pandera schema.

A sheet's columns fall into three groups:

* API columns, spelled as the API spells them (``description``, ``formId``, ...,
  and ``customField_<uuid>``): sent;
* bulksync's own columns (``ticketId``, ``ticketNumber``, ``syncStatus``,
  ``syncError``): written back, never sent (``ticketId`` goes in the URL);
* everything else: the user's, never sent and never changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulksync.errors import UsageError
from bulksync.places import column_letter, row_ranges
from bulksync.sheets.read import normal_header
from bulksync.untrusted import unneutralise

if TYPE_CHECKING:
    import pandas as pd

    from bulksync.sheets.table import Table

__all__ = [
    "API_FIELDS", "CUSTOM_FIELD_PREFIX", "OWNED_COLUMNS", "PRIORITIES", "STATUSES", "Defaults", "Problem",
    "Rows", "ValidationReport", "select_rows", "validate_rows", "toml_string",
]

TICKET_ID = "ticketId"
API_FIELDS = ("description", "priority", "status", "assignee", "requester",
              "requesterChannel", "tags", "formId")
OWNED_COLUMNS = ("ticketId", "ticketNumber", "syncStatus", "syncError")
CUSTOM_FIELD_PREFIX = "customField_"
STATUSES = ("Open", "In-progress", "Escalated", "Waiting for customer", "On-hold", "Closed")
"""Suptask's default statuses (a workspace may rename them; the template and a suggested
mapping only offer them)."""
PRIORITIES = ("Low", "Medium", "High", "CRITICAL")
"""The priorities the template offers and a suggested mapping maps to."""
REQUIRED_FOR_CREATE = ("description", "requesterChannel", "formId")

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
MEMBER_PATTERN = r"[UW][A-Z0-9]{6,}"
CHANNEL_PATTERN = r"[CGDUW][A-Z0-9]{6,}"
_UUID = re.compile(UUID_PATTERN)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string, for a mapping file (``mapping suggest``) or a message
    that shows a line of one: quotes, backslashes and control characters escaped, and so are
    the characters that end a line to some readers or hide text (U+2028, U+0085, a bidi mark:
    the same value to TOML, one visible line to a person and to ``splitlines``)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def is_uuid(text: str) -> bool:
    return _UUID.fullmatch(text) is not None


@dataclass(frozen=True)
class Defaults:
    """Values bulksync fills in before validation.

    ``form_id``, ``channel`` and ``requester`` (``--default-requester``) fill
    empty ``formId`` / ``requesterChannel`` / ``requester`` cells of rows that
    create a ticket (or the column a sheet lacks); ``set`` gives a field the
    same value on every row (overriding the sheet), e.g. ``{"status": "Closed"}``
    to bulk-close.
    """

    form_id: str | None = None
    channel: str | None = None
    requester: str | None = None
    set: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        for name in self.set:
            if name == TICKET_ID:
                raise UsageError("--set ticketId is not allowed: ticketId picks the ticket to update")
            if name not in API_FIELDS and not name.startswith(CUSTOM_FIELD_PREFIX):
                raise UsageError(f"--set {name}=...: {name!r} is not a Suptask field; "
                                 f"fields are {', '.join(API_FIELDS)} and customField_<uuid>")
            if name.startswith(CUSTOM_FIELD_PREFIX) and not is_uuid(name[len(CUSTOM_FIELD_PREFIX):]):
                raise UsageError(f"--set {name}=...: the part after customField_ must be the field's UUID")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the sheet: where (spreadsheet row, header = 1; column) and what."""

    row_number: int
    column: str | None
    message: str
    code: str = ""
    """What is wrong, for a program: ``not-uuid``, ``not-member``, ``not-channel``, ``empty-tag``,
    ``nul``, ``required``, ``duplicate-ticket``, ``duplicate-header``, ``bad-custom-field``,
    ``missing-column``, ``unmapped-value``, ``unknown-user``, ``cannot-empty``,
    ``unconfirmed-integration`` (push only: the mapping's integration is marked ``# check``)."""
    value: str | None = None
    """The offending cell's text, when a cell is at fault."""

    def line(self, path: Path | str) -> str:
        where = f"row {self.row_number}" + (f", column {self.column}" if self.column else "")
        return f"{path}: {where}: {self.message}"


@dataclass(frozen=True, eq=False)
class Rows:
    """The Suptask columns of a sheet, after defaults: one text column per API field.

    ``frame`` holds ``ticketId``, every API field (empty where the sheet has no
    such column) and the ``customField_<uuid>`` columns, indexed by spreadsheet
    row number; blank rows are left out. ``own_cells`` are the
    sheet's own Suptask columns before defaults, ``user_cells`` the columns that are the
    user's alone (a new hire's name, notes), by header: together what :func:`row_contents`
    hashes.
    """

    frame: pd.DataFrame
    custom_fields: tuple[str, ...]
    ignored: tuple[str, ...]
    header_problems: tuple[Problem, ...]
    own_cells: Mapping[str, pd.Series]
    present: frozenset[str] = frozenset()
    """The fields this sheet manages: its Suptask columns, and those given by ``--set``."""
    user_cells: Mapping[str, pd.Series] = field(default_factory=dict)

    def only(self, keep: Any) -> Rows:
        """These rows where the boolean mask ``keep`` (over ``frame``'s rows) is true."""
        return replace(self, frame=self.frame[keep],
                       own_cells={n: s[keep] for n, s in self.own_cells.items()},
                       user_cells={n: s[keep] for n, s in self.user_cells.items()})


@dataclass(frozen=True)
class ValidationReport:
    """Every problem of a sheet at once; ``valid`` when there are none."""

    path: Path
    rows: int
    problems: tuple[Problem, ...]
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """What the user should know that is not a problem (an encoding detected)."""
    header_row: int = 1
    """The sheet's header row: its problems are the whole sheet's."""

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def invalid_rows(self) -> frozenset[int]:
        return frozenset(p.row_number for p in self.problems if p.row_number > self.header_row)

    @property
    def sheet_invalid(self) -> bool:
        """A problem in the header makes every row unusable."""
        return any(p.row_number <= self.header_row for p in self.problems)

    def on_header_row(self, header_row: int) -> ValidationReport:
        """This report for a sheet whose header is ``header_row``: the problems found in the
        header (said to be on row 1 where they are found) named on the row it is."""
        if header_row == self.header_row:
            return self
        return replace(self, header_row=header_row, problems=tuple(
            replace(p, row_number=header_row) if p.row_number <= self.header_row else p
            for p in self.problems))

    def groups(self) -> list[tuple[list[int], Problem]]:
        """The problems grouped by column and message (one missing formId on 40 rows is one
        problem of 40 rows), in the order of their first row: (rows, the first problem)."""
        by: dict[tuple[str | None, str], tuple[list[int], Problem]] = {}
        for p in self.problems:
            rows, _ = by.setdefault((p.column, p.message), ([], p))
            if not rows or rows[-1] != p.row_number:  # each problem once
                rows.append(p.row_number)
        return list(by.values())

    def lines(self) -> list[str]:
        """One line per problem (grouped: rows as ranges), naming the file, rows and column."""
        out = []
        for rows, p in self.groups():
            if len(rows) == 1:
                out.append(p.line(self.path))
            else:
                column = f", column {p.column}" if p.column else ""
                out.append(f"{self.path}: rows {row_ranges(rows)} ({len(rows)} rows){column}: {p.message}")
        return out

    def renamed(self, source_of: Mapping[str, str]) -> ValidationReport:
        """This report naming the columns the user's sheet has (a mapping's sources)."""
        problems = tuple(Problem(p.row_number, f"{source_of[p.column]} (→ {p.column})", p.message,
                                 p.code, p.value)
                         if p.column is not None and p.column in source_of else p
                         for p in self.problems)
        return replace(self, problems=problems)

    def with_problems(self, more: tuple[Problem, ...], *, superseding: bool = False) -> ValidationReport:
        """This report with ``more`` problems, kept in row order. ``superseding``: a cell's
        problem in ``more`` replaces this report's problems of the same cell (the map stage
        knows better why a value is wrong than the schema that checks its result)."""
        cells = {(p.row_number, p.column) for p in more} if superseding else set()
        kept = [p for p in self.problems if (p.row_number, p.column) not in cells]
        problems = sorted((*kept, *more), key=lambda p: p.row_number)
        return replace(self, problems=tuple(problems))

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "valid": self.valid,
            "rows": self.rows,
            "invalid_rows": len(self.invalid_rows),
            "ignored_columns": list(self.ignored_columns),
            "notes": list(self.notes),
            "problems": [{"row": p.row_number, "column": p.column, "code": p.code, "value": p.value,
                          "message": p.message} for p in self.problems],
            "groups": [{"rows": row_ranges(rows), "count": len(rows), "column": p.column,
                        "code": p.code, "message": p.message} for rows, p in self.groups()],
        }


def strip_cells(values: pd.Series) -> pd.Series:
    """The column with each cell's outer whitespace stripped; itself when no cell has any.

    ``str.strip`` on a plain list is several times faster than pandas' ``.str.strip``,
    and returns the very same string when there is nothing to strip, so the common
    case (a clean column) costs one pass and no new Series.
    """
    import pandas as pd

    cells = values.tolist()
    stripped = list(map(str.strip, cells))
    if stripped == cells:
        return values
    return pd.Series(stripped, index=values.index, dtype=values.dtype)


def cells_containing(values: pd.Series, text: str) -> pd.Series:
    """Which cells contain ``text`` (a boolean Series).

    The concatenated column contains ``text`` whenever a cell does, so one C-speed
    search settles the common case (no cell does) before pandas looks cell by cell.
    """
    import numpy as np
    import pandas as pd

    if text not in "".join(values.tolist()):
        return pd.Series(np.zeros(len(values), dtype=bool), index=values.index)
    return values.str.contains(text, regex=False)


@dataclass(frozen=True)
class Headers:
    """How to read a sheet's headers: ``named`` (column → the header that holds it, from
    ``[columns]`` in bulksync.toml), ``own`` (headers that are the user's own columns,
    ``own_columns``), and ``guess``: look for near misses and unnamed ticket IDs (a sheet
    in Suptask's columns; a mapped export's other columns are the export's business)."""

    named: Mapping[str, str] = field(default_factory=dict)
    own: frozenset[str] = frozenset()
    guess: bool = True


_KNOWN = {normal_header(n): n for n in (TICKET_ID, *API_FIELDS)}
"""The columns matched as people write them. bulksync's own output columns (ticketNumber,
syncStatus, syncError) match by their exact name only: a sheet's own "Ticket Number" or
"Sync status" is never written over."""
_CUSTOM_HEADER = re.compile(r"(?i)^custom[\s_-]*field[\s_-]+(\S.*)$")
_NEAR = 0.85
"""difflib's similarity above which an unknown header is taken for a misspelt known one
(``descripton``, ``priorty``, ``requestor``: one or two edits)."""


def canonical_column(header: str, named: Mapping[str, str] | None = None) -> str | None:
    """The Suptask or bulksync column ``header`` names, as people write it (case, spaces,
    underscores and hyphens ignored; ``customfield_<uuid>`` is ``customField_<uuid>``), or
    None: a column of the user's own."""
    text = header.strip()
    wanted = normal_header(text)
    if not wanted:
        return None
    for column, given in (named or {}).items():
        if normal_header(given) == wanted:
            return column
    if text in OWNED_COLUMNS:
        return text
    if wanted in _KNOWN:
        return _KNOWN[wanted]
    custom = _CUSTOM_HEADER.match(text)
    return CUSTOM_FIELD_PREFIX + custom.group(1).strip() if custom else None


def aliases(header: tuple[str, ...], named: Mapping[str, str] | None = None,
            own: frozenset[str] = frozenset()) -> dict[str, int]:
    """Column → the position of the header the sheet names it by, where the two differ (and
    the sheet has no column of the exact name, and the header is not one of ``own``)."""
    exact = {h.strip() for h in header}
    out: dict[str, int] = {}
    for i, h in enumerate(header):
        column = None if h.strip() in own else canonical_column(h, named)
        if column is not None and column != h.strip() and (column not in exact or column in (named or {})):
            out.setdefault(column, i)
    return out


_SCIENTIFIC = re.compile(r"-?\d(?:[.,]\d{1,16})?[eE]\+(?:0?(?:1[1-9]|[2-9]\d)|[1-9]\d\d)")
"""A long number (12 digits or more, mantissa cut) as a spreadsheet application writes it:
Excel's General format (``1.23457E+18``, ``1E+18``), LibreOffice's three-digit exponent
(``1.23456789012346E+018``), a decimal comma (``1,23457E+18``), a workbook's number cell read
as a float (``1.2345678901234568e+18``). The exponent always has its sign: ``4E12`` as a room
number, ``1.5E-06`` or ``7E+10`` is text of the user's."""


def lost_digits(table: Table, columns: Mapping[str, int]) -> list[Problem]:
    """Cells of ID-like ``columns`` (name → position) whose number Excel has already cut to
    15 significant digits: a numeric workbook cell that long, or a number shown in
    scientific notation (``1.23457E+18``, as Excel saves such a column to CSV)."""
    problems = []
    lossy = {(r, c) for r, c in table.lossy}
    for name, where in columns.items():
        values = table.frame[where]
        for row, text in zip(values.index.tolist(), values.tolist(), strict=True):
            if (row, where) in lossy or _SCIENTIFIC.fullmatch(text.strip()):
                problems.append(Problem(int(row), name, f"{text!r} is a number Excel has already cut to "
                                        "15 significant digits, so the ID is lost: format the column as "
                                        "Text and enter the IDs again (or export them as text)",
                                        "lost-digits", text))
    return problems


def near_miss(header: str) -> str | None:
    """The known column an unknown ``header`` is probably meant to be, if it is that close."""
    import difflib

    wanted = normal_header(header)
    if len(wanted) < 5:
        return None
    for close in difflib.get_close_matches(wanted, list(_KNOWN), n=3, cutoff=_NEAR):
        # A header that only adds to a name ("Ticket", "Requester name", "Tags2") is another
        # column of the user's, not a typing error.
        if not (close.startswith(wanted) or wanted.startswith(close)):
            return _KNOWN[close]
    return None


def select_rows(table: Table, defaults: Defaults, headers: Headers | None = None) -> Rows:
    """Pick the Suptask columns out of ``table`` and apply ``defaults`` (the map stage)."""
    import numpy as np
    import pandas as pd

    headers = headers or Headers()
    defaults.check()
    raw = table.frame
    positions, ignored = _header_positions(table.header, headers.named, headers.own)
    problems = _header_problems(positions)
    if headers.guess:
        problems += _guessed_problems(table, positions, ignored, headers.own)
    custom = [n for n in positions if n.startswith(CUSTOM_FIELD_PREFIX)]
    for name in defaults.set:
        if name.startswith(CUSTOM_FIELD_PREFIX) and name not in custom:
            custom.append(name)

    # Every column with a header is read (a Suptask column or the user's own), each stripped
    # once; a blank row is one whose cells are all empty once stripped. The columns without a
    # header (in a sheet reaching XFD, 16,384 nearly all empty) are looked at a row at a time,
    # each row's cells joined, not as a Series each.
    named = [i for i, h in enumerate(table.header) if h.strip()]
    whole = {i: strip_cells(raw[raw.columns[i]]) for i in named}
    filled = [s.to_numpy(dtype=object) != "" for s in whole.values()]  # numpy's compare: no Series a column
    rest = [c for i, c in enumerate(raw.columns) if i not in whole]
    if rest:
        rows = raw[rest].to_numpy(dtype=object).tolist()
        filled.append(np.fromiter(("".join(r).strip() != "" for r in rows), dtype=bool, count=len(rows)))
    blank_mask = pd.Series(~np.logical_or.reduce(filled) if filled else True, index=raw.index)
    kept = raw.index[~blank_mask]
    empty = pd.Series("", index=kept, dtype=str)
    every_row = len(kept) == len(raw.index)

    def cells_of(i: int) -> pd.Series:
        """Column ``i``'s stripped cells of the rows kept."""
        if i not in whole:  # a column its header does not name: not one read above
            whole[i] = strip_cells(raw[raw.columns[i]])
        return whole[i] if every_row else whole[i].loc[kept]

    def column(name: str) -> pd.Series:
        where = positions.get(name)
        return cells_of(where[0]) if where else empty

    cols: dict[str, pd.Series] = {TICKET_ID: column(TICKET_ID)}
    for name in (*API_FIELDS, *custom):
        cols[name] = _typed(column(name))
    # The row's own cells, before defaults: what the journal knows a row by (see row_contents).
    own = {n: cols[n] for n in sorted(positions) if n in cols and n != TICKET_ID}
    used = {i for where in positions.values() for i in where}
    user: dict[str, pd.Series] = {}
    for i, name in enumerate(table.header):
        if i not in used and name.strip():
            label = name.strip() if name.strip() not in user else f"{name.strip()}#{i}"
            user[label] = cells_of(i)
    _fill_defaults(cols, defaults, kept)
    frame = pd.DataFrame(cols, index=kept)
    return Rows(frame=frame, custom_fields=tuple(custom), ignored=tuple(ignored),
                header_problems=tuple(problems), own_cells=own, user_cells=user,
                present=frozenset(n for n in positions if n in cols and n != TICKET_ID)
                | frozenset(defaults.set))


def _typed(values: pd.Series) -> pd.Series:
    """The column with a neutralised cell (``'=…``, ``'-…``, as bulksync writes server text that
    a spreadsheet would run) read as the value it stands for (see untrusted.unneutralise)."""
    if values.empty:
        return values
    try:  # one search in C, not a call per cell, for the usual column
        joined = "\n".join(values.tolist())
    except TypeError:  # a cell that is not text: looked at cell by cell
        joined = "'"
    if not joined.startswith("'") and "\n'" not in joined:
        return values
    if not values.str.startswith("'").any():
        return values
    return values.map(unneutralise)


def _header_positions(header: tuple[str, ...], named: Mapping[str, str],
                      own: frozenset[str] = frozenset()) -> tuple[dict[str, list[int]], list[str]]:
    """(Suptask and bulksync column → its positions in ``header``, the other columns' names).
    A header the user lists as their own is theirs, whatever its name."""
    positions: dict[str, list[int]] = {}
    ignored: list[str] = []
    exact = {h.strip() for h in header}
    for i, name in enumerate(header):
        column = None if name.strip() in own else canonical_column(name, named)
        if column is not None and column != name.strip() and column in exact and column not in named:
            column = None  # the sheet has the column itself: this other spelling is the user's
        if column is not None:
            positions.setdefault(column, []).append(i)
        elif name.strip():
            ignored.append(name.strip())
    return positions, ignored


def _guessed_problems(table: Table, positions: Mapping[str, list[int]], ignored: list[str],
                      own: frozenset[str]) -> list[Problem]:
    """Unknown headers that are almost surely a known column: a near miss of its name, or,
    in a sheet without a ticketId column, a column of ticket IDs (pushed as it is, every
    row would create a new ticket instead of updating one)."""
    problems: list[Problem] = []
    for name in ignored:
        if name in own:
            continue
        meant = near_miss(name)
        if meant is not None and meant not in positions:
            problems.append(Problem(1, name, f"is not a column bulksync knows; did you mean "
                                             f"{meant!r}? Rename it, or list it under own_columns "
                                             "in bulksync.toml if it is a column of your own",
                                    "near-miss-header", name))
        elif TICKET_ID not in positions and _holds_ticket_ids(table, name):
            problems.append(Problem(1, name, "holds ticket IDs but the sheet has no ticketId "
                                             "column, so every row would create a new ticket: "
                                             f"rename it ticketId (or set ticketId = {name!r} "
                                             "under [columns] in bulksync.toml)",
                                    "unnamed-ticket-ids", name))
    return problems


def _holds_ticket_ids(table: Table, name: str) -> bool:
    where = table.position(name)
    if where is None:
        return False
    cells = [c.strip() for c in table.frame[where].tolist() if c.strip()]
    return bool(cells) and sum(1 for c in cells if _UUID.fullmatch(c)) >= 0.9 * len(cells)


_UUID = re.compile(UUID_PATTERN)


def _header_problems(positions: Mapping[str, list[int]]) -> list[Problem]:
    """Repeated headers and misnamed custom field columns, in the order of the columns."""
    problems: list[Problem] = []
    for name, where in positions.items():
        if len(where) > 1:
            letters = " and ".join(column_letter(i) for i in where)
            problems.append(Problem(1, name, f"the header {name!r} appears more than once "
                                             f"(columns {letters}); keep one", "duplicate-header", name))
    for name in positions:
        if name.startswith(CUSTOM_FIELD_PREFIX) and not is_uuid(name[len(CUSTOM_FIELD_PREFIX):]):
            problems.append(Problem(1, name, "a custom field column must be named "
                                             "customField_<field UUID>, e.g. "
                                             "customField_3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b",
                                    "bad-custom-field", name))
    problems.sort(key=lambda p: positions[p.column or ""][0])
    return problems


def _fill_defaults(cols: dict[str, pd.Series], defaults: Defaults, kept: pd.Index) -> None:
    """Apply ``defaults`` to ``cols`` in place: formId, requesterChannel and requester where a
    row creates a ticket and has none, ``set`` on every row."""
    import pandas as pd

    creates = cols[TICKET_ID].eq("")
    for name, value in (("formId", defaults.form_id), ("requesterChannel", defaults.channel),
                        ("requester", defaults.requester)):
        if value:
            cols[name] = cols[name].mask(creates & cols[name].eq(""), value)
    for name, value in defaults.set.items():
        cols[name] = pd.Series(value.strip(), index=kept, dtype=str)


_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?")


def as_number(value: str) -> str:
    """A cell of the user's own columns as a spreadsheet re-save leaves it, when it is a
    number: Excel and LibreOffice drop leading zeros, thousands separators and a leading +,
    write long numbers in scientific notation and keep 15 significant digits. So a copy of
    the sheet saved again by one of them still names the same rows (``00120`` is ``120``)."""
    if not value or not _NUMBER.fullmatch(value):
        return value
    from decimal import Context, Decimal, InvalidOperation

    try:
        number = Context(prec=15).create_decimal(Decimal(value.replace(",", "")))
    except InvalidOperation:
        return value
    return format(number.normalize() + 0, "f") if number else "0"


def row_contents(rows: Rows, *, users: bool = True) -> dict[int, str]:
    """What each row *is*, for the journal: a hash of all its cells but bulksync's own (its
    Suptask cells before defaults, and the user's own columns: two rows that send the same
    fields but name two new hires are two rows), plus its place among identical rows (so
    two identical rows are two tickets, and a copy of the sheet finds the same values).
    Column order and defaults do not count. ``users=False``: without the user's columns, as
    bulksync 0.1 knew rows (a row whose user columns are empty hashes the same either way,
    so the journal of 0.1 is still found). Plain lists, not pandas string arithmetic:
    100,000 rows in about a tenth of the time."""
    import hashlib

    names = sorted(rows.own_cells)
    columns = [rows.own_cells[n].tolist() for n in names]
    theirs = sorted(rows.user_cells) if users else []
    if theirs:  # after a separator no header holds, so a user's column never reads as a Suptask one
        names += ["\x1e", *theirs]
        columns += [[""] * len(rows.frame),
                    *([as_number(v) for v in rows.user_cells[n].tolist()] for n in theirs)]
    index = rows.frame.index.tolist()
    cells = zip(*columns, strict=True) if columns else (() for _ in index)
    sha = hashlib.sha256
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for row, values in zip(index, cells, strict=True):
        text = "\x1f".join([f"{n}={v}" for n, v in zip(names, values, strict=True) if v])
        digest = sha(text.encode()).hexdigest()[:32]
        n = seen[digest] = seen.get(digest, -1) + 1
        out[int(row)] = f"{digest}:{n}"
    return out


# -- validation --------------------------------------------------------------

_REQUIRED_HINT = {
    "description": "add a description",
    "requesterChannel": "add it, or give --channel",
    "formId": "add it, or give --form-id",
}


def _schema(rows: Rows) -> Any:
    import pandera.pandas as pa

    def check(fn: Callable[[Any], Any], name: str) -> Any:
        # Every cell is text, never NA: ignore_na=False spares pandera an isna() pass
        # over the column (or the whole frame) for each check.
        return pa.Check(fn, name=name, ignore_na=False)

    def distinct(good: Callable[[str], object], name: str) -> Any:
        def in_good(s: pd.Series) -> pd.Series:
            # Each distinct value is looked at once: IDs, forms, channels and tags repeat a lot.
            return s.isin([v for v in s.unique().tolist() if good(v)])

        return check(in_good, name)

    def pattern(regex: str, name: str) -> Any:
        compiled = re.compile(regex)
        return distinct(lambda v: v == "" or compiled.fullmatch(v), name)

    empty_tag = re.compile(r"^,|,\s*,|,$")

    nul = check(lambda s: ~cells_containing(s, "\x00"), "nul")
    columns: dict[str, Any] = {
        TICKET_ID: pa.Column(checks=[
            pattern(UUID_PATTERN, "uuid"),
            check(lambda s: ~(s.duplicated(keep=False) & s.ne("")), "unique"),
        ]),
        "formId": pa.Column(checks=[pattern(UUID_PATTERN, "uuid")]),
        "assignee": pa.Column(checks=[pattern(MEMBER_PATTERN, "member")]),
        "requester": pa.Column(checks=[pattern(MEMBER_PATTERN, "member")]),
        "requesterChannel": pa.Column(checks=[pattern(CHANNEL_PATTERN, "channel")]),
        "tags": pa.Column(checks=[distinct(lambda v: not empty_tag.search(v), "tags")]),
    }
    frame = rows.frame
    for name in (TICKET_ID, *API_FIELDS, *rows.custom_fields):
        if not frame[name].ne("").any():  # an empty column has nothing to check
            columns[name] = pa.Column()
        elif name in rows.own_cells:  # a value from the sheet, not a default
            columns.setdefault(name, pa.Column()).checks.append(nul)
        else:
            columns.setdefault(name, pa.Column())
    def required(field_name: str) -> Any:
        return check(lambda df: df[TICKET_ID].ne("") | df[field_name].ne(""), f"required:{field_name}")

    return pa.DataFrameSchema(columns, checks=[required(f) for f in REQUIRED_FOR_CREATE],
                              coerce=False, strict=True)


_CODES = {"uuid": "not-uuid", "member": "not-member", "channel": "not-channel", "tags": "empty-tag",
          "nul": "nul", "required": "required", "unique": "duplicate-ticket"}


def _message(check: str, column: str, value: Any) -> str:
    if check == "uuid":
        return f"{value!r} is not a UUID (like 3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b)"
    if check == "member":
        hint = ("; an email cannot be used here: give --users FILE (a CSV of email → Slack member ID)"
                if "@" in str(value) else "")
        return f"{value!r} is not a Slack member ID (U… or W…, e.g. U073PBJPHGW){hint}"
    if check == "channel":
        return f"{value!r} is not a Slack channel or member ID (C…, G…, D…, U… or W…)"
    if check == "tags":
        return f"{value!r} has an empty tag; separate tags with single commas"
    if check == "nul":
        return "the cell holds a NUL character (\\0); remove it"
    if check.startswith("required:"):
        field_name = check.split(":", 1)[1]
        return (f"{field_name} is required to create a ticket (this row has no ticketId); "
                f"{_REQUIRED_HINT[field_name]}")
    return f"{value!r} fails the check {check}"  # pragma: no cover - every check is named above


def validate_rows(rows: Rows, path: Path) -> ValidationReport:
    """Run the pandera schema over ``rows``; every failing cell becomes one Problem."""
    import pandera.pandas as pa

    problems = list(rows.header_problems)
    if not rows.header_problems and len(rows.frame):
        try:
            _schema(rows).validate(rows.frame, lazy=True)
        except pa.errors.SchemaErrors as e:
            problems.extend(_problems(rows.frame, e.failure_cases))
    order = {name: i for i, name in enumerate(rows.frame.columns)}
    # Header problems keep their sheet order; row problems follow the API columns' order.
    problems.sort(key=lambda p: (p.row_number, order.get(p.column or "", -1) if p.row_number > 1 else 0))
    return ValidationReport(path=path, rows=len(rows.frame), problems=tuple(problems),
                            ignored_columns=rows.ignored)


def _problems(frame: pd.DataFrame, cases: pd.DataFrame) -> list[Problem]:
    out: list[Problem] = []
    seen: set[tuple[int, str]] = set()
    ids = frame[TICKET_ID]
    for column, check, value, index in zip(cases["column"], cases["check"],
                                           cases["failure_case"], cases["index"], strict=True):
        check = str(check)
        if check.startswith("required:"):
            column = check.split(":", 1)[1]
        row = int(index)
        if (row, column) in seen:
            continue
        seen.add((row, column))
        if check == "unique":
            others = [int(r) for r in ids.index[ids.eq(value)] if int(r) != row]
            message = (f"ticketId {value} appears on more than one row (also row "
                       f"{', '.join(map(str, others))}); each ticket may appear once")
        else:
            message = _message(check, column, value)
        code = _CODES.get(check.split(":", 1)[0], check)
        out.append(Problem(row, column, message, code,
                           None if code == "required" else str(value)))
    return out
