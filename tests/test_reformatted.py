"""Issue 23, point 7: a spreadsheet's reformatting is not an edit.

Excel and LibreOffice take text for numbers and dates, and write them back in their own
format when a file is saved: ``00123`` becomes ``123``, a 19-digit ID ``1.23456789012346E+018``,
``2026-01-05`` becomes ``01/05/26``. A push must not send that as an edit of the value bulksync
last sent: the row is held (marked, said once per column, exit 1) until the value is put back,
or ``--send-reformatted`` sends it as it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import bulksync
from bulksync.plan import date_order, reformatting
from tests.conftest import CHANNEL, FORM, write

LONG = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"  # a 19-digit ID (an order number, an IMEI)

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
    # neither
    ("4E12", "4E+12", None, "a room number: the old is no whole number"),
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

