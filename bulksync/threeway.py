"""Conflict checks before a push (``push --check``): the sheet is not the only writer.

Agents change tickets in Slack all day. Before an update is sent, its ticket is read and
each field is compared three ways: the *baseline* (what bulksync last pushed or pulled),
the *sheet*, and the *server*. A field changed on both sides to different values is a
conflict (the row is not sent); a field changed only on the server is taken into the
sheet (not sent back); a field changed only in the sheet is sent. :func:`decide` is that
comparison for one ticket, a pure function; :func:`check_first` reads the tickets (through
the request engine) and decides for the whole plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bulksync.api import ticket_number
from bulksync.engine import Read, budget, read_tickets
from bulksync.journal import read_view, window_of
from bulksync.plan import CLEARED_AS, Operation, payload_of, split_tags
from bulksync.results import RowResult
from bulksync.untrusted import neutralise

if TYPE_CHECKING:
    from bulksync.engine import Sending
    from bulksync.reconcile import Loaded

__all__ = ["Changed", "Conflict", "PushCheck", "Verdict", "changed", "check_first", "decide", "same"]


@dataclass(frozen=True)
class Conflict:
    """One field changed both in the sheet and in Suptask since bulksync last saw it."""

    field: str
    sheet: str
    server: str
    baseline: str

    def text(self) -> str:
        return (f"{self.field}: the sheet has {self.sheet or '(empty)'!r}, Suptask has "
                f"{self.server or '(empty)'!r} (both changed since {self.baseline or '(empty)'!r})")


@dataclass(frozen=True)
class Verdict:
    """What to do with one row: the operation to send (None: nothing), the server's values
    to take into the sheet, the conflicts that hold the row back, and what the server was
    seen to hold where the sheet agrees (the baseline learns it: a later change in Suptask
    is then told from an edit in the sheet)."""

    operation: Operation | None
    taken: dict[str, str] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    seen: dict[str, str] = field(default_factory=dict)


def same(name: str, a: str, b: str) -> bool:
    if name == "tags":
        return split_tags(a) == split_tags(b)
    if name == "status":  # statuses come back upper case in some shapes (OPEN, IN REVIEW)
        return a.casefold() == b.casefold()
    return a == b


Changed = Literal["neither", "server", "sheet", "both", "unknown"]
"""Which side changed a field since bulksync last saw it: ``neither`` (the two agree),
``server`` only (the sheet learns it), ``sheet`` only (it is sent), ``both`` (a conflict),
or ``unknown`` (they differ and there is no baseline to tell which moved)."""


def changed(name: str, sheet: str, server: str, baseline: str | None) -> Changed:
    """The three-way comparison of one field: the sheet's value, the server's and the
    baseline's (None: no baseline). Every caller (``push --check``, ``pull``) asks this."""
    if same(name, sheet, server):
        return "neither"
    if baseline is None:
        return "unknown"
    if same(name, sheet, baseline):
        return "server"
    if same(name, server, baseline):
        return "sheet"
    return "both"


def decide(op: Operation, sheet: Mapping[str, str], baseline: Mapping[str, str] | None,
           server: Mapping[str, str], *, fields: frozenset[str], forced: frozenset[str] = frozenset(),
           force: bool = False) -> Verdict:
    """The verdict for ``op``'s row, over the ``fields`` the sheet manages. ``forced`` fields
    (given by ``--set``) and every field with ``force`` carry the sheet's value whatever the
    server holds. A field the answer lacks is sent as planned. Without a baseline (a
    ticket bulksync never pushed or pulled) nothing can be told apart: non-empty cells that
    differ from the server are sent."""
    send: dict[str, str] = {}
    taken: dict[str, str] = {}
    seen: dict[str, str] = {}
    conflicts: list[Conflict] = []
    for name in sorted(fields):
        ours = sheet.get(name, "")
        if name not in server:
            if name in _planned(op):
                send[name] = ours
            continue
        theirs = server[name]
        was = None if baseline is None else baseline.get(name, "")
        side = changed(name, ours, theirs, was)
        if side == "neither":
            seen[name] = theirs
        elif name in forced or force or side == "unknown":
            # An empty cell clears only what bulksync itself had set (as plain --force does).
            if ours or (name in CLEARED_AS and was):
                send[name] = ours
        elif side == "server":  # the sheet learns it
            taken[name] = theirs
        elif side == "sheet":
            send[name] = ours
        else:
            conflicts.append(Conflict(name, ours, theirs, was or ""))
    if conflicts:
        return Verdict(None, taken, tuple(conflicts), seen)
    if not send:
        return Verdict(None, taken, (), seen)
    payload = payload_of({k: v for k, v in send.items() if v})
    payload.update({k: CLEARED_AS[k] for k, v in send.items() if not v and k in CLEARED_AS})
    return Verdict(op._replace(kind="update", payload=payload), taken, (), seen)


def _planned(op: Operation) -> set[str]:
    """The fields ``op`` sends, as cell names."""
    names = {k for k in op.payload if k != "customFields"}
    names.update(f"customField_{cf['fieldId']}" for cf in op.payload.get("customFields", []))
    return names


@dataclass(kw_only=True)
class PushCheck:
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


def check_first(loaded: Loaded, sending: Sending, *, force: bool,
                rows: frozenset[int] | None = None) -> PushCheck:
    """``push --check``: read every ticket the plan updates (or believes unchanged) and decide
    field by field (:func:`bulksync.threeway.decide`): the plan to send, the rows held back (a
    conflict, or a ticket that could not be read or is not the row's: nothing is sent
    unchecked), and what the sheet and the baseline learn. Ctrl-C during the reads stops
    the push: nothing is sent. ``rows``: only those rows (else every row with a ticket)."""
    from dataclasses import replace


    prepared, plan = loaded.prepared, loaded.plan
    ops = [op for op in plan.operations if op.kind in ("update", "unchanged", "skip") and op.ticket_id
           and op.ticket_id not in loaded.deleted and (rows is None or op.row_number in rows)]
    view = read_view(loaded.target, [op.ticket_id for op in ops if op.ticket_id], scope=prepared.scope)
    known = {e.ticket_id: e.ticket_number for e in view.creates.values() if e.ticket_id and e.ticket_number}
    where = prepared.table.position("ticketNumber")
    held: dict[int, RowResult] = {}
    reads: list[Read] = []
    for op in ops:
        cell = str(prepared.table.frame.at[op.row_number, where]).strip() if where is not None else ""
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
    frame, fields = prepared.rows.frame, prepared.rows.present
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
    return PushCheck(loaded=replace(loaded, plan=replace(plan, operations=tuple(kept))), held=held, taken=taken,
                   learnt=learnt, reads=stats.requests, interrupted=interrupted)
