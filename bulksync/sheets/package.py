"""The parts of a workbook package (.xlsx), found and parsed safely: what reading and
writing back share."""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulksync.errors import SheetError
from bulksync.sheets.read import Table, column_index, column_letter

__all__ = ["MAX_COLUMNS", "Marks", "Placement", "Refusal", "columns_refusal", "content_extent", "first_sheet",
           "owned_in_sheet", "place_columns", "place_in_sheet", "readable_copy", "safe_xml", "sheet_marks",
           "sheet_part", "workbook_part"]

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
    return Marks(hidden, _errors(xml, plain) if errors else {}, _uncached(xml, plain) if formulas else {})


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


def _errors(xml: bytes, plain: bool) -> dict[tuple[int, int], str]:
    """Error cells (``t="e"``) → their text."""
    out: dict[tuple[int, int], str] = {}
    for row, column, attributes, content in _cells_with(xml, _ERROR_TYPE, plain):
        kind = _ATTR_T.search(attributes)
        if kind and kind.group(1) == b"e":
            value = _VALUE.search(content)
            if value and value.group(1):
                out[(row, column)] = value.group(1).decode("utf-8", "replace")
    return out


def _uncached(xml: bytes, plain: bool) -> dict[tuple[int, int], str]:
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
    """``no-room``: no column left before XFD."""
    message: str


@dataclass(frozen=True)
class Placement:
    """Where bulksync's columns go in a worksheet.

    ``position``: column name → position; ``new_headers``: position → name of each column
    added; ``width``: the columns taken once they are added. ``refusal``: why the columns
    cannot go in (then nothing may be written)."""

    position: dict[str, int]
    new_headers: dict[int, str]
    width: int
    refusal: Refusal | None = None


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
    return Refusal("no-room", f"has no room for bulksync's {len(new_headers)} column(s) before XFD, Excel's last "
                              f"column: cells that hold something reach column {reach}; clear or move "
                              f"{width - MAX_COLUMNS} column(s) at the right")


def place_in_sheet(header: tuple[str, ...], columns: tuple[str, ...], *, extent: int) -> Placement:
    """Where ``columns`` go (see :func:`place_columns`) in a sheet whose cells that hold
    something reach ``extent``."""
    position, new_headers, width = _position(header, columns, extent)
    if width > MAX_COLUMNS:
        return Placement(position, new_headers, width, refusal=_no_room(new_headers, extent, width))
    return Placement(position, new_headers, width)


def _target(members: dict[str, str], source: str, rel: Any) -> str | None:
    """The zip member a relationship of part ``source`` points at (None: there is none)."""
    if rel.get("TargetMode") == "External":
        return None
    target = rel.get("Target", "").replace("\\", "/")
    base = posixpath.dirname(_part_name(source))
    return members.get(_part_name(target if target.startswith("/") else posixpath.join(base, target)))


def owned_in_sheet(table: Table, owned: tuple[str, ...]) -> tuple[str, ...]:
    """bulksync's columns as the sheet names them (``ticket_id`` for ``ticketId``)."""
    return tuple(table.header[i].strip() if (i := table.position(n)) is not None else n for n in owned)


def place_columns(table: Table, package: zipfile.ZipFile, part: str, xml: bytes, *,
                  columns: tuple[str, ...] | None, owned: tuple[str, ...], last_row: int) -> Placement:
    """Where ``columns`` go in the worksheet ``part`` (XML ``xml``) of the workbook ``table``
    was read from, and whether they can: the one decision that both the check before
    sending and the write-back make.

    ``columns``: what the write-back writes, as the sheet names them (None: all of
    ``owned``, bulksync's columns, as the check assumes); ``last_row``: the last row it
    writes. Columns the sheet lacks go after every column that holds something, before
    XFD; :attr:`Placement.refusal` says when they cannot.
    """
    columns = owned_in_sheet(table, owned) if columns is None else columns
    return place_in_sheet(table.header, columns, extent=content_extent(xml, table.header_row))


def columns_refusal(table: Table, *, owned: tuple[str, ...], last_row: int) -> Refusal | None:
    """Why bulksync's columns (``owned``) could not be written into the workbook ``table`` was
    read from, down to ``last_row``, if they could not: :func:`place_columns`, before
    anything is sent."""
    from bulksync.sheets.read import XlsxFormat

    if not isinstance(table.format, XlsxFormat):
        return None
    with zipfile.ZipFile(table.path) as package:
        part = sheet_part(table.path, package, table.format.sheet)
        return place_columns(table, package, part, package.read(part), columns=None, owned=owned,
                             last_row=last_row).refusal
