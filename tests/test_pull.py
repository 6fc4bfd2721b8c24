"""Pull (issue 17): the sheet learns what changed in Suptask, cell by cell."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, SkippingClock, run_cli, write

FIELD = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _pushed(tmp_path: Path, sb: Sandbox) -> Path:
    sheet = write(tmp_path / "t.csv", f"description,status,priority,assignee,tags,customField_{FIELD},notes\n"
                                      "SSO loops,Open,High,U05KQ2M8Z1A,sso,IT,mine\n"
                                      "VPN drops,Open,Low,,vpn,Ops,\n"
                                      "Printer jams,Open,Medium,,,,keep\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL).ok
    return sheet


def test_pull_changes_exactly_the_cells_changed_in_slack(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path, sandbox)
    before = _rows(sheet)
    first, last = (int(before[0]["ticketNumber"]), int(before[2]["ticketNumber"]))
    sandbox.edit(first, status="Closed", assignee=None)
    sandbox.edit(last, priority="CRITICAL", customFields=[{"fieldId": FIELD, "value": "Facilities"}])
    result = run_cli("pull", str(sheet), "-q", env=_env(sandbox))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{sheet}: 3 pulled (4 cells changed), 0 failed, 0 skipped (3 requests)" in result.stdout
    after = _rows(sheet)
    changed = {(i + 2, k) for i, (a, b) in enumerate(zip(before, after, strict=True))
               for k in a if a[k] != b[k]}
    assert changed == {(2, "status"), (2, "assignee"), (4, "priority"), (4, f"customField_{FIELD}"),
                       (2, "syncStatus"), (3, "syncStatus"), (4, "syncStatus")}
    assert (after[0]["status"], after[0]["assignee"], after[2]["priority"]) == ("Closed", "", "CRITICAL")
    assert {r["syncStatus"] for r in after} == {"pulled"} and after[0]["notes"] == "mine"
    # What was read is the baseline: pushing the pulled sheet sends nothing.
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert again.ok and again.requests == 0, again.summary()


def test_columns_limit_and_a_ticket_that_fails(tmp_path: Path, cli_clock: SkippingClock) -> None:
    # The read answered 500 is retried after back-offs that the command line's clock skips.
    with Sandbox(token=TOKEN, read_shape="webhook", failing_reads=[2]) as sb:
        sheet = _pushed(tmp_path, sb)
        sb.edit(1, status="Closed", priority="Low")
        sb.edit(3, status="Escalated")  # the webhook shape answers CLOSED, ESCALATED
        result = run_cli("pull", str(sheet), "--columns", "status", "-q", "--json", env=_env(sb))
        assert result.returncode == 1, result.stdout + result.stderr
        summary = json.loads(result.stdout)
        assert (summary["pulled"], summary["failed"]) == (2, 1)
        rows = {int(r["ticketNumber"]): r for r in _rows(sheet)}
        row_of_2 = 2 + [int(r["ticketNumber"]) for r in _rows(sheet)].index(2)
        assert summary["groups"] == [{"status": "failed", "error": "ticket 2: HTTP 500", "count": 1,
                                      "rows": str(row_of_2)}]
        assert [rows[n]["status"] for n in (1, 2, 3)] == ["Closed", "Open", "Escalated"]  # CLOSED, read
        assert rows[1]["priority"] == "High"  # not among --columns
        assert rows[2]["syncStatus"] == "failed" and "HTTP 500" in rows[2]["syncError"]
        limited = run_cli("pull", str(sheet), "--limit", "1", "-q", env=_env(sb))
        assert limited.returncode == 0 and "(1 requests)" in limited.stdout


def test_a_pull_of_a_workbook_changes_only_those_cells(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "rich.xlsx"
    shutil.copy(Path(__file__).parent / "data" / "rich.xlsx", book)
    pushed = run_cli("push", str(book), "--form-id", FORM, "--channel", CHANNEL, "-q", env=_env(sandbox))
    assert pushed.returncode in (0, 1), pushed.stderr
    numbers = [t["ticketNumber"] for t in sandbox.tickets()]
    assert numbers
    sandbox.edit(numbers[0], status="Closed")
    with zipfile.ZipFile(book) as z:
        before = {i.filename: z.read(i) for i in z.infolist()}
    result = run_cli("pull", str(book), "-q", env=_env(sandbox))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    with zipfile.ZipFile(book) as z:
        after = {i.filename: z.read(i) for i in z.infolist()}
    assert set(before) == set(after)
    assert [n for n in before if before[n] != after[n]] in (["xl/worksheets/sheet1.xml"],
                                                           ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"])
    from bulksync.sheets.read import read_table

    table = read_table(book)
    assert "Closed" in table.frame[table.position("status")].tolist()


def _cells(book: Path) -> dict[str, bytes]:
    """Each cell of the first worksheet, by reference, as its exact XML (type, style, value)."""
    import xml.etree.ElementTree as ET

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(book) as z:
        root = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    return {str(c.get("r")): ET.tostring(c) for c in root.iter(f"{main}c")}


def test_a_pull_of_a_workbook_keeps_every_other_cell_as_it_was(tmp_path: Path, sandbox: Sandbox) -> None:
    """Not a count of changes: each cell but the changed value and syncStatus keeps its XML."""
    book = tmp_path / "rich.xlsx"
    shutil.copy(Path(__file__).parent / "data" / "rich.xlsx", book)
    assert bulksync.push(book, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    sandbox.edit(1, status="Closed")  # row 2's ticket (the first create is sent alone)
    before = _cells(book)
    assert b">status<" in before["C1"] and b">syncStatus<" in before["J1"] and b">Open<" in before["C2"]
    assert bulksync.pull(book, token=TOKEN, api_url=sandbox.url).counts["pulled"] == 3
    after = _cells(book)
    assert set(after) == set(before)
    changed = {ref for ref in before if before[ref] != after[ref]}
    assert changed == {"C2", "J2", "J3", "J4"}
    assert b">Closed<" in after["C2"] and all(b">pulled<" in after[f"J{n}"] for n in (2, 3, 4))
    styled = [ref for ref, xml in before.items() if b' s="' in xml or b' t="' in xml]
    assert len(styled) >= 10  # the kept cells include typed and styled ones


def test_rows_without_a_number_are_said_and_nothing_is_read_for_them(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "ticketId,status\n3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b,Open\n")
    result = run_cli("pull", str(sheet), "-q", env=_env(sandbox))
    assert result.returncode == 0 and sandbox.requests() == []
    assert "the API reads tickets by number only" in _rows(sheet)[0]["syncError"]


@pytest.mark.parametrize("reads, said", [(3, "within one window"), (250, "about 30 min")])
def test_the_read_budget_is_said_before_reading(reads: int, said: str) -> None:
    from bulksync.engine import budget

    assert said in budget(reads)


# -- push --check: conflicts caught before they are overwritten --------------------------------

def test_a_reopened_ticket_is_closed_again_only_with_check(tmp_path: Path, sandbox: Sandbox) -> None:
    made = bulksync.push(write(tmp_path / "new.csv", "description\nA\nB\nC\n"), token=TOKEN,
                         api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    rows = sorted(made.results.values(), key=lambda r: r.row_number)
    close = write(tmp_path / "close.csv", "ticketId,ticketNumber\n" + "".join(
        f"{r.ticket_id},{r.ticket_number}\n" for r in rows))
    env = _env(sandbox)
    assert run_cli("push", str(close), "--set", "status=Closed", "-q", env=env).returncode == 0
    sandbox.edit(rows[1].ticket_number or 0, status="Open")  # reopened in Slack
    blind = run_cli("push", str(close), "--set", "status=Closed", "-q", env=env)
    assert "3 unchanged" in blind.stdout and "(0 requests)" in blind.stdout
    assert ("note: 3 unchanged (including values given by --set that bulksync believes the tickets "
            "already have) means unchanged since bulksync last pushed or pulled them; Suptask was not "
            "checked") in blind.stderr
    planned = run_cli("plan", str(close), "--set", "status=Closed", env=env)
    assert "note: with push --check, 3 ticket(s) to read (within one window" in planned.stderr
    assert [t["status"] for t in sandbox.tickets()].count("Open") == 1
    checked = run_cli("push", str(close), "--set", "status=Closed", "--check", "-q", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 created, 1 updated, 2 unchanged" in checked.stdout and "(4 requests)" in checked.stdout
    assert {t["status"] for t in sandbox.tickets()} == {"Closed"}


def test_a_conflict_is_held_back_a_server_change_taken_and_force_overrides(tmp_path: Path,
                                                                         sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path, sandbox)
    numbers = [int(r["ticketNumber"]) for r in _rows(sheet)]
    sandbox.edit(numbers[0], status="Escalated")     # in Slack
    sandbox.edit(numbers[1], priority="CRITICAL")    # in Slack; the sheet leaves priority alone
    text = sheet.read_text().replace("SSO loops,Open,", "SSO loops,Closed,")  # and in the sheet
    sheet.write_text(text)
    env = _env(sandbox)
    result = run_cli("push", str(sheet), "--check", "-q", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(sheet)
    assert rows[0]["syncStatus"] == "conflict"
    assert rows[0]["syncError"] == ("status: the sheet has 'Closed', Suptask has 'Escalated' (both changed "
                                    "since 'Open')")
    assert rows[0]["status"] == "Closed"  # the sheet's edit is not lost either
    assert rows[1]["priority"] == "CRITICAL" and rows[1]["syncStatus"] == "unchanged"  # taken in
    by_number = {t["ticketNumber"]: t for t in sandbox.tickets()}
    assert by_number[numbers[0]]["status"] == "Escalated"  # not overwritten
    assert not [r for r in sandbox.requests() if r["method"] == "PATCH"]
    # The server's priority is now the baseline: a plain push sends nothing for that row.
    forced = run_cli("push", str(sheet), "--check", "--force", "-q", env=env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert by_number[numbers[0]]["status"] == "Escalated" and sandbox.tickets()[0]["status"] == "Closed"
    assert [r["body"] for r in sandbox.requests() if r["method"] == "PATCH"] == [{"status": "Closed"}]


def test_a_pull_paced_at_ten_reads_per_two_seconds_sees_almost_no_429s(tmp_path: Path,
                                                                       clock: SkippingClock) -> None:
    # The sandbox's window and the runs' pauses read one clock: the waits for its resets are skipped.
    with Sandbox(token=TOKEN, rate_limit=(10, 2), clock=clock) as sb:
        sheet = write(tmp_path / "t.csv", "description,status\n" + "".join(f"T{i},Open\n" for i in range(24)))
        assert bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL, clock=clock).ok
        before = len(sb.requests())
        result = bulksync.pull(sheet, token=TOKEN, api_url=sb.url, clock=clock)
        reads = sb.requests()[before:]
    assert result.ok and result.counts["pulled"] == 24
    assert [r["method"] for r in reads].count("GET") >= 24
    assert [r["status"] for r in reads].count(429) <= 2


@pytest.mark.parametrize("name", ["new.csv", "new.xlsx"])
def test_a_sheet_from_a_range_of_numbers(tmp_path: Path, name: str) -> None:
    with Sandbox(token=TOKEN, read_shape="webhook") as sb:
        _pushed(tmp_path, sb)  # tickets 1-3
        sheet = tmp_path / name
        result = run_cli("pull", str(sheet), "--numbers", "2-4", "-q", env=_env(sb))
        assert result.returncode == 0, result.stdout + result.stderr  # 4 is no ticket: listed
        assert "not in the sheet (no such ticket of this team): ticket 4: HTTP 404" in result.stderr
        from bulksync.sheets.read import read_table

        table = read_table(sheet)
        header = [h.strip() for h in table.header]
        assert header == ["ticketNumber", "ticketId", "status", "priority", "assignee", "requester", "tags",
                          "description", f"customField_{FIELD}", "syncStatus"]
        rows = {r[0]: dict(zip(header, r, strict=True)) for r in table.frame.itertuples(index=False)}
        tickets = {str(t["ticketNumber"]): t for t in sb.tickets()}
        assert set(rows) == {"2", "3"}
        assert rows["2"]["ticketId"] == tickets["2"]["id"] and rows["2"]["status"] == "Open"
        again = run_cli("pull", str(sheet), "--numbers", "2-4", env=_env(sb))
        assert again.returncode == 2 and "exists" in again.stderr
        # Ready for a round trip: edit, push, only the edit is sent.
        edited = bulksync.push(sheet, token=TOKEN, api_url=sb.url, set={"priority": "CRITICAL"})
        assert edited.counts["updated"] == 2, edited.summary()


def _gets(sb: Sandbox) -> list[str]:
    return [r["path"] for r in sb.requests() if r["method"] == "GET"]


def test_a_pull_killed_midway_resumes_without_reading_again(tmp_path: Path) -> None:
    import signal
    import sqlite3
    import time

    from bulksync.journal import store_path
    from tests.processes import start

    with Sandbox(token=TOKEN, latency_ms=150) as sb:
        sheet = write(tmp_path / "t.csv", "description,status\n" + "".join(f"T{i},Open\n" for i in range(16)))
        sb.latency = 0
        assert bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL,
                             concurrency=8).ok
        for n in range(1, 17):
            sb.edit(n, status="Closed")
        sb.latency = 0.15
        process = start("pull", str(sheet), "-q", env=_env(sb))
        deadline = time.monotonic() + 30

        def recorded() -> int:
            try:
                with sqlite3.connect(f"file:{store_path()}?mode=ro", uri=True, timeout=1) as db:
                    return int(db.execute("SELECT count(*) FROM reads").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

        while recorded() < 5:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        read_before = recorded()
        assert all(r["status"] == "Open" for r in _rows(sheet))  # killed before writing back
        sb.latency = 0
        gets = len(_gets(sb))
        result = run_cli("pull", str(sheet), "-q", env=_env(sb))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "resuming the pull begun at" in result.stderr
        assert len(_gets(sb)) - gets == 16 - read_before  # what the killed pull read is not read again
        assert {r["status"] for r in _rows(sheet)} == {"Closed"}
        # Finished: the next pull reads everything again.
        gets = len(_gets(sb))
        assert run_cli("pull", str(sheet), "-q", env=_env(sb)).returncode == 0
        assert len(_gets(sb)) - gets == 16


def test_limit_reads_the_tickets_read_longest_ago_first(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path, sandbox)  # tickets 1-3
    env = _env(sandbox)
    assert run_cli("pull", str(sheet), "--limit", "2", "-q", env=env).returncode == 0
    first = _gets(sandbox)
    assert run_cli("pull", str(sheet), "--limit", "2", "-q", env=env).returncode == 0
    second = _gets(sandbox)[len(first):]
    assert len(first) == 2 and len(second) == 1 and second[0] not in first  # the one not read yet


# -- found by review (issue 17) -----------------------------------------------------------------

def _save(path: Path, rows: list[dict[str, str]]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _patches(sb: Sandbox, since: int = 0) -> list[object]:
    return [q.get("body") for q in sb.requests()[since:] if q["method"] == "PATCH"]


def _created(tmp_path: Path, sb: Sandbox, text: str) -> Path:
    sheet = write(tmp_path / "t.csv", text)
    assert bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL).ok
    return sheet


def test_a_pull_whose_values_were_not_written_does_not_move_the_baseline(tmp_path: Path,
                                                                         sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, "description,status,notes\nSSO loops,Open,a\nVPN,Open,b\n")
    sandbox.edit(1, status="Closed")

    def user_saves(done: int, total: int, note: str) -> None:
        if done == 1:
            sheet.write_text(sheet.read_text().replace("Open,a,", "Open,a edited,"))

    pulled = bulksync.pull(sheet, token=TOKEN, api_url=sandbox.url, on_progress=user_saves)
    assert "changed by someone else" in pulled.note and _rows(sheet)[0]["status"] == "Open"
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert sandbox.tickets()[0]["status"] == "Closed", _patches(sandbox)


def test_a_resumed_pull_never_applies_a_read_older_than_a_push(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, "description,status\nSSO loops,Open\nVPN,Open\n")
    bulksync.pull(sheet, token=TOKEN, api_url=sandbox.url, limit=1)
    rows = _rows(sheet)
    rows[0]["status"] = "Closed"
    _save(sheet, rows)
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url).ok
    bulksync.pull(sheet, token=TOKEN, api_url=sandbox.url)
    assert sandbox.tickets()[0]["status"] == "Closed" and _rows(sheet)[0]["status"] == "Closed"


def test_check_never_overwrites_a_later_slack_change_after_both_sides_agreed(tmp_path: Path,
                                                                            sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, "description,status\nSSO loops,Open\n")
    rows = _rows(sheet)
    rows[0]["status"] = "Closed"
    _save(sheet, rows)
    sandbox.edit(1, status="Closed")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True)
    sandbox.edit(1, status="Open")
    n = len(sandbox.requests())
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True)
    assert _patches(sandbox, n) == [] and sandbox.tickets()[0]["status"] == "Open"


def test_check_force_does_not_clear_what_the_sheet_never_had(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, "description,status,priority,assignee,tags\nSSO loops,Open,,,\n")
    sandbox.edit(1, assignee="U05KQ2M8Z1A", priority="High", tags=["vip"])
    rows = _rows(sheet)
    rows[0]["status"] = "Closed"
    _save(sheet, rows)
    n = len(sandbox.requests())
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True, force=True)
    assert _patches(sandbox, n) == [{"status": "Closed"}]


def test_a_number_that_names_another_ticket_is_not_taken_for_this_one(tmp_path: Path,
                                                                     sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, "description,status\nSSO loops,Open\nVPN,Closed\n")
    rows = _rows(sheet)
    rows[0]["ticketNumber"], rows[1]["ticketNumber"] = rows[1]["ticketNumber"], rows[0]["ticketNumber"]
    _save(sheet, rows)
    result = bulksync.pull(sheet, token=TOKEN, api_url=sandbox.url)
    assert [r["description"] for r in _rows(sheet)] == ["SSO loops", "VPN"]
    assert result.counts["failed"] == 2 and "not this row's ticketId" in _rows(sheet)[0]["syncError"]
    n = len(sandbox.requests())
    checked = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True, set={"status": "Closed"})
    assert checked.counts["failed"] == 2 and _patches(sandbox, n) == []


def test_ctrl_c_during_the_check_sends_nothing(tmp_path: Path, sandbox: Sandbox) -> None:
    import os
    import signal

    sheet = _created(tmp_path, sandbox, "description,status\n" + "".join(f"t{i},Open\n" for i in range(6)))
    rows = _rows(sheet)
    for r in rows:
        r["status"] = "Closed"
    _save(sheet, rows)
    before = sheet.read_bytes()
    n = len(sandbox.requests())
    fired: list[int] = []

    def ctrl_c(done: int, total: int, note: str) -> None:
        if not fired:
            fired.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True, on_progress=ctrl_c)
    assert _patches(sandbox, n) == [] and result.interrupted and sheet.read_bytes() == before


def test_check_keeps_a_description_exactly(tmp_path: Path, sandbox: Sandbox) -> None:
    long = "Steps:\n" + "x" * 12_000 + "\nEND"
    sheet = tmp_path / "t.csv"
    _save(sheet, [{"description": "Name:  Alice\tBob", "status": "Open"}, {"description": long, "status": "Open"}])
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True)
    assert [r["description"] for r in _rows(sheet)] == ["Name:  Alice\tBob", long]


def test_a_value_starting_with_a_sign_round_trips(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, f"description,customField_{FIELD}\n- printer jams,+44 20 7946 0958\n")
    sandbox.edit(1, description="- printer jams!")
    bulksync.pull(sheet, token=TOKEN, api_url=sandbox.url)
    assert _rows(sheet)[0]["description"] == "'- printer jams!"  # shown as text by a spreadsheet
    rows = _rows(sheet)
    rows[0]["description"] += "\n- also on floor 3"
    _save(sheet, rows)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert sandbox.tickets()[0]["description"] == "- printer jams!\n- also on floor 3"
    assert sandbox.tickets()[0]["customFields"] == [{"fieldId": FIELD, "value": "+44 20 7946 0958"}]


def test_pull_keeps_an_edit_that_was_not_pushed(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _created(tmp_path, sandbox, "description,status,priority\nSSO loops,Open,High\n")
    rows = _rows(sheet)
    rows[0]["status"], rows[0]["priority"] = "Closed", "Urgent"
    _save(sheet, rows)
    sandbox.edit(1, priority="Low")
    assert not bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, check=True).ok
    pulled = bulksync.pull(sheet, token=TOKEN, api_url=sandbox.url)
    row = _rows(sheet)[0]
    assert (row["status"], row["priority"]) == ("Closed", "Urgent")  # the edits are kept
    assert row["syncStatus"] == "conflict" and "priority: the sheet has 'Urgent', Suptask has 'Low'" in row["syncError"]
    assert pulled.counts["conflict"] == 1
