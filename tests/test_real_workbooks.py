"""Real workbooks (issue 18): what Excel, LibreOffice and libraries actually write."""

from __future__ import annotations

import zipfile
from pathlib import Path

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN


def _cells(book: Path) -> dict[str, str]:
    """Cell reference → its XML, of the first worksheet."""
    import re

    with zipfile.ZipFile(book) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    return {m.group(1): m.group(0) for m in re.finditer(r'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)', xml)}


def test_a_formula_without_a_cached_value_is_never_written_over(tmp_path: Path, sandbox: Sandbox) -> None:
    from openpyxl import Workbook

    book = tmp_path / "t.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["description", "priority", "note"])
    ws.append(["Printer jams", "High", "mine"])
    ws.append(["VPN drops", "Low", "mine too"])
    ws["D1"] = '="total"'  # written by a library, never recalculated: no cached value
    ws["D2"] = "=LEN(A2)"
    ws["D3"] = "=LEN(A3)"
    wb.save(book)
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.ok and result.written_to == book, result.summary()
    cells = _cells(book)
    for ref, formula in (("D1", '"total"'), ("D2", "LEN(A2)"), ("D3", "LEN(A3)")):
        assert f"<f>{formula}</f>" in cells[ref], cells[ref]
    assert "ticketId" in cells["E1"]  # bulksync's columns go where nothing lives


def test_a_sheet_reaching_xfd_gets_its_results_beside_it(tmp_path: Path, sandbox: Sandbox) -> None:
    from openpyxl import Workbook

    book = tmp_path / "wide.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["description"])
    ws.append(["Printer jams"])
    ws.cell(row=1, column=16_384, value="last")
    wb.save(book)
    before = book.read_bytes()
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert book.read_bytes() == before  # nothing written past XFD
    assert result.written_to == book.with_name("wide.xlsx.bulksync-results.csv")
    assert "no room for bulksync's columns" in result.note
