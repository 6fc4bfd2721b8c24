"""The public door stays honest, and --help stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bulksync


def test_all_is_sorted_and_importable() -> None:
    assert bulksync.__all__ == sorted(bulksync.__all__)
    for name in bulksync.__all__:
        assert hasattr(bulksync, name), name


def test_no_module_shadows_a_public_name() -> None:
    """Importing a submodule sets it as an attribute of the package: a module named ``pull``
    would, once imported lazily, replace ``bulksync.pull`` the function (it did once)."""
    code = ("import importlib, pkgutil, types, bulksync\n"
            "for m in pkgutil.walk_packages(bulksync.__path__, 'bulksync.'):\n"
            "    m.name.endswith('__main__') or importlib.import_module(m.name)\n"
            "print(sorted(n for n in bulksync.__all__ if isinstance(getattr(bulksync, n), types.ModuleType)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_does_not_import_pandas_pandera_or_httpx() -> None:
    code = ("import sys; from bulksync.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'pandera', 'httpx', 'lxml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_every_door_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    """As in a Jupyter cell: the plain calls and their awaitable forms, inside a running loop."""
    import asyncio
    import csv

    from bulksync.sandbox import Sandbox
    from tests.conftest import CHANNEL, FORM, TOKEN, write

    sheet = write(tmp_path / "t.csv", "description,priority\nA,Low\nB,High\n")
    close = tmp_path / "close.csv"
    seen: list[tuple[int, int]] = []

    with Sandbox(token=TOKEN) as sb:
        api = {"token": TOKEN, "api_url": sb.url}

        async def cell() -> None:
            pushed = bulksync.push(sheet, form_id=FORM, channel=CHANNEL, **api)  # plain, inside the loop
            assert pushed.counts["created"] == 2
            frame = pushed.to_frame()
            assert list(frame["status"]) == ["created", "created"] and list(frame.index) == [2, 3]
            assert frame["ticketNumber"].notna().all()
            sheet.write_text(sheet.read_text().replace("A,Low", "A,High"))
            again = await bulksync.apush(sheet, form_id=FORM, channel=CHANNEL,
                                         on_progress=lambda d, t, n: seen.append((d, t)), **api)
            assert again.counts["updated"] == 1 and seen[-1] == (1, 1)
            assert (await bulksync.apull(sheet, **api)).counts["pulled"] == 2
            assert bulksync.pull(sheet, **api).counts["pulled"] == 2
            undone = await bulksync.aundo(sheet, run=2, **api)
            assert undone.result is not None and undone.result.counts["undone"] == 1
            assert bulksync.undo(sheet, run=1, **api).result is not None  # the creates run
            assert [r.undone for r in bulksync.runs(sheet, **api)][:2] == [True, True]
            with sheet.open(newline="", encoding="utf-8") as f:
                ids = [r["ticketId"] for r in csv.DictReader(f)]
            assert ids == ["", ""]
            bulksync.push(sheet, form_id=FORM, channel=CHANNEL, **api)
            with sheet.open(newline="", encoding="utf-8") as f:
                close.write_text("ticketId\n" + "".join(r["ticketId"] + "\n" for r in csv.DictReader(f)))
            assert (await bulksync.adelete(close, **api)).counts["deleted"] == 2
            assert bulksync.status(**api).accepted

        asyncio.run(cell())
        assert sb.tickets() == []


def test_a_progress_bar_for_wherever_it_runs() -> None:
    import io

    from tqdm.auto import tqdm

    bar = bulksync.progress_bar("push")
    assert callable(bar) and tqdm is not None
    stderr, sys.stderr = sys.stderr, io.StringIO()
    try:
        bar(1, 2, "")
        bar(2, 2, "rate limit: waiting")
        drawn = sys.stderr.getvalue()
    finally:
        sys.stderr = stderr
    assert "push" in drawn and "2/2" in drawn


def test_every_door_that_waits_reads_the_clock_it_is_given(tmp_path: Path) -> None:
    """push, pull, undo and delete each wait out a rate limit's window on the clock they are
    given (here one that skips each pause, shared with the sandbox's window): a window of a
    minute costs no minute, and each door's pause is on that clock."""
    from bulksync.sandbox import Sandbox
    from tests.conftest import CHANNEL, FORM, TOKEN, SkippingClock, write

    clock = SkippingClock()
    sheet = write(tmp_path / "t.csv", "description,status\n" + "".join(f"T{i},Open\n" for i in range(3)))
    other = write(tmp_path / "d.csv", "description\n" + "".join(f"D{i}\n" for i in range(3)))
    with Sandbox(token=TOKEN, rate_limit=(2, 60), clock=clock) as sb:
        api = {"token": TOKEN, "api_url": sb.url, "clock": clock}
        doors = [("push", lambda: bulksync.push(sheet, form_id=FORM, channel=CHANNEL, **api).ok),
                 ("pull", lambda: bulksync.pull(sheet, **api).ok),
                 ("undo", lambda: bulksync.undo(sheet, check=False, **api).result.ok),
                 ("push another", lambda: bulksync.push(other, form_id=FORM, channel=CHANNEL, **api).ok),
                 ("delete", lambda: bulksync.delete(other, **api).ok)]
        for name, door in doors:
            waited = len(clock.slept)
            assert door(), name
            assert max(clock.slept[waited:], default=0) >= 1, name  # it waited for the window, on this clock
