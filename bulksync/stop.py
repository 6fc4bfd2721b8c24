"""Stopping a run from outside its event loop: a notebook's interrupt, a cancelled task.

A run's loop (:func:`bulksync.engine.drive`) takes Ctrl-C and SIGTERM itself when it owns
the main thread. Where the caller already runs a loop (a Jupyter cell), the run goes on
in a worker thread with a loop of its own, and what stops it comes from the caller: a
KeyboardInterrupt while it waits for a plain call (:func:`wait_beside`), or the cancel of the
task awaiting an awaitable door (:func:`awaitable`). Both ask one :class:`Stop`, and the
run's loop does what a signal would: the first request takes no new request and gives
those in flight STOP_GRACE seconds, the next cancels them. The caller then waits for the
worker to end, so whatever the run obtained is written back and journalled before the
interrupt's result (or the cancel) reaches it.

An awaitable door's stop reaches every ``drive`` of its call through :data:`DOOR`, a
context variable set in the worker's context: a stop asked between two of them (while
the sheet is read or written) makes the next send nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as wait_for_future
from typing import TypeVar

__all__ = ["DOOR", "POLL", "Stop", "awaitable", "in_thread", "wait_beside"]

T = TypeVar("T")

POLL = 0.1
"""How often a caller waiting for a plain call looks whether its task was cancelled
(``asyncio.run`` turns the first Ctrl-C into a cancel of its main task, not an exception)."""


class Stop:
    """Asks a run to stop, from any thread, as a signal would: see the module's docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = 0
        self._run: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None

    @property
    def asked(self) -> int:
        """How many times the stop was asked."""
        return self._asked

    def request(self) -> None:
        """Stop the run attached now (in its loop's thread), else the next one at its start."""
        with self._lock:
            self._asked += 1
            if self._run is not None:
                loop, act = self._run
                loop.call_soon_threadsafe(act)

    def attach(self, act: Callable[[], None]) -> None:
        """Called in a run's loop: ``act`` (what a Ctrl-C does there) is called, in that loop,
        for every request from now on, and now for those made already (up to two: the
        second cancels)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._run = (loop, act)
            asked = self._asked
        for _ in range(min(asked, 2)):
            act()

    def detach(self) -> None:
        """The run's loop is ending: later requests wait for the next run."""
        with self._lock:
            self._run = None


DOOR: contextvars.ContextVar[Stop | None] = contextvars.ContextVar("bulksync_stop", default=None)
"""The stop of the awaitable door whose worker runs here (None elsewhere)."""


def in_thread(call: Callable[[], T], context: contextvars.Context | None = None) -> Future[T]:
    """``call()`` in a new worker thread (in ``context``, else a copy of this one); its
    outcome, exception included, is the future's. The thread is not a daemon: an exiting
    interpreter waits for it, as it must for the sheet and the journal to be written."""
    done: Future[T] = Future()
    done.set_running_or_notify_cancel()  # nobody can cancel it: the call runs to its end
    where = context if context is not None else contextvars.copy_context()

    def run() -> None:
        try:
            done.set_result(where.run(call))
        except BaseException as e:  # whatever it is, the waiter meets it
            done.set_exception(e)

    threading.Thread(target=run, name="bulksync-run").start()
    return done


def wait_beside(done: Future[T], stop: Stop) -> T:
    """Block until ``done``; a KeyboardInterrupt meanwhile (a notebook's interrupt), or a
    cancel of the asyncio task this blocks (``asyncio.run``'s Ctrl-C), asks ``stop``, and the
    wait goes on until the call has ended: its outcome is the caller's."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    cancels = task.cancelling() if task is not None else 0
    while not done.done():
        try:
            wait_for_future([done], timeout=POLL, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            stop.request()
            continue
        if task is not None and task.cancelling() > cancels:
            cancels = task.cancelling()
            stop.request()
    return done.result()


async def awaitable(call: Callable[[], T]) -> T:
    """``call()`` in a worker thread, awaited: the caller's loop goes on meanwhile. If the
    awaiting task is cancelled, the call's runs are stopped (:data:`DOOR`; a second cancel
    cancels the requests in flight), the call is awaited to its end (what it obtained is
    written back and journalled), and the CancelledError goes on to the caller."""
    stop = Stop()
    context = contextvars.copy_context()
    context.run(DOOR.set, stop)
    ended = asyncio.wrap_future(in_thread(call, context))
    try:
        await asyncio.wait({ended})
    except asyncio.CancelledError as cancelled:
        stop.request()
        while not ended.done():
            try:
                await asyncio.wait({ended})
            except asyncio.CancelledError:
                stop.request()
        if not ended.cancelled():
            ended.exception()  # retrieved: what the cancelled caller meets is the cancel
        raise cancelled
    return ended.result()
