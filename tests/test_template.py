"""template: a new sheet with bulksync's columns, notes and lists, as XLSX or CSV, or a preset's."""

from __future__ import annotations

from pathlib import Path

import openpyxl

import bulksync
from tests.conftest import run_cli


def test_template_xlsx_has_notes_lists_and_a_frozen_header(tmp_path: Path) -> None:
    out = tmp_path / "new.xlsx"
    field = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"
    result = run_cli("template", str(out), "--custom-field", f"{field}=Product area")
    assert result.returncode == 0, result.stderr
    ws = openpyxl.load_workbook(out)["Tickets"]
    header = [c.value for c in ws[1]]
    assert header == ["ticketId", "description", "priority", "status", "assignee", "requester",
                      "requesterChannel", "tags", "formId", f"customField_{field}"]
    assert all(c.comment is not None for c in ws[1])
    assert ws["J1"].comment.text == "Custom field Product area."
    assert ws.freeze_panes == "A2"
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    assert lists == {"D2:D10000": '"Open,In-progress,Escalated,Waiting for customer,On-hold,Closed"',
                     "C2:C10000": '"Low,Medium,High,CRITICAL"'}
    # The template is a valid sheet for bulksync: an empty one has nothing to do.
    assert bulksync.validate(out).valid


def test_template_csv_and_preset(tmp_path: Path) -> None:
    out = tmp_path / "new.csv"
    assert run_cli("template", str(out)).returncode == 0
    assert out.read_bytes() == b"ticketId,description,priority,status,assignee,requester,requesterChannel,tags,formId\r\n"
    zd = tmp_path / "zendesk.csv"
    assert run_cli("template", str(zd), "--preset", "zendesk").returncode == 0
    assert zd.read_text().strip() == "Id,Subject,Description,Requester email,Assignee,Status,Priority,Tags"
    again = run_cli("template", str(zd))
    assert again.returncode == 2 and "give --force" in again.stderr
