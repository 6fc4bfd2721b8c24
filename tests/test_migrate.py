"""The migration kit: presets over realistic exports, users, links, replies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import bulksync
from bulksync.errors import UsageError
from bulksync.mapping import load_mapping
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, write

SAMPLES = bundled("sample_data")
ANA, BEN, CHLOE, PRIYA, TOM = "U073PBJPHGW", "U06A1B2C3D4", "U04Z9Y8X7W6", "U05KQ2M8Z1A", "U02R4T6Y8U0"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name in ("zendesk-export.csv", "zendesk-comments.csv", "jira-export.csv",
                 "freshdesk-export.csv", "users.csv", "bulksync.toml"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    return tmp_path


def _push(sb: Sandbox, path: Path, **extra: Any) -> bulksync.RunResult:
    return bulksync.push(path, token=TOKEN, api_url=sb.url, users=path.parent / "users.csv", **extra)


def _by_description(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {t["description"].split("\n")[0]: t for t in sb.tickets()}


def _rerun_sends_no_post(sb: Sandbox, path: Path, **extra: Any) -> None:
    before = len(sb.requests())
    again = _push(sb, path, **extra)
    assert again.ok, again.summary()
    assert [r for r in sb.requests()[before:] if r["method"] == "POST"] == []
    assert again.requests == 0


def test_zendesk(work: Path, sandbox: Sandbox) -> None:
    path = work / "zendesk-export.csv"
    extra = {"mapping": "zendesk", "comments": work / "zendesk-comments.csv"}
    result = _push(sandbox, path, **extra)
    assert result.ok and result.counts["created"] == 4, result.summary()
    assert (result.side["linked"], result.side["replied"]) == (4, 6)
    t = _by_description(sandbox)
    sso = t["Cannot log in with SSO since this morning"]
    assert (sso["status"], sso["priority"], sso["requesterId"], sso["assignee"], sso["tags"]) == (
        "Open", "High", ANA, PRIYA, ["sso", "login", "vip"])
    assert sso["formId"] == FORM and sso["requesterChannel"] == CHANNEL
    assert sso["externalLinks"] == [{"externalId": "4211", "integrationType": "Zendesk"}]
    assert sso["replies"] == [
        {"text": "Since this morning the SSO page sends me back to the sign-in page, over and over.",
         "username": "Ana García", "channel": ["requester"]},
        {"text": "Checked the IdP logs: the SAML response is signed with the old certificate.",
         "username": "Priya Raman", "channel": ["responder"]},
        {"text": "We rotated the certificate; could you try again and clear your cookies first?",
         "username": "Priya Raman", "channel": ["requester"]},
    ]
    invoice = t["Invoice INV-00812 shows the wrong VAT rate"]
    assert (invoice["status"], invoice["priority"], invoice["assignee"]) == (
        "Waiting for customer", "Medium", TOM)
    export = t["Export to CSV times out for large workspaces"]
    assert (export["status"], export["priority"], export["assignee"]) == ("Open", "CRITICAL", None)
    assert t["Please add dark mode to the agent dashboard"]["status"] == "Closed"
    _rerun_sends_no_post(sandbox, path, **extra)


def test_jira(work: Path, sandbox: Sandbox) -> None:
    path = work / "jira-export.csv"
    result = _push(sandbox, path, mapping="jira")
    assert result.ok and result.counts["created"] == 3, result.summary()
    t = _by_description(sandbox)
    vpn = t["VPN drops every 10 minutes for the Berlin office"]
    assert vpn["description"] == ("VPN drops every 10 minutes for the Berlin office\n\n"
                                  "The VPN client disconnects roughly every ten minutes.\n"
                                  "Only the Berlin office is affected.")
    assert (vpn["status"], vpn["priority"], vpn["assignee"], vpn["requesterId"], vpn["tags"]) == (
        "In-progress", "High", TOM, BEN, ["network", "berlin"])
    assert vpn["externalLinks"] == [{"externalId": "OPS-101", "integrationType": "Jira"}]
    # Jira Cloud comments carry account IDs; the users file names them.
    assert vpn["replies"] == [
        {"text": "Looking at the concentrator logs now.", "username": "Tom Becker", "channel": ["responder"]},
        {"text": "Same here; it started after the firmware update; rollback planned.",
         "username": "Priya Raman", "channel": ["responder"]},
    ]
    printer = t["Printer on floor 3 jams on every second page"]
    assert (printer["status"], printer["priority"], len(printer["replies"])) == ("Closed", "Low", 2)
    laptop = t["New laptop for A. Rivera"]
    assert (laptop["status"], laptop["assignee"], laptop["replies"]) == ("Open", None, [])
    _rerun_sends_no_post(sandbox, path, mapping="jira")


def test_freshdesk(work: Path, sandbox: Sandbox) -> None:
    path = work / "freshdesk-export.csv"
    result = _push(sandbox, path, mapping="freshdesk", legacy_url="https://acme.freshdesk.com/a/tickets/{id}")
    assert result.ok and result.counts["created"] == 3, result.summary()
    t = _by_description(sandbox)
    reset = t["Password reset email never arrives"]
    assert (reset["status"], reset["priority"], reset["requesterId"], reset["assignee"], reset["tags"]) == (
        "Open", "CRITICAL", ANA, TOM, ["email", "auth"])
    assert reset["externalLinks"] == [{"externalId": "311", "integrationType": "Freshdesk",
                                       "url": "https://acme.freshdesk.com/a/tickets/311"}]
    assert t["Slack notifications arrive twice"]["status"] == "Waiting for customer"
    assert t["Request: second monitor"]["status"] == "Closed"
    _rerun_sends_no_post(sandbox, path, mapping="freshdesk")


def test_a_fresh_copy_of_the_export_is_recognised_by_its_legacy_ids(work: Path, sandbox: Sandbox) -> None:
    path = work / "jira-export.csv"
    _push(sandbox, path, mapping="jira")
    shutil.copy(SAMPLES / "jira-export.csv", path)  # the original export again, without our columns
    before = len(sandbox.requests())
    again = _push(sandbox, path, mapping="jira")
    assert again.summary()["recovered"] == 3 and again.requests == 0
    assert len(sandbox.requests()) == before and len(sandbox.tickets()) == 3


def test_unmapped_values_and_users_are_problems_naming_them(work: Path, sandbox: Sandbox) -> None:
    path = work / "zendesk-export.csv"
    text = path.read_text(encoding="utf-8").replace("pending,normal", "escalated,normal")
    path.write_text(text.replace("ben.okafor@example.com,example.com,Ben Okafor,Tom Becker",
                                 "zoe@example.com,example.com,Zoe,Tom Becker"), encoding="utf-8")
    report = bulksync.validate(path, mapping="zendesk", users=work / "users.csv")
    assert report.lines() == [
        f"{path}: row 3, column Requester email (→ requester): 'zoe@example.com' is not in the users "
        f"file ({work / 'users.csv'}); add it or give --default-requester",
        f"{path}: row 3, column Status (→ status): 'escalated' has no status in the mapping; add it to "
        '[values.status] in a mapping file with extends = "zendesk" (it keeps the rest of the preset), '
        'e.g. map = { "escalated" = "…" }, or give a default',
    ]
    # Doing what it says: a mapping file that extends the preset with that one value.
    extension = write(work / "ours.toml",
                      'extends = "zendesk"\n[values.status]\nmap = { "escalated" = "Escalated" }\n')
    fixed = bulksync.validate(path, mapping=str(extension), users=work / "users.csv", default_requester=ANA)
    assert fixed.valid, fixed.lines()
    report = bulksync.validate(path, mapping="zendesk", users=work / "users.csv", default_requester=ANA)
    assert [p.column for p in report.problems] == ["Status (→ status)"]


def test_a_mapping_is_checked(tmp_path: Path) -> None:
    bad = write(tmp_path / "m.toml", 'legacy_id = "Id"\nintegraton = "X"\n[columns]\nsubject = "Subject"\n')
    with pytest.raises(UsageError, match="unknown key integraton; known keys are"):
        load_mapping(bad)
    write(bad, '[columns]\nsubject = "Subject"\n')
    with pytest.raises(UsageError, match="'subject' is not a Suptask field"):
        load_mapping(bad)
    write(bad, 'legacy_id = "Id\n')
    with pytest.raises(UsageError, match="not valid TOML"):
        load_mapping(bad)
    with pytest.raises(UsageError, match="presets: freshdesk, jira, zendesk"):
        load_mapping("servicenow")


def test_a_mapping_of_custom_fields_and_fixed_values(tmp_path: Path, sandbox: Sandbox) -> None:
    field = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"
    mapping = write(tmp_path / "m.toml", f'''
legacy_id = "Ref"
integration = "Legacy"
tag_separator = ";"
[columns]
"customField_{field}" = "Area"
tags = "Labels"
[description]
columns = ["Title", "Body"]
[values."customField_{field}"]
map = {{ bill = "Billing" }}
default = "Other"
[fixed]
status = "Open"
''')
    sheet = write(tmp_path / "t.csv", "Ref,Title,Body,Area,Labels\nL-1,Broken,,bill,a; b\nL-2,Slow,Very,x,\n")
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, mapping=mapping, form_id=FORM,
                           channel=CHANNEL)
    assert result.ok, result.summary()
    t = {x["description"]: x for x in sandbox.tickets()}
    assert t["Broken"]["customFields"] == [{"fieldId": field, "value": "Billing"}]
    assert t["Broken"]["tags"] == ["a", "b"] and t["Broken"]["status"] == "Open"
    assert t["Slow\n\nVery"]["customFields"] == [{"fieldId": field, "value": "Other"}]
