"""Time, read in one place: every wait bulksync makes (the settle time before an uncertain
create is resolved, the breaker's window, the pacer's pauses and back-offs) asks a
:class:`Clock` it is given, so a test advances time instead of sleeping through it.

:data:`SYSTEM` is the real one. A run's journal stamps its creates (sent, answered) with
the run's clock, but other runs' stamps are the real time, so a clock given to a run must
never be behind the real one: the tests' clock is the real one plus the pauses it skipped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["SYSTEM", "Clock", "SystemClock"]


class Clock(Protocol):
    """What waiting code reads: seconds on a monotonic clock, the epoch time, and a pause."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM: Clock = SystemClock()

