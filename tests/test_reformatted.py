"""Issue 23, point 7: a spreadsheet's reformatting is not an edit.

Excel and LibreOffice take text for numbers and dates, and write them back in their own
format when a file is saved: ``00123`` becomes ``123``, a 19-digit ID ``1.23456789012346E+018``,
``2026-01-05`` becomes ``01/05/26``. A push must not send that as an edit of the value bulksync
last sent: the row is held (marked, said once per column, exit 1) until the value is put back,
or ``--send-reformatted`` sends it as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bulksync
from bulksync.columns import Defaults, Rows, select_rows
from bulksync.plan import (
    Hold,
    Operation,
    Plan,
    date_order,
    excuse_reformatted,
    hold_groups,
    plan_rows,
    reformatting,
    settle_holds,
)
from bulksync.sandbox import Sandbox
from bulksync.sheets.read import read_table
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli, write

LONG = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"  # a 19-digit ID (an order number, an IMEI)
CODE = "1c9f6b8d-3a52-4eab-87d4-9f2a8b3e5da6"  # a code with leading zeros
DUE = "2da07c9e-4b63-4fbc-98e5-a03b9c4f6eb7"  # a date
TID = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"

# -- the detector: (what bulksync last sent, what the cell holds now) → what happened ----------

CASES: list[tuple[str, str, str | None, str]] = [
    # long numbers: the mantissa is the old number rounded (or cut) to the digits it shows
    ("1234567890123456789", "1.23456789012346E+018", "long number", "LibreOffice: 15 digits, E+018"),
    ("1234567890123456789", "1.23457E+18", "long number", "Excel's General format in a CSV"),
    ("1234567890123456789", "1.23457e+18", "long number", "lower-case e"),
    ("1234567890123456789", "1,23457E+18", "long number", "a decimal comma"),
    ("1234567890123456789", "1.234567890123457e+18", "long number", "a workbook's number cell, as read"),
    ("1234567890123456789", "1.2345678901234568e+18", "long number", "the nearest float's 17 digits"),
    ("1234567890123456789", "1.23456789012345E+18", "long number", "Excel cut it to 15 digits on entry"),
    ("1234567890123456789", "1234567890123450000", "long number", "Number format: 15 digits, zeros"),
    ("1234567890123456789", "1234567890123456768", "long number", "the float's exact value"),
    ("1000000000000000000", "1E+18", "long number", "no decimals to show"),
    ("9999999999999999999", "1E+19", "long number", "rounded up a power"),
    ("-1234567890123456789", "-1.23457E+18", "long number", "negative"),
    ("00001234567890123456789", "1.23457E+18", "long number", "leading zeros and digits both lost"),
    ("1234567890123456789", "1.23458E+18", None, "not the rounding of the old number: an edit"),
    ("1234567890123456789", "1.23456E+18", None, "cut at 6 digits: no application shows that"),
    ("1234567890123456789", "1.23457E+17", None, "another magnitude"),
    ("1234567890123456789", "1234567890123456780", None, "another number, typed"),
    # zeros
    ("00123", "123", "leading zeros", "every leading zero dropped"),
    ("000", "0", "leading zeros", "all zeros"),
    ("007.50", "7.5", "leading zeros", "both ends"),
    ("00123", "0123", None, "an application drops every leading zero, never some: an edit"),
    ("123", "124", None, "an edit"),
    ("2.10", "2.1", "trailing zeros", "a version number read as a number"),
    ("3.0", "3", "trailing zeros", "the point goes too"),
    ("2,10", "2,1", "trailing zeros", "a decimal comma"),
    ("1.5", "1.50", None, "zeros added: only a number format someone chose writes them"),
    ("2.100", "2.10", None, "some zeros dropped: an edit"),
    ("1,000", "1", None, "a thousands separator, not a decimal comma"),
    # dates and times: the same instant, another spelling
    ("2026-01-05", "1/5/2026", "date", "Excel, en-US"),
    ("2026-01-05", "05/01/2026", "date", "LibreOffice, en-GB"),
    ("2026-01-05", "01/05/26", "date", "LibreOffice, en-US"),
    ("2026-01-05", "05.01.2026", "date", "de-DE"),
    ("2026-01-05", "5-Jan-2026", "date", "Excel's d-mmm-yyyy"),
    ("2026-01-05", "2026-01-05 00:00:00", "date", "a date-time at midnight"),
    ("2026-01-05", "2026-01-05T00:00:00", "date", "a workbook's date-time cell, as read"),
    ("2026-01-05", "2026/1/5", "date", "year first, slashes"),
    ("2026-01-05 14:30", "1/5/2026 14:30", "date", "a date-time"),
    ("2026-01-05 14:30", "1/5/26 2:30 PM", "date", "12-hour clock"),
    ("1/5/2026", "2026-01-05", "date", "the other way round: ISO is one reading of the old"),
    ("2026-05-01", "1/5/2026", "date", "day first (d/m/yyyy): one reading is the old date"),
    ("2026-01-05", "1/6/2026", None, "another day in both readings"),
    ("2026-01-05", "1/5/2026 14:30", None, "a time added: another instant"),
    ("2026-01-05", "2026-01-06", None, "an edit"),
    ("2026-02-30", "3/2/2026", None, "the old is no date"),
    ("14:30", "14:30:00", "time", "seconds written"),
    ("14:30", "2:30 PM", "time", "12-hour clock"),
    ("9:05", "09:05:00", "time", "padded"),
    ("14:30", "2:30 AM", None, "another time"),
    ("14:30:15", "14:30", None, "seconds lost: another instant"),
    # a number's notation: thousands separators, a sign, scientific notation (LibreOffice, issue 23.7)
    ("1,000", "1000", "thousands separators", "LibreOffice en-US"),
    ("1,234,567.50", "1234567.5", "thousands separators", "and the decimals' zero"),
    ("1,234.50", "1234.50", "thousands separators", "decimals kept by a number format"),
    ("1 000", "1000", "thousands separators", "a space groups (fr-FR)"),
    ("1.000", "1000", "thousands separators", "a point groups (de-DE): decided a re-writing, not an edit"),
    ("1.234,5", "1234,5", "thousands separators", "a point groups, a comma for the decimals"),
    ("1.000", "1", "trailing zeros", "the same text, read by an English LibreOffice"),
    ("1,234,567,890,123,456,789", "1.23456789012346E+018", "thousands separators", "and a long number's digits"),
    ("1,000", "1", None, "a comma and three digits group: never a decimal comma"),
    ("1,000", "1000.0", None, "a zero added: a number format someone chose"),
    ("1,00", "100", None, "no real grouping: groups are three digits"),
    ("12,34", "1234", None, "no real grouping"),
    ("01,000", "1000", None, "a grouping never starts with 0"),
    ("1,000.5", "1000", None, "the decimals lost: an edit"),
    ("1,000,5", "1000.5", None, "one mark cannot both group and part the decimals"),
    ("+123", "123", "leading plus", "LibreOffice"),
    ("+4915112345678", "4915112345678", "leading plus", "a phone number in a custom field"),
    ("+0049151", "49151", "leading plus", "and its leading zeros"),
    ("+12345678901234567", "1.23456789012346E+016", "leading plus", "and a long number's digits"),
    ("+123", "124", None, "an edit"),
    ("+123", "-123", None, "the sign changed: an edit"),
    ("+123", "", None, "emptied: an edit"),
    ("1e5", "100000", "scientific notation", "written out"),
    ("1E3", "1000", "scientific notation", "upper-case E"),
    ("1.5e-3", "0.0015", "scientific notation", "a negative exponent"),
    ("-1e5", "-100000", "scientific notation", "negative"),
    ("4E12", "4E+12", "scientific notation", "a room number LibreOffice took for 4×10¹²"),
    ("1e5", "100001", None, "another number: an edit"),
    ("1e5", "1e6", None, "another number"),
    ("4E12", "4E+13", None, "another magnitude"),
    ("-0", "0", "negative zero", "LibreOffice"),
    ("-0.0", "0", "negative zero", "with decimals"),
    ("-5", "5", None, "the sign of a number that is not zero: an edit"),
    # text taken for a formula, replaced by its result: the result only looks like one
    ("=1+1", "2", "formula", "LibreOffice evaluated it"),
    ("=SUM(1;2)", "3", "formula", "any number: the formula is not evaluated"),
    ("=1=1", "TRUE", "formula", "a truth value"),
    ("=foo()", "#NAME?", "formula", "an error"),
    ("=A1/0", "#DIV/0!", "formula", "another error"),
    ("=x", "Err:508", "formula", "LibreOffice's error code"),
    ("=A1", "", "formula", "an empty result"),
    ("@SUM(1)", "1", "formula", "Excel's @"),
    ("-A1", "0", "formula", "a - before what is no number"),
    ("+x+y", "#NAME?", "formula", "a + before what is no number"),
    ("=5", "5", "formula", "a constant: its result is known"),
    ("=-5", "-5", "formula", "a negative constant"),
    ("=5", "6", None, "not the constant's result: an edit"),
    ("=A1&B1", "ab", None, "text: a formula's result or an edit, who can tell? an edit"),
    ("=1+1", "=1+2", None, "another formula: an edit"),
    ("=1+1", "two", None, "text"),
    ("=", "0", None, "no formula"),
    # neither
    ("room 4", "room 5", None, "text"),
    ("", "123", None, "nothing sent before"),
    ("123", "", None, "emptied: not a re-writing"),
    ("abc", "abc", None, "unchanged"),
]


@pytest.mark.parametrize(("old", "new", "expected", "why"), CASES, ids=[f"{o}->{n}" for o, n, _, _ in CASES])
def test_what_a_spreadsheet_does_to_a_value_is_told_from_an_edit(old: str, new: str, expected: str | None,
                                                                   why: str) -> None:
    assert reformatting(old, new) == expected, why


def test_a_columns_own_cells_say_which_of_day_and_month_comes_first() -> None:
    assert date_order(["1/13/2026", "1/5/2026", ""]) == "mdy"
    assert date_order(["13/1/2026", "1/5/2026"]) == "dmy"
    assert date_order(["13/1/2026", "1/13/2026"]) is None  # mixed: no say
    assert date_order(["1/5/2026", "2026-01-05", "text"]) is None
    # Told the order, only that reading counts.
    assert reformatting("2026-05-01", "1/5/2026", order="mdy") is None  # 5 January: an edit
    assert reformatting("2026-01-05", "1/5/2026", order="mdy") == "date"
    assert reformatting("2026-01-05", "1/5/2026", order="dmy") is None


# -- the lost-digits check knows every exponent form ----------------------------------------------

@pytest.mark.parametrize("value", ["1.23457E+18", "1.23456789012346E+018", "1.23457e+18", "1,23457E+18",
                                   "1E+18", "1.234567890123457e+18", "-1.2E+11"])
def test_a_long_number_in_any_exponent_form_is_lost_digits_on_a_create(tmp_path: Path, value: str) -> None:
    sheet = write(tmp_path / "c.csv", f'description,customField_{LONG}\nHeater,"{value}"\n')
    report = bulksync.validate(sheet, form_id=FORM, channel=CHANNEL)
    assert [(p.row_number, p.column, p.code) for p in report.problems] == [(2, f"customField_{LONG}", "lost-digits")]


@pytest.mark.parametrize("value", ["4E12", "1.5E-06", "2e3", "7E+10", "1.5E+010", "1.23E+5"])
def test_short_scientific_looking_text_is_still_the_users(tmp_path: Path, value: str) -> None:
    sheet = write(tmp_path / "c.csv", f"description,customField_{LONG}\nHeater,{value}\n")
    assert bulksync.validate(sheet, form_id=FORM, channel=CHANNEL).valid


# -- the plan holds the rows ----------------------------------------------------------------------

def _rows(tmp_path: Path, text: str, defaults: Defaults | None = None) -> Rows:
    return select_rows(read_table(write(tmp_path / "t.csv", text)), defaults or Defaults())


BASE = {"description": "Printer", "priority": "Low", f"customField_{LONG}": "1234567890123456789",
        f"customField_{CODE}": "00123", f"customField_{DUE}": "2026-01-05"}
HEADER = f"ticketId,description,priority,customField_{LONG},customField_{CODE},customField_{DUE}\n"
IDS = [TID, TID.replace("9", "8"), TID.replace("9", "7"), TID.replace("9", "6")]


def test_rows_rewritten_by_a_save_are_held_and_said_once_per_column(tmp_path: Path) -> None:
    rows = _rows(tmp_path, HEADER
                 + f"{IDS[0]},Printer,Low,1.23456789012346E+018,00123,2026-01-05\n"
                 + f"{IDS[1]},Printer,Low,1.23456789012346E+018,123,01/05/26\n"
                 + f"{IDS[2]},Printer,High,1234567890123456789,00123,2026-01-05\n"  # a real edit
                 + f"{IDS[3]},Printer,High,1234567890123456789,123,2026-01-05\n")  # both
    plan = plan_rows(rows, baselines={t: BASE for t in IDS})
    assert [(op.row_number, op.kind, dict(op.payload)) for op in plan.operations] == [(4, "update", {"priority": "High"})]
    assert [(h.row_number, h.status, h.code, h.ticket_id) for h in plan.holds] == [
        (2, "held", "reformatted", IDS[0]), (3, "held", "reformatted", IDS[1]), (5, "held", "reformatted", IDS[3])]
    assert plan.counts()["hold"] == 3 and plan.requests == 1
    long = (f"customField_{LONG} holds 1.23456789012346E+018 where bulksync last sent 1234567890123456789: "
            "LibreOffice or Excel rewrote the number when the file was saved; format the column as Text (or "
            "import the CSV with that column as Text) and put the values back, or give --send-reformatted "
            "to send them as they are")
    code = (f"customField_{CODE} holds 123 where bulksync last sent 00123: LibreOffice or Excel took the text "
            "for a number and dropped its leading zeros when the file was saved; format the column as Text "
            "(or import the CSV with that column as Text) and put the values back, or give "
            "--send-reformatted to send them as they are")
    due = (f"customField_{DUE} holds 01/05/26 where bulksync last sent 2026-01-05: LibreOffice or Excel took "
           "the text for a date and wrote it in its own date format when the file was saved; format the "
           "column as Text (or import the CSV with that column as Text) and put the value back, or give "
           "--send-reformatted to send it as it is")
    also = ("the row has other edits too, held with it so that no row is sent in part: put the re-written "
            "values back (or give --send-reformatted) and push again to send them")
    assert hold_groups(plan.holds) == {("held", long): [2, 3], ("held", code): [3, 5], ("held", due): [3],
                                       ("held", also): [5]}
    # The sheet says each row's own values; a row held with an edit says so.
    assert plan.holds[0].message == (
        f"customField_{LONG} holds 1.23456789012346E+018 where bulksync last sent 1234567890123456789: "
        "LibreOffice or Excel rewrote the number when the file was saved; format the column as Text (or "
        "import the CSV with that column as Text) and put the value back, or give --send-reformatted to "
        "send it as it is")
    assert plan.holds[2].message.endswith(
        "; its other edits (priority) are held with it, so that the row is not sent in part")
    # What each held row would send is kept, for --send-reformatted.
    held_op = plan.holds[2].operation
    assert held_op is not None and dict(held_op.payload) == {
        "priority": "High", "customFields": [{"fieldId": CODE, "value": "123"}]}


def test_the_values_a_column_shows_differently_are_said_with_an_example(tmp_path: Path) -> None:
    rows = _rows(tmp_path, HEADER + f"{IDS[0]},Printer,Low,1.23457E+18,00123,2026-01-05\n"
                 + f"{IDS[1]},Printer,Low,9.87654E+18,00123,2026-01-05\n")
    plan = plan_rows(rows, baselines={IDS[0]: BASE, IDS[1]: {**BASE, f"customField_{LONG}": "9876543210987654321"}})
    [(key, at)] = hold_groups(plan.holds).items()
    assert at == [2, 3] and key[1].startswith(
        f"customField_{LONG} holds values like 1.23457E+18 where bulksync last sent 1234567890123456789: ")
    assert "9.87654E+18 where bulksync last sent 9876543210987654321" in plan.holds[1].message


def test_only_updates_against_a_baseline_are_held(tmp_path: Path) -> None:
    rows = _rows(tmp_path, HEADER + f",Printer,Low,123,123,1/5/2026\n{IDS[0]},Printer,Low,123,123,1/5/2026\n",
                 Defaults(form_id=FORM, channel=CHANNEL))
    plan = plan_rows(rows)  # no baseline: a create and a plain update, sent as they are
    assert [op.kind for op in plan.operations] == ["create", "update"] and plan.holds == ()


def test_a_value_given_by_set_is_not_the_sheets_and_is_never_held(tmp_path: Path) -> None:
    rows = _rows(tmp_path, f"ticketId,description\n{IDS[0]},Printer\n",
                 Defaults(set={f"customField_{CODE}": "123"}))
    plan = plan_rows(rows, baselines={IDS[0]: BASE})
    assert plan.holds == () and [dict(op.payload) for op in plan.operations] == [
        {"customFields": [{"fieldId": CODE, "value": "123"}]}]


def test_force_does_not_send_a_rewritten_value(tmp_path: Path) -> None:
    rows = _rows(tmp_path, HEADER + f"{IDS[0]},Printer,Low,1234567890123456789,123,2026-01-05\n")
    plan = plan_rows(rows, baselines={IDS[0]: BASE}, force=True)
    assert plan.operations == () and [h.row_number for h in plan.holds] == [2]


def test_send_reformatted_releases_the_held_rows_in_sheet_order(tmp_path: Path) -> None:
    rows = _rows(tmp_path, HEADER + f"{IDS[0]},Printer,High,1234567890123456789,00123,2026-01-05\n"
                 + f"{IDS[1]},Printer,Low,1234567890123456789,123,2026-01-05\n"
                 + f"{IDS[2]},Printer,High,1234567890123456789,00123,2026-01-05\n")
    plan = plan_rows(rows, baselines={t: BASE for t in IDS})
    reply = Operation(3, "reply", IDS[1], {"text": "hi", "channel": ["responder"]})
    plan = Plan(plan.operations + (reply,), holds=plan.holds)
    kept = settle_holds(plan)  # nothing released: the held row's reply is not sent either
    assert [(op.row_number, op.kind) for op in kept.operations] == [(2, "update"), (4, "update")]
    assert kept.holds == plan.holds
    sent = settle_holds(plan, release=frozenset({"reformatted"}))
    assert [(op.row_number, op.kind) for op in sent.operations] == [(2, "update"), (3, "update"), (4, "update"),
                                                                       (3, "reply")]
    assert sent.holds == () and dict(sent.operations[1].payload) == {
        "customFields": [{"fieldId": CODE, "value": "123"}]}
    # A hold of another kind stays, whatever is released.
    other = Hold(9, "stands where row 5's ticket was", code="stale")
    assert settle_holds(Plan((), holds=(other,)), release=frozenset({"reformatted"})).holds == (other,)


def test_a_long_number_rewritten_from_a_known_baseline_is_not_lost_digits(tmp_path: Path) -> None:
    from bulksync.config import resolve_settings
    from bulksync.preflight import prepare

    sheet = write(tmp_path / "t.csv", HEADER + f"{IDS[0]},Printer,Low,1.23457E+18,00123,2026-01-05\n"
                  + f"{IDS[1]},Printer,Low,1.23457E+18,00123,2026-01-05\n"
                  + f"{IDS[2]},Printer,Low,1.99999E+18,00123,2026-01-05\n")
    prepared = prepare(sheet, resolve_settings(sheet))
    assert [p.row_number for p in prepared.report.problems] == [2, 3, 4]
    # Row 3's ticket has no baseline (its digits are lost indeed), row 4's number is another.
    excused = excuse_reformatted(prepared.report, prepared.rows, {IDS[0]: BASE, IDS[2]: BASE})
    assert [p.row_number for p in excused.problems] == [3, 4]
    assert excuse_reformatted(prepared.report, prepared.rows, {}) is prepared.report


# -- through the sandbox -------------------------------------------------------------------------

def _env(sandbox: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}


def _status(sheet: Path) -> dict[str, tuple[str, str]]:
    import csv

    with sheet.open(newline="", encoding="utf-8") as f:
        return {r["description"]: (r["syncStatus"], r["syncError"]) for r in csv.DictReader(f)}


def _save_as_libreoffice(sheet: Path) -> None:
    """What LibreOffice (en-US) writes when the CSV is opened with its defaults and saved:
    long numbers in scientific notation with a three-digit exponent, leading zeros dropped,
    ISO dates as MM/DD/YY."""
    text = sheet.read_text(encoding="utf-8")
    for before, after in (("1234567890123456789", "1.23456789012346E+018"),
                          ("1234567890123456790", "1.23456789012346E+018"),
                          (",00123,", ",123,"), (",00456,", ",456,"),
                          ("2026-01-05", "01/05/26"), ("2026-02-05", "02/05/26")):
        text = text.replace(before, after)
    sheet.write_text(text, encoding="utf-8")


def test_a_csv_saved_again_by_libreoffice_holds_its_rows_and_sends_the_others(tmp_path: Path,
                                                                             sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "tickets.csv", f"description,priority,customField_{LONG},customField_{CODE},"
                  f"customField_{DUE}\n"
                  "Printer,Low,1234567890123456789,00123,2026-01-05\n"
                  "VPN,Low,1234567890123456790,00456,2026-02-05\n"
                  "Mail,Low,77,x,y\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    _save_as_libreoffice(sheet)
    sheet.write_text(sheet.read_text().replace("Mail,Low", "Mail,High"))  # the one real edit
    before = len(sandbox.requests())

    planned = run_cli("plan", str(sheet), env=_env(sandbox))
    assert planned.returncode == 1, planned.stderr
    said = [line for line in planned.stdout.splitlines() if ": held: " in line]
    assert said == [
        f"{sheet}: 2 rows (2–3): held: customField_{LONG} holds values like 1.23456789012346E+018 where bulksync last "
        "sent 1234567890123456789: LibreOffice or Excel rewrote the number when the file was saved; format "
        "the column as Text (or import the CSV with that column as Text) and put the values back, or give "
        "--send-reformatted to send them as they are",
        f"{sheet}: 2 rows (2–3): held: customField_{CODE} holds values like 123 where bulksync last sent "
        "00123: LibreOffice or Excel took the text for a number and dropped its leading zeros when the file "
        "was saved; format the column as Text (or import the CSV with that column as Text) and put the "
        "values back, or give --send-reformatted to send them as they are",
        f"{sheet}: 2 rows (2–3): held: customField_{DUE} holds values like 01/05/26 where bulksync last "
        "sent 2026-01-05: LibreOffice or Excel took the text for a date and wrote it in its own date format "
        "when the file was saved; format the column as Text (or import the CSV with that column as Text) "
        "and put the values back, or give --send-reformatted to send them as they are"]
    assert planned.stdout.splitlines()[-1] == (f"{sheet}: 0 to create, 1 to update, 0 unchanged, 0 with "
                                               "nothing to send, 0 invalid, 2 held (1 requests)")

    as_json = json.loads(run_cli("plan", str(sheet), "--json", env=_env(sandbox)).stdout)
    assert as_json["hold"] == 2 and [(h["row"], h["status"], h["code"]) for h in as_json["holds"]] == [
        (2, "held", "reformatted"), (3, "held", "reformatted")]
    assert as_json["holds"][0]["operation"]["method"] == "PATCH" and as_json["requests"] == 1

    pushed = run_cli("push", str(sheet), env=_env(sandbox))
    assert pushed.returncode == 1, pushed.stdout + pushed.stderr
    assert [line for line in pushed.stdout.splitlines() if ": held: " in line] == said  # the same words
    assert f"{sheet}: 0 created, 1 updated, 0 failed, 2 held (1 requests)" in pushed.stdout
    sent = sandbox.requests()[before:]
    mail = next(t for t in sandbox.tickets() if t["description"] == "Mail")
    assert [(r["method"], r["path"].rsplit("/", 1)[-1], r["body"]) for r in sent] == [
        ("PATCH", mail["id"], {"priority": "High"})]  # nothing of the held rows
    marks = _status(sheet)
    assert marks["Mail"] == ("updated", "")
    assert marks["Printer"][0] == marks["VPN"][0] == "held"
    assert marks["Printer"][1].startswith(f"customField_{LONG} holds 1.23456789012346E+018 where bulksync "
                                          "last sent 1234567890123456789: LibreOffice or Excel rewrote")
    assert f"customField_{CODE} holds 456 where bulksync last sent 00456" in marks["VPN"][1]

    # A second push holds them again, and sends nothing.
    again = run_cli("push", str(sheet), "--json", env=_env(sandbox))
    summary = json.loads(again.stdout)
    assert again.returncode == 1 and summary["held"] == 2 and summary["requests"] == 0
    assert [(g["status"], g["rows"], g["count"]) for g in summary["groups"]] == [("held", "2–3", 2)] * 3

    # --send-reformatted sends them as they are.
    forced = run_cli("push", str(sheet), "--send-reformatted", env=_env(sandbox))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    printer = next(t for t in sandbox.tickets() if t["description"] == "Printer")
    assert {cf["fieldId"]: cf["value"] for cf in printer["customFields"]} == {
        LONG: "1.23456789012346E+018", CODE: "123", DUE: "01/05/26"}
    assert _status(sheet)["Printer"] == ("updated", "")


def test_putting_the_value_back_releases_the_row(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", f"description,customField_{CODE}\nPrinter,00123\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    sheet.write_text(sheet.read_text().replace(",00123,", ",123,"))
    prepared = run_cli("validate", str(sheet), env=_env(sandbox))  # not a problem, but said
    assert prepared.returncode == 0 and prepared.stdout.endswith(": 1 row(s), valid\n")
    assert (f"note: push holds row 2: customField_{CODE} holds 123 where bulksync last sent 00123: "
            "LibreOffice or Excel took the text for a number") in prepared.stderr
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert not result.ok and result.counts["held"] == 1 and result.requests == 0
    sheet.write_text(sheet.read_text().replace(",123,", ",00123,"))
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert result.ok and result.counts["unchanged"] == 1 and _status(sheet)["Printer"] == ("unchanged", "")


def test_the_python_api_takes_send_reformatted(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", f"description,customField_{DUE}\nPrinter,2026-01-05\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    sheet.write_text(sheet.read_text().replace("2026-01-05", "1/5/2026"))
    report, plan = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url)
    assert report.valid and [(h.row_number, h.code) for h in plan.holds] == [(2, "reformatted")]
    assert plan.operations == ()
    report, plan = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, send_reformatted=True)
    assert plan.holds == () and [op.kind for op in plan.operations] == ["update"]
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, send_reformatted=True)
    assert result.ok and result.counts["updated"] == 1


def test_a_workbook_whose_text_cells_became_number_and_date_cells(tmp_path: Path, sandbox: Sandbox) -> None:
    import datetime as dt

    from openpyxl import Workbook, load_workbook

    book = tmp_path / "t.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["description", f"customField_{LONG}", f"customField_{CODE}", f"customField_{DUE}", "priority"])
    ws.append(["Printer", "1234567890123456789", "00123", "2026-01-05 14:30", "Low"])
    ws.append(["VPN", "42", "7", "x", "Low"])
    wb.save(book)
    assert bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    wb = load_workbook(book)
    ws = wb.active
    assert ws is not None
    # As Excel does when a column of text is turned into numbers and dates: cells, not text.
    ws["B2"], ws["C2"], ws["D2"] = 1234567890123456789, 123, dt.datetime(2026, 1, 5, 14, 30)
    ws["E3"] = "High"
    wb.save(book)
    before = len(sandbox.requests())
    result = bulksync.push(book, token=TOKEN, api_url=sandbox.url)
    assert not result.refused and result.counts["held"] == 1 and result.counts["updated"] == 1
    assert [r["body"] for r in sandbox.requests()[before:]] == [{"priority": "High"}]
    error = result.results[2].error
    assert f"customField_{LONG} holds 1.234567890123457e+18 where bulksync last sent 1234567890123456789" in error
    assert f"customField_{CODE} holds 123 where bulksync last sent 00123" in error
    assert f"customField_{DUE} holds 2026-01-05T14:30:00 where bulksync last sent 2026-01-05 14:30" in error
    from bulksync.sheets.read import read_table

    marks = read_table(book)
    status_at = marks.position("syncStatus")
    assert status_at is not None and marks.frame.at[2, status_at] == "held"


def test_a_number_s_notation_or_a_formula_rewritten_by_libreoffice_is_held(tmp_path: Path, sandbox: Sandbox) -> None:
    """What LibreOffice (en-US) did to a CSV it opened and saved with no edit (the reviewer's
    real run, issue 23.7): each of these values was sent as a PATCH; now each row is held
    and said, and only the real edit is sent."""
    rewritten = {"1,000": "1000", "+4915112345678": "4915112345678", "1e5": "100000", "1E3": "1000", "-0": "0",
                 "=1+1": "2"}
    rows = "".join(f'row {i},"{value}"\n' for i, value in enumerate([*rewritten, "77"]))
    sheet = write(tmp_path / "t.csv", f"description,customField_{CODE}\n{rows}")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    text = sheet.read_text(encoding="utf-8")
    for before, after in [*rewritten.items(), ("77", "78")]:  # 78: the one real edit
        text = text.replace(f',"{before}",', f",{after},")
    sheet.write_text(text, encoding="utf-8")
    sent = len(sandbox.requests())
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert result.counts["held"] == 6 and result.counts["updated"] == 1, result.summary()
    assert [r["body"] for r in sandbox.requests()[sent:]] == [{"customFields": [{"fieldId": CODE, "value": "78"}]}]
    said = {row: result.results[row].error for row in range(2, 8)}
    assert "took the text for a number and dropped its thousands separators" in said[2]
    assert "holds 4915112345678 where bulksync last sent +4915112345678: LibreOffice or Excel took the text for " \
           "a number and dropped its leading + when the file was saved" in said[3]
    assert "in scientific notation and wrote the number out in its own way" in said[4] and said[5]
    assert "took the text for the number -0 and wrote it as 0" in said[6]
    assert said[7] == (f"customField_{CODE} holds 2 where bulksync last sent =1+1: LibreOffice or Excel took the text "
                       "for a formula and replaced it by its result when the file was saved (bulksync writes such "
                       "values with a leading ', which keeps them text, when it writes them into a sheet); format "
                       "the column as Text (or import the CSV with that column as Text) and put the value back, or "
                       "give --send-reformatted to send it as it is")
