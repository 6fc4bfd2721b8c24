"""Shared fixtures: a sandbox on loopback, and helpers to write small sheets."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bulksync.engine import Pacer
from bulksync.sandbox import Sandbox

FORM = "6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84"
CHANNEL = "C076K6Y74L1"
FIELD = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"
TOKEN = "test-token-5f0c9a"


@pytest.fixture(autouse=True)
def state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own bulksync state store (subprocesses inherit it)."""
    home = tmp_path_factory.mktemp("bulksync-home")
    monkeypatch.setenv("BULKSYNC_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_command_left() -> Iterator[None]:
    """A bulksync command a test started in a process of its own (tests/processes.py) does
    not outlive the test, even when the test fails before it ends."""
    yield
    from tests.processes import stop_all

    stop_all()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, seed=1) as sb:
        yield sb


@pytest.fixture
def api(sandbox: Sandbox) -> dict[str, str]:
    """Keyword arguments for bulksync.push against the sandbox."""
    return {"token": TOKEN, "api_url": sandbox.url}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60, real_process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the command line as a user would, and return its exit code, stdout and stderr.

    In process, through click's CliRunner, unless ``real_process`` (for what only a real
    process shows: signals, the console script's exit). An exception the command lets
    escape becomes a traceback on stderr and exit code 1, and log records of warnings and
    errors go to stderr, as Python would print them, so "no traceback" checks mean the same
    either way; past ``timeout`` the worker is ended. SUPTASK_* variables of the test
    environment are hidden, as for a subprocess.
    """
    if real_process:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SUPTASK_")}
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "bulksync", *args], capture_output=True,
                              text=True, env=full_env, cwd=cwd, timeout=timeout)
    import contextlib
    import faulthandler
    import logging
    import traceback
    import warnings

    from click.testing import CliRunner

    from bulksync.cli import main

    class ToStderr(logging.Handler):
        """What Python prints for a log record no handler takes (asyncio's "Task exception was
        never retrieved"), onto the command's stderr, as a real process would show it."""

        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(self.format(record) + "\n")

    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SUPTASK_")}
    overrides.update(env or {})
    handler = ToStderr(logging.WARNING)
    logging.getLogger().addHandler(handler)
    # A command that hangs ends the test worker with every thread's traceback (pytest-xdist
    # reports the test as crashed), as a subprocess's timeout would end it.
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        with contextlib.chdir(cwd or os.getcwd()), warnings.catch_warnings():
            warnings.simplefilter("default")
            result = CliRunner(env=overrides).invoke(main, list(args), prog_name="bulksync")
    finally:
        faulthandler.cancel_dump_traceback_later()
        logging.getLogger().removeHandler(handler)
    stderr, code = result.stderr, result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(result.exc_info[1]))
        code = 1
    return subprocess.CompletedProcess(["bulksync", *args], code, result.stdout, stderr)


def write_book(path: Path, rows: Sequence[Sequence[object]], *, edit: Callable[[Any], None] | None = None) -> Path:
    """A workbook of ``rows`` from A1, as openpyxl writes one; ``edit`` is given the worksheet
    before it is saved."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(list(row))
    if edit is not None:
        edit(ws)
    wb.save(path)
    return path


def add_table(ws: Any, ref: str, *, name: str = "Tix", totals: bool = False) -> None:
    """An Excel Table over ``ref`` in ``ws``, styled as Excel makes one (``totals``: its last row
    is a totals row)."""
    from openpyxl.worksheet.table import Table, TableStyleInfo

    table = Table(displayName=name, ref=ref, totalsRowCount=1 if totals else None)
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium9", showRowStripes=True)
    ws.add_table(table)


def read_rows(path: Path) -> list[dict[str, str]]:
    """A UTF-8 CSV's records, by header."""
    import csv

    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """``rows`` as a UTF-8 CSV, header from the first row's keys, as a spreadsheet saves it."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


class SkippingClock:
    """A :class:`bulksync.clock.Clock` for tests: the real time plus the pauses asked of it,
    skipped. Never behind the real clock, so the state store's real timestamps stay in its
    past; ``slept`` keeps each pause asked for.

    Pauses end as they would in real time, only sooner: a pause of at most ``REAL`` (the
    pacer's look at requests in flight, whose answers come in real time) is waited in real
    time; a longer one waits ``REAL`` or two, for the other tasks to reach their own pauses
    and the answers on their way to come, then the clock jumps to the earliest end of the
    pauses asked, and every pause that ends by then ends together, in the order of their ends.
    Pauses that overlap cost the longest of them, as in real time, not their sum."""

    REAL = Pacer.HOLD

    def __init__(self) -> None:
        self.skipped = 0.0
        self.slept: list[float] = []
        self._pauses: list[tuple[float, asyncio.Future[None]]] = []  # (end, woken) in the running loop
        self._jump: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def monotonic(self) -> float:
        import time

        return time.monotonic() + self.skipped

    def time(self) -> float:
        import time

        return time.time() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= self.REAL:
            await asyncio.sleep(seconds)
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new run's loop: an earlier loop's pauses are over with it
            self._loop, self._pauses, self._jump = loop, [], None
        pause = (self.monotonic() + seconds, loop.create_future())
        self._pauses.append(pause)
        if self._jump is None:
            self._jump = loop.call_later(2 * self.REAL, self._wake)
        try:
            await pause[1]
        finally:
            if pause in self._pauses:  # cancelled (Ctrl-C): no longer waited for
                self._pauses.remove(pause)

    def _wake(self) -> None:
        self._jump = None
        if not self._pauses:
            return
        # Pauses that end within REAL of the earliest end (the pacer's, asked of each worker a
        # moment apart) end together, as timers a moment apart fire together in real time.
        earliest = min(end for end, _ in self._pauses)
        self.advance(max(end for end, _ in self._pauses if end <= earliest + self.REAL) - self.monotonic())
        now = self.monotonic()
        due = sorted((p for p in self._pauses if p[0] <= now), key=lambda p: p[0])
        self._pauses = [p for p in self._pauses if p[0] > now]
        for _, woken in due:
            if not woken.done():
                woken.set_result(None)
        if self._pauses and self._loop is not None:
            self._jump = self._loop.call_later(2 * self.REAL, self._wake)


@pytest.fixture
def clock() -> SkippingClock:
    return SkippingClock()


@pytest.fixture
def cli_clock(clock: SkippingClock, monkeypatch: pytest.MonkeyPatch) -> SkippingClock:
    """``clock``, read by everything that reads the real one in this process: the command line
    run by :func:`run_cli` (not a ``real_process``), a run given no clock, a sandbox's window.
    Its pauses (backoffs, a rate limit's, the settle time) are skipped as ``clock``'s are."""
    from bulksync.clock import SystemClock

    monkeypatch.setattr(SystemClock, "monotonic", lambda self: clock.monotonic())
    monkeypatch.setattr(SystemClock, "time", lambda self: clock.time())
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds: clock.sleep(seconds))
    return clock
