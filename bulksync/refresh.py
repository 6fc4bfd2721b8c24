"""Pull: the sheet learns what changed in Suptask.

For every row that names a ticket by number (a ``ticketNumber`` cell, or a ``ticketId``
whose number bulksync's state knows), ``GET /ticket/{ticketNumber}`` is read within the
run's pacer and its answer (any known shape, see :func:`bulksync.api.read_ticket`) fills
the sheet's Suptask columns. Nothing is sent that changes a ticket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulksync.api import ReadTicket, read_ticket, ticket_id_of, ticket_number
from bulksync.columns import CUSTOM_FIELD_PREFIX, canonical_column
from bulksync.journal import UpdateRecord, View, Window, read_view, window_of
from bulksync.report import RowResult
from bulksync.resolve import read_number
from bulksync.runner import RunStats

if TYPE_CHECKING:
    from bulksync.api import SuptaskClient
    from bulksync.execute import Sending
    from bulksync.journal import Target
    from bulksync.plan import Operation
    from bulksync.reconcile import Loaded
    from bulksync.runner import ProgressCallback
    from bulksync.sheets.read import Table

__all__ = ["PULLABLE", "Checked", "Read", "Settled", "check_first", "learn", "plan_reads", "pulled_values",
           "read_all", "resumed", "settle_reads"]

PULLABLE = ("status", "priority", "assignee", "requester", "tags", "description")
"""The columns a pull fills (with ``customField_<uuid>``); a ticket's answer may lack some."""
READS_PER_WINDOW, WINDOW_SECONDS = 100, 15 * 60
"""Suptask's documented read limit: 100 reads per 15 minutes per token."""


@dataclass(frozen=True)
class Read:
    """One ticket to read, for one row."""

    row: int
    number: int
    ticket_id: str | None


def columns_to_pull(table: Table, wanted: Sequence[str] | None, named: Mapping[str, str] | None = None,
                    own: frozenset[str] = frozenset()) -> dict[str, int | None]:
    """Column → position of the sheet's columns a pull fills (``wanted`` limits them; ``named``
    and ``own`` as in bulksync.toml). A sheet of ticket numbers alone gets them all, added
    (position None); custom fields then follow the answers (see :func:`settle_reads`)."""
    out: dict[str, int | None] = {}
    for i, header in enumerate(table.header):
        column = None if header.strip() in own else canonical_column(header, named)
        if column is not None and (column in PULLABLE or column.startswith(CUSTOM_FIELD_PREFIX)):
            out.setdefault(column, i)
    if not out and all(canonical_column(h) in ("ticketNumber", "ticketId", "syncStatus", "syncError")
                       for h in table.header if h.strip()):
        out = dict.fromkeys(PULLABLE)
    if wanted is not None:
        out = {c: p for c, p in out.items() if c in wanted}
    return out


def plan_reads(table: Table, view: View) -> tuple[list[Read], dict[int, RowResult]]:
    """(the reads, in sheet order; rows that name a ticket but cannot be read, with why)."""
    numbers = {e.ticket_id: e.ticket_number for e in view.creates.values()
               if e.state == "created" and e.ticket_id and e.ticket_number}
    at_number, at_id = table.position("ticketNumber"), table.position("ticketId")
    empty = [""] * len(table.frame)
    number_cells = table.frame[at_number].tolist() if at_number is not None else empty
    id_cells = table.frame[at_id].tolist() if at_id is not None else empty
    reads: list[Read] = []
    skipped: dict[int, RowResult] = {}
    for row, number_text, id_text in zip(table.frame.index.tolist(), number_cells, id_cells, strict=True):
        ticket_id = ticket_id_of(id_text.strip())
        number = ticket_number(number_text.strip()) or (numbers.get(ticket_id) if ticket_id else None)
        if number is not None:
            reads.append(Read(int(row), number, ticket_id))
        elif number_text.strip():
            skipped[int(row)] = RowResult(int(row), "skipped", ticket_id=ticket_id, error=(
                f"{number_text.strip()!r} is not a ticket number (digits only, e.g. 2041): not read"))
        elif id_text.strip():
            skipped[int(row)] = RowResult(int(row), "skipped", ticket_id=ticket_id, error=(
                "no ticketNumber, and bulksync's state does not know this ticket's number: the API "
                "reads tickets by number only; add a ticketNumber column"))
    return reads, skipped


def resumed(reads: Sequence[Read], last: Mapping[int, tuple[float, dict[str, Any] | None, str]],
            since: float, limit: int | None, pushed: Mapping[str, float] | None = None,
            ) -> tuple[list[Read], dict[int, tuple[ReadTicket | None, str]]]:
    """(the reads to do now, the rows this pull already read): a pull resumes where an
    unfinished one stopped (what it read since ``since`` is not read again, unless bulksync
    has pushed to that ticket since: ``pushed``, ticketId → when its baseline last changed)
    and reads the tickets read longest ago first, ``limit`` at most."""
    done: dict[int, tuple[ReadTicket | None, str]] = {}
    todo = []
    for read in reads:
        at, stored, error = last.get(read.number, (0.0, None, ""))
        # A read kept by an earlier bulksync may hold fields ReadTicket no longer has.
        ticket = ReadTicket(stored.get("ticket_id"), stored.get("ticket_number"),
                            dict(stored.get("cells") or {})) if stored else None
        ticket_id = read.ticket_id or (ticket.ticket_id if ticket else None)
        newer = (pushed or {}).get(ticket_id or "", 0.0)
        if at >= since and at >= newer:
            done[read.row] = (ticket, error)
        else:
            todo.append(read)
    todo.sort(key=lambda r: last.get(r.number, (0.0, None, ""))[0])  # stable: sheet order for ties
    return (todo[:limit] if limit is not None else todo), done


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
                   on_progress: ProgressCallback | None, stopping: asyncio.Event,
                   secrets: tuple[str, ...] = (),
                   record: Callable[[Read, ReadTicket | None, str], None] | None = None,
                   ) -> dict[int, tuple[ReadTicket | None, str]]:
    """Row → (the ticket read, or None and why not), for the reads done before ``stopping``;
    ``record`` is told each as it is done (the state keeps it: a kill loses no read). One at
    a time: the read budget, not the network, sets the pace."""
    from bulksync.runner import Pacer

    if stats.pacer is None:
        stats.pacer = Pacer()
    out: dict[int, tuple[ReadTicket | None, str]] = {}
    for done, read in enumerate(reads):
        if stopping.is_set() or stats.stopped is not None:
            break
        status, body = await read_number(client, stats.pacer, stats, read.number)
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
            on_progress(done + 1, len(reads), stats.pacer.note())
    return out


def pulled_values(table: Table, columns: Mapping[str, int | None], read: Read, ticket: ReadTicket,
                  baseline: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(the cells the answer changes, as the sheet shows them; the values the baseline learns;
    the conflicts). Only what the answer holds counts. A cell edited in the sheet since the
    last push or pull (it differs from the baseline) is kept: an edit not yet pushed is
    never pulled over; if Suptask changed that field too, the row says so."""
    from bulksync.check import same
    from bulksync.untrusted import neutralise, unneutralise

    values: dict[str, str] = {}
    learnt: dict[str, str] = {}
    conflicts: list[str] = []
    for column, where in columns.items():
        if column not in ticket.cells:
            continue
        theirs = ticket.cells[column]
        ours = "" if where is None else unneutralise(str(table.frame.at[read.row, where]).strip())
        if same(column, ours, theirs):
            learnt[column] = theirs
            continue
        was = None if baseline is None else baseline.get(column, "")
        if was is not None and not same(column, ours, was):  # an edit not yet pushed: kept
            if not same(column, theirs, was):
                conflicts.append(f"{column}: the sheet has {ours or '(empty)'!r}, Suptask has "
                                 f"{theirs or '(empty)'!r} (both changed since {was or '(empty)'!r}); "
                                 "the sheet's is kept")
            continue
        values[column] = neutralise(theirs)
        learnt[column] = theirs
    return values, learnt, conflicts


def new_baseline(prior: Mapping[str, str] | None, learnt: Mapping[str, str]) -> dict[str, str]:
    """What bulksync now knows the ticket holds: the last baseline, with the fields learnt."""
    cells = {**(prior or {}), **learnt}
    return {k: v for k, v in cells.items() if v}


@dataclass(frozen=True)
class Settled:
    """What the reads mean for the sheet and the state: each row's outcome, the cells that
    change, and the new baselines (as :meth:`Journal.updated_many` records them)."""

    results: dict[int, RowResult]
    values: dict[int, dict[str, str]]
    baselines: list[UpdateRecord]


def settle_reads(table: Table, columns: Mapping[str, int | None], reads: Sequence[Read],
                 got: Mapping[int, tuple[ReadTicket | None, str]],
                 baselines: Mapping[str, Mapping[str, str]]) -> Settled:
    """The outcome of the reads done (a row not read before Ctrl-C is left as it was)."""
    out = Settled({}, {}, [])
    adding = bool(columns) and all(p is None for p in columns.values())
    if adding:  # a sheet of numbers: the custom fields the answers hold become columns too
        found = sorted({c for ticket, _ in got.values() if ticket for c in ticket.cells
                        if c.startswith(CUSTOM_FIELD_PREFIX)})
        columns = {**columns, **dict.fromkeys(found)}
    for read in reads:
        if read.row not in got:
            continue
        ticket, why = got[read.row]
        if ticket is None:
            out.results[read.row] = RowResult(read.row, "failed", ticket_id=read.ticket_id, error=why)
            continue
        if read.ticket_id and ticket.ticket_id and ticket.ticket_id != read.ticket_id:
            out.results[read.row] = RowResult(read.row, "failed", ticket_id=read.ticket_id, error=(
                f"ticket {read.number} is {ticket.ticket_id}, not this row's ticketId: fix its "
                "ticketNumber (nothing of it was pulled)"))
            continue
        ticket_id = read.ticket_id or ticket.ticket_id
        prior = baselines.get(ticket_id) if ticket_id else None
        changed, learnt, conflicts = pulled_values(table, columns, read, ticket, prior)
        if ticket_id and not read.ticket_id:  # the row learns its ticket's ID: ready to push
            changed = {"ticketId": ticket_id, **changed}
        if changed:
            out.values[read.row] = changed
        out.results[read.row] = (RowResult(read.row, "conflict", ticket_id=ticket_id, error="; ".join(conflicts))
                                 if conflicts else RowResult(read.row, "pulled", ticket_id=ticket_id))
        if ticket_id:
            out.baselines.append(UpdateRecord(ticket_id=ticket_id, row_number=read.row, payload={}, ok=True,
                                                error="", baseline=new_baseline(prior, learnt)))
    return out


# -- push --check: read before updating ----------------------------------------------------

@dataclass(kw_only=True)
class Checked:
    """What ``push --check`` decided before the run (see :func:`check_first`)."""

    loaded: Loaded
    held: dict[int, RowResult]
    taken: dict[int, dict[str, str]]
    """Row → the server's values to write into the sheet."""
    learnt: dict[str, dict[str, str]]
    """ticketId → fields the server was seen to hold (taken, or agreeing with the sheet):
    they join the baseline once the sheet holds them."""
    reads: int
    interrupted: bool


def read_tickets(reads: Sequence[Read], sending: Sending, api_url: str
                 ) -> tuple[dict[int, tuple[ReadTicket | None, str]], RunStats, bool]:
    """Read ``reads`` one at a time, paced (Ctrl-C stops): (row → the ticket or why not, the
    requests' stats, whether it was interrupted). What push --check, undo and the rotated
    token's check read through."""
    from bulksync.api import SuptaskClient
    from bulksync.execute import drive

    stats = RunStats()
    got: dict[int, tuple[ReadTicket | None, str]] = {}

    async def work(stopping: asyncio.Event) -> None:
        async with SuptaskClient(token=sending.token, base_url=api_url, transport=sending.transport,
                                 timeout=sending.timeout, max_connections=1) as client:
            got.update(await read_all(client, reads, stats, sending.on_progress, stopping, client.secrets))

    return got, stats, drive(work)


def check_first(loaded: Loaded, sending: Sending, *, force: bool,
                rows: frozenset[int] | None = None) -> Checked:
    """``push --check``: read every ticket the plan updates (or believes unchanged) and decide
    field by field (:func:`bulksync.check.decide`): the plan to send, the rows held back (a
    conflict, or a ticket that could not be read or is not the row's: nothing is sent
    unchecked), and what the sheet and the baseline learn. Ctrl-C during the reads stops
    the push: nothing is sent. ``rows``: only those rows (else every row with a ticket)."""
    from dataclasses import replace

    from bulksync.api import ticket_number
    from bulksync.check import decide
    from bulksync.plan import split_tags
    from bulksync.untrusted import neutralise

    checked, plan = loaded.checked, loaded.plan
    ops = [op for op in plan.operations if op.kind in ("update", "unchanged", "skip") and op.ticket_id
           and op.ticket_id not in loaded.deleted and (rows is None or op.row_number in rows)]
    view = read_view(loaded.target, [op.ticket_id for op in ops if op.ticket_id], scope=checked.scope)
    known = {e.ticket_id: e.ticket_number for e in view.creates.values() if e.ticket_id and e.ticket_number}
    where = checked.table.position("ticketNumber")
    held: dict[int, RowResult] = {}
    reads: list[Read] = []
    for op in ops:
        cell = str(checked.table.frame.at[op.row_number, where]).strip() if where is not None else ""
        number = ticket_number(cell) or known.get(op.ticket_id or "")
        if number is None:
            held[op.row_number] = RowResult(op.row_number, "failed", ticket_id=op.ticket_id, error=(
                "--check: the ticket's number is not known (the API reads by number only): add a "
                "ticketNumber column; nothing was sent for this row"))
        else:
            reads.append(Read(op.row_number, number, op.ticket_id))
    if sending.on_notice and reads:
        sending.on_notice(f"--check: {budget(len(reads), window_of(loaded.target, reads=True))}")
    got, stats, interrupted = read_tickets(reads, sending, loaded.settings.api_url)
    if stats.stopped is not None:  # nothing is sent unchecked, and nothing written
        raise stats.stopped
    frame, fields = checked.rows.frame, checked.rows.present
    by_row = {op.row_number: op for op in ops}
    new_ops: dict[int, Operation | None] = {row: None for row in held}
    taken: dict[int, dict[str, str]] = {}
    learnt: dict[str, dict[str, str]] = {}
    for read in reads:
        op = by_row[read.row]
        ticket, why = got.get(read.row, (None, "the check was interrupted"))
        if ticket is not None and ticket.ticket_id and ticket.ticket_id != op.ticket_id:
            why = f"ticket {read.number} is {ticket.ticket_id}, not this row's ticketId: fix its ticketNumber"
            ticket = None
        if ticket is None:
            held[read.row] = RowResult(read.row, "failed", ticket_id=op.ticket_id,
                                       error=f"--check could not read the ticket ({why}); nothing was sent")
            new_ops[read.row] = None
            continue
        sheet = {f: str(frame.at[read.row, f]).strip() for f in fields if f in frame.columns}
        if "tags" in sheet:
            sheet["tags"] = ",".join(split_tags(sheet["tags"]))
        verdict = decide(op, sheet, loaded.baselines.get(op.ticket_id or ""), ticket.cells, fields=fields,
                         forced=frozenset(loaded.settings.defaults.set), force=force)
        if verdict.conflicts:
            held[read.row] = RowResult(read.row, "conflict", ticket_id=op.ticket_id,
                                       error="; ".join(c.text() for c in verdict.conflicts))
        new_ops[read.row] = None if verdict.conflicts else (
            verdict.operation or op._replace(kind="unchanged", payload={}))
        if verdict.taken:
            taken[read.row] = {k: neutralise(v) for k, v in verdict.taken.items()}
        if op.ticket_id and (verdict.taken or verdict.seen):
            learnt[op.ticket_id] = {**verdict.seen, **verdict.taken}
    kept: list[Operation] = []
    for op in plan.operations:
        if by_row.get(op.row_number) is op and op.row_number in new_ops:
            replacement = new_ops[op.row_number]
            if replacement is not None:
                kept.append(replacement)
        else:
            kept.append(op)
    return Checked(loaded=replace(loaded, plan=replace(plan, operations=tuple(kept))), held=held, taken=taken,
                   learnt=learnt, reads=stats.requests, interrupted=interrupted)


def learn(target: Target, learnt: Mapping[str, Mapping[str, str]]) -> None:
    """Add what a check or a pull saw on the server to the tickets' baselines (merged on top
    of what the run itself recorded): called only once the sheet holds those values."""
    from bulksync.journal import Journal

    if not learnt:
        return
    current = read_view(target, list(learnt), scope="").baselines
    records: list[UpdateRecord] = []
    for ticket_id, cells in learnt.items():
        merged = {**current.get(ticket_id, {}), **cells}
        records.append(UpdateRecord(ticket_id=ticket_id, row_number=0, payload={}, ok=True, error="",
                                    baseline={k: v for k, v in merged.items() if v}))
    with Journal(target) as journal:
        journal.updated_many(records)
