"""The column contract and the validation report: pure functions over a Table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulksync.columns import Defaults, ValidationReport, select_rows, validate_rows
from bulksync.errors import UsageError
from bulksync.resources import bundled
from bulksync.sheets.read import read_table
from tests.conftest import CHANNEL, FIELD, FORM, write


def _report(path: Path, defaults: Defaults | None = None) -> ValidationReport:
    return validate_rows(select_rows(read_table(path), defaults or Defaults()), path)


def test_the_mistakes_sample_gets_one_line_per_problem() -> None:
    path = bundled("sample_data") / "tickets-with-mistakes.csv"
    report = _report(path, Defaults(form_id=FORM, channel=CHANNEL))
    assert not report.valid
    assert [(p.row_number, p.column) for p in report.problems] == [
        (3, "description"),
        (4, "requester"),
        (4, "tags"),
        (5, "ticketId"),
        (6, "ticketId"),
        (7, "ticketId"),
    ]
    assert report.lines() == [
        f"{path}: row 3, column description: description is required to create a ticket "
        "(this row has no ticketId); add a description",
        f"{path}: row 4, column requester: 'jane.doe@example.com' is not a Slack member ID "
        "(U… or W…, e.g. U073PBJPHGW); an email cannot be used here: give --users FILE (a CSV of email → Slack member ID)",
        f"{path}: row 4, column tags: 'network,,vpn' has an empty tag; separate tags with single commas",
        f"{path}: row 5, column ticketId: 'not-a-ticket-id' is not a UUID "
        "(like 3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b)",
        f"{path}: row 6, column ticketId: ticketId 9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32 appears on "
        "more than one row (also row 7); each ticket may appear once",
        f"{path}: row 7, column ticketId: ticketId 9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32 appears on "
        "more than one row (also row 6); each ticket may appear once",
    ]


def test_a_create_needs_description_channel_and_form(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "description,priority\nhello,High\n")
    assert [(p.row_number, p.column) for p in _report(path).problems] == [
        (2, "requesterChannel"), (2, "formId")]
    assert _report(path, Defaults(form_id=FORM, channel=CHANNEL)).valid


def test_ids_and_slack_ids_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv",
                 "description,formId,requesterChannel,assignee,requester\n"
                 "a,not-a-uuid,#general,U12,W0123ABCD\n"
                 f"b,{FORM},G0123ABCD,W0123ABCD,U073PBJPHGW\n")
    assert [(p.row_number, p.column) for p in _report(path).problems] == [
        (2, "assignee"), (2, "requesterChannel"), (2, "formId")]


def test_defaults_fill_creates_and_set_overrides_every_row(tmp_path: Path) -> None:
    tid = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"
    path = write(tmp_path / "t.csv", f"ticketId,description,status,formId\n,new,Open,\n{tid},,Open,\n")
    rows = select_rows(read_table(path), Defaults(form_id=FORM, channel=CHANNEL,
                                                  set={"status": "Closed"}))
    frame = rows.frame
    assert frame.loc[2, "formId"] == FORM and frame.loc[2, "requesterChannel"] == CHANNEL
    assert frame.loc[3, "formId"] == "" and frame.loc[3, "requesterChannel"] == ""
    assert frame["status"].tolist() == ["Closed", "Closed"]


def test_own_columns_are_ignored_and_named_once(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "description,notes,Legacy ID,syncStatus\nx,n,1,created\n")
    report = _report(path, Defaults(form_id=FORM, channel=CHANNEL))
    assert report.valid
    assert report.ignored_columns == ("notes", "Legacy ID")


def test_bad_custom_field_header_and_duplicate_headers_are_sheet_problems(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv",
                 f"description,customField_123,status,status,notes,notes,customField_{FIELD}\n"
                 "x,1,Open,Open,a,b,c\n")
    report = _report(path, Defaults(form_id=FORM, channel=CHANNEL))
    assert report.sheet_invalid
    assert [(p.row_number, p.column) for p in report.problems] == [
        (1, "customField_123"), (1, "status")]
    assert "columns C and D" in report.problems[1].message


def test_blank_rows_are_left_out(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "description,notes\nx,\n,\n  ,  \ny,\n")
    rows = select_rows(read_table(path), Defaults(form_id=FORM, channel=CHANNEL))
    assert rows.frame.index.tolist() == [2, 5]  # rows 3 and 4 are blank: left out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_cell_under_no_header_keeps_its_row_and_a_space_there_does_not(tmp_path: Path, suffix: str) -> None:
    from openpyxl import Workbook

    cells = [["description", "", "notes", ""], ["x", "", "", ""], ["", "", "", "kept"], ["", " ", "", "\t"],
             ["", "", "", ""], ["", "also kept", "", ""]]
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        write(path, "".join(",".join(row) + "\n" for row in cells))
    else:
        book = Workbook()
        for row in cells:
            book.active.append([c or None for c in row])
        book.active.cell(row=2, column=16_384, value=" ")  # reaching XFD: 16,384 columns, nearly all empty
        book.save(path)
    rows = select_rows(read_table(path), Defaults(form_id=FORM, channel=CHANNEL))
    assert rows.frame.index.tolist() == [2, 3, 6]  # rows 4 and 5 hold only spaces or nothing


def test_nul_characters_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "description\nbad\x00cell\n")
    report = _report(path, Defaults(form_id=FORM, channel=CHANNEL))
    assert [(p.row_number, p.column) for p in report.problems] == [(2, "description")]


@pytest.mark.parametrize(("values", "message"), [
    ({"ticketId": "x"}, "--set ticketId is not allowed"),
    ({"subject": "x"}, "'subject' is not a Suptask field"),
    ({"customField_12": "x"}, "must be the field's UUID"),
])
def test_set_names_a_field(values: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Defaults(set=values).check()


def test_problems_carry_a_code_and_the_offending_value(tmp_path: Path) -> None:
    """Errors as data (issue 15): a program can tell problems apart without reading prose."""
    import json

    from tests.conftest import run_cli

    sheet = write(tmp_path / "t.csv", "ticketId,assignee,requesterChannel,tags,description\n"
                                      "nope,jane@example.com,#general,\"a,,b\",x\n"
                                      ",,,,\n"
                                      ",,C076K6Y74L1,,\n")
    out = json.loads(run_cli("validate", str(sheet), "--json").stdout)
    found = {(p["row"], p["column"], p["code"], p["value"]) for p in out["problems"]}
    assert {(2, "ticketId", "not-uuid", "nope"), (2, "assignee", "not-member", "jane@example.com"),
            (2, "requesterChannel", "not-channel", "#general"), (2, "tags", "empty-tag", "a,,b"),
            (4, "description", "required", None)} <= found
    assert all(p["code"] for p in out["problems"])
