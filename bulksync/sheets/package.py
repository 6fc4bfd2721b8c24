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
from bulksync.sheets.read import column_index

__all__ = ["Marks", "first_sheet", "readable_copy", "safe_xml", "sheet_marks", "sheet_part", "workbook_part"]

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
        target = rel.get("Target", "").replace("\\", "/")
        base = posixpath.dirname(_part_name(self.part))
        return self.members.get(_part_name(target if target.startswith("/") else posixpath.join(base, target)))


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


_CELL_OPEN = re.compile(rb"<c[\s>/]")


def _plain(xml: bytes) -> bool:
    """Does every cell begin ``<c r="`` (it names itself first, no namespace prefix: the
    usual worksheet)? Then a cell can be found from any place inside it."""
    if re.search(rb"<\w+:c[\s>]", xml):
        return False
    return len(_CELL_OPEN.findall(xml)) == xml.count(b'<c r="')


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
