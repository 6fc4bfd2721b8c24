"""A full disk, an I/O error or a busy store in the middle of a run (issue 26): every access to
the state store goes through one guard, so a pull, a push and an undo each end with a clean
error (exit 2, one line, no traceback) that says what went wrong as it is and what the
command had done by then, and nothing obtained is lost: run again once there is room, and
every row has its one ticket.

The disk fills *during* the run here (after a number of requests), so the failing write is
one of the run's own, not the opening of the store."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bulksync
from bulksync import journal
from bulksync.journal import Journal, Target, store_path
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, read_rows, run_cli, write

ROWS = 6


class Disk:
    """The store's disk: ``full`` refuses every write as SQLite does when the disk fills up;
    ``when`` fills it at a moment of the run (checked at each statement). ``error`` is what
    a refused write raises."""

    def __init__(self) -> None:
        self.full = False
        self.when: Callable[[], bool] | None = None
        self.error: sqlite3.Error = sqlite3.OperationalError("database or disk is full")
        self.refused = 0

    def fills(self) -> bool:
        if not self.full and self.when is not None and self.when():
            self.full = True
        return self.full

    def free(self) -> None:
        self.full, self.when = False, None


class FullDisk:
    """A connection to the store on ``disk``."""

    def __init__(self, db: sqlite3.Connection, disk: Disk) -> None:
        self._db, self._disk = db, disk

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and self._disk.fills():
            self._disk.refused += 1
            raise self._disk.error

    def execute(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self._db.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def __enter__(self) -> Any:
        return self._db.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._db.__exit__(*exc)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    the_disk = Disk()
    connect = sqlite3.connect

    def connecting(*args: Any, **kwargs: Any) -> Any:
        return FullDisk(connect(*args, **kwargs), the_disk)

    monkeypatch.setattr(journal.sqlite3, "connect", connecting)
    yield the_disk


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def _sheet(tmp_path: Path) -> Path:
    return write(tmp_path / "t.csv", "description,priority\n" + "".join(
        f"Row {i},{'Low' if i % 2 else 'High'}\n" for i in range(ROWS)))


def _after(sb: Sandbox, requests: int) -> Callable[[], bool]:
    """True once ``requests`` more requests have reached the sandbox."""
    start = len(sb.requests())
    return lambda: len(sb.requests()) >= start + requests


def _error_of(done: Any) -> str:
    """The command's one error line, checked clean: exit 2, no traceback, no token."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("bulksync: error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def _said_as_a_full_disk(message: str) -> None:
    assert "database or disk is full" in message and "free some disk space" in message, message
    assert "move it aside" not in message and ".damaged" not in message, message


def _one_ticket_per_row(sheet: Path, sb: Sandbox) -> None:
    rows = read_rows(sheet)
    ids = [r["ticketId"] for r in rows]
    assert all(ids) and len(set(ids)) == ROWS, rows
    alive = {t["id"] for t in sb.tickets() if not t.get("deleted")}
    assert set(ids) <= alive
    assert len(sb.tickets()) == ROWS, "a row was created twice"


# -- mid-run: push, pull, undo --------------------------------------------------------------


def test_a_disk_that_fills_during_a_push_says_what_was_sent_and_loses_no_id(
        tmp_path: Path, sandbox: Sandbox, disk: Disk) -> None:
    sheet = _sheet(tmp_path)
    disk.when = _after(sandbox, 2)
    done = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--concurrency", "1",
                   env=_env(sandbox))
    message = _error_of(done)
    _said_as_a_full_disk(message)
    assert disk.refused and len(sandbox.requests()) == 2  # stopped at once: nothing sent after it
    assert "nothing was sent" not in message
    assert "push stopped at once after 2 request(s)" in message, message
    assert "written back to the sheet, and the next push resolves what was in flight" in message, message
    made = {t["id"] for t in sandbox.tickets()}
    assert {r["ticketId"] for r in read_rows(sheet) if r["ticketId"]} == made  # the unrecorded one too

    disk.free()
    again = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, env=_env(sandbox))
    assert again.returncode == 0, again.stdout + again.stderr
    _one_ticket_per_row(sheet, sandbox)


def _pushed_then_edited_in_suptask(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A sheet pushed, whose every ticket's priority was then changed in Suptask: what a pull reads."""
    sheet = _sheet(tmp_path)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    for row in read_rows(sheet):
        sandbox.edit(int(row["ticketNumber"]), priority="Medium")
    return sheet


def test_a_disk_that_fills_during_a_pull_leaves_the_sheet_as_it_was(
        tmp_path: Path, sandbox: Sandbox, disk: Disk) -> None:
    sheet = _pushed_then_edited_in_suptask(tmp_path, sandbox)
    before = sheet.read_bytes()
    disk.when = _after(sandbox, 2)  # the second read is not recorded
    done = run_cli("pull", str(sheet), env=_env(sandbox))
    message = _error_of(done)
    _said_as_a_full_disk(message)
    assert disk.refused and len(sandbox.requests()) - ROWS == 2
    assert "nothing was sent" not in message and "push" not in message, message
    assert "the pull stopped after 1 ticket(s) read and recorded" in message, message
    assert "the sheet is unchanged" in message, message
    assert sheet.read_bytes() == before

    disk.free()
    again = run_cli("pull", str(sheet), env=_env(sandbox))
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(sandbox.requests()) - ROWS == 2 + ROWS - 1  # the read recorded is not read again
    assert [r["priority"] for r in read_rows(sheet)] == ["Medium"] * ROWS
    _one_ticket_per_row(sheet, sandbox)


def test_a_disk_that_fills_once_a_pull_wrote_the_sheet_says_so_and_the_next_pull_records_it(
        tmp_path: Path, sandbox: Sandbox, disk: Disk) -> None:
    sheet = _pushed_then_edited_in_suptask(tmp_path, sandbox)
    before = sheet.read_bytes()
    disk.when = lambda: sheet.read_bytes() != before  # fills once the sheet is written
    message = _error_of(run_cli("pull", str(sheet), env=_env(sandbox)))
    _said_as_a_full_disk(message)
    assert "the pull wrote the sheet (6 row(s) marked)" in message and "pull again" in message, message
    assert "the sheet is unchanged" not in message and "nothing was sent" not in message
    assert [r["priority"] for r in read_rows(sheet)] == ["Medium"] * ROWS

    disk.free()
    assert run_cli("pull", str(sheet), env=_env(sandbox)).returncode == 0
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url)
    assert again.ok and again.requests == 0, again.summary()  # what was pulled is the baseline now


def test_a_disk_that_fills_during_an_undo_says_what_the_undo_did_and_it_finishes_when_run_again(
        tmp_path: Path, sandbox: Sandbox, disk: Disk) -> None:
    sheet = _sheet(tmp_path)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    disk.when = _after(sandbox, 2)
    done = run_cli("undo", str(sheet), "--yes", "--run", "1", "--no-check", env=_env(sandbox))
    message = _error_of(done)
    _said_as_a_full_disk(message)
    deletes = [r for r in sandbox.requests() if r["method"] == "DELETE"]
    assert len(deletes) == ROWS and disk.refused  # every DELETE went out before the store failed
    # The run's own failure is said, not the one of the store opened after it.
    assert "nothing was sent" not in message, message
    assert f"the undo stopped after {ROWS} request(s)" in message and "undo run 1 again" in message, message
    rows = read_rows(sheet)
    assert [r["syncStatus"] for r in rows] == ["undone"] * ROWS and not any(r["ticketId"] for r in rows)

    disk.free()
    again = run_cli("undo", str(sheet), "--yes", "--run", "1", "--no-check", env=_env(sandbox))
    assert again.returncode == 0, again.stdout + again.stderr
    listed = run_cli("runs", str(sheet), env=_env(sandbox))
    assert "(undone)" in listed.stdout, listed.stdout
    assert run_cli("undo", str(sheet), "--yes", "--run", "1", env=_env(sandbox)).returncode == 0
    assert not [t for t in sandbox.tickets() if not t.get("deleted")]
    # Pushed again, the rows are created anew: one ticket each, none recovered from the undone run.
    pushed = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert pushed.counts["created"] == ROWS, pushed.summary()


def test_a_disk_that_fills_during_a_delete_says_what_was_deleted(tmp_path: Path, sandbox: Sandbox,
                                                                  disk: Disk) -> None:
    sheet = _sheet(tmp_path)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    disk.when = _after(sandbox, 2)
    message = _error_of(run_cli("delete", str(sheet), "--yes", env=_env(sandbox)))
    _said_as_a_full_disk(message)
    assert "nothing was sent" not in message, message
    assert f"the delete stopped at once after {ROWS} request(s): what they obtained was written back" in message
    assert [r["syncStatus"] for r in read_rows(sheet)] == ["deleted"] * ROWS and not sandbox.tickets()

    disk.free()
    again = run_cli("delete", str(sheet), "--yes", env=_env(sandbox))
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_store_that_fails_after_a_checked_push_says_the_push_not_that_nothing_was_sent(
        tmp_path: Path, sandbox: Sandbox, disk: Disk) -> None:
    """push --check records what it read once the sheet holds it, in a store opened after the
    run: when that fails, the error says what the push did."""
    sheet = _sheet(tmp_path)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    sheet.write_text(sheet.read_text().replace("Row 0,High", "Row 0 edited,High"))
    sandbox.edit(int(read_rows(sheet)[0]["ticketNumber"]), priority="Medium")  # the check takes this one
    pushed = sheet.read_bytes()
    disk.when = lambda: sheet.read_bytes() != pushed  # fills once the outcomes are written back
    done = run_cli("push", str(sheet), "--check", env=_env(sandbox))
    message = _error_of(done)
    _said_as_a_full_disk(message)
    assert "nothing was sent" not in message, message
    assert "the push sent its 1 request(s): what they obtained was written back to the sheet" in message, message
    row = read_rows(sheet)[0]
    assert (row["description"], row["priority"], row["syncStatus"]) == ("Row 0 edited", "Medium", "updated")


@pytest.mark.parametrize("command", ["push", "pull", "undo"])
def test_a_disk_full_before_the_run_says_nothing_was_sent(tmp_path: Path, sandbox: Sandbox, disk: Disk,
                                                          command: str) -> None:
    sheet = _sheet(tmp_path)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    sheet.write_text(sheet.read_text().replace("Row 0,High", "Row 0,Medium"))
    before, count = sheet.read_bytes(), len(sandbox.requests())
    disk.full = True
    args = {"push": ("push", str(sheet)), "pull": ("pull", str(sheet)),
            "undo": ("undo", str(sheet), "--yes", "--run", "1")}[command]
    message = _error_of(run_cli(*args, env=_env(sandbox)))
    _said_as_a_full_disk(message)
    assert len(sandbox.requests()) == count and sheet.read_bytes() == before
    assert ("the sheet is unchanged" if command == "pull" else "nothing was sent") in message, message


# -- what the guard covers ------------------------------------------------------------------


def test_every_access_to_the_store_goes_through_the_guard() -> None:
    """Every public method of the journal, its opening, and the module's readers of the store
    are guarded: a method added later is covered without a list."""
    names = [n for n, v in vars(Journal).items() if callable(v) and (not n.startswith("_") or n == "__init__")]
    assert "__init__" in names and "updated_many" in names
    unguarded = [n for n in names if not hasattr(getattr(Journal, n), "__wrapped__")]
    assert not unguarded
    for function in (journal.read_view, journal.window_of):
        assert hasattr(function, "__wrapped__"), function


def test_a_store_opened_after_sends_is_guarded_too(tmp_path: Path, disk: Disk) -> None:
    target = Target.of("https://api.example.com", "t0ken")
    with Journal(target, path=tmp_path / "j.sqlite"):
        pass
    disk.full = True
    with pytest.raises(bulksync.StateError) as opened:
        Journal(target, path=tmp_path / "j.sqlite")
    assert "database or disk is full" in str(opened.value) and not opened.value.damaged
    assert "nothing was sent" not in str(opened.value)  # the guard does not know: the command says


# -- I/O and permission errors ---------------------------------------------------------------


@pytest.mark.parametrize(("code", "said", "advice"), [
    (errno.EIO, "Input/output error", "check the disk"),
    (errno.EACCES, "Permission denied", "writable"),
])
def test_an_io_or_permission_error_on_the_store_is_said_as_it_is(
        tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, code: int, said: str,
        advice: str) -> None:
    sheet = _sheet(tmp_path)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    store, stat = store_path(), Path.stat

    def failing(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == store:
            raise OSError(code, said)
        return stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", failing)
    count = len(sandbox.requests())
    message = _error_of(run_cli("push", str(sheet), env=_env(sandbox)))
    assert f"({said}, {errno.errorcode[code]})" in message and advice in message, message
    assert "move it aside" not in message and "disk space" not in message, message
    assert "nothing was sent" in message and len(sandbox.requests()) == count


@pytest.mark.parametrize(("error", "advice"), [
    ("disk I/O error", "check the disk"),
    ("attempt to write a readonly database", "writable"),
])
def test_an_io_error_or_a_read_only_store_mid_run_is_said_as_it_is(
        tmp_path: Path, sandbox: Sandbox, disk: Disk, error: str, advice: str) -> None:
    sheet = _sheet(tmp_path)
    disk.error = sqlite3.OperationalError(error)
    disk.when = _after(sandbox, 1)
    message = _error_of(run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL,
                                "--concurrency", "1", env=_env(sandbox)))
    assert f"({error})" in message and advice in message, message
    assert "disk space" not in message.replace("its free space", "") and "move it aside" not in message
    assert "push stopped at once after 1 request(s)" in message


def test_a_store_that_cannot_be_opened_is_not_called_damaged(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.sqlite"
    target = Target.of("https://api.example.com", "t0ken")
    with Journal(target, path=path):
        pass
    connect = sqlite3.connect

    def refused(where: Any, *args: Any, **kwargs: Any) -> Any:
        if str(where) == str(path):  # the store itself; its integrity check (by URI) still opens it
            raise sqlite3.OperationalError("unable to open database file")
        return connect(where, *args, **kwargs)

    monkeypatch.setattr(journal.sqlite3, "connect", refused)
    with pytest.raises(bulksync.StateError) as opened:
        Journal(target, path=path)
    message = str(opened.value)
    assert "unable to open database file" in message and "writable" in message, message
    assert not opened.value.damaged and "move it aside" not in message


# -- a busy store, and other SQLite errors ---------------------------------------------------


def test_a_store_busy_with_another_run_is_said_as_busy(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(Target.of("https://api.example.com", "t0ken"), path=path) as mine:
        mine._db.execute("PRAGMA busy_timeout = 0")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(bulksync.StateError) as busy:
                mine.begin_run("/t.csv", "push")
        finally:
            other.close()
    message = str(busy.value)
    assert "database is locked" in message and "busy" in message and "another bulksync run" in message
    assert "disk space" not in message and "writable" not in message and not busy.value.damaged


@pytest.mark.parametrize("error", [sqlite3.IntegrityError("UNIQUE constraint failed: runs.run"),
                                   sqlite3.ProgrammingError("Cannot operate on a closed database."),
                                   sqlite3.OperationalError("no such table: runs")])
def test_an_unexpected_store_error_is_said_as_what_sqlite_said(
        tmp_path: Path, sandbox: Sandbox, disk: Disk, error: sqlite3.Error) -> None:
    sheet = _sheet(tmp_path)
    disk.error = error
    disk.when = _after(sandbox, 1)
    message = _error_of(run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL,
                                "--concurrency", "1", env=_env(sandbox)))
    assert str(error) in message and "unexpected" in message, message
    assert "disk space" not in message and "writable" not in message and "move it aside" not in message
    assert "nothing was sent" not in message and "push stopped at once after 1 request(s)" in message


def test_a_store_found_damaged_mid_run_is_the_one_told_to_move_it_aside(tmp_path: Path) -> None:
    import random

    path = tmp_path / "j.sqlite"
    with Journal(Target.of("https://api.example.com", "t0ken"), path=path):
        pass
    sound = journal._unusable(path, sqlite3.DatabaseError("database disk image is malformed"))
    assert not sound.damaged and "move it aside" not in str(sound)
    path.write_bytes(random.Random(1).randbytes(8192))
    damaged = journal._unusable(path, sqlite3.DatabaseError("database disk image is malformed"))
    assert damaged.damaged and "is damaged" in str(damaged) and f"mv {path}" in str(damaged)
