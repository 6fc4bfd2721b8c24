"""push end to end over real loopback HTTP against the sandbox."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

import bulksync
from bulksync.sandbox import Sandbox
from bulksync.sheets.read import read_table
from tests.conftest import CHANNEL, FIELD, FORM, TOKEN, write

SHEET = (
    f"description,priority,tags,customField_{FIELD},notes\n"
    "Printer jams on floor 3,High,\"hardware, printer\",IT,call Bob\n"
    "VPN drops every 10 minutes,,network,,\n"
    "Invoice shows the wrong VAT,Low,,Billing,\n"
)


def _bodies(sb: Sandbox) -> list[tuple[str, str, object]]:
    return [(r["method"], r["path"], r["body"]) for r in sb.requests()]


def test_creates_send_exact_payloads_and_ids_land_on_their_rows(
        tmp_path: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    path = write(tmp_path / "t.csv", SHEET)
    result = bulksync.push(path, form_id=FORM, channel=CHANNEL, concurrency=3, **api)
    assert result.counts["created"] == 3 and result.ok and result.requests == 3
    sent = sorted(_bodies(sandbox), key=lambda r: str(r[2]))
    assert sent == sorted([
        ("POST", "/api/v2/public/ticket", {
            "description": "Printer jams on floor 3", "priority": "High",
            "requesterChannel": CHANNEL, "tags": ["hardware", "printer"], "formId": FORM,
            "customFields": [{"fieldId": FIELD, "value": "IT"}]}),
        ("POST", "/api/v2/public/ticket", {
            "description": "VPN drops every 10 minutes", "requesterChannel": CHANNEL,
            "tags": ["network"], "formId": FORM}),
        ("POST", "/api/v2/public/ticket", {
            "description": "Invoice shows the wrong VAT", "priority": "Low",
            "requesterChannel": CHANNEL, "formId": FORM,
            "customFields": [{"fieldId": FIELD, "value": "Billing"}]}),
    ], key=lambda r: str(r[2]))
    # Each row holds the ID of the ticket made from that row, whatever order the answers came in.
    by_id = {t["id"]: t for t in sandbox.tickets()}
    table = read_table(path)
    header = list(table.header)
    assert header == ["description", "priority", "tags", f"customField_{FIELD}", "notes",
                      "ticketId", "ticketNumber", "syncStatus"]
    for _, row in table.frame.iterrows():
        ticket = by_id[row[5]]
        assert ticket["description"] == row[0]
        assert str(ticket["ticketNumber"]) == row[6]
        assert row[7] == "created"


def test_a_second_push_updates_and_never_duplicates(
        tmp_path: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    path = write(tmp_path / "t.csv", SHEET)
    bulksync.push(path, form_id=FORM, channel=CHANNEL, **api)
    path.write_text(path.read_text().replace("VPN drops every 10 minutes,,", "VPN drops every 10 minutes,Low,"))
    second = bulksync.push(path, form_id=FORM, channel=CHANNEL, **api)
    assert (second.counts["created"], second.counts["updated"], second.counts["unchanged"]) == (0, 1, 2)
    assert len(sandbox.tickets()) == 3
    (patch,) = [r for r in sandbox.requests() if r["method"] == "PATCH"]
    assert patch["body"] == {"priority": "Low"}
    assert read_table(path).frame[7].tolist() == ["unchanged", "updated", "unchanged"]


@pytest.mark.parametrize("shape", ["observed", "documented"])
def test_both_create_answer_shapes(tmp_path: Path, shape: str) -> None:
    with Sandbox(token=TOKEN, create_shape=shape) as sb:  # type: ignore[arg-type]
        path = write(tmp_path / "t.csv", "description\nhello\n")
        result = bulksync.push(path, form_id=FORM, channel=CHANNEL, token=TOKEN, api_url=sb.url)
        (ticket,) = sb.tickets()
    assert result.results[2].ticket_id == ticket["id"]
    expected_number = 1 if shape == "observed" else None
    assert result.results[2].ticket_number == expected_number
    written = read_table(path)
    assert ("ticketNumber" in written.header) == (shape == "observed")


@pytest.mark.parametrize(("encoding", "prefix", "delimiter", "newline"), [
    ("utf-8", b"\xef\xbb\xbf", ";", "\r\n"),
    ("utf-16-le", b"\xff\xfe", "\t", "\r\n"),
    ("cp1252", b"", "|", "\n"),
])
def test_csv_keeps_encoding_bom_delimiter_and_line_ends(
        tmp_path: Path, sandbox: Sandbox, api: dict[str, str], encoding: str, prefix: bytes,
        delimiter: str, newline: str) -> None:
    lines = [["description", "notes"], ["Café au lait machine broken", '"quoted, as written"'],
             ["Crème brûlée recipe lost", "déjà vu"]]
    text = newline.join(delimiter.join(cells) for cells in lines) + newline
    path = tmp_path / "t.csv"
    path.write_bytes(prefix + text.encode(encoding))
    result = bulksync.push(path, form_id=FORM, channel=CHANNEL, **api)
    assert result.ok
    raw = path.read_bytes()
    assert raw.startswith(prefix)
    out = raw[len(prefix):].decode(encoding)
    ids = {r.row_number: r.ticket_id for r in result.results.values()}
    numbers = {r.row_number: r.ticket_number for r in result.results.values()}
    expected = newline.join([
        delimiter.join(lines[0] + ["ticketId", "ticketNumber", "syncStatus"]),
        delimiter.join(lines[1] + [str(ids[2]), str(numbers[2]), "created"]),
        delimiter.join(lines[2] + [str(ids[3]), str(numbers[3]), "created"]),
    ]) + newline
    assert out == expected


def test_xlsx_gets_ids_and_keeps_everything_else(tmp_path: Path, sandbox: Sandbox,
                                                 api: dict[str, str]) -> None:
    path = tmp_path / "t.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tickets"
    ws.append(["description", "priority", "notes"])
    ws.append(["Printer jams", "High", "=1+1"])
    ws.append(["VPN drops", "Low", "+49 30 1234"])
    ws["A1"].font = openpyxl.styles.Font(bold=True)
    ws["C1"].font = openpyxl.styles.Font(bold=True)
    wb.create_sheet("Other")["B2"] = "keep me"
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        before = {i.filename: z.read(i) for i in z.infolist()}

    result = bulksync.push(path, form_id=FORM, channel=CHANNEL, **api)
    assert result.counts["created"] == 2

    with zipfile.ZipFile(path) as z:
        after = {i.filename: z.read(i) for i in z.infolist()}
    assert after.keys() == before.keys()
    changed = [name for name in before if before[name] != after[name]]
    assert changed == ["xl/worksheets/sheet1.xml"]

    by_id = {t["id"]: t for t in sandbox.tickets()}
    table = read_table(path)
    assert table.header == ("description", "priority", "notes", "ticketId", "ticketNumber", "syncStatus")
    for number in (2, 3):
        row = table.frame.loc[number]
        assert by_id[row[3]]["description"] == row[0]
        assert row[5] == "created"
    back = openpyxl.load_workbook(path)
    assert back["Tickets"]["C2"].value == "=1+1"  # the user's formula is still a formula
    assert back["Tickets"]["D1"].font.bold  # a new header cell is styled like its neighbour
    assert back["Tickets"]["E2"].data_type == "n"
    assert back["Other"]["B2"].value == "keep me"

    second = bulksync.push(path, form_id=FORM, channel=CHANNEL, force=True, **api)
    assert (second.counts["created"], second.counts["updated"]) == (0, 2)
    assert len(sandbox.tickets()) == 2


def test_an_invalid_sheet_sends_nothing_and_is_untouched(
        tmp_path: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    path = write(tmp_path / "t.csv", "description,assignee\nok,\nbad,jane@example.com\n")
    before = path.read_bytes()
    result = bulksync.push(path, form_id=FORM, channel=CHANNEL, **api)
    assert result.refused and not result.ok
    assert result.requests == 0 and sandbox.requests() == []
    assert path.read_bytes() == before
    assert [r.row_number for r in result.results.values()] == [3]


def test_skip_invalid_sends_the_valid_rows_and_marks_the_rest(
        tmp_path: Path, sandbox: Sandbox, api: dict[str, str]) -> None:
    path = write(tmp_path / "t.csv", "description,assignee\nok,\nbad,jane@example.com\n")
    result = bulksync.push(path, form_id=FORM, channel=CHANNEL, skip_invalid=True, **api)
    assert (result.counts["created"], result.counts["invalid"]) == (1, 1)
    assert len(sandbox.tickets()) == 1
    table = read_table(path)
    assert table.header[-2:] == ("syncStatus", "syncError")
    assert table.frame.loc[3].tolist()[-2:] == ["invalid", "assignee: 'jane@example.com' is not a "
                                                "Slack member ID (U… or W…, e.g. U073PBJPHGW); an email "
                                                "cannot be used here: give --users FILE (a CSV of email "
                                                "→ Slack member ID)"]


def test_no_token_is_an_error_and_sends_nothing(tmp_path: Path, sandbox: Sandbox,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPTASK_API_TOKEN", raising=False)
    path = write(tmp_path / "t.csv", "description\nhello\n")
    with pytest.raises(bulksync.TokenMissing, match="SUPTASK_API_TOKEN"):
        bulksync.push(path, form_id=FORM, channel=CHANNEL, api_url=sandbox.url)
    assert sandbox.requests() == []


def test_failed_rows_carry_the_servers_message(tmp_path: Path, sandbox: Sandbox,
                                               api: dict[str, str]) -> None:
    missing = "0f0e0d0c-0b0a-4909-8807-060504030201"
    path = write(tmp_path / "t.csv", f"ticketId,status\n{missing},Closed\n")
    result = bulksync.push(path, **api)
    assert result.results[2] == bulksync.RowResult(2, "failed", ticket_id=missing,
                                                   error="HTTP 404: Ticket not found")
    assert read_table(path).frame.loc[2].tolist() == [missing, "Closed", "failed",
                                                      "HTTP 404: Ticket not found"]


def test_config_file_beside_the_sheet_gives_defaults(tmp_path: Path, sandbox: Sandbox,
                                                     api: dict[str, str]) -> None:
    write(tmp_path / "bulksync.toml", f'form_id = "{FORM}"\nchannel = "{CHANNEL}"\n'
                                      '[set]\npriority = "Medium"\n')
    path = write(tmp_path / "t.csv", "description\nhello\n")
    assert bulksync.push(path, **api).ok
    (ticket,) = sandbox.tickets()
    assert (ticket["formId"], ticket["requesterChannel"], ticket["priority"]) == (FORM, CHANNEL, "Medium")
