"""delete: confirmation on and off a terminal, and bad ticket IDs refused before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import bulksync
from bulksync.cli import main
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli, write


def _created(tmp_path: Path, sb: Sandbox) -> Path:
    path = write(tmp_path / "t.csv", "description\nA\nB\nC\n")
    bulksync.push(path, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL)
    return path


def test_delete_needs_yes_off_a_terminal(tmp_path: Path, sandbox: Sandbox) -> None:
    path = _created(tmp_path, sandbox)
    before = path.read_bytes()
    result = run_cli("delete", str(path), env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 2
    assert "Delete 3 tickets listed in" in result.stderr and "nothing was deleted" in result.stderr
    assert len(sandbox.tickets()) == 3 and path.read_bytes() == before
    result = run_cli("delete", str(path), "--yes", "-q",
                     env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}: 0 created, 0 updated, 3 deleted, 0 failed (3 requests)" in result.stdout
    assert sandbox.tickets() == []
    assert path.read_text().splitlines()[1].endswith(",deleted")


@pytest.mark.parametrize(("answer", "deleted"), [("n\n", 0), ("y\n", 3)])
def test_delete_asks_on_a_terminal(tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                   answer: str, deleted: int) -> None:
    path = _created(tmp_path, sandbox)
    monkeypatch.setattr("bulksync.cli._interactive", lambda: True)
    result = CliRunner().invoke(main, ["delete", str(path), "-q"], input=answer,
                           env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert "Delete 3 tickets listed in" in result.output, result.output
    assert "Refusing without --yes" not in result.output
    assert len(sandbox.tickets()) == 3 - deleted, (result.output, result.exception)
    assert result.exit_code == (0 if deleted else 2)
    if not deleted:
        assert "nothing was deleted" in result.output


def test_delete_refuses_a_bad_ticket_id(tmp_path: Path, sandbox: Sandbox) -> None:
    path = write(tmp_path / "t.csv", "ticketId\nnot-a-uuid\n")
    result = run_cli("delete", str(path), "--yes", env={"SUPTASK_API_URL": sandbox.url,
                                                         "SUPTASK_API_TOKEN": TOKEN})
    assert result.returncode == 1 and "'not-a-uuid' is not a UUID" in result.stderr
    assert sandbox.requests() == []
