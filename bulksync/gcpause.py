"""Pause Python's cyclic garbage collector while a bulk step builds many objects.

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

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the block (nesting is safe; a caller's choice is kept)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
