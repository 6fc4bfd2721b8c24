"""Never lose, never duplicate: the journal across faults, kill -9, Ctrl-C and edits mid-run."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import bulksync
from bulksync.config import DEFAULT_SETTLE
from bulksync.journal import CreateEntry, Journal, Target, UpdateRecord, store_path
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, SkippingClock, run_cli, write
from tests.processes import Command, start

DEFAULTS = {"form_id": FORM, "channel": CHANNEL}


def _sheet(path: Path, rows: int) -> Path:
    return write(path, "description,notes\n" + "".join(f"Ticket {i},note {i}\n" for i in range(rows)))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_one_ticket_per_row(path: Path, sb: Sandbox, rows: int) -> None:
    """Exactly one ticket per row, and each row holds the ID of the ticket made from it."""
    tickets = sb.tickets()
    assert len(tickets) == rows
    by_id = {t["id"]: t for t in tickets}
    sheet = _rows(path)
    assert len(sheet) == rows
    for row in sheet:
        assert row["syncStatus"] in ("created", "updated", "unchanged"), row
        assert by_id[row["ticketId"]]["description"] == row["description"]
        assert str(by_id[row["ticketId"]]["ticketNumber"]) == row["ticketNumber"]
    assert len({row["ticketId"] for row in sheet}) == rows


@pytest.fixture
def slow_sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, latency_ms=40) as sb:
        yield sb


def _created_in_journal(sheet: Path) -> int:
    """Creates recorded in the state store (each test has its own: BULKSYNC_HOME)."""
    path = store_path()
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM creates WHERE state = 'created'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _start_push(sheet: Path, sb: Sandbox, *extra: str) -> Command:
    return start("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--concurrency", "4", "-q",
                 *extra, env={"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN})


def _wait_for_created(sheet: Path, at_least: int, process: Command) -> None:
    deadline = time.monotonic() + 60
    while _created_in_journal(sheet) < at_least:
        assert process.poll() is None, "the push finished before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_tokens_fingerprint_is_computed_once_and_kept_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from bulksync import journal

    token = "xoxp-fingerprint-test-7d1e"
    stretched = hashlib.pbkdf2_hmac("sha256", token.encode(), b"bulksync target v1", 50_000)[:8].hex()
    assert journal.fingerprint(token) == stretched
    assert journal.fingerprint(token + "x") != stretched
    assert hashlib.sha256(token.encode()).digest() in journal._FINGERPRINTS
    assert all(token.encode() not in key and token not in value
               for key, value in journal._FINGERPRINTS.items())
    monkeypatch.setitem(journal._FINGERPRINTS, hashlib.sha256(token.encode()).digest(), "kept")
    assert journal.fingerprint(token) == "kept"  # the kept one is what is given, not computed again


@pytest.mark.parametrize("kill_after", [1, 7, 18, 33])
def test_kill_9_then_rerun_leaves_one_ticket_per_row(tmp_path: Path, slow_sandbox: Sandbox,
                                                      kill_after: int, clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 40)
    before = sheet.read_bytes()
    process = _start_push(sheet, slow_sandbox)
    _wait_for_created(sheet, kill_after, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert sheet.read_bytes() == before  # killed before writing back: the IDs are only in the journal
    in_journal = _created_in_journal(sheet)
    assert in_journal >= kill_after
    assert slow_sandbox.idle()  # what was in flight at the kill is done (made or not)
    clock.advance(DEFAULT_SETTLE)  # and the settle time has passed for it
    slow_sandbox.latency = 0  # the rerun need not be slow
    rerun = bulksync.push(sheet, token=TOKEN, api_url=slow_sandbox.url, clock=clock, **DEFAULTS)
    assert rerun.ok, rerun.summary()
    assert_one_ticket_per_row(sheet, slow_sandbox, 40)
    # Nothing was ever processed twice (a request cut off by the kill is not processed at all).
    posts = [r for r in slow_sandbox.requests() if r["method"] == "POST" and r["status"] == 201]
    assert len(posts) == 40
    assert rerun.summary()["recovered"] >= in_journal


def test_ctrl_c_writes_back_what_was_obtained(tmp_path: Path, slow_sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 60)
    process = _start_push(sheet, slow_sandbox)
    _wait_for_created(sheet, 5, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    rows = _rows(sheet)
    with_ids = [r for r in rows if r.get("ticketId")]
    assert 5 <= len(with_ids) < 60
    assert len(with_ids) == len(slow_sandbox.tickets())  # every ticket made is in the file
    by_id = {t["id"]: t for t in slow_sandbox.tickets()}
    assert all(by_id[r["ticketId"]]["description"] == r["description"] for r in with_ids)
    slow_sandbox.latency = 0  # the rerun need not be slow
    rerun = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q",
                    env={"SUPTASK_API_URL": slow_sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    # The second push updates the rows that got IDs and creates the others: one ticket per row.
    assert len(slow_sandbox.tickets()) == 60
    assert {r["syncStatus"] for r in _rows(sheet)} <= {"created", "unchanged"}


def test_a_delete_stopped_by_ctrl_c_writes_back_and_records_what_it_deleted(
        tmp_path: Path, slow_sandbox: Sandbox) -> None:
    """A delete is a push of a plan of DELETEs: the same signal handling, journal and write-back."""
    sheet = _sheet(tmp_path / "t.csv", 40)
    assert bulksync.push(sheet, token=TOKEN, api_url=slow_sandbox.url, concurrency=8, **DEFAULTS).ok
    env = {"SUPTASK_API_URL": slow_sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    process = start("delete", str(sheet), "--yes", "-q", "--concurrency", "2", env=env)
    deadline = time.monotonic() + 60
    while sum(r["method"] == "DELETE" for r in slow_sandbox.requests()) < 4:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    gone = {r["ticketId"] for r in _rows(sheet) if r["syncStatus"] == "deleted"}
    left = {t["id"] for t in slow_sandbox.tickets()}
    assert gone and len(left) == 40 - len(gone) and not gone & left  # the sheet says what was done
    with sqlite3.connect(store_path()) as db:
        recorded = {r[0] for r in db.execute("SELECT ticket_id FROM tickets WHERE deleted = 1")}
    assert recorded == gone
    # The rerun sends a DELETE only for what is left.
    slow_sandbox.latency = 0  # and need not be slow
    sent_before = sum(r["method"] == "DELETE" for r in slow_sandbox.requests())
    rerun = run_cli("delete", str(sheet), "--yes", "-q", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sum(r["method"] == "DELETE" for r in slow_sandbox.requests()) - sent_before == len(left)
    assert slow_sandbox.tickets() == []


def test_sigterm_stops_cleanly_too(tmp_path: Path, slow_sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 60)
    process = _start_push(sheet, slow_sandbox)
    _wait_for_created(sheet, 3, process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert len([r for r in _rows(sheet) if r.get("ticketId")]) == len(slow_sandbox.tickets())


def test_503s_and_drops_on_patch_end_with_every_row_done(tmp_path: Path, sandbox: Sandbox,
                                                         api: dict[str, str], clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 30)
    assert bulksync.push(sheet, **DEFAULTS, **api).ok
    sandbox.fail_rate, sandbox.drop_rate = 0.2, 0.2
    result = bulksync.push(sheet, set={"status": "Closed"}, clock=clock, **api)  # back-offs skipped
    assert result.ok and result.counts["updated"] == 30, result.summary()
    faults = [r for r in sandbox.requests() if r["method"] == "PATCH" and r.get("fault")]
    assert len(faults) >= 5
    assert all(t["status"] == "Closed" for t in sandbox.tickets())


def test_ambiguous_creates_are_never_duplicated(tmp_path: Path, clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 40)
    with Sandbox(token=TOKEN, ambiguous_rate=0.3, seed=4) as sb:
        first = bulksync.push(sheet, token=TOKEN, api_url=sb.url, clock=clock, **DEFAULTS)
        # Creates answered 500 were found again at once by reading ticket numbers; those whose
        # connection dropped after the ticket was made wait until the server is surely done.
        assert first.summary()["resolved"] >= 3
        assert len(sb.tickets()) == 40
        dropped = first.counts["uncertain"]
        assert dropped >= 1  # not yet settled: left uncertain, not resent
        clock.advance(DEFAULT_SETTLE)
        second = bulksync.push(sheet, token=TOKEN, api_url=sb.url, clock=clock, **DEFAULTS)
        assert second.counts["uncertain"] == 0, second.summary()
        assert second.summary()["resolved"] == dropped
        assert_one_ticket_per_row(sheet, sb, 40)
        posts = [r for r in sb.requests() if r["method"] == "POST"]
        assert len(posts) == 40


def test_uncertain_creates_are_left_alone_unless_asked(tmp_path: Path, clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 20)
    with Sandbox(token=TOKEN, drop_rate=0.3, seed=2) as sb:
        first = bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)  # settle: 60 s
        uncertain = first.counts["uncertain"]
        assert uncertain >= 2
        assert [r["syncStatus"] for r in _rows(sheet)].count("uncertain") == uncertain
        sb.drop_rate = 0
        posts = sum(1 for r in sb.requests() if r["method"] == "POST")
        second = bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        assert second.counts["uncertain"] == uncertain
        assert sum(1 for r in sb.requests() if r["method"] == "POST") == posts  # none resent
        notices: list[str] = []
        third = bulksync.push(sheet, token=TOKEN, api_url=sb.url, retry_uncertain=True, clock=clock,
                              on_notice=notices.append, **DEFAULTS)
        assert third.counts["uncertain"] == 0, third.summary()
        # It waited out the settle time (on its clock) first, and said so.
        assert any(n.startswith("waiting ") and f"finish {uncertain} create(s)" in n for n in notices), notices
        assert max(clock.slept) > DEFAULT_SETTLE - 5
        # Resolved first (the dropped connections made nothing), then resent: one ticket each.
        assert third.summary()["resolved"] == 0
        assert_one_ticket_per_row(sheet, sb, 20)


def test_settled_uncertain_creates_that_never_happened_are_sent_again(tmp_path: Path,
                                                                     clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 20)
    with Sandbox(token=TOKEN, drop_rate=0.3, seed=2) as sb:
        first = bulksync.push(sheet, token=TOKEN, api_url=sb.url, clock=clock, **DEFAULTS)
        assert first.counts["uncertain"] >= 2
        sb.drop_rate = 0
        clock.advance(DEFAULT_SETTLE)
        second = bulksync.push(sheet, token=TOKEN, api_url=sb.url, clock=clock, **DEFAULTS)
        assert second.counts["uncertain"] == 0, second.summary()
        assert_one_ticket_per_row(sheet, sb, 20)


def test_only_failed_resends_just_the_failed_rows(tmp_path: Path, sandbox: Sandbox,
                                                  api: dict[str, str]) -> None:
    sheet = _sheet(tmp_path / "t.csv", 10)
    bulksync.push(sheet, **DEFAULTS, **api)
    gone = [row["ticketId"] for row in _rows(sheet)[2:5]]
    for ticket_id in gone:  # deleted in Slack meanwhile: updating them fails with 404
        httpx.delete(f"{sandbox.url}/ticket/{ticket_id}", headers={"Authorization": f"Api-Token {TOKEN}"})
    first = bulksync.push(sheet, set={"status": "Closed"}, **api)
    assert (first.counts["updated"], first.counts["failed"]) == (7, 3)
    count = len(sandbox.requests())
    again = bulksync.push(sheet, set={"status": "Closed"}, only_failed=True, **api)
    sent = sandbox.requests()[count:]
    assert again.requests == 3 and sorted(r["path"].rsplit("/", 1)[1] for r in sent) == sorted(gone)
    assert again.counts["failed"] == 3
    # Rows not sent keep what the last run wrote.
    assert [r["syncStatus"] for r in _rows(sheet)].count("updated") == 7


def test_a_sheet_saved_during_the_run_is_not_overwritten(tmp_path: Path, slow_sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 30)
    process = _start_push(sheet, slow_sandbox)
    _wait_for_created(sheet, 2, process)
    edited = sheet.read_text().replace("note 3", "edited in Excel meanwhile")
    sheet.write_text(edited)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2, err  # the sheet does not hold the results
    assert sheet.read_text() == edited
    beside = tmp_path / "t.csv.bulksync-results.csv"
    assert f"results are in {beside}" in err
    assert len(_rows(beside)) == 30
    # The next push puts the IDs into the edited sheet from the journal, creating nothing; the
    # row edited meanwhile stands where its ticket was made from: held, not created again.
    env = {"SUPTASK_API_URL": slow_sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    rerun = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q", env=env)
    assert rerun.returncode == 1, rerun.stderr
    assert "29 created, 0 updated, 0 failed, 1 held, 29 of them recovered (0 requests)" in rerun.stdout
    assert re.search(r"row 5: held: ticket #\d+ was created from this row", rerun.stdout)
    assert len(slow_sandbox.tickets()) == 30
    # --relink gives it its ticket back: its edit is in a column of the user's, nothing to send.
    relinked = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q", "--relink",
                       env=env)
    assert relinked.returncode == 0, relinked.stdout + relinked.stderr
    assert_one_ticket_per_row(sheet, slow_sandbox, 30)
    assert _rows(sheet)[3]["notes"] == "edited in Excel meanwhile"


def test_a_refused_token_sends_at_most_concurrency_requests(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 50)
    result = bulksync.push(sheet, token="wrong", api_url=sandbox.url, concurrency=8, **DEFAULTS)
    assert "refused the token" in result.stopped and isinstance(result.error, bulksync.AuthError)
    assert 1 <= len(sandbox.requests()) <= 8 and sandbox.tickets() == []


def test_a_rate_limited_run_sees_almost_no_429s(tmp_path: Path, clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 24)
    # The sandbox's window and the run's pauses read one clock: the waits for its resets are skipped.
    with Sandbox(token=TOKEN, rate_limit=(8, 0.5), clock=clock) as sb:
        result = bulksync.push(sheet, token=TOKEN, api_url=sb.url, concurrency=8, clock=clock, **DEFAULTS)
        statuses = [r["status"] for r in sb.requests()]
    assert result.ok
    assert statuses.count(429) <= 2 and statuses.count(201) == 24


def test_the_state_lives_in_bulksync_home_not_beside_the_sheet(tmp_path: Path, sandbox: Sandbox,
                                                                api: dict[str, str]) -> None:
    sheet = _sheet(tmp_path / "t.csv", 2)
    bulksync.push(sheet, **DEFAULTS, **api)
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # nothing beside the sheet
    assert store_path().is_relative_to(os.environ["BULKSYNC_HOME"])
    with sqlite3.connect(store_path()) as db:
        assert db.execute("SELECT count(*) FROM creates WHERE state = 'created'").fetchone() == (2,)


def test_the_state_is_never_touched_by_validate_or_plan(tmp_path: Path) -> None:
    sheet = _sheet(tmp_path / "t.csv", 2)
    bulksync.validate(sheet, **DEFAULTS)
    bulksync.plan(sheet, **DEFAULTS)
    assert not store_path().exists() and [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_no_file_bulksync_writes_holds_the_token(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path / "t.csv", 3)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    for part in tmp_path.rglob("*"):
        if part.is_file():
            assert TOKEN.encode() not in part.read_bytes(), part


def _delivered(process: Command, sig: int) -> None:
    """Wait until ``sig`` sent to ``process`` is no longer pending (Linux: /proc's ShdPnd), so
    a second one is a second signal, not merged into the first."""
    deadline = time.monotonic() + 30
    status = Path(f"/proc/{process.pid}/status")
    while True:
        try:
            text = status.read_text()
        except (FileNotFoundError, ProcessLookupError):  # it has ended (and been reaped): delivered
            return
        pending = next(int(line.split()[1], 16) for line in text.splitlines() if line.startswith("ShdPnd:"))
        if not pending & (1 << (sig - 1)):
            return
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads a signal's delivery in /proc")
def test_a_second_ctrl_c_stops_at_once_and_the_journal_keeps_everything(tmp_path: Path,
                                                                         clock: SkippingClock) -> None:
    sheet = _sheet(tmp_path / "t.csv", 12)
    with Sandbox(token=TOKEN, latency_ms=2000) as sb:
        process = _start_push(sheet, sb)
        deadline = time.monotonic() + 30
        # The first create (sent alone) is made and logged as it arrives; its answer is 2 s away.
        while not any(r["method"] == "POST" for r in sb.requests()):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _delivered(process, signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        # The answer was still seconds away: it did not wait for it.
        assert [r["syncStatus"] for r in _rows(sheet)][0] == "uncertain"
        sb.latency = 0
        clock.advance(DEFAULT_SETTLE)  # the server is surely done with it: it is resolved, not resent
        rerun = bulksync.push(sheet, token=TOKEN, api_url=sb.url, clock=clock, **DEFAULTS)
        assert rerun.ok and rerun.summary()["resolved"] == 1, rerun.summary()
        assert_one_ticket_per_row(sheet, sb, 12)


def test_the_journals_json_memo_encodes_like_json_dumps() -> None:
    """Equal-looking values of other types (1, 1.0, True) and unhashable ones each encode as json does."""

    from bulksync.journal import _memo_dumps

    dumps = _memo_dumps()
    values: list[dict[str, object]] = [
        {"status": "Closed"}, {"status": "Closed"}, {"n": 1}, {"n": True}, {"n": 1.0},
        {"tags": ["a", "b"]}, {"assignee": None, "priority": "High"}, {"priority": "High", "assignee": None},
    ]
    shared = {"status": "Open"}
    values += [shared, {"status": "Open", "n": 1}, shared, {"n": 1.0}, shared]  # one object, met again
    assert [dumps(v) for v in values] == [json.dumps(v, sort_keys=True) for v in values]


def test_a_bulk_close_leaves_each_ticket_its_baseline(tmp_path: Path, sandbox: Sandbox,
                                                        api: dict[str, str]) -> None:
    made = bulksync.push(_sheet(tmp_path / "made.csv", 5), **DEFAULTS, **api)
    ids = sorted(r.ticket_id or "" for r in made.results.values())
    close = write(tmp_path / "close.csv", "ticketId,reason\n" + "".join(f"{t},dup\n" for t in ids))
    assert bulksync.push(close, set={"status": "Closed"}, **api).counts["updated"] == 5
    view = bulksync.journal.read_view(bulksync.journal.Target.of(api["api_url"], api["token"]), ids)
    # Baselines belong to the ticket on its target, whatever sheet touched it last.
    assert {t: cells["status"] for t, cells in view.baselines.items()} == {t: "Closed" for t in ids}
    assert {cells["description"] for cells in view.baselines.values()} == {f"Ticket {i}" for i in range(5)}
    again = bulksync.push(close, set={"status": "Closed"}, **api)
    assert (again.requests, again.counts["unchanged"]) == (0, 5)
    reopen = bulksync.push(close, set={"status": "Open"}, **api)
    assert (reopen.requests, reopen.counts["updated"]) == (5, 5)
    assert {t["status"] for t in sandbox.tickets()} == {"Open"}


def test_a_failed_update_is_kept_until_a_later_one_succeeds(tmp_path: Path) -> None:
    from bulksync.journal import Journal, Target

    a, b = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32", "3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b"
    target = Target.of("https://api.example.com", "t0ken")
    with Journal(target, path=tmp_path / "j.sqlite") as journal:
        journal.updated_many([UpdateRecord(a, 2, {"status": "Closed"}, False, "HTTP 500: boom", None),
                              UpdateRecord(b, 3, {"status": "Closed"}, True, "", {"status": "Closed"})])
        assert journal.updates([a, b]) == {a: ("failed", "HTTP 500: boom")}
    with Journal(target, path=tmp_path / "j.sqlite") as journal:  # a later run, from the file
        journal.updated_many([UpdateRecord(a, 2, {"status": "Closed"}, True, "", {"status": "Closed"})])
        assert journal.updates([a, b]) == {}
    with Journal(Target.of("https://api.example.com", "other"), path=tmp_path / "j.sqlite") as journal:
        assert journal.updates([a, b]) == {}  # another token's state: none
    import sqlite3

    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        rows = dict(db.execute("SELECT ticket_id, cells FROM tickets").fetchall())
    assert rows == {a: '{"status": "Closed"}', b: '{"status": "Closed"}'}


# -- claims: the check and the insert are one step --------------------------------------------

class _Interleaved:
    """A journal's connection that, right after the statement that checks for a claim, lets
    ``between`` run (another store's claim of the same row): a race made to happen."""

    def __init__(self, db: sqlite3.Connection, check: str, between: Callable[[], None]) -> None:
        self._db, self._check, self._between = db, check, between

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        cursor = self._db.execute(sql, *args)
        if sql.startswith(self._check):
            between, self._between = self._between, lambda: None
            between()
        return cursor

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)

    def __enter__(self) -> sqlite3.Connection:
        return self._db.__enter__()

    def __exit__(self, *exc: object) -> bool | None:
        return self._db.__exit__(*exc)  # type: ignore[arg-type]


def _race(tmp_path: Path, claim: Callable[[Journal], object], check: str) -> list[object]:
    """Two runs claim one thing; the second's claim comes between the first's check and its
    insert. The second is told as SQLite's busy wait would (its claim is tried at that moment
    without waiting; if the store is locked, again once the first is done): both outcomes."""
    target = Target.of("https://api.example.com", "t0ken")
    with Journal(target, path=tmp_path / "j.sqlite", run="one") as first, \
            Journal(target, path=tmp_path / "j.sqlite", run="two") as second:
        second._db.execute("PRAGMA busy_timeout = 0")
        outcome: list[object] = []

        def between() -> None:
            try:
                outcome.append(claim(second))
            except bulksync.StateError as e:  # the first holds the store: wait for it
                assert "database is locked" in str(e)

        first._db = _Interleaved(first._db, check, between)  # type: ignore[assignment]
        mine = claim(first)
        if not outcome:
            outcome.append(claim(second))
    return [mine, *outcome]


def test_two_runs_claiming_one_create_at_the_same_moment_send_it_once(tmp_path: Path) -> None:
    outcomes = _race(tmp_path, lambda j: j.intend("row\x1f/t.csv\x1fc:0", 2, {"description": "x"},
                                                   scope="/t.csv", content="c:0"),
                     "SELECT key, ")
    claimed = [o is None for o in outcomes]  # None: claimed, to be sent
    assert claimed == [True, False], outcomes
    assert isinstance(outcomes[1], CreateEntry) and outcomes[1].state == "sending"


def test_two_runs_claiming_one_reply_at_the_same_moment_send_it_once(tmp_path: Path) -> None:
    outcomes = _race(tmp_path, lambda j: j.claim_side("reply", "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32", 1),
                     "SELECT state, run FROM sides")
    assert outcomes == [None, "sending"]
