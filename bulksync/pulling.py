"""Pull: the sheet learns what changed in Suptask.

For every row that names a ticket by number (a ``ticketNumber`` cell, or a ``ticketId``
whose number bulksync's state knows), ``GET /ticket/{ticketNumber}`` is read through the
request engine (:func:`bulksync.engine.read_all`) and its answer (any known shape, see :func:`bulksync.api.read_ticket`) fills
the sheet's Suptask columns. Nothing is sent that changes a ticket. This module decides
which rows to read and what each answer changes; ``sync.pull`` composes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulksync.api import ReadTicket, ticket_id_of, ticket_number
from bulksync.columns import CUSTOM_FIELD_PREFIX, OWNED_COLUMNS, canonical_column
from bulksync.engine import Read
from bulksync.journal import UpdateRecord, View
from bulksync.results import RowResult

if TYPE_CHECKING:
    from bulksync.sheets.table import Table

__all__ = ["PULLABLE", "Settled", "columns_to_pull", "new_baseline", "plan_reads", "pulled_values",
           "resumed", "settle_reads"]

PULLABLE = ("status", "priority", "assignee", "requester", "tags", "description")
"""The columns a pull fills (with ``customField_<uuid>``); a ticket's answer may lack some."""


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
    if not out and all(canonical_column(h) in OWNED_COLUMNS
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


def pulled_values(table: Table, columns: Mapping[str, int | None], read: Read, ticket: ReadTicket,
                  baseline: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(the cells the answer changes, as the sheet shows them; the values the baseline learns;
    the conflicts). Only what the answer holds counts. A cell edited in the sheet since the
    last push or pull (it differs from the baseline) is kept: an edit not yet pushed is
    never pulled over; if Suptask changed that field too, the row says so."""
    from bulksync.threeway import Conflict, changed
    from bulksync.untrusted import neutralise, unneutralise

    values: dict[str, str] = {}
    learnt: dict[str, str] = {}
    conflicts: list[str] = []
    for column, where in columns.items():
        if column not in ticket.cells:
            continue
        theirs = ticket.cells[column]
        ours = "" if where is None else unneutralise(str(table.frame.at[read.row, where]).strip())
        was = None if baseline is None else baseline.get(column, "")
        side = changed(column, ours, theirs, was)
        if side == "both":
            conflicts.append(f"{Conflict(column, ours, theirs, was or '').text()}; the sheet's is kept")
        if side in ("sheet", "both"):  # an edit not yet pushed: kept
            continue
        if side != "neither":
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
