"""Real ticket exports from public repositories through the presets (issue 18; sources and
licences in tests/data/real/SOURCES.md): what is sent, what is written, and that every byte of
the user's cells is as it was."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli

REAL = Path(__file__).parent / "data" / "real"
OWN = ["ticketId", "ticketNumber", "syncStatus", "syncError"]


def _copy(name: str, tmp_path: Path) -> Path:
    sheet = tmp_path / name
    shutil.copyfile(REAL / name, sheet)
    return sheet


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def assert_only_ours_added(original: Path, written: Path) -> list[dict[str, str]]:
    """The written export is the original with bulksync's columns appended to each record (its
    line ends as they were); returns bulksync's cells by row."""
    before, after = original.read_bytes(), written.read_bytes()
    old, new = _records(before), _records(after)
    assert len(old) == len(new)
    width = len(old[0])
    for was, now in zip(old, new, strict=True):
        assert now[:width] == was
    assert new[0][width:] == OWN[:len(new[0]) - width]
    assert before.count(b"\r\n") == after.count(b"\r\n") and before.count(b"\n") == after.count(b"\n")
    return [dict(zip(new[0][width:], row[width:], strict=False)) for row in new[1:]]


def _users(path: Path, sheet: Path, *columns: str) -> Path:
    """A users file giving each person the export names (by name or account ID) a member ID."""
    rows = _records(sheet.read_bytes())
    header = rows[0]
    people = sorted({row[i] for row in rows[1:] for i, h in enumerate(header) if h in columns and row[i]})
    people += sorted({row[i].split(";")[1] for row in rows[1:] for i, h in enumerate(header)
                      if h == "Comment" and row[i].count(";") >= 2})
    path.write_text("user,slackId\n" + "".join(f"{p},U{n:09d}\n" for n, p in enumerate(people, 1)),
                    encoding="utf-8")
    return path


def test_a_jira_cloud_export_without_labels_with_comments(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _copy("jira_planeso-jira-migration.csv", tmp_path)
    users = _users(tmp_path / "users.csv", sheet, "Reporter", "Assignee")
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, mapping="jira", users=str(users),
                           form_id=FORM, channel=CHANNEL)
    assert result.ok and result.written_to == sheet, result.summary()
    rows = _records((REAL / "jira_planeso-jira-migration.csv").read_bytes())
    header = rows[0]
    tickets = {t["description"].split("\n\n")[0]: t for t in sandbox.tickets()}
    assert len(tickets) == len(rows) - 1 == 12
    status = {"To Do": "Open", "In Progress": "In-progress", "Done": "Closed"}
    for row in rows[1:]:
        ticket = tickets[row[header.index("Summary")]]
        assert ticket["status"] == status[row[header.index("Status")]] and ticket["priority"] == "Medium"
        comments = [row[i] for i, h in enumerate(header) if h == "Comment" and row[i]]
        # Each comment is a reply, its body (after "date;author;") whitespace and all.
        assert [r["text"] for r in ticket["replies"]] == [c.split(";", 2)[2] for c in comments]
    ours = assert_only_ours_added(REAL / "jira_planeso-jira-migration.csv", sheet)
    assert [r["syncStatus"] for r in ours] == ["created"] * 12
    assert sorted(r["ticketId"] for r in ours) == sorted(t["id"] for t in sandbox.tickets())


def test_a_freshdesk_export_with_the_fields_it_was_given(tmp_path: Path, sandbox: Sandbox) -> None:
    # No Agent and no Tags column (a Freshdesk export has the fields ticked), a status the
    # preset cannot know (OpenPending): one problem, with the lines to add.
    sheet = _copy("freshdesk_devrev2ndproject.csv", tmp_path)
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    args = ("--mapping", "freshdesk", "--default-requester", "U073PBJPHGW", "--form-id", FORM, "--channel", CHANNEL)
    checked = run_cli("validate", str(sheet), *args)
    assert checked.returncode == 1 and sandbox.requests() == []
    assert checked.stdout.splitlines()[0] == (
        f"{sheet}: row 11, column Status (→ status): 'OpenPending' has no status in the mapping; add it "
        "to [values.status] in a mapping file with extends = \"freshdesk\" (it keeps the rest of the "
        "preset), e.g. map = { \"openpending\" = \"…\" }, or give a default")
    pushed = run_cli("push", str(sheet), *args, "--skip-invalid", "-q", env=env)
    assert pushed.returncode == 1 and len(sandbox.tickets()) == 14  # the invalid row alone is left out
    ours = assert_only_ours_added(REAL / "freshdesk_devrev2ndproject.csv", sheet)
    assert [r["syncStatus"] for r in ours].count("created") == 14 and ours[9]["syncStatus"] == "invalid"
    mapping = tmp_path / "freshdesk-ours.toml"
    mapping.write_text('extends = "freshdesk"\n[values.status]\nmap = { "openpending" = "Waiting for customer" }\n')
    again = run_cli("push", str(sheet), "--mapping", str(mapping), *args[2:], "-q", env=env)
    assert again.returncode == 0 and len(sandbox.tickets()) == 15, again.stdout + again.stderr
    assert {t["requesterId"] for t in sandbox.tickets()} == {"U073PBJPHGW"}  # no --users: the default


def test_a_freshdesk_export_naming_the_email_contact_id(tmp_path: Path) -> None:
    # A newer export: the requester's email is in Contact ID, and there is no Description.
    import json

    sheet = _copy("freshdesk_thingtrax-header-only.csv", tmp_path)
    users = tmp_path / "users.csv"
    users.write_text("user,slackId\nana@example.com,U073PBJPHGW\n", encoding="utf-8")
    with sheet.open("ab") as f:  # a row of ours, in the export's own shape
        f.write(b",".join([b"42", b"Printer jams", b"Waiting on Customer", b"High"] + [b""] * 23
                          + [b"ana@example.com", b""]) + b"\r\n")
    planned = run_cli("plan", str(sheet), "--mapping", "freshdesk", "--users", str(users), "--form-id", FORM,
                      "--channel", CHANNEL, "--json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    create = json.loads(planned.stdout)["operations"][0]
    assert (create["row"], create["body"]["description"], create["body"]["requester"], create["body"]["status"]) == (
        2, "Printer jams", "U073PBJPHGW", "Waiting for customer")


def test_a_zendesk_export_cut_down_to_metrics_names_what_it_lacks(tmp_path: Path, sandbox: Sandbox) -> None:
    # Zendesk's columns, but no Subject: no description can be made. Said once, nothing sent;
    # a mapping that extends the preset takes the description from another column.
    sheet = _copy("zendesk_plum-assignment.csv", tmp_path)
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    args = ("--default-requester", "U073PBJPHGW", "--form-id", FORM, "--channel", CHANNEL)
    refused = run_cli("push", str(sheet), "--mapping", "zendesk", *args, "--skip-invalid", env=env)
    assert refused.returncode == 1 and sandbox.requests() == []
    assert (f"{sheet}: row 1, column Subject: the mapping composes the description from Subject, "
            "Description; none is in this sheet") in refused.stdout + refused.stderr
    mapping = tmp_path / "zendesk-metrics.toml"
    mapping.write_text('extends = "zendesk"\n[description]\ncolumns = ["Manual Tagging of Categories [list]", "Group"]\n')
    pushed = run_cli("push", str(sheet), "--mapping", str(mapping), *args, "-q", env=env)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    rows = _records((REAL / "zendesk_plum-assignment.csv").read_bytes())
    status = {"New": "Open", "Open": "Open", "Pending": "Waiting for customer", "Hold": "On-hold",
              "Solved": "Closed", "Closed": "Closed"}
    assert sorted(t["status"] for t in sandbox.tickets()) == sorted(status[r[3]] for r in rows[1:])
    ours = assert_only_ours_added(REAL / "zendesk_plum-assignment.csv", sheet)
    assert [r["syncStatus"] for r in ours] == ["created"] * 15


def test_a_mapping_column_can_be_the_first_of_several(tmp_path: Path) -> None:
    from tests.conftest import write

    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\nrequester = ["Email", "Contact ID"]\n[description]\ncolumns = ["Subject"]\n')
    sheet = write(tmp_path / "t.csv", "Subject,Contact ID\nPrinter jams,U073PBJPHGW\n")
    assert bulksync.validate(sheet, mapping=str(mapping), form_id=FORM, channel=CHANNEL).valid
    neither = write(tmp_path / "n.csv", "Subject,Mail\nPrinter jams,U073PBJPHGW\n")
    report = bulksync.validate(neither, mapping=str(mapping), form_id=FORM, channel=CHANNEL)
    assert [p.message for p in report.problems] == [
        "the mapping (columns.requester, or 'Contact ID') reads a column 'Email' that this sheet does not have"]
    mapping.write_text('[columns]\nrequester = []\n')
    bad = run_cli("validate", str(sheet), "--mapping", str(mapping))
    assert bad.returncode == 2 and "columns.requester must be a column name, or a list of column names" in bad.stderr
    for text, said in (('legacy_id = []\n', "legacy_id must be a column name, or a list of column names"),
                       ('nobody = "Unassigned"\n', "nobody must be a list of values that mean no one")):
        mapping.write_text(text)
        bad = run_cli("validate", str(sheet), "--mapping", str(mapping))
        assert bad.returncode == 2 and said in bad.stderr, bad.stderr
    mapping.write_text('legacy_id = ["Issue key", "Key"]\n[description]\ncolumns = ["Subject"]\n')
    report = bulksync.validate(sheet, mapping=str(mapping), form_id=FORM, channel=CHANNEL)
    assert [p.message for p in report.problems] == [
        "the mapping (legacy_id, or 'Key') reads a column 'Issue key' that this sheet does not have"]


def test_with_skip_invalid_rows_that_are_all_invalid_are_marked_not_the_sheet_refused(
        tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import write

    sheet = write(tmp_path / "jira.csv", "Summary,Issue key,Status,Priority,Reporter\n"
                                         "A,X-1,Weird,P9,U073PBJPHGW\nB,X-2,Odd,Medium,U073PBJPHGW\n")
    result = run_cli("push", str(sheet), "--mapping", "jira", "--form-id", FORM, "--channel", CHANNEL,
                     "--skip-invalid", "-q", env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 1 and sandbox.requests() == []
    rows = _records(sheet.read_bytes())
    assert [r[rows[0].index("syncStatus")] for r in rows[1:]] == ["invalid", "invalid"]
    assert "'Weird' has no status in the mapping" in rows[1][rows[0].index("syncError")]


def test_with_skip_invalid_a_sheet_whose_columns_are_wrong_says_so(tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import write

    sheet = write(tmp_path / "jira.csv", "Summary,Issue key,Status,Reporter\nA,X-1,Done,U073PBJPHGW\n")
    result = run_cli("push", str(sheet), "--mapping", "jira", "--form-id", FORM, "--channel", CHANNEL,
                     "--skip-invalid", env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 1 and sandbox.requests() == []
    assert "reads a column 'Priority' that this sheet does not have" in result.stderr
    assert ("the sheet's columns have problems (row 1): nothing was sent and the file is unchanged; fix "
            "them (--skip-invalid leaves out invalid rows, not these)") in result.stderr


def test_a_cp1252_glpi_export_with_mapping_messages_and_server_text_it_cannot_hold(
        tmp_path: Path, sandbox: Sandbox) -> None:
    import httpx

    sheet = _copy("glpi_cp1252.csv", tmp_path)
    original = (REAL / "glpi_cp1252.csv").read_bytes()
    mapping = tmp_path / "glpi.toml"
    mapping.write_text('integration = "GLPI"\nlegacy_id = "ID"\n[columns]\nstatus = "STATUS"\n'
                       '[description]\ncolumns = ["NAME", "CONTENT"]\n[values.status]\nmap = { new = "Open" }\n',
                       encoding="utf-8")
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    args = ("--mapping", str(mapping), "--form-id", FORM, "--channel", CHANNEL, "-q")
    # A first mapping without "closed": every row invalid; the message (with its →) is written
    # into the cp1252 file as the encoding can hold it, and nothing is sent.
    first = run_cli("push", str(sheet), *args, "--skip-invalid", env=env)
    assert first.returncode == 1 and "Traceback" not in first.stderr and sandbox.requests() == []
    text = sheet.read_bytes().decode("cp1252")  # still cp1252, and still ;-separated
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[0][6:] == ["syncStatus", "syncError"] and all(r[6] == "invalid" for r in rows[1:])
    assert rows[1][7].startswith("STATUS (-> status): 'closed' has no status in the mapping")
    old = list(csv.reader(io.StringIO(original.decode("cp1252"), newline=""), delimiter=";"))
    assert [r[:6] for r in rows] == old and "SETOR PRIVADO – DIFERENÇAS" in text
    # The mapping fixed: each ticket is created once, its text read as cp1252.
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('new = "Open"', 'closed = "Closed"'),
                       encoding="utf-8")
    second = run_cli("push", str(sheet), *args, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    tickets = sandbox.tickets()
    assert len(tickets) == 15 and {t["status"] for t in tickets} == {"Closed"}
    assert any(t["description"].startswith("VERIFICAÇÃO DE EQUIPAMENTO NO LOCAL\n\nSUBSTITUIÇÃO") for t in tickets)
    assert any("“O PRINCÍPIO DA SUPREMACIA" in t["description"] for t in tickets)
    rows = list(csv.reader(io.StringIO(sheet.read_bytes().decode("cp1252"), newline=""), delimiter=";"))
    ids = rows[0].index("ticketId")  # after the columns the first run added
    assert [r[:6] for r in rows] == old and sorted(r[ids] for r in rows[1:]) == sorted(t["id"] for t in tickets)

    # A server that answers in text cp1252 lacks: written escaped, the file still cp1252.
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "Статус “Ω” 日本 → not allowed"})

    changed = text.replace("Instalação de 4 máquinas", "Instalação de 5 máquinas")
    sheet.write_bytes(sheet.read_bytes().replace("Instalação de 4 máquinas".encode("cp1252"),
                                                 "Instalação de 5 máquinas".encode("cp1252")))
    assert changed != text
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, mapping=str(mapping), form_id=FORM,
                           channel=CHANNEL, transport=httpx.MockTransport(refuse))
    assert result.counts["failed"] == 1 and result.written_to == sheet, result.summary()
    rows = list(csv.reader(io.StringIO(sheet.read_bytes().decode("cp1252"), newline=""), delimiter=";"))
    failed = next(r for r in rows if r[0] == "30")
    assert failed[6] == "failed" and "\\u0421\\u0442\\u0430\\u0442\\u0443\\u0441 \"\\u03a9\" \\u65e5\\u672c -> not allowed" in failed[7]


def test_a_jira_server_export_of_current_fields(tmp_path: Path, sandbox: Sandbox) -> None:
    # Jira Server 6.2, current fields (public issues.apache.org): "Key" for "Issue key", with a
    # trailing space; "Unassigned" for no one; Blocker…Trivial priorities; no Labels column;
    # and Jira's footer line ("Generated at … using JIRA"), which is not an issue.
    sheet = _copy("jira_server_asf.csv", tmp_path)
    users = _users(tmp_path / "users.csv", sheet, "Reporter", "Assignee")
    report = bulksync.validate(sheet, mapping="jira", users=str(users), form_id=FORM, channel=CHANNEL)
    assert report.valid and report.rows == 12, report.lines()
    assert report.notes == ("row 14 is the exporter's footer (Generated at Sat Mar 22 10:53:30 UTC 201…), "
                            "not a ticket: left out",)
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, mapping="jira", users=str(users),
                           form_id=FORM, channel=CHANNEL)
    assert result.ok and result.written_to == sheet, result.summary()
    rows = _records((REAL / "jira_server_asf.csv").read_bytes())[:-1]  # without the footer
    header = rows[0]
    column = {name: header.index(name) for name in ("Key", "Summary", "Assignee", "Priority", "Status")}
    priority = {"Blocker": "CRITICAL", "Critical": "CRITICAL", "Major": "High", "Minor": "Low", "Trivial": "Low"}
    tickets = {t["externalLinks"][0]["externalId"]: t for t in sandbox.tickets()}
    assert len(tickets) == len(rows) - 1 == 12
    for row in rows[1:]:
        ticket = tickets[row[column["Key"]].strip()]
        assert ticket["description"] == row[column["Summary"]] and ticket["status"] == "Closed"
        assert ticket["priority"] == priority[row[column["Priority"]]]
        assert (ticket["assignee"] in (None, "UNASSIGNED")) == (row[column["Assignee"]] == "Unassigned")
    ours = assert_only_ours_added(REAL / "jira_server_asf.csv", sheet)
    assert [r["syncStatus"] for r in ours] == ["created"] * 12 + [""]  # the footer: left as it was
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, mapping="jira", users=str(users),
                          form_id=FORM, channel=CHANNEL)
    assert again.ok and len(sandbox.tickets()) == 12  # the keys and the IDs written: nothing created again


def test_a_custom_jira_status_is_mapped_by_its_status_category(tmp_path: Path, sandbox: Sandbox) -> None:
    """A workflow's own status (``Block``, in a real Jira Cloud export's shape) the preset cannot
    know: mapped by the Status Category Jira writes beside it, and said, not refused."""
    rows = _records((REAL / "jira_planeso-jira-migration.csv").read_bytes())
    header = rows[0]
    at, kind = header.index("Status"), header.index("Status Category")
    assert rows[2][at] == rows[2][kind] == "In Progress"
    rows[2][at] = "Block"
    sheet = tmp_path / "jira.csv"
    with sheet.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    users = _users(tmp_path / "users.csv", sheet, "Reporter", "Assignee")
    report, plan = bulksync.plan(sheet, api_url=sandbox.url, mapping="jira", users=str(users),
                                 form_id=FORM, channel=CHANNEL)
    assert report.valid, report.lines()
    assert report.notes.count("status 'Block' → 'In-progress' (its Status Category is 'In Progress'), for 1 "
                              "row(s): not in the mapping's [values.status], mapped by Status Category") == 1
    assert [op.payload["status"] for op in plan.operations if op.row_number == 3 and op.kind == "create"] == [
        "In-progress"]
