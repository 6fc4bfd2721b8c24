"""Real workbooks (issue 18): what Excel, LibreOffice and libraries actually write."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, write_book


def _cells(book: Path) -> dict[str, str]:
    """Cell reference → its XML, of the first worksheet."""
    import re

    with zipfile.ZipFile(book) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    return {m.group(1): m.group(0) for m in re.finditer(r'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)', xml)}


def _book(path: Path, rows: list[list[object]], last: tuple[int, int] | None = None,
          edit: Callable[[Any], None] | None = None) -> Path:
    """A workbook of ``rows`` (``last``: a cell set at (row, column); ``edit``: given the
    worksheet before it is saved)."""
    def change(ws: Any) -> None:
        if last is not None:
            ws.cell(row=last[0], column=last[1], value="last")
        if edit is not None:
            edit(ws)

    return write_book(path, rows, edit=change)


def test_a_formula_without_a_cached_value_is_never_written_over(tmp_path: Path, sandbox: Sandbox) -> None:
    def formulas(ws: Any) -> None:  # written by a library, never recalculated: no cached value
        ws["D1"], ws["D2"], ws["D3"] = '="total"', "=LEN(A2)", "=LEN(A3)"

    book = _book(tmp_path / "t.xlsx", [["description", "priority", "note"], ["Printer jams", "High", "mine"],
                                       ["VPN drops", "Low", "mine too"]], edit=formulas)
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.ok and result.written_to == book, result.summary()
    cells = _cells(book)
    for ref, formula in (("D1", '"total"'), ("D2", "LEN(A2)"), ("D3", "LEN(A3)")):
        assert f"<f>{formula}</f>" in cells[ref], cells[ref]
    assert "ticketId" in cells["E1"]  # bulksync's columns go where nothing lives


def test_a_sheet_reaching_xfd_is_refused_before_anything_is_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _book(tmp_path / "wide.xlsx", [["description"], ["Printer jams"]], last=(1, 16_384))
    before = book.read_bytes()
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.refused and sandbox.requests() == [] and book.read_bytes() == before
    assert result.report is not None and [p.code for p in result.report.problems] == ["no-room"]
    # Should the check be passed anyway, the writer itself never writes past XFD.
    from bulksync.results import RowResult
    from bulksync.sheets.read import read_table
    from bulksync.writeback import write_back

    written, note = write_back(read_table(book), {2: RowResult(2, "created", ticket_id="x" * 36)})
    assert written == book.with_name("wide.xlsx.bulksync-results.csv") and "no room" in note
    assert book.read_bytes() == before


def _filtered(book: Path, *, hide: tuple[int, ...], by_filter: bool = True) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["description", "priority"])
    for i in range(2, 6):
        ws.append([f"Ticket {i}", "High"])
    if by_filter:
        ws.auto_filter.ref = "A1:B5"
    for row in hide:
        ws.row_dimensions[row].hidden = True
    wb.save(book)
    return book


def test_rows_hidden_by_a_filter_are_not_pushed(tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import run_cli

    book = _filtered(tmp_path / "f.xlsx", hide=(3, 4))
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    planned = run_cli("plan", str(book), "--form-id", FORM, "--channel", CHANNEL, env=env)
    assert "2 to create" in planned.stdout
    assert "note: 2 row(s) hidden by the sheet's filter are left out (--include-hidden to push them)" \
        in planned.stderr
    pushed = run_cli("push", str(book), "--form-id", FORM, "--channel", CHANNEL, "-q", env=env)
    assert pushed.returncode == 0 and sorted(t["description"] for t in sandbox.tickets()) == [
        "Ticket 2", "Ticket 5"]
    from bulksync.sheets.read import read_table

    table = read_table(book)
    status = table.position("syncStatus")
    assert status is not None and table.frame[status].tolist() == ["created", "", "", "created"]
    also = run_cli("push", str(book), "--include-hidden", "--form-id", FORM, "--channel", CHANNEL, "-q", env=env)
    assert also.returncode == 0 and len(sandbox.tickets()) == 4


def test_rows_hidden_by_hand_are_the_users_to_see_and_are_pushed(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _filtered(tmp_path / "h.xlsx", hide=(3,), by_filter=False)
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.ok and len(sandbox.tickets()) == 4


def test_a_jira_export_without_labels_and_with_real_workflow_values(tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import write

    sheet = write(tmp_path / "jira.csv", "Summary,Issue key,Issue id,Issue Type,Status,Priority,Assignee,Reporter\n"
                  "VPN drops every hour,OPS-101,10001,Bug,Untriaged,P1-Immediate,,U073PBJPHGW\n"
                  "Printer on floor 2,OPS-102,10002,Task,Resolved,Unknown,,U073PBJPHGW\n"
                  "Access to billing,OPS-103,10003,Task,Waiting for reporter,Minor,,U073PBJPHGW\n"
                  "Old VPN ticket,OPS-104,10004,Bug,Reopened,Blocker,,U073PBJPHGW\n")
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, mapping="jira", form_id=FORM,
                           channel=CHANNEL)
    assert result.ok, result.summary()
    got = {t["description"]: (t["status"], t["priority"]) for t in sandbox.tickets()}
    assert got == {"VPN drops every hour": ("Open", "CRITICAL"), "Printer on floor 2": ("Closed", None),
                   "Access to billing": ("Waiting for customer", "Low"), "Old VPN ticket": ("Open", "CRITICAL")}


def test_a_mapping_column_that_is_not_optional_is_still_required(tmp_path: Path) -> None:
    from tests.conftest import write

    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\nstatus = "State"\ntags = "Labels"\n[description]\ncolumns = ["Title"]\n')
    sheet = write(tmp_path / "t.csv", "Title\nPrinter jams\n")
    report = bulksync.validate(sheet, mapping=str(mapping), form_id=FORM, channel=CHANNEL)
    assert [p.code for p in report.problems] == ["missing-column", "missing-column"]
    mapping.write_text('optional = ["Labels", "State"]\n[columns]\nstatus = "State"\ntags = "Labels"\n'
                       '[description]\ncolumns = ["Title"]\n')
    assert bulksync.validate(sheet, mapping=str(mapping), form_id=FORM, channel=CHANNEL).valid


def test_reply_text_keeps_its_whitespace(tmp_path: Path) -> None:
    from bulksync.mapping import _jira_comment, load_comments
    from tests.conftest import write

    body = "    def f():\n        return 1\n\n> quoted\n"
    comments = write(tmp_path / "c.csv", 'externalId,author,body,public,createdAt\n'
                     f'4211,Ana,"{body}",true,2026-11-30T09:00:00Z\n')
    assert load_comments(comments)["4211"][0].body == body
    assert _jira_comment(f"30/Nov/26 9:00 AM;ana;{body}", public=False).body == body


def test_error_cells_are_read_as_excel_shows_them(tmp_path: Path, sandbox: Sandbox) -> None:
    def errors(ws: Any) -> None:
        for ref, error in (("B3", "#N/A"), ("C4", "#VALUE!")):
            ws[ref].value = error
            ws[ref].data_type = "e"

    book = _book(tmp_path / "e.xlsx", [["description", "priority", "note"], ["Printer jams", "High", "fine"],
                                       ["VPN drops", None, None], [None, None, None]], edit=errors)
    report = bulksync.validate(book, form_id=FORM, channel=CHANNEL)
    # Row 3's priority is a failed formula, not a value to send; row 4 holds an error (in a column
    # of the user's own), so it is not a blank row: it is a row without a description.
    assert [(p.row_number, p.column, p.code) for p in report.problems] == [
        (3, "priority", "excel-error"), (4, "description", "required")]
    assert report.problems[0].message == "holds the Excel error #N/A (a formula that failed): fix it or clear the cell"


def test_a_dimension_of_whole_rows_as_libreoffice_writes_it(tmp_path: Path, sandbox: Sandbox) -> None:
    made = _book(tmp_path / "made.xlsx", [["description"], ["Printer jams"], ["VPN drops"]])
    book = tmp_path / "lo.xlsx"
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(book, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:A3"/>', b'<dimension ref="1:3"/>')
                assert b'ref="1:3"' in data
            dst.writestr(item, data)
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.ok and result.written_to == book and len(sandbox.tickets()) == 2
    from bulksync.sheets.read import read_table

    table = read_table(book)
    at = table.position("ticketId")
    assert at is not None and all(table.frame[at].tolist())


def _other_parts_unchanged(before: Path, after: Path, sheet: str = "xl/worksheets/sheet1.xml") -> None:
    with zipfile.ZipFile(before) as a, zipfile.ZipFile(after) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if name != sheet:
                assert a.read(name) == b.read(name), name


def _report(path: Path) -> Path:
    """A report as people make them: a title block, then the table's header on row 5."""
    return _book(path, [["Open tickets, Q3"], ["Exported 2026-11-30 by Ana"], [],
                        ["Team:", "IT"], ["description", "priority", "note"],
                        ["Printer jams", "High", "mine"], ["VPN drops", "Low", None]])


def test_a_header_below_a_title_block_is_named_and_the_title_never_sent(tmp_path: Path,
                                                                        sandbox: Sandbox) -> None:
    from tests.conftest import run_cli

    book = _report(tmp_path / "report.xlsx")
    before = tmp_path / "before.xlsx"
    before.write_bytes(book.read_bytes())
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    refused = run_cli("push", str(book), "--form-id", FORM, "--channel", CHANNEL, env=env)
    assert refused.returncode == 2 and sandbox.requests() == [] and book.read_bytes() == before.read_bytes()
    assert ("row 1 names no column bulksync reads (a title?), row 5 does: give --header-row 5 "
            "(or header_row = 5 in bulksync.toml; --header-row 1 if row 1 is the header)") in refused.stderr
    pushed = run_cli("push", str(book), "--header-row", "5", "--form-id", FORM, "--channel", CHANNEL, "-q",
                     env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert sorted(t["description"] for t in sandbox.tickets()) == ["Printer jams", "VPN drops"]
    _other_parts_unchanged(before, book)
    cells, old = _cells(book), _cells(before)
    assert {ref: xml for ref, xml in cells.items() if ref[0] in "ABC"} == old  # the user's cells, as they were
    from bulksync.sheets.read import read_table

    table = read_table(book, header_row=5)
    assert table.header[3:6] == ("ticketId", "ticketNumber", "syncStatus")
    assert not any(ref[0] in "DEFG" and int(ref[1:]) < 5 for ref in cells)  # nothing above the header
    assert table.frame[5].tolist() == ["created", "created"]
    again = run_cli("push", str(book), "--header-row", "5", "--form-id", FORM, "--channel", CHANNEL, "-q",
                    env=env)
    assert again.returncode == 0 and len(sandbox.tickets()) == 2  # the IDs were found where they were written
    cleared = run_cli("reset", str(book), "--header-row", "5", "--yes")
    assert cleared.returncode == 0 and "6 cell(s) cleared" in cleared.stdout, cleared.stdout + cleared.stderr
    assert {ref: xml for ref, xml in _cells(book).items() if ref[0] in "ABC"} == old


def test_a_csv_header_row_from_bulksync_toml_and_rows_numbered_as_the_file_has_them(
        tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import write

    text = ("Tickets to open;;\r\n\r\ndescription,requester,note\r\n\"Printer jams\nagain\",U073PBJPHGW,mine\r\n"
            "VPN drops,ana@example.com,\r\n")
    sheet = write(tmp_path / "t.csv", text)
    (tmp_path / "bulksync.toml").write_text("header_row = 3\n")
    report = bulksync.validate(sheet, form_id=FORM, channel=CHANNEL)
    # Row 5 as a spreadsheet shows it: the quoted line break is inside row 4's cell.
    assert [(p.row_number, p.column) for p in report.problems] == [(5, "requester")]
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL,
                           skip_invalid=True)
    assert [t["description"] for t in sandbox.tickets()] == ["Printer jams\nagain"]
    written = sheet.read_bytes().decode("utf-8")
    assert written.startswith("Tickets to open;;\r\n\r\ndescription,requester,note,ticketId,ticketNumber,"
                              "syncStatus,syncError\r\n\"Printer jams\nagain\",U073PBJPHGW,mine,"), written
    assert result.written_to == sheet and written.count("\r\n") == text.count("\r\n")


def test_header_problems_are_named_on_the_header_row(tmp_path: Path) -> None:
    from tests.conftest import write

    sheet = write(tmp_path / "t.csv", "Report\n\ndescription,prority\nPrinter jams,High\n")
    report = bulksync.validate(sheet, form_id=FORM, channel=CHANNEL, header_row=3)
    assert [(p.row_number, p.code) for p in report.problems] == [(3, "near-miss-header")]
    assert report.sheet_invalid and report.invalid_rows == frozenset()


def test_an_empty_first_row_names_the_row_that_looks_like_the_header(tmp_path: Path) -> None:
    from tests.conftest import run_cli, write

    csv = write(tmp_path / "e.csv", ",\n,\nticketId,status\n")
    result = run_cli("validate", str(csv))
    assert result.returncode == 2
    assert "e.csv: has an empty row 1; row 3 looks like the header: give --header-row 3" in result.stderr
    book = _book(tmp_path / "e.xlsx", [[None], [None, None], ["Report only"], ["description", "status"]])
    result = run_cli("validate", str(book))
    assert result.returncode == 2 and "row 4 looks like the header: give --header-row 4" in result.stderr
    past = run_cli("validate", str(csv), "--header-row", "9")
    assert past.returncode == 2 and "row 9 (--header-row) is empty or past the end" in past.stderr


def test_a_title_that_is_a_column_name_is_still_a_title(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    # A title "Description" names a column, but the table's header below names more: pushed
    # as it is, that header would go out as a ticket. --header-row 1 says row 1 is the header.
    book = _book(tmp_path / "t.xlsx", [["Description"], [], ["description", "priority"], ["Printer jams", "High"]])
    refused = run_cli("validate", str(book), "--form-id", FORM, "--channel", CHANNEL)
    assert refused.returncode == 2 and ("row 1 names fewer columns bulksync reads than row 3 does (a title?): "
                                        "give --header-row 3") in refused.stderr
    assert bulksync.validate(book, form_id=FORM, channel=CHANNEL, header_row=3).valid
    assert bulksync.validate(book, form_id=FORM, channel=CHANNEL, header_row=1).rows == 2
    csv = tmp_path / "t.csv"
    csv.write_text('Inventory of 5" floppy tickets\n\ndescription,priority\nMonitor 27" flickers,High\n')
    report = bulksync.validate(csv, form_id=FORM, channel=CHANNEL, header_row=3)
    assert report.valid and report.rows == 1  # a quote inside a cell opens nothing


def test_a_header_row_given_that_names_nothing_bulksync_reads_is_refused(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    # bulksync.toml says header_row = 3, but the user deleted the title row since.
    book = _book(tmp_path / "t.xlsx", [["Report"], ["description", "priority"], ["Printer jams", "High"]])
    (tmp_path / "bulksync.toml").write_text("header_row = 3\n")
    refused = run_cli("validate", str(book), "--form-id", FORM, "--channel", CHANNEL)
    assert refused.returncode == 2
    assert "row 3 (--header-row) names no column bulksync reads, row 2 does: give --header-row 2" in refused.stderr


def test_an_array_formula_or_merged_range_where_the_new_columns_would_go_is_left_whole(
        tmp_path: Path, sandbox: Sandbox) -> None:
    def ranges(ws: Any) -> None:  # a library's array formula over D2:F2, never calculated: only D2 exists
        from openpyxl.worksheet.formula import ArrayFormula

        ws["D2"] = ArrayFormula("D2:F2", "=TRANSPOSE(A2:A4)")
        ws.merge_cells("A6:H6")

    book = _book(tmp_path / "a.xlsx", [["description", "priority"], ["Printer jams", "High"],
                                       ["VPN drops", "Low"]], edit=ranges)
    assert "D2" in _cells(book) and "E2" not in _cells(book)
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.ok and result.written_to == book, result.summary()
    cells = _cells(book)
    assert 't="array" ref="D2:F2"' in cells["D2"] and not {"E2", "F2", "E1", "F1"} & set(cells)
    assert "ticketId" in cells["I1"]  # after the merged A6:H6 too: nothing is written into a range


def test_reset_reads_the_header_row_from_bulksync_toml(tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import run_cli

    book = _report(tmp_path / "report.xlsx")
    (tmp_path / "bulksync.toml").write_text("header_row = 5\n")
    assert bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    cleared = run_cli("reset", str(book), "--yes")
    assert cleared.returncode == 0 and "6 cell(s) cleared" in cleared.stdout, cleared.stdout + cleared.stderr
    from bulksync.sheets.read import read_table

    table = read_table(book, header_row=5)
    assert all(table.frame[position].eq("").all() for position in range(3, 6))


def test_a_quote_inside_a_csv_cell_opens_nothing(tmp_path: Path) -> None:
    from tests.conftest import write

    sheet = write(tmp_path / "t.csv", 'description,requester\nMonitor 27" flickers,U073PBJPHGW\n'
                                      'second,U073PBJPHGW\n')
    report = bulksync.validate(sheet, form_id=FORM, channel=CHANNEL)
    assert report.valid and report.rows == 2
    long = write(tmp_path / "long.csv", 'description,requester\n"' + "log line\n" * 20_000 + '",U073PBJPHGW\n')
    assert bulksync.validate(long, form_id=FORM, channel=CHANNEL).valid


def _with_sheet_data(path: Path, rows_xml: str) -> Path:
    """A workbook whose first worksheet's sheetData is ``rows_xml``, as a program wrote it."""
    import re

    made = _book(path.with_name("made-" + path.name), [["x"]])
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb"<sheetData>.*</sheetData>", b"<sheetData>" + rows_xml.encode() + b"</sheetData>",
                              data, flags=re.S)
                data = re.sub(rb"<dimension [^>]*/>", b"", data)
            dst.writestr(item, data)
    return path


def _header(*names: str) -> str:
    return '<row r="1">' + "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{n}</t></is></c>'
                                   for i, n in enumerate(names)) + "</row>"


def test_a_formula_never_calculated_is_found_in_its_own_cell_and_never_sent_as_empty(tmp_path: Path) -> None:
    from bulksync.sheets.read import read_table

    # A styled empty cell just before it: the formula is D2's, not C2's.
    book = _with_sheet_data(tmp_path / "u.xlsx", _header("description", "requester", "notes", "assignee")
                            + '<row r="2"><c r="A2" t="inlineStr"><is><t>Printer</t></is></c>'
                              '<c r="B2" t="inlineStr"><is><t>U073PBJPHGW</t></is></c><c r="C2" s="0"/>'
                              '<c r="D2"><f>Users!B7</f></c></row>')
    report = bulksync.validate(book, form_id=FORM, channel=CHANNEL)
    assert [(p.row_number, p.column, p.code, p.value) for p in report.problems] == [
        (2, "assignee", "uncached-formula", "=Users!B7")]
    assert read_table(book).frame.loc[2].tolist() == ["Printer", "U073PBJPHGW", "", ""]  # read alone: as it was


def test_a_formula_whose_value_is_the_empty_string_is_calculated(tmp_path: Path) -> None:
    # =IF(…,"",…) filled down a template: <v></v> is a stored empty string, and the rows it
    # stands in stay blank rows; a formula never calculated in a column of the user's own too.
    book = _with_sheet_data(tmp_path / "e.xlsx", _header("description", "notes", "priority")
                            + '<row r="2"><c r="A2" t="inlineStr"><is><t>Printer</t></is></c>'
                              '<c r="B2" t="str"><f>IF(A2="","",A2)</f><v>Printer</v></c>'
                              '<c r="C2" t="str"><f>IF(A2="x","High","")</f><v></v></c></row>'
                            + "".join(f'<row r="{r}"><c r="B{r}" t="str"><f>IF(A{r}="","",A{r})</f><v></v></c>'
                                      f'<c r="C{r}"><f>A{r}</f></c></row>' for r in (3, 4)))
    report = bulksync.validate(book, form_id=FORM, channel=CHANNEL)
    # Rows 3 and 4: priority is a column bulksync reads, and its value there is unknown.
    assert [(p.row_number, p.column, p.code) for p in report.problems
            if p.code != "required"] == [(3, "priority", "uncached-formula"), (4, "priority", "uncached-formula")]
    assert not any(p.row_number == 2 for p in report.problems)
    book = _with_sheet_data(tmp_path / "own.xlsx", _header("description", "notes")
                            + '<row r="2"><c r="A2" t="inlineStr"><is><t>Printer</t></is></c></row>'
                            + "".join(f'<row r="{r}"><c r="B{r}"><f>A{r}</f></c></row>' for r in (3, 4)))
    report = bulksync.validate(book, form_id=FORM, channel=CHANNEL)
    assert report.valid and report.rows == 1


def test_cells_without_a_reference_are_placed_as_a_reader_places_them(tmp_path: Path) -> None:
    book = _with_sheet_data(tmp_path / "nr.xlsx",
                            "<row>" + "".join(f'<c t="inlineStr"><is><t>{n}</t></is></c>'
                                              for n in ("description", "priority", "assignee")) + "</row>"
                            '<row><c t="inlineStr"><is><t>Printer</t></is></c>'
                            '<c t="e"><f>1/0</f><v>#DIV/0!</v></c><c><f>Users!B7</f></c></row>')
    report = bulksync.validate(book, form_id=FORM, channel=CHANNEL)
    assert [(p.row_number, p.column, p.code) for p in report.problems] == [
        (2, "priority", "excel-error"), (2, "assignee", "uncached-formula")]


def test_a_long_styled_area_after_a_formula_reads_in_one_pass(tmp_path: Path) -> None:
    # Thousands of self-closing styled cells (a template's borders) after one formula: each
    # is passed over once (a search that started at each of them took minutes).
    from bulksync.sheets.package import _uncached

    rows = _header("description", "priority") + '<row r="2"><c r="A2"><f>ROW()</f><v>2</v></c></row>'
    rows += "".join(f'<row r="{r}">' + "".join(f'<c r="{chr(65 + c)}{r}" s="1"/>' for c in range(10)) + "</row>"
                    for r in range(3, 6000))
    assert _uncached(rows.encode(), plain=False) == {} == _uncached(rows.encode(), plain=True)
    book = _with_sheet_data(tmp_path / "styled.xlsx", rows + '<row r="6000"><c r="B6000"><f>A1</f></c></row>')
    from bulksync.sheets.read import read_table

    assert read_table(book).uncached == frozenset()  # B6000 is under priority, but nothing names it read


def test_reset_needs_only_the_sheet_and_leaves_the_users_formulas(tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import run_cli

    book = _with_sheet_data(tmp_path / "r.xlsx", _header("description", "ticketId", "syncStatus")
                            + '<row r="2"><c r="A2" t="inlineStr"><is><t>Printer</t></is></c>'
                              '<c r="B2"><f>VLOOKUP(A2,Old!A:B,2,0)</f></c>'
                              '<c r="C2" t="inlineStr"><is><t>created</t></is></c></row>')
    (tmp_path / "bulksync.toml").write_text('users = "missing-users.csv"\n')
    cleared = run_cli("reset", str(book), "--yes")
    assert cleared.returncode == 0 and "1 cell(s) cleared" in cleared.stdout, cleared.stdout + cleared.stderr
    assert "<f>VLOOKUP(A2,Old!A:B,2,0)</f>" in _cells(book)["B2"]


def test_a_header_row_left_as_it_was_after_a_row_is_inserted_above_creates_nothing(
        tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import run_cli, write

    sheet = write(tmp_path / "t.csv", "Quarterly report\nDescription\ndescription,priority\n"
                                      "Printer jam,High\nVPN flaky,Low\n")
    (tmp_path / "bulksync.toml").write_text(f'header_row = 3\nform_id = "{FORM}"\nchannel = "{CHANNEL}"\n')
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    assert run_cli("push", str(sheet), "-q", env=env).returncode == 0 and len(sandbox.tickets()) == 2
    sheet.write_bytes(b"Printed 2026-05-01\n" + sheet.read_bytes())
    before, sent = sheet.read_bytes(), len(sandbox.requests())
    again = run_cli("push", str(sheet), "-q", env=env)
    assert again.returncode == 2 and len(sandbox.requests()) == sent and sheet.read_bytes() == before
    assert "row 3 (--header-row) names fewer columns bulksync reads than row 4 does: give --header-row 4" \
        in again.stderr


def test_a_csv_of_old_mac_line_ends_with_blank_lines_above_its_header(tmp_path: Path) -> None:
    sheet = tmp_path / "cr.csv"
    sheet.write_bytes(b"Title\r\rdescription,priority\rPrinter jam,High\rVPN flaky,Low\r")
    report = bulksync.validate(sheet, form_id=FORM, channel=CHANNEL, header_row=3)
    assert report.valid and report.rows == 2
    from bulksync.sheets.read import read_table

    table = read_table(sheet, header_row=3)
    assert table.header == ("description", "priority") and table.frame.index.tolist() == [4, 5]
