"""Undo a run (issue 24): runs are listed, creates deleted, updates put back field by field
(never over a later change in Suptask), the sheet follows, and an undo is a run like any
other: dry run, confirmation, journal, kill -9 and again."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest

import bulksync
from bulksync.journal import store_path
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from bulksync.sync import runs, undo
from tests.conftest import CHANNEL, FORM, TOKEN, read_rows, run_cli, write, write_rows
from tests.processes import start

DEFAULTS = {"form_id": FORM, "channel": CHANNEL}


_rows, _write_rows = read_rows, write_rows


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def _pushed(path: Path, sb: Sandbox, rows: int = 3) -> Path:
    write(path, "description,priority\n" + "".join(f"Ticket {i},Low\n" for i in range(rows)))
    assert bulksync.push(path, token=TOKEN, api_url=sb.url, **DEFAULTS).counts["created"] == rows
    return path


def _edit(path: Path, **by_row: str) -> None:
    """Set the priority of rows (``r2="High"``: spreadsheet row 2)."""
    rows = _rows(path)
    for name, value in by_row.items():
        rows[int(name[1:]) - 2]["priority"] = value
    _write_rows(path, rows)


def _calls(sb: Sandbox, since: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"].split("/ticket", 1)[1]) for r in sb.requests()[since:]]


def test_runs_are_listed_in_order_with_what_each_did(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)  # nothing to send: no run
    listed = run_cli("runs", str(sheet), "--json", env=_env(sandbox))
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)["runs"]
    assert [(r["run"], r["command"], r["created"], r["updated"], r["undone"]) for r in found] == [
        (1, "push", 3, 0, False), (2, "push", 0, 1, False)]
    text = run_cli("runs", str(sheet), env=_env(sandbox))
    assert "run 1: " in text.stdout and "push: 3 created" in text.stdout and "push: 1 updated" in text.stdout


def test_undo_of_updates_puts_back_only_what_suptask_still_holds(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    numbers = [int(r["ticketNumber"]) for r in _rows(sheet)]
    _edit(sheet, r2="High", r3="Medium")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sandbox.edit(numbers[1], priority="CRITICAL")  # an agent, in Slack, after the run
    sent = len(sandbox.requests())
    done = run_cli("undo", str(sheet), "--yes", env=_env(sandbox))
    assert done.returncode == 1, done.stderr  # a field kept: said, and not all is undone
    assert f"#{numbers[1]} priority kept: changed in Suptask since" in done.stderr
    ticket_ids = [r["ticketId"] for r in _rows(sheet)]
    assert _calls(sandbox, sent) == [("GET", f"/{numbers[0]}"), ("GET", f"/{numbers[1]}"),
                                     ("PATCH", f"/{ticket_ids[0]}")]
    by_number = {t["ticketNumber"]: t["priority"] for t in sandbox.tickets()}
    assert [by_number[n] for n in numbers] == ["Low", "CRITICAL", "Low"]
    assert [(r["priority"], r["syncStatus"]) for r in _rows(sheet)] == [
        ("Low", "undone"), ("Medium", "kept"), ("Low", "unchanged")]
    # A push right after the undo sends nothing for the undone row.
    sent = len(sandbox.requests())
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.counts["updated"] == 0 and _calls(sandbox, sent) == []


def test_no_check_puts_back_over_a_later_change(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sandbox.edit(int(_rows(sheet)[0]["ticketNumber"]), priority="CRITICAL")
    result = undo(sheet, token=TOKEN, api_url=sandbox.url, check=False)
    assert result.result is not None and result.result.counts["undone"] == 1 and result.reads == 0
    assert {t["priority"] for t in sandbox.tickets()} == {"Low"}


def test_undo_of_creates_deletes_them_and_the_rows_are_new_again(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _rows_before = _rows(sheet)
    ids = [r["ticketId"] for r in _rows_before]
    sent = len(sandbox.requests())
    done = run_cli("undo", str(sheet), "--yes", env=_env(sandbox))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 undone" in done.stdout
    made = sorted((int(r["ticketNumber"]), r["ticketId"]) for r in _rows_before)
    assert _calls(sandbox, sent) == [*(("GET", f"/{n}") for n, _ in made),
                                     *(("DELETE", f"/{t}") for _, t in made)]  # unchanged since: deleted
    assert sandbox.tickets() == []
    assert [(r["ticketId"], r["ticketNumber"], r["syncStatus"]) for r in _rows(sheet)] == [("", "", "undone")] * 3
    # Nothing is recovered from an undone run: pushed again, the rows are created anew.
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.counts["created"] == 3 and again.summary()["recovered"] == 0
    assert len(sandbox.tickets()) == 3 and not {r["ticketId"] for r in _rows(sheet)} & set(ids)
    listed = runs(sheet, api_url=sandbox.url, token=TOKEN)
    assert [(r.command, r.undone, r.undoes) for r in listed] == [
        ("push", True, None), ("undo", False, 1), ("push", False, None)]


def test_a_dry_run_prints_the_requests_that_are_then_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox, rows=4)
    _edit(sheet, r3="High", r5="Medium")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    before, sent = sheet.read_bytes(), len(sandbox.requests())
    dry = run_cli("undo", str(sheet), "--dry-run", "--json", env=_env(sandbox))
    assert dry.returncode == 0, dry.stderr
    planned = [(op["method"], op["path"].split("/ticket", 1)[1]) for op in json.loads(dry.stdout)["operations"]]
    assert all(method == "GET" for method, _ in _calls(sandbox, sent)) and sheet.read_bytes() == before
    sent = len(sandbox.requests())
    done = run_cli("undo", str(sheet), "--yes", env={**_env(sandbox)})
    assert done.returncode == 0, done.stderr
    assert [c for c in _calls(sandbox, sent) if c[0] != "GET"] == planned
    assert len(planned) == 2


def test_off_a_terminal_undo_needs_yes(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    before, sent = sheet.read_bytes(), len(sandbox.requests())
    refused = run_cli("undo", str(sheet), env=_env(sandbox))
    assert refused.returncode == 2 and "without --yes" in refused.stderr
    assert sheet.read_bytes() == before and _calls(sandbox, sent) == []


def test_a_second_undo_of_the_same_run_sends_nothing(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    undo(sheet, token=TOKEN, api_url=sandbox.url)
    sent = len(sandbox.requests())
    again = undo(sheet, token=TOKEN, api_url=sandbox.url, run=1)
    assert again.plan.requests == 0 and again.result is None and _calls(sandbox, sent) == []
    with pytest.raises(bulksync.UsageError, match="no run to undo"):
        undo(sheet, token=TOKEN, api_url=sandbox.url)


def test_what_cannot_be_undone_is_said_before_anything_is_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    close = write(tmp_path / "close.csv", "ticketId\n" + "".join(f"{r['ticketId']}\n" for r in _rows(sheet)))
    bulksync.delete(close, token=TOKEN, api_url=sandbox.url)
    said: list[str] = []
    result = undo(close, token=TOKEN, api_url=sandbox.url, on_notice=said.append)
    assert result.plan.requests == 0
    assert any("cannot be undone: the run deleted 3 ticket(s)" in s and "no way to restore" in s for s in said)


def test_a_bulk_edit_of_tickets_bulksync_had_not_seen_says_it_cannot_put_them_back(
        tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    close = write(tmp_path / "close.csv", "ticketId\n" + "".join(f"{r['ticketId']}\n" for r in _rows(sheet)))
    with sqlite3.connect(store_path()) as db:  # as if made elsewhere: bulksync never saw them
        db.execute("DELETE FROM tickets")
    bulksync.push(close, token=TOKEN, api_url=sandbox.url, set={"status": "Closed"})
    said: list[str] = []
    result = undo(close, token=TOKEN, api_url=sandbox.url, on_notice=said.append)
    assert result.plan.requests == 0
    assert any("had not been seen by bulksync before it" in s for s in said)


def test_a_migration_undone_is_pushed_again_from_the_same_file(tmp_path: Path, sandbox: Sandbox) -> None:
    for name in ("zendesk-export.csv", "users.csv", "bulksync.toml", "zendesk-comments.csv"):
        shutil.copy(bundled("sample_data") / name, tmp_path / name)
    export = tmp_path / "zendesk-export.csv"
    options = {"mapping": "zendesk", "users": tmp_path / "users.csv", "comments": tmp_path / "zendesk-comments.csv"}
    first = bulksync.push(export, token=TOKEN, api_url=sandbox.url, **options)  # type: ignore[arg-type]
    assert first.counts["created"] == 4 and first.side.get("replied", 0) > 0
    done = undo(export, token=TOKEN, api_url=sandbox.url)
    assert done.result is not None and done.result.counts["undone"] == 4
    assert sandbox.tickets() == []
    report = done.result.run_report
    assert report is not None and [r["outcome"] for r in csv.DictReader(
        io.StringIO(report.read_text(encoding="utf-8-sig")))] == ["undone"] * 4
    assert {r["ticketId"] for r in _rows(export)} == {""}
    again = bulksync.push(export, token=TOKEN, api_url=sandbox.url, **options)  # type: ignore[arg-type]
    assert again.counts["created"] == 4 and again.summary()["recovered"] == 0
    assert again.side.get("linked") == first.side.get("linked") and again.side.get("replied") == first.side.get("replied")


def _created(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store_path()}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM tickets WHERE deleted = 1").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_an_undo_killed_mid_way_finishes_when_run_again(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN) as sb:
        sheet = write(tmp_path / "t.csv", "description\n" + "".join(f"T{i}\n" for i in range(12)))
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, concurrency=8, **DEFAULTS)
        # The undo reads, then deletes, one at a time: 100 ms each leaves it a second of
        # work after its third DELETE, for the kill to land mid-way.
        sb.latency = 0.1
        child = start("undo", str(sheet), "--yes", "-q", env=_env(sb))
        deadline = time.monotonic() + 60
        while sum(1 for r in sb.requests() if r["method"] == "DELETE") < 3:  # the child is sending
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.communicate()
        assert 0 < len(sb.tickets()) < 12 or sb.tickets() == []
        assert sb.idle()  # what was in flight at the kill is done
        sb.latency = 0  # the rerun need not be slow
        again = run_cli("undo", str(sheet), "--yes", "--run", "1", env=_env(sb))
        assert again.returncode == 0, again.stdout + again.stderr
        assert sb.tickets() == []
        assert {(r["ticketId"], r["syncStatus"]) for r in _rows(sheet)} == {("", "undone")}
        assert runs(sheet, api_url=sb.url, token=TOKEN)[0].undone


def test_a_field_already_put_back_in_suptask_is_learnt_not_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sandbox.edit(int(_rows(sheet)[0]["ticketNumber"]), priority="Low")  # an agent undid it by hand
    sent = len(sandbox.requests())
    result = undo(sheet, token=TOKEN, api_url=sandbox.url)
    assert result.result is not None and result.result.counts["undone"] == 1
    assert [m for m, _ in _calls(sandbox, sent)] == ["GET"] and _rows(sheet)[0]["priority"] == "Low"
    sent = len(sandbox.requests())
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS).requests == 0
    assert _calls(sandbox, sent) == []


# -- what bulksync keeps, and forgetting it -------------------------------------------------------

def _store_bytes() -> bytes:
    return b"".join(p.read_bytes() for p in store_path().parent.glob(f"{store_path().name}*"))


def test_runs_say_what_is_kept_and_forget_removes_it_from_the_stores_bytes(tmp_path: Path,
                                                                           sandbox: Sandbox) -> None:
    secret = "Payroll of Mr Smith is wrong"
    sheet = write(tmp_path / "t.csv", f"description,priority\n{secret},Low\nPrinter jammed,High\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    other = write(tmp_path / "other.csv", "description\nKeep me\n")
    bulksync.push(other, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    listed = run_cli("runs", str(sheet), "--json", env=_env(sandbox))
    assert json.loads(listed.stdout)["holds"] == {"tickets": 2, "rows": 2, "runs": 2}
    assert secret.encode() in _store_bytes()
    refused = run_cli("forget", str(sheet), env=_env(sandbox))
    assert refused.returncode == 2 and "without --yes" in refused.stderr and secret.encode() in _store_bytes()
    done = run_cli("forget", str(sheet), "--yes", env=_env(sandbox))
    assert done.returncode == 0, done.stderr
    assert "forgot the fields of 2 ticket(s), 2 row identity(ies) and 2 run(s)" in done.stdout
    assert secret.encode() not in _store_bytes() and b"Keep me" in _store_bytes()
    assert runs(sheet, api_url=sandbox.url, token=TOKEN) == []
    assert len(runs(other, api_url=sandbox.url, token=TOKEN)) == 1
    # The sheet still names its tickets: a push updates them (no baseline: its cells are sent).
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.counts["updated"] == 2 and len(sandbox.tickets()) == 3


def test_the_store_and_its_folder_are_for_their_owner_only(tmp_path: Path, sandbox: Sandbox) -> None:
    _pushed(tmp_path / "t.csv", sandbox)
    assert store_path().parent.stat().st_mode & 0o777 == 0o700
    assert store_path().stat().st_mode & 0o077 == 0


# -- what an adversarial review found (issue 24) ----------------------------------------------------

def test_a_second_undo_does_not_walk_back_to_an_older_run(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    undo(sheet, token=TOKEN, api_url=sandbox.url)
    sent = len(sandbox.requests())
    again = run_cli("undo", str(sheet), "--yes", env=_env(sandbox))
    assert again.returncode == 2 and "run 2, the last that changed something, is undone already" in again.stderr
    assert "--run 1" in again.stderr and _calls(sandbox, sent) == [] and len(sandbox.tickets()) == 3


def test_a_created_ticket_changed_in_suptask_since_is_kept_not_deleted(tmp_path: Path,
                                                                      sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    sandbox.edit(int(_rows(sheet)[0]["ticketNumber"]), priority="Urgent")  # an agent works on it
    result = undo(sheet, token=TOKEN, api_url=sandbox.url)
    assert result.result is not None and (result.result.counts["undone"], result.result.counts["kept"]) == (2, 1)
    assert [t["priority"] for t in sandbox.tickets()] == ["Urgent"]
    assert _rows(sheet)[0]["syncStatus"] == "kept" and _rows(sheet)[0]["ticketId"]


def test_a_field_a_later_run_changed_is_kept_even_without_reading(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    _edit(sheet, r2="Medium")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    result = undo(sheet, token=TOKEN, api_url=sandbox.url, run=2, check=False)
    assert result.plan.requests == 0 and any("changed by a later run (run 3)" in k for k in result.plan.kept)
    assert {t["priority"] for t in sandbox.tickets()} == {"Medium", "Low"}


def test_an_undo_whose_sheet_could_not_be_written_is_not_marked_done(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sheet.chmod(0o444)  # the results go beside it
    try:
        first = undo(sheet, token=TOKEN, api_url=sandbox.url)
    finally:
        sheet.chmod(0o644)
    assert first.result is not None and first.result.beside
    assert not runs(sheet, api_url=sandbox.url, token=TOKEN)[1].undone
    again = undo(sheet, token=TOKEN, api_url=sandbox.url)  # the run again: the sheet follows now
    assert again.result is not None and again.result.written_to == sheet
    assert _rows(sheet)[0]["priority"] == "Low" and runs(sheet, api_url=sandbox.url, token=TOKEN)[1].undone
    sent = len(sandbox.requests())
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS).requests == 0
    assert _calls(sandbox, sent) == []


def test_a_cell_edited_since_the_run_is_left_as_the_user_made_it(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "t.csv", sandbox)
    _edit(sheet, r2="High")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    _edit(sheet, r2="Medium")  # typed after the run, not pushed
    undo(sheet, token=TOKEN, api_url=sandbox.url)
    assert _rows(sheet)[0]["priority"] == "Medium"
    assert {t["priority"] for t in sandbox.tickets()} == {"Low"}


def test_forget_keeps_what_other_sheets_still_need(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _pushed(tmp_path / "a.csv", sandbox)
    close = write(tmp_path / "b.csv", "ticketId\n" + "".join(f"{r['ticketId']}\n" for r in _rows(sheet)))
    bulksync.push(close, token=TOKEN, api_url=sandbox.url, set={"status": "Closed"})
    done = run_cli("forget", str(close), "--yes", env=_env(sandbox))
    assert done.returncode == 0, done.stderr
    listed = json.loads(run_cli("runs", str(sheet), "--json", env=_env(sandbox)).stdout)
    assert listed["holds"]["tickets"] == 3


def test_undo_of_a_sheet_without_a_ticketid_column_says_there_is_nothing(tmp_path: Path,
                                                                        sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description\nA\n")
    refused = run_cli("undo", str(sheet), "--yes", env=_env(sandbox))
    assert refused.returncode == 2 and "no run to undo" in refused.stderr and "Traceback" not in refused.stderr
