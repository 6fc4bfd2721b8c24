"""What reading a sheet gives the stages after it: a :class:`Table` of text cells, and the
format (CSV dialect and encoding, or workbook sheet) to write it back the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CsvFormat", "Table", "XlsxFormat", "file_fingerprint"]


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file was written, so that it can be written back the same way."""

    encoding: str
    bom: bytes
    delimiter: str
    newline: str


@dataclass(frozen=True)
class XlsxFormat:
    """Which worksheet of a workbook the table came from."""

    sheet: str
    sheet_names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Table:
    """A sheet as text cells.

    ``frame`` has one column per header cell, by position (headers may repeat),
    and is indexed by spreadsheet row number, as Excel shows it: the header is
    ``header_row`` (row 1 unless a title block stands above it), the first data
    row the one after it.
    """

    path: Path
    header: tuple[str, ...]
    frame: pd.DataFrame
    format: CsvFormat | XlsxFormat
    fingerprint: tuple[int, int] = (0, 0)
    """(size, modification time in ns) of the file when it was read."""
    notes: tuple[str, ...] = ()
    """What the reader decided that the user should know (an encoding it detected)."""
    lossy: tuple[tuple[int, int], ...] = ()
    """(row, column position) of numeric workbook cells beyond Excel's 15 significant digits."""
    hidden: frozenset[int] = frozenset()
    """Rows a workbook's active filter hides."""
    errors: frozenset[tuple[int, int]] = frozenset()
    """(row, column position) of a workbook's error cells (``#N/A``), read as their text."""
    uncached: frozenset[tuple[int, int]] = frozenset()
    """(row, column position) of a workbook's formulas whose value was never stored, read as
    their formula (``=C37``)."""
    header_row: int = 1
    """The row that names the columns (``--header-row``); the rows above it are not read."""

    def changed(self) -> bool:
        """Has the file been written since it was read (e.g. saved in Excel meanwhile)?"""
        try:
            return file_fingerprint(self.path) != self.fingerprint
        except OSError:
            return True

    def __len__(self) -> int:
        return len(self.frame)

    aliases: Mapping[str, int] = field(default_factory=dict)
    """Column → position, for columns the sheet names otherwise (``ticket_id`` for
    ``ticketId``): set by preflight, which knows the column names."""

    def position(self, name: str) -> int | None:
        """Position of the first column whose header is ``name`` (spaces around it ignored),
        else of the column the sheet names otherwise (``aliases``)."""
        for i, h in enumerate(self.header):
            if h.strip() == name:
                return i
        return self.aliases.get(name)


def file_fingerprint(path: Path) -> tuple[int, int]:
    """(size, modification time in ns): what tells a file written since it was read."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns
