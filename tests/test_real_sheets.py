"""Sheets as people make them (issue 16): headers written their way, legacy code pages,
semicolons, exports pushed without their mapping, and outcomes grouped for people to read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bulksync
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli, write

IDS = ["3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b", "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"]


def _plan(sheet: Path, *args: str) -> dict[str, object]:
    result = run_cli("plan", str(sheet), "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


def _kinds(plan: dict[str, object]) -> list[str]:
    return [op["kind"] for op in plan["operations"]]  # type: ignore[attr-defined]


# -- 1. headers as people write them -----------------------------------------------------------

@pytest.mark.parametrize("header", ["ticket_id", "Ticket ID", "TicketID", "ticket-id", " TICKETID "])
def test_a_close_list_with_the_ids_under_any_spelling_plans_updates(tmp_path: Path, header: str) -> None:
    sheet = write(tmp_path / "close.csv", f"{header},reason\n{IDS[0]},dup\n{IDS[1]},done\n")
    plan = _plan(sheet, "--set", "status=Closed")
    assert _kinds(plan) == ["update", "update"] and plan["valid"]
    assert [op["path"] for op in plan["operations"]] == [f"/ticket/{i}" for i in IDS]  # type: ignore[attr-defined]


def test_a_close_list_pushed_writes_into_its_own_id_column(tmp_path: Path, sandbox: Sandbox) -> None:
    made = bulksync.push(write(tmp_path / "new.csv", "description\nA\nB\n"), token=TOKEN,
                         api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    ids = [r.ticket_id for r in sorted(made.results.values(), key=lambda r: r.row_number)]
    sheet = write(tmp_path / "close.csv", "Ticket ID;Why\n" + "".join(f"{i};dup\n" for i in ids))
    result = run_cli("push", str(sheet), "--set", "status=Closed", "-q",
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert {t["status"] for t in sandbox.tickets()} == {"Closed"}
    lines = sheet.read_text().splitlines()
    assert lines[0] == "Ticket ID;Why;syncStatus"  # no second ticketId column
    assert lines[1:] == [f"{i};dup;updated" for i in ids]


def test_headers_in_other_case_spaces_and_custom_fields_are_the_columns(tmp_path: Path) -> None:
    field = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"
    sheet = write(tmp_path / "t.csv", f"Description,Priority,Custom Field {field},Form ID,Requester Channel\n"
                                      f"Printer jams,High,IT,{FORM},{CHANNEL}\n")
    plan = _plan(sheet)
    assert plan["valid"] and plan["ignored_columns"] == []
    assert plan["operations"][0]["body"] == {  # type: ignore[index]
        "description": "Printer jams", "priority": "High", "requesterChannel": CHANNEL, "formId": FORM,
        "customFields": [{"fieldId": field, "value": "IT"}]}


def test_a_problem_names_the_header_the_sheet_has(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "Description,Assignee\nPrinter jams,bob\n")
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert result.returncode == 1
    assert f"{sheet}: row 2, column Assignee (→ assignee): 'bob' is not a Slack member ID" in result.stdout


@pytest.mark.parametrize("header, meant", [("descripton", "description"), ("ticketd", "ticketId"),
                                           ("Requestor", "requester"), ("priorty", "priority")])
def test_a_near_miss_of_a_known_header_is_an_error_naming_it(tmp_path: Path, header: str,
                                                             meant: str) -> None:
    sheet = write(tmp_path / "t.csv", f"{header},notes\nPrinter jams,x\n")
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert result.returncode == 1
    assert f"{sheet}: row 1, column {header}: is not a column bulksync knows; did you mean {meant!r}?" \
        in result.stdout
    assert _plan(sheet, "--form-id", FORM, "--channel", CHANNEL)["operations"] == []  # nothing planned


def test_own_columns_and_named_columns_in_the_config(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", f"Summary text,Descriptions,Ref\nPrinter jams,my own notes,{IDS[0]}\n")
    (tmp_path / "bulksync.toml").write_text(
        'own_columns = ["Descriptions"]\n[columns]\ndescription = "Summary text"\nticketId = "Ref"\n')
    plan = _plan(sheet)
    assert plan["valid"], plan["problems"]
    assert plan["ignored_columns"] == ["Descriptions"]
    assert plan["operations"][0]["path"] == f"/ticket/{IDS[0]}"  # type: ignore[index]
    assert plan["operations"][0]["body"] == {"description": "Printer jams"}  # type: ignore[index]


def test_a_column_of_ticket_ids_under_another_name_stops_the_push(tmp_path: Path) -> None:
    sheet = write(tmp_path / "close.csv", f"id,reason\n{IDS[0]},dup\n{IDS[1]},dup\n")
    result = run_cli("push", str(sheet), "--set", "status=Closed", "--form-id", FORM, "--channel",
                     CHANNEL, env={"SUPTASK_API_TOKEN": TOKEN, "SUPTASK_API_URL": "http://127.0.0.1:9/api"})
    assert result.returncode == 1
    assert "column id: holds ticket IDs but the sheet has no ticketId column" in result.stderr
    assert "nothing was sent" in result.stderr
    # A column of numbers is not taken for ticket IDs.
    numbers = write(tmp_path / "numbers.csv", "id,description\n2041,Printer jams\n")
    assert _plan(numbers, "--form-id", FORM, "--channel", CHANNEL)["valid"]


def test_the_note_on_columns_of_ones_own_is_one_short_line(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description,a,b,c,d,e\nPrinter jams,1,2,3,4,5\n")
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert result.stderr.splitlines() == ["note: 5 column(s) of your own, not sent: a, b, c and 2 more"]


# -- 2. text decoded right or not at all ----------------------------------------------------

TEXTS = {
    "cp1251": "Принтер на третьем этаже не печатает",
    "cp1250": "Drukarka na trzecim piętrze nie drukuje; żółć gęślą jaźń",
    "cp932": "三階のプリンターが印刷できません",
}


@pytest.mark.parametrize("encoding", list(TEXTS))
def test_a_legacy_code_page_is_detected_said_and_kept(tmp_path: Path, sandbox: Sandbox,
                                                      encoding: str) -> None:
    text = TEXTS[encoding]
    sheet = tmp_path / "t.csv"
    sheet.write_bytes(f"description,priority\n{text},High\n{text} (2),Low\n".encode(encoding))
    shown = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert f"note: read as {encoding} (detected" in shown.stderr
    result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q",
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(t["description"] for t in sandbox.tickets()) == [text, f"{text} (2)"]
    written = sheet.read_bytes().decode(encoding)  # the write-back kept the file's encoding
    assert written.splitlines()[1].startswith(f"{text},High,")


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-8", b"\xef\xbb\xbf")])
def test_a_byte_order_mark_decides_and_is_kept(tmp_path: Path, sandbox: Sandbox, encoding: str,
                                               bom: bytes) -> None:
    sheet = tmp_path / "t.csv"
    sheet.write_bytes(bom + "description\tpriority\r\nÜbersetzung → 中文\tHigh\r\n".encode(encoding))
    result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q",
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert [t["description"] for t in sandbox.tickets()] == ["Übersetzung → 中文"]
    data = sheet.read_bytes()
    assert data.startswith(bom)
    assert data[len(bom):].decode(encoding).startswith("description\tpriority\tticketId\t")


def test_an_encoding_that_cannot_be_told_is_refused_and_encoding_decides(tmp_path: Path) -> None:
    sheet = tmp_path / "t.csv"
    greek = "Ο εκτυπωτής δεν λειτουργεί"
    sheet.write_bytes(f"description,priority\n{greek},High\n{greek} (2),Low\n".encode("cp1253"))  # or Cyrillic?
    refused = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert refused.returncode == 2
    assert "is not UTF-8, and it reads differently as cp1253, cp1251" in refused.stderr
    assert "--encoding" in refused.stderr and "Traceback" not in refused.stderr
    given = _plan(sheet, "--form-id", FORM, "--channel", CHANNEL, "--encoding", "cp1253")
    assert given["operations"][0]["body"]["description"] == greek  # type: ignore[index]
    unknown = run_cli("validate", str(sheet), "--encoding", "klingon")
    assert unknown.returncode == 2 and "--encoding 'klingon' is not an encoding" in unknown.stderr


def test_a_short_central_european_file_that_cp1252_would_misread_is_refused(tmp_path: Path) -> None:
    sheet = tmp_path / "t.csv"
    sheet.write_bytes("description\nNie mogę się zalogować; hasło wygasło\n".encode("cp1250"))
    refused = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert refused.returncode == 2 and "reads differently as" in refused.stderr
    assert "cp1250" in refused.stderr and "--encoding" in refused.stderr
    given = _plan(sheet, "--form-id", FORM, "--channel", CHANNEL, "--encoding", "cp1250")
    assert given["operations"][0]["body"]["description"] == "Nie mogę się zalogować; hasło wygasło"  # type: ignore[index]


def test_semicolons_with_commas_in_cells_and_a_given_delimiter(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description;priority\nPrinter, 3rd floor;High\n")
    assert _plan(sheet, "--form-id", FORM, "--channel", CHANNEL)["operations"][0]["body"][  # type: ignore[index]
        "description"] == "Printer, 3rd floor"
    one = write(tmp_path / "one.csv", "description\nPrinter, 3rd floor\nVPN, again\n")
    ops = _plan(one, "--form-id", FORM, "--channel", CHANNEL)["operations"]
    assert [op["body"]["description"] for op in ops] == ["Printer, 3rd floor", "VPN, again"]  # type: ignore[attr-defined]
    piped = write(tmp_path / "p.txt", "description|priority\nPrinter;jams|High\n")
    given = _plan(piped, "--form-id", FORM, "--channel", CHANNEL, "--delimiter", "|")
    assert given["operations"][0]["body"]["description"] == "Printer;jams"  # type: ignore[index]
    bad = run_cli("validate", str(piped), "--delimiter", "||")
    assert bad.returncode == 2 and "--delimiter '||' must be one character" in bad.stderr


# -- 3. the export explains itself --------------------------------------------------------------

def test_a_zendesk_export_without_its_mapping_gets_the_flags(tmp_path: Path) -> None:
    sheet = tmp_path / "export.csv"
    shutil.copy(bundled("sample_data") / "zendesk-export.csv", sheet)
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert result.returncode == 1
    assert (f"{sheet}: row 1: this looks like a Zendesk export: push it with --mapping zendesk --users "
            "users.csv" in result.stdout)  # a sheet-level problem: nothing of it is sent raw
    mapped = run_cli("validate", str(sheet), "--mapping", "zendesk", "--form-id", FORM, "--channel", CHANNEL)
    assert "looks like" not in mapped.stdout + mapped.stderr
    # A sheet in Suptask's columns that merely has Status, Priority and Tags is not an export.
    own = write(tmp_path / "own.csv", "Description,Status,Priority,Tags,Assignee\nPrinter jams,Open,High,hw,\n")
    assert "looks like" not in run_cli("validate", str(own), "--form-id", FORM, "--channel", CHANNEL).stdout
    assert "give --users FILE" in mapped.stdout  # the requester's email: what to do about it


# -- 4. outcomes grouped ---------------------------------------------------------------------

def test_one_problem_on_many_rows_is_one_line(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description\n" + "".join(f"Ticket {i}\n" for i in range(40)))
    result = run_cli("validate", str(sheet))
    assert result.stdout.splitlines() == [
        f"{sheet}: rows 2–41 (40 rows), column requesterChannel: requesterChannel is required to create "
        "a ticket (this row has no ticketId); add it, or give --channel",
        f"{sheet}: rows 2–41 (40 rows), column formId: formId is required to create a ticket (this row "
        "has no ticketId); add it, or give --form-id",
        f"{sheet}: 40 row(s), 80 problem(s) in 40 row(s)"]
    groups = json.loads(run_cli("validate", str(sheet), "--json").stdout)["groups"]
    assert [(g["column"], g["rows"], g["count"]) for g in groups] == [
        ("requesterChannel", "2–41", 40), ("formId", "2–41", 40)]


def test_failures_are_grouped_by_message_with_row_ranges(tmp_path: Path, sandbox: Sandbox) -> None:
    made = bulksync.push(write(tmp_path / "new.csv", "description\nA\n"), token=TOKEN,
                         api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    real = next(iter(made.results.values())).ticket_id
    unknown = [f"00000000-0000-4000-8000-{i:012d}" for i in range(38)]
    sheet = write(tmp_path / "close.csv", "ticketId\n" + "".join(f"{i}\n" for i in [*unknown[:20], real,
                                                                                   *unknown[20:]]))
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    result = run_cli("push", str(sheet), "--set", "status=Closed", "-q", env=env)
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if ": failed: " in line]
    assert len(failures) == 1, result.stdout
    assert failures[0].startswith(f"{sheet}: 38 rows (2–21, 23–40): failed: HTTP 404")
    summary = json.loads(run_cli("push", str(sheet), "--set", "status=Closed", "--only-failed",
                                 "--json", "-q", env=env).stdout)
    assert [(g["status"], g["count"], g["rows"]) for g in summary["groups"]] == [("failed", 38, "2–21, 23–40")]


# -- 5. a report to keep ---------------------------------------------------------------------

def _report(path: Path) -> list[dict[str, str]]:
    import csv

    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    return list(csv.DictReader(data.decode("utf-8-sig").splitlines()))


def test_a_migration_writes_a_run_report_beside_the_export(tmp_path: Path, sandbox: Sandbox) -> None:
    samples = bundled("sample_data")
    for name in ("zendesk-export.csv", "zendesk-comments.csv", "users.csv", "bulksync.toml"):
        shutil.copy(samples / name, tmp_path / name)
    export = tmp_path / "zendesk-export.csv"
    args = ["push", str(export), "--mapping", "zendesk", "--users", str(tmp_path / "users.csv"),
            "--comments", str(tmp_path / "zendesk-comments.csv"), "-q"]
    result = run_cli(*args, env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    report = tmp_path / "zendesk-export.csv.bulksync-report.csv"
    assert f"run report: {report}" in result.stdout.splitlines()
    rows = _report(report)
    assert list(rows[0]) == ["row", "legacyId", "ticketId", "ticketNumber", "operation", "outcome",
                             "error", "links", "replies"]
    by_id = {t["id"]: t for t in sandbox.tickets()}
    assert len(rows) == 4 == len(by_id)
    for row in rows:
        ticket = by_id[row["ticketId"]]
        assert ticket["externalLinks"] == [{"externalId": row["legacyId"], "integrationType": "Zendesk"}]
        assert (row["ticketNumber"], row["operation"], row["outcome"], row["links"]) == (
            str(ticket["ticketNumber"]), "create", "created", "1")
        assert row["replies"] == str(len(ticket.get("replies", [])))
    assert sum(int(r["replies"]) for r in rows) == 6
    # --no-report leaves it out; --report puts it where asked.
    report.unlink()
    assert run_cli(*args, "--no-report", env={"SUPTASK_API_URL": sandbox.url,
                                              "SUPTASK_API_TOKEN": TOKEN}).returncode == 0
    assert not report.exists()


def test_report_for_a_plain_push(tmp_path: Path,
                                                                    sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", f"description,ticketId\nPrinter jams,\nGone,{IDS[0]}\n")
    out = tmp_path / "out" / "report.csv"
    out.parent.mkdir()
    result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--report", str(out),
                     "-q", env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 1 and f"run report: {out}" in result.stdout
    rows = _report(out)
    assert [(r["row"], r["operation"], r["outcome"]) for r in rows] == [("2", "create", "created"),
                                                                         ("3", "update", "failed")]
    assert rows[1]["error"].startswith("HTTP 404") and rows[0]["legacyId"] == ""
    assert not (tmp_path / "t.csv.bulksync-report.csv").exists()  # not a migration: none by default


def test_the_report_never_holds_a_formula(tmp_path: Path) -> None:
    from bulksync.results import RowResult
    from bulksync.writeback import write_run_report

    path = write_run_report(tmp_path / "r.csv", {2: RowResult(2, "failed", error='=HYPERLINK("http://x","y")')},
                        operations={2: "create"}, legacy_ids={2: "=cmd|' /C calc'!A0"}, sides={})
    row = _report(path)[0]
    assert row["error"].startswith("'=") and row["legacyId"].startswith("'=")


# -- 6. cell values as people meant them ------------------------------------------------------

def test_numbers_and_dates_in_a_workbook_are_read_as_people_meant_them(tmp_path: Path) -> None:
    import datetime as dt

    from openpyxl import Workbook

    field = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"
    book = tmp_path / "t.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["description", f"customField_{field}", "Due"])
    ws.append(["Whole number", 42, dt.date(2026, 11, 30)])
    ws.append(["Fraction", 2.5, dt.datetime(2026, 11, 30, 9, 15)])
    ws.append(["Long ID typed as a number", 1234567890123456789, None])
    wb.save(book)
    result = run_cli("plan", str(book), "--json", "--form-id", FORM, "--channel", CHANNEL)
    plan = json.loads(result.stdout)
    bodies = {op["row"]: op["body"] for op in plan["operations"]}
    assert bodies[2]["customFields"] == [{"fieldId": field, "value": "42"}]  # not 42.0
    assert bodies[3]["customFields"] == [{"fieldId": field, "value": "2.5"}]
    assert 4 not in bodies
    [problem] = plan["problems"]
    assert (problem["row"], problem["column"], problem["code"]) == (4, f"customField_{field}", "lost-digits")
    assert "15 significant digits" in problem["message"] and "format the column as Text" in problem["message"]
    from bulksync.sheets.read import read_table

    table = read_table(book)
    assert table.frame.loc[2, 2] == "2026-11-30" and table.frame.loc[3, 2] == "2026-11-30T09:15:00"


def test_an_id_column_saved_in_scientific_notation_is_an_error_naming_the_cell(tmp_path: Path) -> None:
    sheet = write(tmp_path / "close.csv", f"Ticket ID,reason\n{IDS[0]},dup\n1.23457E+18,dup\n")
    result = run_cli("validate", str(sheet), "--set", "status=Closed")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{sheet}: row 3, column Ticket ID (→ ticketId): '1.23457E+18' is a number Excel has already "
        "cut to 15 significant digits, so the ID is lost: format the column as Text and enter the IDs "
        "again (or export them as text)")


def test_a_problem_found_twice_for_one_cell_is_reported_once(tmp_path: Path) -> None:
    from bulksync.columns import Problem, ValidationReport

    twice = Problem(2, "formId", "formId is required to create a ticket", "required", None)
    report = ValidationReport(tmp_path / "t.csv", 1, (twice, twice))
    assert report.lines() == [f"{tmp_path / 't.csv'}: row 2, column formId: formId is required to create a ticket"]
    assert [g["count"] for g in report.as_dict()["groups"]] == [1]


def test_created_ids_go_into_the_id_column_the_sheet_names_its_way(tmp_path: Path, sandbox: Sandbox) -> None:
    # bulksync's output columns match by exact name only: "Sync status" stays the user's.
    sheet = write(tmp_path / "t.csv", "Description,Ticket ID,Sync status\nPrinter jams,,mine\nVPN drops,,\n")
    result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q",
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = sheet.read_text().splitlines()
    assert lines[0] == "Description,Ticket ID,Sync status,ticketNumber,syncStatus"
    ids = {t["description"]: t["id"] for t in sandbox.tickets()}
    assert lines[1].startswith(f"Printer jams,{ids['Printer jams']},mine,")
    assert lines[1].endswith(",created")
    again = run_cli("push", str(sheet), "-q", env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert again.returncode == 0 and len(sandbox.tickets()) == 2  # the rerun updates, not creates


# -- found by review (issue 16) -----------------------------------------------------------------

def test_a_sheets_own_ticket_number_column_is_never_written_over(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "legacy.csv", "Ticket Number,Description\nHD-1001,Printer jams\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    assert sheet.read_text().splitlines()[1].startswith("HD-1001,Printer jams,")


def test_own_columns_keep_even_a_known_name_the_users(tmp_path: Path, sandbox: Sandbox) -> None:
    (tmp_path / "bulksync.toml").write_text('own_columns = ["Status"]\n')
    sheet = write(tmp_path / "s.csv", "description,Status\nPrinter,waiting on vendor\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    assert sandbox.tickets()[0]["status"] == "Open"  # the sandbox's default: Status was not sent
    assert sheet.read_text().splitlines()[1].startswith("Printer,waiting on vendor,")


def test_a_misspelt_columns_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bulksync.toml").write_text('[columns]\nticket_id = "Ref"\n')
    sheet = write(tmp_path / "s.csv", f"Ref,description\n{IDS[0]},Printer jams again\n")
    result = run_cli("validate", str(sheet))
    assert result.returncode == 2 and "columns.ticket_id is not a column bulksync fills" in result.stderr


def test_a_jira_export_without_its_mapping_is_not_pushed(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "jira.csv", "Summary,Issue key,Issue Type,Status,Priority,Assignee,Reporter,"
                  "Labels,Description\nVPN drops,OPS-101,Bug,In Progress,High,,Ben Okafor,network,The VPN "
                  "client disconnects.\n")
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.refused and sandbox.tickets() == []


@pytest.mark.parametrize("text", ["The printer on floor 2 is broken, reported by Zoë.",
                                  "São Paulo office: Sánchez, Öberg, naïve café",
                                  "The printer doesn´t work; it´s jammed at Peter´s desk",
                                  "The printer\xa0on floor\xa03 is broken", "Col·legi de l'Alguer"])
def test_a_small_western_file_is_read_as_cp1252(text: str) -> None:
    from bulksync.sheets.read import _decode

    data = f"description,priority\n{text},High\nCannot log in since Monday,Low\n".encode("cp1252")
    decoded, encoding, _, how = _decode(Path("x.csv"), data)
    assert (encoding, how) == ("cp1252", "detected") and text in decoded


def test_a_utf8_file_with_a_stray_byte_is_refused_naming_it(tmp_path: Path) -> None:
    sheet = tmp_path / "t.csv"
    good = "description\nJe n'arrive pas à me connecter à la messagerie, c’est urgent\n"
    sheet.write_bytes(good.encode("utf-8").replace("c’est".encode(), b"c\x92est"))
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert result.returncode == 2
    assert "is UTF-8 except at byte 63 (b'\\x92'" in result.stderr


def test_a_report_never_replaces_the_sheet(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "s.csv", "description,notes\nPrinter jams,keep me\n")
    result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--report", str(sheet),
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 2 and "would overwrite a file this run reads or writes" in result.stderr
    assert sheet.read_text() == "description,notes\nPrinter jams,keep me\n" and sandbox.requests() == []


@pytest.mark.parametrize("value", ["4E12", "1.5E-06", "2e3", "7E+10"])
def test_short_scientific_looking_text_is_the_users(tmp_path: Path, value: str) -> None:
    sheet = write(tmp_path / "c.csv", f"description,customField_0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95\nHeater,{value}\n")
    assert bulksync.validate(sheet, form_id=FORM, channel=CHANNEL).valid


def test_common_headers_are_not_taken_for_misspellings(tmp_path: Path) -> None:
    headers = ["Ticket", "Form", "Request", "Requester name", "Tags2", "Ticket Nr", "Status notes",
               "Priority level", "Assigned to", "Channel", "Requester ID", "Status 2", "New status"]
    sheet = write(tmp_path / "t.csv", "description," + ",".join(headers) + "\nPrinter," + "," * (len(headers) - 1) + "\n")
    report = bulksync.validate(sheet, form_id=FORM, channel=CHANNEL)
    assert report.valid, report.lines()


def test_utf16_without_a_bom_reset_with_an_encoding_and_a_file_name_that_is_not_utf8(
        tmp_path: Path, sandbox: Sandbox) -> None:
    import os

    sheet = tmp_path / "t.csv"
    sheet.write_bytes("description\tpriority\r\nÜbersetzung\tHigh\r\n".encode("utf-16-le"))
    refused = run_cli("validate", str(sheet))
    assert refused.returncode == 2 and "give --encoding utf-16" in refused.stderr
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    pushed = run_cli("push", str(sheet), "--encoding", "utf-16", "--form-id", FORM, "--channel", CHANNEL,
                     "-q", env=env)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    data = sheet.read_bytes()
    assert not data.startswith(b"\xff\xfe") and data.decode("utf-16-le").startswith("description\tpriority\tticketId")
    cleared = run_cli("reset", str(sheet), "--yes", "--encoding", "utf-16")
    assert cleared.returncode == 0 and "cell(s) cleared" in cleared.stdout
    odd = os.fsencode(tmp_path) + b"/caf\xe9.csv"
    with open(odd, "wb") as f:
        f.write(b"description\nPrinter jams\n")
    result = run_cli("push", os.fsdecode(odd), "--form-id", FORM, "--channel", CHANNEL, "-q", env=env)
    assert "Traceback" not in result.stderr and result.returncode in (0, 2), result.stderr


def test_a_migrations_report_after_a_rerun_still_names_every_ticket(tmp_path: Path, sandbox: Sandbox) -> None:
    samples = bundled("sample_data")
    for name in ("zendesk-export.csv", "users.csv", "bulksync.toml"):
        shutil.copy(samples / name, tmp_path / name)
    export = tmp_path / "zendesk-export.csv"
    args = ["push", str(export), "--mapping", "zendesk", "--users", str(tmp_path / "users.csv"), "-q"]
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    assert run_cli(*args, env=env).returncode == 0
    assert run_cli(*args, env=env).returncode == 0  # the rerun: every row unchanged
    rows = _report(tmp_path / "zendesk-export.csv.bulksync-report.csv")
    numbers = {str(t["ticketNumber"]) for t in sandbox.tickets()}
    assert {r["outcome"] for r in rows} == {"unchanged"} and {r["ticketNumber"] for r in rows} == numbers
