"""The public doors, each a composition of the stages in order:
preflight (read → map → validate) → plan (against the state) → run → write back.

``validate`` stops after preflight, ``plan`` after planning; ``push`` and ``delete``
are one path (a delete is a push of a delete plan): lock the sheet, check, plan, run,
write back.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar, Unpack

from bulksync.columns import OWNED_COLUMNS, ValidationReport
from bulksync.config import DEFAULT_SETTLE, DEFAULT_TIMEOUT, Settings, SheetOptions, resolve_settings
from bulksync.errors import AuthError, SheetError, StateError, TargetMismatch, TokenMissing, UsageError
from bulksync.journal import Target, UpdateRecord, View, Window, read_view, window_of
from bulksync.plan import Known, Operation, Plan
from bulksync.preflight import prepare, prepare_listed, read_sheet, refuse_no_room_to_pull
from bulksync.reconcile import Loaded, identities_of, plan_delete, plan_push
from bulksync.results import RowResult, RunResult
from bulksync.sheets.table import CsvFormat
from bulksync.undo import RunInfo, UndoPlan, numbered, run_to_undo, sheet_follows, undone_results
from bulksync.writeback import new_sheet, results_path, run_report_path, write_back, write_run_report

if TYPE_CHECKING:
    import httpx

    from bulksync.clock import Clock
    from bulksync.engine import ProgressCallback, Sending
    from bulksync.errors import BulksyncError

__all__ = ["DEFAULT_SETTLE", "DEFAULT_TIMEOUT", "RunInfo", "Status", "UndoResult", "adelete", "apull", "apush",
           "aundo", "delete", "forget", "kept", "load", "plan", "progress_bar", "pull", "push", "reset", "runs",
           "status", "undo", "validate"]

TOKEN_ENV = "SUPTASK_API_TOKEN"
NOTHING_SENT = "nothing was sent and the sheet is unchanged"
"""What push, delete and undo have done when the state store stops them before sending."""


class _Outcome:
    """What a command has done so far, said by a :class:`StateError` that stops it (the store's
    guard does not know it; see :meth:`StateError.told`). ``said``: the words, or a function
    that gives them at that moment; the command updates it as it goes."""

    def __init__(self, said: str | Callable[[], str]) -> None:
        self.said = said

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if isinstance(error, StateError) and not error.outcome:
            raise error.told(self.said if isinstance(self.said, str) else self.said()) from None


def _ran(command: str, requests: int, written: Path | None, sheet: Path, *, finished: bool = False,
         undoing: int = 0) -> str:
    """What a push, a delete or an undo (of run ``undoing``) that the state store stopped had
    done, and what next. ``finished``: it had sent everything (the store failed after)."""
    obtained = "what they did" if undoing else "what they obtained"
    where = (f"{obtained} was written back to the sheet" if written == sheet
             else f"{obtained} is in {written}" if written else "the sheet is unchanged")
    if not requests:
        return f"nothing was sent; {where}"
    done = f"the {command} sent its {requests} request(s)" if finished else (
        f"the {command} stopped after {requests} request(s)" if undoing
        else f"the {command} stopped at once after {requests} request(s)")
    if undoing:
        return (f"{done}: {where}; undo run {undoing} again to finish recording it (a ticket deleted "
                "already counts as undone)")
    return f"{done}: {where}, and the next {command} resolves what was in flight"


def load(path: Path | str, settings: Settings, *, target: Target | None = None, force: bool = False,
         allow_duplicates: bool = False, resend_unresolved: bool = False, keys: bool = False,
         relink: bool = False, send_reformatted: bool = False, trust_ids: bool = False,
         offline: bool = False) -> Loaded:
    """Preflight and plan: read ``path``, map, validate, and plan it against the state of
    ``target`` (default: the settings' API URL and token). The state store is only read.
    Raises :class:`~bulksync.errors.TargetMismatch` if the sheet's ticketIds are known to
    belong to another target. Rows whose cells a spreadsheet application re-wrote are held
    (see :func:`~bulksync.plan.reformatting`) unless ``send_reformatted``. ``offline`` (plan,
    validate: nothing is read from the API): a sheet whose tickets were made with another
    token for the same URL is planned against that token's state, and said so."""
    from dataclasses import replace

    from bulksync.plan import excuse_reformatted, settle_holds

    if target is None:
        target = Target.of(settings.api_url, _given_token(None, settings))
    prepared = prepare(path, settings)
    identities = {} if prepared.report.sheet_invalid else identities_of(prepared, settings)
    view = read_view(target, () if prepared.report.sheet_invalid
                     else prepared.rows.frame["ticketId"].unique().tolist(), scope=prepared.scope,
                     keys=[k for i in identities.values() for k in (i.key, i.earlier) if k],
                     contents=[i.content for i in identities.values() if not i.migrated])
    if view.baselines:  # a long number re-written is held (or sent) knowing its digits, not lost
        prepared = replace(prepared, report=excuse_reformatted(prepared.report, prepared.rows, view.baselines))
    def planned(view: View) -> Loaded:
        return plan_push(prepared, settings, view, force=force, allow_duplicates=allow_duplicates,
                         resend_unresolved=resend_unresolved, keys=keys, relink=relink, trust_ids=trust_ids,
                         identities=identities if view.creates or keys else {})

    try:
        loaded = planned(view)
    except TargetMismatch as e:
        if not (offline and e.same_url):
            raise
        loaded = planned(read_view(e.other, prepared.rows.frame["ticketId"].unique().tolist(), scope=prepared.scope))
        note = (f"the sheet's tickets were made with another token ({e.other.fingerprint[:8]}) for this "
                "URL: planned against what bulksync knows of that token; push reads one ticket with "
                "the new token to check it is the same workspace")
        loaded = replace(loaded, prepared=replace(loaded.prepared, report=replace(
            loaded.report, notes=(*loaded.report.notes, note))))
    release = frozenset({"reformatted"}) if send_reformatted else frozenset()
    return replace(loaded, plan=settle_holds(loaded.plan, release=release))


def validate(path: Path | str, **options: Unpack[SheetOptions]) -> ValidationReport:
    """Every problem of the sheet at ``path``, with row numbers and columns. Sends nothing.

    Options (all optional): ``sheet`` (XLSX worksheet), ``config`` (a bulksync.toml;
    default: the one beside the sheet), ``form_id``/``channel`` (for rows that create a
    ticket), ``set`` (fields given one value on every row), ``mapping`` (a mapping file
    or preset name), ``users`` (users CSV), ``comments`` (comments CSV),
    ``default_requester``, ``legacy_url``. Rows a push would hold (not problems of the
    sheet: a value a spreadsheet re-wrote) are said in the report's notes.
    """
    loaded = load(path, resolve_settings(path, **options), offline=True)
    if not loaded.plan.holds:
        return loaded.report
    from dataclasses import replace

    from bulksync.places import row_ranges
    from bulksync.plan import hold_groups

    said = tuple(f"push holds row{'s' if len(rows) > 1 else ''} {row_ranges(rows)}: {line}"
                 for (_, line), rows in hold_groups(loaded.plan.holds).items())
    return replace(loaded.report, notes=(*loaded.report.notes, *said))


def plan(path: Path | str, *, force: bool = False, api_url: str | None = None,
         token: str | None = None, allow_duplicates: bool = False, resend_unresolved: bool = False,
         relink: bool = False, send_reformatted: bool = False, trust_ids: bool = False,
         **options: Unpack[SheetOptions]) -> tuple[ValidationReport, Plan]:
    """What a push would send for the valid rows, and the report. Sends nothing.

    The plan is made against what bulksync knows of the target (``api_url`` and the
    token: given, else SUPTASK_API_TOKEN; without one, the URL's one known token, if any):
    ``plan.reconciliation`` tells which creates are already settled. Updates carry only
    what changed since the last push (see :func:`push`), with the changes listed as
    old → new; ``force`` plans every row in full. ``plan.holds`` are the rows held back, as
    :func:`push` holds them (``send_reformatted`` as for push). Options as for :func:`validate`.
    """
    from dataclasses import replace

    from bulksync.lock import open_in

    settings = resolve_settings(path, api_url=api_url, **options)
    target = Target.of(settings.api_url, _given_token(token, settings))
    loaded = load(path, settings, force=force, target=target, allow_duplicates=allow_duplicates,
                  resend_unresolved=resend_unresolved, relink=relink, send_reformatted=send_reformatted,
                  trust_ids=trust_ids, offline=True)
    found = open_in(path)
    if found is not None:  # plan only reads, but it reads the file as last saved
        return replace(loaded.report, notes=(*loaded.report.notes, (
            f"{path} is open in {found.application} ({found.describe()}): this plan is of the file as "
            "last saved, and push refuses while it is open"))), loaded.plan
    return loaded.report, loaded.plan


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
    run_report: Path | str | bool | None = None,
    check: bool = False,
    ignore_lock_file: bool = False,
    relink: bool = False,
    send_reformatted: bool = False,
    trust_ids: bool = False,
    clock: Clock | None = None,
    **options: Unpack[SheetOptions],
) -> RunResult:
    """Send the sheet's rows to Suptask and write the outcome back into the sheet.

    A sheet with invalid rows is refused (nothing sent, file untouched) unless
    ``skip_invalid``, which sends the valid rows and marks the others. The
    token comes from ``token`` or ``SUPTASK_API_TOKEN``. Every create is
    journalled in the state store of the target (see :mod:`bulksync.journal`): a
    rerun, a renamed copy or a re-export never creates a row twice, and a row whose
    cells match a ticket made from another sheet is not created unless
    ``allow_duplicates``. Only one run at a time works on a sheet
    (:class:`~bulksync.errors.SheetBusy` otherwise), and none while Excel or LibreOffice has
    the sheet open (:class:`~bulksync.errors.SheetOpen`, raised before anything is sent, when
    its lock file stands beside the sheet; ``ignore_lock_file`` goes past one a crash left).
    ``only_failed`` sends just the rows that failed last time. Creates whose earlier
    outcome is unknown are resolved by reading ticket numbers before anything is resent;
    ``retry_uncertain`` first waits out ``settle`` for them; ``resend_unresolved``
    resends those that still cannot be resolved (only after checking in Suptask).
    After a push the state remembers what was sent per ticket: the next push
    sends only what changed (an unchanged row: nothing; an emptied ``assignee``
    or ``priority``: null; emptied ``tags``: []); ``force`` sends every row in full.
    With a mapping that names the legacy ID, each created ticket is linked to the
    old one, and its comments become replies, oldest first; both are journalled too.
    ``check``: read each ticket about to be updated first and compare each field three
    ways (see :mod:`bulksync.threeway`): a field changed both in the sheet and in Suptask is a
    ``conflict`` (the row is not sent), one changed only in Suptask is taken into the sheet;
    ``force`` sends the sheet's values anyway.
    A row whose cell holds the value bulksync last sent as a spreadsheet application re-wrote
    it on a save (``00123`` as ``123``, a long number as ``1.23457E+18``, a date in another
    format; see :func:`~bulksync.plan.reformatting`) is held: not sent, marked ``held`` with
    why, the push's result not ``ok``; ``send_reformatted`` sends such rows as they are.
    Called from the main thread, Ctrl-C and SIGTERM stop it cleanly. ``run_report``: a
    CSV of each row's outcome to write (a path), or not (False); by default a migration
    (a mapping that names the legacy ID) writes ``FILE.bulksync-report.csv`` beside the
    export. ``clock``: what the run's waits read (the settle time, the breaker, the pauses;
    see :mod:`bulksync.clock`), the real one by default. Sheet options as for :func:`validate`.
    """
    from bulksync.clock import SYSTEM
    from bulksync.engine import Sending

    settings = resolve_settings(path, api_url=api_url, concurrency=concurrency, rate=rate, **options)
    sending = Sending(token=_token(token, settings), transport=transport, timeout=timeout, settle=settle,
                      only_failed=only_failed, retry_uncertain=retry_uncertain,
                      resend_unresolved=resend_unresolved, allow_duplicates=allow_duplicates,
                      on_progress=on_progress, on_log=on_log, on_notice=on_notice, clock=clock or SYSTEM)
    _check_settle(settle, timeout)
    migration = settings.mapping is not None and settings.mapping.legacy_id is not None
    return _run(path, settings, sending, lambda target: _integration_confirmed(load(
        path, settings, force=force, target=target, allow_duplicates=allow_duplicates,
        resend_unresolved=resend_unresolved, keys=True, relink=relink, send_reformatted=send_reformatted,
        trust_ids=trust_ids), settings),
        skip_invalid=skip_invalid,
        run_report=migration if run_report is None else run_report, check=check, force=force,
        ignore_lock_file=ignore_lock_file)


def _integration_confirmed(loaded: Loaded, settings: Settings) -> Loaded:
    """``loaded``, refused while its mapping's ``integration`` is still marked ``# check``: the
    name is part of every migrated row's identity, so a guess pushed and corrected later
    would create every ticket again. validate and plan list the mark as a note."""
    mark = settings.mapping.unconfirmed_integration if settings.mapping is not None else None
    if mark is None:
        return loaded
    from bulksync.columns import Problem
    from bulksync.mapping import UNCONFIRMED_INTEGRATION

    problem = Problem(1, None, (
        f"{mark.path}, line {mark.line}: integration = {mark.value!r} is marked '# check': push "
        "refuses a guessed integration, which is part of each migrated row's identity (changed "
        "after a push, every ticket would be created again); check it and remove the mark"),
        UNCONFIRMED_INTEGRATION, str(mark.value))
    report = loaded.report.with_problems((problem,))
    return replace(loaded, prepared=replace(loaded.prepared, report=report))


def _run(path: Path | str, settings: Settings, sending: Sending,
         plan_for: Callable[[Target], Loaded], *, skip_invalid: bool = False,
         run_report: Path | str | bool = False, check: bool = False, force: bool = False,
         ignore_lock_file: bool = False) -> RunResult:
    """Lock the sheet, plan it, run the plan and write the outcomes back: push and delete."""
    from bulksync.journal import learn
    from bulksync.lock import sheet_lock
    from bulksync.run import execute
    from bulksync.threeway import PushCheck, check_first

    if not isinstance(run_report, bool):
        _check_report_path(Path(run_report), Path(path), settings)
    target = Target.of(settings.api_url, sending.token)
    if sending.on_notice:
        sending.on_notice(f"target: {target}")
    afterwards: StateError | None = None  # the store failed after the run (the run's own failure wins)
    with _Outcome(NOTHING_SENT), sheet_lock(Path(path), ignore_lock_file=ignore_lock_file):
        try:
            loaded = plan_for(target)
        except TargetMismatch as e:
            if not e.same_url:
                raise
            carry_over(e, target, sending, settings)  # a rotated token: one read decides
            loaded = plan_for(target)
        table, report = loaded.prepared.table, loaded.report
        _check_can_save(table.path, sending.on_notice)
        refused = RunResult(path=table.path, results=_invalid(report), requests=0, written_to=None,
                             ignored_columns=report.ignored_columns, report=report, refused=True,
                             target=str(target))
        if report.sheet_invalid or (not report.valid and not skip_invalid):
            return refused
        window = window_of(target)
        if sending.on_notice and window is not None and window.seconds_for(loaded.plan.requests):
            from bulksync.engine import paced

            sending.on_notice(f"{loaded.plan.requests} request(s): {paced(loaded.plan.requests, window)}")
        first = PushCheck(loaded=loaded, held={}, taken={}, learnt={}, reads=0, interrupted=False)
        relinked = loaded.plan.reconciliation.relinked
        if check or relinked:  # a relinked row's edits are sent only if Suptask agrees
            first = check_first(loaded, sending, force=force, rows=None if check else frozenset(relinked))
            if first.interrupted:  # stopped while reading: nothing is sent, nothing written
                return RunResult(path=table.path, results={}, requests=first.reads, written_to=None,
                                  report=report, interrupted=True, target=str(target))
            loaded = first.loaded
        run = execute(loaded, sending)
        if run is None:
            return refused
        results = {**(_invalid(report) if skip_invalid else {}), **first.held, **run.merged_results()}
        if isinstance(run.stats.stopped, AuthError) and run.stats.successes == 0:
            written, note = None, ""  # a refused token: the sheet stays byte for byte as it was
        else:
            written, note = write_back(table, results, {**first.taken, **_ids_of(relinked, first.taken)})
            if written == table.path:  # the sheet holds what the check took: the baseline learns it
                try:
                    learn(target, first.learnt)
                except StateError as e:
                    afterwards = e
            note = "; ".join(n for n in (note, _still_open(written)) if n)
        kept = None
        if run_report is not False and results:
            kept, failed = _write_run_report(loaded, results, run.side_rows, run_report)
            note = "; ".join(n for n in (note, failed) if n)
    said = _ran(sending.command, run.stats.requests, written, table.path, finished=run.fatal is None)
    stopped = _first(run.fatal, run.stats.stopped, afterwards, said=said)
    return RunResult(path=table.path, results=results, requests=run.stats.requests + first.reads,
                      side=dict(run.side), written_to=written, ignored_columns=report.ignored_columns,
                      report=report, stopped=str(stopped) if stopped else "", error=stopped,
                      interrupted=run.interrupted, note=note, target=str(target), run_report=kept,
                      holds=loaded.plan.holds)


def _first(*errors: BulksyncError | None, said: str) -> BulksyncError | None:
    """The error that stopped a run: the first of ``errors`` (the run's own, then any later
    one), a StateError saying what the run had done (``said``)."""
    first = next((e for e in errors if e is not None), None)
    return first.told(said) if isinstance(first, StateError) else first


def carry_over(mismatch: TargetMismatch[Target], target: Target, sending: Sending, settings: Settings) -> None:
    """A sheet whose tickets were made with another token for the same URL (tokens get
    rotated): read one of them with this token. The same ticket answered means the same
    workspace, and the earlier token's state becomes this one's (said once); anything else
    (401, 403, 404, another ticket) re-raises ``mismatch``, saying what was read."""
    from bulksync.engine import Read, read_tickets
    from bulksync.journal import Journal

    earlier = mismatch.other
    numbers = {**mismatch.numbers, **{e.ticket_id: e.ticket_number for e in read_view(
        earlier, mismatch.ticket_ids, scope="").creates.values()
                                      if e.ticket_id and e.ticket_number is not None}}
    known = [t for t in mismatch.ticket_ids if t in numbers]
    if not known:
        raise mismatch.tried("no ticket number of the sheet's tickets is known to read them by") from None
    ticket_id, number = known[0], numbers[known[0]]
    if sending.on_notice:
        sending.on_notice(f"the sheet's tickets were made with another token ({earlier.fingerprint[:8]}) "
                          f"for this URL: reading ticket {number} with this one (one read) to see "
                          "whether it is the same workspace")

    got, stats, _ = read_tickets([Read(0, number, ticket_id)], replace(sending, on_progress=None), settings.api_url)
    ticket, why = got.get(0, (None, str(stats.stopped) if stats.stopped else "no answer"))
    if ticket is None or ticket.ticket_id != ticket_id:
        found = why or f"ticket {number} is {ticket.ticket_id if ticket else '?'}, not {ticket_id}"
        if stats.stopped is not None:
            found = f"ticket {number}: {str(stats.stopped).split('; ')[0]}"
        raise mismatch.tried(f"reading it answered {found}") from None
    with Journal(target) as journal:
        journal.same_workspace(earlier)
    if sending.on_notice:
        sending.on_notice(f"ticket {number} is the same ticket with this token: the same workspace; "
                          f"bulksync's state for token {earlier.fingerprint[:8]} carries over to "
                          f"token {target.fingerprint[:8]}")


def _ids_of(relinked: Mapping[int, Known], taken: Mapping[int, Mapping[str, str]]
           ) -> dict[int, dict[str, str]]:
    """The IDs ``--relink`` gives back to rows, as cells to write (beside what the check took)."""
    out = {}
    for row, known in relinked.items():
        cells = {**taken.get(row, {}), "ticketId": str(known.ticket_id)}
        if known.ticket_number is not None:
            cells["ticketNumber"] = str(known.ticket_number)
        out[row] = cells
    return out


def _write_run_report(loaded: Loaded, results: Mapping[int, RowResult],
                  sides: Mapping[int, Mapping[str, int]], where: Path | str | bool
                  ) -> tuple[Path | None, str]:
    """(the run report written, or why it could not be): its failure never loses an ID,
    which the sheet (or the results file) and the journal hold."""
    table = loaded.prepared.table
    target = run_report_path(table.path) if isinstance(where, bool) else Path(where)
    operations = {op.row_number: op.kind for op in loaded.plan.operations
                  if op.kind not in ("link", "reply")}
    operations.update({h.row_number: h.operation.kind for h in loaded.plan.holds if h.operation})
    # A rerun's unchanged rows still name their tickets: what the sheet already holds.
    at_id, at_number = table.position("ticketId"), table.position("ticketNumber")

    def cell(row: int, at: int | None) -> str:
        return "" if at is None else str(table.frame.at[row, at]).strip()

    known = {row: (cell(row, at_id), cell(row, at_number)) for row in results if row in table.frame.index}
    try:
        return write_run_report(target, results, operations=operations, legacy_ids=loaded.prepared.mapped.legacy_ids, sides=sides,
                            known=known), ""
    except OSError as e:
        return None, f"the run report could not be written to {target} ({e.strerror})"


def _check_report_path(report: Path, sheet: Path, settings: Settings) -> None:
    """A run report never replaces a file the run reads or writes (the sheet, its results
    file, the config, the users file): refused before anything is sent."""
    import os

    mine = [sheet, results_path(sheet), settings.config_path,
            getattr(settings.users, "path", None)]
    taken = {os.path.realpath(p) for p in mine if p is not None}
    if os.path.realpath(report) in taken:
        raise UsageError(f"--report {report} would overwrite a file this run reads or writes; "
                         "give another path. Nothing was sent")
    if report.is_dir():
        raise UsageError(f"--report {report} is a folder; give a file name. Nothing was sent")


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


def _still_open(written: Path | None) -> str:
    """After writing into a sheet that a lock file says is open (one was ignored, or the
    sheet was opened during the run): its window shows the file as it was, and saving
    from it would put that back over what was just written."""
    from bulksync.lock import open_in

    found = None if written is None else open_in(written)
    if found is None:
        return ""
    return (f"{written} is open in {found.application} ({found.describe()}): that window does not "
            "show what was just written; close it without saving, then open the file again (a save "
            "from it would put back the cells as they were before this run)")


def _check_settle(settle: float, timeout: float) -> None:
    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if settle < timeout:
        raise UsageError(
            f"--settle {settle:g} is shorter than the request timeout ({timeout:g} s): until a "
            "request's time is up the server may still be creating the ticket, so nothing could "
            "be proved absent. Give --settle of at least --timeout")


def delete(path: Path | str, *, token: str | None = None, api_url: str | None = None,
           concurrency: int | None = None, on_progress: ProgressCallback | None = None,
           on_log: Callable[[str], None] | None = None,
           on_notice: Callable[[str], None] | None = None,
           confirm: Callable[[list[Operation]], bool] | None = None,
           transport: httpx.AsyncBaseTransport | None = None,
           run_report: Path | str | bool = False, ignore_lock_file: bool = False,
           clock: Clock | None = None, **options: Unpack[SheetOptions]) -> RunResult:
    """Delete every ticket listed (by ticketId) in the sheet; write each row's outcome back.

    The sheet is read once, under the sheet's lock: ``confirm`` (if given) is shown
    exactly the DELETEs that will be sent, and a False answer sends nothing (the
    result is ``refused``). Rows already deleted (marked so, or known deleted on this
    target) are not sent again. DELETE is idempotent: retried like an update; a 404
    after a lost answer means deleted. An invalid ticketId refuses the whole sheet. As for
    :func:`push`, a sheet open in Excel or LibreOffice is refused unless ``ignore_lock_file``;
    ``clock`` as for :func:`push`.
    """
    from bulksync.clock import SYSTEM
    from bulksync.engine import Sending

    settings = resolve_settings(path, api_url=api_url, concurrency=concurrency, **options)
    sending = Sending(token=_token(token, settings), transport=transport, confirm=confirm,
                      on_progress=on_progress, on_log=on_log, on_notice=on_notice, command="delete",
                      clock=clock or SYSTEM)

    def plan_for(target: Target) -> Loaded:
        prepared = prepare_listed(path, settings)
        view = read_view(target, prepared.rows.frame["ticketId"].tolist(), scope=prepared.scope)
        return plan_delete(prepared, settings, view)

    return _run(path, settings, sending, plan_for, run_report=run_report, ignore_lock_file=ignore_lock_file)


def pull(path: Path | str, *, token: str | None = None, api_url: str | None = None,
         columns: Sequence[str] | None = None, limit: int | None = None,
         numbers: Sequence[int] | None = None,
         on_progress: ProgressCallback | None = None, on_notice: Callable[[str], None] | None = None,
         transport: httpx.AsyncBaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT,
         ignore_lock_file: bool = False, clock: Clock | None = None,
         **options: Unpack[SheetOptions]) -> RunResult:
    """Fill the sheet's Suptask columns (status, priority, assignee, requester, tags,
    description where the answer has it, custom fields) from the tickets as they are now.

    Reads ``GET /ticket/{ticketNumber}`` for each row with a ``ticketNumber`` (or a
    ``ticketId`` whose number the state knows), in sheet order, ``limit`` at most; only the
    cells that changed are written (``columns`` limits which), each row's outcome is
    marked (``pulled``, or ``failed`` with why: a 404, 403 or 500 on one ticket does not stop
    the others), and what was read becomes the baseline, so the next push sends only what
    is edited after the pull. Ctrl-C stops and writes back what was read. ``numbers``: make
    ``path`` (a new .csv or .xlsx) a sheet of those tickets, ready for a round trip; numbers
    that are no ticket of the team are marked on their rows, not fatal. As for :func:`push`,
    a sheet open in Excel or LibreOffice is refused unless ``ignore_lock_file``. ``clock``: what
    the pauses between reads wait on, as for :func:`push`.
    """
    from bulksync.api import ReadTicket
    from bulksync.clock import SYSTEM
    from bulksync.engine import Read, Sending, budget, read_tickets
    from bulksync.journal import Journal
    from bulksync.lock import sheet_lock
    from bulksync.pulling import columns_to_pull, plan_reads, resumed, settle_reads
    from bulksync.reconcile import refuse_foreign, ticket_numbers

    settings = resolve_settings(path, api_url=api_url, **options)
    secret = _token(token, settings)
    clock = clock or SYSTEM
    target = Target.of(settings.api_url, secret)
    sending = Sending(token=secret, transport=transport, timeout=timeout, on_progress=on_progress,
                      on_notice=on_notice, clock=clock)
    if on_notice:
        on_notice(f"target: {target}")
    with _Outcome("the sheet is unchanged") as telling, sheet_lock(Path(path), ignore_lock_file=ignore_lock_file):
        if numbers is not None:
            return _pull_numbers(Path(path), numbers, settings, sending=sending, target=target)
        listed = prepare_listed(path, settings)
        table = listed.table
        wanted = columns_to_pull(table, columns, settings.columns, settings.own_columns)
        # What the write-back would refuse is refused before the first read, in plan's words.
        refuse_no_room_to_pull(table, adding=tuple(c for c, at in wanted.items() if at is None))
        where = table.position("ticketId")
        ids = [] if where is None else table.frame[where].str.strip().tolist()
        view = read_view(target, ids, scope=listed.scope)
        if where is not None:
            try:
                refuse_foreign(table.path, view, table.frame[where].str.strip(), ticket_numbers(listed, view))
            except TargetMismatch as e:
                if not e.same_url:
                    raise
                carry_over(e, target, sending, settings)
                view = read_view(target, ids, scope=listed.scope)
        every, results = plan_reads(table, view)
        _check_can_save(table.path, on_notice)
        with Journal(target) as journal:
            since = journal.pull_since(listed.scope)
            reads, got = resumed(every, journal.reads(r.number for r in every), since, limit,
                                 journal.baseline_times(r.ticket_id for r in every if r.ticket_id))
            if on_notice and got:
                on_notice(f"resuming the pull begun at {time.strftime('%H:%M:%S', time.localtime(since))}: "
                          f"{len(got)} ticket(s) already read are not read again")
            if on_notice and reads:
                on_notice(budget(len(reads), journal.window(reads=True)))

            recorded = 0

            def record(read: Read, ticket: ReadTicket | None, error: str) -> None:
                nonlocal recorded
                journal.read_done(read.number, None if ticket is None else asdict(ticket), error)
                recorded += 1

            telling.said = lambda: (f"the pull stopped after {recorded} ticket(s) read and recorded: the sheet "
                                    "is unchanged, and the next pull does not read those again")

            done_now, stats, interrupted = read_tickets(reads, sending, settings.api_url, record=record)
            got.update(done_now)
            if stats.pacer is not None and (window := stats.pacer.window()) is not None:
                journal.learnt_window(window, reads=True)
            if stats.stopped is not None:  # a refused token or an API gone: no row marked, nothing written
                raise stats.stopped
            done = [r for r in every if r.row in got]
            outcome = settle_reads(table, wanted, done, got, view.baselines)
            results.update(outcome.results)
            written, note = write_back(table, results, outcome.values)
            note = "; ".join(n for n in (note, _still_open(written)) if n)
            if written == table.path:  # the sheet holds what was read: now it is the baseline
                telling.said = (f"the pull wrote the sheet ({len(results)} row(s) marked), but not all it read "
                                "is recorded as the tickets' last known values: pull again before the next "
                                "push")
                if outcome.baselines:
                    journal.updated_many(outcome.baselines, seen_at=since)
                if len(done) == len(every):  # every row read since the pull began: it is done
                    journal.pull_finished(listed.scope)
    stopped = stats.stopped
    return RunResult(path=table.path, results=results, requests=stats.requests, written_to=written,
                      note=note, target=str(target), interrupted=interrupted,
                      stopped=str(stopped) if stopped else "", error=stopped,
                      cells_changed=sum(len(v) for v in outcome.values.values()))


def _pull_numbers(path: Path, numbers: Sequence[int], settings: Settings, *, sending: Sending,
                  target: Target) -> RunResult:
    """``pull --numbers``: read those tickets and make ``path`` (new) a sheet of the ones that
    exist, ready for a round trip (each row's ticketId, its fields, what was read as the
    baseline). Numbers that are no ticket of the team are listed, not fatal."""
    from bulksync.engine import Read, budget, read_tickets
    from bulksync.journal import Journal
    from bulksync.pulling import PULLABLE, new_baseline
    from bulksync.untrusted import neutralise

    if path.exists():
        raise UsageError(f"{path} exists: --numbers makes a new sheet (give a new file name, or pull "
                         "the sheet you have)")
    if not numbers:
        raise UsageError("--numbers names no ticket number")
    reads = [Read(i, n, None) for i, n in enumerate(numbers)]
    if sending.on_notice:
        sending.on_notice(budget(len(reads)))
    got, stats, interrupted = read_tickets(reads, sending, settings.api_url)
    if stats.stopped is not None:  # a refused token or an API gone: no sheet is made
        raise stats.stopped
    found = [(read, ticket) for read in reads if (ticket := got.get(read.row, (None, ""))[0]) is not None]
    missing = [got[read.row][1] for read in reads if read.row in got and got[read.row][0] is None]
    custom = sorted({c for _, t in found for c in t.cells if c.startswith("customField_")})
    columns = dict.fromkeys((*PULLABLE, *custom))
    header = ["ticketNumber", "ticketId", *columns, "syncStatus"]
    rows = [[str(read.number), ticket.ticket_id or "", *(neutralise(ticket.cells.get(c, "")) for c in columns),
             "pulled"] for read, ticket in found]
    new_sheet(path, header, rows)
    records = [
        UpdateRecord(ticket_id=t.ticket_id, row_number=i + 2, payload={}, ok=True, error="",
                     baseline=new_baseline(None, t.cells))
        for i, (_, t) in enumerate(found) if t.ticket_id]
    if records:
        try:
            with Journal(target) as journal:
                journal.updated_many(records)
        except StateError as e:
            raise e.told(f"{path} was made with the {len(found)} ticket(s) read, but what they hold is not "
                         "recorded: pull it again once there is room, before pushing it") from None
    results = {i + 2: RowResult(i + 2, "pulled", ticket_id=t.ticket_id) for i, (_, t) in enumerate(found)}
    note = f"not in the sheet (no such ticket of this team): {'; '.join(missing)}" if missing else ""
    return RunResult(path=path, results=results, requests=stats.requests, written_to=path, note=note,
                      target=str(target), interrupted=interrupted, error=stats.stopped,
                      stopped=str(stats.stopped) if stats.stopped else "")


def reset(path: Path | str, *, sheet: str | None = None, encoding: str | None = None,
          delimiter: str | None = None, header_row: int | None = None,
          ignore_lock_file: bool = False) -> int:
    """Clear bulksync's cells (ticketId, ticketNumber, syncStatus, syncError) in the sheet, so
    that it can be pushed to another API as new tickets. Returns how many cells were cleared.
    The state store is left as it is: pushing the sheet again to the API it came from
    recovers the same tickets. A sheet open in Excel or LibreOffice is refused
    (:class:`~bulksync.errors.SheetOpen`) unless ``ignore_lock_file``."""
    from bulksync.lock import sheet_lock
    from bulksync.sheets.write_csv import write_csv
    from bulksync.sheets.write_xlsx import write_xlsx

    with sheet_lock(Path(path), ignore_lock_file=ignore_lock_file):
        # As push reads it: bulksync.toml beside the sheet gives its header row, encoding, ...
        table = read_sheet(path, resolve_settings(path, sheet=sheet, encoding=encoding, delimiter=delimiter,
                                                  header_row=header_row, sheet_only=True))
        columns = tuple(n for n in OWNED_COLUMNS if table.position(n) is not None)
        cells: dict[int, dict[str, str]] = {}
        count = 0
        formulas = table.errors | table.uncached  # the user's formulas, not bulksync's values
        for name in columns:
            where = table.position(name)
            values = table.frame[where]
            for row in values.index[values.str.strip().ne("")].tolist():
                if (int(row), where) not in formulas:
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


def _invalid(report: ValidationReport) -> dict[int, RowResult]:
    messages: dict[int, list[str]] = {}
    for p in report.problems:
        if p.row_number > report.header_row:
            messages.setdefault(p.row_number, []).append(f"{p.column}: {p.message}")
    return {row: RowResult(row, "invalid", error="; ".join(m)) for row, m in messages.items()}


# -- runs and undo --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UndoResult:
    """What an undo planned (``plan``) and, unless it was a dry run or declined, what it did."""

    run: RunInfo
    plan: UndoPlan
    result: RunResult | None = None
    reads: int = 0


def runs(path: Path | str, *, api_url: str | None = None, token: str | None = None,
         **options: Unpack[SheetOptions]) -> list[RunInfo]:
    """The runs bulksync made from the sheet at ``path`` on the target (``api_url`` and the
    token, as for :func:`plan`), oldest first. Reads the state store only."""
    from bulksync.journal import store_path
    from bulksync.sheets.read import sheet_identity

    settings = resolve_settings(path, api_url=api_url, **options)
    target = Target.of(settings.api_url, _given_token(token, settings))
    if not store_path().exists():
        return []
    from bulksync.journal import Journal

    with Journal(read_view(target, (), scope="").target) as journal:
        return numbered(journal.runs(sheet_identity(Path(path))), str(target))


def kept(path: Path | str, *, api_url: str | None = None, token: str | None = None,
         **options: Unpack[SheetOptions]) -> dict[str, int]:
    """What bulksync's state keeps for the sheet at ``path`` on the target: its tickets' fields
    as last synced (``tickets``), its rows' identities (``rows``), its runs (``runs``)."""
    from bulksync.journal import Journal

    kept_for = _kept_for(path, api_url=api_url, token=token, **options)
    if kept_for is None:
        return {"tickets": 0, "rows": 0, "runs": 0}
    target, scope, ids = kept_for
    with Journal(target) as journal:
        return journal.holding(scope, ids)


def forget(path: Path | str, *, api_url: str | None = None, token: str | None = None,
           **options: Unpack[SheetOptions]) -> dict[str, int]:
    """Remove what :func:`kept` counts, the text gone from the store's bytes, and return what
    was there. Forgetting gives up undo of its runs, the recovery of its rows after a crash,
    and the three-way check of its tickets (``push --check`` without a baseline). A sheet
    being pushed is refused (:class:`~bulksync.errors.SheetBusy`)."""
    from bulksync.journal import Journal
    from bulksync.lock import sheet_lock

    kept_for = _kept_for(path, api_url=api_url, token=token, **options)
    if kept_for is None:
        return {"tickets": 0, "rows": 0, "runs": 0}
    target, scope, ids = kept_for
    with sheet_lock(Path(path), ignore_lock_file=True), Journal(target) as journal:
        return journal.forget(scope, ids)


def _kept_for(path: Path | str, *, api_url: str | None, token: str | None,
              **options: Unpack[SheetOptions]) -> tuple[Target, str, list[str]] | None:
    """The target, the sheet's scope and its ticketIds, as the state knows them; None when
    there is no state store yet."""
    from bulksync.journal import store_path
    from bulksync.sheets.read import sheet_identity

    settings = resolve_settings(path, api_url=api_url, **options)
    target = read_view(Target.of(settings.api_url, _given_token(token, settings)), (), scope="").target
    if not store_path().exists():
        return None
    table = read_sheet(path, settings)
    where = table.position("ticketId")
    ids = [] if where is None else [t for t in table.frame[where].str.strip().tolist() if t]
    return target, sheet_identity(table.path), ids


def undo(path: Path | str, *, run: int | None = None, token: str | None = None, api_url: str | None = None,
         check: bool = True, dry_run: bool = False,
         confirm: Callable[[list[Operation]], bool] | None = None,
         on_progress: ProgressCallback | None = None, on_notice: Callable[[str], None] | None = None,
         transport: httpx.AsyncBaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT,
         ignore_lock_file: bool = False, clock: Clock | None = None,
         **options: Unpack[SheetOptions]) -> UndoResult:
    """Take back run ``run`` of the sheet (as :func:`runs` numbers them; default: the last
    push or delete that changed something and is not undone): delete the tickets it created,
    and put back each field it changed on the tickets it updated, and only those. Each
    updated ticket is read first (paced, one read per ticket): a field changed in Suptask
    since is kept and reported; ``check=False`` skips the reads. What cannot be undone
    (deletes; links and replies on tickets the run did not create) is said first through
    ``on_notice``. ``dry_run``: plan only, send nothing. ``confirm`` sees exactly the requests
    about to be sent. The sheet follows: rows whose tickets were deleted lose bulksync's
    cells (pushed again, they are created anew), restored fields get their earlier values,
    and each row's syncStatus says ``undone`` or why not. Journalled like a push: stopped
    and run again, it finishes the job; a second undo of the same run sends nothing.
    ``clock`` as for :func:`push`."""
    from bulksync.clock import SYSTEM
    from bulksync.engine import Sending
    from bulksync.journal import Journal
    from bulksync.lock import sheet_lock
    from bulksync.run import execute
    from bulksync.undo import plan_undo

    settings = resolve_settings(path, api_url=api_url, **options)
    sending = Sending(token=_token(token, settings), transport=transport, timeout=timeout, confirm=confirm,
                      on_progress=on_progress, on_notice=on_notice, command="undo", clock=clock or SYSTEM)
    target = Target.of(settings.api_url, sending.token)
    if on_notice:
        on_notice(f"target: {target}")
    with _Outcome(NOTHING_SENT), sheet_lock(Path(path), ignore_lock_file=ignore_lock_file):
        prepared = prepare_listed(path, settings)
        table = prepared.table
        at_id, at_number = table.position("ticketId"), table.position("ticketNumber")
        ids = [""] * len(table.frame) if at_id is None else table.frame[at_id].str.strip().tolist()
        rows = {t: int(r) for r, t in zip(table.frame.index.tolist(), ids, strict=True) if t}
        with Journal(target) as journal:
            records = journal.runs(prepared.scope)
            info = numbered(records, str(target))
            chosen = run_to_undo(info, run, table.path)
            if chosen.undone:  # its creates are forgotten, its fields put back: nothing to send
                if on_notice:
                    on_notice(f"run {chosen.number} is undone already: nothing to send")
                return UndoResult(run=chosen, plan=UndoPlan())
            effects = journal.effects(records[chosen.number - 1].run)
            touched = [t for t, *_ in effects.created] + [c.ticket_id for c in effects.updated]
            numbers = journal.numbers(touched)
            order = {r.run: i for i, r in enumerate(records, 1)}
            later = {t: {f: order.get(r, 0) for f, r in fields.items()}
                     for t, fields in journal.later_changes(records[chosen.number - 1].run).items()}
        if at_id is not None and at_number is not None:
            for ticket_id, cell in zip(ids, table.frame[at_number].str.strip().tolist(), strict=True):
                if ticket_id and cell.isdigit():
                    numbers.setdefault(ticket_id, int(cell))
        view = read_view(target, [*touched, *rows], scope=prepared.scope)
        made = {t for t, *_ in effects.created}
        wanted = [t for t, *_ in effects.created if t not in view.deleted] + [
            c.ticket_id for c in effects.updated if c.before is not None and c.ticket_id not in made
            and c.ticket_id not in view.deleted]
        server, reads = (_read_now(wanted, numbers, sending, settings.api_url, window_of(target, reads=True)) if check
                         else (None, 0))
        if wanted and not check and on_notice:
            on_notice("--no-check: the tickets are not read first, so a field changed in Suptask since "
                      "that run is put back over that change")
        undoing = plan_undo(effects, rows=rows, numbers=numbers, deleted=view.deleted, server=server,
                            later=later, made_as={t: view.baselines[t] for t in made if t in view.baselines})
        if on_notice:
            for line in (*undoing.cannot, *undoing.kept):
                on_notice(f"cannot be undone: {line}" if line in undoing.cannot else line)
        if dry_run or (not undoing.operations and not undoing.settled):
            return UndoResult(run=chosen, plan=undoing, reads=reads)
        # One request at a time: sent in exactly the order the dry run and the confirmation show.
        loaded = Loaded(prepared, Plan(undoing.operations), replace(settings, concurrency=1), target,
                        view.baselines, deleted=view.deleted)
        done = execute(loaded, replace(sending, undoes=records[chosen.number - 1].run))
        if done is None:  # declined: nothing sent, nothing written
            return UndoResult(run=chosen, plan=undoing, reads=reads)
        results = undone_results(undoing, done.merged_results())
        gone = [op.ticket_id for op in undoing.operations
                if op.kind == "delete" and op.ticket_id and op.row_number in results
                and results[op.row_number].status == "undone"]
        sent_all = all(op.row_number in results for op in undoing.operations)
        whole = sent_all and not done.interrupted and any(r.status == "undone" for r in results.values()) and all(
            r.status in ("undone", "kept") for r in results.values())
        shown = {row: r for row, r in results.items() if row > 0}
        values = sheet_follows(undoing, shown, table, mapped=bool(
            chosen.counts.get("linked") or (settings.mapping is not None and settings.mapping.legacy_id)))
        written, note = write_back(table, shown, values)
        # Only once the sheet holds it: else the run is undone again, and the sheet with it.
        afterwards = (_record_undo(target, records[chosen.number - 1].run, gone, whole=whole, learnt=undoing.learnt)
                      if written == table.path or not shown else None)
        kept_report = None
        migration = chosen.counts.get("linked") or (settings.mapping is not None and settings.mapping.legacy_id)
        if migration and shown:  # a migration's run report says what its undo did
            kept_report, failed = _write_run_report(loaded, shown, {}, where=True)
            note = "; ".join(n for n in (note, failed) if n)
    said = _ran("undo", done.stats.requests, written, table.path, finished=done.fatal is None,
                undoing=chosen.number)
    stopped = _first(done.fatal, done.stats.stopped, afterwards, said=said)
    return UndoResult(run=chosen, plan=undoing, reads=reads, result=RunResult(
        path=table.path, results=shown, requests=done.stats.requests + reads, written_to=written,
        note=note, target=str(target), stopped=str(stopped) if stopped else "", error=stopped,
        interrupted=done.interrupted, run_report=kept_report))


def _record_undo(target: Target, run: str, gone: Sequence[str], *, whole: bool,
                 learnt: Mapping[str, Mapping[str, str]]) -> StateError | None:
    """Record what an undo of ``run`` did (its creates ``gone``; ``whole``: the run is undone)
    and what it learnt, once the sheet holds it: the store's error, if it fails (said after
    the run's own failure, if any)."""
    from bulksync.journal import Journal, learn

    try:
        with Journal(target) as journal:
            journal.undone(run, gone, whole=whole)
        learn(target, learnt)
    except StateError as e:
        return e
    return None


def _read_now(wanted: Sequence[str], numbers: Mapping[str, int], sending: Sending, api_url: str,
              window: Window | None = None) -> tuple[dict[str, Mapping[str, str] | str], int]:
    """Each ticket in ``wanted`` as Suptask holds it now (its cells, or why it could not be
    read), and how many requests that took: what an undo checks before it puts a field back."""
    from bulksync.engine import Read, budget, read_tickets

    server: dict[str, Mapping[str, str] | str] = {
        t: "its number is not known (add a ticketNumber column, or undo with --no-check)"
        for t in wanted if t not in numbers}
    asked = [Read(i, numbers[t], t) for i, t in enumerate(wanted) if t in numbers]
    if not asked:
        return server, 0
    if sending.on_notice:
        sending.on_notice(f"undo reads each ticket it would put back first: {budget(len(asked), window)}")
    got, stats, interrupted = read_tickets(asked, sending, api_url)
    if stats.stopped is not None:
        raise stats.stopped
    if interrupted:
        raise UsageError("undo was stopped while reading the tickets: nothing was sent")
    for read in asked:
        ticket, why = got.get(read.row, (None, "not read"))
        server[str(read.ticket_id)] = ticket.cells if ticket is not None else why
    return server, stats.requests


# -- status ---------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Status:
    """The target and token in effect, as ``bulksync status`` says them."""

    url: str
    fingerprint: str
    local: bool
    accepted: bool
    answer: str
    """What the one read answered (``HTTP 404: no such ticket (the token is good)``...)."""
    window: Window | None
    store: str
    known: Mapping[str, int]

    def as_dict(self) -> dict[str, object]:
        window = None if self.window is None else {
            "limit": self.window.limit, "span": self.window.span, "remaining": self.window.remaining,
            "reset_in": None if self.window.reset_at is None else round(max(0.0, self.window.reset_at - time.time()), 1)}
        return {"url": self.url, "token": self.fingerprint, "local": self.local, "accepted": self.accepted,
                "answer": self.answer, "window": window, "store": self.store, **self.known}


def status(*, api_url: str | None = None, token: str | None = None,
           transport: httpx.AsyncBaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT) -> Status:
    """Whether the API accepts the token (one read, of a ticket number that need not exist: a
    404 means the token is good), the rate-limit window its answer tells, and what the state
    store knows of this target. Never prints or keeps the token."""
    from bulksync.engine import probe
    from bulksync.journal import Journal, store_path

    settings = resolve_settings(Path.cwd() / "-", api_url=api_url)  # bulksync.toml here, if any
    secret = _token(token, settings)
    target = Target.of(settings.api_url, secret)
    got = probe("/ticket/1", token=secret, api_url=settings.api_url, transport=transport, timeout=timeout)
    code = got.status
    accepted = code in (200, 404)
    answer = {200: "HTTP 200: ticket 1 read (the token is good)",
              404: "HTTP 404: no ticket 1 (the token is good)",
              429: "HTTP 429: the rate limit is spent for now (the token was not checked; see the window)",
              0: f"no answer ({got.failure or 'the API could not be reached'})"}.get(
        code, f"HTTP {code}" + (": the token is refused" if code in (401, 403) else ""))
    known: Mapping[str, int] = {"sheets": 0, "tickets": 0, "runs": 0}
    if store_path().exists() and accepted:  # a refused token leaves no trace in the store
        with Journal(target) as journal:
            known = journal.counts()
            if got.window is not None:
                journal.learnt_window(got.window, reads=True)
    return Status(url=target.url, fingerprint=target.fingerprint, local=target.local, accepted=accepted,
                  answer=answer, window=got.window, store=str(store_path()), known=known)


# -- the awaitable doors, for code that runs an event loop (a notebook) ------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _awaitable(plain: Callable[_P, _R], doc: str) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """``plain``, awaitable: the same parameters (mypy checks them), run in a worker thread
    with a loop of its own, stopped cleanly if the awaiting task is cancelled
    (:func:`bulksync.stop.awaitable`)."""
    from bulksync.stop import awaitable

    @functools.wraps(plain)
    async def door(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await awaitable(functools.partial(plain, *args, **kwargs))

    door.__name__ = door.__qualname__ = f"a{plain.__name__}"
    door.__doc__ = doc
    return door


apush = _awaitable(push, """:func:`push`, awaitable: it runs in a worker thread with a loop of its
    own, so the caller's loop (a Jupyter cell's) goes on; parameters as for :func:`push`.
    Cancelling the awaiting task stops the run as a Ctrl-C would (no new request; those in
    flight get STOP_GRACE seconds, a second cancel cuts them short), waits for what was
    obtained to be written back and journalled, then raises CancelledError.""")
apull = _awaitable(pull, """:func:`pull`, awaitable (see :func:`apush`, cancelling too).""")
adelete = _awaitable(delete, """:func:`delete`, awaitable (see :func:`apush`, cancelling too).""")
aundo = _awaitable(undo, """:func:`undo`, awaitable (see :func:`apush`, cancelling too).""")


def progress_bar(description: str = "") -> ProgressCallback:
    """An ``on_progress`` callback that draws tqdm's bar as the place allows: a notebook's
    widget in Jupyter, text on a terminal (``tqdm.auto``)."""
    from tqdm.auto import tqdm

    bar: list[Any] = []

    def on_progress(done: int, total: int, note: str) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=description or None, unit="request"))
        bar[0].total = total
        bar[0].set_postfix_str(note, refresh=False)
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return on_progress
