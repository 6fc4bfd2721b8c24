"""The parts of a workbook package (.xlsx), found and parsed safely: what reading and
writing back share."""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from typing import Any

from bulksync.errors import SheetError

__all__ = ["NS", "safe_xml", "sheet_marks", "sheet_part", "workbook_part"]

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
DOC_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


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
    """The zip member holding worksheet ``sheet``, found through the workbook's relationships."""
    names = set(package.namelist())
    workbook = workbook_part(path, package)
    base = posixpath.dirname(workbook)
    rels_name = posixpath.join(base, "_rels", posixpath.basename(workbook) + ".rels")
    if workbook not in names or rels_name not in names:
        raise SheetError(path, "is not a workbook package (no workbook part)")
    book = safe_xml(path, workbook, package.read(workbook))
    rid = None
    for node in book.iter(f"{NS}sheet"):
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


def workbook_part(path: Path, package: zipfile.ZipFile) -> str:
    """The zip member holding the workbook, as the package's relationships name it."""
    workbook = "xl/workbook.xml"
    if "_rels/.rels" in package.namelist():
        for rel in safe_xml(path, "_rels/.rels", package.read("_rels/.rels")):
            if rel.get("Type", "").endswith("/officeDocument"):
                workbook = rel.get("Target", workbook).lstrip("/")
    return workbook


def sheet_marks(path: Path, sheet: str) -> tuple[frozenset[int], dict[tuple[int, int], str]]:
    """What a reader that gives cells alone misses, from one look at the package: the rows
    an active filter hides (an autoFilter, which the workbook names ``_xlnm._FilterDatabase``;
    rows hidden by hand are the user's to see and count), and the error cells (``#N/A``,
    ``#VALUE!``: (row, column position) → their text). The worksheet is streamed once, and
    parsed only if it holds what is looked for. Finding its part here also refuses, before
    anything is sent, a workbook whose worksheet could not be written back."""
    with zipfile.ZipFile(path) as package:
        part = sheet_part(path, package, sheet)
        filtered = b"_xlnm._FilterDatabase" in package.read(workbook_part(path, package))
        errors = _holds(package, part, b't="e"')
        xml = package.read(part) if filtered or errors else b""
    hidden = _hidden(xml) if filtered and (b"<autoFilter" in xml or b":autoFilter" in xml) else frozenset()
    return hidden, (_errors(xml) if errors else {})


def _holds(package: zipfile.ZipFile, part: str, needle: bytes) -> bool:
    with package.open(part) as stream:
        tail = b""
        while chunk := stream.read(1 << 20):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]
    return False


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


def _errors(xml: bytes) -> dict[tuple[int, int], str]:
    import re

    out: dict[tuple[int, int], str] = {}
    for cell in re.finditer(rb'<c\b([^>]*\bt="e"[^>]*)>(.*?)</c>', xml, re.S):
        ref = re.search(rb'\br="([A-Z]+)(\d+)"', cell.group(1))
        value = re.search(rb"<v>([^<]*)</v>", cell.group(2))
        if ref and value:
            column = 0
            for ch in ref.group(1).decode():
                column = column * 26 + ord(ch) - 64
            out[(int(ref.group(2)), column - 1)] = value.group(1).decode("utf-8", "replace")
    return out
