"""Write bulksync's cells into a workbook by patching one worksheet's XML inside the zip.

Saving a user's workbook through openpyxl loses images, cached formula values,
sparklines and more; instead every part of the package but the one worksheet
is copied as it is, and in that worksheet only the owned cells change. Where
bulksync's columns join an Excel Table or the sheet's filter, the table's part
(its range, its filter's, its columns) or the workbook's name for the filter's
range is patched too, as text: nothing else of them changes.
lxml is used (not ElementTree) because it keeps namespace prefixes as written,
which ``mc:Ignorable`` attributes refer to by name.
"""

from __future__ import annotations

import functools
import re
import shutil
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

from bulksync.errors import SheetError
from bulksync.memo import ByIdentity
from bulksync.places import column_index, column_letter
from bulksync.sheets.atomic import replace_file
from bulksync.sheets.package import (
    Placement,
    content_extent,
    place_columns,
    place_in_sheet,
    safe_xml,
    sheet_part,
    widen_sheet_filter,
)
from bulksync.sheets.table import Table, XlsxFormat

__all__ = ["safe_xml", "write_xlsx"]

XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_REF = re.compile(r"([A-Z]+)(\d+)")
NUMERIC_COLUMNS = frozenset({"ticketNumber"})
FAST_DEFLATE = 1
"""zlib level for the rewritten worksheet (the parts copied through keep zipfile's default)."""


_letter = functools.lru_cache(maxsize=1024)(column_letter)


@functools.lru_cache(maxsize=1024)
def _cell_position(cell: Any, previous: int) -> int:
    ref = cell.get("r")
    if ref:
        m = _REF.match(ref)
        if m:
            return column_index(m.group(1))
    return previous + 1


ANY = "{*}"
"""Any namespace: SpreadsheetML's (transitional) or Strict Open XML's, as the worksheet has it."""


def _ns(element: Any) -> str:
    """The ``{namespace}`` of ``element``'s tag: new elements are made in their parent's."""
    tag: str = element.tag
    return tag[:tag.index("}") + 1] if tag.startswith("{") else ""


def _set_value(cell: Any, value: str, *, numeric: bool) -> None:
    from lxml import etree

    for child in list(cell):
        cell.remove(child)
    for attr in ("t", "cm", "vm", "ph"):
        cell.attrib.pop(attr, None)
    if value == "":
        return
    if numeric and value.isdigit():
        etree.SubElement(cell, f"{_ns(cell)}v").text = value
        return
    # An inline string is text to Excel: a value starting with "=" can never become a formula.
    cell.set("t", "inlineStr")
    ns = _ns(cell)
    t = etree.SubElement(etree.SubElement(cell, f"{ns}is"), f"{ns}t")
    t.text = _NOT_XML.sub("\ufffd", value)  # as the text path writes it: XML has no such characters
    if value != value.strip():
        t.set(XML_SPACE, "preserve")


def _put(row: Any, row_number: int, values: Mapping[int, str], *, numeric: frozenset[int],
         style: str | None = None) -> None:
    """Set the cells of ``row`` at the given column positions, in one pass over the row."""
    from lxml import etree

    cells = row.findall(f"{ANY}c")
    existing: dict[int, Any] = {}
    position = -1
    for cell in cells:
        position = _cell_position(cell, position)
        existing[position] = cell
    last = position
    for col in sorted(values):
        value = values[col]
        cell = existing.get(col)
        if cell is not None:
            _set_value(cell, value, numeric=col in numeric)
            if value == "" and cell.get("s") is None:
                row.remove(cell)
            continue
        if value == "" and style is None:
            continue
        cell = etree.Element(f"{_ns(row)}c", r=f"{column_letter(col)}{row_number}")
        if style is not None:
            cell.set("s", style)
        _set_value(cell, value, numeric=col in numeric)
        if col > last:
            # After the last cell, but before any extension element (<extLst>) of the row.
            anchor = existing.get(last)
            row.insert(row.index(anchor) + 1 if anchor is not None else 0, cell)
            last = col
        else:
            after = min(p for p in existing if p > col)
            row.insert(row.index(existing[after]), cell)
        existing[col] = cell
    spans = row.get("spans")
    if spans and ":" in spans and values:
        low, high = spans.split(":", 1)
        top = max(values) + 1
        if high.isdigit() and int(high) < top:
            row.set("spans", f"{low}:{top}")


def _placed(path: Path, xml: bytes, header: tuple[str, ...], *, columns: tuple[str, ...], header_row: int,
            placement: Placement | None) -> Placement:
    """``placement`` (see :func:`bulksync.sheets.package.place_columns`), or where the columns go
    in ``xml`` alone (no table or filter looked at: what the patching tests need); raises
    where they cannot go."""
    if placement is None:
        placement, _ = place_in_sheet(header, columns, extent=content_extent(xml, header_row),
                                      header_row=header_row)
    if placement.refusal is not None:
        raise SheetError(path, placement.refusal.message)
    return placement


# -- the fast path: the worksheet as text ----------------------------------------

_ROW = re.compile(rb"<row\b([^>]*?)(?:/>|>(.*?)</row>)", re.S)
_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>.*?</c>)", re.S)
_ATTR_R = re.compile(rb'\sr="([A-Z]*)(\d+)"')
_CELL_COLUMN = re.compile(rb'<c r="([A-Z]+)\d')
_CELL_LETTERS = re.compile(rb'<c r="([A-Z]+)')
_ATTR_S = re.compile(rb'\ss="(\d+)"')
_SPANS = re.compile(rb'\sspans="(\d+):(\d+)"')
_DIMENSION = re.compile(rb'(<dimension\b[^>]*?\sref=")([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?(")')
_AFTER_TAG = (b" ", b">", b"/", b"\t", b"\r", b"\n")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@functools.lru_cache(maxsize=4096)
def _cell_parts(col: int, value: str, *, numeric: bool, style: bytes | None) -> tuple[bytes, bytes]:
    """A cell's XML on either side of its row number: ``<c r="C`` and ``" …>…</c>``.

    Every row gets the same few cells (a status, an error), so each is built once.
    """
    head = b'<c r="' + _letter(col).encode()
    s = b'" s="' + style + b'"' if style is not None else b'"'
    if value == "":
        return head, s + b"/>"
    if numeric and value.isdigit():
        return head, s + b"><v>" + value.encode() + b"</v></c>"
    # An inline string is text to Excel: a value starting with "=" can never become a formula.
    return head, s + b' t="inlineStr">' + _inline_text(value) + b"</c>"


@functools.lru_cache(maxsize=4096)
def _inline_text(value: str) -> bytes:
    """``<is><t>value</t></is>``, escaped; statuses and errors repeat, so each is built once."""
    # What xml.sax.saxutils.escape does, without importing xml.sax for it.
    text = (_NOT_XML.sub("\ufffd", value).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").encode("utf-8"))
    space = b' xml:space="preserve"' if value != value.strip() else b""
    return b"<is><t" + space + b">" + text + b"</t></is>"


_PAST_ANY_COLUMN = 1 << 30


def _last_column(content: bytes) -> int:
    """The column of a row's last cell when one look at its reference is enough (the usual
    row), else a number past any column."""
    i = content.rfind(b'<c r="')
    if i >= 0 and content.find(b"<c", i + 2) < 0 and content.endswith((b"</c>", b"/>")):
        m = _CELL_COLUMN.match(content, i)
        if m is not None:
            return column_index(m.group(1).decode())
    return _PAST_ANY_COLUMN


def _columns_used(body: bytes) -> int | None:
    """One past the rightmost column a cell in ``body`` (sheetData) names, if every cell names
    its column first (``<c r="``) and no row has an extension element; else None."""
    if b"<extLst" in body or body.count(b"<c") != body.count(b'<c r="'):
        return None
    return max((column_index(letters.decode()) for letters in set(_CELL_LETTERS.findall(body))),
               default=-1) + 1


def _tail_cells(content: bytes, first: int) -> tuple[int, list[tuple[int, re.Match[bytes]]]] | None:
    """Where the cells at column ``first`` or later begin in a row's content, and those cells.

    Walks back from the end: bulksync's columns are usually the last ones, so only
    they are parsed; None when the row holds something a text patch cannot be sure of.
    """
    cells: list[tuple[int, re.Match[bytes]]] = []
    start = end = len(content)
    while True:
        i = content.rfind(b"<c", 0, end)
        while i >= 0 and content[i + 2:i + 3] not in _AFTER_TAG:
            i = content.rfind(b"<c", 0, i)
        if i < 0:
            break
        m = _CELL.match(content, i)
        if m is None or content[m.end():start].strip():
            return None
        ref = _ATTR_R.search(m.group(1))
        if ref is None or not ref.group(1):
            return None
        col = column_index(ref.group(1).decode())
        if col < first:
            break
        cells.append((col, m))
        start = end = i
    cells.reverse()
    return start, cells


def _patch_row(attrs: bytes, content: bytes, number: bytes, *, values: Mapping[int, str],
               numeric: frozenset[int], style: bytes | None) -> bytes | None:
    """The row with ``values`` set (column position → text), or None if it needs the tree."""
    if b"<extLst" in content:
        return None
    found = _tail_cells(content, min(values))
    if found is None:
        return None
    start, tail = found
    # (column, the cell's XML before the row number, after it; None: the cell as it is)
    pieces: list[tuple[int, bytes, bytes | None]] = []
    for col, m in tail:
        if col not in values:
            pieces.append((col, m.group(), None))
            continue
        old_style = _ATTR_S.search(m.group(1))
        if values[col] != "" or old_style is not None:
            pieces.append((col, *_cell_parts(col, values[col], numeric=col in numeric,
                                             style=old_style.group(1) if old_style else None)))
    present = {col for col, _ in tail}
    pieces += [(col, *_cell_parts(col, value, numeric=col in numeric, style=style))
               for col, value in values.items()
               if col not in present and (value != "" or style is not None)]
    pieces.sort(key=lambda p: p[0])
    attrs = _widen_spans(attrs, max(values) + 1)
    return (b"<row" + attrs + b">" + content[:start]
            + b"".join([head if rest is None else head + number + rest for _, head, rest in pieces])
            + b"</row>")


def _widen_spans(attrs: bytes, top: int) -> bytes:
    """A row's attributes with its ``spans`` hint (first:last column) reaching column ``top``."""
    spans = _SPANS.search(attrs) if b"spans" in attrs else None
    if spans is None or int(spans.group(2)) >= top:
        return attrs
    return attrs[:spans.start()] + b' spans="' + spans.group(1) + b":" + str(top).encode() + b'"' \
        + attrs[spans.end():]


class _Shape(NamedTuple):
    """The cells one row gets: by column position, the first and one past the last column,
    and each new cell's XML before and after the row number."""

    values: dict[int, str]
    first: int
    top: int
    parts: list[tuple[bytes, bytes]]


class _NeedsTree(Exception):
    """The worksheet holds something the text path cannot be sure of: the tree path writes it."""


def _patch_text(xml: bytes, header: tuple[str, ...], cells: Mapping[int, Mapping[str, str]],
                *, columns: tuple[str, ...], header_row: int = 1, placement: Placement | None = None) -> bytes | None:
    """Patch the worksheet as text; None when the layout needs the tree (the slow path).

    The rows are found by splitting sheetData at ``</row>`` (a regex over 100,000 rows costs
    far more); only a piece that also holds self-closing rows (``<row r="3"/>``) is searched
    with the regex.
    """
    if not re.search(rb"<worksheet[\s>]", xml[:4096]) or b"<x:" in xml[:4096]:
        return None
    start = xml.find(b"<sheetData>")
    end = xml.find(b"</sheetData>")
    if start < 0 or end < 0:
        return None
    data_start = start + len(b"<sheetData>")
    body = xml[data_start:end]
    placed = _placed(Path("."), xml, header, columns=columns, header_row=header_row, placement=placement)
    position, new_headers, width = placed.position, placed.new_headers, placed.width
    seen: set[int] = set()
    patch = _row_patcher(header, header_row, cells, position=position, new_headers=new_headers, used=_columns_used(body), seen=seen)
    try:
        out = _patch_rows(body, patch)
    except _NeedsTree:
        return None
    if out is None:
        return None
    if any(n not in seen for n in cells) or (new_headers and header_row not in seen):
        return None  # a row to write has no element yet: the tree inserts it in place
    head = _widen_dimension(xml[:data_start], width, seen)
    return head + b"</row>".join(out) + xml[end:]


def _row_patcher(header: tuple[str, ...], header_row: int, cells: Mapping[int, Mapping[str, str]],
                 *, position: dict[str, int], new_headers: dict[int, str], used: int | None,
                 seen: set[int]) -> Callable[[bytes, bytes], bytes | None]:
    """The function that writes one row's cells, given the ``<row>``'s attributes and content
    (see ``patch``); it adds each row number it meets to ``seen`` and raises _NeedsTree for a
    row the text path cannot write. ``used`` is _columns_used of the whole sheetData."""
    numeric = frozenset(position[n] for n in NUMERIC_COLUMNS if n in position)

    # Rows given the same cells share one mapping (see sync.owned_cells): where its cells go
    # and their XML (around the row number) are worked out once.
    def make_shape(row: Mapping[str, str]) -> _Shape:
        values = {position[name]: value for name, value in row.items()}
        return _Shape(values, min(values), max(values) + 1, [
            _cell_parts(col, value, numeric=col in numeric, style=None)
            for col, value in sorted(values.items()) if value != ""])

    shape_of = ByIdentity(make_shape)

    def patch(attrs: bytes, content: bytes) -> bytes | None:
        """The row with its cells written, or None when it has none to write."""
        ref = _ATTR_R.search(attrs)
        if ref is None or ref.group(1):
            raise _NeedsTree
        number = int(ref.group(2))
        seen.add(number)
        row = cells.get(number)
        if number == header_row and new_headers:  # the header row: new column names, styled as the last
            values = {position[name]: value for name, value in (row or {}).items()}
            style = _header_style(content, len(header) - 1)
            values.update(new_headers)
            patched = _patch_row(attrs, content, ref.group(2), values=values, numeric=numeric, style=style)
        elif not row:
            return None
        else:
            shape = shape_of(row)
            # The usual row: its last cell is left of every cell to write, which go after it
            # (known for every row at once when no cell in the sheet is that far right).
            if ((used is not None and used <= shape.first)
                    or (_last_column(content) < shape.first and b"<extLst" not in content)):
                n = ref.group(2)
                return (b"<row" + _widen_spans(attrs, shape.top) + b">" + content
                        + b"".join([head + n + rest for head, rest in shape.parts]) + b"</row>")
            patched = _patch_row(attrs, content, ref.group(2), values=shape.values, numeric=numeric, style=None)
        if patched is None:
            raise _NeedsTree
        return patched

    return patch


def _header_style(content: bytes, column: int) -> bytes | None:
    """The style of the header row's cell at ``column`` (the last header), for the new headers."""
    style = None
    for c in _CELL.finditer(content):
        r = _ATTR_R.search(c.group(1))
        if r and r.group(1) and column_index(r.group(1).decode()) == column:
            s = _ATTR_S.search(c.group(1))
            style = s.group(1) if s else None
    return style


def _patch_rows(body: bytes, patch: Callable[[bytes, bytes], bytes | None]) -> list[bytes] | None:
    """sheetData's content split at ``</row>``, each piece with its rows patched; None when a
    piece's last row does not end at the ``</row>`` it was split at."""
    pieces = body.split(b"</row>")
    out: list[bytes] = []
    for k, piece in enumerate(pieces):
        closed = k < len(pieces) - 1  # the piece ended at a </row>
        i = piece.find(b"<row")
        j = piece.find(b">", i)
        if (closed and 0 <= i < j and piece[i + 4:i + 5] in _AFTER_TAG and piece[j - 1:j] != b"/"
                and piece.find(b"<row", j) < 0):  # one row, which this </row> ends
            patched = patch(piece[i + 4:j], piece[j + 1:])
            out.append(piece if patched is None else piece[:i] + patched[:-len(b"</row>")])
            continue
        if closed:
            piece += b"</row>"
        text: list[bytes] = []
        cursor = 0
        for m in _ROW.finditer(piece):
            patched = patch(m.group(1), m.group(2) or b"")
            if patched is not None:
                text += (piece[cursor:m.start()], patched)
                cursor = m.end()
        text.append(piece[cursor:])
        joined = b"".join(text)
        if closed:
            if not joined.endswith(b"</row>"):
                return None
            joined = joined[:-len(b"</row>")]
        out.append(joined)
    return out


def _widen_dimension(head: bytes, width: int, seen: set[int]) -> bytes:
    """The worksheet's XML before sheetData, its ``<dimension>`` (if any) widened to take in the
    new columns and every row met."""
    dim = _DIMENSION.search(head)
    if not dim:
        return head
    last_col = max(column_index((dim.group(4) or dim.group(2)).decode()), width - 1)
    last_row = max(int(dim.group(5) or dim.group(3)), max(seen) if seen else 1)
    return (head[:dim.start()] + dim.group(1) + dim.group(2) + dim.group(3) + b":"
            + column_letter(last_col).encode() + str(last_row).encode() + dim.group(6)
            + head[dim.end():])


# -- the slow path: the worksheet as a tree ------------------------------------------

def patch_sheet(path: Path, part: str, xml: bytes, header: tuple[str, ...],
                *, cells: Mapping[int, Mapping[str, str]], columns: tuple[str, ...], header_row: int = 1,
                placement: Placement | None = None) -> bytes:
    """The worksheet XML with bulksync's cells written (new column names on ``header_row``)
    where ``placement`` puts them; every other byte kept where it can be."""
    from lxml import etree

    if b"<!DOCTYPE" in xml[:4096] or b"<!ENTITY" in xml[:4096]:
        safe_xml(path, part, xml)  # raises the refusal
    placement = _placed(path, xml, header, columns=columns, header_row=header_row, placement=placement)
    fast = _patch_text(xml, header, cells, columns=columns, header_row=header_row, placement=placement)
    if fast is not None:
        return _widen_filter(fast, placement)
    root = safe_xml(path, part, xml)
    data = root.find(f"{ANY}sheetData")
    if data is None:
        raise SheetError(path, f"{part} has no sheetData")
    rows: dict[int, Any] = {}
    previous = 0
    for row in data.iterchildren(f"{ANY}row"):
        r = row.get("r")
        previous = int(r) if r and r.isdigit() else previous + 1
        rows[previous] = row

    position, new_headers, width = placement.position, placement.new_headers, placement.width

    def row_element(number: int) -> Any:
        """The ``<row>`` numbered ``number``, inserted in its place if the sheet has none."""
        row = rows.get(number)
        if row is None:
            row = etree.Element(f"{_ns(data)}row", r=str(number))
            later = [n for n in rows if n > number]
            if later:
                data.insert(data.index(rows[min(later)]), row)
            else:
                data.append(row)
            rows[number] = row
        return row

    header_style = None
    if rows.get(header_row) is not None and header:
        last = -1
        for cell in rows[header_row].findall(f"{ANY}c"):
            last = _cell_position(cell, last)
            if last == len(header) - 1:
                header_style = cell.get("s")
    if new_headers:
        _put(row_element(header_row), header_row, new_headers, numeric=frozenset(), style=header_style)

    numeric = frozenset(position[n] for n in NUMERIC_COLUMNS if n in position)
    for number in sorted(cells):
        _put(row_element(number), number, {position[name]: value for name, value in cells[number].items()},
             numeric=numeric)

    dimension = root.find(f"{ANY}dimension")
    if dimension is not None:
        ref = dimension.get("ref", "")
        m = re.fullmatch(r"([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?", ref)
        if m:
            last_col = max(column_index(m.group(3) or m.group(1)), width - 1)
            last_row = max(int(m.group(4) or m.group(2)), max(rows) if rows else 1)
            dimension.set("ref", f"{m.group(1)}{m.group(2)}:{column_letter(last_col)}{last_row}")
    body: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    return _widen_filter(_declaration(xml) + body, placement)


def _widen_filter(xml: bytes, placement: Placement) -> bytes:
    """The worksheet with its own filter widened over bulksync's columns, if they join it."""
    return widen_sheet_filter(xml, placement.sheet_filter) if placement.sheet_filter else xml


def _declaration(xml: bytes) -> bytes:
    """The part's own XML declaration and the whitespace after it, as written."""
    if not xml.startswith(b"<?xml"):
        return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    end = xml.index(b"?>") + 2
    while end < len(xml) and xml[end:end + 1] in (b"\r", b"\n", b" ", b"\t"):
        end += 1
    return xml[:end]


def _fresh(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A copy of ``info`` for writing (same name, date, compression and attributes)."""
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = info.compress_type
    copy.external_attr = info.external_attr
    copy.create_system = info.create_system
    copy.comment = info.comment
    return copy


def write_xlsx(table: Table, cells: Mapping[int, Mapping[str, str]], *,
               columns: tuple[str, ...], target: Path | None = None) -> Path:
    """Write ``cells`` (row number → column → text) into the worksheet ``table`` came from,
    where :func:`~bulksync.sheets.package.place_columns` puts ``columns`` (as the check
    before sending decided: it refuses what this would); a table or filter on the header
    row they join is widened over them, in its own part. A write that only empties cells
    (reset) and adds no column leaves tables and filter as they are, and is never refused
    for them."""
    from bulksync.columns import OWNED_COLUMNS

    fmt = table.format
    assert isinstance(fmt, XlsxFormat)
    target = target or table.path
    try:
        package = zipfile.ZipFile(table.path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SheetError(table.path, f"cannot be reopened to write back ({e})") from None
    with package:
        part = sheet_part(table.path, package, fmt.sheet)
        xml = package.read(part)
        clearing = not any(value for these in cells.values() for value in these.values())
        placement = place_columns(table, package, part, xml, columns=columns, owned=OWNED_COLUMNS,
                                  last_row=max(cells, default=table.header_row), clearing=clearing)
        patched = {**placement.parts, part: patch_sheet(table.path, part, xml, table.header, cells=cells, columns=columns,
                                                         header_row=table.header_row, placement=placement)}

        def write(f: IO[bytes]) -> None:
            with zipfile.ZipFile(f, "w") as out:
                for info in package.infolist():
                    data = patched.get(info.filename)
                    if data is not None:
                        # Deflated fast (level 1): about 3x quicker than the default level
                        # for a part of several MB, at some 15% more bytes (bench/RESULTS.md).
                        out.writestr(info, data, compresslevel=FAST_DEFLATE
                                     if info.compress_type == zipfile.ZIP_DEFLATED else None)
                        continue
                    # Streamed in chunks: memory does not grow with images or other sheets.
                    with package.open(info) as src, out.open(_fresh(info), "w",
                                                             force_zip64=info.file_size > 2**31) as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)

        replace_file(target, write, like=table.path)
    return target
