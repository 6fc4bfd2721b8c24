"""The parts of a workbook package (.xlsx), found and parsed safely: what reading and
writing back share."""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bulksync.errors import SheetError
from bulksync.places import column_index, column_letter
from bulksync.sheets.table import Table, XlsxFormat

__all__ = ["MAX_COLUMNS", "Fills", "Marks", "Placement", "Refusal", "TablePart", "columns_refusal",
           "content_extent", "fills_of", "first_sheet", "owned_in_sheet", "place_columns", "place_in_sheet",
           "readable_copy", "safe_xml", "sheet_filter", "sheet_marks", "sheet_part", "sheet_tables",
           "widen_sheet_filter", "workbook_part"]

_REL_NAMESPACES = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships",
                   "http://purl.oclc.org/ooxml/officeDocument/relationships")
"""The relationship namespace of a transitional workbook, and of a Strict Open XML one."""


def safe_xml(path: Path, part: str, data: bytes) -> Any:
    """Parse XML from a user's file with no entity expansion, no DTD and no network."""
    from lxml import etree

    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data[:4096]:
        raise SheetError(path, f"{part} declares a DOCTYPE or entities, which a workbook "
                               "never needs; refusing to read it")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise SheetError(path, f"{part} is not well-formed XML ({e})") from None


def sheet_part(path: Path, package: zipfile.ZipFile, sheet: str) -> str:
    """The zip member holding worksheet ``sheet``, found through the workbook's relationships
    (transitional or Strict Open XML; part names compared as the package format says: case
    aside, with ``\\`` read as ``/`` as some writers store them)."""
    book = _Book.of(path, package)
    if sheet not in book.sheets:
        raise SheetError(path, f"has no sheet named {sheet!r}; its sheets are: "
                               + ", ".join(repr(n) for n in book.sheets))
    rel = book.rels.get(book.sheets.get(sheet))
    if rel is None or not rel.get("Target"):
        raise SheetError(path, f"sheet {sheet!r} has no worksheet part")
    kind = rel.get("Type", "").rsplit("/", 1)[-1]
    if kind != "worksheet":
        raise SheetError(path, f"sheet {sheet!r} is a {kind}, not a worksheet of cells: name another with --sheet")
    part = book.target(rel)
    if part is None:
        raise SheetError(path, f"sheet {sheet!r} points at a missing part {rel.get('Target')}")
    return part


def first_sheet(path: Path, package: zipfile.ZipFile) -> str | None:
    """The name of the workbook's first sheet (of any kind), as Excel lists them."""
    return next(iter(_Book.of(path, package).sheets), None)


@dataclass(frozen=True)
class _Book:
    """A workbook part and its relationships, as found in a package."""

    part: str
    """The zip member."""
    sheets: dict[str, str | None]
    """Sheet name → its relationship's Id."""
    rels: dict[str | None, Any]
    """Relationship Id → its element."""
    members: dict[str, str]

    @classmethod
    def of(cls, path: Path, package: zipfile.ZipFile) -> _Book:
        members = _members(package)
        workbook = workbook_part(path, package)
        name = _part_name(workbook)
        rels_name = members.get(posixpath.join(posixpath.dirname(name), "_rels", posixpath.basename(name) + ".rels"))
        if rels_name is None:
            raise SheetError(path, "is not a workbook package (no workbook part)")
        sheets = {node.get("name"): next((node.get(f"{{{ns}}}id") for ns in _REL_NAMESPACES
                                          if node.get(f"{{{ns}}}id")), None)
                  for node in safe_xml(path, workbook, package.read(workbook)).iter("{*}sheet")}
        rels = {rel.get("Id"): rel for rel in safe_xml(path, rels_name, package.read(rels_name))}
        return cls(workbook, sheets, rels, members)

    def target(self, rel: Any) -> str | None:
        """The zip member a relationship of the workbook points at (None: there is none)."""
        return _target(self.members, self.part, rel)


CELL_SHEETS = ("worksheet", "chartsheet")
"""The kinds of sheet a reader of cells expects; a workbook may also hold macro and dialog sheets."""


def readable_copy(path: Path, copy: Path) -> None:
    """Write to ``copy`` the package at ``path`` without what a cell reader trips on, though
    the format allows it: sheets that are not worksheets or chart sheets (Excel 4.0 macro
    sheets, dialog sheets), left out of the workbook's list, and a worksheet ``<dimension>``
    that is not a range of cells (``1:4``: whole rows, as LibreOffice 5 writes it; the
    element is optional)."""
    import re

    with zipfile.ZipFile(path) as source:
        book = _Book.of(path, source)
        others = {rid for rid, rel in book.rels.items()
                  if rel.get("Type", "").rsplit("/", 1)[-1] not in (*CELL_SHEETS, "")}
        worksheets = {book.target(rel) for rel in book.rels.values()
                      if rel.get("Type", "").endswith("/worksheet")}

        def listed(match: re.Match[bytes]) -> bytes:
            rid = re.search(rb'\b\w+:id="([^"]*)"', match.group(0))
            return b"" if rid and rid.group(1).decode() in others else match.group(0)

        with zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename == book.part:
                    data = re.sub(rb"<(?:\w+:)?sheet\b[^>]*/>", listed, data)
                elif item.filename in worksheets:
                    data = re.sub(rb'<(?:\w+:)?dimension\b[^>]*\bref="(?![A-Z]+\d+(?::[A-Z]+\d+)?")[^"]*"[^>]*/>',
                                  b"", data, count=1)
                target.writestr(item, data)


def workbook_part(path: Path, package: zipfile.ZipFile) -> str:
    """The zip member holding the workbook, as the package's relationships name it."""
    members = _members(package)
    workbook = "xl/workbook.xml"
    root_rels = members.get("_rels/.rels")
    if root_rels is not None:
        for rel in safe_xml(path, root_rels, package.read(root_rels)):
            if rel.get("Type", "").endswith("/officeDocument"):
                workbook = rel.get("Target", workbook).replace("\\", "/")
    found = members.get(_part_name(workbook))
    if found is None:
        raise SheetError(path, "is not a workbook package (no workbook part)")
    return found


def _part_name(name: str) -> str:
    """A part name as the package format compares them: ``/`` separated, resolved, no leading
    ``/``, case folded."""
    return posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/").casefold()


def _members(package: zipfile.ZipFile) -> dict[str, str]:
    """Part name (as compared) → the zip member that holds it."""
    return {_part_name(n): n for n in package.namelist() if not n.endswith(("/", "\\"))}


@dataclass(frozen=True)
class Marks:
    """What a reader that gives cells alone misses (see :func:`sheet_marks`)."""

    hidden: frozenset[int] = frozenset()
    """Rows an active filter hides."""
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    """(row, column position) → an error cell's text (``#N/A``)."""
    uncached: dict[tuple[int, int], str] = field(default_factory=dict)
    """(row, column position) → the formula (``=C37``) of a cell whose value was never stored."""


def sheet_marks(path: Path, sheet: str) -> Marks:
    """What a reader that gives cells alone misses, from one look at the package: the rows
    an active filter hides (an autoFilter, which the workbook names ``_xlnm._FilterDatabase``;
    rows hidden by hand are the user's to see and count), the error cells (``#N/A``,
    ``#VALUE!``), and the formulas whose value was never stored (a file written by a library,
    or by LibreOffice, and never recalculated: they read as empty, yet Excel shows a value).
    The worksheet is streamed once, and parsed only if it holds what is looked for. Finding
    its part here also refuses, before anything is sent, a workbook whose worksheet could
    not be written back."""
    with zipfile.ZipFile(path) as package:
        part = sheet_part(path, package, sheet)
        filtered = b"_xlnm._FilterDatabase" in package.read(workbook_part(path, package))
        errors, formulas = _holds(package, part, (b't="e"', b"<f"))
        xml = package.read(part) if filtered or errors or formulas else b""
    hidden = _hidden(xml) if filtered and (b"<autoFilter" in xml or b":autoFilter" in xml) else frozenset()
    plain = _plain(xml) if errors or formulas else True
    return Marks(hidden, _errors(xml, plain=plain) if errors else {}, _uncached(xml, plain=plain) if formulas else {})


def _holds(package: zipfile.ZipFile, part: str, needles: tuple[bytes, ...]) -> list[bool]:
    """Which of ``needles`` the part holds, read in chunks (stopping once all are found)."""
    found = [False] * len(needles)
    longest = max(len(n) for n in needles)
    with package.open(part) as stream:
        tail = b""
        while not all(found) and (chunk := stream.read(1 << 20)):
            window = tail + chunk
            found = [f or n in window for f, n in zip(found, needles, strict=True)]
            tail = chunk[-longest:]
    return found


def _hidden(xml: bytes) -> frozenset[int]:
    import re

    hidden = set()
    for match in re.finditer(rb"<(?:\w+:)?row\b([^>]*)>", xml):
        attributes = match.group(1)
        if re.search(rb'\bhidden="(?:1|true)"', attributes):
            number = re.search(rb'\br="(\d+)"', attributes)
            if number:
                hidden.add(int(number.group(1)))
    return frozenset(hidden)


_TAG = re.compile(rb"<(?:(\w+):)?(row|c)\b([^>]*?)(/?)>")
_ATTR_R = re.compile(rb'\br="([A-Z]*)(\d*)"')
_ATTR_T = re.compile(rb'\bt="([^"]*)"')
_VALUE = re.compile(rb"<(?:\w+:)?v(?:\s[^>]*)?(?:/>|>([^<]*)</(?:\w+:)?v>)")
_FORMULA = re.compile(rb"<(?:\w+:)?f\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?f>)", re.S)
_INLINE_TEXT = re.compile(rb"<(?:\w+:)?t(?:\s[^>]*)?>[^<]")


def _cells(xml: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Every cell with content, in one pass: (row, column position, attributes, content).

    Positions are worked out as a reader does: from ``r`` when given, else one past the
    previous row or cell (``r`` is optional, and writers that leave it out exist). A
    self-closing cell has no content and is passed over."""
    row, column = 0, -1
    for tag in _TAG.finditer(xml):
        prefix, name, attributes, closed = tag.groups()
        ref = _ATTR_R.search(attributes)
        if name == b"row":
            row = int(ref.group(2)) if ref and ref.group(2) else row + 1
            column = -1
            continue
        letters = ref.group(1) if ref else b""
        column = column_index(letters.decode()) if letters else column + 1
        if closed:
            continue
        end = xml.find(b"</" + (prefix + b":" if prefix else b"") + b"c>", tag.end())
        if end < 0:
            return
        yield row, column, attributes, xml[tag.end():end]




def _plain(xml: bytes) -> bool:
    """Does every cell begin ``<c r="`` (it names itself first, no namespace prefix: the
    usual worksheet)? Then a cell can be found from any place inside it."""
    # Searched for what would say no, each pattern opening with literal text: a regex that
    # lists every cell, or tries a prefix at every "<", takes several times longer.
    if _UNNAMED_CELL.search(xml):
        return False
    return not any(re.search(rb"<\w+$", xml[max(0, m.start() - 64):m.start()]) for m in _PREFIXED_CELL.finditer(xml))


_UNNAMED_CELL = re.compile(rb'<c(?:[>/\t\n\r]| (?!r="))')
_PREFIXED_CELL = re.compile(rb":c[\s>]")


def _cell_at(xml: bytes, inside: int) -> tuple[int, int, bytes, bytes] | None:
    """In a plain worksheet, the cell that holds position ``inside``: (row, column position,
    attributes, content), or None if that place is in no cell."""
    start = xml.rfind(b"<c ", 0, inside + 1)
    opened = xml.find(b">", start)
    end = xml.find(b"</c>", opened)
    if start < 0 or opened < 0 or xml[opened - 1:opened] == b"/" or end < inside:
        return None  # not inside a cell (a conditional format's formula, say)
    attributes = xml[start + 2:opened]
    ref = _ATTR_R.search(attributes)
    if ref is None:
        return None
    return int(ref.group(2)), column_index(ref.group(1).decode()), attributes, xml[opened + 1:end]


def _cells_with(xml: bytes, needle: re.Pattern[bytes], plain: bool) -> Iterator[tuple[int, int, bytes, bytes]]:
    """The cells (as :func:`_cells` gives them) in which ``needle`` matches, in the tag or the
    content: in a plain worksheet only where it matches is looked at, else every cell."""
    if not plain:
        for cell in _cells(xml):
            if needle.search(cell[2]) or needle.search(cell[3]):
                yield cell
        return
    seen: set[tuple[int, int]] = set()
    for found in needle.finditer(xml):
        at = _cell_at(xml, found.start())
        if at is not None and at[:2] not in seen:
            seen.add(at[:2])
            yield at


_ERROR_TYPE = re.compile(rb'\bt="e"')
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
# A formula with nothing stored after it: the cell closes, or holds an empty inline string.
_NOTHING_STORED = re.compile(rb"<f\b[^>]*?(?:/>|>[^<]*</f>)(?:<is>(?:<t(?:\s[^>]*)?>\s*</t>|<t(?:\s[^>]*)?/>)?</is>)?</c>")


def _errors(xml: bytes, *, plain: bool) -> dict[tuple[int, int], str]:
    """Error cells (``t="e"``) → their text."""
    out: dict[tuple[int, int], str] = {}
    for row, column, attributes, content in _cells_with(xml, _ERROR_TYPE, plain):
        kind = _ATTR_T.search(attributes)
        if kind and kind.group(1) == b"e":
            value = _VALUE.search(content)
            if value and value.group(1):
                out[(row, column)] = value.group(1).decode("utf-8", "replace")
    return out


def _uncached(xml: bytes, *, plain: bool) -> dict[tuple[int, int], str]:
    """Formula cells whose value was never stored → their formula: no ``<v>`` at all, or the
    empty inline string LibreOffice 4 wrote for results it had not calculated. A ``<v></v>``
    is a stored value: the empty string a formula such as ``=IF(A3="","",…)`` gives."""
    from xml.sax.saxutils import unescape

    out: dict[tuple[int, int], str] = {}
    # In a plain worksheet only the formulas with nothing stored after them are looked at.
    for row, column, attributes, content in _cells_with(xml, _NOTHING_STORED if plain else _FORMULA_TAG, plain):
        formula = _FORMULA.search(content)
        if formula is None or _VALUE.search(content):
            continue
        kind = _ATTR_T.search(attributes)
        if kind and kind.group(1) == b"inlineStr" and _INLINE_TEXT.search(content):
            continue  # its result, stored as an inline string
        text = unescape(formula.group(1).decode("utf-8", "replace")) if formula.group(1) else ""
        out[(row, column)] = "=" + (text or "(a shared formula)")
    return out


# -- where bulksync's columns go ------------------------------------------------------

MAX_COLUMNS = 16_384
"""Excel's last column is XFD: a workbook with a cell beyond it does not open."""


@dataclass(frozen=True)
class Refusal:
    """Why bulksync's columns cannot be written into a worksheet (see :func:`place_columns`)."""

    code: str
    """``no-room`` (no column left before XFD) or ``cannot-join`` (a table or filter on the
    header row that the columns cannot join)."""
    message: str


@dataclass(frozen=True)
class TablePart:
    """An Excel Table on a worksheet: its part, and what joining columns to it needs."""

    part: str
    """The zip member."""
    xml: bytes
    name: str
    """Its ``displayName``: the name Excel shows (Table Design → Table Name)."""
    first_column: int
    first_row: int
    last_column: int
    last_row: int
    header_rows: int
    """``headerRowCount``: 1, or 0 for a table without a header row."""
    totals_rows: int
    """``totalsRowCount``: 1 when a totals row is shown below the data."""
    kind: str
    """``tableType``: ``worksheet``, or ``queryTable`` (a query's output) or ``xml`` (an XML map)."""
    column_ids: tuple[int, ...]
    column_names: tuple[str, ...]


@dataclass(frozen=True)
class Placement:
    """Where bulksync's columns go in a worksheet, and what else changes with them.

    ``position``: column name → position; ``new_headers``: position → name of each column
    added; ``width``: the columns taken once they are added. ``parts``: other zip members
    the write-back changes (a table part joined, the workbook's filter name), with their new
    bytes; ``sheet_filter``: the worksheet's autoFilter range once widened. ``refusal``:
    why the columns cannot go in (then nothing may be written)."""

    position: dict[str, int]
    new_headers: dict[int, str]
    width: int
    parts: dict[str, bytes] = field(default_factory=dict)
    sheet_filter: str | None = None
    refusal: Refusal | None = None


_CELL_RANGE = re.compile(r"\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?")


def _range(ref: str) -> tuple[int, int, int, int] | None:
    """``A1:D5`` → (first column position, first row, last column position, last row)."""
    m = _CELL_RANGE.fullmatch(ref.strip())
    if m is None:
        return None
    c1, r1 = column_index(m.group(1)), int(m.group(2))
    c2, r2 = (column_index(m.group(3)), int(m.group(4))) if m.group(3) else (c1, r1)
    return c1, r1, c2, r2


def _ref(c1: int, r1: int, c2: int, r2: int) -> str:
    return f"{column_letter(c1)}{r1}:{column_letter(c2)}{r2}"


_CONTENT_CELL_LETTERS = re.compile(rb'<c r="([A-Z]+)\d+"[^>]*>\s*<(?:f|v|is)[\s>/]')
_CONTENT_CELL_REF = re.compile(rb'<c r="([A-Z]+)(\d+)"[^>]*>\s*<(?:f|v|is)[\s>/]')
_CONTENT = re.compile(rb"<(?:\w+:)?(?:f|v|is)[\s>/]")
_RANGE_END = re.compile(rb'ref="\$?[A-Z]+\$?\d+:\$?([A-Z]+)\$?(\d+)"')
_RANGE_TAG = re.compile(rb"<(?:\w+:)?(f|mergeCell)[\s>/]")


def content_extent(xml: bytes, header_row: int = 1) -> int:
    """One past the rightmost column that holds something, from ``header_row`` down (the rows
    above a header are never read or written): a cell with a value or a formula (a formula
    never calculated holds no value, yet it is there), an array formula's or a merged
    range. A cell that holds only a style (``<c r="E2" s="3"/>``, as LibreOffice and
    Gnumeric write them out to the sheet's last column) holds nothing: bulksync's columns
    may go there."""
    extent = 0
    if _plain(xml):
        if header_row <= 1:
            letters = set(_CONTENT_CELL_LETTERS.findall(xml))
        else:
            letters = {c for c, r in _CONTENT_CELL_REF.findall(xml) if int(r) >= header_row}
        extent = max((column_index(c.decode()) + 1 for c in letters), default=0)
    else:
        for row, column, _, content in _cells(xml):
            if column >= extent and row >= header_row and _CONTENT.search(content):
                extent = column + 1
    for m in _RANGE_END.finditer(xml):  # found by their text first: few elements have a range
        tag = _RANGE_TAG.match(xml, xml.rfind(b"<", 0, m.start()))
        if tag is not None and int(m.group(2)) >= header_row:
            extent = max(extent, column_index(m.group(1).decode()) + 1)
    return extent


@dataclass(frozen=True)
class _Join:
    """A table or filter on the header row, and the columns that must join it."""

    table: TablePart | None
    """None: the worksheet's own filter."""
    first: int
    last: int
    joining: tuple[int, ...]
    """Positions of bulksync's columns right of it, to take in."""


def _position(header: tuple[str, ...], columns: tuple[str, ...], extent: int) -> tuple[dict[str, int], dict[int, str], int]:
    """(column name → position, new header cells by position, the width after adding them):
    new columns go after every column that holds something (``extent``) or has a name."""
    names = [h.strip() for h in header]
    width = max(extent, max((i + 1 for i, n in enumerate(names) if n), default=0))
    position: dict[str, int] = {}
    new_headers: dict[int, str] = {}
    for name in columns:
        if name in names:
            position[name] = names.index(name)
        else:
            position[name] = width
            new_headers[width] = name
            width += 1
    return position, new_headers, width


def _no_room(new_headers: dict[int, str], extent: int, width: int) -> Refusal:
    reach = column_letter(max(extent, 1) - 1)
    return Refusal("no-room", f"has no room for the {len(new_headers)} column(s) bulksync adds "
                              f"({', '.join(new_headers.values())}) before XFD, Excel's last "
                              f"column: cells that hold something reach column {reach}; clear or move "
                              f"{width - MAX_COLUMNS} column(s) at the right")


Fills = Callable[[range], Mapping[int, str]]
"""Given columns, what holds something in each of them that does (see :func:`fills_of`): looked
up only to word a refusal."""


def fills_of(xml: bytes, header_row: int = 1, tables: tuple[TablePart, ...] = ()) -> Fills:
    """What holds something in a worksheet's columns, from ``header_row`` down, as a refusal
    names it: a column's first cell with a value or formula (``F2``), else a merged range or
    an array formula over it, else a table's range (what :func:`content_extent` and
    :func:`place_in_sheet` count). One pass over the cells, when a refusal needs it."""

    def fills(columns: range) -> dict[int, str]:
        found: dict[int, str] = {}
        for row, column, _, content in _cells(xml):
            if column in columns and column not in found and row >= header_row and _CONTENT.search(content):
                found[column] = f"{column_letter(column)}{row} is filled"
        for m in _RANGED.finditer(xml):
            span = _range(m.group(2).decode())
            if span is not None and span[3] >= header_row:
                for column in range(span[0], span[2] + 1):
                    if column in columns:
                        what = "merged cells" if m.group(1) == b"mergeCell" else "a formula over"
                        found.setdefault(column, f"{what} {m.group(2).decode()}")
        for t in tables:
            if t.last_row >= header_row:
                for column in range(t.first_column, t.last_column + 1):
                    if column in columns:
                        found.setdefault(column, f"table {t.name} at "
                                                 f"{_ref(t.first_column, t.first_row, t.last_column, t.last_row)}")
        return found

    return fills


_RANGED = re.compile(rb'<(?:\w+:)?(mergeCell|f)\b[^>]*?\sref="([^"]*)"')


def _join(first: int, last: int, ours: list[int], header: tuple[str, ...], *, new_headers: dict[int, str],
          what: str, fills: Fills | None = None) -> tuple[int, ...] | Refusal:
    """The positions of ``ours`` (bulksync's columns) to take into a table or filter spanning
    columns ``first``–``last`` of the header row: those right of it, which must follow it
    with nothing between. ``what`` names it in a refusal, ``fills`` what stands in the way
    (none given: each column in the way is named without it)."""
    outside = sorted(p for p in ours if not first <= p <= last)
    if not outside:
        return ()

    def named(p: int, filled: str = "") -> str:
        name = new_headers.get(p) or (header[p].strip() if p < len(header) else "")
        return f"column {column_letter(p)}" + (f" ({name or filled})" if name or filled else "")

    if outside[0] < first:
        return Refusal("cannot-join", f"{named(outside[0])} is left of {what}, outside it, so sorting or "
                                      f"filtering it would part the rows from their IDs: move the column into "
                                      f"{what}, right of its last column")
    between = [p for p in range(last + 1, outside[-1]) if p not in outside]
    if not between:
        return tuple(outside)
    # Name what holds something (a header, a cell, a range): an empty column is in the way
    # only when nothing else is (older bulksync columns set apart from the table by it).
    filled = fills(range(between[0], between[-1] + 1)) if fills is not None else {}
    holding = [p for p in between if (p < len(header) and header[p].strip()) or p in filled]
    ending = f"{what} (ending at column {column_letter(last)})"
    if holding:
        them = [named(p, filled.get(p, "")) for p in holding]
        if len(them) > 3:
            listed = ", ".join(them[:3]) + f" and {len(them) - 3} more"
        else:
            listed = them[0] if len(them) == 1 else ", ".join(them[:-1]) + " and " + them[-1]
        stand = "stands" if len(them) == 1 else "stand"
        after = next(p for p in outside if p > holding[-1])
        return Refusal("cannot-join", f"{listed} {stand} between {ending} and {named(after)}, where "
                                      "bulksync's columns go, so they cannot join it")
    gap = [p for p in between if p < next(q for q in outside if q > between[0])]
    empty = (f"column {column_letter(gap[0])}" if len(gap) == 1
             else f"columns {column_letter(gap[0])} to {column_letter(gap[-1])}")
    return Refusal("cannot-join", f"{empty}, empty, {'stands' if len(gap) == 1 else 'stand'} between {ending} "
                                  f"and {named(gap[-1] + 1)}, where bulksync's columns are, so they cannot join it "
                                  f"(delete the empty {'column' if len(gap) == 1 else 'columns'})")


def place_in_sheet(header: tuple[str, ...], columns: tuple[str, ...], *, extent: int, owned: tuple[str, ...] = (),
                   header_row: int = 1, last_row: int | None = None, tables: tuple[TablePart, ...] = (),
                   sheet_filter: str | None = None, clearing: bool = False,
                   fills: Fills | None = None) -> tuple[Placement, tuple[_Join, ...]]:
    """Where ``columns`` go (see :func:`place_columns`), with the tables and filter they join;
    ``owned``: bulksync's columns among them, as the sheet names them; ``clearing``: the
    write only empties cells (reset); ``fills``: what holds something in a column, to name
    in a refusal (see :func:`fills_of`)."""
    for t in tables:  # a table's range is taken, even where its cells are empty
        if t.last_row >= header_row:
            extent = max(extent, t.last_column + 1)
    position, new_headers, width = _position(header, columns, extent)
    if width > MAX_COLUMNS:
        return Placement(position, new_headers, width, refusal=_no_room(new_headers, extent, width)), ()
    if clearing and not new_headers:
        # Emptying cells moves nothing that a sort could part from its row, and adds no
        # column: the tables and the filter are left as they are, whatever stands in the way.
        return Placement(position, new_headers, width), ()
    ours = sorted({*new_headers, *(position[n] for n in columns if n in owned)})
    on_header = [t for t in tables if t.header_rows and t.first_row == header_row]
    joins: list[_Join] = []
    if len(on_header) > 1:
        inside = [t for t in on_header if all(t.first_column <= p <= t.last_column for p in ours)]
        if not inside:
            names = " and ".join(t.name for t in sorted(on_header, key=lambda t: t.first_column))
            why = Refusal("cannot-join", f"tables {names} share the header row, so bulksync cannot tell "
                                         "which its columns join" + _add_them(on_header[-1], ours, header, new_headers))
            return Placement(position, new_headers, width, refusal=why), ()
        on_header = inside[:1]
    for t in on_header:
        joined = _join_table(t, ours, header, new_headers=new_headers, last_row=last_row, fills=fills)
        if isinstance(joined, Refusal):
            return Placement(position, new_headers, width, refusal=joined), ()
        if joined is not None:
            joins.append(joined)
    filtered = _range(sheet_filter) if sheet_filter else None
    if filtered is not None and filtered[1] != header_row and filtered[3] > header_row:
        outside = [p for p in ours if not filtered[0] <= p <= filtered[2]]
        if outside:  # its first row is taken for its header: it sorts rows apart from their IDs
            why = Refusal("cannot-join", f"the sheet's filter ({sheet_filter}) starts on row {filtered[1]}, not "
                                         f"on the header row ({header_row}), so bulksync's columns cannot join "
                                         "it, and sorting or filtering with it would part the rows from their "
                                         "IDs: set the filter on the header row (Data → Filter to clear it, then "
                                         f"select the header row's cells, row {header_row}, and Data → Filter "
                                         "again)")
            return Placement(position, new_headers, width, refusal=why), ()
    if filtered is not None and filtered[1] == header_row:
        what = f"the sheet's filter ({sheet_filter})"
        taken = _join(filtered[0], filtered[2], ours, header, new_headers=new_headers, what=what, fills=fills)
        if isinstance(taken, Refusal):
            why = Refusal(taken.code, taken.message + ": clear the filter (Data → Filter), push, and set it "
                                                      "again over bulksync's columns, or move what stands right of it")
            return Placement(position, new_headers, width, refusal=why), ()
        if taken:
            joins.append(_Join(None, filtered[0], filtered[2], taken))
    return Placement(position, new_headers, width), tuple(joins)


def _add_them(t: TablePart, ours: list[int], header: tuple[str, ...], new_headers: dict[int, str]) -> str:
    """What to do when bulksync cannot add its columns to table ``t`` itself."""
    names = [new_headers[p] if p in new_headers else header[p].strip() for p in ours
             if not t.first_column <= p <= t.last_column]
    return (f": add the column(s) {', '.join(names)} to table {t.name} yourself (right-click its last column, "
            "Insert → Table Columns to the Right, and type their names in the new header cells), or move what "
            "stands right of it")


def _join_table(t: TablePart, ours: list[int], header: tuple[str, ...], *, new_headers: dict[int, str],
                last_row: int | None, fills: Fills | None = None) -> _Join | Refusal | None:
    """How bulksync's columns (at ``ours``) join table ``t``, whose header row is the sheet's:
    None when they are in it already, a Refusal when they cannot."""
    what = f"table {t.name}"
    data_end = t.last_row - t.totals_rows
    if last_row is not None and last_row > data_end:
        if t.totals_rows and last_row <= t.last_row:
            return Refusal("cannot-join", f"row {t.last_row} is the totals row of {what}, which bulksync would read "
                                          "as a ticket: turn the totals row off (Table Design → Total Row) "
                                          "before pushing")
        return Refusal("cannot-join", f"{what} ends at row {data_end} but rows down to {last_row} hold tickets, "
                                      "which sorting or filtering it would leave behind: resize the table to take "
                                      "them in (Table Design → Resize Table: "
                                      f"{_ref(t.first_column, t.first_row, t.last_column, last_row)})")
    taken = _join(t.first_column, t.last_column, ours, header, new_headers=new_headers, what=what, fills=fills)
    if isinstance(taken, Refusal):
        return Refusal(taken.code, taken.message + _add_them(t, ours, header, new_headers))
    if not taken:
        return None
    if t.totals_rows:
        return Refusal("cannot-join", f"{what} has a totals row, below which bulksync cannot add columns: "
                                      "turn it off (Table Design → Total Row), push, and turn it on again")
    if t.kind != "worksheet":
        source = "a query's output" if t.kind == "queryTable" else "mapped to XML"
        return Refusal("cannot-join", f"{what} is {source}, whose columns Excel manages: convert it to a "
                                      "plain table (Table Design → Convert to Range, then Insert → Table)")
    # Excel compares a table's column names case aside and spaces around them aside.
    known = {n.strip().casefold() for n in t.column_names}
    for p in taken:
        name = new_headers.get(p, header[p] if p < len(header) else "")
        if not name.strip() or name.strip().casefold() in known:
            return Refusal("cannot-join", f"{what} already has a column named {name!r}, or the header cell "
                                          f"of column {column_letter(p)} is empty"
                           + _add_them(t, ours, header, new_headers))
        known.add(name.strip().casefold())
    return _Join(t, t.first_column, t.last_column, taken)


def sheet_tables(path: Path, package: zipfile.ZipFile, part: str, xml: bytes) -> tuple[TablePart, ...]:
    """The Excel Tables on the worksheet ``part`` (whose XML is ``xml``): its ``<tableParts>``,
    found through the worksheet's relationships."""
    tail = xml[xml.rfind(b"sheetData"):]  # where the schema puts tableParts: after the cells
    ids = [m.decode() for m in re.findall(rb'<(?:\w+:)?tablePart\b[^>]*?\b\w+:id="([^"]*)"', tail)]
    if not ids:
        return ()
    members = _members(package)
    name = _part_name(part)
    rels_name = members.get(posixpath.join(posixpath.dirname(name), "_rels", posixpath.basename(name) + ".rels"))
    rels = {rel.get("Id"): rel for rel in safe_xml(path, rels_name, package.read(rels_name))} if rels_name else {}
    tables = []
    for rid in ids:
        rel = rels.get(rid)
        member = _target(members, part, rel) if rel is not None else None
        if member is None:
            raise SheetError(path, f"{part} lists a table ({rid}) that the workbook does not hold")
        data = package.read(member)
        root = safe_xml(path, member, data)
        span = _range(root.get("ref", ""))
        if span is None:
            raise SheetError(path, f"{member} has no range (ref={root.get('ref')!r})")
        columns = root.findall("{*}tableColumns/{*}tableColumn")
        tables.append(TablePart(
            part=member, xml=data, name=root.get("displayName") or root.get("name") or member,
            first_column=span[0], first_row=span[1], last_column=span[2], last_row=span[3],
            header_rows=_count(root.get("headerRowCount"), 1), totals_rows=_count(root.get("totalsRowCount"), 0),
            kind=root.get("tableType") or "worksheet",
            column_ids=tuple(_count(c.get("id"), 0) for c in columns),
            column_names=tuple(c.get("name") or "" for c in columns)))
    return tuple(tables)


def _count(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default


def _target(members: dict[str, str], source: str, rel: Any) -> str | None:
    """The zip member a relationship of part ``source`` points at (None: there is none)."""
    if rel.get("TargetMode") == "External":
        return None
    target = rel.get("Target", "").replace("\\", "/")
    base = posixpath.dirname(_part_name(source))
    return members.get(_part_name(target if target.startswith("/") else posixpath.join(base, target)))


_FILTER_TAG = re.compile(rb"<(?:\w+:)?autoFilter\b[^>]*>")
_REF_ATTR = re.compile(rb'(\sref=")([^"]*)(")')


def _sheet_filter_tag(xml: bytes) -> re.Match[bytes] | None:
    """The worksheet's own ``<autoFilter>`` start tag: after sheetData, where the schema puts
    it, and before the custom views, each of which may have a filter of its own."""
    start = xml.find(b">", xml.rfind(b"sheetData"))  # the last: the end of sheetData
    if b"sheetData" not in xml or start < 0:
        return None
    views = xml.find(b"customSheetView", start)
    return _FILTER_TAG.search(xml, start, views if views >= 0 else len(xml))


def sheet_filter(xml: bytes) -> str | None:
    """The range of the worksheet's own autoFilter (a table's filter is the table's), if any."""
    tag = _sheet_filter_tag(xml)
    ref = _REF_ATTR.search(tag.group()) if tag is not None else None
    return ref.group(2).decode() if ref is not None else None


def widen_sheet_filter(xml: bytes, ref: str) -> bytes:
    """The worksheet with its own autoFilter's range set to ``ref``."""
    tag = _sheet_filter_tag(xml)
    old = _REF_ATTR.search(tag.group()) if tag is not None else None
    if tag is None or old is None:
        return xml
    start = tag.start() + old.start(2)
    return xml[:start] + ref.encode() + xml[tag.start() + old.end(2):]


def _joined_table(t: TablePart, last: int, names: list[str]) -> bytes | Refusal:
    """The table part with its range, its filter's and its columns widened to column ``last``,
    the new columns named ``names``: its text patched, every other byte as it was."""
    from xml.sax.saxutils import quoteattr

    xml = t.xml
    head = re.search(rb"<(?:\w+:)?table\b[^>]*>", xml)
    ref = _REF_ATTR.search(head.group()) if head else None
    columns = re.search(rb"(<((?:\w+:)?)tableColumns\b[^>]*?\scount=\")(\d+)(\"[^>]*>)(.*?)(</(?:\w+:)?tableColumns>)",
                        xml, re.S)
    if head is None or ref is None or columns is None:
        return Refusal("cannot-join", f"table {t.name}'s part ({t.part}) is not laid out as Excel writes "
                                      "a table, so bulksync cannot add its columns to it")
    new_ref = _ref(t.first_column, t.first_row, last, t.last_row).encode()
    prefix = columns.group(2)
    ids = max(t.column_ids, default=0)
    added = b"".join(b"<" + prefix + b"tableColumn id=\"" + str(ids + i + 1).encode() + b"\" name="
                     + quoteattr(name).encode("utf-8") + b"/>" for i, name in enumerate(names))
    count = str(len(t.column_ids) + len(names)).encode()  # one per column of the range, as Excel checks
    edits = [(head.start() + ref.start(2), head.start() + ref.end(2), new_ref),
             (columns.start(3), columns.end(3), count), (columns.start(6), columns.start(6), added)]
    found = _FILTER_TAG.search(xml, head.end())
    if found is not None and found.start() < columns.start():  # the table's own filter comes first
        old = _REF_ATTR.search(found.group())
        span = _range(old.group(2).decode()) if old else None
        if old is None or span is None:
            return Refusal("cannot-join", f"table {t.name}'s filter has no range ({t.part}), so bulksync "
                                          "cannot add its columns to it")
        edits.append((found.start() + old.start(2), found.start() + old.end(2),
                      _ref(span[0], span[1], last, span[3]).encode()))
    for start, end, text in sorted(edits, reverse=True):
        xml = xml[:start] + text + xml[end:]
    return xml


_FILTER_NAME = re.compile(rb'<(?:\w+:)?definedName\b[^>]*\bname="_xlnm\._FilterDatabase"[^>]*>([^<]*)<')


def _filter_name(workbook: bytes, index: int, old: tuple[int, int, int, int], last: int) -> bytes | None:
    """The workbook with the hidden name Excel keeps a sheet's filter range in
    (``_xlnm._FilterDatabase``, for the sheet at ``index``; LibreOffice may write it twice)
    widened to column ``last``, where it names the filter's range ``old``; None when that
    changes nothing."""
    sheet = f'localSheetId="{index}"'.encode()

    def widened(m: re.Match[bytes]) -> bytes:
        text = m.group(1)
        bang = text.rfind(b"!")
        end = re.search(rb"(\$?)[A-Z]+(\$?\d+)$", text)
        if sheet not in m.group() or bang < 0 or end is None \
                or _range(text[bang + 1:].decode("utf-8", "replace")) != old:
            return m.group()
        at = m.start(1) - m.start() + end.start()  # where the range's last cell begins, in the match
        return (m.group()[:at] + end.group(1) + column_letter(last).encode() + end.group(2)
                + m.group()[m.start(1) - m.start() + end.end():])

    patched = _FILTER_NAME.sub(widened, workbook)
    return patched if patched != workbook else None


def owned_in_sheet(table: Table, owned: tuple[str, ...]) -> tuple[str, ...]:
    """bulksync's columns as the sheet names them (``ticket_id`` for ``ticketId``)."""
    return tuple(table.header[i].strip() if (i := table.position(n)) is not None else n for n in owned)


def place_columns(table: Table, package: zipfile.ZipFile, part: str, xml: bytes, *,
                  columns: tuple[str, ...] | None, owned: tuple[str, ...], last_row: int,
                  clearing: bool = False) -> Placement:
    """Where ``columns`` go in the worksheet ``part`` (XML ``xml``) of the workbook ``table``
    was read from, and whether they can: the one decision that both the check before
    sending and the write-back make.

    ``columns``: what the write-back writes, as the sheet names them (None: all of
    ``owned``, bulksync's columns, as the check assumes); ``last_row``: the last row it
    writes. Columns the sheet lacks go after every column that holds something, before
    XFD. Where the header row is an Excel Table's, or the sheet's filter's, the new
    columns (and bulksync's columns left outside by an older bulksync, when they follow
    it) join it, so that sorting or filtering in Excel moves the IDs with their rows; where
    they cannot (something stands between, a totals row, several tables on the header row,
    rows below the table, a filter not on the header row), :attr:`Placement.refusal` says
    why and what to do, naming what stands in the way. ``clearing``: the write only empties
    cells (reset): where it adds no column, nothing joins and nothing is refused for joining.
    """
    names = owned_in_sheet(table, owned)
    columns = names if columns is None else columns
    tables = sheet_tables(table.path, package, part, xml)
    placed, joins = place_in_sheet(table.header, columns, extent=content_extent(xml, table.header_row),
                                   owned=names, header_row=table.header_row, last_row=last_row, tables=tables,
                                   sheet_filter=sheet_filter(xml), clearing=clearing,
                                   fills=fills_of(xml, table.header_row, tables))
    if placed.refusal is not None or not joins:
        return placed
    parts: dict[str, bytes] = {}
    widened = None
    for j in joins:
        last = j.last + len(j.joining)
        if j.table is not None:
            header = [placed.new_headers.get(p) or table.header[p] for p in j.joining]
            joined = _joined_table(j.table, last, header)
            if isinstance(joined, Refusal):
                return replace(placed, refusal=joined)
            parts[j.table.part] = joined
            continue
        old = _range(sheet_filter(xml) or "")
        assert old is not None
        widened = _ref(old[0], old[1], last, old[3])
        book = _Book.of(table.path, package)
        assert isinstance(table.format, XlsxFormat)
        named = _filter_name(package.read(book.part), list(book.sheets).index(table.format.sheet), old, last)
        if named is not None:
            parts[book.part] = named
    return replace(placed, parts=parts, sheet_filter=widened)


def columns_refusal(table: Table, *, owned: tuple[str, ...], last_row: int,
                    adding: tuple[str, ...] = ()) -> Refusal | None:
    """Why bulksync's columns (``owned``) could not be written into the workbook ``table`` was
    read from, down to ``last_row``, if they could not: :func:`place_columns`, before
    anything is sent. ``adding``: the other columns the write-back adds, before bulksync's
    (the Suptask columns a pull fills that the sheet lacks)."""
    if not isinstance(table.format, XlsxFormat):
        return None
    with zipfile.ZipFile(table.path) as package:
        part = sheet_part(table.path, package, table.format.sheet)
        columns = (*adding, *owned_in_sheet(table, owned)) if adding else None
        return place_columns(table, package, part, package.read(part), columns=columns, owned=owned,
                             last_row=last_row).refusal
