"""Round trip: push, edit, push again — only what changed is sent, the file comes back as it was."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import bulksync
from bulksync.sandbox import Sandbox
from bulksync.sheets.read import read_table
from tests.conftest import CHANNEL, FIELD, FORM, TOKEN, run_cli, write

OTHER = "d3c9f1a2-7b64-4e08-9a5d-2c6e8b1f3a70"
DATA = Path(__file__).parent / "data"
DEFAULTS = {"form_id": FORM, "channel": CHANNEL}
SHEET = (f"description,priority,assignee,tags,customField_{FIELD},customField_{OTHER}\n"
         "Printer jams,High,U05KQ2M8Z1A,\"hardware, printer\",IT,Gold\n"
         "VPN drops,Medium,,network,IT,Silver\n"
         "Wrong VAT,Low,U02R4T6Y8U0,billing,Billing,Gold\n")


def _patches(sb: Sandbox) -> list[tuple[str, object]]:
    return [(r["path"].rsplit("/", 1)[1], r["body"]) for r in sb.requests() if r["method"] == "PATCH"]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def pushed(tmp_path: Path, sandbox: Sandbox, api: dict[str, str]) -> Path:
    path = write(tmp_path / "t.csv", SHEET)
    assert bulksync.push(path, **DEFAULTS, **api).counts["created"] == 3
    return path


def _ids(path: Path) -> list[str]:
    table = read_table(path)
    position = table.position("ticketId")
    assert position is not None
    return table.frame[position].tolist()


def test_an_unchanged_push_sends_nothing(pushed: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    before = len(sandbox.requests())
    result = bulksync.push(pushed, **DEFAULTS, **api)
    assert result.requests == 0 and len(sandbox.requests()) == before
    assert (result.counts["unchanged"], result.ok) == (3, True)


def test_two_edited_cells_send_two_patches_with_only_those_fields(
        pushed: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    ids = _ids(pushed)
    _edit(pushed, "VPN drops,Medium", "VPN drops,High")
    _edit(pushed, "Billing,Gold", "Billing,Platinum")  # one custom field of two
    result = bulksync.push(pushed, **DEFAULTS, **api)
    assert (result.counts["updated"], result.counts["unchanged"], result.requests) == (2, 1, 2)
    assert sorted(_patches(sandbox), key=str) == sorted([
        (ids[1], {"priority": "High"}),
        (ids[2], {"customFields": [{"fieldId": OTHER, "value": "Platinum"}]}),
    ], key=str)
    tickets = {t["id"]: t for t in sandbox.tickets()}
    assert {cf["fieldId"]: cf["value"] for cf in tickets[ids[2]]["customFields"]} == {
        FIELD: "Billing", OTHER: "Platinum"}


def test_emptied_cells_clear_the_field(pushed: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    ids = _ids(pushed)
    _edit(pushed, "Printer jams,High,U05KQ2M8Z1A,\"hardware, printer\"", "Printer jams,,,")
    bulksync.push(pushed, **DEFAULTS, **api)
    assert _patches(sandbox) == [(ids[0], {"priority": None, "assignee": None, "tags": []})]
    ticket = next(t for t in sandbox.tickets() if t["id"] == ids[0])
    assert (ticket["priority"], ticket["assignee"], ticket["tags"]) == (None, None, [])


def test_a_field_the_api_cannot_empty_is_a_validation_error(
        pushed: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    _edit(pushed, "Wrong VAT,", ",")
    before, count = pushed.read_bytes(), len(sandbox.requests())
    result = run_cli("push", str(pushed), "--form-id", FORM, "--channel", CHANNEL,
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 1
    assert (f"{pushed}: row 4, column description: was 'Wrong VAT' and is now empty, but the API "
            "cannot empty description; put a value back") in result.stderr
    assert pushed.read_bytes() == before and len(sandbox.requests()) == count
    assert "row 4, column description" in run_cli("validate", str(pushed), "--form-id", FORM,
                                                   "--channel", CHANNEL,
                                                   env={"SUPTASK_API_URL": sandbox.url}).stdout


def test_plan_shows_old_and_new(pushed: Path, sandbox: Sandbox) -> None:
    ids = _ids(pushed)
    _edit(pushed, "VPN drops,Medium", "VPN drops,High")
    _edit(pushed, "Printer jams,High,U05KQ2M8Z1A", "Printer jams,High,")
    # No token given: the state of the URL's one known token is used.
    result = run_cli("plan", str(pushed), "--form-id", FORM, "--channel", CHANNEL,
                     env={"SUPTASK_API_URL": sandbox.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"row 2: PATCH /ticket/{ids[0]}",
        '    assignee: "U05KQ2M8Z1A" → (empty)',
        f"row 3: PATCH /ticket/{ids[1]}",
        '    priority: "Medium" → "High"',
        f"{pushed}: 0 to create, 2 to update, 1 unchanged, 0 with nothing to send, 0 invalid (2 requests)",
    ]


def test_force_sends_every_row_in_full(pushed: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    result = bulksync.push(pushed, force=True, **DEFAULTS, **api)
    assert (result.counts["updated"], result.requests) == (3, 3)
    bodies = [body for _, body in _patches(sandbox)]
    assert {"description": "VPN drops", "priority": "Medium", "tags": ["network"],
            "customFields": [{"fieldId": FIELD, "value": "IT"},
                             {"fieldId": OTHER, "value": "Silver"}]} in bodies


def test_set_values_count_as_sent_and_absent_columns_are_left_alone(
        pushed: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    assert bulksync.push(pushed, set={"status": "Closed"}, **api).counts["updated"] == 3
    again = bulksync.push(pushed, set={"status": "Closed"}, **api)
    assert again.requests == 0
    # Without --set the sheet has no status column: status is not this sheet's to clear.
    assert bulksync.push(pushed, **DEFAULTS, **api).requests == 0


def test_without_a_baseline_rows_send_their_cells(tmp_path: Path, pushed: Path, sandbox: Sandbox,
                                                  api: dict[str, str]) -> None:
    ids = _ids(pushed)
    close = write(tmp_path / "close.csv", "ticketId,priority\n" + "".join(f"{i},Low\n" for i in ids[:2]))
    result = bulksync.push(close, **api)
    assert result.counts["updated"] == 2
    assert sorted(_patches(sandbox), key=str) == sorted([(ids[0], {"priority": "Low"}),
                                                         (ids[1], {"priority": "Low"})], key=str)


# -- fidelity ------------------------------------------------------------------

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _parts(path: Path) -> list[tuple[str, int, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(i.filename, i.compress_type, z.read(i)) for i in z.infolist()]


def _stored(path: Path) -> dict[str, tuple[object, ...]]:
    """Each part as the zip stores it: its entry's fields and its compressed bytes."""
    out: dict[str, tuple[object, ...]] = {}
    with zipfile.ZipFile(path) as z, path.open("rb") as raw:
        for i in z.infolist():
            raw.seek(i.header_offset + 26)
            name_length, extra_length = int.from_bytes(raw.read(2), "little"), int.from_bytes(raw.read(2), "little")
            raw.seek(i.header_offset + 30 + name_length + extra_length)
            out[i.filename] = (i.date_time, i.compress_type, i.CRC, i.compress_size, i.file_size,
                               i.flag_bits, i.external_attr, raw.read(i.compress_size))
    return out


def _without_columns(xml: bytes, letters: set[str]) -> tuple[bytes, list[bytes]]:
    """(the worksheet with the cells in ``letters`` and the dimension/spans removed, its rows)."""
    root = etree.fromstring(xml)
    for cell in root.iter(f"{NS}c"):
        if re.match(r"[A-Z]+", cell.get("r", "")).group() in letters:  # type: ignore[union-attr]
            cell.getparent().remove(cell)
    for row in root.iter(f"{NS}row"):
        row.attrib.pop("spans", None)
    dimension = root.find(f"{NS}dimension")
    if dimension is not None:
        dimension.set("ref", "")
    return etree.tostring(root, method="c14n"), [etree.tostring(r, method="c14n") for r in root.iter(f"{NS}row")]


@pytest.mark.parametrize("name", ["rich.xlsx", "rich.xlsm"])
def test_a_rich_workbook_keeps_every_other_part_byte_identical(
        tmp_path: Path, sandbox: Sandbox, api: dict[str, str], name: str) -> None:
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    before = _parts(path)
    result = bulksync.push(path, **DEFAULTS, **api)
    assert result.counts["created"] == 3, result.summary()
    after = _parts(path)
    assert [(n, c) for n, c, _ in after] == [(n, c) for n, c, _ in before]  # same parts, same order
    changed = [n for (n, _, a), (_, _, b) in zip(before, after, strict=True) if a != b]
    assert changed == ["xl/worksheets/sheet1.xml"]
    # The other parts are copied as stored, not re-deflated: the same compressed bytes,
    # timestamps, CRCs and flags.
    stored_before, stored_after = _stored(DATA / name), _stored(path)
    for part in stored_before:
        if part != "xl/worksheets/sheet1.xml":
            assert stored_after[part] == stored_before[part], part

    old_xml = dict((n, d) for n, _, d in before)["xl/worksheets/sheet1.xml"]
    new_xml = dict((n, d) for n, _, d in after)["xl/worksheets/sheet1.xml"]
    # Outside bulksync's three new columns (H, I, J) the worksheet is the same, to the attribute.
    assert _without_columns(new_xml, {"H", "I", "J"}) == _without_columns(old_xml, set())
    # Prefixes as written (mc:Ignorable names them), cached formula values, header style.
    assert new_xml.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<worksheet ')
    assert b'mc:Ignorable="x14ac xr"' in new_xml and b'x14ac:dyDescent="0.25"' in new_xml
    assert b"<f>E2*80</f><v>160</v>" in new_xml
    assert b'<c r="H1" s="1" t="inlineStr"><is><t>ticketId</t></is></c>' in new_xml
    assert b'<dimension ref="A1:J4"/>' in new_xml
    table = read_table(path)
    assert table.header[7:] == ("ticketId", "ticketNumber", "syncStatus")
    assert table.frame[5].tolist() == ["160", "400", "80"]


def test_owned_cells_never_become_formulas(tmp_path: Path) -> None:
    from bulksync.sheets.write_xlsx import write_xlsx

    path = tmp_path / "t.xlsx"
    shutil.copy(DATA / "rich.xlsx", path)
    write_xlsx(read_table(path), {2: {"syncStatus": "failed", "syncError": '=HYPERLINK("http://x","y")'},
                                  3: {"syncStatus": "failed", "syncError": "+1", "ticketNumber": "-3"}},
               columns=("ticketNumber", "syncStatus", "syncError"))
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert '<c r="J2" t="inlineStr"><is><t>=HYPERLINK("http://x","y")</t></is></c>' in xml
    assert '<c r="J3" t="inlineStr"><is><t>+1</t></is></c>' in xml
    assert '<c r="H3" t="inlineStr"><is><t>-3</t></is></c>' in xml  # not a number: text


def test_an_edit_in_the_workbook_sends_one_patch(tmp_path: Path, sandbox: Sandbox,
                                                 api: dict[str, str]) -> None:
    path = tmp_path / "t.xlsx"
    shutil.copy(DATA / "rich.xlsx", path)
    bulksync.push(path, **DEFAULTS, **api)
    # As Excel would save an edited cell: the same package, one value changed.
    parts = _parts(path)
    with zipfile.ZipFile(path, "w") as z:
        for name, compression, data in parts:
            if name == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<t>Medium</t>", b"<t>CRITICAL</t>")
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    result = bulksync.push(path, **DEFAULTS, **api)
    assert (result.counts["updated"], result.counts["unchanged"]) == (1, 2)
    assert [body for _, body in _patches(sandbox)] == [{"priority": "CRITICAL"}]


def test_a_semicolon_csv_with_bom_and_crlf_keeps_every_byte(tmp_path: Path, sandbox: Sandbox,
                                                            api: dict[str, str]) -> None:
    original = ('"description";"priority";"notes"\r\n'
                '"Printer jams";"High";"call ""Bob""; twice"\r\n'
                'VPN drops;Medium;"two\r\nlines"\r\n'
                '\r\n'
                '"Wrong VAT";Low;\r\n')
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf" + original.encode("utf-8"))
    result = bulksync.push(path, **DEFAULTS, **api)
    assert result.ok
    ids = {row: r.ticket_id for row, r in result.results.items()}
    nums = {row: r.ticket_number for row, r in result.results.items()}
    expected = ('"description";"priority";"notes";ticketId;ticketNumber;syncStatus\r\n'
                f'"Printer jams";"High";"call ""Bob""; twice";{ids[2]};{nums[2]};created\r\n'
                f'VPN drops;Medium;"two\r\nlines";{ids[3]};{nums[3]};created\r\n'
                '\r\n'
                f'"Wrong VAT";Low;;{ids[5]};{nums[5]};created\r\n')
    assert path.read_bytes() == b"\xef\xbb\xbf" + expected.encode("utf-8")
    # And a second push of the unchanged file sends nothing and changes only syncStatus.
    again = bulksync.push(path, **DEFAULTS, **api)
    assert again.requests == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + expected.replace("created", "unchanged").encode("utf-8")


def _sheet_xml(name: str) -> bytes:
    with zipfile.ZipFile(DATA / name) as z:
        return z.read("xl/worksheets/sheet1.xml")


HEADER = ("description", "priority", "status", "assignee", "hours", "cost", "notes")
CELLS = {2: {"ticketId": "a-1", "ticketNumber": "7", "syncStatus": "created"},
         4: {"ticketId": "a-3", "ticketNumber": "9", "syncStatus": "created"}}
OWNED = ("ticketId", "ticketNumber", "syncStatus")


def test_the_text_path_and_the_tree_path_write_the_same_cells() -> None:
    from bulksync.sheets.write_xlsx import _patch_text, patch_sheet

    xml = _sheet_xml("rich.xlsx")
    fast = _patch_text(xml, HEADER, CELLS, columns=OWNED)
    assert fast is not None  # an Excel-like worksheet takes the text path
    # The same sheet with its main namespace under a prefix (as some libraries write it)
    # must take the tree path, and come out with the same cells.
    prefixed = re.sub(rb"<(/?)(worksheet|sheetData|row|c|v|f|is|t|dimension)\b", rb"<\1x:\2", xml)
    prefixed = prefixed.replace(b'<x:worksheet xmlns="', b'<x:worksheet xmlns:x="')
    assert _patch_text(prefixed, HEADER, CELLS, columns=OWNED) is None
    slow = patch_sheet(Path("t.xlsx"), "sheet1.xml", prefixed, HEADER, cells=CELLS, columns=OWNED)

    def cells(data: bytes) -> dict[str, str]:
        root = etree.fromstring(data)
        return {c.get("r"): "".join(c.itertext()) for c in root.iter(f"{NS}c")}

    assert cells(fast) == cells(slow)
    assert cells(fast)["H2"] == "a-1" and cells(fast)["I4"] == "9" and cells(fast)["J1"] == "syncStatus"
    assert b'<x:c r="H1" s="1" t="inlineStr">' in slow


def test_existing_owned_cells_are_replaced_in_place(tmp_path: Path) -> None:
    from bulksync.sheets.write_xlsx import _patch_text

    xml = _sheet_xml("rich.xlsx")
    once = _patch_text(xml, HEADER, CELLS, columns=OWNED)
    assert once is not None
    twice = _patch_text(once, (*HEADER, *OWNED), {2: {"syncStatus": "unchanged"}}, columns=OWNED)
    assert twice is not None
    assert twice.count(b'r="J2"') == 1 and b"<t>unchanged</t>" in twice
    assert twice.replace(b"<t>unchanged</t>", b"<t>created</t>") == once


# A worksheet with what the text path must meet: self-closing rows (one to write, one not),
# a row whose last cell is rich text (a <color> inside it), a row with bulksync's cell
# already there and a user's cell after it, and a row with an owned cell to be emptied.
ODD_SHEET = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<dimension ref="A1:C6"/><sheetData>'
    b'<row r="1" spans="1:3"><c r="A1" t="inlineStr"><is><t>description</t></is></c>'
    b'<c r="B1" s="2" t="inlineStr"><is><t>syncStatus</t></is></c>'
    b'<c r="C1" t="inlineStr"><is><t>notes</t></is></c></row>'
    b'<row r="2" spans="1:3"/><row r="3" spans="1:3" ht="20" customHeight="1"/>'
    b'<row r="4" spans="1:3"><c r="A4" t="inlineStr"><is><r><rPr><color rgb="FFFF0000"/></rPr>'
    b'<t>red</t></r></is></c></row>'
    b'<row r="5" spans="1:3"><c r="A5" t="inlineStr"><is><t>x</t></is></c>'
    b'<c r="B5" t="inlineStr"><is><t>failed</t></is></c><c r="C5"><v>7</v></c></row>'
    b'<row r="6"><c r="A6" t="inlineStr"><is><t>y</t></is></c><c r="B6" s="3"><v>1</v></c></row>'
    b'</sheetData></worksheet>')


@pytest.mark.parametrize("cells", [
    {2: {"syncStatus": "created", "ticketId": "t-2"}, 4: {"syncStatus": "updated"},
     5: {"syncStatus": "updated", "ticketId": "t-5"}, 6: {"syncStatus": ""}},
    {4: {"syncStatus": "failed", "ticketId": ""}},
    dict.fromkeys([2, 4, 5, 6], {"syncStatus": "updated"}),  # one mapping shared, as owned_cells does
    {5: {"syncStatus": 'HTTP 400: <b>"a" & b</b> \x01', "ticketId": ""}},  # escaped as lxml does
])
def test_the_text_path_meets_odd_rows_as_the_tree_path_does(cells: dict[int, dict[str, str]]) -> None:
    from bulksync.sheets.write_xlsx import _patch_text, patch_sheet

    header = ("description", "syncStatus", "notes")
    owned = ("ticketId", "syncStatus")
    fast = _patch_text(ODD_SHEET, header, cells, columns=owned)
    assert fast is not None
    # The tree path, forced by a prefix on the main namespace, is the reference.
    prefixed = re.sub(rb"<(/?)(worksheet|sheetData|row|c|v|is|t|r|rPr|color|dimension)\b", rb"<\1x:\2",
                      ODD_SHEET).replace(b'<x:worksheet xmlns="', b'<x:worksheet xmlns:x="')
    slow = patch_sheet(Path("t.xlsx"), "sheet1.xml", prefixed, header, cells=cells, columns=owned)

    def cells_of(data: bytes) -> dict[str, tuple[str, str | None]]:
        root = etree.fromstring(data)
        return {c.get("r"): ("".join(c.itertext()), c.get("s")) for c in root.iter(f"{NS}c")}

    assert cells_of(fast) == cells_of(slow)
    got = cells_of(fast)
    for row, values in cells.items():
        assert got.get(f"B{row}", ("", None))[0] == values["syncStatus"].replace("\x01", "\ufffd")
    assert got["C5"] == ("7", None)  # the user's cell after bulksync's stays
    if "ticketId" in cells.get(2, {}):
        assert got["D2"][0] == "t-2" and got["D1"][0] == "ticketId"
        assert got["B6"] == ("", "3")  # emptied, its style kept
        assert b'<row r="3" spans="1:3" ht="20" customHeight="1"/>' in fast  # untouched
    etree.fromstring(fast)  # well-formed


def test_a_sheet_checked_at_once_is_patched_as_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """When no cell is right of the new columns, rows are not looked at one by one; same bytes."""
    from bulksync.sheets import write_xlsx

    sheet = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             b'<dimension ref="A1:B4"/><sheetData>'
             b'<row r="1" spans="1:2"><c r="A1" t="inlineStr"><is><t>description</t></is></c>'
             b'<c r="B1" t="inlineStr"><is><t>notes</t></is></c></row>'
             + b"".join(b'<row r="%d" spans="1:2"><c r="A%d" t="inlineStr"><is><t>x</t></is></c>'
                        b'<c r="B%d"><v>%d</v></c></row>' % (n, n, n, n) for n in (2, 3, 4))
             + b"</sheetData></worksheet>")
    header, owned = ("description", "notes"), ("ticketId", "syncStatus")
    cells = {2: {"syncStatus": "updated"}, 3: {"syncStatus": "created", "ticketId": "t-3"},
             4: {"syncStatus": "failed"}}
    columns_used = write_xlsx._columns_used
    assert columns_used(sheet) == 2
    last_column = write_xlsx._last_column

    def not_called(content: bytes) -> int:
        raise AssertionError("a row was looked at")

    monkeypatch.setattr(write_xlsx, "_last_column", not_called)
    at_once = write_xlsx._patch_text(sheet, header, cells, columns=owned)
    monkeypatch.setattr(write_xlsx, "_last_column", last_column)
    monkeypatch.setattr(write_xlsx, "_columns_used", lambda body: None)
    one_by_one = write_xlsx._patch_text(sheet, header, cells, columns=owned)
    assert at_once is not None and at_once == one_by_one
    assert b'<row r="3" spans="1:4">' in at_once and b'<c r="C3" t="inlineStr"><is><t>t-3</t>' in at_once
    # A cell right of the new columns, or one without its reference first, means: row by row.
    assert columns_used(sheet.replace(b'<c r="B3">', b'<c r="F3">')) == 6
    assert columns_used(sheet.replace(b'<c r="B3">', b'<c s="1" r="B3">')) is None


def test_the_stored_parts_check_sees_a_re_deflated_copy(tmp_path: Path) -> None:
    """What the byte-identical check above compares changes when a zip is written anew."""
    copy = tmp_path / "copy.xlsx"
    with zipfile.ZipFile(DATA / "rich.xlsx") as src, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED,
                                                                     compresslevel=1) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
    before, after = _stored(DATA / "rich.xlsx"), _stored(copy)
    assert set(before) == set(after) and any(before[n] != after[n] for n in before)
