"""Taking a run back: what ``bulksync undo`` sends, decided before it sends (a pure function).

A run's creates are deleted; on the tickets it updated, each field it changed is put back
to the value it had before the run, and only those fields. With the tickets read first
(the default), a field changed in Suptask since the run is left as it is and reported:
undo never writes over someone's later change. What cannot be taken back is said before
anything is sent: a run's deletes (Suptask has no restore), the links and replies it
posted to tickets it did not create (the API cannot remove them), and a field whose
earlier value bulksync never knew (a ticket it had not seen before that run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bulksync.columns import OWNED_COLUMNS
from bulksync.errors import UsageError
from bulksync.journal import Changed, RunEffects, RunRecord
from bulksync.plan import CLEARED_AS, Change, Operation, payload_of
from bulksync.results import RowResult, Status
from bulksync.threeway import changed, same

if TYPE_CHECKING:
    from bulksync.sheets.table import Table

__all__ = ["RunInfo", "UndoPlan", "numbered", "plan_undo", "run_to_undo", "sheet_follows", "undone_results"]

CLEARED_CELLS = {"ticketId": "", "ticketNumber": ""}
"""A row whose ticket an undo deleted: bulksync's cells emptied, so it is a new row again."""


@dataclass(frozen=True, kw_only=True)
class UndoPlan:
    """Every request an undo sends (``operations``: the deletes, then the updates, in the order
    they are sent), each row's outcome where nothing is sent for it (``settled``), the cells
    the sheet gets once a row's request succeeds (``values``), what the state learns
    (``learnt``: fields already back to their earlier value in Suptask), and what is said
    before anything is sent: ``cannot`` (what no request can take back), ``kept`` (fields
    changed in Suptask since the run)."""

    operations: tuple[Operation, ...] = ()
    settled: Mapping[int, RowResult] = field(default_factory=dict)
    values: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    learnt: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    notes: Mapping[int, str] = field(default_factory=dict)
    """Rows whose request puts back only some fields: what is kept, and why."""
    sent: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    """Row → what the run sent for the fields put back: a sheet cell that no longer holds it
    was edited since, and is left as the user made it."""
    cannot: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    @property
    def requests(self) -> int:
        return len(self.operations)


def plan_undo(effects: RunEffects, *, rows: Mapping[str, int], numbers: Mapping[str, int],
              deleted: frozenset[str] = frozenset(),
              server: Mapping[str, Mapping[str, str] | str] | None = None,
              later: Mapping[str, Mapping[str, int]] | None = None,
              made_as: Mapping[str, Mapping[str, str]] | None = None) -> UndoPlan:
    """The undo of a run that had ``effects``. ``rows``: the sheet's row of each ticketId it
    holds now (a ticket the sheet no longer holds gets a negative row: sent, not written);
    ``numbers``: ticket numbers, for messages; ``deleted``: tickets known deleted on the
    target; ``server``: each updated ticket as read now (its cells, or why it could not be
    read), None when the tickets were not read (``--no-check``); ``later``: the fields later
    runs of bulksync changed on each ticket (ticketId → field → that run's number), kept
    without a read; ``made_as``: each created ticket's fields as bulksync last synced them,
    so a ticket changed in Suptask since it was created is kept, not deleted."""
    absent = iter(range(-1, -1_000_000_000, -1))

    def row_of(ticket_id: str) -> int:
        return rows.get(ticket_id) or next(absent)

    def name(ticket_id: str) -> str:
        return f"#{numbers[ticket_id]}" if ticket_id in numbers else ticket_id[:8]

    made = {t for t, *_ in effects.created}
    ops: list[Operation] = []
    settled: dict[int, RowResult] = {}
    values: dict[int, dict[str, str]] = {}
    kept: list[str] = []
    for ticket_id, _, _, _ in effects.created:
        row = row_of(ticket_id)
        if ticket_id in deleted:  # taken back already (an undo that was stopped, run again)
            settled[row] = RowResult(row, "undone", error="")
            values[row] = dict(CLEARED_CELLS)
            continue
        changed = _changed_since(ticket_id, server, made_as, later)
        if changed:
            why = f"{name(ticket_id)} kept, not deleted: {changed}"
            settled[row] = RowResult(row, "kept", ticket_id=ticket_id, error=why)
            kept.append(why)
            continue
        values[row] = dict(CLEARED_CELLS)
        ops.append(Operation(row, "delete", ticket_id, {}))
    cannot = _cannot(effects, made, name)
    learnt: dict[str, dict[str, str]] = {}
    sent_by_row: dict[int, Mapping[str, str]] = {}
    notes: dict[int, str] = {}
    for change in effects.updated:
        if change.ticket_id in made or change.ticket_id in deleted:
            continue  # deleted with its create, or since: nothing to put back
        row = row_of(change.ticket_id)
        read = None if server is None else server.get(change.ticket_id, "it was not read")
        outcome = _restore(change, read, name(change.ticket_id), (later or {}).get(change.ticket_id, {}))
        sent_by_row[row] = change.after
        if outcome.operation is not None:
            ops.append(outcome.operation._replace(row_number=row))
            if outcome.why:
                notes[row] = outcome.why
        else:
            settled[row] = RowResult(row, outcome.status, ticket_id=change.ticket_id, error=outcome.why)
        values[row] = outcome.cells
        if outcome.learnt:
            learnt[change.ticket_id] = outcome.learnt
        kept.extend(outcome.kept)
    return UndoPlan(operations=tuple(ops), settled=settled, values=values, learnt=learnt, notes=notes,
                    cannot=tuple(cannot), kept=tuple(kept), sent=sent_by_row)


def _changed_since(ticket_id: str, server: Mapping[str, Mapping[str, str] | str] | None,
                   made_as: Mapping[str, Mapping[str, str]] | None,
                   later: Mapping[str, Mapping[str, int]] | None) -> str:
    """Why a ticket the run created must not be deleted (changed since), or empty."""
    runs = sorted(set((later or {}).get(ticket_id, {}).values()))
    if runs:
        return f"changed by a later run ({', '.join(f'run {n}' for n in runs)}); undo that first"
    read = (server or {}).get(ticket_id)
    synced = (made_as or {}).get(ticket_id)
    if isinstance(read, Mapping) and synced is not None:
        moved = sorted(k for k, v in read.items() if k in synced and not same(k, v, synced[k]))
        if moved:
            return f"changed in Suptask since ({', '.join(moved)})"
    return ""


def _cannot(effects: RunEffects, made: set[str], name: Callable[[str], str]) -> list[str]:
    out = []
    if effects.deleted:
        out.append(f"the run deleted {len(effects.deleted)} ticket(s) "
                   f"({', '.join(name(t) for t, _ in effects.deleted[:5])}"
                   f"{', …' if len(effects.deleted) > 5 else ''}): Suptask has no way to restore them")
    posted = [(k, t) for k, t, _ in effects.sides if t not in made]
    if posted:
        links = sum(1 for k, _ in posted if k == "link")
        out.append(f"the run posted {links} link(s) and {len(posted) - links} reply(ies) to tickets it did "
                   "not create: the API has no way to remove them")
    unknown = [c.ticket_id for c in effects.updated if c.before is None and c.ticket_id not in made]
    if unknown:
        out.append(f"{len(unknown)} ticket(s) the run updated had not been seen by bulksync before it "
                   f"({', '.join(name(t) for t in unknown[:5])}{', …' if len(unknown) > 5 else ''}): "
                   "their earlier values are not known, so they are left as they are")
    return out


@dataclass(frozen=True, kw_only=True)
class _Restored:
    """What undoing one ticket's changes sends (``operation``, None: nothing), its outcome, and
    what the sheet and the baseline learn."""

    operation: Operation | None = None
    status: Status
    why: str = ""
    cells: dict[str, str] = field(default_factory=dict)
    learnt: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)


def _restore(change: Changed, read: Mapping[str, str] | str | None, name: str,
             later: Mapping[str, int]) -> _Restored:
    """Put back each field ``change`` changed, where Suptask still holds what the run sent and
    no later run of bulksync changed it (``later``: field → that run's number)."""
    if change.before is None:
        return _Restored(status="kept", why="not undone: its values before the run are not known")
    if isinstance(read, str):
        return _Restored(status="failed", why=f"not undone: the ticket could not be read ({read}); nothing was sent")
    back: dict[str, str] = {}
    already: dict[str, str] = {}
    kept: list[str] = []
    refused: list[str] = []
    for column, sent in sorted(change.after.items()):
        earlier = change.before.get(column, "")
        now = None if read is None else read.get(column)
        # The three-way comparison, the run's value as the baseline: what the undo puts back
        # is one side, Suptask's value now the other.
        moved = None if now is None else changed(column, earlier, now, sent)
        if column in later:
            kept.append(f"{name} {column} kept: changed by a later run (run {later[column]}); undo that first")
        elif moved == "neither":
            already[column] = earlier
        elif moved in ("server", "both"):
            kept.append(f"{name} {column} kept: changed in Suptask since")
        elif not earlier and column not in CLEARED_AS:
            refused.append(f"{name} {column} kept: it was empty, and the API cannot empty {column}")
        else:
            back[column] = earlier
    notes = "; ".join([*kept, *refused])
    cells = {**already, **back}
    if not back:
        return _Restored(status="kept" if notes else "undone", why=notes, cells=cells, learnt=already,
                         kept=kept + refused)
    payload = payload_of({k: v for k, v in back.items() if v})
    payload.update({k: CLEARED_AS[k] for k, v in back.items() if not v})
    changes = tuple(Change(k, change.after.get(k, ""), v) for k, v in back.items())
    operation = Operation(change.row_number, "update", change.ticket_id, payload, changes)
    return _Restored(operation=operation, status="kept" if notes else "undone", why=notes, cells=cells,
                     learnt=already, kept=kept + refused)


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """One run bulksync made from a sheet, numbered from 1 in order (``bulksync runs``)."""

    number: int
    started: float
    target: str
    command: str
    counts: Mapping[str, int]
    finished: bool
    undone: bool
    undoes: int | None = None
    """An undo: the number of the run it took back."""

    def as_dict(self) -> dict[str, object]:
        import datetime

        return {"run": self.number, "when": datetime.datetime.fromtimestamp(self.started).isoformat(
            timespec="seconds"), "target": self.target, "command": self.command, **self.counts,
            "finished": self.finished, "undone": self.undone, "undoes": self.undoes}


def numbered(records: Sequence[RunRecord], target: str) -> list[RunInfo]:
    number = {r.run: i for i, r in enumerate(records, 1)}
    return [RunInfo(number=i, started=r.started, target=target, command=r.command, counts=r.counts,
                    finished=r.finished is not None, undone=r.undone is not None,
                    undoes=number.get(r.undoes)) for i, r in enumerate(records, 1)]


def sheet_follows(undoing: UndoPlan, shown: Mapping[int, RowResult], table: Table, *, mapped: bool
                   ) -> dict[int, dict[str, str]]:
    """The cells an undo writes: bulksync's own, and the fields it put back where the sheet
    still holds what the run sent (a cell edited since is the user's, and is kept). A
    migration's export keeps its own columns (they are the old tool's values, not Suptask's)."""
    out: dict[int, dict[str, str]] = {}
    for row, cells in undoing.values.items():
        if row <= 0 or row not in shown or shown[row].status not in ("undone", "kept"):
            continue
        sent = undoing.sent.get(row, {})
        keep = {}
        for name, value in cells.items():
            where = table.position(name)
            if name in OWNED_COLUMNS or (not mapped and (where is None or name not in sent or str(
                    table.frame.at[row, where]).strip() == sent[name])):
                keep[name] = value
        out[row] = keep
    return out


def run_to_undo(info: Sequence[RunInfo], number: int | None, path: Path) -> RunInfo:
    """The run to undo: ``number``, or the last one that changed something not undone yet."""
    if number is not None:
        if not 1 <= number <= len(info):
            raise UsageError(f"{path} has {len(info)} run(s) on this target (bulksync runs {path}); "
                             f"there is no run {number}")
        if info[number - 1].command == "undo":
            raise UsageError(f"run {number} is an undo; push the sheet again to redo what it took back")
        return info[number - 1]
    changed = [r for r in info if r.command != "undo" and any(
        r.counts.get(k) for k in ("created", "updated", "deleted", "linked", "replied"))]
    if not changed or (changed[-1].undone and len(changed) == 1):
        raise UsageError(f"{path}: no run to undo on this target (bulksync runs {path} lists them)")
    if changed[-1].undone:  # never walk back on its own to an older run: say which to give
        earlier = [r for r in changed if not r.undone]
        hint = f"; to undo run {earlier[-1].number} too, give --run {earlier[-1].number}" if earlier else ""
        raise UsageError(f"{path}: run {changed[-1].number}, the last that changed something, is undone "
                         f"already{hint}")
    return changed[-1]


def undone_results(undoing: UndoPlan, sent: Mapping[int, RowResult]) -> dict[int, RowResult]:
    """Each row's outcome in an undo's words: ``undone``, ``kept`` (with what and why), or the
    run's failure. A ticket the undo deletes that is gone already (a stopped undo run
    again, or deleted in Slack since) is undone, not an error."""
    out = dict(undoing.settled)
    kinds = {op.row_number: op.kind for op in undoing.operations}
    for row, r in sent.items():
        gone = kinds.get(row) == "delete" and r.status == "failed" and r.error.startswith("HTTP 404")
        if r.status in ("deleted", "updated") or gone:
            note = undoing.notes.get(row, "")
            out[row] = RowResult(row, "kept" if note else "undone", ticket_id=r.ticket_id, error=note)
        else:
            out[row] = r
    return out
