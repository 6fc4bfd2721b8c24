"""One ticket per row, whatever the copy, the target or the second terminal (issue 13)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

import bulksync
from bulksync.errors import SheetBusy, TargetMismatch, UsageError
from bulksync.journal import Target, store_path
from bulksync.lock import sheet_lock
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, SkippingClock, run_cli, write
from tests.processes import Command, start
from tests.test_journal import _created_in_journal, _rows, _sheet, assert_one_ticket_per_row

SAMPLES = bundled("sample_data")
DEFAULTS = {"form_id": FORM, "channel": CHANNEL}


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def _export(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("zendesk-export.csv", "users.csv", "bulksync.toml"):
        shutil.copy(SAMPLES / name, folder / name)
    return folder / "zendesk-export.csv"


def _migrate(sb: Sandbox, path: Path, **extra: object) -> bulksync.RunResult:
    return bulksync.push(path, token=TOKEN, api_url=sb.url, mapping="zendesk",
                         users=path.parent / "users.csv", **extra)  # type: ignore[arg-type]


def _posts(sb: Sandbox) -> int:
    return sum(1 for r in sb.requests() if r["method"] == "POST" and r["path"].endswith("/ticket"))


# -- 1. state belongs to a target ------------------------------------------------------------

def test_a_rehearsal_then_the_real_push_creates_every_ticket_on_the_second(tmp_path: Path) -> None:
    path = _export(tmp_path)
    fresh = path.read_bytes()
    with Sandbox(token=TOKEN) as rehearsal, Sandbox(token=TOKEN) as real:
        assert _migrate(rehearsal, path).counts["created"] == 4
        # The export now holds the rehearsal's IDs: refused for the real API, nothing sent.
        with pytest.raises(TargetMismatch) as refused:
            _migrate(real, path)
        message = str(refused.value)
        assert rehearsal.url in message and real.url in message and "bulksync reset" in message
        assert real.requests() == []
        cli = run_cli("push", str(path), "--mapping", "zendesk", "--users", str(tmp_path / "users.csv"),
                      env=_env(real))
        assert cli.returncode == 2 and "bulksync reset" in cli.stderr and "Traceback" not in cli.stderr
        # A fresh copy of the export at the same path: every ticket is made on the real API.
        path.write_bytes(fresh)
        result = _migrate(real, path)
        assert (result.counts["created"], result.summary()["recovered"]) == (4, 0), result.summary()
        assert len(real.tickets()) == 4 and len(rehearsal.tickets()) == 4
        ids = {r["ticketId"] for r in _rows(path)}
        assert ids == {t["id"] for t in real.tickets()}


def test_reset_clears_bulksyncs_cells_so_the_sheet_can_go_to_another_api(tmp_path: Path) -> None:
    path = _export(tmp_path)
    with Sandbox(token=TOKEN) as rehearsal, Sandbox(token=TOKEN) as real:
        _migrate(rehearsal, path)
        pushed = path.read_text(encoding="utf-8")
        done = run_cli("reset", str(path), "--yes")
        assert done.returncode == 0, done.stderr
        assert "cell(s) cleared" in done.stdout
        rows = _rows(path)
        assert all(r["ticketId"] == r["ticketNumber"] == r["syncStatus"] == "" for r in rows)
        # Every other cell is as it was.
        assert [{k: v for k, v in r.items() if k not in ("ticketId", "ticketNumber", "syncStatus",
                                                             "syncError")} for r in rows] == [
            {k: v for k, v in r.items() if k not in ("ticketId", "ticketNumber", "syncStatus",
                                                     "syncError")}
            for r in json.loads(json.dumps(_rows_of_text(tmp_path, pushed)))]
        assert _migrate(real, path).counts["created"] == 4 and len(real.tickets()) == 4
        # Pushed back to the rehearsal, the same export recovers its tickets there.
        run_cli("reset", str(path), "--yes")
        again = _migrate(rehearsal, path)
        assert again.summary()["recovered"] == 4 and len(rehearsal.tickets()) == 4


def _rows_of_text(folder: Path, text: str) -> list[dict[str, str]]:
    copy = folder / "copy-of-text.csv"
    copy.write_text(text, encoding="utf-8")
    try:
        return _rows(copy)
    finally:
        copy.unlink()


def test_plan_and_push_name_the_target(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 2)
    result = run_cli("plan", str(sheet), "--form-id", FORM, "--channel", CHANNEL, env=_env(sandbox))
    assert result.stderr.splitlines()[0].startswith(f"target: {sandbox.url} (a local server: the sandbox")
    pushed = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q", env=_env(sandbox))
    assert pushed.stderr.startswith(f"bulksync: target: {sandbox.url} (a local server")
    assert TOKEN not in pushed.stderr
    real = Target.of("https://public-api-prod.suptask.com/api/v2/public/", "t0k")
    assert str(real).startswith("https://public-api-prod.suptask.com/api/v2/public, token ")
    assert "local" not in str(real) and "t0k" not in str(real)


def test_another_token_on_the_same_url_is_another_target(tmp_path: Path) -> None:
    sheet = _sheet(tmp_path / "t.csv", 3)
    fresh = sheet.read_bytes()
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        sheet.write_bytes(fresh)
        sb.token = "second-token"
        again = bulksync.push(sheet, token="second-token", api_url=sb.url, **DEFAULTS)
        assert again.counts["created"] == 3 and again.summary()["recovered"] == 0
        assert len(sb.tickets()) == 6


# -- 2. one writer ---------------------------------------------------------------------------

def _push_process(sheet: str, sb: Sandbox, cwd: Path) -> Command:
    return start("push", sheet, "--form-id", FORM, "--channel", CHANNEL, "-q", env=_env(sb), cwd=cwd)


def test_two_pushes_of_one_sheet_at_once_make_one_ticket_per_row(tmp_path: Path) -> None:
    sheet = _sheet(tmp_path / "t.csv", 60)
    (tmp_path / "link.csv").symlink_to(sheet)
    with Sandbox(token=TOKEN, latency_ms=250) as sb:
        first = _push_process(str(sheet), sb, tmp_path)
        deadline = time.monotonic() + 30
        while _posts(sb) == 0:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
        # The same file under two other names: a relative path and a symlink.
        seconds = [_push_process(name, sb, tmp_path) for name in ("./t.csv", "link.csv")]
        for second in seconds:
            _, err = second.communicate(timeout=60)
            assert second.returncode == 2, err
            assert "another bulksync run is working on this sheet" in err and "process" in err
            assert "Traceback" not in err
        assert first.poll() is None  # the seconds were refused while the first was still at work
        sb.latency = 0  # the first need not be slow any more
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert_one_ticket_per_row(sheet, sb, 60)


def _kill_after(sheet: Path, sb: Sandbox, cwd: Path, created: int) -> None:
    """Push ``sheet`` in another process and kill -9 it once ``created`` creates are recorded."""
    process = _push_process(str(sheet), sb, cwd)
    deadline = time.monotonic() + 30
    while _created_in_journal(sheet) < created:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path, clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 30)
    with Sandbox(token=TOKEN, latency_ms=30) as sb:
        _kill_after(sheet, sb, tmp_path, 3)
        assert sb.idle()
        sb.latency = 0  # the rerun need not be slow
        rerun = bulksync.push(sheet, token=TOKEN, api_url=sb.url, retry_uncertain=True, clock=clock,
                              **DEFAULTS)  # not SheetBusy: the killed holder's lock went with it
        assert rerun.ok, rerun.summary()
        assert_one_ticket_per_row(sheet, sb, 30)


def test_a_held_lock_refuses_at_once_in_process(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 2)
    with sheet_lock(sheet):
        with pytest.raises(SheetBusy):
            bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
        with pytest.raises(SheetBusy):
            bulksync.delete(sheet, token=TOKEN, api_url=sandbox.url)
    assert sandbox.requests() == []


# -- 3. identity does not depend on the file name --------------------------------------------

def test_a_renamed_copy_and_a_copy_in_another_folder_create_nothing(tmp_path: Path,
                                                                   sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "tickets.csv", "description,notes\nPrinter jams,a\nVPN drops,b\n"
                                            "Printer jams,a\n")
    fresh = sheet.read_bytes()
    first = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert first.counts["created"] == 3
    ids = [r["ticketId"] for r in _rows(sheet)]
    assert len(set(ids)) == 3  # identical rows are two tickets
    for copy in (tmp_path / "tickets (1).csv", tmp_path / "elsewhere" / "tickets.csv"):
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(fresh)
        planned = run_cli("plan", str(copy), "--form-id", FORM, "--channel", CHANNEL, env=_env(sandbox))
        assert "3 row(s) match tickets created from another sheet" in planned.stdout, planned.stdout
        assert "0 to create" in planned.stdout
        count = len(sandbox.requests())
        again = bulksync.push(copy, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
        assert again.summary()["matched"] == 3 and again.requests == 0, again.summary()
        assert len(sandbox.requests()) == count
        assert [r["ticketId"] for r in _rows(copy)] == ids  # the existing IDs, written in
    third = tmp_path / "third.csv"
    third.write_bytes(fresh)
    cli = run_cli("push", str(third), "--form-id", FORM, "--channel", CHANNEL, "-q", env=_env(sandbox))
    assert cli.returncode == 0, cli.stderr
    assert ("3 created, 0 updated, 0 failed, 3 of them matched to tickets created from another sheet "
            "(rows 2–4: not created again; --allow-duplicates creates them) (0 requests)") in cli.stdout
    # On purpose: --allow-duplicates creates them.
    extra = tmp_path / "again.csv"
    extra.write_bytes(fresh)
    forced = bulksync.push(extra, token=TOKEN, api_url=sandbox.url, allow_duplicates=True, **DEFAULTS)
    assert forced.counts["created"] == 3 and forced.summary()["matched"] == 0
    assert len(sandbox.tickets()) == 6


def test_a_re_export_in_another_folder_creates_nothing_and_gets_the_ids(tmp_path: Path,
                                                                       sandbox: Sandbox) -> None:
    path = _export(tmp_path / "first")
    _migrate(sandbox, path)
    posts = _posts(sandbox)
    again = _export(tmp_path / "downloads")
    renamed = again.with_name("zendesk export (2).csv")
    again.rename(renamed)
    result = _migrate(sandbox, renamed)
    assert result.summary()["recovered"] == 4 and _posts(sandbox) == posts
    assert sorted(r["ticketId"] for r in _rows(renamed)) == sorted(r["ticketId"] for r in _rows(path))
    assert sorted(r["ticketNumber"] for r in _rows(renamed)) == sorted(r["ticketNumber"] for r in _rows(path))


def test_a_copy_pushed_after_a_kill_creates_nothing_twice(tmp_path: Path, clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 40)
    fresh = sheet.read_bytes()
    with Sandbox(token=TOKEN, latency_ms=30) as sb:
        _kill_after(sheet, sb, tmp_path, 10)
        copy = tmp_path / "t (1).csv"
        copy.write_bytes(fresh)
        assert sb.idle()  # what was in flight at the kill is done
        sb.latency = 0  # the rerun need not be slow
        rerun = bulksync.push(copy, token=TOKEN, api_url=sb.url, retry_uncertain=True, clock=clock,
                              **DEFAULTS)
        assert rerun.ok, rerun.summary()
        assert_one_ticket_per_row(copy, sb, 40)


# -- identical rows are distinct rows -----------------------------------------------------------

def test_identical_rows_recover_two_distinct_ids_after_a_kill_before_write_back(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description\nSame\nSame\nOther\nSame\n")
    fresh = sheet.read_bytes()
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        sheet.write_bytes(fresh)  # as if killed before writing back: the IDs are only in the state
        again = bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        assert again.summary()["recovered"] == 4 and again.requests == 0
        assert_one_ticket_per_row(sheet, sb, 4)


# -- 4. damaged state ------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["zeroed", "random bytes", "another database"])
def test_a_damaged_store_is_a_clear_error_and_nothing_is_sent(tmp_path: Path, damage: str) -> None:
    sheet = _sheet(tmp_path / "t.csv", 5)
    fresh = sheet.read_bytes()
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        sheet.write_bytes(fresh)  # the IDs are only in the store now
        store = store_path()
        for suffix in ("-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        if damage == "zeroed":
            store.write_bytes(b"")
        elif damage == "random bytes":
            store.write_bytes(random.Random(1).randbytes(8192))
        else:
            store.unlink()
            with sqlite3.connect(store) as db:
                db.execute("CREATE TABLE notes (x)")
        count = len(sb.requests())
        result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, env=_env(sb))
        assert result.returncode == 2, result.stderr
        assert "state store" in result.stderr and str(store) in result.stderr
        assert "Traceback" not in result.stderr and ".damaged" in result.stderr
        assert len(sb.requests()) == count and sheet.read_bytes() == fresh
        assert len(sb.tickets()) == 5


def test_the_state_is_where_bulksync_home_says_and_nothing_is_made_beside_the_sheet(
        tmp_path: Path, sandbox: Sandbox, state_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "sheets"
    folder.mkdir()
    sheet = _sheet(folder / "t.csv", 3)
    fresh = sheet.read_bytes()
    monkeypatch.chdir(folder)  # not the working folder either
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert sorted(p.name for p in folder.iterdir()) == ["t.csv"]
    assert store_path().parent == state_home and store_path().is_file()
    sheet.write_bytes(fresh)  # the IDs are only in the store now: it alone recovers them
    monkeypatch.chdir(tmp_path)
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.summary()["recovered"] == 3 and len(sandbox.tickets()) == 3


def test_without_bulksync_home_the_state_is_in_the_users_state_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("BULKSYNC_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))  # platformdirs' folder on Linux
    assert store_path().parent == platformdirs.user_state_path("bulksync", appauthor=False)
    assert store_path().parent.is_relative_to(tmp_path / "xdg") or sys.platform != "linux"


# -- 5. uncertain creates are resolved before they are resent -----------------------------------

def test_a_settle_time_shorter_than_the_timeout_is_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 2)
    with pytest.raises(UsageError, match="--settle"):
        bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, settle=0, **DEFAULTS)
    result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--settle", "0",
                     env=_env(sandbox))
    assert result.returncode == 2 and "--settle" in result.stderr
    assert sandbox.requests() == []


def test_kill_9_anywhere_then_what_bulksync_advises_makes_one_ticket_per_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: SkippingClock) -> None:
    rng = random.Random(13)
    trials = 6
    for trial in range(trials):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        # A sandbox of a later trial may get an earlier one's port: the same target to the
        # state store, whose tickets (same cells) it would rightly match. Each trial its own.
        monkeypatch.setenv("BULKSYNC_HOME", str(folder / "state"))
        sheet = write(folder / "t.csv", "description\n" + "".join(
            f"Ticket {i % 7}\n" for i in range(24)))  # identical rows among them
        with Sandbox(token=TOKEN, latency_ms=20, ambiguous_rate=0.1, drop_rate=0.1,
                     seed=trial) as sb:
            process = _push_process(str(sheet), sb, folder)
            # Killed at a random point once it is sending: after its n-th request reached the
            # sandbox (not while it was still importing, which would test nothing).
            point, deadline = rng.randint(1, 24), time.monotonic() + 30
            while len(sb.requests()) < point and process.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            process.send_signal(signal.SIGKILL)
            process.communicate()
            sb.ambiguous_rate = sb.drop_rate = sb.latency = 0
            assert sb.idle()
            # Follow the advice each row's outcome gives (what the command line prints), as a
            # user would; the waits it asks for (the settle time) pass on the run's clock.
            advice = {"retry_uncertain": False, "resend_unresolved": False}
            for _ in range(4):
                result = bulksync.push(sheet, token=TOKEN, api_url=sb.url, clock=clock, **advice, **DEFAULTS)
                if result.ok:
                    break
                text = " ".join(r.error for r in result.results.values())
                assert "--resend-unresolved" not in text or "look for the ticket" in text
                advice["retry_uncertain"] |= "--retry-uncertain" in text
                if "look for the ticket in Suptask" in text:
                    advice["resend_unresolved"] |= bool(_look_in_suptask(sheet, sb))
            assert result.ok, result.summary()
            assert_one_ticket_per_row(sheet, sb, 24)


def _look_in_suptask(sheet: Path, sb: Sandbox) -> list[str]:
    """Do what the advice for an unresolvable row says, as a user would: look for the
    ticket in Suptask; if it is there (a ticket with that description no row holds), type
    its ID into the row; if not, push with --resend-unresolved."""
    import csv

    rows = _rows(sheet)
    held = {r["ticketId"] for r in rows}
    orphans = [t for t in sb.tickets() if t["id"] not in held]
    resend = False
    for row in rows:
        if row["syncStatus"] != "uncertain":
            continue
        found = next((t for t in orphans if t["description"] == row["description"]), None)
        if found is None:
            resend = True
        else:
            orphans.remove(found)
            row["ticketId"], row["ticketNumber"] = found["id"], str(found["ticketNumber"])
    with sheet.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return ["--resend-unresolved"] if resend else []


# -- 6. delete is idempotent and does what it confirmed ------------------------------------------

def test_delete_twice_exits_0_and_rows_stay_deleted(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 4)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    first = run_cli("delete", str(sheet), "--yes", "-q", env=_env(sandbox))
    assert first.returncode == 0, first.stderr
    deletes = [r for r in sandbox.requests() if r["method"] == "DELETE"]
    assert len(deletes) == 4 and all(r["body"] is None for r in deletes)  # DELETE carries no body
    assert sandbox.tickets() == []
    second = run_cli("delete", str(sheet), "--yes", "-q", env=_env(sandbox))
    assert second.returncode == 0, second.stdout + second.stderr
    assert [r["syncStatus"] for r in _rows(sheet)] == ["deleted"] * 4
    assert len([r for r in sandbox.requests() if r["method"] == "DELETE"]) == 4  # none sent again


def test_a_ticket_known_deleted_is_not_deleted_again_even_if_the_sheet_forgot(
        tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 3)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    close = write(tmp_path / "close.csv", "ticketId\n" + "".join(
        f"{r['ticketId']}\n" for r in _rows(sheet)))
    fresh = close.read_bytes()
    assert bulksync.delete(close, token=TOKEN, api_url=sandbox.url).counts["deleted"] == 3
    close.write_bytes(fresh)  # a fresh copy of the list: no syncStatus
    again = bulksync.delete(close, token=TOKEN, api_url=sandbox.url)
    assert again.ok and again.counts["deleted"] == 3 and again.requests == 0


def test_delete_deletes_exactly_what_was_confirmed(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 3)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    other = write(tmp_path / "other.csv", "description\nKeep me\n")
    bulksync.push(other, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    keep = _rows(other)[0]["ticketId"]
    shown: list[list[int]] = []

    def confirm(ops: list[bulksync.Operation]) -> bool:
        shown.append([op.row_number for op in ops])
        # Someone adds a row while the question is on screen: it must not be deleted.
        with sheet.open("a", encoding="utf-8") as f:
            f.write(f"Added,late,{keep},,,\n")
        return True

    result = bulksync.delete(sheet, token=TOKEN, api_url=sandbox.url, confirm=confirm)
    assert shown == [[2, 3, 4]] and result.counts["deleted"] == 3
    assert [t["id"] for t in sandbox.tickets()] == [keep]


def test_delete_confirmation_lists_the_rows_and_a_no_sends_nothing(tmp_path: Path,
                                                                  sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 3)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    result = bulksync.delete(sheet, token=TOKEN, api_url=sandbox.url, confirm=lambda ops: False)
    assert result.refused and result.requests == 0 and len(sandbox.tickets()) == 3
    cli = run_cli("delete", str(sheet), env=_env(sandbox))
    assert cli.returncode == 2 and "Delete 3 tickets listed in" in cli.stderr and "rows 2–4" in cli.stderr
    assert len(sandbox.tickets()) == 3


def test_a_claim_stops_a_second_run_from_sending_the_same_create(tmp_path: Path) -> None:
    from bulksync.journal import Journal

    target = Target.of("https://api.example.com", "t0ken")
    store = tmp_path / "state.sqlite"
    with Journal(target, path=store, run="a") as a, Journal(target, path=store, run="b") as b:
        assert a.intend("legacy\x1fZendesk\x1f42", 2, {"description": "x"}, scope="/one.csv",
                        content="c:0") is None
        blocked = b.intend("legacy\x1fZendesk\x1f42", 5, {"description": "x"}, scope="/two.csv",
                           content="c:0")
        assert blocked is not None and blocked.state == "sending" and blocked.run == "a"
        # The same cells from another sheet are claimed too, unless duplicates are allowed.
        assert b.intend("row\x1f/two.csv\x1fc:0", 2, {}, scope="/two.csv", content="c:0",
                        exclusive_content=True) is not None
        assert b.intend("row\x1f/two.csv\x1fc:0", 2, {}, scope="/two.csv", content="c:0") is None
        # Its own claim, after a refused attempt (503), can be taken again by the same run.
        a.not_sent("legacy\x1fZendesk\x1f42")
        assert b.intend("legacy\x1fZendesk\x1f42", 5, {}, scope="/two.csv", content="c:0") is None
        b.created("legacy\x1fZendesk\x1f42", "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32", 7)
        done = a.intend("legacy\x1fZendesk\x1f42", 2, {}, scope="/one.csv", content="c:0")
        assert done is not None and done.ticket_id == "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"


def test_two_overlapping_pushes_of_two_copies_make_one_ticket_per_row(tmp_path: Path,
                                                                      cli_clock: SkippingClock) -> None:
    a = write(tmp_path / "a.csv", "description\n" + "".join(f"Copy row {i}\n" for i in range(1, 5)))
    b = tmp_path / "b.csv"
    b.write_text(a.read_text() + "Copy row 5 only in b\n")
    with Sandbox(token=TOKEN, latency_ms=300) as sb:
        first = _push_process(str(a), sb, tmp_path)
        deadline = time.monotonic() + 30
        while _posts(sb) < 2:  # a is sending its creates when b starts
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
        second = run_cli("push", str(b), "--form-id", FORM, "--channel", CHANNEL, "-q", env=_env(sb))
        sb.latency = 0  # the overlap is over: what is left need not be slow
        first.communicate(timeout=60)
        descriptions = sorted(t["description"] for t in sb.tickets())
        assert descriptions == sorted({*descriptions}), descriptions  # no duplicate
        assert len(descriptions) <= 5, second.stdout + second.stderr
        # Whatever b could not settle while a was at work, a plain rerun settles (its wait for
        # the settle time skipped on the command line's clock).
        for _ in range(3):
            again = run_cli("push", str(b), "--form-id", FORM, "--channel", CHANNEL, "-q",
                            "--retry-uncertain", "--settle", "1", "--timeout", "1", env=_env(sb))
            if again.returncode == 0:
                break
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(sb.tickets()) == 5
        assert sorted(r["ticketId"] for r in _rows(b))[:4] != [] and len({r["ticketId"] for r in _rows(b)}) == 5


def test_a_migrated_row_is_its_legacy_id_even_when_its_cells_match_another(tmp_path: Path,
                                                                           sandbox: Sandbox) -> None:
    path = _export(tmp_path / "one")
    text = path.read_text(encoding="utf-8")
    header, first = text.splitlines()[:2]
    path.write_text(f"{header}\n{first}\n", encoding="utf-8")
    other = _export(tmp_path / "two")
    other.write_text(f"{header}\n{first.replace(',4211,', ',9999,')}\n", encoding="utf-8")
    _migrate(sandbox, path)
    second = _migrate(sandbox, other)
    assert second.counts["created"] == 1 and second.summary()["matched"] == 0, second.summary()
    assert len(sandbox.tickets()) == 2
    assert {link["externalId"] for t in sandbox.tickets() for link in t["externalLinks"]} == {
        "4211", "9999"}


def test_the_state_store_is_private(tmp_path: Path, sandbox: Sandbox, state_home: Path) -> None:
    import stat

    state_home.chmod(0o755)
    bulksync.push(_sheet(tmp_path / "t.csv", 1), token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert stat.S_IMODE(state_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(store_path().stat().st_mode) == 0o600


def test_a_push_of_deleted_tickets_keeps_them_deleted(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 2)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    bulksync.delete(sheet, token=TOKEN, api_url=sandbox.url)
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.counts["deleted"] == 2 and again.requests == 0
    assert [r["syncStatus"] for r in _rows(sheet)] == ["deleted", "deleted"]


def test_two_overlapping_migrations_of_copies_link_and_reply_once(tmp_path: Path) -> None:
    path = _export(tmp_path)
    shutil.copy(SAMPLES / "zendesk-comments.csv", tmp_path / "zendesk-comments.csv")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    args = ["--mapping", "zendesk", "--users", str(tmp_path / "users.csv"),
            "--comments", str(tmp_path / "zendesk-comments.csv"), "-q"]
    with Sandbox(token=TOKEN, latency_ms=400) as sb:
        first = start("push", str(path), *args, env=_env(sb))
        deadline = time.monotonic() + 30
        while not any("/ticket/external/" in r["path"] for r in sb.requests()):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
        run_cli("push", str(copy), *args, env=_env(sb))
        sb.latency = 0  # the overlap is over: what is left need not be slow
        first.communicate(timeout=60)
        for _ in range(2):  # what either left unsettled, a rerun settles
            run_cli("push", str(path), *args, env=_env(sb))
            run_cli("push", str(copy), *args, env=_env(sb))
        tickets = sb.tickets()
    assert len(tickets) == 4
    for ticket in tickets:
        assert len(ticket["externalLinks"]) == 1, ticket
        texts = [r["text"] for r in ticket.get("replies", [])]
        assert len(texts) == len(set(texts)), ticket
    assert sum(len(t.get("replies", [])) for t in tickets) == 6
