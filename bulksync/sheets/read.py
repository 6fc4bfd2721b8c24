"""Read a CSV or XLSX file into a Table: every cell as text, rows numbered as a spreadsheet shows them."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bulksync.errors import SheetError
from bulksync.sheets.table import CsvFormat, Table, XlsxFormat, file_fingerprint

if TYPE_CHECKING:
    pass

__all__ = ["decode_as", "normal_header", "read_table", "sheet_identity"]

DELIMITERS = (",", ";", "\t", "|")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
XLSX_SUFFIXES = (".xlsx", ".xlsm")
MAX_UNPACKED = 512 << 20
"""By default a workbook that unpacks to more than this (512 MiB; a 100,000-row sheet is
about 40 MiB) is refused before parsing: a zip bomb, or not a sheet (``max_unpacked_mb``)."""


def normal_header(name: str) -> str:
    """A header as compared: ``Ticket ID``, ``ticket_id`` and ``TicketID`` are one name."""
    return _SEPARATORS.sub("", name).casefold()


_SEPARATORS = re.compile(r"[\s_\-]+")


def sheet_identity(sheet: Path) -> str:
    """The sheet's real path: what every name of the same file resolves to (a name that is not
    UTF-8 with its odd bytes written ``\xe9``, so that the state store can hold it)."""
    return os.fsencode(os.path.realpath(sheet)).decode("utf-8", "backslashreplace")


def read_table(path: Path | str, *, sheet: str | None = None, max_unpacked: int = MAX_UNPACKED,
               encoding: str | None = None, delimiter: str | None = None,
               header_row: int | None = None, names: Callable[[str], bool] | None = None) -> Table:
    """Read ``path`` (CSV, or XLSX/XLSM by its suffix) into a Table. Only a regular file (or a
    symlink to one) is read: a FIFO, a device or a folder is refused before it is opened.
    A workbook that unpacks to more than ``max_unpacked`` bytes is refused before parsing.
    ``encoding`` and ``delimiter`` (CSV only) override what is detected. ``header_row`` is
    the row that names the columns (default 1: refused when empty, or when it is a title
    over a table whose header holds columns that ``names`` says the caller reads; the
    message names the row that looks like the header)."""
    import stat

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SheetError(path, "no such file") from None
    except OSError as e:
        raise SheetError(path, f"cannot be read: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise SheetError(path, "is a folder, not a sheet file")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if
                stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise SheetError(path, f"is {kind}, not a sheet file; refusing to read it")
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise SheetError(path, f"cannot be read: {e.strerror}") from None
    if head.startswith(_OLE_MAGIC):
        raise SheetError(path, "is a legacy .xls or an encrypted workbook: open it in Excel "
                               "and save it as .xlsx (without a password)")
    if path.suffix.lower() in XLSX_SUFFIXES:
        if not head.startswith(b"PK"):
            raise SheetError(path, "is not an .xlsx workbook (it is not a zip package)")
        return _read_xlsx(path, sheet, max_unpacked, header_row, names)
    if sheet is not None:
        raise SheetError(path, "--sheet applies only to .xlsx workbooks")
    return _read_csv(path, encoding, delimiter, header_row, names)


HEADER_SEARCH = 30
"""Rows searched for the header when row 1 is not it (empty, or a title above the table)."""


def _check_header(path: Path, where: str, rows: list[list[str]], *, top: int, given: bool,
                  names: Callable[[str], bool] | None) -> None:
    """Refuse a header row that cannot be the header, naming the row that looks like it.

    ``rows`` are the sheet's first rows, from row 1 to HEADER_SEARCH rows past the header
    row ``top`` (``given``: named by the user); ``names`` tells whether a cell names a column
    the caller reads. The header row must not be empty, and no row near it may name more of
    those columns than it does (two at least): a title over the table (pushed as it is, the
    table's own header would go out as a ticket), or a header row named before a row was
    inserted above the table or deleted (its rows would lose their ticketId column and be
    created again). ``--header-row 1`` is taken on trust: row 1 is the header.
    """
    filled = [sum(1 for c in row if c.strip()) for row in rows]
    known = [sum(1 for c in row if c.strip() and names(c)) for row in rows] if names else [0] * len(rows)
    at = top - 1
    if at >= len(rows) or not filled[at]:
        if given:
            raise SheetError(path, f"{where}row {top} (--header-row) is empty or past the end: "
                                   "it must be the row that names the columns")
        hint = next((i + 1 for i, n in enumerate(known) if n), None) or next(
            (i + 1 for i, n in enumerate(filled) if n >= 2), None) or next(
            (i + 1 for i, n in enumerate(filled) if n), None)
        if hint is None:
            raise SheetError(path, f"{where}is empty: its first row must be a header naming the columns")
        raise SheetError(path, f"{where}has an empty row 1; row {hint} looks like the header: give "
                               f"--header-row {hint} (or header_row = {hint} in bulksync.toml)")
    better = next((i + 1 for i, n in enumerate(known) if n >= 2 and n > known[at]), None)
    if better is None or (given and top == 1):
        return
    if known[at]:
        said = (f"row {top}{' (--header-row)' if given else ''} names fewer columns bulksync reads "
                f"than row {better} does{'' if given else ' (a title?)'}")
    else:
        said = (f"row {top}{' (--header-row)' if given else ''} names no column bulksync reads"
                f"{'' if given else ' (a title?)'}, row {better} does")
    tail = "" if given else (f" (or header_row = {better} in bulksync.toml; --header-row 1 if row 1 "
                             "is the header)")
    raise SheetError(path, f"{where}{said}: give --header-row {better}{tail}")


# -- CSV ---------------------------------------------------------------------

WINDOWS_CODE_PAGES = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
                      "cp1258", "cp874", "cp932", "cp936", "cp949", "cp950")
"""What Excel on Windows saves a "CSV" in, by the system's language: preferred among
candidates that a detector scores alike (cp1252 first: the Western default)."""
_NEAR = 0.1
"""Detector scores (chaos, coherence) within this of the best count as a tie."""
_MISREAD = re.compile(r"[^\W\d_][\xa1-\xb3\xb5\xb6\xb8-\xbf][^\W\d_]")
"""A Latin-1 symbol between two letters (``has³o``, ``gê¶l¹``): cp1252's reading of a
Central European file, never Western text (a no-break space, ``doesn´t`` and the Catalan
``l·l`` are the same in both, so they do not count)."""


def _decode(path: Path, data: bytes, encoding: str | None = None) -> tuple[str, str, bytes, str]:
    """(text, encoding, bom, how): a BOM decides; else the ``encoding`` given; else UTF-8 if it
    decodes; else a legacy code page, chosen by charset-normalizer (``how`` = "detected").
    Where the detector cannot tell between code pages that read the file differently, the
    file is refused naming them and ``--encoding``: text is decoded right or not at all."""
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(bom_encoding), bom_encoding, bom, "bom"
            except UnicodeDecodeError as e:
                raise SheetError(path, f"is not valid {bom_encoding} after its byte-order mark "
                                       f"(byte {e.start + len(bom)})") from None
    if encoding is not None:
        codec = _codec_name(path, encoding)
        if codec in ("utf-16", "utf-32"):  # no byte-order mark (that was handled above): little-endian,
            codec += "-le"                 # and none is added at write-back
        return decode_as(path, data, codec), codec, b"", "given"
    sample = data[:8192]
    controls = sum(sample.count(bytes([b])) for b in (*range(9), *range(14, 32)))
    if controls > max(2, len(sample) // 50):  # a stray NUL is a cell problem; many is a binary file
        hint = (" (if it is UTF-16 without a byte-order mark, give --encoding utf-16)"
                if sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4 else "")
        raise SheetError(path, f"is not a text file (it holds binary control bytes); is it really a CSV?{hint}")
    try:
        return data.decode("utf-8"), "utf-8", b"", "utf-8"
    except UnicodeDecodeError as e:
        if _mostly_utf8(data):  # UTF-8 elsewhere: a stray byte, not another encoding
            raise SheetError(path, f"is UTF-8 except at byte {e.start} ({data[e.start:e.start + 1]!r}, "
                                   "a character pasted from elsewhere?): fix that character, or give "
                                   "the file's encoding with --encoding") from None
    chosen = _detect(path, data)
    return data.decode(chosen), chosen, b"", "detected"


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
"""A multi-byte UTF-8 character. Legacy code-page text holds few by chance (``Ã©`` in cp1252,
some Shift-JIS pairs); a file with twice as many as undecodable bytes is UTF-8 with stray bytes."""


def _mostly_utf8(data: bytes) -> bool:
    valid = len(_UTF8_SEQUENCE.findall(data))
    invalid = data.decode("utf-8", errors="replace").count("\ufffd")
    return valid >= 2 * invalid


def _western(data: bytes) -> bool:
    """Is cp1252 (Windows' Western default) a plausible reading of ``data``? Western text is
    mostly ASCII letters with a few accented ones, and no symbol between two letters; Cyrillic
    or Central European text read as cp1252 is neither (``Ïðèíòåð``, ``has³o``)."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = [c for c in text if c.isalpha()]
    accented = sum(1 for c in letters if not c.isascii())
    return not _MISREAD.search(text) and accented <= 0.3 * max(1, len(letters))


def _codec_name(path: Path, encoding: str) -> str:
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise SheetError(path, f"--encoding {encoding!r} is not an encoding Python knows "
                               "(e.g. cp1251, cp1250, cp932, latin-1, utf-16)") from None


def decode_as(path: Path, data: bytes, encoding: str) -> str:
    codec = _codec_name(path, encoding)
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        raise SheetError(path, f"is not valid {codec} (byte {e.start}); check --encoding") from None


def _detect(path: Path, data: bytes) -> str:
    """The legacy code page of a file that is not UTF-8, or a refusal naming the candidates."""
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(data) if not m.encoding.startswith("utf")]
    if not matches:
        raise SheetError(path, "is not UTF-8 and its encoding cannot be told; give it with "
                               "--encoding (e.g. --encoding cp1251)")
    if _western(data):
        return "cp1252"  # the Western default, where its reading is plausible
    best = matches[0]
    near = [m for m in matches if m.chaos <= best.chaos + _NEAR and m.coherence >= best.coherence - _NEAR]
    # Each match stands for every code page that reads the same text as it does.
    readings = [[c for c in WINDOWS_CODE_PAGES if c in m.could_be_from_charset] for m in near]
    windows = [pages for pages in readings if pages]
    if len(near) == 1 or len(windows) == 1:  # one reading, or one a Windows machine would write
        return (windows[0] if windows else [best.encoding])[0]
    candidates = ", ".join([pages[0] for pages in windows] or [m.encoding for m in near][:4])
    raise SheetError(path, f"is not UTF-8, and it reads differently as {candidates}: give its "
                           "encoding with --encoding (or save it as UTF-8)")


def first_record(text: str) -> str:
    """The first CSV record of ``text``, as pandas' C parser reads it: a quote opens a quoted
    field (line breaks and all) only at the start of a field (``27"`` is text), whichever
    candidate delimiter separates the fields."""
    i, n = 0, len(text)
    at_start = True
    while i < n:
        ch = text[i]
        if ch == '"' and at_start:
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return text  # an unterminated quote runs to the end
                if not text.startswith('"', k + 1):
                    break
                j = k + 2
            i, at_start = k + 1, False
            continue
        if ch in "\r\n":
            return text[:i]
        at_start = ch in DELIMITERS
        i += 1
    return text


_QUOTED_FIELD = re.compile(r'(?:^|(?<=[,;\t|]))"(?:[^"]|"")*"')


def _outside_quotes(record: str) -> str:
    """The record without its quoted fields (those opened at the start of a field)."""
    return _QUOTED_FIELD.sub("", record)


def split_records(text: str, delimiter: str) -> list[tuple[list[str], str]]:
    """Records as (raw fields, line end); a quoted field keeps its quotes and inner newlines."""
    d = re.escape(delimiter)
    # As pandas' C parser reads it: a quote is special only at the start of a field.
    field = re.compile(f'"[^"]*(?:""[^"]*)*"[^{d}\\r\\n]*|[^{d}\\r\\n]*')
    end = re.compile(f"{d}|\\r\\n|\\n|\\r")
    records: list[tuple[list[str], str]] = []
    pos, n = 0, len(text)
    fields: list[str] = []
    while pos < n:
        m = field.match(text, pos)
        assert m is not None  # the pattern matches the empty string
        fields.append(m.group())
        pos = m.end()
        if pos >= n:
            records.append((fields, ""))
            break
        sep = end.match(text, pos)
        assert sep is not None  # a field stops only at a delimiter, a line end or the end
        pos = sep.end()
        if sep.group() == delimiter:
            if pos >= n:
                fields.append("")
                records.append((fields, ""))
            continue
        records.append((fields, sep.group()))
        fields = []
    return records


def unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('""', '"')
    return raw


def detect_delimiter(text: str, header: str | None = None) -> str:
    """The candidate delimiter that splits the header (the first record, unless given) into
    the most columns (ties: first listed). A one-column sheet (no candidate in its header)
    gets one its text never holds, so that a cell like ``Printer, 3rd floor`` stays one
    cell, and bulksync's added columns are separated by it."""
    header = _outside_quotes(first_record(text) if header is None else header)
    counts = [(header.count(d), -i, d) for i, d in enumerate(DELIMITERS)]
    best = max(counts)
    if best[0] > 0:
        return best[2]
    return next((d for d in DELIMITERS if d not in text), ",")


def _first_records(text: str, count: int) -> list[str]:
    """The first ``count`` records of ``text``, as written (a record past 1 MiB is cut there)."""
    records: list[str] = []
    pos = 0
    while len(records) < count and pos < len(text):
        record = first_record(text[pos:pos + (1 << 20)])
        records.append(record)
        if len(record) == 1 << 20:
            break  # where the next record begins is past what is looked at
        pos += len(record)
        pos += 2 if text.startswith("\r\n", pos) else 1
    return records


def _cells_of(record: str) -> list[str]:
    """A record's cells, split by the delimiter that splits it most (a title block above a
    table need not have the table's delimiters)."""
    records = split_records(record, detect_delimiter(record))
    return [unquote(f) for f in records[0][0]] if records else []


def _header_at(text: str, top: int, given: str | None, header: str) -> tuple[str, int]:
    """(the delimiter, where record ``top`` begins in ``text``) for a header below row 1: the
    records split as the writer splits them (:func:`split_records`), by the given delimiter,
    else by the candidate that splits the header record into the most cells (``header``: that
    record as :func:`first_record` finds it)."""
    window = text if len(text) <= 1 << 20 else text[:1 << 20]
    best: tuple[int, int, str, int] | None = None
    candidates: tuple[str, ...] = (given,) if given else DELIMITERS
    if not given and not any(d in _outside_quotes(header) for d in DELIMITERS):
        candidates = (detect_delimiter(text, ""),)  # one column: a delimiter its text never holds
    for i, d in enumerate(candidates):
        records = split_records(window, d)
        if len(records) < top and window is not text:
            records = split_records(text, d)
        if len(records) < top:
            continue
        offset = sum(len(d.join(fields)) + len(eol) for fields, eol in records[:top - 1])
        score = (len(records[top - 1][0]), -i, d, offset)
        best = score if best is None or score > best else best
    if best is None:
        return given or ",", len(text)
    return best[2], best[3]


def detect_newline(text: str) -> str:
    i = text.find("\n")
    j = text.find("\r")
    if j != -1 and (i == -1 or j < i):
        return "\r\n" if text.startswith("\r\n", j) else "\r"
    return "\n"


def _read_csv(path: Path, given_encoding: str | None = None, given_delimiter: str | None = None,
              header_row: int | None = None, names: Callable[[str], bool] | None = None) -> Table:
    import pandas as pd

    fingerprint = file_fingerprint(path)
    data = path.read_bytes()
    text, encoding, bom, how = _decode(path, data, given_encoding)
    if not text.strip():
        raise SheetError(path, "is empty: the first row must be a header naming the columns")
    top = header_row or 1
    head = _first_records(text, top - 1 + HEADER_SEARCH)
    _check_header(path, "", [_cells_of(r) for r in head], top=top, given=header_row is not None, names=names)
    delimiter = _given_delimiter(path, given_delimiter)
    offset = 0
    if top > 1:  # the rows above the header split as the writer splits them, by the table's delimiter
        delimiter, offset = _header_at(text, top, delimiter, head[top - 1])
    delimiter = delimiter or detect_delimiter(text, head[0])
    fmt = CsvFormat(encoding=encoding, bom=bom, delimiter=delimiter, newline=detect_newline(text))
    notes = (f"read as {encoding} (detected: the file is not UTF-8; --encoding to choose another)",
             ) if how == "detected" else ()
    # UTF-8 (the usual case) is parsed from the file itself: pandas' C reader decodes as it
    # reads, much faster than being fed the decoded text. The whole file was decoded above
    # to choose the encoding; if it changes in between, the fingerprint tells at write-back.
    source: Path | io.StringIO = path if encoding == "utf-8" and not offset else io.StringIO(text[offset:])
    del data, text
    try:
        raw = pd.read_csv(source, sep=fmt.delimiter, header=None, dtype=str, encoding="utf-8-sig",
                          keep_default_na=False, na_filter=False, skip_blank_lines=False,
                          quotechar='"', engine="c")
    except UnicodeDecodeError:
        raise SheetError(path, "changed while it was being read; run the command again") from None
    except pd.errors.ParserError as e:
        raise SheetError(path, _parser_message(str(e), top - 1)) from None
    except pd.errors.EmptyDataError:
        raise SheetError(path, "is empty: the first row must be a header naming the columns") from None
    header = tuple(raw.iloc[0].tolist())
    frame = raw.iloc[1:]
    frame.index = pd.RangeIndex(top + 1, len(frame) + top + 1)
    return Table(path=path, header=header, frame=frame, format=fmt, fingerprint=fingerprint,
                 notes=notes, header_row=top)


_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _given_delimiter(path: Path, given: str | None) -> str | None:
    if given is None:
        return None
    delimiter = _DELIMITER_NAMES.get(given.lower(), given)
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise SheetError(path, f"--delimiter {given!r} must be one character (or tab, comma, "
                               "semicolon, pipe), not a quote or a line break")
    return delimiter


def _parser_message(message: str, skipped: int = 0) -> str:
    # pandas: "Error tokenizing data. C error: Expected 3 fields in line 5, saw 4" (counted
    # from the first row read: ``skipped`` rows above the header are not)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m:
        want, line, saw = m.groups()
        return (f"row {int(line) + skipped} has {saw} cells but the header has {want} columns "
                "(a missing quote, or a delimiter inside an unquoted cell?)")
    return "cannot be parsed as CSV: " + message.split("C error: ")[-1].strip()


# -- XLSX --------------------------------------------------------------------

def _cell_text(value: object) -> str:
    """A cell as the text Excel would show for its value, not its formatting."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


MAX_RATIO = 500
"""No honest worksheet part compresses better than this."""


def check_package(path: Path, max_unpacked: int = MAX_UNPACKED) -> None:
    """Refuse a workbook before any parser sees it: a broken zip, a zip bomb, or XML that
    declares a DOCTYPE or entities (an entity bomb); a workbook never needs them."""
    import zipfile

    try:
        package = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SheetError(path, f"is not a readable .xlsx workbook (a damaged or truncated zip: {e})") \
            from None
    with package:
        infos = package.infolist()
        unpacked = sum(i.file_size for i in infos)
        if unpacked > max_unpacked:
            raise SheetError(path, f"unpacks to {unpacked >> 20} MiB, more than the "
                                   f"{max_unpacked >> 20} MiB allowed; refusing it (a zip bomb? If it "
                                   "is a real workbook, raise max_unpacked_mb in bulksync.toml or "
                                   "BULKSYNC_MAX_UNPACKED_MB)")
        for info in infos:
            if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise SheetError(path, f"part {info.filename} unpacks {info.file_size // max(info.compress_size, 1)}"
                                       " times its packed size; refusing it (a zip bomb?)")
            if info.filename.endswith((".xml", ".rels", ".vml")):
                try:
                    with package.open(info) as part:
                        prolog = _prolog(part)
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise SheetError(path, f"part {info.filename} is damaged ({e})") from None
                if prolog is None:
                    raise SheetError(path, f"part {info.filename} has over {MAX_PROLOG >> 10} KiB "
                                           "before its first element; refusing it")
                if b"<!DOCTYPE" in prolog.upper() or b"<!ENTITY" in prolog.upper():
                    raise SheetError(path, f"part {info.filename} declares a DOCTYPE or entities, which "
                                           "a workbook never needs; refusing it (an entity bomb?)")


MAX_PROLOG = 1 << 20
"""Bytes of XML read to find the first element: a workbook part's prolog is a line."""
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")


def _prolog(part: IO[bytes]) -> bytes | None:
    """What comes before the part's first element (where XML allows a DOCTYPE), read to its
    end however long the comments before it; None if over MAX_PROLOG bytes."""
    data = b""
    while len(data) <= MAX_PROLOG:
        chunk = part.read(65536)
        data += chunk
        found = _FIRST_ELEMENT.search(data)
        if found or not chunk:
            return data[:found.start()] if found else data
    return None


def _read_xlsx(path: Path, sheet: str | None, max_unpacked: int = MAX_UNPACKED,
               header_row: int | None = None, names: Callable[[str], bool] | None = None) -> Table:
    import pandas as pd

    check_package(path, max_unpacked)
    fingerprint = file_fingerprint(path)
    sheet_names, sheet, rows = _sheet_rows(path, sheet)
    from bulksync.sheets.package import sheet_marks

    marks = sheet_marks(path, sheet)  # first: it refuses a sheet that is not a worksheet
    text_rows = [[v if type(v) is str else _cell_text(v) for v in row] for row in rows]

    def put(cells: Mapping[tuple[int, int], str]) -> None:
        for (number, column), text in cells.items():
            if number <= len(text_rows) and column < len(text_rows[number - 1]):
                text_rows[number - 1][column] = text

    put(marks.errors)  # as Excel shows them, not empty: validation decides
    top = header_row or 1
    _check_header(path, f"sheet {sheet!r} ", text_rows[:top - 1 + HEADER_SEARCH], top=top, given=header_row is not None,
                  names=names)
    # A formula never calculated reads as its formula, in the columns the caller reads (where
    # validation refuses it, never sending it as empty); elsewhere it stays an empty cell, so
    # that a template's formulas filled down over blank rows do not make them rows.
    read = {i for i, h in enumerate(text_rows[top - 1]) if names is not None and h.strip() and names(h)}
    uncached = {cell: text for cell, text in marks.uncached.items() if cell[1] in read and cell[0] > top}
    put(uncached)
    # Numbers past 15 significant digits: Excel has already rounded them (an ID typed as a
    # number), whatever they look like now.
    lossy = tuple((i + 1, j) for i, row in enumerate(rows) if i >= top for j, v in enumerate(row)
                  if type(v) is float and not -1e15 < v < 1e15)
    header = tuple(text_rows[top - 1])
    frame = pd.DataFrame(text_rows[top:], columns=range(len(header)), dtype=object)
    frame.index = pd.RangeIndex(top + 1, len(frame) + top + 1)
    return Table(path=path, header=header, frame=frame, format=XlsxFormat(sheet, sheet_names),
                 fingerprint=fingerprint, lossy=lossy, hidden=frozenset(r for r in marks.hidden if r > top),
                 errors=frozenset(e for e in marks.errors if e[0] > top),
                 uncached=frozenset(uncached), header_row=top)


def _sheet_rows(path: Path, sheet: str | None) -> tuple[tuple[str, ...], str, list[list[Any]]]:
    """(the workbook's sheet names, the sheet read, its rows from A1) as calamine reads them.

    Where calamine refuses a valid workbook, it reads a temporary copy that leaves out what
    it trips on (the file itself is written back as it is): a ``<dimension>`` of whole rows
    (``1:4``, as LibreOffice 5 writes it; the element is optional) and the sheets that hold
    no cells, such as Excel 4.0 macro sheets (a workbook that has one is otherwise refused
    whole, whichever sheet is named). A failure of the copy too is the workbook's own.
    """
    try:
        return _calamine_rows(path, sheet)
    except SheetError:
        raise
    except Exception as e:  # calamine raises its own types for what it cannot read
        first = e
    import tempfile
    import zipfile

    from bulksync.sheets.package import first_sheet, readable_copy, sheet_part

    try:
        with zipfile.ZipFile(path) as package:
            # The sheet Excel opens first is the default, whatever it is: a macro sheet there
            # is refused by name, not passed over for the next worksheet.
            sheet = sheet or first_sheet(path, package)
            if sheet is not None:
                sheet_part(path, package, sheet)
    except zipfile.BadZipFile:
        raise SheetError(path, f"is not a readable .xlsx workbook ({_short(first)})") from None
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.xlsx"
        try:
            readable_copy(path, copy)
            return _calamine_rows(copy, sheet, path)
        except SheetError:
            raise
        except Exception:
            pass
    raise SheetError(path, f"is not a readable .xlsx workbook ({_short(first)})") from None


def _calamine_rows(path: Path, sheet: str | None, shown: Path | None = None) -> tuple[tuple[str, ...], str,
                                                                                   list[list[Any]]]:
    from python_calamine import CalamineWorkbook

    shown = shown or path
    book = CalamineWorkbook.from_path(str(path))
    sheet_names = tuple(book.sheet_names)
    if not sheet_names:
        raise SheetError(shown, "holds no worksheet")
    if sheet is None:
        sheet = sheet_names[0]
    elif sheet not in sheet_names:
        raise SheetError(shown, f"has no sheet named {sheet!r}; its sheets are: "
                                + ", ".join(repr(n) for n in sheet_names))
    return sheet_names, sheet, book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]
