"""``bulksync mapping suggest`` (issue 27): a mapping file suggested from an export itself,
measured on real exports of seven tools (tests/data/real/SOURCES.md), loaded unchanged by
validate/plan/push, with its guesses listed until their marks are removed."""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bulksync.mapping import check_marks, export_preset, load_mapping
from bulksync.sheets.read import read_table
from bulksync.suggest import PRIORITIES, STATUSES, _place, names_a_column, render, suggest, toml_string
from bulksync.untrusted import MAX_TEXT
from tests.conftest import CHANNEL, FORM, run_cli, write

REAL = Path(__file__).parent / "data" / "real"
PEOPLE = "U073PBJPHGW"


# name → (legacy ID, description columns, status column, priority column, integration)
EXPECTED = {
    "servicenow_incident_pdi.csv": ("number", ["short_description"], "state", "priority", "ServiceNow"),
    "gitlab_issues_export.csv": ("Issue ID", ["Title", "Description"], "State", None, "GitLab"),
    "github_issues_geocal.csv": ("Issue number", ["Title", "Description"], "Status", None, "GitHub"),
    "glpi_cp1252.csv": ("ID", ["NAME", "CONTENT"], "STATUS", None, "GLPI"),
    "zendesk_plum-assignment.csv": ("Id", None, "Status", "Priority", "Zendesk"),
    "jira_planeso-jira-migration.csv": ("Issue key", ["Summary", "Description"], "Status", "Priority", "Jira"),
    "jira_server_asf.csv": ("Key", ["Summary"], "Status", "Priority", "Jira"),
    "freshdesk_devrev2ndproject.csv": ("Ticket ID", ["Subject", "Description"], "Status", "Priority", "Freshdesk"),
}
"""What a support lead would choose for each real export. ``None`` for the description: no
column says subject or text (Zendesk's CSV cut down to metrics), so any text column will do."""

PRESETS = {"zendesk_plum-assignment.csv": "zendesk", "jira_planeso-jira-migration.csv": "jira",
           "jira_server_asf.csv": "jira", "freshdesk_devrev2ndproject.csv": "freshdesk"}


def _suggested(name: str, tmp_path: Path) -> tuple[Path, Path, str]:
    sheet = tmp_path / name
    sheet.write_bytes((REAL / name).read_bytes())
    out = tmp_path / "suggested.toml"
    result = run_cli("mapping", "suggest", str(sheet), "--out", str(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return sheet, out, result.stderr


def _distinct(sheet: Path, column: str) -> set[str]:
    table = read_table(sheet)
    at = table.position(column)
    assert at is not None
    return {v.strip().casefold() for v in table.frame[at].tolist() if v.strip()} - {
        "generated at sat mar 22 10:53:30 utc 2014 by aman kaushik using jira 6.2#6252-sha1:aa343257d4ce030d9cb8c531be520be9fac1c996."}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_export_gets_the_columns_a_person_would_choose_and_plans_whole(name: str, tmp_path: Path) -> None:
    sheet, out, _ = _suggested(name, tmp_path)
    legacy, description, status, priority, integration = EXPECTED[name]
    mapping = load_mapping(out)  # the loader takes the suggestion unchanged
    assert (mapping.legacy_id, mapping.integration) == (legacy, integration)
    assert mapping.columns.get("status") == status and mapping.columns.get("priority") == priority
    if description is not None:
        assert list(mapping.description) == description
    for field_name, offered in (("status", STATUSES), ("priority", ("", *PRIORITIES))):
        if field_name in mapping.columns:  # every value of the file has its place, one Suptask offers
            table = mapping.values[field_name].table
            assert _distinct(sheet, mapping.columns[field_name]) <= set(table), field_name
            assert set(table.values()) <= set(offered)
    planned = run_cli("plan", str(sheet), "--mapping", str(out), "--default-requester", PEOPLE,
                      "--form-id", FORM, "--channel", CHANNEL, "--json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    plan = json.loads(planned.stdout)
    creates = [op for op in plan["operations"] if op["kind"] == "create"]
    assert plan["problems"] == [] and len(creates) == plan["rows"] == len(read_table(sheet).frame) - (
        name == "jira_server_asf.csv")  # Jira Server's footer line is not a ticket
    assert all(op["body"]["description"] for op in creates)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_an_export_a_preset_reads_gets_the_presets_columns_and_the_advice_to_use_it(
        name: str, tmp_path: Path) -> None:
    sheet, out, said = _suggested(name, tmp_path)
    preset, ours = load_mapping(PRESETS[name]), load_mapping(out)
    header = {h.strip() for h in read_table(sheet).header}
    legacy = next(c for c in (preset.legacy_id, *preset.alternatives.get("legacy_id", ())) if c in header)
    assert ours.legacy_id == legacy
    shared = [c for c in preset.description if c in header]
    if shared:
        assert list(ours.description) == shared
    for field_name in ("status", "priority"):
        assert ours.columns[field_name] == preset.columns[field_name]
    for key, value in ours.values["status"].table.items():  # the words a preset knows, placed alike
        if key in preset.values["status"].table:
            assert preset.values["status"].table[key] == value, key
    # The advice to use the preset is given exactly when the preset reads the file: its
    # columns there and its value maps holding every value (validate says no more than people).
    checked = run_cli("validate", str(sheet), "--mapping", PRESETS[name], "--default-requester", PEOPLE,
                      "--form-id", FORM, "--channel", CHANNEL, "--json")
    reads = not [p for p in json.loads(checked.stdout)["problems"]
                 if p["code"] in ("missing-column", "unmapped-value")]
    assert reads == (name in ("jira_server_asf.csv", "jira_planeso-jira-migration.csv")), name
    suggestion = suggest(read_table(sheet))
    assert suggestion.preset == (PRESETS[name] if reads else None)
    text = out.read_text(encoding="utf-8")
    assert (f"# --mapping {PRESETS[name]} (the preset" in text) == reads
    assert (f"note: --mapping {PRESETS[name]} (the preset" in said) == reads  # and on stderr
    why_not = suggest(read_table(sheet), preset=export_preset(read_table(sheet).header)).not_preset
    assert not reads or not why_not
    assert not why_not or f"note: {why_not}" in said
    assert (ours.integration == preset.integration) and _marked(text, "integration = ") is not reads


def test_a_value_it_cannot_place_is_a_guess_listed_by_validate_until_the_mark_is_removed(tmp_path: Path) -> None:
    sheet, out, _ = _suggested("freshdesk_devrev2ndproject.csv", tmp_path)
    text = out.read_text(encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith('"openpending"'))
    args = ("--mapping", str(out), "--default-requester", PEOPLE, "--form-id", FORM, "--channel", CHANNEL)
    checked = run_cli("validate", str(sheet), *args)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (f"note: {out}, line {line}: [values.status.map] 'openpending' = 'Waiting for customer' is marked "
            "'# check' (a guess): check it, then remove the mark") in checked.stderr
    out.write_text(text.replace("  # check: 'OpenPending'", "  # 'OpenPending'"), encoding="utf-8")
    again = run_cli("validate", str(sheet), *args)
    assert again.returncode == 0 and "openpending" not in again.stderr


def test_a_hash_inside_a_value_is_not_a_mark(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    text = ('integration = "Tool # check"\n[values.status.map]\n"a # check" = "Open"  # check: guessed\n'
            '# check: a comment line is no mark\n')
    assert tuple(m.note for m in check_marks(path, text)) == (
        f"{path}, line 3: [values.status.map] 'a # check' = 'Open' is marked '# check' (a guess): "
        "check it, then remove the mark",)


@pytest.mark.parametrize(("value", "kind", "target", "sure"), [
    ("Resolved", "status", "Closed", True), ("done", "status", "Closed", True),
    ("Fixed", "status", "Closed", True), ("NEW", "status", "Open", True), ("To Do", "status", "Open", True),
    ("Waiting on Customer", "status", "Waiting for customer", True),
    ("Waiting on ThingTrax", "status", "Waiting for customer", False),
    ("Awaiting parts from vendor", "status", "On-hold", False), ("Blorp", "status", "Open", False),
    ("Urgent", "priority", "CRITICAL", True), ("Blocker", "priority", "CRITICAL", True),
    ("1 - Critical", "priority", "CRITICAL", True), ("P2-High", "priority", "High", True),
    ("Normal", "priority", "Medium", True), ("5 - Planning", "priority", "Low", True),
    ("3", "priority", "Medium", False), ("-", "priority", "", True), ("Whenever", "priority", "Medium", False),
])
def test_values_are_placed_by_name_and_meaning(value: str, kind: str, target: str, sure: bool) -> None:
    assert _place(value, kind)[:2] == (target, sure)


def test_names_and_values_with_quotes_unicode_and_equals_are_escaped(tmp_path: Path) -> None:
    header = ['Ticket "ID"', "Тема = subject", "Status\\Phase", "Prio\u00e9"]
    rows = [["T-1", 'He said "hi" = ok', "Ouvert \"à\"", "Hoch"], ["T-2", "x\\y", "Ferm\u00e9 = done", "P1"],
            ["T-3", "tab\there", "Résolu", "Hoch"]]
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    sheet = write(tmp_path / "odd.csv", buf.getvalue())
    text = render(suggest(read_table(sheet), integration='My "desk" = 2'))
    data = tomllib.loads(text)
    assert data["integration"] == 'My "desk" = 2' and data["legacy_id"] == 'Ticket "ID"'
    out = tmp_path / "odd.toml"
    out.write_text(text, encoding="utf-8")
    mapping = load_mapping(out)
    assert mapping.columns["status"] == "Status\\Phase"
    assert set(mapping.values["status"].table) == {'ouvert "à"', "fermé = done", "résolu"}
    assert toml_string("a\"b\\c\nd\u0001") == '"a\\"b\\\\c\\nd\\u0001"'


def test_a_header_row_under_a_title_is_found_or_named(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "Ticket export of March\n\nID,Subject,Status\n1,Printer,Open\n2,VPN,Closed\n")
    result = run_cli("mapping", "suggest", str(sheet))
    assert result.returncode == 2 and "give --header-row 3" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("mapping", "suggest", str(sheet), "--header-row", "3")
    assert result.returncode == 0 and 'legacy_id = "ID"' in result.stdout
    assert names_a_column("Short description") and not names_a_column("Printer")


def test_out_is_never_overwritten_without_force_and_bad_input_is_one_line(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "ID,Subject,Status\n1,Printer,Open\n2,VPN,Closed\n")
    out = tmp_path / "m.toml"
    out.write_text("mine\n", encoding="utf-8")
    refused = run_cli("mapping", "suggest", str(sheet), "--out", str(out))
    assert refused.returncode == 2 and out.read_text(encoding="utf-8") == "mine\n"
    assert refused.stderr == f"bulksync: error: {out} exists; give --force to overwrite it (nothing was written)\n"
    forced = run_cli("mapping", "suggest", str(sheet), "--out", str(out), "--force")
    assert forced.returncode == 0 and load_mapping(out).legacy_id == "ID"
    for args in (("mapping", "suggest", str(tmp_path / "none.csv")),
                 ("mapping", "suggest", str(sheet), "--out", str(tmp_path / "no" / "m.toml"))):
        bad = run_cli(*args)
        assert bad.returncode == 2 and bad.stderr.startswith("bulksync: error: ") and "Traceback" not in bad.stderr
        assert bad.stderr.count("\n") == 1, bad.stderr


def test_the_template_and_the_suggestion_offer_one_list_of_values() -> None:
    import bulksync.columns
    import bulksync.suggest
    import bulksync.template

    for name in ("STATUSES", "PRIORITIES"):  # one definition, not two copies kept alike
        assert getattr(bulksync.template, name) is getattr(bulksync.columns, name), name
        assert getattr(bulksync.suggest, name) is getattr(bulksync.columns, name), name


def test_each_distinct_value_is_judged_once_not_each_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bulksync.suggest

    rows = "".join(f"T-{i},Printer {i},{('Open', 'Resolved', 'Awaiting parts')[i % 3]},"
                   f"{('Low', 'High')[i % 2]},{('A', 'B', 'C')[i % 3]}\n" for i in range(3000))
    sheet = write(tmp_path / "big.csv", "Key,Subject,Status,Priority,Kind\n" + rows)
    calls: list[str] = []
    place = bulksync.suggest._place

    def counted(value: str, kind: str) -> tuple[str, bool, str]:
        calls.append(value)
        return place(value, kind)

    monkeypatch.setattr(bulksync.suggest, "_place", counted)
    mapping = tomllib.loads(render(suggest(read_table(sheet))))
    assert mapping["columns"]["status"] == "Status" and mapping["columns"]["priority"] == "Priority"
    assert len(calls) < 100, len(calls)  # a few per distinct value, not 3,000 per column


def _suggestion(tmp_path: Path, text: str, name: str = "export.csv", **options: str) -> tuple[str, dict]:
    """The suggestion for a CSV of ``text``: as written, and as TOML."""
    rendered = render(suggest(read_table(write(tmp_path / name, text)), **options))
    return rendered, tomllib.loads(rendered)


def _marked(text: str, start: str) -> bool:
    """Is the line of ``text`` that starts with ``start`` marked ``# check``?"""
    line = next(t for t in text.splitlines() if t.startswith(start))
    return bool(re.search(r"\s#\s*check", line))


@pytest.mark.parametrize("column", [("Fix Version", "1.2", "2.0", "3.1", "1.2"),
                                    ("Hours spent", "1.5", "0.5", "2", "3.25"),
                                    ("Id", "1", "2.5", "0003", "4")])
def test_decimal_numbers_are_never_priorities(column: tuple[str, ...], tmp_path: Path) -> None:
    header, *values = column
    rows = "".join(f"AB-{i},Crash number {i},Open,{v}\n" for i, v in enumerate(values))
    _, data = _suggestion(tmp_path, f"Key,Summary,Status,{header}\n" + rows)
    assert "priority" not in data.get("columns", {}) and "priority" not in data.get("values", {})
    assert _place("1.2", "priority")[1] is False and "rank" not in _place("2.0", "priority")[2]


def test_a_column_chosen_by_its_values_alone_is_marked(tmp_path: Path) -> None:
    rows = "".join(f"{i},Printer {i},{s}\n" for i, s in enumerate(("Open", "Closed", "In progress", "Open")))
    text, data = _suggestion(tmp_path, "ID,Subject,Phase\n" + rows)
    assert data["columns"]["status"] == "Phase" and _marked(text, "status = ")
    text, data = _suggestion(tmp_path, "ID,Subject,Status\n" + rows)
    assert data["columns"]["status"] == "Status" and not _marked(text, "status = ")


def test_a_bare_number_priority_scale_is_marked_both_ways_round(tmp_path: Path) -> None:
    rows = "".join(f"{i},Printer {i},{p}\n" for i, p in enumerate(("1", "2", "3", "4", "5")))
    text, data = _suggestion(tmp_path, "ID,Subject,Priority\n" + rows)
    assert set(data["values"]["priority"]["map"]) == {"1", "2", "3", "4", "5"}
    for value in "12345":
        assert _marked(text, f'"{value}" = '), value
    assert not _marked(text, "priority = ")  # the column itself is sure: its header says so


@pytest.mark.parametrize(("value", "target"), [("Résolu", "Closed"), ("Fermé", "Closed"), ("FERMÉ", "Closed"),
                                               ("Gelöst", "Closed"), ("En cours", "In-progress")])
def test_accents_do_not_hide_a_status_word(value: str, target: str) -> None:
    assert _place(value, "status")[:2] == (target, True)


@pytest.mark.parametrize(("value", "kind", "not_target"), [
    ("Unresolved", "status", "Closed"), ("Not fixed", "status", "Closed"), ("No response", "status", "Closed"),
    ("not resolved", "status", "Closed"), ("Non-resolved", "status", "Closed"), ("Undone", "status", "Closed"),
    ("Uncompleted", "status", "Closed"), ("Not urgent", "priority", "CRITICAL"),
    ("non-urgent", "priority", "CRITICAL"), ("Unimportant", "priority", "High")])
def test_a_negation_never_reads_as_the_word_it_negates(value: str, kind: str, not_target: str) -> None:
    target, sure, _ = _place(value, kind)
    assert target != not_target and not sure, (target, sure)


def test_a_header_says_id_only_by_whole_words(tmp_path: Path) -> None:
    text, data = _suggestion(tmp_path, "Case,Subject,Status,Serial Number\nC-1001,Laptop broken,Open,8812345\n"
                                       "C-1002,Screen flicker,Closed,8812399\nC-1003,Battery dead,Closed,8819999\n")
    assert data["legacy_id"] == "Case"
    assert "header says" not in next(t for t in text.splitlines() if t.startswith("legacy_id"))


def test_a_key_of_several_parts_is_an_id(tmp_path: Path) -> None:
    _, data = _suggestion(tmp_path, "Ticket ID,Subject,Status\nHD-2024-00123,Printer,Open\n"
                                    "HD-2024-00124,VPN down,Closed\nHD-2025-00001,Mail,Open\n")
    assert data["legacy_id"] == "Ticket ID"


@pytest.mark.parametrize(("rows", "said"), [
    ("1,a b,Open\n2,c d,Closed\n2,e f,Open\n", "# ID is not the legacy ID: row 4 repeats '2' (row 3)."),
    ("1,a b,Open\n,c d,Closed\n3,e f,Open\n", "# ID is not the legacy ID: it is empty in row 3.")])
def test_an_id_column_it_rejects_is_named_with_its_row_and_value(rows: str, said: str, tmp_path: Path) -> None:
    text, data = _suggestion(tmp_path, "ID,Subject,Status\n" + rows)
    assert "legacy_id" not in data and said in text.splitlines()
    sheet = write(tmp_path / "titled.csv", "Ticket export of March\n\nID,Subject,Status\n" + rows)
    text = render(suggest(read_table(sheet, header_row=3)))  # rows as the sheet numbers them
    assert said.replace("row 4", "row 6").replace("row 3", "row 5") in text.splitlines()


def test_a_status_column_of_too_many_values_is_said_not_silently_left(tmp_path: Path) -> None:
    rows = "".join(f"{i},Printer {i},Step {i % 41}\n" for i in range(45))
    text, data = _suggestion(tmp_path, "ID,Subject,Status\n" + rows)
    assert "status" not in data.get("columns", {})
    listed = text[text.index("# Not mapped"):]
    assert "#   Status: its header says status, but it has 41 distinct values and a status column has few" in listed


@pytest.mark.parametrize("values", [("101", "102"), ("0b8c7f64-3c2a-4b59-9f0e-2a1d5e6c7b8a",
                                                     "1c9d8e75-4d3b-4c6a-8e1f-3b2e6f7d8c9b")])
def test_an_export_column_named_ticketId_is_named_as_a_clash_to_rename(values: tuple[str, ...],
                                                                       tmp_path: Path) -> None:
    rows = "".join(f" {v} ,Printer {i},Open\n" for i, v in enumerate(values))
    text, data = _suggestion(tmp_path, " ticketId ,Subject,Status\n" + rows)
    said = ("ticketId: clashes with bulksync's own ticketId column (the Suptask ticket each row updates): "
            "rename it in the export (e.g. to \"Old ID\") before push")
    assert f"# {said}" in text
    assert f"#   {said}" in text[text.index("# Not mapped"):]  # listed with its reason
    assert "ticketId" not in json.dumps(data)  # never mapped as anything


def test_a_last_row_of_one_cell_that_reads_as_a_ticket_is_kept_as_one(tmp_path: Path) -> None:
    text, data = _suggestion(tmp_path, "Subject,Status,Priority,Notes\nPrinter jam,Open,High,x\n"
                                       "VPN down,Closed,Low,y\nNeed help with the new laptop,,,\n")
    assert "footer" not in data and "(3 rows)" in text.splitlines()[0]
    assert "# footer: not set: row 4 holds only its first cell ('Need help with the new laptop')" in text


@pytest.mark.parametrize(("last", "footer", "sure"), [
    ("Generated at Sat Mar 22 10:53:30 UTC 2014 by Aman Kaushik using JIRA 6.2", "Generated at ", True),
    ("Exported from Zendesk on 2024-03-01", "Exported from ", True), ("Total: 42", "Total: ", True),
    ("Page 1 of 3", "Page ", True), ("42 records", "42 records", False)])
def test_only_an_exporters_line_is_a_footer(last: str, footer: str, sure: bool, tmp_path: Path) -> None:
    text, data = _suggestion(tmp_path, f"ID,Subject,Status\n1,Printer jam,Open\n2,VPN down,Closed\n{last},,\n")
    assert data["footer"] == footer and data["legacy_id"] == "ID"
    assert _marked(text, "footer = ") is not sure


def test_the_suggestion_and_the_map_stage_share_one_footer_rule(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import bulksync.mapping

    sheet = write(tmp_path / "f.csv", "ID,Subject,Status\n1,Printer jam,Open\n2,VPN down,Closed\n"
                                      "Generated at noon by JIRA,,\n,,\n")
    asked: list[int] = []
    rule = bulksync.mapping.footer_row

    def spy(frame: Any) -> Any:
        asked.append(1)
        return rule(frame)

    monkeypatch.setattr(bulksync.mapping, "footer_row", spy)
    out = tmp_path / "f.toml"
    out.write_text(render(suggest(read_table(sheet))), encoding="utf-8")
    assert len(asked) == 1
    mapped = bulksync.mapping.apply_mapping(read_table(sheet), load_mapping(out), default_requester=PEOPLE)
    assert len(asked) == 2 and 4 not in mapped.table.frame.index  # row 4, the footer, left out


@pytest.mark.parametrize(("text", "guessed"), [
    ("Ticket ID,Subject,Description,Status,Priority,Requester Email,Tags\n1,Printer broken,It does not print,"
     "Open,High,a@x.com,hw\n2,VPN down,Cannot connect,Resolved,Low,b@x.com,net\n", None),
    ("ID,Name,Content,Status\n1,Printer,It jams,Open\n2,VPN,It drops,Closed\n", "GLPI"),
    ("ID,Subject,Body,Status\n1,Printer,see https://github.com/acme/app/issues/4,Open\n2,VPN,drops,Closed\n",
     "GitHub")])
def test_a_guessed_integration_is_always_marked(text: str, guessed: str | None, tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "export.csv", text))
    rendered = render(suggest(table, preset=export_preset(table.header)))  # as the CLI calls it
    assert guessed is None or tomllib.loads(rendered)["integration"] == guessed
    assert _marked(rendered, "integration = ")
    rendered, data = _suggestion(tmp_path, text, integration="Old desk")  # named: no guess
    assert data["integration"] == "Old desk" and not _marked(rendered, "integration = ")


def test_a_generic_export_gets_no_preset_advice_but_why_not(tmp_path: Path) -> None:
    text = ("\ufeffTicket ID,Subject,Description,Status,Priority,Requester Email,Tags\n"
            "1,Printer broken,It does not print,Open,High,a@x.com,\"hw,printer\"\n"
            "2,VPN down,Cannot connect,Resolved,Low,b@x.com,net\n3,Email slow,Slow,In Progress,Urgent,c@x.com,\n")
    table = read_table(write(tmp_path / "bom.csv", text))
    suggestion = suggest(table, preset=export_preset(table.header))  # as the CLI calls it
    assert suggestion.preset is None and "use it" not in render(suggestion)
    assert "--mapping zendesk does not read this file: the file has no column Id" in suggestion.not_preset
    said = run_cli("mapping", "suggest", str(table.path)).stderr
    assert "use it" not in said and "--mapping zendesk does not read this file" in said


def _comments(text: str) -> list[tuple[int, str]]:
    """(line number, comment) of each line of a suggestion (its strings are basic strings)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        quoted = escaped = False
        for at, ch in enumerate(line):
            if quoted:
                quoted, escaped = escaped or ch != '"', not escaped and ch == "\\"
            elif ch == '"':
                quoted = True
            elif ch == "#":
                out.append((number, line[at:]))
                break
    return out


def test_no_comment_reads_as_a_mark_but_the_marks(tmp_path: Path) -> None:
    rows = [["1", "Printer", "Open # check", "High", "x", "Tom # check"],
            ["2", "VPN", "Done #CHECK it", "Low", "y", "Ann"], ["3", "Mail", "#check", "Low", "z", "Bo"],
            ["4", "Disk", "Open", "High", "w", "Tom # check"], ["# check this out", "", "", "", "", ""]]
    buf = io.StringIO()
    csv.writer(buf).writerows([["ID", "Subject", "Status", "Priority", "Checklist # check", "Assignee"], *rows])
    sheet = write(tmp_path / "marks.csv", buf.getvalue())
    text = render(suggest(read_table(sheet), integration="Old # check desk"))
    data = tomllib.loads(text)
    assert data["integration"] == "Old # check desk"  # values are kept exactly: only comments change
    assert {"open # check", "done #check it", "#check"} <= set(data["values"]["status"]["map"])
    marked = set()
    for number, comment in _comments(text):
        assert not re.search(r"#\s*check", comment[1:], re.IGNORECASE), comment  # never later in a comment
        if re.match(r"#\s*check", comment, re.IGNORECASE):
            assert comment.startswith("# check: "), comment
            marked.add(number)
    assert marked  # the unplaceable statuses are guesses
    assert {m.line for m in check_marks(tmp_path / "m.toml", text)} == marked
    assignee = next(t for t in text.splitlines() if t.startswith("# assignee = "))
    uncommented = tomllib.loads(assignee[2:].split("   #")[0])  # the line to uncomment keeps its value
    assert uncommented == {"assignee": "Assignee"}
    footer = next(t for t in text.splitlines() if t.startswith("# footer: not set"))  # a row of one cell
    assert tomllib.loads(footer.split("if it is not one, ")[1]) == {"footer": "# check "}


def test_a_header_only_export_is_suggested_from_its_headers(tmp_path: Path) -> None:
    text, data = _suggestion(tmp_path, "Ticket ID,Subject,Description,Status,Priority,Requester Email\n")
    assert data["description"]["columns"] == ["Subject", "Description"] and "no column of text" not in text
    assert data["columns"]["status"] == "Status" and data["values"]["status"]["map"] == {}
    assert data["legacy_id"] == "Ticket ID" and _marked(text, "legacy_id = ")  # no values to judge it by
    assert data["columns"]["requester"] == "Requester Email"


def test_a_table_under_a_title_block_gets_the_header_row_to_give(tmp_path: Path) -> None:
    from bulksync.suggest import HeaderBelow

    sheet = REAL / "title_block_header_row6.xlsx"
    with pytest.raises(HeaderBelow) as raised:
        suggest(read_table(sheet, names=names_a_column))
    assert raised.value.row == 6 and str(raised.value).endswith("give --header-row 6")
    result = run_cli("mapping", "suggest", str(sheet))
    assert result.returncode == 2 and result.stdout == "" and "give --header-row 6" in result.stderr
    assert tomllib.loads(render(suggest(read_table(sheet, header_row=6))))["legacy_id"] == "User Id"


def test_values_and_names_in_comments_are_capped(tmp_path: Path) -> None:
    long = "Very long header " * 100
    text, _ = _suggestion(tmp_path, f"ID,Subject,Status,{long}\n1,Printer,Open,x\n2,VPN,Closed,y\n")
    assert long.strip() not in text and max(len(line) for line in text.splitlines()) < MAX_TEXT + 100


def test_a_value_that_ends_a_line_to_some_readers_stays_on_its_line(tmp_path: Path) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([["ID", "Subject", "Status"], ["1", "Printer", "Open\u2028# check"],
                               ["2", "VPN", "Closed\x85x"], ["3", "Mail", "Open"]])
    text = render(suggest(read_table(write(tmp_path / "ls.csv", buf.getvalue()))))
    assert len(text.splitlines()) == text.count("\n")  # line numbers agree, whoever counts them
    assert {"open\u2028# check", "closed\x85x"} <= set(tomllib.loads(text)["values"]["status"]["map"])
    assert toml_string("a\u2028b\u202e") == '"a\\u2028b\\u202E"'
