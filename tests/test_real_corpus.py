"""Real files from public repositories (issue 18; tests/data/real/SOURCES.md says where each came
from, and its licence): what is sent, what is written, and that nothing else of the file changes."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import bulksync
from bulksync.sandbox import Sandbox
from bulksync.sheets.read import read_table
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli

REAL = Path(__file__).parent / "data" / "real"
OWN = ("ticketId", "ticketNumber", "syncStatus", "syncError")


def _copy(name: str, tmp_path: Path) -> Path:
    book = tmp_path / name
    shutil.copyfile(REAL / name, book)
    return book


def _mapping(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]+)(\d+)"[^>]*?(?:/>|>.*?</(?:\w+:)?c>)', re.S)


_EMPTY = re.compile(rb"<([\w:]+)([^<>]*?)/>")


def _cells(xml: bytes) -> dict[tuple[str, int], bytes]:
    """Cell reference → its XML (an empty element in one form: a worksheet that only the XML
    tree can write, such as one with prefixed elements, may come back with ``<v/>`` for
    ``<v></v>``; the same XML)."""
    return {(m.group(1).decode(), int(m.group(2))): _EMPTY.sub(rb"<\1\2></\1>", m.group(0))
            for m in _CELL.finditer(xml)}


def _but_ranges(xml: bytes) -> bytes:
    """A table part or workbook without what joining bulksync's columns changes: ranges,
    the table's column list and count, and the filter's defined name."""
    xml = re.sub(rb'\bref="[^"]*"', b'ref=""', xml)
    xml = re.sub(rb"<(\w+:)?tableColumns\b.*?</(\w+:)?tableColumns>", b"", xml, flags=re.S)
    return re.sub(rb'(name="_xlnm._FilterDatabase"[^>]*>)[^<]*', rb"\1", xml)


def assert_only_ours_changed(original: Path, written: Path, sheet: str | None = None,
                             header_row: int | None = None,
                             joined: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every part but the worksheet is byte for byte as it was, but for the ranges of the
    parts in ``joined`` (a table's, the filter's name: bulksync's columns joined them); in the
    worksheet, every cell that was there is as it was, and the new cells are bulksync's
    columns alone. Returns bulksync's columns as written (name → the data rows' cells)."""
    from bulksync.sheets.package import sheet_part

    table = read_table(written, sheet=sheet, header_row=header_row)
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(written) as b:
        part = sheet_part(original, a, table.format.sheet)  # type: ignore[union-attr]
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        for name in a.namelist():
            if name in joined:
                assert a.read(name) != b.read(name), f"{name} was expected to join bulksync's columns"
                assert _but_ranges(a.read(name)) == _but_ranges(b.read(name)), name
            elif name != part:
                assert a.read(name) == b.read(name), name
        before, after = _cells(a.read(part)), _cells(b.read(part))
    for ref, xml in before.items():
        assert after[ref] == xml, ref
    return {name: [] for name in OWN} | {
        name: table.frame[where].tolist() for name in OWN if (where := table.position(name)) is not None}


def _push(book: Path, sandbox: Sandbox, **options: object) -> bulksync.RunResult:
    return bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL, **options)


def test_strict_open_xml_excel(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("strict_ooxml.xlsx", tmp_path)
    result = _push(book, sandbox, sheet="Sheet1", mapping=_mapping(tmp_path, '[description]\ncolumns = ["test"]\n'),
                   skip_invalid=True)
    assert result.written_to == book, result.summary()
    assert [t["description"] for t in sandbox.tickets()] == ["test 2"]
    ours = assert_only_ours_changed(REAL / "strict_ooxml.xlsx", book, "Sheet1")
    assert ours["syncStatus"] == ["created", "invalid", "invalid", "invalid", "invalid"]
    assert ours["ticketId"][0] == sandbox.tickets()[0]["id"]
    with zipfile.ZipFile(book) as z:  # the new cells are in the Strict namespace, as the sheet is
        assert b'xmlns="http://purl.oclc.org/ooxml/spreadsheetml/main"' in z.read("xl/worksheets/sheet1.xml")


def test_backslash_part_names_and_absolute_targets(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("backslash_parts_abs_targets.xlsx", tmp_path)
    result = _push(book, sandbox, mapping=_mapping(tmp_path, '[description]\ncolumns = ["Program Name"]\n'),
                   skip_invalid=True)
    assert result.written_to == book and result.counts["created"] == len(sandbox.tickets()) > 0
    ours = assert_only_ours_changed(REAL / "backslash_parts_abs_targets.xlsx", book)
    assert sorted(i for i in ours["ticketId"] if i) == sorted(t["id"] for t in sandbox.tickets())
    with zipfile.ZipFile(book) as z:
        assert "xl\\worksheets\\sheet0.xml" in z.namelist()


def test_an_unnumbered_sheet_part_with_prefixed_elements(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("unnumbered_sheet_part.xlsx", tmp_path)
    result = _push(book, sandbox, mapping=_mapping(tmp_path, '[description]\ncolumns = ["Destination", "Dial Code"]\n'))
    assert result.ok and result.written_to == book, result.summary()
    assert [t["description"] for t in sandbox.tickets()] == ["Abkhazia - Fixed\n\n7840"]
    ours = assert_only_ours_changed(REAL / "unnumbered_sheet_part.xlsx", book)
    assert ours["syncStatus"] == ["created"]
    with zipfile.ZipFile(book) as z:
        assert b'<x:c r="I1"' in z.read("xl/worksheets/sheet.xml")  # written as the sheet writes its cells


def test_a_chart_sheet_beside_the_worksheets(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("chartsheet.xlsx", tmp_path)
    chart = run_cli("validate", str(book), "--sheet", "Chart1")
    assert chart.returncode == 2 and "sheet 'Chart1' is a chartsheet, not a worksheet of cells: name another " \
        "with --sheet" in chart.stderr
    result = _push(book, sandbox, sheet="Sheet1", mapping=_mapping(tmp_path, '[description]\ncolumns = ["soap"]\n'))
    assert result.ok and [t["description"] for t in sandbox.tickets()] == ["shampoo"]
    assert assert_only_ours_changed(REAL / "chartsheet.xlsx", book, "Sheet1")["syncStatus"] == ["created"]


def test_an_excel_4_macro_sheet_does_not_stop_the_named_sheet(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("xlm_macrosheet.xlsm", tmp_path)
    (tmp_path / "more.xlsm").write_bytes(book.read_bytes())
    table = read_table(book, sheet="Sheet B")
    assert table.header == ("Content of Sheet B",) and table.format.sheet_names == ("Sheet A", "Sheet B")  # type: ignore[union-attr]
    macro = run_cli("validate", str(book), "--sheet", "Macro Sheet")
    assert macro.returncode == 2 and "sheet 'Macro Sheet' is a xlMacrosheet, not a worksheet of cells" in macro.stderr
    missing = run_cli("validate", str(book), "--sheet", "Macro1")
    assert missing.returncode == 2 and ("has no sheet named 'Macro1'; its sheets are: 'Sheet A', 'Sheet B', "
                                        "'Macro Sheet'") in missing.stderr
    result = _push(book, sandbox, sheet="Sheet B", mapping=_mapping(tmp_path, '[description]\ncolumns = ["Content of Sheet B"]\n'))
    assert result.ok and sandbox.requests() == []  # a header alone: nothing to send, nothing written
    assert book.read_bytes() == (REAL / "xlm_macrosheet.xlsm").read_bytes()


def test_a_libreoffice_5_dimension_of_whole_rows(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("dimension_rows_only_lo5.xlsx", tmp_path)
    result = _push(book, sandbox, mapping=_mapping(tmp_path, '[description]\ncolumns = ["Name"]\n'))
    assert result.ok and result.written_to == book, result.summary()
    names = [t["description"] for t in sandbox.tickets()]
    ours = assert_only_ours_changed(REAL / "dimension_rows_only_lo5.xlsx", book)
    assert len(names) == 3 and ours["syncStatus"] == ["created"] * 3
    with zipfile.ZipFile(book) as z:  # whole rows 1 to 4: the new columns are inside it as it is
        assert b'<dimension ref="1:4"/>' in z.read("xl/worksheets/sheet1.xml")


def test_an_excel_autofilter_hiding_most_rows(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("autofilter_hidden.xlsx", tmp_path)
    mapping = _mapping(tmp_path, '[description]\ncolumns = ["Country", "Year", "Quarter"]\n')
    planned = run_cli("plan", str(book), "--mapping", mapping, "--form-id", FORM, "--channel", CHANNEL,
                      env={"SUPTASK_API_URL": sandbox.url})
    assert "5 to create" in planned.stdout, planned.stdout + planned.stderr
    assert "51 row(s) hidden by the sheet's filter are left out" in planned.stderr
    result = _push(book, sandbox, mapping=mapping)
    assert result.ok and len(sandbox.tickets()) == 5
    table = read_table(REAL / "autofilter_hidden.xlsx")
    shown = [r for r in table.frame.index if r not in table.hidden]
    ours = assert_only_ours_changed(REAL / "autofilter_hidden.xlsx", book, joined=("xl/workbook.xml",))
    assert [ours["syncStatus"][r - 2] for r in shown] == ["created"] * 5
    assert sum(1 for s in ours["syncStatus"] if s) == 5  # the hidden rows are left as they were


def test_excel_error_cells_and_array_formulas(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("errors_array_formulas.xlsx", tmp_path)
    mapping = _mapping(tmp_path, '[description]\ncolumns = ["Scenario"]\n[columns]\npriority = "Live result"\n')
    report = bulksync.validate(book, mapping=mapping, form_id=FORM, channel=CHANNEL, header_row=4)
    errors = [(p.row_number, p.column, p.value) for p in report.problems if p.code == "excel-error"]
    # Column C only: the errors in column E are in a column the mapping does not read.
    table = read_table(book, header_row=4)
    assert errors == [(r, "Live result (→ priority)", table.frame.at[r, 2]) for r in (14, 16, 52)], report.lines()
    assert [e[2] for e in errors] == ["#NAME?", "#DIV/0!", "#N/A"]
    assert not report.sheet_invalid
    result = _push(book, sandbox, mapping=mapping, header_row=4, skip_invalid=True)
    assert result.written_to == book and len(sandbox.tickets()) == result.counts["created"] > 0
    assert not any(str(t.get("priority", "")).startswith("#") for t in sandbox.tickets())
    ours = assert_only_ours_changed(REAL / "errors_array_formulas.xlsx", book, header_row=4)
    status = dict(zip(table.frame.index, ours["syncStatus"], strict=True))
    assert status[14] == status[16] == status[52] == "invalid" and status[6] == "created"
    with zipfile.ZipFile(book) as z:  # the array formulas' ranges are where they were
        assert z.read("xl/worksheets/sheet1.xml").count(b't="array"') == 12


def test_a_title_block_above_the_header_on_row_6(tmp_path: Path, sandbox: Sandbox) -> None:
    book = _copy("title_block_header_row6.xlsx", tmp_path)
    mapping = _mapping(tmp_path, '[description]\ncolumns = ["FirstName", "LastName"]\n')
    refused = run_cli("push", str(book), "--mapping", mapping, "--form-id", FORM, "--channel", CHANNEL,
                      env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert refused.returncode == 2 and sandbox.requests() == []
    assert "row 1 names no column bulksync reads (a title?), row 6 does: give --header-row 6" in refused.stderr
    result = _push(book, sandbox, mapping=mapping, header_row=6)
    assert result.ok, result.summary()
    # Sent at once (the default concurrency), the three creates may be answered in any order.
    assert sorted(t["description"] for t in sandbox.tickets()) == ["Hans\n\nFricker", "John\n\nMeier",
                                                                  "Peter\n\nMüller"]
    ours = assert_only_ours_changed(REAL / "title_block_header_row6.xlsx", book, header_row=6,
                                    joined=("xl/tables/table1.xml",))
    header = read_table(book, header_row=6).header
    assert header[:4] == ("User Id", "FirstName", "LastName", "Date") and all(name in header[4:] for name in OWN[:3])
    assert ours["syncStatus"] == ["created"] * 3


def test_libreoffice_formula_results_as_strings(tmp_path: Path, sandbox: Sandbox) -> None:
    # LibreOffice 6 writes a formula's text result as t="str": read as Excel shows it.
    table = read_table(REAL / "lo6_str_formula.xlsx")
    assert "Something: 30" in table.frame.to_numpy().ravel().tolist()


def test_libreoffice_formulas_never_calculated_are_not_read_as_empty(tmp_path: Path, sandbox: Sandbox) -> None:
    # LibreOffice 4 wrote the results of row 38's formulas (=C37 …) as empty inline strings:
    # Excel shows a value there, bulksync cannot calculate it, so it is never sent as empty.
    book = _copy("lo4_inlinestr_formula.xlsx", tmp_path)
    mapping = _mapping(tmp_path, '[description]\ncolumns = ["General"]\n[columns]\npriority = "-1.2"\n')
    report = bulksync.validate(book, mapping=mapping, form_id=FORM, channel=CHANNEL)
    assert [(p.row_number, p.code, p.value) for p in report.problems] == [(38, "uncached-formula", "=C37")]
    assert report.problems[0].message.startswith("holds a formula (=C37) whose value was never saved")
    result = _push(book, sandbox, mapping=mapping, skip_invalid=True)
    assert result.counts["created"] == 36 and result.counts["invalid"] == 1
    ours = assert_only_ours_changed(REAL / "lo4_inlinestr_formula.xlsx", book)
    assert ours["syncStatus"][-1] == "invalid"
    # A column the run does not read may hold such formulas: they are nobody's business.
    other = _mapping(tmp_path, '[description]\ncolumns = ["General"]\n')
    assert bulksync.validate(book, mapping=other, form_id=FORM, channel=CHANNEL).valid


def test_error_cells_of_a_prefixed_worksheet(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "prefixed.xlsx"
    with zipfile.ZipFile(REAL / "unnumbered_sheet_part.xlsx") as src, zipfile.ZipFile(book, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet.xml":
                data, count = re.subn(rb'<x:c r="D2"[^>]*?(?:/>|>.*?</x:c>)',
                                      b'<x:c r="D2" t="e"><x:f>VLOOKUP(A2,Z:Z,2,0)</x:f><x:v>#N/A</x:v></x:c>', data)
                assert count == 1
            dst.writestr(item, data)
    mapping = _mapping(tmp_path, '[description]\ncolumns = ["Destination"]\n[columns]\nstatus = "Changes"\n')
    report = bulksync.validate(book, mapping=mapping, form_id=FORM, channel=CHANNEL)
    assert [(p.row_number, p.code, p.value) for p in report.problems] == [(2, "excel-error", "#N/A")]
    # A column --set fills is not read from the sheet: its error is nobody's business.
    assert bulksync.validate(book, mapping=mapping, form_id=FORM, channel=CHANNEL, set={"status": "Open"}).valid
