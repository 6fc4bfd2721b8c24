"""Cost grows with the sheet, not with the store (issue 25): every statement a push, plan,
pull and undo run against the state store finds its rows by an index, never by a scan of a
table that grows with the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import bulksync
from bulksync.journal import store_path
from bulksync.sandbox import Sandbox
from bulksync.sync import undo
from tests.conftest import CHANNEL, FORM, TOKEN, write

GROWING = ("creates", "tickets", "sides", "updates", "reads", "runs", "changes")
"""Tables that grow with every sheet and run; targets, aliases, pulls and windows stay small."""


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement bulksync sends to the store, as SQLite expands it."""
    seen: list[str] = []
    connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = connect(*args, **kwargs)  # type: ignore[arg-type]
        db.set_trace_callback(seen.append)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    yield seen


def test_every_statement_of_a_push_plan_pull_and_undo_uses_an_index(tmp_path: Path, sandbox: Sandbox,
                                                                   statements: list[str]) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nA,Low\nB,High\n")
    api = {"token": TOKEN, "api_url": sandbox.url}
    bulksync.push(sheet, form_id=FORM, channel=CHANNEL, **api)
    sheet.write_text(sheet.read_text().replace("A,Low", "A,High"))
    bulksync.plan(sheet, form_id=FORM, channel=CHANNEL, **api)
    bulksync.push(sheet, form_id=FORM, channel=CHANNEL, check=True, **api)
    bulksync.pull(sheet, **api)
    undo(sheet, **api)
    assert len(statements) > 50  # the trace sees the store's traffic
    db = sqlite3.connect(store_path())
    scans = set()
    for sql in {s for s in statements if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))}:
        for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"):
            detail = str(row[-1])
            table = detail.split()[1] if len(detail.split()) > 1 else ""
            # A scan, or a search by the target alone, reads all the target has gathered (but
            # max() of an indexed column, which SQLite reads at the index's end).
            if table in GROWING and (detail.startswith("SCAN") or (
                    detail.endswith("(target=?)") and not (sql.startswith("SELECT max(") and "COVERING" in detail))):
                scans.add(f"{detail}: {sql[:200]}")
    assert sorted(scans) == [], "\n".join(sorted(scans))
