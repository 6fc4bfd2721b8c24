"""A full disk in the middle of a run (issue 26): every journal write goes through one guard,
so a pull, a push and an undo each end with a clean error that says what it is (free some
space, run again), exit 2, no traceback, and no advice to move a sound store aside."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli, write


class FullDisk:
    """A connection to the store that, once ``full`` is set, refuses every write as SQLite does
    when the disk fills up."""

    def __init__(self, db: sqlite3.Connection, switch: dict[str, bool]) -> None:
        self._db, self._switch = db, switch

    def _check(self, sql: str) -> None:
        if self._switch["full"] and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")

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
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bool]]:
    switch = {"full": False}
    connect = sqlite3.connect

    def connecting(*args: Any, **kwargs: Any) -> Any:
        return FullDisk(connect(*args, **kwargs), switch)

    import bulksync.journal

    monkeypatch.setattr(bulksync.journal.sqlite3, "connect", connecting)
    yield switch


@pytest.mark.parametrize("command", ["push", "pull", "undo"])
def test_a_disk_that_fills_during_a_run_is_said_as_what_it_is(tmp_path: Path, sandbox: Sandbox,
                                                             disk: dict[str, bool], command: str) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nA,Low\nB,High\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    sheet.write_text(sheet.read_text().replace("A,Low", "A,Medium"))
    disk["full"] = True
    args = {"push": ("push", str(sheet), "--form-id", FORM, "--channel", CHANNEL),
            "pull": ("pull", str(sheet)), "undo": ("undo", str(sheet), "--yes", "--run", "1")}[command]
    done = run_cli(*args, env={"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "database or disk is full" in done.stderr and "free some disk space" in done.stderr
    assert "move it aside" not in done.stderr and "Traceback" not in done.stderr
