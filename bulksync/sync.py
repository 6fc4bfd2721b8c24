"""The pipeline behind the public door: read → map → validate → plan → run → write back."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from bulksync.columns import (
    OWNED_COLUMNS,
    Rows,
    ValidationReport,
    row_contents,
    select_rows,
    validate_rows,
)
from bulksync.config import Settings, SheetOptions, resolve_settings
from bulksync.errors import (
    AuthError,
    SheetError,
    StateError,
    TargetMismatch,
    TokenMissing,
    UsageError,
)
from bulksync.gcpause import frozen_heap, paused_gc
from bulksync.journal import CreateEntry, Journal, Target, View, read_view
from bulksync.mapping import Mapped, apply_mapping
from bulksync.memo import ByIdentity
from bulksync.plan import (
    CHECK_SIDE,
    Known,
    Operation,
    Plan,
    Reconciliation,
    apply_payload,
    cells_of_payload,
    plan_rows,
    plan_sides,
)
from bulksync.report import PushResult, RowResult
from bulksync.resolve import NOT_SETTLED
from bulksync.runner import RunStats, run_operations
from bulksync.sheets.read import CsvFormat, Table, read_table

if TYPE_CHECKING:
    import httpx

    from bulksync.api import SuptaskClient
    from bulksync.runner import ProgressCallback

__all__ = ["Loaded", "delete", "deletions", "load", "plan", "push", "reset", "validate"]

TOKEN_ENV = "SUPTASK_API_TOKEN"


@dataclass(frozen=True, eq=False)
class Loaded:
    """A sheet read, mapped, validated and planned against what the state store knows.

    ``table`` is the sheet as it is on disk (what is written back into);
    ``mapped`` is it in Suptask's columns (what is sent); ``identities`` is each
    create row's (journal key, content) (see :mod:`bulksync.journal`).
    """

    table: Table
    mapped: Mapped
    rows: Rows
    report: ValidationReport
    plan: Plan
    settings: Settings
    baselines: Mapping[str, dict[str, str]]
    target: Target
    identities: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    scope: str = ""
    deleted: frozenset[str] = frozenset()
    """Tickets the state knows were deleted on this target."""


def load(path: Path | str, settings: Settings, *, force: bool = False, target: Target | None = None,
         allow_duplicates: bool = False, resend_unresolved: bool = False,
         keys: bool = False) -> Loaded:
    """Read ``path``, map its columns, validate it and plan it against the state of ``target``
    (default: the settings' API URL and token).

    Problems of the mapping (an unmapped value or user) and of the plan (a cell
    emptied that the API cannot empty) join the schema's in one report. The
    state store is only read. Raises :class:`TargetMismatch` if the sheet's ticketIds
    are known to belong to another target.
    """
    from bulksync.lock import sheet_identity

    if target is None:
        target = Target.of(settings.api_url, _given_token(None, settings))
    with paused_gc():
        table = read_table(path, sheet=settings.sheet, max_unpacked=settings.max_unpacked_mb << 20)
        scope = sheet_identity(table.path)
        mapped = apply_mapping(table, settings.mapping, users=settings.users,
                               default_requester=settings.default_requester, comments=settings.comments)
        rows = select_rows(mapped.table, settings.defaults)
        report = validate_rows(rows, table.path)
        if mapped.problems:
            report = report.with_problems(mapped.problems, superseding=True)
        if mapped.source_of:
            report = report.renamed(mapped.source_of)
        if report.sheet_invalid:
            return Loaded(table, mapped, rows, report, Plan(()), settings, {}, target, scope=scope)
        ids = rows.frame["ticketId"]
        view = read_view(target, ids.unique().tolist())
        _refuse_foreign(table.path, view, ids, report.invalid_rows)
        plan = plan_rows(rows, exclude=report.invalid_rows, force=force, baselines=view.baselines)
        if plan.problems:  # rows that cannot be planned have no operation
            report = report.with_problems(plan.problems)
        identities: dict[int, tuple[str, str]] = {}
        # Rows' identities: for the journal's keys (a push, ``keys``), or to find what the
        # state already knows; a plan against an empty state has nothing to find.
        if (keys or view.creates) and any(op.kind == "create" for op in plan.operations):
            integration = settings.mapping.integration if settings.mapping else ""
            identities = row_identities(row_contents(rows), mapped.legacy_ids, integration, scope)
        known = reconcile(plan, identities, view, scope, allow_duplicates=allow_duplicates)
        sides, held = _sides(plan, known, rows, mapped, settings, view, report.invalid_rows,
                             resend=resend_unresolved)
        plan = replace(plan, operations=plan.operations + sides, reconciliation=known, held=held)
        return Loaded(table, mapped, rows, report, plan, settings, view.baselines, view.target,
                      identities, scope, view.deleted)


def _sides(plan: Plan, known: Reconciliation, rows: Rows, mapped: Mapped, settings: Settings,
           view: View, invalid: frozenset[int], *, resend: bool,
           ) -> tuple[tuple[Operation, ...], tuple[tuple[int, str, str], ...]]:
    """The migration's links and replies, planned like everything else (see plan_sides)."""
    mapping = settings.mapping
    if mapping is None or not (mapped.legacy_ids or mapped.comments):
        return (), ()
    tickets: dict[int, str | None] = {}
    ids = rows.frame["ticketId"]
    for row, ticket_id in zip(ids.index, ids.tolist(), strict=True):
        if ticket_id and int(row) not in invalid:
            tickets[int(row)] = ticket_id
    for row, k in (*known.recovered.items(), *known.matched.items()):
        tickets[row] = k.ticket_id
    for op in plan.operations:
        if op.kind == "create":
            tickets.setdefault(op.row_number, None)  # made by this push (or found by resolving)
    return plan_sides(tickets, mapped.legacy_ids, integration=mapping.integration, url=mapping.url,
                      comments=mapped.comments, done=view.sides, resend=resend)


def row_identities(contents: Mapping[int, str], legacy_ids: Mapping[int, str], integration: str,
                   scope: str) -> dict[int, tuple[str, str]]:
    """Row → (journal key, content). A migrated row is its legacy ticket, wherever the sheet
    is; any other row is its place in this sheet and its cells."""
    out = {}
    for row, content in contents.items():
        legacy = legacy_ids.get(row)
        key = (f"legacy\x1f{integration}\x1f{legacy}" if legacy
               else f"row\x1f{scope}\x1f{content}")
        out[row] = (key, content)
    return out


def reconcile(plan: Plan, identities: Mapping[int, tuple[str, str]], view: View, scope: str, *,
              allow_duplicates: bool = False) -> Reconciliation:
    """What the state already settles of the plan's creates. A pure function of its inputs."""
    recovered: dict[int, Known] = {}
    matched: dict[int, Known] = {}
    pending: dict[int, Known] = {}
    if not identities:  # nothing to find: the state knows no create of this target
        return Reconciliation(str(view.target))
    creates = [op.row_number for op in plan.operations if op.kind == "create"]
    loose = {identities[r][1] for r in creates if identities[r][0].startswith("row\x1f")}
    others = {} if allow_duplicates else view.others(loose, scope)
    for row in creates:
        key, content = identities[row]
        entry = view.creates.get(key)
        if entry is not None and entry.state == "created":
            recovered[row] = Known(entry.ticket_id, entry.ticket_number, key=key)
        elif entry is not None and entry.state in ("sending", "uncertain"):
            pending[row] = Known(None, None, entry.error, key=key)
        elif key.startswith("row\x1f") and content in others:
            other = others[content]
            if other.state == "created":
                matched[row] = Known(other.ticket_id, other.ticket_number, key=other.key)
            else:  # e.g. a crash before another copy's write-back: resolved like our own
                pending[row] = Known(None, None, f"{other.error or STOPPED_EARLIER} (a row with the "
                                     f"same cells, in {other.scope})", key=other.key)
    return Reconciliation(str(view.target), recovered, matched, pending)


def _refuse_foreign(path: Path, view: View, ids: Any, invalid: frozenset[int]) -> None:
    foreign = [t for t in ids.tolist() if t in view.foreign]
    if foreign:
        raise TargetMismatch(path, str(view.target), view.foreign[foreign[0]], len(foreign))


def validate(path: Path | str, **options: Unpack[SheetOptions]) -> ValidationReport:
    """Every problem of the sheet at ``path``, with row numbers and columns. Sends nothing.

    Options (all optional): ``sheet`` (XLSX worksheet), ``config`` (a bulksync.toml;
    default: the one beside the sheet), ``form_id``/``channel`` (for rows that create a
    ticket), ``set`` (fields given one value on every row), ``mapping`` (a mapping file
    or preset name), ``users`` (users CSV), ``comments`` (comments CSV),
    ``default_requester``, ``legacy_url``.
    """
    return load(path, resolve_settings(path, **options)).report


def plan(path: Path | str, *, force: bool = False, api_url: str | None = None,
         token: str | None = None, allow_duplicates: bool = False, resend_unresolved: bool = False,
         **options: Unpack[SheetOptions]) -> tuple[ValidationReport, Plan]:
    """What a push would send for the valid rows, and the report. Sends nothing.

    The plan is made against what bulksync knows of the target (``api_url`` and the
    token: given, else SUPTASK_API_TOKEN; without one, the URL's one known token, if any):
    ``plan.reconciliation`` tells which creates are already settled. Updates carry only
    what changed since the last push (see :func:`push`), with the changes listed as
    old → new; ``force`` plans every row in full. Options as for :func:`validate`.
    """
    settings = resolve_settings(path, api_url=api_url, **options)
    target = Target.of(settings.api_url, _given_token(token, settings))
    loaded = load(path, settings, force=force, target=target, allow_duplicates=allow_duplicates,
                  resend_unresolved=resend_unresolved)
    return loaded.report, loaded.plan


DEFAULT_SETTLE = 60.0
"""Seconds after which a create whose answer was lost is surely done at the server."""
DEFAULT_TIMEOUT = 30.0
"""Seconds a request may take; the settle time can be no shorter."""
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
    resend_unresolved: bool = False,
    allow_duplicates: bool = False,
    settle: float = DEFAULT_SETTLE,
    timeout: float = DEFAULT_TIMEOUT,
    on_progress: ProgressCallback | None = None,
    on_log: Callable[[str], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Unpack[SheetOptions],
) -> PushResult:
    """Send the sheet's rows to Suptask and write the outcome back into the sheet.

    A sheet with invalid rows is refused (nothing sent, file untouched) unless
    ``skip_invalid``, which sends the valid rows and marks the others. The
    token comes from ``token`` or ``SUPTASK_API_TOKEN``. Every create is
    journalled in the state store of the target (see :mod:`bulksync.journal`): a
    rerun, a renamed copy or a re-export never creates a row twice, and a row whose
    cells match a ticket made from another sheet is not created unless
    ``allow_duplicates``. Only one run at a time works on a sheet
    (:class:`~bulksync.errors.SheetBusy` otherwise).
    ``only_failed`` sends just the rows that failed last time. Creates whose earlier
    outcome is unknown are resolved by reading ticket numbers before anything is resent;
    ``retry_uncertain`` first waits out ``settle`` for them; ``resend_unresolved``
    resends those that still cannot be resolved (only after checking in Suptask).
    After a push the state remembers what was sent per ticket: the next push
    sends only what changed (an unchanged row: nothing; an emptied ``assignee``
    or ``priority``: null; emptied ``tags``: []); ``force`` sends every row in full.
    With a mapping that names the legacy ID, each created ticket is linked to the
    old one, and its comments become replies, oldest first; both are journalled too.
    Called from the main thread, Ctrl-C and SIGTERM stop it cleanly. Sheet options as
    for :func:`validate`.
    """
    from bulksync.lock import sheet_lock

    settings = resolve_settings(path, api_url=api_url, concurrency=concurrency, rate=rate, **options)
    token = _token(token, settings)
    _check_settle(settle, timeout)
    target = Target.of(settings.api_url, token)
    if on_notice:
        on_notice(f"target: {target}")
    with sheet_lock(Path(path)):
        loaded = load(path, settings, force=force, target=target, allow_duplicates=allow_duplicates,
                      resend_unresolved=resend_unresolved, keys=True)
        _check_can_save(loaded.table.path, on_notice)
        report = loaded.report
        if report.sheet_invalid or (not report.valid and not skip_invalid):
            return PushResult(path=loaded.table.path, results=_invalid(report), requests=0,
                              written_to=None, ignored_columns=report.ignored_columns, report=report,
                              refused=True, target=str(target))
        run = _Run(loaded, token=token, transport=transport, on_progress=on_progress, settle=settle,
                   timeout=timeout, on_log=on_log, on_notice=on_notice)
        if skip_invalid:
            run.results.update(_invalid(report))
        with Journal(target) as journal:
            run.journal = journal
            run.hooks = _JournalHooks(journal, loaded.identities, dict(loaded.baselines), loaded.scope,
                                      exclusive=not allow_duplicates, resend_sides=resend_unresolved)
            to_send, pending = run.sort(loaded.plan, only_failed=only_failed)
            try:
                with frozen_heap():
                    if _drive(lambda stopping: run.send(stopping, to_send, pending,
                                                        retry_uncertain=retry_uncertain,
                                                        resend_unresolved=resend_unresolved)):
                        run.interrupted = True
            finally:
                try:
                    run.hooks.flush()
                except StateError as e:
                    run.fatal = run.fatal or e
        results = run.merged_results()
        if isinstance(run.stats.stopped, AuthError) and run.stats.successes == 0:
            written, note = None, ""  # a refused token: the sheet stays byte for byte as it was
        else:
            with paused_gc():
                written, note = write_back(loaded.table, results)
    stopped = run.fatal or run.stats.stopped
    return PushResult(path=loaded.table.path, results=results, requests=run.stats.requests,
                      side=dict(run.side),
                      written_to=written, ignored_columns=report.ignored_columns, report=report,
                      stopped=str(stopped) if stopped else "", error=stopped,
                      interrupted=run.interrupted, note=note, target=str(target))


def _check_can_save(path: Path, on_notice: Callable[[str], None] | None) -> None:
    """Before anything is sent: the results must have somewhere to go."""
    from bulksync.sheets.atomic import read_only, writable_folder

    reason = writable_folder(path)
    if reason is not None:
        raise SheetError(path, f"the folder cannot be written ({reason}), so the results could not "
                               "be saved; nothing was sent. Make the folder writable, or copy the "
                               "sheet into a folder you can write")
    if read_only(path) and on_notice:
        on_notice(f"{path} is read-only: it will not be overwritten; the results will go to "
                  f"{results_path(path)}")


def _check_settle(settle: float, timeout: float) -> None:
    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if settle < timeout:
        raise UsageError(
            f"--settle {settle:g} is shorter than the request timeout ({timeout:g} s): until a "
            "request's time is up the server may still be creating the ticket, so nothing could "
            "be proved absent. Give --settle of at least --timeout")


def deletions(path: Path | str, **options: Unpack[SheetOptions]) -> list[Operation]:
    """The DELETE of every row of ``path`` that has a ticketId and is not already deleted."""
    settings = resolve_settings(path, **options)
    table, rows, _ = load_for_delete(path, settings)
    return _deletions(table, rows, frozenset())[0]


def load_for_delete(path: Path | str, settings: Settings) -> tuple[Table, Rows, ValidationReport]:
    """The sheet's rows that name a ticket, checked (ticketIds are UUIDs, each once)."""
    table = read_table(path, sheet=settings.sheet, max_unpacked=settings.max_unpacked_mb << 20)
    rows = select_rows(table, settings.defaults)
    rows = replace(rows, frame=rows.frame[rows.frame["ticketId"].ne("")])
    return table, rows, validate_rows(rows, table.path)


def _deletions(table: Table, rows: Rows, gone: frozenset[str]) -> tuple[list[Operation], dict[int, RowResult]]:
    """(the DELETEs to send, rows already deleted): a row marked ``deleted`` in the sheet, or
    whose ticket the state knows was deleted on this target, is not sent again."""
    ids = rows.frame["ticketId"]
    marked = _sheet_statuses(table, "deleted")
    ops: list[Operation] = []
    done: dict[int, RowResult] = {}
    for row, ticket_id in zip(ids.index, ids.tolist(), strict=True):
        if int(row) in marked or ticket_id in gone:
            done[int(row)] = RowResult(int(row), "deleted", ticket_id=ticket_id, via="already")
        else:
            ops.append(Operation(int(row), "delete", ticket_id, {}))
    return ops, done


def delete(path: Path | str, *, token: str | None = None, api_url: str | None = None,
           concurrency: int | None = None, on_progress: ProgressCallback | None = None,
           on_log: Callable[[str], None] | None = None,
           on_notice: Callable[[str], None] | None = None,
           confirm: Callable[[list[Operation]], bool] | None = None,
           transport: httpx.AsyncBaseTransport | None = None,
           **options: Unpack[SheetOptions]) -> PushResult:
    """Delete every ticket listed (by ticketId) in the sheet; write each row's outcome back.

    The sheet is read once, under the sheet's lock: ``confirm`` (if given) is shown
    exactly the DELETEs that will be sent, and a False answer sends nothing (the
    result is ``refused``). Rows already deleted (marked so, or known deleted on this
    target) are not sent again. DELETE is idempotent: retried like an update; a 404
    after a lost answer means deleted. An invalid ticketId refuses the whole sheet.
    """
    from bulksync.lock import sheet_lock

    settings = resolve_settings(path, api_url=api_url, concurrency=concurrency, **options)
    token = _token(token, settings)
    target = Target.of(settings.api_url, token)
    if on_notice:
        on_notice(f"target: {target}")
    with sheet_lock(Path(path)):
        table, rows, report = load_for_delete(path, settings)
        _check_can_save(table.path, on_notice)
        if not report.valid:
            return PushResult(path=table.path, results=_invalid(report), requests=0, written_to=None,
                              report=report, refused=True, target=str(target))
        view = read_view(target, rows.frame["ticketId"].tolist())
        _refuse_foreign(table.path, view, rows.frame["ticketId"], frozenset())
        ops, results = _deletions(table, rows, view.deleted)
        if ops and confirm is not None and not confirm(ops):
            return PushResult(path=table.path, results={}, requests=0, written_to=None,
                              report=report, refused=True, target=str(target))
        stats = RunStats()

        async def run(stopping: asyncio.Event) -> None:
            from bulksync.api import SuptaskClient

            async with SuptaskClient(token=token, base_url=settings.api_url, transport=transport,
                                     max_connections=settings.concurrency) as client:
                await run_operations(client, ops, results, concurrency=settings.concurrency,
                                     rate=settings.rate, on_progress=on_progress, stats=stats,
                                     on_log=on_log, stopping=stopping)

        interrupted = _drive(run)
        gone = [r.ticket_id for r in results.values()
                if r.status == "deleted" and r.ticket_id and r.via != "already"]
        if gone:
            with Journal(target) as journal:
                journal.deleted_many(gone)
        if isinstance(stats.stopped, AuthError) and stats.successes == 0:
            written, note = None, ""  # a refused token: the sheet stays byte for byte as it was
        else:
            with paused_gc():
                written, note = write_back(table, results)
    return PushResult(path=table.path, results=results, requests=stats.requests, written_to=written,
                      report=report, stopped=str(stats.stopped) if stats.stopped else "", note=note,
                      error=stats.stopped, interrupted=interrupted, target=str(target))


def reset(path: Path | str, *, sheet: str | None = None) -> int:
    """Clear bulksync's cells (ticketId, ticketNumber, syncStatus, syncError) in the sheet, so
    that it can be pushed to another API as new tickets. Returns how many cells were cleared.
    The state store is left as it is: pushing the sheet again to the API it came from
    recovers the same tickets."""
    from bulksync.lock import sheet_lock
    from bulksync.sheets.write_csv import write_csv
    from bulksync.sheets.write_xlsx import write_xlsx

    with sheet_lock(Path(path)):
        table = read_table(path, sheet=sheet)
        columns = tuple(n for n in OWNED_COLUMNS if table.position(n) is not None)
        cells: dict[int, dict[str, str]] = {}
        count = 0
        for name in columns:
            where = table.position(name)
            values = table.frame[where]
            for row in values.index[values.str.strip().ne("")].tolist():
                cells.setdefault(int(row), {})[name] = ""
                count += 1
        if count:
            if isinstance(table.format, CsvFormat):
                write_csv(table, cells, columns=columns)
            else:
                write_xlsx(table, cells, columns=columns)
        return count


def _given_token(given: str | None, settings: Settings) -> str | None:
    return _token_source(given, settings)[1]


def _token_source(given: str | None, settings: Settings) -> tuple[str, str | None]:
    """(where the token came from, the token without surrounding whitespace)."""
    for source, value in (("the token given", given), (TOKEN_ENV, os.environ.get(TOKEN_ENV)),
                          (f"token in {settings.config_path}", settings.token)):
        if value and value.strip():
            return source, value.strip()
    return "", None


def _token(given: str | None, settings: Settings) -> str:
    """The API token: given, else SUPTASK_API_TOKEN, else ``token`` in the config file; its
    surrounding whitespace (a pasted newline) stripped. A token an HTTP header cannot carry
    is refused, naming where it came from and never echoing it."""
    source, token = _token_source(given, settings)
    if not token:
        raise TokenMissing()
    if any(not (" " <= c <= "~") for c in token):
        raise UsageError(f"{source} holds a character an HTTP header cannot carry (a line break, "
                         "a control or non-ASCII character): copy the token again. Nothing was sent")
    for warning in settings.warnings:
        import warnings

        warnings.warn(warning, stacklevel=3)
    return token


def _drive(work: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> bool:
    """Run ``work(stopping)`` in an event loop; True if it was interrupted. In the main thread
    the first Ctrl-C or SIGTERM sets ``stopping`` (no new requests; STOP_GRACE seconds for
    those in flight), a second one cancels it."""
    import signal
    import threading

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running here: the usual case
    else:
        raise UsageError("bulksync.push and bulksync.delete run their own event loop and cannot be "
                         "called from inside a running one: call them in a thread "
                         "(await asyncio.to_thread(bulksync.push, ...))")
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
        try:
            await task
        except asyncio.CancelledError:
            interrupted = True
        finally:
            if handle:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        interrupted = interrupted or stopping.is_set()

    asyncio.run(main())
    return interrupted


class _Run:
    """One push in progress: the results so far, the journal, and what to send."""

    def __init__(self, loaded: Loaded, *, token: str, transport: httpx.AsyncBaseTransport | None,
                 on_progress: ProgressCallback | None, settle: float, timeout: float = DEFAULT_TIMEOUT,
                 on_log: Callable[[str], None] | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.loaded = loaded
        self.token = token
        self.transport = transport
        self.on_progress = on_progress
        self.on_log = on_log
        self.on_notice = on_notice
        self.settle = settle
        self.timeout = timeout
        self.results: dict[int, RowResult] = {}
        self.stats = RunStats()
        self.keys = {row: key for row, (key, _) in loaded.identities.items()}
        self.side: Counter[str] = Counter()
        self.side_notes: dict[int, list[str]] = {}
        self.journal: Journal
        self.hooks: _JournalHooks
        self.stopping = asyncio.Event()
        self.interrupted = False
        self.sent: list[Operation] = []
        self.total = 0
        self.fatal: StateError | None = None

    def sort(self, plan: Plan, *, only_failed: bool) -> tuple[list[Operation], list[Operation]]:
        """(operations to send, creates whose earlier outcome is unknown); rows the state
        already knows created (by this sheet, a copy, or another sheet with the same cells)
        get their IDs back here."""
        known = plan.reconciliation
        for row, kind, why in plan.held:
            self.side[f"{kind}_uncertain"] += 1
            self._note(row, why)
        failed_updates = {t for t, (state, _) in self.journal.updates().items() if state == "failed"}
        entries = self.journal.creates(self.keys[op.row_number] for op in plan.operations
                                       if op.kind == "create")
        sheet_failed = _sheet_statuses(self.loaded.table, "failed") if only_failed else set()
        to_send: list[Operation] = []
        pending: list[Operation] = []
        for op in plan.operations:
            row = op.row_number
            if op.kind in ("link", "reply"):
                continue  # sent after the creates, once their tickets are known (_links, _replies)
            if op.ticket_id in self.loaded.deleted:  # bulksync deleted it: nothing to update
                self.results[row] = RowResult(row, "deleted", ticket_id=op.ticket_id, via="already")
                continue
            if not op.sends:
                if not only_failed:  # with --only-failed, other rows keep what they show
                    self.results[row] = (
                        RowResult(row, "unchanged", ticket_id=op.ticket_id) if op.kind == "unchanged"
                        else RowResult(row, "skipped", ticket_id=op.ticket_id, error="no field to change"))
                continue
            if op.kind == "create":
                if row in known.recovered:
                    k = known.recovered[row]
                    self.results[row] = RowResult(row, "created", ticket_id=k.ticket_id,
                                                  ticket_number=k.ticket_number, via="journal")
                    continue
                if row in known.matched:
                    k = known.matched[row]
                    assert k.ticket_id is not None
                    self.journal.adopt(self.keys[row], scope=self.loaded.scope,
                                       content=self.loaded.identities[row][1], row_number=row,
                                       payload=op.payload, ticket_id=k.ticket_id,
                                       ticket_number=k.ticket_number)
                    self.results[row] = RowResult(row, "created", ticket_id=k.ticket_id,
                                                  ticket_number=k.ticket_number, via="matched")
                    continue
                if row in known.pending:
                    pending.append(op)
                    continue
                entry = entries.get(self.keys[row])
                was_failed = bool(entry and entry.state == "failed")
            else:
                was_failed = op.ticket_id in failed_updates
            if only_failed and not (was_failed or row in sheet_failed):
                continue
            to_send.append(op)
        return to_send, pending

    async def send(self, stopping: asyncio.Event, to_send: list[Operation], pending: list[Operation],
                   *, retry_uncertain: bool, resend_unresolved: bool) -> None:
        from bulksync.api import SuptaskClient

        self.stopping = stopping
        settings = self.loaded.settings
        # Every request the plan may send: what to send, the creates to resolve (resent if
        # proven absent) and the links and replies. Known at the start, so the ETA is honest.
        self.total = len(to_send) + len(pending) + sum(
            1 for op in self.loaded.plan.operations if op.kind in ("link", "reply"))
        async with SuptaskClient(token=self.token, base_url=settings.api_url,
                                 transport=self.transport, timeout=self.timeout,
                                 max_connections=settings.concurrency) as client:
            try:
                await self._send(client, to_send)
                await self._resolve(client, pending, retry_uncertain=retry_uncertain,
                                    resend_unresolved=resend_unresolved)
                await self._links(client)
                await self._replies(client)
            except asyncio.CancelledError:
                self.interrupted = True
            except StateError as e:  # a result could not be recorded: stop at once
                self.fatal = e
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

    def _sides_now(self, kind: str) -> list[Operation]:
        """The plan's links (or replies) whose ticket is known now: rows created by this push
        get their ID; rows whose create did not succeed send none."""
        tickets = self._tickets()
        out = []
        for op in self.loaded.plan.operations:
            if op.kind == kind:
                ticket_id = op.ticket_id or tickets.get(op.row_number)
                if ticket_id is not None:
                    out.append(op._replace(ticket_id=ticket_id))
                else:
                    self.total -= 1  # its create did not succeed: it will not be sent
        return out

    async def _links(self, client: SuptaskClient) -> None:
        """Link each ticket made from an old one to it, once (POST /ticket/external/{id})."""
        ops = self._sides_now("link")
        if not ops or self._halted():
            return
        outcome: dict[int, RowResult] = {}
        await self._run(client, ops, self.hooks, results=outcome,
                        concurrency=self.loaded.settings.concurrency)
        self._count("link", outcome)

    async def _replies(self, client: SuptaskClient) -> None:
        """Post each ticket's comment history as replies, oldest first, each once."""
        queue: dict[int, list[Operation]] = {}
        for op in self._sides_now("reply"):
            queue.setdefault(op.row_number, []).append(op)
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
                if result.via != "journal":  # not one another run sent meanwhile
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
                       retry_uncertain: bool, resend_unresolved: bool) -> None:
        """Settle creates whose outcome is unknown, from earlier runs and from this one: each
        is resent only once reading the ticket numbers around it proved it absent (or, with
        ``resend_unresolved``, when it cannot be resolved at all)."""
        if self.stats.stopped or self.stopping.is_set():
            for op in earlier:
                self._still_uncertain(op, None)
            return
        self.total -= len(earlier)  # counted at the start; those resent are counted as sent
        now_uncertain = [op for op in self.sent if op.kind == "create"
                         and self.results[op.row_number].status == "uncertain"
                         and self.results[op.row_number].via != "busy"]
        candidates = earlier + now_uncertain
        if not candidates:
            return
        from bulksync.resolve import resolve_uncertain

        pending_keys = self.loaded.plan.reconciliation.pending
        # The entry to resolve: the row's own, or another copy's with the same cells.
        at = {op.row_number: pending_keys[op.row_number].key if op.row_number in pending_keys
              else self.keys[op.row_number] for op in candidates}
        entries = self.journal.creates()
        pending = [entries[at[op.row_number]] for op in candidates if at[op.row_number] in entries]
        if retry_uncertain:
            await self._wait_to_settle(pending)
            if self.stopping.is_set():
                for op in candidates:
                    self._still_uncertain(op, None)
                return
        # Read again: another run (a copy of the sheet) may have settled them meanwhile.
        entries = self.journal.creates()
        resend: list[Operation] = []
        unsettled: list[Operation] = []
        for op in candidates:
            key, own = at[op.row_number], self.keys[op.row_number]
            entry = entries.get(key)
            if entry is not None and entry.state == "created" and entry.ticket_id:
                self._take(op, key, entry.ticket_id, entry.ticket_number,
                           via="journal" if key == own else "matched")
            elif entry is None or entry.state == "failed":  # certainly not made: send it
                resend.append(op)
            else:
                unsettled.append(op)
        candidates = unsettled
        pending = [entries[at[op.row_number]] for op in candidates]
        created = [e for e in entries.values() if e.state == "created"]
        outcomes = await resolve_uncertain(client, pending, created, settle=self.settle,
                                            stats=self.stats)
        for op in candidates:
            key = at[op.row_number]
            outcome = outcomes.get(key)
            if outcome and outcome.verdict == "resolved":
                assert outcome.ticket_id is not None
                self.journal.created(key, outcome.ticket_id, outcome.ticket_number)
                self._take(op, key, outcome.ticket_id, outcome.ticket_number, via="resolved")
            elif (outcome and outcome.verdict == "absent") or (
                    resend_unresolved and not (outcome and outcome.reason == NOT_SETTLED)):
                if self.journal.forget_unsettled(key):
                    resend.append(op)
                else:  # settled meanwhile by the run that sent it: pushed again, it is recovered
                    self._still_uncertain(op, None, "")
            else:
                self._still_uncertain(op, entries.get(key), outcome.reason if outcome else "")
        await self._send(client, resend)

    def _take(self, op: Operation, key: str, ticket_id: str, ticket_number: int | None, *,
              via: str) -> None:
        """The row's create is the ticket the entry ``key`` made: record it (adopting another
        copy's entry under the row's own key) and give the row its ID."""
        if key != self.keys[op.row_number]:
            self.journal.adopt(self.keys[op.row_number], scope=self.loaded.scope,
                               row_number=op.row_number, content=self.loaded.identities[op.row_number][1],
                               payload=op.payload, ticket_id=ticket_id, ticket_number=ticket_number)
        self.results[op.row_number] = RowResult(op.row_number, "created", ticket_id=ticket_id,
                                                ticket_number=ticket_number, via=via)

    def _settled_at(self, entry: CreateEntry) -> float:
        return entry.settled_at if entry.settled_at is not None else entry.sent_at + self.settle

    async def _wait_to_settle(self, pending: list[CreateEntry]) -> None:
        """Wait (saying so) until the server is surely done with every pending create."""
        import time

        latest = max((self._settled_at(e) for e in pending), default=0.0)
        wait = latest - time.time()
        if wait <= 0:
            return
        if self.on_notice:
            self.on_notice(f"waiting {wait:.0f} s (until {time.strftime('%H:%M:%S', time.localtime(latest))}) "
                           f"for the server to finish {len(pending)} create(s) whose answer was lost; "
                           "then their ticket numbers are read to see whether they were made")
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=wait)
        except TimeoutError:
            pass

    def _still_uncertain(self, op: Operation, entry: CreateEntry | None, reason: str | None = None) -> None:
        import time

        if entry is None:
            pending = self.loaded.plan.reconciliation.pending.get(op.row_number)
            key = pending.key if pending else self.keys[op.row_number]
            entry = self.journal.creates([key]).get(key)
        if entry is not None and not entry.error and entry.state == "sending" and entry.run:
            error = ("another bulksync run (or an earlier one that stopped) sent this create, and "
                     "its outcome is not known yet")
        else:
            error = entry.error if entry and entry.error else STOPPED_EARLIER
        if reason == NOT_SETTLED and entry is not None:
            when = time.strftime("%H:%M:%S", time.localtime(self._settled_at(entry)))
            error = (f"{error} (the server may still be working on it: push again after {when}, or "
                     "now with --retry-uncertain, which waits until then; it is sent again only if "
                     "proven absent)")
        elif reason:
            error = (f"{error} ({reason}: look for the ticket in Suptask; if it exists, put its "
                     "ticketId into this row; if it does not, push with --resend-unresolved)")
        self.results[op.row_number] = RowResult(op.row_number, "uncertain", error=error)


STOPPED_EARLIER = ("an earlier run stopped while this create was in flight; the ticket may or "
                   "may not have been created")


class _JournalHooks:
    """The runner's steps, committed to the journal as they happen."""

    BATCH = 500

    def __init__(self, journal: Journal, identities: Mapping[int, tuple[str, str]],
                 baselines: dict[str, dict[str, str]], scope: str, *, exclusive: bool,
                 resend_sides: bool = False) -> None:
        self.journal = journal
        self.resend_sides = resend_sides
        self.identities = identities
        self.scope = scope
        self.exclusive = exclusive
        self.baselines = baselines
        self.any_created = False
        self._first_cells = ByIdentity[Mapping[str, Any], dict[str, str]](lambda p: apply_payload(None, p))
        self.pending: list[tuple[str, int, Mapping[str, Any], bool, str, dict[str, str] | None]] = []

    def flush(self) -> None:
        if self.pending:
            self.journal.updated_many(self.pending)
            self.pending = []

    def sending(self, op: Operation) -> RowResult | None:
        if op.kind != "create":
            assert op.ticket_id is not None
            held = self.journal.claim_side(op.kind, op.ticket_id, op.seq, take_over=self.resend_sides)
            if held is None:
                return None
            if held == "done":  # another run (a copy of the sheet) sent it meanwhile
                return RowResult(op.row_number, "updated", ticket_id=op.ticket_id, via="journal")
            return RowResult(op.row_number, "uncertain", via="busy", error=(
                f"another bulksync run is sending this {op.kind} now, or its outcome is unknown; "
                f"{CHECK_SIDE}"))
        key, content = self.identities[op.row_number]
        other = self.journal.intend(key, op.row_number, op.payload, scope=self.scope, content=content,
                                    exclusive_content=self.exclusive and key.startswith("row\x1f"))
        if other is None:
            return None
        # Another run (a second terminal, a copy of the sheet) got there first.
        if other.state == "created" and other.ticket_id:
            if other.scope != self.scope and key != other.key:
                self.journal.adopt(key, scope=self.scope, content=content, row_number=op.row_number,
                                   payload=op.payload, ticket_id=other.ticket_id,
                                   ticket_number=other.ticket_number)
            return RowResult(op.row_number, "created", ticket_id=other.ticket_id,
                             ticket_number=other.ticket_number,
                             via="journal" if key == other.key else "matched")
        return RowResult(op.row_number, "uncertain", via="busy", error=(
            "another bulksync run is creating this row (or one with the same cells) now, or "
            "its outcome is unknown; push again when it is done"))

    def not_sent(self, op: Operation) -> None:
        if op.kind == "create":
            self.journal.not_sent(self.identities[op.row_number][0])
        else:
            assert op.ticket_id is not None
            self.journal.forget_side(op.kind, op.ticket_id, op.seq)

    def finished(self, op: Operation, result: RowResult, *, answered: bool) -> RowResult | None:
        """Commit the outcome; returns a corrected outcome when it must not be believed."""
        if result.via:  # not sent: settled by another run's entry (see sending)
            return None
        if op.kind in ("link", "reply"):
            assert op.ticket_id is not None
            state = {"updated": "done", "uncertain": "uncertain"}.get(result.status, "failed")
            self.journal.side(op.kind, op.ticket_id, op.seq, state, result.error)
            return None
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
            return None
        key = self.identities[op.row_number][0]
        ticket_id = result.ticket_id
        if result.status == "created" and ticket_id:
            owner = self.journal.owner(ticket_id)
            if owner is not None and owner != key:  # the server answered another row's ID
                result = replace(result, status="uncertain", ticket_id=None, ticket_number=None,
                                 raw=f"ticketId {ticket_id}", error=(
                                     "HTTP 201 with the ID of another row's ticket; the ticket was "
                                     "probably created (the answer is kept in bulksync's state)"))
            else:
                self.journal.created(key, ticket_id, result.ticket_number,
                                     baseline=cells_of_payload(op.payload))
                self.any_created = True
                return None
        if result.status == "uncertain":
            self.journal.uncertain(key, result.error, answered=answered, answer=result.raw)
            return result
        self.journal.failed(key, result.error)
        return None


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
    from bulksync.sheets.atomic import read_only

    if read_only(table.path):
        beside = _write_beside(table.path, results)
        return beside, (f"{table.path} is read-only, so it was not overwritten; the results are in "
                        f"{beside} and the journal keeps them: make the sheet writable and push again "
                        "to write them in")
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
