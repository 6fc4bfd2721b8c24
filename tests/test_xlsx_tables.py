"""Excel Tables, filters and room (issue 23): bulksync's columns travel with the rows.

Where the header row is an Excel Table's (or the sheet's filter's), the columns bulksync adds
join it, so that sorting or filtering in Excel moves the IDs with their rows; where they
cannot, the push is refused before anything is sent. One function decides where the columns
go (``place_columns``), for the check before sending and for the writer alike.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import bulksync
from bulksync.columns import OWNED_COLUMNS
from bulksync.errors import SheetError
from bulksync.sandbox import Sandbox
from bulksync.sheets.package import columns_refusal, content_extent, owned_in_sheet, place_in_sheet
from bulksync.sheets.read import read_table
from bulksync.sheets.write_xlsx import write_xlsx
from tests.conftest import CHANNEL, FORM, TOKEN, add_table, run_cli, write_book

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
ROWS = [["description", "priority", "notes"], ["Printer jams", "High", "2nd floor"],
        ["VPN drops", "Low", ""], ["Mail is slow", "High", "since Monday"], ["Badge broken", "Low", "x"]]


def _book(path: Path, rows: list[list[Any]] = ROWS, *, tables: tuple[tuple[str, str], ...] = (("Tickets", "A1:C5"),),
          autofilter: str | None = None, edit: Callable[[Any], None] | None = None) -> Path:
    """A workbook as openpyxl writes one: ``rows`` from A1, Excel Tables (name, range) and the
    sheet's filter; ``edit`` gets the worksheet before the tables are added."""
    def build(ws: Any) -> None:
        ws.title = "Tickets"
        if edit is not None:
            edit(ws)
        for name, ref in tables:
            add_table(ws, ref, name=name)
        if autofilter is not None:
            ws.auto_filter.ref = autofilter

    return write_book(path, rows, edit=build)


def _push(book: Path, sandbox: Sandbox, **options: Any) -> bulksync.RunResult:
    return bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL, **options)


def _parts(book: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(book) as z:
        return {name: z.read(name) for name in z.namelist()}


def _tables(book: Path, sheet: str | None = None) -> dict[str, tuple[str, list[str], str | None]]:
    """Each table's (range, column names, filter range) as openpyxl loads them, after checking
    what Excel requires of a table (or "repairs" the file, dropping it): column names equal
    to the header cells, one per column of the range, unique ids."""
    from openpyxl import load_workbook
    from openpyxl.utils.cell import range_boundaries

    wb = load_workbook(book)
    ws = wb[sheet] if sheet else wb.active
    assert ws is not None
    out = {}
    for name in list(ws.tables):
        table = ws.tables[name]
        c1, r1, c2, _ = range_boundaries(table.ref)
        names = [c.name for c in table.tableColumns]
        assert names == [ws.cell(row=r1, column=c).value for c in range(c1, c2 + 1)], name
        ids = [c.id for c in table.tableColumns]
        assert len(set(ids)) == len(ids) and len(names) == c2 - c1 + 1, name
        out[name] = (table.ref, names, table.autoFilter.ref if table.autoFilter else None)
    return out


def _without_join(table_xml: bytes, old_ref: str, new_ref: str, added: int) -> bytes:
    """A joined table part with the join taken back out: its range, its filter's and the
    tableColumns it gained (what must be all that changed)."""
    out = table_xml.replace(f'ref="{new_ref}"'.encode(), f'ref="{old_ref}"'.encode())
    out = re.sub(rb"(<tableColumn [^>]*/>){%d}(</tableColumns>)" % added, rb"\2", out)
    return re.sub(rb'(<tableColumns count=")(\d+)', lambda m: m.group(1) + str(int(m.group(2)) - added).encode(), out)


# -- point 1: the columns join the table -----------------------------------------------

def test_bulksyncs_columns_join_the_table_and_a_second_push_changes_nothing_in_it(
        tmp_path: Path, sandbox: Sandbox) -> None:
    book = _book(tmp_path / "t.xlsx")
    before = _parts(book)
    result = _push(book, sandbox)
    assert result.ok and result.written_to == book, result.summary()
    after = _parts(book)
    table = "xl/tables/table1.xml"
    # Only the worksheet and the table part changed; every other member byte for byte.
    assert {n for n in before if before[n] != after[n]} == {"xl/worksheets/sheet1.xml", table}
    assert list(before) == list(after)
    assert _tables(book) == {"Tickets": ("A1:F5", ["description", "priority", "notes", "ticketId", "ticketNumber",
                                                   "syncStatus"], "A1:F5")}
    assert b'<tableColumn id="4" name="ticketId"/><tableColumn id="5" name="ticketNumber"/>' \
           b'<tableColumn id="6" name="syncStatus"/></tableColumns>' in after[table]
    # Its style, ids and every other attribute are as they were: patched, not re-serialised.
    assert _without_join(after[table], "A1:C5", "A1:F5", 3) == before[table]
    again = _push(book, sandbox)
    assert again.ok and again.counts["unchanged"] == 4, again.summary()
    assert _parts(book)[table] == after[table]


def test_syncerror_added_later_widens_the_table_again(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _book(tmp_path / "t.xlsx")
    assert _push(book, sandbox).ok
    table = read_table(book)
    write_xlsx(table, {3: {"syncStatus": "failed", "syncError": "HTTP 422"}},
               columns=("ticketId", "ticketNumber", "syncStatus", "syncError"))
    assert _tables(book)["Tickets"][:2] == ("A1:G5", ["description", "priority", "notes", "ticketId",
                                                      "ticketNumber", "syncStatus", "syncError"])


def test_a_real_excel_table_below_a_title_block(tmp_path: Path, sandbox: Sandbox) -> None:
    """tests/data/real/title_block_header_row6.xlsx (Excel 16 for Mac): table users at A6:D9,
    with xr: revision ids on the table, its filter and each column."""
    book = tmp_path / "users.xlsx"
    shutil.copyfile(REAL / "title_block_header_row6.xlsx", book)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[description]\ncolumns = ["FirstName", "LastName"]\n', encoding="utf-8")
    before = _parts(book)
    result = _push(book, sandbox, mapping=str(mapping), header_row=6)
    assert result.ok and result.written_to == book, result.summary()
    after = _parts(book)
    assert {n for n in before if before[n] != after[n]} == {"xl/worksheets/sheet1.xml", "xl/tables/table1.xml"}
    assert _tables(book) == {"users": ("A6:G9", ["User Id", "FirstName", "LastName", "Date", "ticketId",
                                                 "ticketNumber", "syncStatus"], "A6:G9")}
    joined = after["xl/tables/table1.xml"]
    assert b'<autoFilter ref="A6:G9" xr:uid="{E364EFB5-0762-4267-AD9B-788FA89F1970}"/>' in joined
    assert _without_join(joined, "A6:D9", "A6:G9", 3) == before["xl/tables/table1.xml"]
    assert _push(book, sandbox, mapping=str(mapping), header_row=6).ok
    assert _parts(book)["xl/tables/table1.xml"] == joined


def test_a_real_excel_table_on_row_1_and_another_sheets_table(tmp_path: Path, sandbox: Sandbox) -> None:
    """tests/data/real/excel_table_row1.xlsx (Excel 16, from calamine's tests): table Temperature
    at A1:B3 on Sheet1 and OtherTable on Sheet2, with dataDxfId and xr3: ids on their columns."""
    book = tmp_path / "temperature.xlsx"
    shutil.copyfile(REAL / "excel_table_row1.xlsx", book)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[description]\ncolumns = ["label"]\n', encoding="utf-8")
    before = _parts(book)
    result = _push(book, sandbox, mapping=str(mapping), sheet="Sheet1")
    assert result.ok and len(sandbox.tickets()) == 2, result.summary()
    after = _parts(book)
    assert {n for n in before if before[n] != after[n]} == {"xl/worksheets/sheet1.xml", "xl/tables/table1.xml"}
    assert _tables(book, "Sheet1") == {"Temperature": ("A1:E3", ["label", "value", "ticketId", "ticketNumber",
                                                                 "syncStatus"], "A1:E3")}
    assert _without_join(after["xl/tables/table1.xml"], "A1:B3", "A1:E3", 3) == before["xl/tables/table1.xml"]
    assert _tables(book, "Sheet2") == {"OtherTable": ("A1:B3", ["label2", "value2"], "A1:B3")}


def test_bulksyncs_columns_left_outside_by_an_older_bulksync_are_taken_in(tmp_path: Path, sandbox: Sandbox) -> None:
    """They follow the table with nothing between: the table is widened over them (and the
    column bulksync adds now), their header cells naming them as they are."""
    rows = [[*r, *(["ticket_id", "syncStatus"] if i == 0 else ["", ""])] for i, r in enumerate(ROWS)]
    book = _book(tmp_path / "t.xlsx", rows)
    result = _push(book, sandbox)
    assert result.ok, result.summary()
    ref, names, _ = _tables(book)["Tickets"]
    assert ref == "A1:F5" and names == ["description", "priority", "notes", "ticket_id", "syncStatus", "ticketNumber"]
    assert read_table(book).frame[3].str.len().tolist() == [36] * 4  # the IDs went into ticket_id


@pytest.mark.parametrize(("rows", "tables", "edit", "said"), [
    pytest.param(ROWS, (("Tickets", "A1:B5"),), None,
                 "column C (notes) stands between table Tickets (ending at column B) and column D (ticketId), "
                 "where bulksync's columns go, so they cannot join it: add the column(s) ticketId, ticketNumber, "
                 "syncStatus, syncError to table Tickets yourself", id="a-column-right-of-the-table"),
    # What stands in the way is named, not the first empty column on the way to it (review 23, finding 20).
    pytest.param(ROWS, (("Tickets", "A1:C5"),), lambda ws: ws.cell(row=3, column=8, value="see me"),
                 "column H (H3 is filled) stands between table Tickets (ending at column C) and column I (ticketId)",
                 id="a-note-far-right"),
    pytest.param([r[:2] for r in ROWS], (("Tickets", "A1:B5"),), lambda ws: ws.cell(row=2, column=6, value="Sum"),
                 "column F (F2 is filled) stands between table Tickets (ending at column B) and column G (ticketId)",
                 id="empty-columns-then-a-cell"),
    pytest.param([[*r[:2], "", "Notes" if i == 0 else "n"] for i, r in enumerate(ROWS)], (("Tickets", "A1:B5"),),
                 None, "column D (Notes) stands between table Tickets (ending at column B) and column E (ticketId)",
                 id="an-empty-column-then-a-named-one"),
    pytest.param([r[:2] for r in ROWS], (("Tickets", "A1:B5"),),
                 lambda ws: (ws.cell(row=2, column=4, value="x"), ws.merge_cells("D2:E3"), ws.merge_cells("G7:G8")),
                 "column D (D2 is filled), column E (merged cells D2:E3) and column G (merged cells G7:G8) stand "
                 "between table Tickets (ending at column B) and column H (ticketId)", id="merged-cells"),
    pytest.param([[*r[:2], f"c{i}", "", "d", "e", "f"] for i, r in enumerate(ROWS)], (("Tickets", "A1:B5"),), None,
                 "column C (c0), column E (d), column F (e) and 1 more stand between table Tickets (ending at column "
                 "B) and column H (ticketId)", id="many-in-the-way"),
    pytest.param([[*r, *(["", "ticketId"] if i == 0 else ["", ""])] for i, r in enumerate(ROWS)],
                 (("Tickets", "A1:C5"),), None,
                 "column D, empty, stands between table Tickets (ending at column C) and column E (ticketId), where "
                 "bulksync's columns are, so they cannot join it (delete the empty column)",
                 id="an-older-bulksyncs-column-after-an-empty-one"),
    pytest.param([[*r[:2], "", "x" if i else "other"] for i, r in enumerate(ROWS)],
                 (("Tickets", "A1:B5"), ("Other", "D1:D5")), None,
                 "tables Tickets and Other share the header row, so bulksync cannot tell which its columns join: "
                 "add the column(s) ticketId, ticketNumber, syncStatus, syncError to table Other yourself",
                 id="two-tables-on-the-header-row"),
    pytest.param(ROWS, (("Tickets", "A1:C4"),), None,
                 "table Tickets ends at row 4 but rows down to 5 hold tickets, which sorting or filtering it would "
                 "leave behind: resize the table to take them in (Table Design → Resize Table: A1:C5)",
                 id="rows-below-the-table"),
    pytest.param([["ticketId", *ROWS[0]], *[["", *r] for r in ROWS[1:]]], (("Tickets", "B1:D5"),), None,
                 "column A (ticketId) is left of table Tickets, outside it", id="bulksyncs-column-left-of-it"),
    pytest.param([[*r, *(["syncStatus"] if i == 0 else [""]), "more" if i == 0 else ""] for i, r in enumerate(ROWS)],
                 (("Tickets", "A1:C5"),), lambda ws: ws.move_range("D1:E5", cols=1),
                 "column F (more) stands between table Tickets (ending at column C) and column G (ticketId)",
                 id="an-older-bulksyncs-column-apart-from-it"),
])
def test_a_table_the_columns_cannot_join_is_refused_before_anything_is_sent(
        tmp_path: Path, sandbox: Sandbox, rows: list[list[Any]], tables: tuple[tuple[str, str], ...],
        edit: Callable[[Any], None] | None, said: str) -> None:
    book = _book(tmp_path / "t.xlsx", rows, tables=tables, edit=edit)
    before = book.read_bytes()
    result = _push(book, sandbox)
    assert result.refused and sandbox.requests() == [] and book.read_bytes() == before
    assert result.report is not None
    assert [(p.row_number, p.code) for p in result.report.problems] == [(1, "cannot-join")], result.report.lines()
    assert said in result.report.problems[0].message


def test_a_totals_row_is_refused_before_anything_is_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    def totals(ws: Any) -> None:
        ws.append(["Total", "", "=SUBTOTAL(103,Tickets[notes])"])

    book = _book(tmp_path / "t.xlsx", edit=totals, tables=())
    from openpyxl import load_workbook
    from openpyxl.worksheet.table import Table

    wb = load_workbook(book)
    ws = wb.active
    assert ws is not None
    ws.add_table(Table(displayName="Tickets", ref="A1:C6", totalsRowCount=1))
    wb.save(book)
    result = _push(book, sandbox)
    assert result.refused and sandbox.requests() == []
    assert result.report is not None and [p.code for p in result.report.problems] == ["cannot-join"]
    assert "row 6 is the totals row of table Tickets" in result.report.problems[0].message


def test_plan_and_push_refuse_a_table_they_cannot_join_as_they_refuse_no_room(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _book(tmp_path / "t.xlsx", tables=(("Tickets", "A1:B5"),))
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    for command in ("plan", "push"):
        done = run_cli(command, str(book), "--form-id", FORM, "--channel", CHANNEL, env=env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "row 1: column C (notes) stands between table Tickets" in done.stdout + done.stderr
    assert sandbox.requests() == []


def test_the_writer_refuses_rows_below_the_table(tmp_path: Path) -> None:
    """Should the check be passed anyway, the writer itself never writes outside the table."""
    book = _book(tmp_path / "t.xlsx", tables=(("Tickets", "A1:C4"),))
    before = book.read_bytes()
    with pytest.raises(SheetError, match="table Tickets ends at row 4 but rows down to 5"):
        write_xlsx(read_table(book), {5: {"syncStatus": "created"}}, columns=("syncStatus",))
    assert book.read_bytes() == before
    write_xlsx(read_table(book), {4: {"syncStatus": "created"}}, columns=("syncStatus",))
    assert _tables(book)["Tickets"][0] == "A1:D4"


# -- point 1: the sheet's filter --------------------------------------------------------

def test_the_sheets_filter_is_widened_with_the_name_excel_keeps_it_in(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _book(tmp_path / "f.xlsx", tables=(), autofilter="A1:C5")
    before = _parts(book)
    assert b"'Tickets'!$A$1:$C$5</definedName>" in before["xl/workbook.xml"]
    result = _push(book, sandbox)
    assert result.ok, result.summary()
    after = _parts(book)
    assert {n for n in before if before[n] != after[n]} == {"xl/worksheets/sheet1.xml", "xl/workbook.xml"}
    assert after["xl/workbook.xml"] == before["xl/workbook.xml"].replace(b"$C$5</definedName>", b"$F$5</definedName>")
    assert b'<autoFilter ref="A1:F5"' in after["xl/worksheets/sheet1.xml"]
    from openpyxl import load_workbook

    ws = load_workbook(book).active
    assert ws is not None and ws.auto_filter.ref == "A1:F5"
    assert _push(book, sandbox).ok and _parts(book)["xl/workbook.xml"] == after["xl/workbook.xml"]


def test_a_real_excel_filter_hiding_rows(tmp_path: Path, sandbox: Sandbox) -> None:
    """tests/data/real/autofilter_hidden.xlsx (Excel 16): filterColumns and 51 hidden rows."""
    book = tmp_path / "a.xlsx"
    shutil.copyfile(REAL / "autofilter_hidden.xlsx", book)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[description]\ncolumns = ["Country", "Year", "Quarter"]\n', encoding="utf-8")
    before = _parts(book)
    assert _push(book, sandbox, mapping=str(mapping)).ok
    after = _parts(book)
    assert after["xl/workbook.xml"] == before["xl/workbook.xml"].replace(b"Worksheet!$A$1:$D$57",
                                                                         b"Worksheet!$A$1:$G$57")
    assert b'<autoFilter ref="A1:G57" xr:uid="{00000000-0009-0000-0000-000000000000}"><filterColumn colId="2">' \
        in after["xl/worksheets/sheet1.xml"]


def test_libreoffice_writes_the_filter_name_twice_and_both_are_widened(tmp_path: Path) -> None:
    """tests/data/real/lo6_str_formula.xlsx (LibreOffice 6): sheet users has a filter over
    A1:E32, named twice. LibreOffice takes the filter's range from that name: left as it was,
    it would narrow the filter again on its next save."""
    book = tmp_path / "lo6.xlsx"
    shutil.copyfile(REAL / "lo6_str_formula.xlsx", book)
    write_xlsx(read_table(book, sheet="users"), {2: {"syncStatus": "created"}}, columns=("syncStatus",))
    parts = _parts(book)
    assert parts["xl/workbook.xml"].count(b">users!$A$1:$F$32</definedName>") == 2
    assert b"$E$32" not in parts["xl/workbook.xml"] and b'<autoFilter ref="A1:F32">' in parts["xl/worksheets/sheet2.xml"]


def test_only_the_sheets_own_filter_is_the_sheets_filter() -> None:
    """A custom view (View → Custom Views) keeps a filter of its own, after the sheet's."""
    from bulksync.sheets.package import sheet_filter, widen_sheet_filter

    sheet = (b'<worksheet><sheetData><row r="1"/></sheetData>%s<customSheetViews><customSheetView guid="{1}">'
             b'<autoFilter ref="A1:B9"/></customSheetView></customSheetViews></worksheet>')
    assert sheet_filter(sheet % b"") is None and widen_sheet_filter(sheet % b"", "A1:F9") == sheet % b""
    own = sheet % b'<autoFilter ref="A1:C5"/>'
    assert sheet_filter(own) == "A1:C5"
    assert widen_sheet_filter(own, "A1:F5") == sheet % b'<autoFilter ref="A1:F5"/>'


def test_a_filter_the_columns_cannot_join_is_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _book(tmp_path / "f.xlsx", tables=(), autofilter="A1:B5")
    result = _push(book, sandbox)
    assert result.refused and sandbox.requests() == []
    assert result.report is not None and result.report.problems[0].message.startswith(
        "column C (notes) stands between the sheet's filter (A1:B5) (ending at column B) and column D (ticketId)")


def test_a_filter_not_on_the_header_row_is_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    """Set over rows 2 to 5, a filter takes row 2 for its header: sorting with it would move
    the rows below apart from IDs outside it (the reviewer's T4: neither joined nor refused)."""
    book = _book(tmp_path / "f.xlsx", tables=(), autofilter="A2:C5")
    before = book.read_bytes()
    result = _push(book, sandbox)
    assert result.refused and sandbox.requests() == [] and book.read_bytes() == before
    assert result.report is not None and [(p.row_number, p.code, p.message) for p in result.report.problems] == [
        (1, "cannot-join", "the sheet's filter (A2:C5) starts on row 2, not on the header row (1), so bulksync's "
                           "columns cannot join it, and sorting or filtering with it would part the rows from their "
                           "IDs: set the filter on the header row (Data → Filter to clear it, then select the header "
                           "row's cells, row 1, and Data → Filter again)")]


def test_a_filter_not_on_the_header_row_over_bulksyncs_columns_is_left_as_it_is(tmp_path: Path,
                                                                                 sandbox: Sandbox) -> None:
    """Its sort moves the IDs with their rows: nothing to refuse. Nor does a filter above the
    header row, over the title block, touch the rows bulksync reads."""
    rows = [[*ROWS[0], *OWNED_COLUMNS], *[[*r, "", "", "", ""] for r in ROWS[1:]]]
    book = _book(tmp_path / "f.xlsx", rows, tables=(), autofilter="A2:G5")
    assert _push(book, sandbox).ok and b'<autoFilter ref="A2:G5"/>' in _parts(book)["xl/worksheets/sheet1.xml"]

    def title(ws: Any) -> None:
        ws.insert_rows(1, 2)
        ws["A1"], ws["B1"] = "Tickets", "for the move"

    above = _book(tmp_path / "a.xlsx", tables=(), autofilter="A1:B2", edit=title)
    assert _push(above, sandbox, header_row=3).ok


def test_what_stands_in_the_way_is_named_by_what_fills_it() -> None:
    from bulksync.sheets.package import TablePart, fills_of

    sheet = (b'<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>'
             b'<row r="2"><c r="C2" s="1"/><c r="D2"><f>1+1</f></c></row>'
             b'<row r="4"><c r="C4" t="inlineStr"><is><t>x</t></is></c><c r="E4"><f t="array" ref="E4:F6">1</f>'
             b'<v>1</v></c></row></sheetData><mergeCells><mergeCell ref="G1:H1"/><mergeCell ref="H3:I3"/>'
             b'</mergeCells></worksheet>')
    table = TablePart(part="", xml=b"", name="Side", first_column=9, first_row=8, last_column=10, last_row=9,
                      header_rows=0, totals_rows=0, kind="worksheet", column_ids=(), column_names=())
    fills = fills_of(sheet, 2, (table,))
    assert fills(range(2, 12)) == {2: "C4 is filled", 3: "D2 is filled", 4: "E4 is filled",
                                   5: "a formula over E4:F6", 7: "merged cells H3:I3", 8: "merged cells H3:I3",
                                   9: "table Side at J8:K9", 10: "table Side at J8:K9"}
    assert fills(range(0, 2)) == {}  # A1 is above row 2; C2 holds only a style


def test_a_title_merged_across_the_top_does_not_stand_in_the_way(tmp_path: Path, sandbox: Sandbox) -> None:
    """Rows above the header are never read or written: what is there takes no column."""
    def title(ws: Any) -> None:
        ws.insert_rows(1, 2)
        ws["A1"] = "Tickets for the move"
        ws.merge_cells("A1:J1")

    book = _book(tmp_path / "t.xlsx", edit=title, tables=(("Tickets", "A3:C7"),))
    result = _push(book, sandbox, header_row=3)
    assert result.ok, result.summary()
    assert _tables(book)["Tickets"][0] == "A3:F7"


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
    filled = re.search(rb'<c r="D2" s="(\d+)" t="n"></c>', _parts(book)["xl/worksheets/sheet1.xml"])
    assert filled is not None
    result = _push(book, sandbox)
    assert result.ok and result.written_to == book, (result.summary(), result.note)
    xml = _parts(book)["xl/worksheets/sheet1.xml"]
    for ref in ("D1", "D2", "E2", "F3"):  # the header and the cells of two rows, in the filled cells
        assert re.search(rb'<c r="%s" s="%s" t="inlineStr"><is><t>' % (ref.encode(), filled.group(1)), xml) \
            or re.search(rb'<c r="%s" s="%s"><v>' % (ref.encode(), filled.group(1)), xml), ref
    assert b'<c r="E4"><v>' in xml  # a row openpyxl wrote without the fill: no style given
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


def _generated(folder: Path, name: str) -> Path:
    """The generated workbook ``name`` (one of GENERATED), made in ``folder``."""
    def styled_to_xfd(ws: Any) -> None:
        for column in range(3, 16_385):
            ws.cell(row=1, column=column).style = "Note"

    def values_to_xfd(ws: Any) -> None:
        ws.cell(row=3, column=16_384, value="last")

    def values_to_xez(ws: Any) -> None:  # room for four columns exactly
        ws.cell(row=3, column=16_380, value="last")

    def values_to_xfb(ws: Any) -> None:
        ws.cell(row=3, column=16_382, value="last")

    made: dict[str, Callable[[], Path]] = {
        "styled-to-xfd": lambda: _book(folder / "styled.xlsx", tables=(), edit=styled_to_xfd),
        "values-to-xfd": lambda: _book(folder / "values.xlsx", tables=(), edit=values_to_xfd),
        "values-to-xez": lambda: _book(folder / "xez.xlsx", tables=(), edit=values_to_xez),
        "values-to-xfb": lambda: _book(folder / "xfb.xlsx", tables=(), edit=values_to_xfb),
        "a-table": lambda: _book(folder / "table.xlsx"),
        "a-table-blocked": lambda: _book(folder / "blocked.xlsx", tables=(("Tickets", "A1:B5"),)),
        "a-short-table": lambda: _book(folder / "short.xlsx", tables=(("Tickets", "A1:C3"),)),
        "a-filter": lambda: _book(folder / "filter.xlsx", tables=(), autofilter="A1:C5"),
        "older-columns-beside-a-table": lambda: _book(folder / "older.xlsx", [[*r, "syncStatus" if i == 0 else "created"]
                                                                      for i, r in enumerate(ROWS)]),
        "older-column-left-of-a-table": lambda: _book(folder / "left.xlsx", [["ticketId", *ROWS[0]], *[["", *r] for r in ROWS[1:]]],
                                              tables=(("Tickets", "B1:D5"),)),
        "a-filter-blocked": lambda: _book(folder / "fblocked.xlsx", tables=(), autofilter="A1:B5"),
    }
    return made[name]()


HEADER_ROWS = {"title_block_header_row6.xlsx": 6, "errors_array_formulas.xlsx": 4}


def test_the_check_and_the_writer_agree_on_every_workbook(tmp_path: Path) -> None:
    """The sample workbooks (the generated ones: the test after this one, each on its own)."""
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
    # At least 20 written with the generated workbooks, each of whose outcomes is asserted below.
    written_generated = sum(1 for what, _ in GENERATED.values() if what == "written")
    assert sum(1 for what, _ in seen.values() if what == "written") >= 20 - written_generated, seen
    assert {name: seen[name] for name in ("styled_to_xfd_gnumeric.xlsx", "title_block_header_row6.xlsx")} == {
        "styled_to_xfd_gnumeric.xlsx": ("written", None), "title_block_header_row6.xlsx": ("written", None)}


GENERATED: dict[str, tuple[str, str | None]] = {
    "styled-to-xfd": ("written", None), "values-to-xfd": ("refused", "no-room"),
    "values-to-xez": ("written", None), "values-to-xfb": ("refused", "no-room"), "a-table": ("written", None),
    "a-table-blocked": ("refused", "cannot-join"), "a-short-table": ("refused", "cannot-join"),
    "a-filter": ("written", None), "a-filter-blocked": ("refused", "cannot-join"),
    "older-columns-beside-a-table": ("written", None), "older-column-left-of-a-table": ("refused", "cannot-join")}
"""What the check and the writer, agreeing, do with each generated workbook."""


@pytest.mark.parametrize("name", list(GENERATED))
def test_the_check_and_the_writer_agree_on_each_generated_workbook(tmp_path: Path, name: str) -> None:
    # One test each: the three reaching XFD take seconds, and go to different workers.
    assert _agrees(_generated(tmp_path, name)) == GENERATED[name]


def test_place_in_sheet_refuses_what_it_cannot_join() -> None:
    """The rules no openpyxl workbook shows: a query's table, a name the table already has."""
    from bulksync.sheets.package import TablePart

    def table(**changes: Any) -> TablePart:
        fields: dict[str, Any] = {"part": "xl/tables/table1.xml", "xml": b"", "name": "Tickets", "first_column": 0,
                                  "first_row": 1, "last_column": 1, "last_row": 5, "header_rows": 1, "totals_rows": 0,
                                  "kind": "worksheet", "column_ids": (1, 2), "column_names": ("description", "priority")}
        return TablePart(**(fields | changes))

    owned = OWNED_COLUMNS

    def refusal(t: TablePart, header: tuple[str, ...] = ("description", "priority")) -> str | None:
        placed, _ = place_in_sheet(header, owned, extent=2, owned=owned, last_row=5, tables=(t,))
        return placed.refusal.message if placed.refusal else None

    assert refusal(table()) is None
    assert "is a query's output" in (refusal(table(kind="queryTable")) or "")
    assert "already has a column named 'ticketId'" in (
        refusal(table(column_names=("description", "TICKETID "))) or "")
    assert "has a totals row" in (refusal(table(totals_rows=1, last_row=6)) or "")
    # Nothing to join (bulksync's columns all inside): a query's table is left as it is.
    inside = table(kind="queryTable", last_column=5, column_names=("description", "priority", *owned))
    assert refusal(inside, ("description", "priority", *owned)) is None
