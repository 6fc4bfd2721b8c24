"""The library in a notebook: inside a running event loop, an interrupt stops a plain call and
a cancel stops an awaitable one, as Ctrl-C stops a command: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import bulksync
from bulksync.sandbox import Sandbox
from bulksync.stop import Stop
from bulksync.sync import DEFAULT_SETTLE
from tests.conftest import CHANNEL, FORM, TOKEN, SkippingClock, read_rows, write

ROWS = 30
SIGN = 3
"""The run is stopped once this many creates are answered."""
SIGN_WAIT = 30.0
"""How long a sign is waited for, at most (the test then fails on its counts)."""


@pytest.fixture
def slow() -> Iterator[Sandbox]:
    """A sandbox whose answers take a while, as the real API's do."""
    with Sandbox(token=TOKEN, latency_ms=20) as sb:
        yield sb


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once something has asked a run to stop (the sign a test waits for)."""
    event = threading.Event()
    request = Stop.request

    def request_and_tell(self: Stop) -> None:
        request(self)
        event.set()

    monkeypatch.setattr(Stop, "request", request_and_tell)
    return event


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as in a Jupyter kernel running a cell."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _sheet(tmp_path: Path) -> Path:
    return write(tmp_path / "t.csv", "description,priority\n" + "".join(f"T{i},Low\n" for i in range(ROWS)))


def _at_sign(act: Callable[[], None], asked: threading.Event) -> Callable[[int, int, str], None]:
    """An ``on_progress`` that, once SIGN creates are answered, acts and then holds the run
    until the stop was asked: what the run does next no longer races the stop."""

    def on_progress(done: int, total: int, note: str) -> None:
        if done == SIGN and not asked.is_set():
            act()
            asked.wait(SIGN_WAIT)

    return on_progress


def _interrupt_main_thread() -> None:
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def _push_interrupted_at_sign(sheet: Path, sb: Sandbox, asked: threading.Event) -> bulksync.RunResult:
    """A plain push, one request at a time, that the main thread's SIGINT (a notebook's
    interrupt, a Ctrl-C) reaches once SIGN creates are answered."""
    return bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL, concurrency=1,
                         on_progress=_at_sign(_interrupt_main_thread, asked))


def _nothing_lost_nothing_doubled(sheet: Path, sb: Sandbox) -> None:
    """Every ticket the stopped run made is in the sheet and the journal, none is uncertain,
    and a push again makes the rest, each once."""
    api = {"token": TOKEN, "api_url": sb.url}
    made = {t["id"] for t in sb.tickets()}
    rows = read_rows(sheet)
    assert SIGN <= len(made) < ROWS
    assert {r["ticketId"] for r in rows if r["ticketId"]} == made
    assert {r["syncStatus"] for r in rows} == {"created", ""}
    assert bulksync.runs(sheet, **api)[-1].counts["created"] == len(made)
    again = bulksync.push(sheet, form_id=FORM, channel=CHANNEL, **api)
    assert again.counts["created"] == ROWS - len(made) and again.counts["unchanged"] == len(made)
    assert sorted(t["description"] for t in sb.tickets()) == sorted(f"T{i}" for i in range(ROWS))
    assert {r["ticketId"] for r in read_rows(sheet)} == {t["id"] for t in sb.tickets()}


@pytest.mark.usefixtures("default_sigint")
def test_an_interrupt_stops_a_plain_push_inside_a_running_loop(tmp_path: Path, slow: Sandbox,
                                                               asked: threading.Event) -> None:
    """A Jupyter interrupt: KeyboardInterrupt in the main thread, blocked in a plain call made
    inside the cell's loop. The run stops as at a Ctrl-C: the result is marked interrupted."""
    sheet = _sheet(tmp_path)
    got: list[bulksync.RunResult] = []

    async def cell() -> None:
        got.append(_push_interrupted_at_sign(sheet, slow, asked))

    loop = asyncio.new_event_loop()  # as a kernel's: no handler of asyncio.run's for SIGINT
    try:
        loop.run_until_complete(cell())
    finally:
        loop.close()
    assert asked.is_set() and got[0].interrupted
    assert got[0].counts["created"] == len(slow.tickets())
    _nothing_lost_nothing_doubled(sheet, slow)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_in_asyncio_run_stops_a_plain_push(tmp_path: Path, slow: Sandbox, asked: threading.Event) -> None:
    """``asyncio.run``'s first Ctrl-C cancels its main task rather than raising: the plain call
    it blocks sees the cancel, stops the run, returns it interrupted, and the next await
    meets the cancel (asyncio.run then raises KeyboardInterrupt)."""
    sheet = _sheet(tmp_path)
    got: list[bulksync.RunResult] = []

    async def main() -> None:
        got.append(_push_interrupted_at_sign(sheet, slow, asked))
        await asyncio.sleep(0)
        got.clear()  # not reached: the cancel is met here

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    assert asked.is_set() and got[0].interrupted
    _nothing_lost_nothing_doubled(sheet, slow)


def test_cancelling_apush_stops_the_run_and_waits_for_it(tmp_path: Path, slow: Sandbox,
                                                         asked: threading.Event) -> None:
    sheet = _sheet(tmp_path)
    api = {"token": TOKEN, "api_url": slow.url}
    made: list[int] = []

    async def cell() -> None:
        loop = asyncio.get_running_loop()
        task: asyncio.Task[bulksync.RunResult] | None = None

        def cancel() -> None:
            assert task is not None
            loop.call_soon_threadsafe(task.cancel)

        task = asyncio.ensure_future(bulksync.apush(sheet, form_id=FORM, channel=CHANNEL, concurrency=1,
                                                    on_progress=_at_sign(cancel, asked), **api))
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        made.append(len(slow.tickets()))  # the run has ended: nothing goes on behind the cell
        await asyncio.sleep(0.2)
        made.append(len(slow.tickets()))

    asyncio.run(cell())
    assert asked.is_set() and made[0] == made[1] == len(slow.tickets())
    _nothing_lost_nothing_doubled(sheet, slow)


def test_a_second_cancel_cuts_the_requests_in_flight_short(tmp_path: Path, asked: threading.Event,
                                                           clock: SkippingClock) -> None:
    """As a second Ctrl-C: the create in flight is left uncertain (never sent twice), and the
    next push resolves it."""
    sheet = _sheet(tmp_path)
    with Sandbox(token=TOKEN, latency_ms=2000) as sb:
        api = {"token": TOKEN, "api_url": sb.url}

        async def cell() -> None:
            task = asyncio.ensure_future(bulksync.apush(sheet, form_id=FORM, channel=CHANNEL, concurrency=1, **api))
            while not task.done() and not any(r["method"] == "POST" for r in sb.requests()):  # 1st create made
                await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.to_thread(asked.wait, SIGN_WAIT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cell())
        assert [r["syncStatus"] for r in read_rows(sheet)][:2] == ["uncertain", ""]
        sb.latency = 0
        clock.advance(DEFAULT_SETTLE)  # the server is surely done with it: it is resolved, not resent
        again = bulksync.push(sheet, form_id=FORM, channel=CHANNEL, clock=clock, **api)
        assert again.summary()["resolved"] == 1 and again.counts["created"] == ROWS
        assert sorted(t["description"] for t in sb.tickets()) == sorted(f"T{i}" for i in range(ROWS))
        assert {r["ticketId"] for r in read_rows(sheet)} == {t["id"] for t in sb.tickets()}


def test_the_cells_loop_goes_on_while_apush_runs(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _sheet(tmp_path)
    ticked = threading.Event()
    pending_at_tick: list[bool] = []

    def hold_until_ticked(done: int, total: int, note: str) -> None:
        if done == SIGN:
            ticked.wait(SIGN_WAIT)

    async def cell() -> None:
        task = asyncio.ensure_future(bulksync.apush(sheet, form_id=FORM, channel=CHANNEL, token=TOKEN,
                                                    api_url=sandbox.url, on_progress=hold_until_ticked))

        async def ticker() -> None:
            while not ticked.is_set() and not task.done():
                await asyncio.sleep(0.01)
                if len(sandbox.tickets()) >= SIGN:
                    pending_at_tick.append(not task.done())
                    ticked.set()

        await asyncio.gather(ticker(), task)
        assert task.result().counts["created"] == ROWS

    asyncio.run(cell())
    assert pending_at_tick == [True]


def test_a_plain_delete_inside_a_running_loop(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nA,Low\nB,High\n")
    api = {"token": TOKEN, "api_url": sandbox.url}
    bulksync.push(sheet, form_id=FORM, channel=CHANNEL, **api)
    close = write(tmp_path / "close.csv", "ticketId\n" + "".join(r["ticketId"] + "\n" for r in read_rows(sheet)))

    async def cell() -> bulksync.RunResult:
        return bulksync.delete(close, **api)

    assert asyncio.run(cell()).counts["deleted"] == 2 and sandbox.tickets() == []


NOTEBOOK = """
import sys, types

class Widget:  # what tqdm.notebook asks of ipywidgets' HTML, FloatProgress and HBox
    def __init__(self, *args, **kwargs):
        self.__dict__.update(kwargs)
        self.layout, self.style = types.SimpleNamespace(), types.SimpleNamespace()
        self.value, self.bar_style = 0, ""

shown = []
widgets = types.ModuleType("ipywidgets")
widgets.HTML = widgets.FloatProgress = widgets.HBox = Widget
ipython, display = types.ModuleType("IPython"), types.ModuleType("IPython.display")
ipython.get_ipython = type("ZMQInteractiveShell", (), {})
ipython.display, display.display = display, shown.append
sys.modules.update({"ipywidgets": widgets, "IPython": ipython, "IPython.display": display,
                    "ipykernel": types.ModuleType("ipykernel"),
                    "ipykernel.zmqshell": types.ModuleType("ipykernel.zmqshell")})
import bulksync

bar = bulksync.progress_bar("push")
bar(1, 2, "")
bar(2, 2, "")
print([type(w).__name__ for w in shown], shown[0].pbar.n)
"""


def test_a_progress_bar_in_a_notebook_is_the_widget() -> None:
    """Under a Jupyter kernel (faked: IPython, ipykernel and ipywidgets are not installed here)
    ``tqdm.auto`` gives the notebook's widget, shown once and filled."""
    out = subprocess.run([sys.executable, "-c", NOTEBOOK], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['TqdmHBox']", "2"]
