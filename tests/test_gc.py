"""Garbage-collector tuning lives at the CLI boundary only (issue 15): library calls and
commands run in-process leave the collector exactly as they found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, write


def _collector() -> tuple[bool, tuple[int, ...], int]:
    return gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The console script's mode, with the collector restored afterwards."""
    import bulksync.cli

    before = _collector()
    monkeypatch.setattr(bulksync.cli, "_CONSOLE", True)
    yield
    gc.unfreeze()
    gc.set_threshold(*before[1])
    gc.enable()


def test_library_calls_leave_the_collector_as_they_found_it(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description\nprinter jams\nVPN drops\n")
    before = _collector()
    bulksync.validate(sheet, form_id=FORM, channel=CHANNEL)
    bulksync.plan(sheet, form_id=FORM, channel=CHANNEL)
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL)
    assert result.ok and len(sandbox.tickets()) == 2
    assert _collector() == before


def test_commands_run_in_process_keep_the_collector(tmp_path: Path) -> None:
    from bulksync.cli import main

    sheet = write(tmp_path / "t.csv", "description\nprinter jams\n")
    before = _collector()
    for command in ("validate", "plan"):
        result = CliRunner().invoke(main, [command, str(sheet)])
        assert result.exit_code in (0, 1), result.output
        assert _collector() == before


def test_the_console_script_tunes_the_collector_per_command(console: None) -> None:
    from bulksync.cli import _tune_gc

    _tune_gc()  # validate, plan: read, report, end
    assert not gc.isenabled()
    gc.enable()
    _tune_gc(long_run=True)  # push, delete: on, with the imported modules frozen
    assert gc.isenabled() and gc.get_freeze_count() > 0 and gc.get_threshold()[0] >= 10_000
