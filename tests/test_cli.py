"""The real command line, in a subprocess, against the sandbox over loopback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bulksync.journal import fingerprint
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli, write


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("validate", "plan", "push", "sandbox", "demo"):
        assert f"  {command} " in result.stdout


def test_validate_prints_the_report_and_exits_1(tmp_path: Path) -> None:
    sheet = tmp_path / "mistakes.csv"
    shutil.copy(bundled("sample_data") / "tickets-with-mistakes.csv", sheet)
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{sheet}: row 3, column description: description is required")
    assert lines[-1] == f"{sheet}: 6 row(s), 6 problem(s) in 5 row(s)"
    assert "Traceback" not in result.stderr


def test_validate_json_and_a_valid_sheet(tmp_path: Path) -> None:
    sheet = write(tmp_path / "ok.csv", "description,notes\nhello,mine\n")
    result = run_cli("validate", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"file": str(sheet), "valid": True, "rows": 1,
                                         "invalid_rows": 0, "ignored_columns": ["notes"],
                                         "notes": [], "problems": [], "groups": []}


def test_plan_needs_no_token_and_sends_nothing(tmp_path: Path) -> None:
    tid = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"
    sheet = write(tmp_path / "t.csv", f"ticketId,description,tags\n,hello,\"a,b\"\n{tid},,\n")
    before = sheet.read_bytes()
    # An unreachable API URL proves nothing is sent: a request would have to fail.
    result = run_cli("plan", str(sheet), "--form-id", FORM, "--channel", CHANNEL,
                     "--set", "status=Closed", env={"SUPTASK_API_URL": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f'row 2: POST /ticket {{"description": "hello", "status": "Closed", '
        f'"requesterChannel": "{CHANNEL}", "tags": ["a", "b"], "formId": "{FORM}"}}',
        f'row 3: PATCH /ticket/{tid} {{"status": "Closed"}}',
        f"{sheet}: 1 to create, 1 to update, 0 unchanged, 0 with nothing to send, 0 invalid (2 requests)",
    ]
    assert sheet.read_bytes() == before


def test_push_creates_then_updates_with_json_summary(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description,notes\nPrinter jams,mine\nVPN drops,\n")
    with Sandbox(token=TOKEN) as sb:
        # Once through the real console script (its exit flushes output, then os._exit).
        first = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "--json",
                        env=_env(sb), real_process=True)
        second = run_cli("push", str(sheet), "--json", env=_env(sb))  # nothing changed
        assert len(sb.tickets()) == 2
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert {k: summary[k] for k in ("created", "updated", "unchanged", "failed", "invalid",
                                    "skipped", "requests")} == {
        "created": 2, "updated": 0, "unchanged": 0, "failed": 0, "invalid": 0, "skipped": 0,
        "requests": 2}
    assert summary["ignored_columns"] == ["notes"]
    assert {k: json.loads(second.stdout)[k] for k in ("updated", "unchanged", "requests")} == {
        "updated": 0, "unchanged": 2, "requests": 0}
    # Off a terminal: plain progress lines on stderr, never a redrawn bar.
    assert "progress: 2/2 requests" in first.stderr and "\r" not in first.stderr


def test_push_human_summary(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description,notes,Old ID\nPrinter jams,mine,ZD-1\n")
    with Sandbox(token=TOKEN) as sb:
        result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, "-q",
                         env=_env(sb))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"{sheet}: 1 created, 0 updated, 0 failed (1 requests)",
        f"results written to {sheet}",
    ]
    assert result.stderr.splitlines() == [  # -q: no note on the columns of the user's own
        f"bulksync: target: {sb.url} (a local server: the sandbox, a rehearsal), token "
        f"{fingerprint(TOKEN)[:8]}"]
    shown = run_cli("validate", str(sheet))
    assert shown.stderr.splitlines() == ["note: 2 column(s) of your own, not sent: notes, Old ID"]


def test_progress_on_a_terminal_is_a_tqdm_bar(capsys: pytest.CaptureFixture[str]) -> None:
    from bulksync.cli import _Progress

    progress = _Progress(quiet=False)
    progress.tty = True
    progress(0, 4, "")
    progress(3, 4, "rate limit: waiting 12s")
    assert progress.bar is not None and (progress.bar.n, progress.bar.total) == (3, 4)
    progress.close()
    err = capsys.readouterr().err
    assert "3/4" in err and "rate limit: waiting 12s" in err


def test_push_without_token_exits_2_naming_the_variable(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description\nx\n")
    with Sandbox(token=TOKEN) as sb:
        result = run_cli("push", str(sheet), env={"SUPTASK_API_URL": sb.url})
        assert sb.requests() == []
    assert result.returncode == 2
    assert "SUPTASK_API_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_push_refuses_invalid_rows_with_exit_1(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description,assignee\nx,bob@example.com\n")
    before = sheet.read_bytes()
    with Sandbox(token=TOKEN) as sb:
        result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL, env=_env(sb))
        assert sb.requests() == []
    assert result.returncode == 1
    assert f"{sheet}: row 2, column assignee: 'bob@example.com' is not a Slack member ID" in result.stderr
    assert "nothing was sent and the file is unchanged" in result.stderr
    assert sheet.read_bytes() == before


def test_a_refused_token_exits_2_and_never_prints_the_token(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description\nx\ny\n")
    wrong = "wrong-token-0123456789"
    with Sandbox(token=TOKEN) as sb:
        result = run_cli("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL,
                         env={"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": wrong})
        assert len(sb.requests()) <= 2 and sb.tickets() == []
    assert result.returncode == 2
    assert "refused the token" in result.stderr
    assert wrong not in result.stdout + result.stderr + sheet.read_text()


def test_a_failed_row_exits_1(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "ticketId,status\n0f0e0d0c-0b0a-4909-8807-060504030201,Closed\n")
    with Sandbox(token=TOKEN) as sb:
        result = run_cli("push", str(sheet), "-q", env=_env(sb))
    assert result.returncode == 1
    assert f"{sheet}: row 2: failed: HTTP 404: Ticket not found" in result.stdout


def test_unreadable_file_and_bad_option_exit_2(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "missing.csv"))
    assert (result.returncode, result.stderr) == (2, f"bulksync: error: {tmp_path / 'missing.csv'}: no such file\n")
    result = run_cli("plan", str(write(tmp_path / "t.csv", "description\nx\n")), "--set", "nonsense")
    assert result.returncode == 2 and "is not FIELD=VALUE" in result.stderr


def test_xlsx_sheet_option(tmp_path: Path) -> None:
    sheet = tmp_path / "n.xlsx"
    shutil.copy(bundled("sample_data") / "new-tickets.xlsx", sheet)
    result = run_cli("validate", str(sheet), "--sheet", "Nope")
    assert result.returncode == 2
    assert "its sheets are: 'Tickets', 'Read me'" in result.stderr
    result = run_cli("validate", str(sheet), "--sheet", "Tickets", "--form-id", FORM, "--channel", CHANNEL)
    assert result.returncode == 0, result.stdout


def test_demo_runs_from_any_folder(tmp_path: Path) -> None:
    result = run_cli("demo", "--keep", str(tmp_path / "work"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 created with 10 requests" in result.stdout
    assert "0 created, 1 updated, 9 unchanged, 1 request" in result.stdout
    assert "3 updated; the sandbox now holds 3 closed tickets" in result.stdout
    assert (tmp_path / "work" / "new-tickets.csv").read_text().splitlines()[0].endswith(
        "ticketId,ticketNumber,syncStatus")


# -- found by review (issue 15) ------------------------------------------------------------------

def test_a_delete_that_sent_nothing_is_not_nothing_to_delete(tmp_path: Path, sandbox: Sandbox) -> None:
    import bulksync

    sheet = write(tmp_path / "t.csv", "description\nA\nB\n")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    before = sheet.read_bytes()
    # A revoked token, on a machine whose state does not know the sheet (else: another target).
    result = run_cli("delete", str(sheet), "--yes", "--json",
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": "revoked-token",
                          "BULKSYNC_HOME": str(tmp_path / "elsewhere")})
    assert sheet.read_bytes() == before and len(sandbox.tickets()) == 2
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused the token" in json.loads(result.stdout)["stopped"]
    empty = write(tmp_path / "none.csv", "ticketId,notes\n,x\n")
    nothing = run_cli("delete", str(empty), "--yes", "--json", env=_env(sandbox))
    assert nothing.returncode == 0 and json.loads(nothing.stdout)["requests"] == 0


def test_a_declined_delete_sends_and_writes_nothing(tmp_path: Path, sandbox: Sandbox,
                                                    state_home: Path) -> None:
    import bulksync

    sheet = write(tmp_path / "t.csv", "description,ticketId\nA,11111111-2222-4333-8444-555555555555\n")
    before = sheet.read_bytes()
    asked: list[int] = []
    result = bulksync.delete(sheet, token=TOKEN, api_url=sandbox.url,
                             confirm=lambda ops: asked.append(len(ops)) is not None)
    assert asked == [1] and result.refused and result.requests == 0 and sandbox.requests() == []
    assert sheet.read_bytes() == before and not (state_home / "state.sqlite").exists()


def test_json_with_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    import os

    name = os.fsencode(tmp_path) + b"/caf\xe9.csv"
    with open(name, "wb") as f:
        f.write(b"description\nPrinter jams\n")
    result = run_cli("validate", "--json", os.fsdecode(name), "--form-id", FORM, "--channel", CHANNEL)
    assert "Traceback" not in result.stderr and result.returncode == 0
    assert json.loads(result.stdout)["valid"] is True


def test_json_goes_to_whatever_stdout_is(tmp_path: Path) -> None:
    import contextlib
    import io

    from bulksync.cli import main

    sheet = write(tmp_path / "t.csv", "description\nx\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(["validate", "--json", str(sheet), "--form-id", FORM, "--channel", CHANNEL])
    assert exit_.value.code == 0 and json.loads(out.getvalue())["valid"] is True


def test_run_cli_shows_logged_errors_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process harness shows what a real process prints for a logged error."""
    import logging

    import bulksync.sync

    real = bulksync.sync.validate

    def logging_validate(*args: object, **kwargs: object) -> object:
        logging.getLogger("asyncio").error("Task exception was never retrieved")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bulksync.sync, "validate", logging_validate)
    result = run_cli("validate", str(write(tmp_path / "t.csv", "description\nx\n")))
    assert "Task exception was never retrieved" in result.stderr
