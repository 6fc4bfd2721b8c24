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
from tests.conftest import CHANNEL, FORM, write

LONG = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"  # a 19-digit ID (an order number, an IMEI)


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

