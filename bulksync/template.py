"""``bulksync template``: a fillable sheet with the right columns, notes and drop-down lists."""

from __future__ import annotations

import csv
from pathlib import Path

from bulksync.columns import API_FIELDS, CUSTOM_FIELD_PREFIX, PRIORITIES, STATUSES, is_uuid
from bulksync.errors import UsageError

__all__ = ["PRIORITIES", "STATUSES", "write_template"]

NOTES = {
    "ticketId": "Leave empty to create a ticket; bulksync writes the new ID here. "
                "With an ID, the row updates that ticket.",
    "description": "The ticket's text. Required to create a ticket.",
    "priority": "Low, Medium, High or CRITICAL (free text is allowed).",
    "status": "Open, In-progress, Escalated, Waiting for customer, On-hold or Closed.",
    "assignee": "Slack member ID of the agent (U… or W…), e.g. U05KQ2M8Z1A.",
    "requester": "Slack member ID of the person asking (U… or W…).",
    "requesterChannel": "Slack channel ID (C…, G…) or member ID (U…, W…). Required to create; "
                        "or give --channel.",
    "tags": "Comma-separated: billing, sso",
    "formId": "The form's UUID (from the form's URL in Suptask). Required to create; or give --form-id.",
}


def write_template(out: Path, *, custom_fields: list[tuple[str, str]] | None = None,
                   preset: str | None = None) -> None:
    """Write an empty sheet with the API columns (or a preset's source columns) to ``out``."""
    from bulksync.mapping import load_mapping
    from bulksync.sheets.atomic import replace_file

    custom_fields = custom_fields or []
    for uuid, _ in custom_fields:
        if not is_uuid(uuid):
            raise UsageError(f"--custom-field {uuid!r}: not a UUID")
    if preset:
        mapping = load_mapping(preset)
        header = mapping.sources()
        notes = {source: f"Mapped to Suptask's {field}." for field, source in mapping.columns.items()}
        if mapping.legacy_id:
            notes[mapping.legacy_id] = f"The {mapping.integration} ID: links the new ticket to it."
        status_column = mapping.columns.get("status")
        priority_column = mapping.columns.get("priority")
    else:
        header = ["ticketId", *API_FIELDS]
        notes = dict(NOTES)
        status_column, priority_column = "status", "priority"
    for uuid, label in custom_fields:
        name = f"{CUSTOM_FIELD_PREFIX}{uuid}"
        header.append(name)
        notes[name] = f"Custom field {label or uuid}." if label else f"Custom field {uuid}."

    suffix = out.suffix.lower()
    if suffix == ".csv":
        import io

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(header)
        replace_file(out, buf.getvalue().encode("utf-8"))
        return
    if suffix != ".xlsx":
        raise UsageError(f"{out}: a template is .xlsx or .csv")
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "Tickets"
    ws.append(header)
    for i, name in enumerate(header, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="4A154B")
        if name in notes:
            cell.comment = Comment(notes[name], "bulksync")
        ws.column_dimensions[get_column_letter(i)].width = max(14, min(40, len(name) + 4))
    ws.freeze_panes = "A2"
    for column, values in ((status_column, STATUSES), (priority_column, PRIORITIES)):
        if column in header and not preset:
            letter = get_column_letter(header.index(column) + 1)
            rule = DataValidation(type="list", formula1='"' + ",".join(values) + '"', allow_blank=True,
                                  showErrorMessage=False)
            rule.add(f"{letter}2:{letter}10000")
            ws.add_data_validation(rule)
    replace_file(out, wb.save)
