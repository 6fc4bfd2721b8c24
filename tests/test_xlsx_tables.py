"""Room for bulksync's columns (issue 23): one function decides where they go
(``place_columns``), for the check before sending and for the writer alike, so that
what the write-back would refuse is refused before anything is sent.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bulksync
from bulksync.columns import OWNED_COLUMNS
from bulksync.errors import SheetError
from bulksync.sandbox import Sandbox
from bulksync.sheets.package import columns_refusal, content_extent, owned_in_sheet
from bulksync.sheets.read import read_table
from bulksync.sheets.write_xlsx import write_xlsx
from tests.conftest import CHANNEL, FORM, TOKEN

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
ROWS = [["description", "priority", "notes"], ["Printer jams", "High", "2nd floor"],
        ["VPN drops", "Low", ""], ["Mail is slow", "High", "since Monday"], ["Badge broken", "Low", "x"]]


def _book(path: Path, rows: list[list[Any]] = ROWS, *, tables: tuple[tuple[str, str], ...] = (("Tickets", "A1:C5"),),
          autofilter: str | None = None, edit: Callable[[Any], None] | None = None) -> Path:
    """A workbook as openpyxl writes one: ``rows`` from A1, Excel Tables (name, range) and the
    sheet's filter; ``edit`` gets the worksheet before the tables are added."""
    from openpyxl import Workbook
    from openpyxl.worksheet.table import Table, TableStyleInfo

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Tickets"
    for row in rows:
        ws.append(row)
    if edit is not None:
        edit(ws)
    for name, ref in tables:
        table = Table(displayName=name, ref=ref)
        table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium9", showRowStripes=True)
        ws.add_table(table)
    if autofilter is not None:
        ws.auto_filter.ref = autofilter
    wb.save(path)
    return path


def _push(book: Path, sandbox: Sandbox, **options: Any) -> bulksync.PushResult:
    return bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL, **options)


# -- point 8: one decision for the check and the writer ---------------------------------

def test_cells_holding_only_a_style_take_no_column() -> None:
    sheet = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" s="2"/><c r="XFD1" s="2"></c></row>'
             b'<row r="2"><c r="A2" t="inlineStr"><is><t>x</t></is></c><c r="C2" s="1">\n <f>1+1</f></c>'
             b'<c r="Z2" s="3"/></row><row r="9"><c r="XFC9" s="4"/><c r="XFD9" s="4"/></row>'
             b'</sheetData></worksheet>')
    assert content_extent(sheet) == 3  # A1, A2 and C2's formula: no value anywhere else
    assert content_extent(sheet.replace(b'<c r="Z2" s="3"/>', b'<c r="Z2" s="3"><v>1</v></c>')) == 26
    assert content_extent(sheet + b'<mergeCells><mergeCell ref="D2:G3"/></mergeCells>') == 7
    assert content_extent(sheet, header_row=2) == 3 and content_extent(sheet, header_row=3) == 0
    prefixed = re.sub(rb"<(/?)(worksheet|sheetData|row|c|v|f|is|t)\b", rb"<\1x:\2", sheet).replace(
        b'<x:worksheet xmlns="', b'<x:worksheet xmlns:x="')
    assert content_extent(prefixed) == 3  # the same, read cell by cell


def test_a_real_workbook_styled_to_xfd_is_written_back(tmp_path: Path, sandbox: Sandbox) -> None:
    """tests/data/real/styled_to_xfd_gnumeric.xlsx (calamine issue 174): three rows of cells that
    hold only a style, out to XFD. The check passed it and the write-back found no room, after
    its ticket was made; now the columns go after the last cell that holds something."""
    book = tmp_path / "wide.xlsx"
    shutil.copyfile(REAL / "styled_to_xfd_gnumeric.xlsx", book)
    result = _push(book, sandbox, set={"description": "Deliver the parcel"})
    assert result.ok and result.written_to == book, (result.summary(), result.note)
    table = read_table(book)
    assert table.header[11:] == ("ticketId", "ticketNumber", "syncStatus")
    assert table.frame.loc[2, 11] == sandbox.tickets()[0]["id"]


def test_the_columns_go_into_cells_holding_only_a_style_and_keep_it(tmp_path: Path, sandbox: Sandbox) -> None:
    def styled(ws: Any) -> None:
        from openpyxl.styles import PatternFill

        fill = PatternFill("solid", fgColor="FFFF00")
        for row in (1, 2, 3):
            for column in range(4, 16_385):
                ws.cell(row=row, column=column).fill = fill

    book = _book(tmp_path / "s.xlsx", tables=(), edit=styled)
    result = _push(book, sandbox)
    assert result.ok and result.written_to == book, (result.summary(), result.note)
    with zipfile.ZipFile(book) as z:
        xml = z.read("xl/worksheets/sheet1.xml")
    style = re.search(rb'<c r="E4" s="(\d+)"', xml)  # a row openpyxl wrote without the fill
    assert re.search(rb'<c r="D2" s="(\d+)" t="inlineStr"><is><t>[0-9a-f-]{36}</t>', xml) and style is None
    assert re.search(rb'<c r="XFD1" s="\d+" t="n"></c>', xml) and b'r="XFE' not in xml  # as it was


def _agrees(book: Path, sheet: str | None = None, header_row: int | None = None) -> tuple[str, str | None]:
    """(what happened, the refusal's code): the check before sending and the writer, given
    the same workbook, bulksync's four columns on every row; they must agree."""
    table = read_table(book, sheet=sheet, header_row=header_row)
    last = int(table.frame.index.max()) if len(table.frame) else table.header_row
    refusal = columns_refusal(table, owned=OWNED_COLUMNS, last_row=last)
    columns = owned_in_sheet(table, OWNED_COLUMNS)
    cells = {int(row): dict.fromkeys(columns, "x") for row in table.frame.index}
    if "description" in table.header:  # a sheet of tickets: the check is the one validate and push make
        report = bulksync.validate(book, sheet=sheet, header_row=header_row, form_id=FORM, channel=CHANNEL)
        assert [(p.code, p.message) for p in report.problems if p.code in ("no-room", "cannot-join")] == (
            [(refusal.code, refusal.message)] if refusal else []), book
    copy = book.with_name("written-" + book.name)
    shutil.copyfile(book, copy)
    try:
        write_xlsx(table, cells, columns=columns, target=copy)
    except SheetError as e:
        assert refusal is not None and refusal.message in str(e), (book, refusal, e)
        return "refused", refusal.code
    assert refusal is None, (book, refusal)
    return "written", None


def _generated(folder: Path) -> dict[str, Path]:
    def styled_to_xfd(ws: Any) -> None:
        for column in range(3, 16_385):
            ws.cell(row=1, column=column).style = "Note"

    def values_to_xfd(ws: Any) -> None:
        ws.cell(row=3, column=16_384, value="last")

    def values_to_xez(ws: Any) -> None:  # room for four columns exactly
        ws.cell(row=3, column=16_380, value="last")

    def values_to_xfb(ws: Any) -> None:
        ws.cell(row=3, column=16_382, value="last")

    return {
        "styled-to-xfd": _book(folder / "styled.xlsx", tables=(), edit=styled_to_xfd),
        "values-to-xfd": _book(folder / "values.xlsx", tables=(), edit=values_to_xfd),
        "values-to-xez": _book(folder / "xez.xlsx", tables=(), edit=values_to_xez),
        "values-to-xfb": _book(folder / "xfb.xlsx", tables=(), edit=values_to_xfb),
    }


HEADER_ROWS = {"title_block_header_row6.xlsx": 6, "errors_array_formulas.xlsx": 4}


def test_the_check_and_the_writer_agree_on_every_workbook(tmp_path: Path) -> None:
    seen: dict[str, tuple[str, str | None]] = {}
    for book in sorted(DATA.rglob("*.xls[xm]")):
        copy = tmp_path / book.name
        shutil.copyfile(book, copy)
        for sheet in read_table(copy, header_row=HEADER_ROWS.get(book.name)).format.sheet_names:  # type: ignore[union-attr]
            name = book.name if sheet == read_table(copy).format.sheet else f"{book.name}!{sheet}"  # type: ignore[union-attr]
            try:
                seen[name] = _agrees(copy, sheet, header_row=HEADER_ROWS.get(book.name))
            except SheetError as e:  # a sheet bulksync does not read as it is (a chart, a macro sheet)
                seen[name] = ("unread", str(e)[-60:])
    for name, book in _generated(tmp_path).items():
        seen[name] = _agrees(book)
    assert sum(1 for what, _ in seen.values() if what == "written") >= 20, seen
    assert {name: seen[name] for name in ("styled-to-xfd", "values-to-xfd", "values-to-xez", "values-to-xfb",
                                          "styled_to_xfd_gnumeric.xlsx", "title_block_header_row6.xlsx")} == {
        "styled-to-xfd": ("written", None), "values-to-xfd": ("refused", "no-room"),
        "values-to-xez": ("written", None), "values-to-xfb": ("refused", "no-room"),
        "styled_to_xfd_gnumeric.xlsx": ("written", None), "title_block_header_row6.xlsx": ("written", None)}
