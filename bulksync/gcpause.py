"""Keep Python's cyclic garbage collector out of bulk steps.

Reading, validating and planning a 100,000-row sheet makes hundreds of thousands of
small dicts, lists and Operations, none of them in reference cycles. Each of them
counts toward the collector's thresholds, so it ran over and over, walking every
object pandas and pandera had made at import: half of ``plan_rows``' time at
100,000 rows (bench/RESULTS.md). Reference counting still frees everything as
usual; only the search for cycles waits until the step is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_heap", "paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the block (nesting is safe; a caller's choice is kept).

    What the block made (with the modules it imported) is then filed with the old objects:
    ``gc.freeze()`` and ``gc.unfreeze()`` move every tracked object to the oldest
    generation in one list splice. Otherwise the first young collection after the block
    walks all of it (50 ms after reading and planning 20,000 rows). Cycles among those
    objects are still found, by the next full collection. Skipped when the caller has
    frozen objects of its own, which unfreezing would thaw.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave what exists now out of the collector's passes for the block (``gc.freeze``).

    While requests are sent, the sheet, the plan and the imported modules are long-lived;
    every full collection walked them again (about a tenth of the per-request cost of a
    20,000-row bulk close). They are unfrozen afterwards, so nothing escapes collection for
    good. A caller that froze objects itself is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
