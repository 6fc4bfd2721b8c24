"""Write bulksync's cells into a workbook by patching one worksheet's XML inside the zip.

Saving a user's workbook through openpyxl loses images, cached formula values,
sparklines and more; instead every part of the package but the one worksheet
is copied as it is, and in that worksheet only the owned cells change.
lxml is used (not ElementTree) because it keeps namespace prefixes as written,
which ``mc:Ignorable`` attributes refer to by name.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from bulksync.columns import column_letter
from bulksync.errors import SheetError
from bulksync.sheets.atomic import replace_file
from bulksync.sheets.read import Table, XlsxFormat

__all__ = ["safe_xml", "write_xlsx"]

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_REF = re.compile(r"([A-Z]+)(\d+)")
NUMERIC_COLUMNS = frozenset({"ticketNumber"})


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


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def sheet_part(path: Path, package: zipfile.ZipFile, sheet: str) -> str:
    """The zip member holding worksheet ``sheet``, found through the workbook's relationships."""
    names = set(package.namelist())
    workbook = "xl/workbook.xml"
    if "_rels/.rels" in names:
        for rel in safe_xml(path, "_rels/.rels", package.read("_rels/.rels")):
            if rel.get("Type", "").endswith("/officeDocument"):
                workbook = rel.get("Target", workbook).lstrip("/")
    base = posixpath.dirname(workbook)
    rels_name = posixpath.join(base, "_rels", posixpath.basename(workbook) + ".rels")
    if workbook not in names or rels_name not in names:
        raise SheetError(path, "is not a workbook package (no workbook part)")
    book = safe_xml(path, workbook, package.read(workbook))
    rid = None
    for node in book.iter(f"{{{NS}}}sheet"):
        if node.get("name") == sheet:
            rid = node.get(f"{{{DOC_REL_NS}}}id")
    targets = {rel.get("Id"): rel.get("Target", "")
               for rel in safe_xml(path, rels_name, package.read(rels_name))}
    target = targets.get(rid)
    if not target:
        raise SheetError(path, f"sheet {sheet!r} has no worksheet part")
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
        posixpath.join(base, target))
    if part not in names:
        raise SheetError(path, f"sheet {sheet!r} points at a missing part {part}")
    return part


def _cell_position(cell: Any, previous: int) -> int:
    ref = cell.get("r")
    if ref:
        m = _REF.match(ref)
        if m:
            return _column_index(m.group(1))
    return previous + 1


def _set_value(cell: Any, value: str, numeric: bool) -> None:
    from lxml import etree

    for child in list(cell):
        cell.remove(child)
    for attr in ("t", "cm", "vm", "ph"):
        cell.attrib.pop(attr, None)
    if value == "":
        return
    if numeric and value.isdigit():
        etree.SubElement(cell, f"{{{NS}}}v").text = value
        return
    # An inline string is text to Excel: a value starting with "=" can never become a formula.
    cell.set("t", "inlineStr")
    t = etree.SubElement(etree.SubElement(cell, f"{{{NS}}}is"), f"{{{NS}}}t")
    t.text = value
    if value != value.strip():
        t.set(XML_SPACE, "preserve")


def _put(row: Any, row_number: int, col: int, value: str, *, numeric: bool,
         style: str | None = None) -> None:
    from lxml import etree

    cells = row.findall(f"{{{NS}}}c")
    position = -1
    insert_at = len(row)
    for cell in cells:
        position = _cell_position(cell, position)
        if position == col:
            _set_value(cell, value, numeric)
            if value == "" and cell.get("s") is None:
                row.remove(cell)
            return
        if position > col:
            insert_at = row.index(cell)
            break
    else:
        # After the last cell, but before any extension element (<extLst>) of the row.
        insert_at = row.index(cells[-1]) + 1 if cells else 0
    if value == "" and style is None:
        return
    cell = etree.Element(f"{{{NS}}}c", r=f"{column_letter(col)}{row_number}")
    if style is not None:
        cell.set("s", style)
    _set_value(cell, value, numeric)
    row.insert(insert_at, cell)
    spans = row.get("spans")
    if spans and ":" in spans:
        low, high = spans.split(":", 1)
        if high.isdigit() and int(high) < col + 1:
            row.set("spans", f"{low}:{col + 1}")


def patch_sheet(path: Path, part: str, xml: bytes, header: tuple[str, ...],
                cells: Mapping[int, Mapping[str, str]], columns: tuple[str, ...]) -> bytes:
    from lxml import etree

    root = safe_xml(path, part, xml)
    data = root.find(f"{{{NS}}}sheetData")
    if data is None:
        raise SheetError(path, f"{part} has no sheetData")
    rows: dict[int, Any] = {}
    previous = 0
    for row in data.iterchildren(f"{{{NS}}}row"):
        r = row.get("r")
        previous = int(r) if r and r.isdigit() else previous + 1
        rows[previous] = row

    names = [h.strip() for h in header]
    width = len(names)
    position: dict[str, int] = {}
    header_row = rows.get(1)
    header_style = None
    if header_row is not None and width:
        last = -1
        for cell in header_row.findall(f"{{{NS}}}c"):
            last = _cell_position(cell, last)
            if last == width - 1:
                header_style = cell.get("s")
    for name in columns:
        if name in names:
            position[name] = names.index(name)
        else:
            position[name] = width
            if header_row is None:
                header_row = etree.Element(f"{{{NS}}}row", r="1")
                data.insert(0, header_row)
                rows[1] = header_row
            _put(header_row, 1, width, name, numeric=False, style=header_style)
            width += 1

    for number in sorted(cells):
        row = rows.get(number)
        if row is None:
            row = etree.Element(f"{{{NS}}}row", r=str(number))
            later = [n for n in rows if n > number]
            if later:
                data.insert(data.index(rows[min(later)]), row)
            else:
                data.append(row)
            rows[number] = row
        for name, value in cells[number].items():
            _put(row, number, position[name], value, numeric=name in NUMERIC_COLUMNS)

    dimension = root.find(f"{{{NS}}}dimension")
    if dimension is not None:
        ref = dimension.get("ref", "")
        m = re.fullmatch(r"([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?", ref)
        if m:
            last_col = max(_column_index(m.group(3) or m.group(1)), width - 1)
            last_row = max(int(m.group(4) or m.group(2)), max(rows) if rows else 1)
            dimension.set("ref", f"{m.group(1)}{m.group(2)}:{column_letter(last_col)}{last_row}")
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    return out


def write_xlsx(table: Table, cells: Mapping[int, Mapping[str, str]], *,
               columns: tuple[str, ...], target: Path | None = None) -> Path:
    """Write ``cells`` (row number → column → text) into the worksheet ``table`` came from."""
    fmt = table.format
    assert isinstance(fmt, XlsxFormat)
    target = target or table.path
    try:
        package = zipfile.ZipFile(table.path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SheetError(table.path, f"cannot be reopened to write back ({e})") from None
    with package:
        part = sheet_part(table.path, package, fmt.sheet)
        patched = patch_sheet(table.path, part, package.read(part), table.header, cells, columns)

        def write(f: IO[bytes]) -> None:
            with zipfile.ZipFile(f, "w") as out:
                for info in package.infolist():
                    out.writestr(info, patched if info.filename == part else package.read(info))

        replace_file(target, write, like=table.path)
    return target
