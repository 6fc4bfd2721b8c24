"""The request engine: every request bulksync sends or reads goes through here.

Operations are sent by a pool of workers (:func:`run_operations`), reads by ticket number
one at a time (:func:`read_number`, :func:`read_all`, :func:`read_tickets`), both within one
pacer that follows X-RateLimit-*, under one retry policy and one breaker; :func:`drive`
runs the async work with Ctrl-C and SIGTERM handled.

The retry rule comes from the API having no idempotency key: a create is sent
again only when it certainly was not processed (the connection could not be
made, or the answer was 429 or 503). Any other silence or 5xx after a create
was sent leaves the row ``uncertain``; PATCH and DELETE are idempotent and are
retried on 429, 5xx, timeouts and dropped connections.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Callable, Coroutine, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from bulksync.api import ReadTicket, SuptaskClient, created_ticket, error_message, read_ticket, ticket_id_of
from bulksync.clock import SYSTEM, Clock
from bulksync.config import DEFAULT_CONCURRENCY, DEFAULT_SETTLE, DEFAULT_TIMEOUT
from bulksync.errors import ApiError, ApiUnreachable, AuthError
from bulksync.journal import Window
from bulksync.plan import ONCE_KINDS
from bulksync.policy import (
    BACKOFF_BASE,
    MAX_ATTEMPTS,
    NOT_PROCESSED,
    READ_ATTEMPTS,
    Failure,
    backoff,
    classify,
)
from bulksync.results import RowResult
from bulksync.stop import DOOR, Stop, in_thread, wait_beside
from bulksync.untrusted import clean

if TYPE_CHECKING:
    import httpx

    from bulksync.plan import Operation

__all__ = ["Pacer", "Probe", "ProgressCallback", "Read", "Reads", "RunHooks", "RunStats", "Sending", "budget",
           "drive", "paced", "probe", "read_all", "read_number", "read_tickets", "run_operations"]

ProgressCallback = Callable[[int, int, str], None]
"""``on_progress(done, total, note)``; ``note`` says why the run waits, or is empty."""

MAX_WAIT = 900.0
"""No pause for a rate limit is longer than the documented window (15 minutes)."""
BREAKER_FAILURES, BREAKER_SECONDS = 20, 20.0
"""The run stops after this many connection failures in a row, or after failures in a row
for this long (at least 3): the API is down or unreachable."""


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

    def __init__(self, rate: float | None = None, *, clock: Clock = SYSTEM) -> None:
        self.clock = clock
        """What every pause and back-off of the requests it paces waits on."""
        self._interval = 1.0 / rate if rate else 0.0
        self._next_at = 0.0
        self.paused_until = 0.0
        self.reason = ""
        """What the current pause waits for (shown with the wait)."""
        self.in_flight = 0
        self._window_end = 0.0  # when the window the budget below belongs to resets (monotonic)
        self._remaining = 0.0   # the lowest Remaining answered for that window
        self._limit: float | None = None  # X-RateLimit-Limit: what a new window allows
        self._windowed = False  # the server has told a window: a new one is not unlimited
        self._span = 0.0  # how long a window lasts, as its first answer's reset showed
        self._probing = False  # after a 429: one request at a time until one is answered
        self._reset_at: float | None = None  # the current window's reset (epoch seconds)

    def try_acquire(self) -> float:
        """Take a slot now (0.0), or say how many seconds to wait before asking again."""
        now = self.clock.monotonic()
        start = max(now, self._next_at, self.paused_until)
        if start > now:
            return start - now
        if now < self._window_end and self.in_flight >= self._remaining:
            return min(self.HOLD, self._window_end - now)
        if self._probing and self.in_flight >= 1:
            return self.HOLD
        if now >= self._window_end and self._windowed and self.in_flight >= (self._limit or 1):
            # A new window none of whose answers is back yet: no more than it allows (its
            # Limit; one request, to learn it, when the server never said) go at its start,
            # not every worker that waited for the reset.
            return self.HOLD
        self._next_at = now + self._interval
        self.in_flight += 1
        return 0.0

    async def acquire(self) -> None:
        while wait := self.try_acquire():
            await self.clock.sleep(wait)

    def release(self) -> None:
        self.in_flight -= 1

    def window(self) -> Window | None:
        """The window the answers told (for the next run's estimate), if they told one."""
        if not self._windowed or self._limit is None or self._span <= 0:
            return None
        return Window(limit=self._limit, span=self._span, remaining=self._remaining, reset_at=self._reset_at)

    def waiting(self) -> float:
        return max(0.0, self.paused_until - self.clock.monotonic())

    def note(self, left: int = 0) -> str:
        """A pause worth mentioning (a second or more): what it waits for and until when; and,
        for ``left`` requests still to send, how long the API's window makes them take (the
        waits included, which a rate taken so far does not foresee)."""
        wait = self.waiting()
        window = self.window()
        ahead = window.seconds_for(left, now=self.clock.time()) if window is not None and left else 0.0
        eta = f"about {ahead:.0f} s left at the API's {window.said()}" if ahead >= 1 and window else ""
        if wait < 1:
            return eta
        until = time.strftime("%H:%M:%S", time.localtime(self.clock.time() + wait))
        return ", ".join(filter(None, (f"rate limit: waiting {wait:.0f} s, until {until} ({self.reason})", eta)))

    def _pause(self, seconds: float, reason: str) -> None:
        until = self.clock.monotonic() + min(seconds, MAX_WAIT) + 0.05
        if until > self.paused_until:
            self.paused_until = until
            self.reason = reason + (f", capped at {MAX_WAIT:.0f} s" if seconds > MAX_WAIT else "")

    def observe(self, response: httpx.Response) -> None:
        """Steer by ``X-RateLimit-Remaining``/``-Reset``: pause everyone when the window is spent."""
        remaining = reset = None
        for name, value in response.headers.raw:  # one pass over the few raw headers
            name = name.lower()
            if name == b"x-ratelimit-remaining":
                remaining = _number(value.decode("latin-1"))
            elif name == b"x-ratelimit-limit":
                limit = _number(value.decode("latin-1"))
                if limit is not None and limit >= 1:
                    self._limit = limit
            elif name == b"x-ratelimit-reset":
                reset = seconds_until(value.decode("latin-1"), self.clock.time())
        now = self.clock.monotonic()
        reset_in = None
        if remaining is not None and self._limit is not None:
            remaining = min(remaining, self._limit)  # a Remaining above the Limit is not believed
        if remaining is not None and reset is not None:
            self._windowed = True
            reset_in = min(reset, MAX_WAIT)
            if now >= self._window_end:  # the first answer of a new window
                self._window_end, self._remaining = now + reset_in, remaining
                self._span = max(self._span, reset_in)
                self._reset_at = self.clock.time() + reset_in
            else:  # answers may come out of order: the lowest count is the latest
                self._remaining = min(self._remaining, remaining)
            if remaining <= 0:
                self._pause(reset, "X-RateLimit-Reset")
        if response.status_code == 429:
            # Until an answer shows the budget again, one request at a time: a 429 with only a
            # Retry-After (a proxy's, a gateway's) must not send every waiting worker at once.
            self._probing = True
            delay = retry_after(response, self.clock.time())
            if delay is not None and delay > 0:
                self._pause(delay, "Retry-After")
            else:  # none, or a reset "now" (a clock ahead of the server's): never no pause at all
                self._pause(max(reset_in or 0.0, self._span, 1.0), "HTTP 429")
        elif response.status_code < 400:
            self._probing = False


def _number(text: str | None) -> float | None:
    """A header's number; None for none, and for NaN or infinity (a server's arithmetic gone
    wrong is no limit to steer by)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def seconds_until(value: str, now: float | None = None) -> float | None:
    """Seconds to wait, from a reset or retry time in any unit a server may use: seconds to
    wait, epoch seconds, epoch milliseconds, or an HTTP date. None if it is none of these."""
    now = time.time() if now is None else now
    number = _number(value.strip())
    if number is not None:
        if number != number or number in (float("inf"), float("-inf")):
            return None
        if number > 1e11:  # epoch milliseconds (1e11 s is the year 5138)
            number = number / 1000 - now
        elif number > 1e9:  # epoch seconds
            number -= now
        return max(number, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        import datetime as dt

        when = when.replace(tzinfo=dt.UTC)
    return max(when.timestamp() - now, 0.0)


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    value = response.headers.get("retry-after")
    return None if value is None else seconds_until(value, now)


@dataclass
class RunStats:
    """What a whole run shares across its phases (creates, resolution, links, replies)."""

    requests: int = 0
    stopped: ApiError | None = None
    """Why the run stopped sending: a refused token, or an API that cannot be reached."""
    successes: int = 0
    failing_since: float | None = None
    """When the current run of connection failures began (None: the last request connected)."""
    failures_in_a_row: int = 0
    pacer: Pacer | None = None
    ids: set[str] = field(default_factory=set)
    """Ticket IDs created in this run: one ID answered for two rows is not believed."""
    unanswered: set[int] = field(default_factory=set)
    """Rows every attempt of which failed to connect: left untouched if the API is down."""

    refusals_in_a_row: int = 0
    clock: Clock = SYSTEM
    """What the breaker's window and the run's pauses read."""

    def paced(self, rate: float | None = None) -> Pacer:
        """The run's one pacer (made on first use, at ``rate``): sends and reads share its budget."""
        if self.pacer is None:
            self.pacer = Pacer(rate, clock=self.clock)
        return self.pacer

    def connected(self) -> None:
        self.failing_since, self.failures_in_a_row = None, 0

    def no_answer(self, host: str, failure: Failure, described: str) -> None:
        """A request that got no answer: a connection not made counts toward the breaker, and
        so does a timeout (a server that takes requests and never answers is as good as down);
        a connection broken once made says the API is there."""
        if failure == "connect":
            self.connect_failed(host, described)
        elif failure == "timeout":
            self.connect_failed(host, described, what="requests without an answer")
        else:
            self.connected()

    def answered(self, status: int) -> None:
        """A status answer: the API is there. 429 and 503 in a row are counted apart: an API
        that refuses every request (each retried after its pause) is as good as down."""
        self.connected()
        if status in NOT_PROCESSED:
            self.refusals_in_a_row += 1
            if self.stopped is None and self.refusals_in_a_row >= BREAKER_FAILURES:
                self.stopped = ApiUnreachable(
                    f"the API answered {status} (not processed) to {self.refusals_in_a_row} requests "
                    "in a row, each after the pause it asked for; stopped. Rows that got no other "
                    "answer were left as they were; run again later", host="")
        else:
            self.refusals_in_a_row = 0

    def connect_failed(self, host: str, error: str, *, what: str = "failed connections") -> None:
        """A connection that could not be made (or, ``what``, a request that got no answer at
        all in its time): after a run of them, the run stops."""
        now = self.clock.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        self.failures_in_a_row += 1
        lasted = now - self.failing_since
        if self.stopped is None and (self.failures_in_a_row >= BREAKER_FAILURES or (
                self.failures_in_a_row >= 3 and lasted >= BREAKER_SECONDS)):
            self.stopped = ApiUnreachable(
                f"cannot reach the API at {host}: {error}; stopped after {self.failures_in_a_row} "
                f"{what} in {lasted:.0f} s. Rows that got no answer were left as they "
                "were; run again when the API can be reached", host=host)


class RunHooks(Protocol):
    """Where the runner reports each step of a create, as it happens (the journal)."""

    def sending(self, op: Operation) -> RowResult | None:
        """Called before every attempt to send a create, link or reply: None to send it, or
        the row's outcome instead (another run has created or is creating it)."""

    def not_sent(self, op: Operation) -> None:
        """The attempt certainly was not processed (no connection, 429, 503)."""

    def finished(self, op: Operation, result: RowResult, *, answered: bool) -> RowResult | None:
        """The final outcome; ``answered``: the server answered, so it is done with the request.
        May return a corrected outcome (an answer the journal shows cannot be right)."""


STOPPED_IN_FLIGHT = ("the run was stopped while this create was in flight; the ticket may or "
                     "may not have been created")


async def run_operations(
    client: SuptaskClient,
    operations: Iterable[Operation],
    results: MutableMapping[int, RowResult],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate: float | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    backoff: float = BACKOFF_BASE,
    on_progress: ProgressCallback | None = None,
    stats: RunStats | None = None,
    hooks: RunHooks | None = None,
    stopping: asyncio.Event | None = None,
    on_log: Callable[[str], None] | None = None,
) -> RunStats:
    """Send every operation; put each row's outcome into ``results`` as soon as it is known.

    One pacer (``stats.pacer``, made here if the run has none yet) paces every call of a
    run. Stops sending (and returns with ``stats.stopped`` set) when the token is refused
    or the API cannot be reached; rows that got no answer then get no result (their cells
    are left as they were). Takes no new operation once ``stopping`` is set. If cancelled,
    creates in flight are recorded as uncertain (updates in flight are simply not
    reported: they are safe to resend). An exception from ``hooks`` (the journal cannot
    record) stops every worker at once and is raised.
    """
    ops = [op for op in operations if op.sends]
    stats = stats if stats is not None else RunStats()
    run = _Workers(client, ops, results, stats, stats.paced(rate), max_attempts=max_attempts, backoff=backoff,
               on_progress=on_progress, hooks=hooks, stopping=stopping, on_log=on_log)
    run.progress()
    try:
        async with asyncio.TaskGroup() as group:  # an error in one worker stops them all
            for _ in range(max(1, min(concurrency, len(ops) or 1))):
                group.create_task(run.worker())
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    if isinstance(stats.stopped, ApiUnreachable):
        for row in stats.unanswered:  # they got no answer: their cells are left as they were
            results.pop(row, None)
    return stats


_Outcome = tuple[RowResult | None, bool]
"""A row's final outcome (None: no answer before the run stopped), and whether the server
answered the last attempt."""


@dataclass(frozen=True)
class _Failed:
    """An attempt that got no usable answer: where it broke, the status (0: none), the row's error."""

    failure: Failure
    status: int
    error: str


class _Workers:
    """One call of ``run_operations``: what its workers share, and the steps of sending a row."""

    def __init__(self, client: SuptaskClient, ops: list[Operation],
                 results: MutableMapping[int, RowResult], stats: RunStats, pacer: Pacer, *,
                 max_attempts: int, backoff: float, on_progress: ProgressCallback | None,
                 hooks: RunHooks | None, stopping: asyncio.Event | None,
                 on_log: Callable[[str], None] | None) -> None:
        self.client = client
        self.queue = iter(ops)  # shared: each worker takes the next operation
        self.total = len(ops)
        self.done = 0
        self.results = results
        self.stats = stats
        self.pacer = pacer
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.on_progress = on_progress
        self.hooks = hooks
        self.stopping = stopping
        self.on_log = on_log
        self.host = client.host
        self.secrets = client.secrets

    def progress(self) -> None:
        if self.on_progress:
            self.on_progress(self.done, self.total, self.pacer.note(self.total - self.done))

    async def paced(self) -> None:
        """Take a pacing slot; a long pause is shown as it starts."""
        if self.pacer.try_acquire():  # the common case takes its slot without awaiting
            if self.on_progress and self.pacer.waiting() >= 1:
                self.progress()
            await self.pacer.acquire()

    async def worker(self) -> None:
        """Send operations from the shared queue until it is empty or the run stops."""
        for op in self.queue:
            if self.stats.stopped or (self.stopping is not None and self.stopping.is_set()):
                return
            try:
                result, answered = await self.perform(op)
            except asyncio.CancelledError:
                if op.kind in ONCE_KINDS:
                    self.results[op.row_number] = RowResult(op.row_number, "uncertain",
                                                            error=STOPPED_IN_FLIGHT)
                raise
            if result is None:
                continue
            if self.hooks:
                try:
                    result = self.hooks.finished(op, result, answered=answered) or result
                except BaseException:
                    self.results[op.row_number] = result  # not recorded, but not lost: written back
                    raise
            self.results[op.row_number] = result
            self.done += 1
            self.progress()

    async def perform(self, op: Operation) -> _Outcome:
        """Send one operation, again after a pause while the policy allows: its final outcome."""
        attempt = 0
        while True:
            attempt += 1
            sent = await self.send_once(op, attempt)
            if not isinstance(sent, _Failed):
                return sent
            outcome = self.after_failure(op, attempt, sent)
            if outcome is not None:
                return outcome
            delay = backoff(attempt, self.backoff)
            if self.pacer.waiting() >= 1:
                self.progress()  # say what the pause waits for, as it starts
            await self.pacer.clock.sleep(max(delay, self.pacer.waiting()))

    async def send_once(self, op: Operation, attempt: int) -> _Outcome | _Failed:
        """Send the operation once within a pacing slot (released on every path): the row's
        outcome, or how the attempt failed. Not sent if the run has stopped or ``hooks``
        already settle the row."""
        import httpx

        await self.paced()
        if self.stats.stopped:
            self.pacer.release()
            return None, False
        if op.kind in ONCE_KINDS and self.hooks:
            try:
                instead = self.hooks.sending(op)
            except BaseException:
                self.pacer.release()
                raise
            if instead is not None:  # not sent: the journal already settles this row
                self.pacer.release()
                return instead, False
        self.stats.requests += 1
        started = time.monotonic() if self.on_log else 0.0
        try:
            response = await self.client.request(op.method, op.path,
                                                 None if op.kind == "delete" else op.payload)
            if self.on_log:
                self.on_log(f"row {op.row_number}: {op.method} {op.path} → {response.status_code} "
                            f"in {(time.monotonic() - started) * 1000:.0f} ms")
        except httpx.TransportError as e:
            return self.no_answer(op, attempt, e)
        else:
            return self.answer(op, response)
        finally:
            self.pacer.release()

    def no_answer(self, op: Operation, attempt: int, e: httpx.TransportError) -> _Failed:
        """Count a request that got no answer: a connection not made counts toward the breaker,
        and so does a timeout (a server that takes requests and never answers)."""
        failure = failure_of(e)
        described = _describe(e, self.secrets)
        self.stats.no_answer(self.host, failure, described)
        if failure == "connect":
            if attempt == 1 or op.row_number in self.stats.unanswered:
                self.stats.unanswered.add(op.row_number)
            return _Failed(failure, 0, f"could not connect to {self.host}: {described}")
        self.stats.unanswered.discard(op.row_number)
        return _Failed(failure, 0, f"no answer: {described}")

    def answer(self, op: Operation, response: httpx.Response) -> _Outcome | _Failed:
        """Count an answer and steer the pace by it: the row's outcome on a 2xx."""
        status = response.status_code
        self.stats.answered(status)
        self.stats.unanswered.discard(op.row_number)
        self.pacer.observe(response)
        if not 200 <= status < 300:
            return _Failed("status", status, error_message(response, self.secrets))
        self.stats.successes += 1
        if op.kind == "delete":
            return RowResult(op.row_number, "deleted", ticket_id=op.ticket_id), True
        if op.kind != "create":
            return RowResult(op.row_number, "updated", ticket_id=op.ticket_id), True
        return _created(op, response, self.stats.ids, self.secrets), True

    def after_failure(self, op: Operation, attempt: int, failed: _Failed) -> _Outcome | None:
        """What the policy makes of a failed attempt: the row's final outcome, or None to send
        it again. A refused token stops the run; a POST not processed is told to ``hooks``."""
        then = classify(op.method, failed.failure, failed.status, attempt=attempt,
                        anything_succeeded=self.stats.successes > 0)
        once_hooks = self.hooks if op.kind in ONCE_KINDS else None
        if then == "done":
            return RowResult(op.row_number, "deleted", ticket_id=op.ticket_id), True
        if then == "stop":
            if self.stats.stopped is None:
                self.stats.stopped = AuthError(
                    f"the API refused the token ({failed.error}); check SUPTASK_API_TOKEN. "
                    "Nothing more was sent.", status=failed.status, method=op.method, path=op.path)
            if once_hooks:  # a refused token processed nothing: forget the intent
                once_hooks.not_sent(op)
            return None, True
        if then == "uncertain":
            return (RowResult(op.row_number, "uncertain", error=_uncertain(failed.error, op)),
                    failed.failure == "status")
        not_processed = then == "retry-unsent"
        if self.on_log:
            self.on_log(f"row {op.row_number}: {op.method} {op.path}: {failed.error} (attempt {attempt})")
        if once_hooks and not_processed:
            once_hooks.not_sent(op)
        if self.stats.stopped:
            return (None, False) if not_processed else (_failed(op, failed.error), True)
        if then not in ("retry", "retry-unsent"):
            return _failed(op, failed.error), True
        # A 429 or 503 says nothing was done: never a reason to give the row up. It is sent
        # again after its pause for as long as it takes; only the breaker (the API refusing
        # every request, BREAKER_FAILURES in a row) stops the run, leaving unsent rows as they are.
        refused = failed.failure == "status" and failed.status in NOT_PROCESSED
        if attempt >= self.max_attempts and not refused:
            return _failed(op, failed.error), True
        return None


def _failed(op: Operation, error: str) -> RowResult:
    return RowResult(op.row_number, "failed", ticket_id=op.ticket_id, error=error)


def _created(op: Operation, response: httpx.Response, seen: set[str],
             secrets: tuple[str, ...]) -> RowResult:
    """A create's 201, believed only if it names one new ticket: a UUID, not answered for
    another row. Otherwise the row is ``uncertain``; the raw answer goes to the journal."""
    raw = clean(response.text, secrets=secrets, limit=2000)
    ticket = created_ticket(_json(response))
    if ticket is None:
        return RowResult(op.row_number, "uncertain", raw=raw, error=(
            f"HTTP {response.status_code} without a ticket ID in the answer; the ticket was "
            "probably created (the answer is kept in bulksync's state)"))
    ticket_id = ticket_id_of(ticket.ticket_id)
    if ticket_id is None:
        return RowResult(op.row_number, "uncertain", raw=raw, error=(
            f"HTTP {response.status_code} with a ticket ID that is not a UUID; the ticket was "
            "probably created (the answer is kept in bulksync's state)"))
    if ticket_id in seen:
        return RowResult(op.row_number, "uncertain", raw=raw, error=(
            f"HTTP {response.status_code} with the ID of another row's ticket; the ticket was "
            "probably created (the answer is kept in bulksync's state)"))
    seen.add(ticket_id)
    return RowResult(op.row_number, "created", ticket_id=ticket_id, ticket_number=ticket.ticket_number)


def failure_of(e: httpx.TransportError) -> Failure:
    """Where a request broke: before anything was sent, while sending, or after."""
    import httpx

    if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "connect"
    if isinstance(e, (httpx.WriteError, httpx.WriteTimeout)):
        return "write"
    if isinstance(e, httpx.TimeoutException):
        return "timeout"
    return "read"


def _uncertain(error: str, op: Operation) -> str:
    what = {"create": "the ticket", "link": "the link", "reply": "the reply"}[op.kind]
    return f"{error}; {what} may or may not have been created, so it was not sent again"


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(e: Exception, secrets: tuple[str, ...] = ()) -> str:
    text = clean(str(e), secrets=secrets, limit=200)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


async def read_number(client: SuptaskClient, pacer: Pacer, stats: RunStats | None,
                      number: int) -> tuple[int, Any]:
    """``GET /ticket/{number}`` within the run's pacer, under the same policy, breaker and
    token stop as every other request: (status, JSON body), status 0 if no answer came.

    A refused token (401, or 403 before anything succeeded) stops the run at its first answer
    (``stats.stopped``), as an API that cannot be reached does; a 429 or 503 is read again
    after its pause for as long as it takes (only the breaker stops it); other failures are
    retried up to three times. Serves pull, push --check, undo and resolving alike."""
    import httpx


    stats = stats if stats is not None else RunStats()
    status, body = 0, None
    attempt = 0
    while stats.stopped is None:
        attempt += 1
        await pacer.acquire()
        stats.requests += 1
        try:
            response = await client.request("GET", f"/ticket/{number}")
        except httpx.TransportError as e:  # this read is inconclusive unless retried
            status = 0
            failure = failure_of(e)
            stats.no_answer(client.host, failure,
                            _describe(e, client.secrets))
            if attempt < READ_ATTEMPTS and classify("GET", failure, attempt=attempt) in ("retry", "retry-unsent") \
                    and stats.stopped is None:
                await pacer.clock.sleep(backoff(attempt))
                continue
            break
        finally:
            pacer.release()
        pacer.observe(response)
        status = response.status_code
        stats.answered(status)
        # For a read, a 403 is that ticket's (another team's): only a 401 refuses the token.
        then = classify("GET", "status", status, attempt=attempt, anything_succeeded=True)
        if then == "stop":
            stats.stopped = AuthError(f"the API refused the token (HTTP {status}); check SUPTASK_API_TOKEN. "
                                      "Nothing more was read.", status=status, method="GET",
                                      path=f"/ticket/{number}")
            return status, None
        if status < 400:
            stats.successes += 1
        elif then == "retry-unsent" or (then == "retry" and attempt < READ_ATTEMPTS):
            await pacer.clock.sleep(max(backoff(attempt), pacer.waiting()))
            continue
        try:
            body = response.json()
        except ValueError:
            body = None
        break
    return status, body


STOP_GRACE = 10.0
"""After Ctrl-C, requests in flight get this long to finish."""


def drive(work: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: Stop | None = None) -> bool:
    """Run ``work(stopping)`` in an event loop; True if it was interrupted. In the main thread
    the first Ctrl-C or SIGTERM sets ``stopping`` (no new requests; STOP_GRACE seconds for
    those in flight), a second one cancels it; ``stop`` (else an awaitable door's,
    :data:`bulksync.stop.DOOR`) does the same from any thread.

    Called where a loop already runs (a Jupyter cell), the work runs in a loop of its own in
    a worker thread; signals are left to the caller, but a KeyboardInterrupt while it waits
    here (a notebook's interrupt), or a cancel of the task it blocks (``asyncio.run``'s
    Ctrl-C), stops the run as a Ctrl-C would, and the wait goes on until the run has ended:
    True, as for a Ctrl-C (see :mod:`bulksync.stop`)."""
    import signal
    import threading

    stop = stop if stop is not None else DOOR.get()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running here: the usual case
    else:
        beside = stop if stop is not None else Stop()
        return wait_beside(in_thread(lambda: drive(work, beside)), beside)
    handle = threading.current_thread() is threading.main_thread()
    interrupted = False

    async def main() -> None:
        nonlocal interrupted
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        task = asyncio.ensure_future(work(stopping))

        def on_signal() -> None:
            if stopping.is_set():
                task.cancel()
            else:
                stopping.set()
                loop.call_later(STOP_GRACE, task.cancel)

        if handle:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
        if stop is not None:
            stop.attach(on_signal)
        try:
            await task
        except asyncio.CancelledError:
            interrupted = True
        finally:
            if stop is not None:
                stop.detach()
            if handle:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        interrupted = interrupted or stopping.is_set()

    asyncio.run(main())
    return interrupted


READS_PER_WINDOW, WINDOW_SECONDS = 100, 15 * 60
"""Suptask's documented read limit: 100 reads per 15 minutes per token."""


@dataclass(frozen=True)
class Read:
    """One ticket to read, for one row."""

    row: int
    number: int
    ticket_id: str | None


def budget(reads: int, window: Window | None = None) -> str:
    """What the read limit means for ``reads`` reads, said before they start: the window the
    API last answered (``window``), else the documented 100 reads per 15 minutes."""
    if window is not None:
        return f"{reads} ticket(s) to read: {paced(reads, window)}"
    windows = max(0, (reads - 1) // READS_PER_WINDOW)
    if windows == 0:
        return f"{reads} ticket(s) to read (within one window of Suptask's {READS_PER_WINDOW} reads per 15 minutes)"
    minutes = windows * WINDOW_SECONDS // 60
    when = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
    return (f"{reads} tickets to read: Suptask allows {READS_PER_WINDOW} reads per 15 minutes per "
            f"token, so this takes about {when}; reads are paced by the X-RateLimit headers, "
            "Ctrl-C stops and writes back what was read")


def paced(requests: int, window: Window) -> str:
    """How ``requests`` fit the API's window, as its last answer told it."""
    seconds = window.seconds_for(requests)
    if not seconds:
        return f"within the window the API last answered ({window.said()}, {window.remaining:g} left)" \
            if window.remaining is not None else f"within one window of the API's {window.said()}"
    when = (f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 120
            else f"{seconds:.0f} s")
    return (f"the API allows {window.said()} (as its last answer said), so this takes about {when}, "
            "most of it waiting for its windows")


async def read_all(client: SuptaskClient, reads: Sequence[Read], stats: RunStats,
                   *, on_progress: ProgressCallback | None, stopping: asyncio.Event,
                   secrets: tuple[str, ...] = (),
                   record: Callable[[Read, ReadTicket | None, str], None] | None = None,
                   ) -> dict[int, tuple[ReadTicket | None, str]]:
    """Row → (the ticket read, or None and why not), for the reads done before ``stopping``;
    ``record`` is told each as it is done (the state keeps it: a kill loses no read). One at
    a time: the read budget, not the network, sets the pace."""
    pacer = stats.paced()
    out: dict[int, tuple[ReadTicket | None, str]] = {}
    for done, read in enumerate(reads):
        if stopping.is_set() or stats.stopped is not None:
            break
        status, body = await read_number(client, pacer, stats, read.number)
        if stats.stopped is not None and status != 200:  # a refused token, an API gone: not this ticket's fault
            break
        if status == 200:
            ticket = read_ticket(body, secrets)
            out[read.row] = (ticket, "") if ticket is not None else (
                None, f"ticket {read.number}: the answer is not a ticket")
        else:
            why = {0: "no answer", 403: "HTTP 403: a ticket of another team", 404: "HTTP 404: no such ticket"}
            out[read.row] = (None, f"ticket {read.number}: {why.get(status, f'HTTP {status}')}")
        if record is not None and status != 0:  # no answer: read again next time
            record(read, *out[read.row])
        if on_progress:
            on_progress(done + 1, len(reads), pacer.note())
    return out


@dataclass(frozen=True, kw_only=True)
class Sending:
    """How a run sends: the token, the network's limits and the user's choices for it."""

    token: str
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = DEFAULT_TIMEOUT
    settle: float = DEFAULT_SETTLE
    only_failed: bool = False
    retry_uncertain: bool = False
    resend_unresolved: bool = False
    allow_duplicates: bool = False
    confirm: Callable[[list[Operation]], bool] | None = None
    """Shown exactly the requests about to be sent; False sends nothing (``Run.refused``)."""
    on_progress: ProgressCallback | None = None
    on_log: Callable[[str], None] | None = None
    on_notice: Callable[[str], None] | None = None
    command: str = "push"
    """What the run is (push, delete, undo): how ``bulksync runs`` lists it."""
    undoes: str = ""
    """An undo: the id of the run it takes back."""
    clock: Clock = SYSTEM
    """What the run's waits read: the settle time, the breaker's window, the pauses."""


class Reads(NamedTuple):
    """What :func:`read_tickets` read: row → the ticket or why not, the requests' stats, and
    whether Ctrl-C stopped it."""

    got: dict[int, tuple[ReadTicket | None, str]]
    stats: RunStats
    interrupted: bool


def read_tickets(reads: Sequence[Read], sending: Sending, api_url: str, *,
                 record: Callable[[Read, ReadTicket | None, str], None] | None = None) -> Reads:
    """Read ``reads`` one at a time, paced (Ctrl-C stops): (row → the ticket or why not, the
    requests' stats, whether it was interrupted). What pull, ``pull --numbers``, push --check,
    undo and the rotated token's check read through; ``record`` as for :func:`read_all`."""
    stats = RunStats(clock=sending.clock)
    got: dict[int, tuple[ReadTicket | None, str]] = {}

    async def work(stopping: asyncio.Event) -> None:
        async with SuptaskClient(token=sending.token, base_url=api_url, transport=sending.transport,
                                 timeout=sending.timeout, max_connections=1) as client:
            got.update(await read_all(client, reads, stats, on_progress=sending.on_progress, stopping=stopping,
                                      secrets=client.secrets, record=record))

    interrupted = drive(work)
    return Reads(got, stats, interrupted)


@dataclass(frozen=True)
class Probe:
    """One request's outcome, whatever it is: its HTTP status (0: no answer, ``failure`` says
    why) and the rate-limit window the answer told."""

    status: int
    window: Window | None
    failure: ApiUnreachable | None = None


def probe(path: str, *, token: str, api_url: str, transport: httpx.AsyncBaseTransport | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """One GET of ``path``, neither retried nor paced: a 429 is reported, not waited out
    (``bulksync status`` checks a token so)."""
    import httpx

    pacer = Pacer()
    got: list[Probe] = []

    async def work(stopping: asyncio.Event) -> None:
        async with SuptaskClient(token=token, base_url=api_url, transport=transport, timeout=timeout,
                                 max_connections=1) as client:
            try:
                response = await client.request("GET", path)
            except httpx.TransportError as e:
                got.append(Probe(0, None, ApiUnreachable(type(e).__name__, host="")))
                return
            pacer.observe(response)
            got.append(Probe(response.status_code, pacer.window()))

    drive(work)
    return got[0] if got else Probe(0, None)
