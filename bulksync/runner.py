"""Send Operations: a pool of workers, pacing by X-RateLimit-*, safe retries, a progress callback.

The retry rule comes from the API having no idempotency key: a create is sent
again only when it certainly was not processed (the connection could not be
made, or the answer was 429 or 503). Any other silence or 5xx after a create
was sent leaves the row ``uncertain``; PATCH and DELETE are idempotent and are
retried on 429, 5xx, timeouts and dropped connections.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bulksync.api import SuptaskClient, created_ticket, error_message
from bulksync.errors import AuthError
from bulksync.plan import ONCE_KINDS
from bulksync.report import RowResult

if TYPE_CHECKING:
    import httpx

    from bulksync.plan import Operation

__all__ = ["Pacer", "ProgressCallback", "RunHooks", "RunStats", "run_operations"]

ProgressCallback = Callable[[int, int, str], None]
"""``on_progress(done, total, note)``; ``note`` says why the run waits, or is empty."""

_NOT_PROCESSED = frozenset({429, 503})
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


class Pacer:
    """Shared pace for all workers: a ``rate`` cap, the server's remaining budget, and 429 pauses.

    Within a rate-limit window a request is sent only while fewer requests are in flight
    than the window has left (the lowest ``X-RateLimit-Remaining`` answered for it), so
    the run never goes over; when the window is spent (Remaining 0) everyone waits for
    its reset. While the budget is only *taken* by requests in flight, workers wait for
    their answers rather than for the reset: an answer may show that the server already
    counted some of them, and the window's last slots are not left unused.
    """

    HOLD = 0.01
    """Seconds between looks while the window's budget is taken by requests in flight."""

    def __init__(self, rate: float | None = None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next_at = 0.0
        self.paused_until = 0.0
        self.in_flight = 0
        self._window_end = 0.0  # when the window the budget below belongs to resets (monotonic)
        self._remaining = 0.0   # the lowest Remaining answered for that window

    def try_acquire(self) -> float:
        """Take a slot now (0.0), or say how many seconds to wait before asking again."""
        now = time.monotonic()
        start = max(now, self._next_at, self.paused_until)
        if start > now:
            return start - now
        if now < self._window_end and self.in_flight >= self._remaining:
            return min(self.HOLD, self._window_end - now)
        self._next_at = now + self._interval
        self.in_flight += 1
        return 0.0

    async def acquire(self) -> None:
        while wait := self.try_acquire():
            await asyncio.sleep(wait)

    def release(self) -> None:
        self.in_flight -= 1

    def waiting(self) -> float:
        return max(0.0, self.paused_until - time.monotonic())

    def observe(self, response: httpx.Response) -> None:
        """Steer by ``X-RateLimit-Remaining``/``-Reset``: pause everyone when the window is spent."""
        remaining = reset = None
        for name, value in response.headers.raw:  # one pass over the few raw headers
            name = name.lower()
            if name == b"x-ratelimit-remaining":
                remaining = _number(value.decode("latin-1"))
            elif name == b"x-ratelimit-reset":
                reset = _number(value.decode("latin-1"))
        now = time.monotonic()
        if remaining is not None and reset is not None:
            # Reset is epoch seconds; a small number is read as seconds from now.
            reset_in = reset - time.time() if reset > 1e9 else reset
            reset_in = max(reset_in, 0.0)
            if now >= self._window_end:  # the first answer of a new window
                self._window_end, self._remaining = now + reset_in, remaining
            else:  # answers may come out of order: the lowest count is the latest
                self._remaining = min(self._remaining, remaining)
            if remaining <= 0:
                self.paused_until = max(self.paused_until, now + reset_in + 0.05)
        if response.status_code == 429:
            delay = retry_after(response)
            if delay is None:
                delay = reset_in if remaining is not None and reset is not None else 1.0
            self.paused_until = max(self.paused_until, now + delay + 0.05)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    when = email.utils.parsedate_to_datetime(value) if value else None
    return max(when.timestamp() - time.time(), 0.0) if when else None


@dataclass
class RunStats:
    requests: int = 0
    stopped: AuthError | None = None


class RunHooks(Protocol):
    """Where the runner reports each step of a create, as it happens (the journal)."""

    def sending(self, op: Operation) -> RowResult | None:
        """Called before every attempt to send a create, link or reply: None to send it, or
        the row's outcome instead (another run has created or is creating it)."""

    def not_sent(self, op: Operation) -> None:
        """The attempt certainly was not processed (no connection, 429, 503)."""

    def finished(self, op: Operation, result: RowResult, *, answered: bool) -> None:
        """The final outcome; ``answered``: the server answered, so it is done with the request."""


STOPPED_IN_FLIGHT = ("the run was stopped while this create was in flight; the ticket may or "
                     "may not have been created")


async def run_operations(
    client: SuptaskClient,
    operations: Iterable[Operation],
    results: MutableMapping[int, RowResult],
    *,
    concurrency: int = 4,
    rate: float | None = None,
    max_attempts: int = 5,
    backoff: float = 0.5,
    on_progress: ProgressCallback | None = None,
    stats: RunStats | None = None,
    hooks: RunHooks | None = None,
    stopping: asyncio.Event | None = None,
    on_log: Callable[[str], None] | None = None,
) -> RunStats:
    """Send every operation; put each row's outcome into ``results`` as soon as it is known.

    Stops sending (and returns with ``stats.stopped`` set) when the token is refused, and
    takes no new operation once ``stopping`` is set. If cancelled, creates in flight are
    recorded as uncertain (updates in flight are simply not reported: they are safe to resend).
    """
    import httpx

    ops = [op for op in operations if op.sends]
    total = len(ops)
    pacer = Pacer(rate)
    stats = stats if stats is not None else RunStats()
    queue = iter(ops)
    done = 0
    successes = 0

    def progress() -> None:
        if on_progress:
            wait = pacer.waiting()
            on_progress(done, total, f"rate limit: waiting {wait:.0f}s" if wait >= 1 else "")

    async def perform(op: Operation) -> tuple[RowResult, bool]:
        """The row's final outcome, and whether the server answered the last attempt."""
        nonlocal successes
        create = op.kind == "create"
        once = op.kind in ONCE_KINDS
        attempt = 0
        while True:
            attempt += 1
            error, status = "", 0
            if pacer.try_acquire():  # the common case takes its slot without awaiting
                await pacer.acquire()
            if once and hooks:
                instead = hooks.sending(op)
                if instead is not None:  # not sent: the journal already settles this row
                    pacer.release()
                    return instead, False
            stats.requests += 1
            not_processed = False
            started = time.monotonic() if on_log else 0.0
            try:
                response = await client.request(op.method, op.path,
                                                None if op.kind == "delete" else op.payload)
                if on_log:
                    on_log(f"row {op.row_number}: {op.method} {op.path} → {response.status_code} "
                           f"in {(time.monotonic() - started) * 1000:.0f} ms")
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                # Nothing was sent: safe to try again, create or not.
                error = f"could not connect: {_describe(e)}"
                retry_ok = not_processed = True
            except httpx.TransportError as e:
                error = f"no answer: {_describe(e)}"
                if once:
                    return RowResult(op.row_number, "uncertain", error=_uncertain(error, op)), False
                retry_ok = True
            else:
                pacer.observe(response)
                status = response.status_code
                if 200 <= status < 300:
                    successes += 1
                    if op.kind == "delete":
                        return RowResult(op.row_number, "deleted", ticket_id=op.ticket_id), True
                    if not create:
                        return RowResult(op.row_number, "updated", ticket_id=op.ticket_id), True
                    ticket = created_ticket(_json(response))
                    if ticket is None:
                        return RowResult(op.row_number, "uncertain", error=(
                            f"HTTP {status} without a ticket ID in the answer; the ticket was "
                            "probably created")), True
                    return RowResult(op.row_number, "created", ticket_id=ticket.ticket_id,
                                     ticket_number=ticket.ticket_number), True
                error = error_message(response)
                if op.kind == "delete" and status == 404 and attempt > 1:
                    # An earlier attempt's answer was lost, but the ticket is gone: deleted.
                    return RowResult(op.row_number, "deleted", ticket_id=op.ticket_id), True
                if status == 401 or (status == 403 and successes == 0):
                    if stats.stopped is None:
                        stats.stopped = AuthError(
                            f"the API refused the token ({error}); check SUPTASK_API_TOKEN. "
                            "Nothing more was sent.", status=status, method=op.method, path=op.path)
                    return RowResult(op.row_number, "failed", ticket_id=op.ticket_id, error=error), True
                if once and status in _RETRYABLE and status not in _NOT_PROCESSED:
                    return RowResult(op.row_number, "uncertain", error=_uncertain(error, op)), True
                retry_ok = status in _RETRYABLE
                not_processed = status in _NOT_PROCESSED
            finally:
                pacer.release()
            if on_log:
                on_log(f"row {op.row_number}: {op.method} {op.path}: {error} (attempt {attempt})")
            if once and hooks and not_processed:
                hooks.not_sent(op)
            if not retry_ok or attempt >= max_attempts or stats.stopped:
                return RowResult(op.row_number, "failed", ticket_id=op.ticket_id, error=error), True
            delay = min(30.0, backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            await asyncio.sleep(max(delay, pacer.waiting()))

    async def worker() -> None:
        nonlocal done
        for op in queue:
            if stats.stopped or (stopping is not None and stopping.is_set()):
                return
            try:
                result, answered = await perform(op)
            except asyncio.CancelledError:
                if op.kind in ONCE_KINDS:
                    results[op.row_number] = RowResult(op.row_number, "uncertain",
                                                       error=STOPPED_IN_FLIGHT)
                raise
            if hooks:
                hooks.finished(op, result, answered=answered)
            results[op.row_number] = result
            done += 1
            progress()

    progress()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, total or 1)))))
    return stats


def _uncertain(error: str, op: Operation) -> str:
    what = {"create": "the ticket", "link": "the link", "reply": "the reply"}[op.kind]
    return f"{error}; {what} may or may not have been created, so it was not sent again"


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
