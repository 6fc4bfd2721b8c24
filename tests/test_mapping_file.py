"""A mapping file as the commands read it (issue 27's review): the exact rule of a ``# check``
mark, push refusing a guessed integration, ``--default-requester`` for every row created
without a requester, and how ``mapping suggest`` reads and writes its files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from bulksync.columns import toml_string
from bulksync.mapping import check_marks, load_mapping
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, read_rows, run_cli, write

PEOPLE = "U073PBJPHGW"
EXPORT = "Case,Subject,Body,State\nC-1,Printer jam,Paper stuck,open\nC-2,VPN down,No tunnel,closed\n"
MAPPING = '''integration = "Acme Desk"{mark}
legacy_id = "Case"

[description]
columns = ["Subject", "Body"]

[columns]
status = "State"

[values.status.map]
open = "Open"
closed = "Closed"
'''


def _marks(text: str) -> list[tuple[int, str, str]]:
    return [(m.line, m.table, m.key) for m in check_marks(Path("m.toml"), text)]


def test_a_mark_is_a_comment_of_its_own_line_that_starts_with_check_case_aside() -> None:
    text = ('integration = "Tool # check"   # Check: guessed\n'
            'legacy_id = "Id"  # note # check\n'
            'url = "x"  # checked by Ana\n'
            '# check: a line that is only a comment\n'
            'tag_separator = """\n'
            'a = "b"  # check\n'
            '"""  # CHECK\n'
            '[values.status.map]\n'
            '"a # check" = "Open"  # check: guessed\n'
            '"he said \\"# check\\"" = "Open"\n'
            "'1.2' = 'High' #check\n")
    assert tomllib.loads(text)  # valid TOML, as load_mapping has checked before
    assert _marks(text) == [(1, "", "integration"), (7, "", ""), (9, "values.status.map", "a # check"),
                            (11, "values.status.map", "1.2")]


def test_a_mark_names_its_table_and_dotted_key() -> None:
    text = '[values]\nstatus.default = "Open"  # check\n[fixed]\nstatus = "Open"\n'
    (mark,) = check_marks(Path("m.toml"), text)
    assert (mark.table, mark.key, mark.value) == ("values", "status.default", "Open")
    assert mark.note == ("m.toml, line 2: [values] 'status.default' = 'Open' is marked '# check' (a guess): "
                         "check it, then remove the mark")


def test_the_hint_for_an_unmapped_value_is_toml_that_loads(tmp_path: Path) -> None:
    key = 'he said "done" \\ ok\x7f'
    assert tomllib.loads("map = { " + toml_string(key) + ' = "Open" }') == {"map": {key: "Open"}}
    sheet = write(tmp_path / "export.csv", 'Case,Subject,Body,State\nC-1,a,b,"he said ""done"""\n')
    mapping = write(tmp_path / "m.toml", MAPPING.format(mark=""))
    said = run_cli("validate", str(sheet), "--mapping", str(mapping), "--default-requester", PEOPLE,
                   "--form-id", FORM, "--channel", CHANNEL)
    assert said.returncode == 1
    hint = next(line for line in said.stdout.splitlines() if "e.g. map = " in line)
    example = hint.split("e.g. ", 1)[1].split(", or give a default")[0].replace("…", "Open")
    assert tomllib.loads(example) == {"map": {'he said "done"': "Open"}}


def _env(sandbox: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}


def test_push_refuses_a_guessed_integration_and_sends_nothing(tmp_path: Path, sandbox: Sandbox) -> None:
    api = _env(sandbox)
    sheet = write(tmp_path / "export.csv", EXPORT)
    before = sheet.read_bytes()
    mapping = write(tmp_path / "m.toml", MAPPING.format(mark="   # check: guessed from the headers"))
    args = ("--mapping", str(mapping), "--default-requester", PEOPLE, "--form-id", FORM, "--channel", CHANNEL)
    assert load_mapping(mapping).unconfirmed_integration is not None
    checked = run_cli("validate", str(sheet), *args)  # validate and plan: a note
    assert checked.returncode == 0 and f"{mapping}, line 1: 'integration' = 'Acme Desk'" in checked.stderr
    assert run_cli("plan", str(sheet), *args, env=api).returncode == 0
    refused = run_cli("push", str(sheet), *args, env=api)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert (f"{mapping}, line 1: integration = 'Acme Desk' is marked '# check': push refuses a guessed "
            "integration") in refused.stdout + refused.stderr
    assert sheet.read_bytes() == before and sandbox.requests() == []
    mapping.write_text(MAPPING.format(mark="   # checked: the old tool's name"), encoding="utf-8")
    pushed = run_cli("push", str(sheet), *args, env=api)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert [r["syncStatus"] for r in read_rows(sheet)] == ["created", "created"]


def test_a_mark_elsewhere_does_not_stop_a_push(tmp_path: Path, sandbox: Sandbox) -> None:
    api = _env(sandbox)
    sheet = write(tmp_path / "export.csv", EXPORT)
    mapping = write(tmp_path / "m.toml", MAPPING.format(mark="").replace(
        'closed = "Closed"', 'closed = "Closed"  # check: the word itself'))
    pushed = run_cli("push", str(sheet), "--mapping", str(mapping), "--default-requester", PEOPLE,
                     "--form-id", FORM, "--channel", CHANNEL, env=api)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "[values.status.map] 'closed' = 'Closed' is marked '# check'" in pushed.stderr


def _create_bodies(sheet: Path, *args: str) -> list[dict[str, object]]:
    planned = run_cli("plan", str(sheet), *args, "--form-id", FORM, "--channel", CHANNEL, "--json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    return [op["body"] for op in json.loads(planned.stdout)["operations"] if op["kind"] == "create"]


def test_default_requester_fills_every_created_row_without_a_requester(tmp_path: Path) -> None:
    mapping = write(tmp_path / "m.toml", MAPPING.format(mark=""))
    no_column = write(tmp_path / "export.csv", EXPORT)
    bodies = _create_bodies(no_column, "--mapping", str(mapping), "--default-requester", PEOPLE)
    assert [b["requester"] for b in bodies] == [PEOPLE, PEOPLE]
    assert all("requester" not in b for b in _create_bodies(no_column, "--mapping", str(mapping)))
    plain = write(tmp_path / "plain.csv", "description,requester,ticketId,status\n"
                                           "one,,,\ntwo,U0SOMEONE1,,\n"
                                           "three,,3f2504e0-4f89-11d3-9a0c-0305e82c3301,Closed\n")
    bodies = _create_bodies(plain, "--default-requester", PEOPLE)
    assert [b["requester"] for b in bodies] == [PEOPLE, "U0SOMEONE1"]
    planned = run_cli("plan", str(plain), "--default-requester", PEOPLE, "--form-id", FORM,
                      "--channel", CHANNEL, "--json")
    update = next(op for op in json.loads(planned.stdout)["operations"] if op["kind"] == "update")
    assert "requester" not in update["body"]  # an update's empty cell changes nothing


def test_suggest_reads_the_export_with_the_config_beside_it_but_not_its_mapping(tmp_path: Path) -> None:
    sheet = write(tmp_path / "export.csv", "Acme Desk export\n\n" + EXPORT.replace(",", ";"))
    write(tmp_path / "bulksync.toml", 'header_row = 3\ndelimiter = ";"\nmapping = "missing.toml"\n')
    said = run_cli("mapping", "suggest", str(sheet))
    assert said.returncode == 0, said.stderr
    assert tomllib.loads(said.stdout)["legacy_id"] == "Case"


def test_suggest_never_writes_over_the_export_or_the_config(tmp_path: Path) -> None:
    sheet = write(tmp_path / "export.csv", EXPORT)
    before = sheet.read_bytes()
    for out in (sheet, tmp_path / "." / "export.csv"):
        refused = run_cli("mapping", "suggest", str(sheet), "--out", str(out), "--force")
        assert refused.returncode == 2 and "is a file this command reads" in refused.stderr
    config = write(tmp_path / "bulksync.toml", 'delimiter = ","\n')
    refused = run_cli("mapping", "suggest", str(sheet), "--out", str(config), "--force")
    assert refused.returncode == 2 and config.read_text() == 'delimiter = ","\n'
    assert sheet.read_bytes() == before


def test_suggest_out_dash_prints_and_an_empty_integration_is_a_usage_error(tmp_path: Path) -> None:
    sheet = write(tmp_path / "export.csv", EXPORT)
    printed = run_cli("mapping", "suggest", str(sheet), "--out", "-", cwd=tmp_path)
    assert printed.returncode == 0 and tomllib.loads(printed.stdout)["legacy_id"] == "Case"
    assert not (tmp_path / "-").exists()
    empty = run_cli("mapping", "suggest", str(sheet), "--integration", " ")
    assert empty.returncode == 2 and "--integration needs the old tool's name" in empty.stderr


def test_a_folder_named_like_a_preset_where_the_command_runs_is_not_the_preset(tmp_path: Path) -> None:
    """Which preset an export looks like is told by the bundled presets, wherever the command
    runs: a folder ``jira`` (or ``zendesk``) there is the user's, not a mapping to read."""
    for name in ("jira", "zendesk", "freshdesk"):
        (tmp_path / name).mkdir()
    sheet = write(tmp_path / "t.csv", "description\nPrinter jams\n")
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cannot read the mapping" not in result.stderr
