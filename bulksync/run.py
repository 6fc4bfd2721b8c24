"""The run: send a plan's requests, journalling each step, and collect every row's outcome.

A :class:`Run` takes a :class:`~bulksync.reconcile.Loaded` (a prepared sheet and its
plan against the state) and sends it: the creates (the first alone, then with the
sheet's concurrency), the creates whose outcome an earlier run lost (resolved by
ticket number before anything is resent), then links and replies. Each step is
committed to the journal as it happens (:class:`JournalHooks`), so a kill -9 loses
no ID and doubles no row. The requests go through the request engine
(:mod:`bulksync.engine`); writing the outcome back is the next stage's job.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bulksync.engine import RunStats, Sending, drive, run_operations
from bulksync.errors import StateError
from bulksync.journal import CreateEntry, Journal, UpdateRecord, changed_fields
from bulksync.memo import ByIdentity
from bulksync.plan import CHECK_SIDE, Operation, apply_payload, cells_of_payload
from bulksync.preflight import sheet_statuses
from bulksync.reconcile import STOPPED_EARLIER, Loaded, RowIdentity
from bulksync.resolve import NOT_SETTLED
from bulksync.results import RowResult

if TYPE_CHECKING:

    from bulksync.api import SuptaskClient

__all__ = ["JournalHooks", "Run", "execute"]


def execute(loaded: Loaded, options: Sending) -> Run | None:
    """Send ``loaded.plan``, journalling every step, and return the finished run; None when
    ``options.confirm`` declined (nothing sent, nothing written)."""
    if options.confirm is not None:  # asked before the state store is opened (or made)
        asked = [op for op in loaded.plan.operations if op.sends and op.ticket_id not in loaded.deleted]
        if asked and not options.confirm(asked):
            return None
    with Journal(loaded.target, clock=options.clock) as journal:
        journal.begin_run(loaded.prepared.scope, options.command, undoes=options.undoes)
        run = Run(loaded, journal, options)
        to_send, pending = run.sort()
        try:
            if drive(lambda stopping: run.send(stopping, to_send, pending)):
                run.interrupted = True
        finally:
            try:
                run.hooks.flush()
                journal.finish_run(run.counts(), requests=run.stats.requests)
                if run.stats.pacer is not None and (window := run.stats.pacer.window()) is not None:
                    journal.learnt_window(window)
            except StateError as e:
                run.fatal = run.fatal or e
    return run


class Run:
    """One push in progress: the results so far, the journal, and what to send."""

    def __init__(self, loaded: Loaded, journal: Journal, options: Sending) -> None:
        self.loaded = loaded
        self.journal = journal
        self.options = options
        self.results: dict[int, RowResult] = {}
        self.stats = RunStats(clock=options.clock)
        self.keys = {row: identity.key for row, identity in loaded.identities.items()}
        self.side: Counter[str] = Counter()
        self.side_notes: dict[int, list[str]] = {}
        self.side_rows: dict[int, Counter[str]] = {}
        """Row → links and replies this run sent for its ticket."""
        self.hooks = JournalHooks(journal, loaded.identities, dict(loaded.baselines), loaded.prepared.scope,
                                  exclusive=not options.allow_duplicates,
                                  resend_sides=options.resend_unresolved)
        self.stopping = asyncio.Event()
        self.interrupted = False
        self.sent: list[Operation] = []
        self.total = 0
        self.fatal: StateError | None = None

    def sort(self) -> tuple[list[Operation], list[Operation]]:
        """(operations to send, creates whose earlier outcome is unknown); rows the state
        already knows created (by this sheet, a copy, or another sheet with the same cells)
        get their IDs back here."""
        plan, only_failed = self.loaded.plan, self.options.only_failed
        known = plan.reconciliation
        for row, kind, why in plan.held:
            self.side[f"{kind}_uncertain"] += 1
            self._note(row, why)
        for hold in plan.holds:  # rows held back whole: marked, nothing sent (see plan.Hold)
            self.results[hold.row_number] = RowResult(hold.row_number, hold.status, ticket_id=hold.ticket_id,
                                                      error=hold.message)
        failed_updates = {t for t, (state, _) in self.journal.updates(
            op.ticket_id for op in plan.operations if op.ticket_id).items() if state == "failed"}
        entries = self.journal.creates(self.keys[op.row_number] for op in plan.operations
                                       if op.kind == "create")
        sheet_failed = sheet_statuses(self.loaded.prepared.table, "failed") if only_failed else set()
        to_send: list[Operation] = []
        pending: list[Operation] = []
        for op in plan.operations:
            row = op.row_number
            if op.kind in ("link", "reply"):
                continue  # sent after the creates, once their tickets are known (_links, _replies)
            if op.kind == "deleted" or op.ticket_id in self.loaded.deleted:  # nothing to send
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
                    self.journal.adopt(self.keys[row], scope=self.loaded.prepared.scope,
                                       content=self.loaded.identities[row].content, row_number=row,
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
            if only_failed and not (was_failed or row in sheet_failed or row in known.relinked):
                continue
            to_send.append(op)
        if known.stale or known.relinked or self.options.allow_duplicates:
            # Held until the user says, however many of that run's rows recover meanwhile;
            # relinked, or created anew (--allow-duplicates), the user has said.
            self.journal.mark_lost([key for k in known.stale.values() for key in (k.keys or (k.key,))],
                                   settled=[k.key for k in known.relinked.values()],
                                   scope=self.loaded.prepared.scope if self.options.allow_duplicates else "")
        return to_send, pending

    async def send(self, stopping: asyncio.Event, to_send: list[Operation], pending: list[Operation]) -> None:
        from bulksync.api import SuptaskClient

        self.stopping = stopping
        settings = self.loaded.settings
        # Every request the plan may send: what to send, the creates to resolve (resent if
        # proven absent) and the links and replies. Known at the start, so the ETA is honest.
        self.total = len(to_send) + len(pending) + sum(
            1 for op in self.loaded.plan.operations if op.kind in ("link", "reply"))
        options = self.options
        async with SuptaskClient(token=options.token, base_url=settings.api_url,
                                 transport=options.transport, timeout=options.timeout,
                                 max_connections=settings.concurrency) as client:
            try:
                await self._send(client, to_send)
                await self._resolve(client, pending, retry_uncertain=options.retry_uncertain,
                                    resend_unresolved=options.resend_unresolved)
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
        ids = self.loaded.prepared.rows.frame["ticketId"]
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
                    self.side_rows.setdefault(row, Counter())[kind] += 1
            else:
                self.side[f"{kind}_{'uncertain' if result.status == 'uncertain' else 'failed'}"] += 1
                self._note(row, f"{kind}: {result.error}")

    def _halted(self) -> bool:
        return bool(self.stats.stopped) or self.stopping.is_set()

    def counts(self) -> dict[str, int]:
        """What the run did, as ``bulksync runs`` lists it."""
        made = Counter(r.status for r in self.results.values() if not r.via)
        return {"created": made["created"], "updated": made["updated"], "deleted": made["deleted"],
                "failed": made["failed"] + made["uncertain"], "linked": self.side["linked"],
                "replied": self.side["replied"]}

    def merged_results(self) -> dict[int, RowResult]:
        """The rows' outcomes, with what went wrong in their links and replies added."""
        out = dict(self.results)
        for row, notes in self.side_notes.items():
            if row in out:
                error = "; ".join([out[row].error, *notes] if out[row].error else notes)
                out[row] = replace(out[row], error=error)
        return out

    async def _run(self, client: SuptaskClient, ops: list[Operation],
                   hooks: JournalHooks, *, concurrency: int,
                   results: dict[int, RowResult] | None = None) -> None:
        if not ops or self.stats.stopped or self.stopping.is_set():
            return
        self.sent.extend(ops)
        self.total = max(self.total, len(self.sent))
        done_before = len(self.sent) - len(ops)

        on_progress = self.options.on_progress

        def progress(done: int, total: int, note: str) -> None:
            # One bar for the whole push, across the runner's calls.
            if on_progress:
                on_progress(done_before + done, self.total, note)

        await run_operations(client, ops, self.results if results is None else results,
                     concurrency=concurrency,
                     rate=self.loaded.settings.rate, on_progress=progress if on_progress else None,
                     stats=self.stats, hooks=hooks, stopping=self.stopping, on_log=self.options.on_log)

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
        entries = self.journal.creates(at.values())
        pending = [entries[at[op.row_number]] for op in candidates if at[op.row_number] in entries]
        if retry_uncertain:
            await self._wait_to_settle(pending)
            if self.stopping.is_set():
                for op in candidates:
                    self._still_uncertain(op, None)
                return
        # Read again: another run (a copy of the sheet) may have settled them meanwhile.
        entries = self.journal.creates(at.values())
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
        lowest = [e.lower_number for e in pending]
        # The creates around them: those numbered above the lowest bound (by the index on
        # numbers), not every create the target ever had.
        created = self.journal.created_after(None if None in lowest or not lowest else min(
            n for n in lowest if n is not None))
        outcomes = await resolve_uncertain(client, pending, created, settle=self.options.settle,
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
            self.journal.adopt(self.keys[op.row_number], scope=self.loaded.prepared.scope,
                               row_number=op.row_number, content=self.loaded.identities[op.row_number].content,
                               payload=op.payload, ticket_id=ticket_id, ticket_number=ticket_number)
        self.results[op.row_number] = RowResult(op.row_number, "created", ticket_id=ticket_id,
                                                ticket_number=ticket_number, via=via)

    async def _wait_to_settle(self, pending: list[CreateEntry]) -> None:
        """Wait (saying so) until the server is surely done with every pending create."""
        import time

        latest = max((e.settled_by(self.options.settle) for e in pending), default=0.0)
        clock = self.options.clock
        wait = latest - clock.time()
        if wait <= 0:
            return
        if self.options.on_notice:
            self.options.on_notice(f"waiting {wait:.0f} s (until {time.strftime('%H:%M:%S', time.localtime(latest))}) "
                           f"for the server to finish {len(pending)} create(s) whose answer was lost; "
                           "then their ticket numbers are read to see whether they were made")
        waited = asyncio.ensure_future(clock.sleep(wait))
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait((waited, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waited.cancel()
            stopped.cancel()

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
            when = time.strftime("%H:%M:%S", time.localtime(entry.settled_by(self.options.settle)))
            error = (f"{error} (the server may still be working on it: push again after {when}, or "
                     "now with --retry-uncertain, which waits until then; it is sent again only if "
                     "proven absent)")
        elif reason:
            error = (f"{error} ({reason}: look for the ticket in Suptask; if it exists, put its "
                     "ticketId into this row; if it does not, push with --resend-unresolved)")
        self.results[op.row_number] = RowResult(op.row_number, "uncertain", error=error)


class JournalHooks:
    """The runner's steps, committed to the journal as they happen."""

    BATCH = 500

    def __init__(self, journal: Journal, identities: Mapping[int, RowIdentity],
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
        self.pending: list[UpdateRecord] = []
        self.gone: dict[str, int] = {}
        """Tickets deleted, not yet recorded → their row."""

    def flush(self) -> None:
        if self.pending:
            self.journal.updated_many(self.pending)
            self.pending = []
        if self.gone:
            self.journal.deleted_many(self.gone, self.gone)
            self.gone = {}

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
        identity = self.identities[op.row_number]
        key, content = identity.key, identity.content
        other = self.journal.intend(key, op.row_number, op.payload, scope=self.scope, content=content,
                                    exclusive_content=self.exclusive and not identity.migrated,
                                    own=identity.own)
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
            self.journal.not_sent(self.identities[op.row_number].key)
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
        if op.kind == "delete":
            if result.status == "deleted" and op.ticket_id:
                self.gone[op.ticket_id] = op.row_number
                if len(self.gone) >= self.BATCH:
                    self.flush()
            return None
        if op.kind != "create":
            if op.ticket_id:
                ok = result.status == "updated"
                baseline: dict[str, str] | None = None
                before: dict[str, str] | None = None
                if ok:
                    prior = self.baselines.get(op.ticket_id)
                    # Tickets with no baseline sent the same payload object (a bulk edit, see
                    # plan) share one result, as read-only as the payload.
                    baseline = (self._first_cells(op.payload) if prior is None
                                else apply_payload(prior, op.payload))
                    if prior is not None:  # what undo puts back
                        before = {k: prior.get(k, "") for k in changed_fields(op.payload)}
                    self.baselines[op.ticket_id] = baseline
                self.pending.append(UpdateRecord(ticket_id=op.ticket_id, row_number=op.row_number,
                                                 payload=op.payload, ok=ok, error=result.error,
                                                 baseline=baseline, before=before))
                if len(self.pending) >= self.BATCH:
                    self.flush()
            return None
        key = self.identities[op.row_number].key
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

