"""Write bulksync's cells into a CSV file, leaving every other byte as it was.

The file is split into records and fields *as written* (quotes and all), only
the fields of bulksync's columns are replaced or appended, and the text is
encoded back with the same encoding, BOM, delimiter and line ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bulksync.errors import SheetError
from bulksync.sheets.atomic import replace_file
from bulksync.sheets.read import decode_as, split_records, unquote
from bulksync.sheets.table import CsvFormat, Table
from bulksync.untrusted import neutralise

__all__ = ["encodable", "neutralise", "write_csv"]


# What bulksync's own messages use, in the nearest ASCII, for encodings that lack it
# (cp1252 has no arrow; latin-1 has no dashes, ellipsis or curly quotes).
_PLAIN = str.maketrans({"→": "->", "←": "<-", "…": "...", "–": "-", "—": "-", "×": "x",
                        "‘": "'", "’": "'", "“": '"', "”": '"'})


def encodable(text: str, encoding: str) -> str:
    """``text`` as the file's encoding can hold it: bulksync's typographic characters in
    plain ASCII, anything else the encoding lacks as a ``\\uXXXX`` escape (readable and
    lossless), so a write-back never fails on a character a server or a message brings."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        plain = text.translate(_PLAIN)
        return plain.encode(encoding, errors="backslashreplace").decode(encoding)


def _quote(value: str, delimiter: str) -> str:
    if any(c in value for c in (delimiter, '"', "\r", "\n")) or value != value.strip(" "):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(table: Table, cells: Mapping[int, Mapping[str, str]], *,
              columns: tuple[str, ...], target: Path | None = None) -> Path:
    """Write ``cells`` (row number → column → text) into the CSV of ``table``.

    ``columns`` are the owned columns to have in the header (added after the
    last column when missing). Returns the path written.
    """
    fmt = table.format
    assert isinstance(fmt, CsvFormat)
    text = decode_as(table.path, table.path.read_bytes()[len(fmt.bom):], fmt.encoding)
    records = split_records(text, fmt.delimiter)
    top = table.header_row  # the rows above it (a title block) are left as they are
    if len(records) != len(table) + top:
        raise SheetError(table.path, f"changed since it was read ({len(records) - top} rows now, "
                                     f"{len(table)} then); not written back")
    head, head_eol = records[top - 1]
    header = [unquote(f).strip() for f in head]
    width = len(header)
    position = {name: header.index(name) for name in columns if name in header}
    for name in columns:
        if name not in position:
            position[name] = width
            head.append(_quote(name, fmt.delimiter))
            width += 1
    if head_eol == "" and len(records) > top:
        records[top - 1] = (head, fmt.newline)

    # UTF-8 and UTF-16 hold every character; other encodings are checked cell by cell.
    fit = (lambda v: v) if fmt.encoding.startswith("utf") else (lambda v: encodable(v, fmt.encoding))
    for number in range(top + 1, len(records) + 1):
        fields, eol = records[number - 1]
        row_cells = cells.get(number)
        blank = len(fields) == 1 and fields[0] == ""
        if blank and not row_cells:
            continue
        if len(fields) < width:
            fields.extend([""] * (width - len(fields)))
        for name, value in (row_cells or {}).items():
            if name == "syncError":  # server text: never let a spreadsheet run it
                value = neutralise(value)
            fields[position[name]] = _quote(fit(value), fmt.delimiter)
        records[number - 1] = (fields, eol)

    out = "".join(fmt.delimiter.join(fields) + eol for fields, eol in records)
    target = target or table.path
    replace_file(target, fmt.bom + out.encode(fmt.encoding), like=table.path)
    return target
