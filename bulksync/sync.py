"""The pipeline behind the public door: read → map → validate → plan → run → write back."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from bulksync.columns import (
    OWNED_COLUMNS,
    Rows,
    ValidationReport,
    row_keys,
    select_rows,
    validate_rows,
)
from bulksync.config import Settings, SheetOptions, resolve_settings
from bulksync.errors import SheetError, TokenMissing
from bulksync.gcpause import frozen_heap, paused_gc
from bulksync.journal import Journal
from bulksync.mapping import Mapped, apply_mapping
from bulksync.memo import ByIdentity
from bulksync.plan import Operation, Plan, apply_payload, cells_of_payload, plan_rows
from bulksync.report import PushResult, RowResult
from bulksync.runner import RunStats, run_operations
from bulksync.sheets.read import CsvFormat, Table, read_table

if TYPE_CHECKING:
    import httpx

    from bulksync.api import SuptaskClient
    from bulksync.runner import ProgressCallback

__all__ = ["Loaded", "delete", "deletions", "load", "plan", "push", "validate"]

TOKEN_ENV = "SUPTASK_API_TOKEN"


@dataclass(frozen=True, eq=False)
class Loaded:
    """A sheet read, mapped, validated and planned against its baselines.

    ``table`` is the sheet as it is on disk (what is written back into);
    ``mapped`` is it in Suptask's columns (what is sent).
    """

    table: Table
    mapped: Mapped
    rows: Rows
    report: ValidationReport
    plan: Plan
    settings: Settings
    baselines: Mapping[str, dict[str, str]]


def load(path: Path | str, settings: Settings, *, force: bool = False) -> Loaded:
    """Read ``path``, map its columns, validate it and plan it.

    Problems of the mapping (an unmapped value or user) and of the plan (a cell
    emptied that the API cannot empty) join the schema's in one report. The
    journal is only read.
    """
    with paused_gc():
        table = read_table(path, sheet=settings.sheet)
        mapped = apply_mapping(table, settings.mapping, users=settings.users,
                               default_requester=settings.default_requester, comments=settings.comments)
        rows = select_rows(mapped.table, settings.defaults)
        report = validate_rows(rows, table.path)
        if mapped.problems:
            report = report.with_problems(mapped.problems, superseding=True)
        if mapped.source_of:
            report = report.renamed(mapped.source_of)
        if report.sheet_invalid:
            return Loaded(table, mapped, rows, report, Plan(()), settings, {})
        baselines = Journal.read_baselines(table.path)
        plan = plan_rows(rows, exclude=report.invalid_rows, force=force, baselines=baselines)
        if plan.problems:  # rows that cannot be planned have no operation
            report = report.with_problems(plan.problems)
        return Loaded(table, mapped, rows, report, plan, settings, baselines)


def validate(path: Path | str, **options: Unpack[SheetOptions]) -> ValidationReport:
    """Every problem of the sheet at ``path``, with row numbers and columns. Sends nothing.

    Options (all optional): ``sheet`` (XLSX worksheet), ``config`` (a bulksync.toml;
    default: the one beside the sheet), ``form_id``/``channel`` (for rows that create a
    ticket), ``set`` (fields given one value on every row), ``mapping`` (a mapping file
    or preset name), ``users`` (users CSV), ``comments`` (comments CSV),
    ``default_requester``, ``legacy_url``.
    """
    return load(path, resolve_settings(path, **options)).report


def plan(path: Path | str, *, force: bool = False,
         **options: Unpack[SheetOptions]) -> tuple[ValidationReport, Plan]:
    """What a push would send for the valid rows, and the report. Needs no token; sends nothing.

    Updates carry only what changed since the last push (see :func:`push`), with the
    changes listed as old → new; ``force`` plans every row in full. Options as for
    :func:`validate`.
    """
    loaded = load(path, resolve_settings(path, **options), force=force)
    return loaded.report, loaded.plan


DEFAULT_SETTLE = 60.0
"""Seconds after which a create whose answer was lost is surely done at the server."""
STOP_GRACE = 10.0
"""After Ctrl-C, requests in flight get this long to finish."""


def push(
    path: Path | str,
    *,
    token: str | None = None,
    api_url: str | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    skip_invalid: bool = False,
    force: bool = False,
    only_failed: bool = False,
    retry_uncertain: bool = False,
    settle: float = DEFAULT_SETTLE,
    on_progress: ProgressCallback | None = None,
    on_log: Callable[[str], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Unpack[SheetOptions],
) -> PushResult:
    """Send the sheet's rows to Suptask and write the outcome back into the sheet.

    A sheet with invalid rows is refused (nothing sent, file untouched) unless
    ``skip_invalid``, which sends the valid rows and marks the others. The
    token comes from ``token`` or ``SUPTASK_API_TOKEN``. Every create is
    journalled (see :mod:`bulksync.journal`): a rerun never creates a row twice.
    ``only_failed`` sends just the rows that failed last time; ``retry_uncertain``
    also resends creates whose earlier outcome could not be established.
    After a push the journal remembers what was sent per ticket: the next push
    sends only what changed (an unchanged row: nothing; an emptied ``assignee``
    or ``priority``: null; emptied ``tags``: []); ``force`` sends every row in full.
    With a mapping that names the legacy ID, each created ticket is linked to the
    old one, and its comments become replies, oldest first; both are journalled too.
    Called from the main thread, Ctrl-C and SIGTERM stop it cleanly. Sheet options as
    for :func:`validate`.
    """
    settings = resolve_settings(path, api_url=api_url, concurrency=concurrency, rate=rate, **options)
    token = _token(token, settings)
    loaded = load(path, settings, force=force)
    report = loaded.report
    if report.sheet_invalid or (not report.valid and not skip_invalid):
        return PushResult(path=loaded.table.path, results=_invalid(report), requests=0,
                          written_to=None, ignored_columns=report.ignored_columns, report=report,
                          refused=True)
    run = _Run(loaded, token=token, transport=transport, on_progress=on_progress, settle=settle,
               on_log=on_log)
    if skip_invalid:
        run.results.update(_invalid(report))
    with Journal.for_sheet(loaded.table.path) as journal:
        run.journal = journal
        run.hooks = _JournalHooks(journal, run.keys, dict(loaded.baselines))
        to_send, pending = run.sort(loaded.plan, only_failed=only_failed)
        try:
            with frozen_heap():
                _drive(run, to_send, pending, retry_uncertain=retry_uncertain)
        finally:
            run.hooks.flush()
    results = run.merged_results()
    with paused_gc():
        written, note = write_back(loaded.table, results)
    return PushResult(path=loaded.table.path, results=results, requests=run.stats.requests,
                      side=dict(run.side),
                      written_to=written, ignored_columns=report.ignored_columns, report=report,
                      stopped=str(run.stats.stopped) if run.stats.stopped else "",
                      interrupted=run.interrupted, note=note)


def deletions(path: Path | str, **options: Unpack[SheetOptions]) -> list[Operation]:
    """The DELETE of every row of ``path`` that has a ticketId (rows without one are skipped)."""
    return _deletions(load_for_delete(path, resolve_settings(path, **options))[1])


def load_for_delete(path: Path | str, settings: Settings) -> tuple[Table, Rows, ValidationReport]:
    """The sheet's rows that name a ticket, checked (ticketIds are UUIDs, each once)."""
    from dataclasses import replace

    table = read_table(path, sheet=settings.sheet)
    rows = select_rows(table, settings.defaults)
    rows = replace(rows, frame=rows.frame[rows.frame["ticketId"].ne("")])
    return table, rows, validate_rows(rows, table.path)


def _deletions(rows: Rows) -> list[Operation]:
    ids = rows.frame["ticketId"]
    return [Operation(int(row), "delete", ticket_id, {})
            for row, ticket_id in zip(ids.index, ids.tolist(), strict=True)]


def delete(path: Path | str, *, token: str | None = None, api_url: str | None = None,
           concurrency: int | None = None, on_progress: ProgressCallback | None = None,
           on_log: Callable[[str], None] | None = None,
           transport: httpx.AsyncBaseTransport | None = None,
           **options: Unpack[SheetOptions]) -> PushResult:
    """Delete every ticket listed (by ticketId) in the sheet; write each row's outcome back.

    DELETE is idempotent: retried like an update; a 404 after a lost answer means deleted.
    An invalid ticketId refuses the whole sheet (nothing deleted).
    """
    from bulksync.api import SuptaskClient

    settings = resolve_settings(path, api_url=api_url, concurrency=concurrency, **options)
    token = _token(token, settings)
    table, rows, report = load_for_delete(path, settings)
    if not report.valid:
        return PushResult(path=table.path, results=_invalid(report), requests=0, written_to=None,
                          report=report, refused=True)
    results: dict[int, RowResult] = {}
    stats = RunStats()

    async def run() -> None:
        async with SuptaskClient(token=token, base_url=settings.api_url, transport=transport,
                                 max_connections=settings.concurrency) as client:
            await run_operations(client, _deletions(rows), results, concurrency=settings.concurrency,
                                 rate=settings.rate, on_progress=on_progress, stats=stats,
                                 on_log=on_log)

    asyncio.run(run())
    with paused_gc():
        written, note = write_back(table, results)
    return PushResult(path=table.path, results=results, requests=stats.requests, written_to=written,
                      report=report, stopped=str(stats.stopped) if stats.stopped else "", note=note)


def _token(given: str | None, settings: Settings) -> str:
    """The API token: given, else SUPTASK_API_TOKEN, else ``token`` in the config file."""
    token = given or os.environ.get(TOKEN_ENV) or settings.token
    if not token:
        raise TokenMissing()
    for warning in settings.warnings:
        import warnings

        warnings.warn(warning, stacklevel=3)
    return token


def _drive(run: _Run, to_send: list[Operation], pending: list[Operation], *,
           retry_uncertain: bool) -> None:
    """Run the push's event loop. In the main thread the first Ctrl-C or SIGTERM asks it to
    stop (no new requests; STOP_GRACE seconds for those in flight), a second one cancels it."""
    import signal
    import threading

    handle = threading.current_thread() is threading.main_thread()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        run.stopping = asyncio.Event()
        work = asyncio.ensure_future(run.send(to_send, pending, retry_uncertain=retry_uncertain))

        def on_signal() -> None:
            if run.stopping.is_set():
                work.cancel()
            else:
                run.stopping.set()
                loop.call_later(STOP_GRACE, work.cancel)

        if handle:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
        try:
            await work
        except asyncio.CancelledError:
            run.interrupted = True
        finally:
            if handle:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    asyncio.run(main())


class _Run:
    """One push in progress: the results so far, the journal, and what to send."""

    def __init__(self, loaded: Loaded, *, token: str, transport: httpx.AsyncBaseTransport | None,
                 on_progress: ProgressCallback | None, settle: float,
                 on_log: Callable[[str], None] | None = None) -> None:
        self.loaded = loaded
        self.token = token
        self.transport = transport
        self.on_progress = on_progress
        self.on_log = on_log
        self.settle = settle
        self.results: dict[int, RowResult] = {}
        self.stats = RunStats()
        # The journal keys rows that create a ticket; a sheet of updates needs none.
        self.keys = (row_keys(loaded.rows, loaded.mapped.legacy_ids)
                     if any(op.kind == "create" for op in loaded.plan.operations) else {})
        self.side: Counter[str] = Counter()
        self.side_notes: dict[int, list[str]] = {}
        self.journal: Journal
        self.hooks: _JournalHooks
        self.stopping = asyncio.Event()
        self.interrupted = False
        self.sent: list[Operation] = []
        self.total = 0

    def sort(self, plan: Plan, *, only_failed: bool) -> tuple[list[Operation], list[Operation]]:
        """(operations to send, creates whose earlier outcome is unknown); rows the journal
        already saw created get their IDs back here."""
        entries = self.journal.creates(self.keys[op.row_number] for op in plan.operations
                                       if op.kind == "create")
        failed_updates = {t for t, (state, _) in self.journal.updates().items() if state == "failed"}
        sheet_failed = _sheet_statuses(self.loaded.table, "failed") if only_failed else set()
        to_send: list[Operation] = []
        pending: list[Operation] = []
        for op in plan.operations:
            row = op.row_number
            if not op.sends:
                if not only_failed:  # with --only-failed, other rows keep what they show
                    self.results[row] = (
                        RowResult(row, "unchanged", ticket_id=op.ticket_id) if op.kind == "unchanged"
                        else RowResult(row, "skipped", ticket_id=op.ticket_id, error="no field to change"))
                continue
            if op.kind == "create":
                entry = entries.get(self.keys[row])
                if entry and entry.state == "created":
                    self.results[row] = RowResult(row, "created", ticket_id=entry.ticket_id,
                                                  ticket_number=entry.ticket_number, via="journal")
                    continue
                if entry and entry.state in ("sending", "uncertain"):
                    pending.append(op)
                    continue
                was_failed = bool(entry and entry.state == "failed")
            else:
                was_failed = op.ticket_id in failed_updates
            if only_failed and not (was_failed or row in sheet_failed):
                continue
            to_send.append(op)
        return to_send, pending

    async def send(self, to_send: list[Operation], pending: list[Operation], *,
                   retry_uncertain: bool) -> None:
        from bulksync.api import SuptaskClient

        settings = self.loaded.settings
        self.total = len(to_send)
        async with SuptaskClient(token=self.token, base_url=settings.api_url,
                                 transport=self.transport,
                                 max_connections=settings.concurrency) as client:
            try:
                await self._send(client, to_send)
                await self._resolve(client, pending, retry_uncertain=retry_uncertain)
                await self._links(client, retry_uncertain=retry_uncertain)
                await self._replies(client, retry_uncertain=retry_uncertain)
            except asyncio.CancelledError:
                self.interrupted = True
        if self.stopping.is_set():
            self.interrupted = True

    async def _send(self, client: SuptaskClient, ops: list[Operation]) -> None:
        settings = self.loaded.settings
        hooks = self.hooks
        creates = [op for op in ops if op.kind == "create"]
        # Until one create has succeeded, creates go one at a time: every later create then
        # has a ticket number answered before it was sent, the lower end that resolving an
        # uncertain create needs (see bulksync.resolve).
        while creates and self.journal.highest_number is None and not hooks.any_created:
            first = creates.pop(0)
            ops = [op for op in ops if op is not first]
            await self._run(client, [first], hooks, concurrency=1)
        await self._run(client, ops, hooks, concurrency=settings.concurrency)

    def _tickets(self) -> dict[int, str]:
        """Row → its ticket's ID, for rows that have one now (created, or in the sheet)."""
        out = {row: r.ticket_id for row, r in self.results.items()
               if r.status == "created" and r.ticket_id}
        ids = self.loaded.rows.frame["ticketId"]
        bad = self.loaded.report.invalid_rows
        for row, ticket_id in zip(ids.index, ids.tolist(), strict=True):
            if ticket_id and int(row) not in bad:
                out.setdefault(int(row), ticket_id)
        return out

    def _note(self, row: int, text: str) -> None:
        self.side_notes.setdefault(row, []).append(text)

    async def _links(self, client: SuptaskClient, *, retry_uncertain: bool) -> None:
        """Link each ticket made from an old one to it, once (POST /ticket/external/{id})."""
        mapping = self.loaded.settings.mapping
        legacy = self.loaded.mapped.legacy_ids
        if mapping is None or not mapping.integration or not legacy or self._halted():
            return
        done = self.journal.sides("link")
        ops = []
        for row, ticket_id in self._tickets().items():
            if row not in legacy:
                continue
            state = done.get((ticket_id, 0))
            if state == "done" or (state in ("sending", "uncertain") and not retry_uncertain):
                if state != "done":
                    self.side["link_uncertain"] += 1
                    self._note(row, "link: an earlier attempt's outcome is unknown; "
                                    "--retry-uncertain sends it again")
                continue
            payload = {"externalId": legacy[row], "integrationType": mapping.integration}
            if mapping.url:
                payload["url"] = mapping.url.replace("{id}", legacy[row])
            ops.append(Operation(row, "link", ticket_id, payload))
        outcome: dict[int, RowResult] = {}
        await self._run(client, ops, self.hooks, results=outcome,
                        concurrency=self.loaded.settings.concurrency)
        self._count("link", outcome)

    async def _replies(self, client: SuptaskClient, *, retry_uncertain: bool) -> None:
        """Post each ticket's comment history as replies, oldest first, each once."""
        threads = self.loaded.mapped.comments
        if not threads or self._halted():
            return
        states = self.journal.sides("reply")
        tickets = self._tickets()
        queue: dict[int, list[Operation]] = {}
        for row, thread in threads.items():
            ticket_id = tickets.get(row)
            if ticket_id is None:
                continue
            todo: list[Operation] = []
            for seq, comment in enumerate(thread):
                state = states.get((ticket_id, seq))
                if state == "done":
                    continue
                if state in ("sending", "uncertain") and not retry_uncertain:
                    self.side["reply_uncertain"] += 1
                    self._note(row, f"reply {seq + 1}: an earlier attempt's outcome is unknown; "
                                    "later replies wait (--retry-uncertain sends it again)")
                    todo = []
                    break
                payload: dict[str, Any] = {"text": comment.body,
                                           "channel": ["requester" if comment.public else "responder"]}
                if comment.author:
                    payload["username"] = comment.author
                todo.append(Operation(row, "reply", ticket_id, payload, seq=seq))
            if todo:
                queue[row] = todo
        # One reply per ticket per round, so each thread stays in order.
        while queue and not self._halted():
            ops = [todo.pop(0) for todo in queue.values()]
            outcome: dict[int, RowResult] = {}
            await self._run(client, ops, self.hooks, results=outcome,
                            concurrency=self.loaded.settings.concurrency)
            self._count("reply", outcome)
            queue = {row: todo for row, todo in queue.items()
                     if todo and row in outcome and outcome[row].status == "updated"}

    def _count(self, kind: str, outcome: Mapping[int, RowResult]) -> None:
        for row, result in outcome.items():
            if result.status == "updated":
                self.side["linked" if kind == "link" else "replied"] += 1
            else:
                self.side[f"{kind}_{'uncertain' if result.status == 'uncertain' else 'failed'}"] += 1
                self._note(row, f"{kind}: {result.error}")

    def _halted(self) -> bool:
        return bool(self.stats.stopped) or self.stopping.is_set()

    def merged_results(self) -> dict[int, RowResult]:
        """The rows' outcomes, with what went wrong in their links and replies added."""
        from dataclasses import replace

        out = dict(self.results)
        for row, notes in self.side_notes.items():
            if row in out:
                error = "; ".join([out[row].error, *notes] if out[row].error else notes)
                out[row] = replace(out[row], error=error)
        return out

    async def _run(self, client: SuptaskClient, ops: list[Operation],
                   hooks: _JournalHooks, *, concurrency: int,
                   results: dict[int, RowResult] | None = None) -> None:
        if not ops or self.stats.stopped or self.stopping.is_set():
            return
        self.sent.extend(ops)
        self.total = max(self.total, len(self.sent))
        done_before = len(self.sent) - len(ops)

        on_progress = self.on_progress

        def progress(done: int, total: int, note: str) -> None:
            # One bar for the whole push, across the runner's calls.
            if on_progress:
                on_progress(done_before + done, self.total, note)

        await run_operations(client, ops, self.results if results is None else results,
                     concurrency=concurrency,
                     rate=self.loaded.settings.rate, on_progress=progress if on_progress else None,
                     stats=self.stats, hooks=hooks, stopping=self.stopping, on_log=self.on_log)

    async def _resolve(self, client: SuptaskClient, earlier: list[Operation], *,
                       retry_uncertain: bool) -> None:
        """Settle creates whose outcome is unknown: from earlier runs, and from this one."""
        if self.stats.stopped or self.stopping.is_set():
            for op in earlier:
                self._still_uncertain(op, "")
            return
        now_uncertain = [op for op in self.sent if op.kind == "create"
                         and self.results[op.row_number].status == "uncertain"]
        candidates = earlier + now_uncertain
        if not candidates:
            return
        from bulksync.resolve import resolve_uncertain

        entries = self.journal.creates()
        created = [e for e in entries.values() if e.state == "created"]
        pending = [entries[self.keys[op.row_number]] for op in candidates
                   if self.keys[op.row_number] in entries]
        outcomes = await resolve_uncertain(client, pending, created, settle=self.settle,
                                            stats=self.stats)
        resend: list[Operation] = []
        for op in candidates:
            key = self.keys[op.row_number]
            outcome = outcomes.get(key)
            if outcome and outcome.verdict == "resolved":
                assert outcome.ticket_id is not None
                self.journal.created(key, outcome.ticket_id, outcome.ticket_number)
                self.results[op.row_number] = RowResult(
                    op.row_number, "created", ticket_id=outcome.ticket_id,
                    ticket_number=outcome.ticket_number, via="resolved")
            elif (outcome and outcome.verdict == "absent") or retry_uncertain:
                self.journal.forget(key)
                resend.append(op)
            else:
                self._still_uncertain(op, outcome.reason if outcome else "")
        await self._send(client, resend)

    def _still_uncertain(self, op: Operation, reason: str) -> None:
        entry = self.journal.creates([self.keys[op.row_number]]).get(self.keys[op.row_number])
        error = entry.error if entry and entry.error else STOPPED_EARLIER
        if reason:
            error = f"{error} ({reason}; --retry-uncertain sends it again)"
        self.results[op.row_number] = RowResult(op.row_number, "uncertain", error=error)


STOPPED_EARLIER = ("an earlier run stopped while this create was in flight; the ticket may or "
                   "may not have been created")


class _JournalHooks:
    """The runner's steps, committed to the journal as they happen."""

    BATCH = 500

    def __init__(self, journal: Journal, keys: Mapping[int, str],
                 baselines: dict[str, dict[str, str]]) -> None:
        self.journal = journal
        self.keys = keys
        self.baselines = baselines
        self.any_created = False
        self._first_cells = ByIdentity[Mapping[str, Any], dict[str, str]](lambda p: apply_payload(None, p))
        self.pending: list[tuple[str, int, Mapping[str, Any], bool, str, dict[str, str] | None]] = []

    def flush(self) -> None:
        if self.pending:
            self.journal.updated_many(self.pending)
            self.pending = []

    def sending(self, op: Operation) -> None:
        if op.kind == "create":
            self.journal.intend(self.keys[op.row_number], op.row_number, op.payload)
        else:
            assert op.ticket_id is not None
            self.journal.side(op.kind, op.ticket_id, op.seq, "sending")

    def not_sent(self, op: Operation) -> None:
        if op.kind == "create":
            self.journal.not_sent(self.keys[op.row_number])
        else:
            assert op.ticket_id is not None
            self.journal.forget_side(op.kind, op.ticket_id, op.seq)

    def finished(self, op: Operation, result: RowResult, *, answered: bool) -> None:
        if op.kind in ("link", "reply"):
            assert op.ticket_id is not None
            state = {"updated": "done", "uncertain": "uncertain"}.get(result.status, "failed")
            self.journal.side(op.kind, op.ticket_id, op.seq, state, result.error)
            return
        if op.kind != "create":
            if op.ticket_id:
                ok = result.status == "updated"
                baseline = None
                if ok:
                    prior = self.baselines.get(op.ticket_id)
                    # Tickets with no baseline sent the same payload object (a bulk edit, see
                    # plan) share one result, as read-only as the payload.
                    baseline = (self._first_cells(op.payload) if prior is None
                                else apply_payload(prior, op.payload))
                    self.baselines[op.ticket_id] = baseline
                self.pending.append((op.ticket_id, op.row_number, op.payload, ok, result.error,
                                     baseline))
                if len(self.pending) >= self.BATCH:
                    self.flush()
            return
        key = self.keys[op.row_number]
        if result.status == "created" and result.ticket_id:
            self.journal.created(key, result.ticket_id, result.ticket_number,
                                 baseline=cells_of_payload(op.payload))
            self.any_created = True
        elif result.status == "uncertain":
            self.journal.uncertain(key, result.error, answered=answered)
        else:
            self.journal.failed(key, result.error)


def _sheet_statuses(table: Table, status: str) -> set[int]:
    where = table.position("syncStatus")
    if where is None:
        return set()
    column = table.frame[where]
    return {int(r) for r in column.index[column.str.strip().eq(status)]}


def _invalid(report: ValidationReport) -> dict[int, RowResult]:
    messages: dict[int, list[str]] = {}
    for p in report.problems:
        if p.row_number > 1:
            messages.setdefault(p.row_number, []).append(f"{p.column}: {p.message}")
    return {row: RowResult(row, "invalid", error="; ".join(m)) for row, m in messages.items()}


def owned_cells(results: Mapping[int, RowResult], columns: tuple[str, ...]) -> dict[int, dict[str, str]]:
    """The cells bulksync writes, among ``columns``, for each row it has an outcome for.

    Rows with the same outcome and no new ID share one (read-only) mapping, which the
    writers meet by identity."""
    error = "syncError" in columns
    ids = "ticketId" in columns
    numbers = "ticketNumber" in columns
    cells: dict[int, dict[str, str]] = {}
    same: dict[tuple[str, str], dict[str, str]] = {}  # rows with one status and error share cells
    for row, r in results.items():
        if r.status == "created" and r.ticket_id:
            c: dict[str, str] = {"syncStatus": r.status}
            if error:
                c["syncError"] = r.error
            if ids:
                c["ticketId"] = r.ticket_id
            if numbers and r.ticket_number is not None:
                c["ticketNumber"] = str(r.ticket_number)
        else:
            shared = same.get((r.status, r.error))
            if shared is None:
                shared = same[(r.status, r.error)] = (
                    {"syncStatus": r.status, "syncError": r.error} if error else {"syncStatus": r.status})
            c = shared
        cells[row] = c
    return cells


def write_back(table: Table, results: Mapping[int, RowResult]) -> tuple[Path | None, str]:
    """Write the outcomes into the sheet, or beside it when that is not safe. Never loses an ID.

    Returns where they went and, when that is not the sheet itself, why.
    """
    from bulksync.sheets.write_csv import write_csv
    from bulksync.sheets.write_xlsx import write_xlsx

    if not results:
        return None, ""
    present = {h.strip() for h in table.header}
    # A column the sheet lacks is added only when some row has a value for it.
    created = [r for r in results.values() if r.status == "created" and r.ticket_id]
    used = {"syncStatus"}
    if any(r.error for r in results.values()):
        used.add("syncError")
    if created:
        used.add("ticketId")
    if any(r.ticket_number is not None for r in created):
        used.add("ticketNumber")
    columns = tuple(n for n in OWNED_COLUMNS if n in present or n in used)
    cells = owned_cells(results, columns)
    if table.changed():
        beside = _write_beside(table.path, results)
        return beside, (f"{table.path} was changed by someone else during the run, so it was not "
                        f"overwritten; the results are in {beside} and the journal keeps them: "
                        "the next push writes them into the sheet")
    try:
        if isinstance(table.format, CsvFormat):
            return write_csv(table, cells, columns=columns), ""
        return write_xlsx(table, cells, columns=columns), ""
    except Exception as e:  # noqa: BLE001 - whatever stops the write-back, the IDs go beside the file
        beside = _write_beside(table.path, results)
        return beside, f"could not write into {table.path} ({e}); the results are in {beside}"


def results_path(path: Path) -> Path:
    return path.with_name(path.name + ".bulksync-results.csv")


def _write_beside(path: Path, results: Mapping[int, RowResult]) -> Path:
    from bulksync.sheets.atomic import replace_file
    from bulksync.sheets.write_csv import neutralise

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", *OWNED_COLUMNS])
    for row in sorted(results):
        r = results[row]
        w.writerow([row, r.ticket_id or "", r.ticket_number or "", r.status, neutralise(r.error)])
    target = results_path(path)
    replace_file(target, buf.getvalue().encode("utf-8"))
    return target
