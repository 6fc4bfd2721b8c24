"""The collector switches used for bulk steps restore what they found, exceptions included."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulksync.gcpause import frozen_heap, paused_gc


def test_paused_gc_restores_the_collector() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()


def test_what_a_paused_block_made_is_filed_old_and_its_cycles_still_collected() -> None:
    import weakref

    class Node:
        pass

    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        with paused_gc():
            made = [Node() for _ in range(1000)]
            cycle = Node()
            cycle.me = cycle  # type: ignore[attr-defined]
            gone = weakref.ref(cycle)
            del cycle
        after = list(collections)
    finally:
        gc.callbacks.remove(seen)
    # Filed old: no young collection falls due as the block ends to walk what it made
    # (without the filing, one starts at once over the 1,000 objects and more).
    assert after == [] and len(made) == 1000
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None  # a cycle made in the block is still found
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            pass
        assert gc.get_freeze_count() == frozen  # a caller's freeze is not thawed
    finally:
        gc.unfreeze()


def test_frozen_heap_unfreezes_and_leaves_a_callers_freeze_alone() -> None:
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_commands_run_in_process_keep_the_collector(tmp_path: Path) -> None:
    from bulksync.cli import main

    sheet = tmp_path / "t.csv"
    sheet.write_text("description\nprinter jams\n", encoding="utf-8")
    for command in ("validate", "plan"):
        result = CliRunner().invoke(main, [command, str(sheet)])
        assert result.exit_code in (0, 1), result.output
        assert gc.isenabled()
