"""The plan against the state store: what a push or a delete will send, decided before it runs.

:mod:`bulksync.plan` turns rows into operations; this module sets them against what
the state store knows of the target (a :class:`~bulksync.journal.View`, read once):
which creates are already settled (recovered, matched in another sheet, pending an
uncertain outcome), which links and replies are done, which tickets were deleted.
Everything here is a function of its inputs; nothing is written and nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bulksync.columns import Problem, Rows, ValidationReport, as_number, row_contents
from bulksync.config import Settings
from bulksync.errors import TargetMismatch
from bulksync.journal import CreateEntry, Target, View
from bulksync.plan import (
    Hold,
    Known,
    Operation,
    Plan,
    Reconciliation,
    cells_of_payload,
    plan_rows,
    plan_sides,
    reformatting,
)
from bulksync.preflight import Prepared, sheet_statuses

__all__ = ["STOPPED_EARLIER", "Loaded", "RowIdentity", "identities_of", "moved_ids", "plan_delete", "plan_push",
           "reconcile", "ticket_numbers",
           "row_identities"]

STOPPED_EARLIER = ("an earlier run stopped while this create was in flight; the ticket may or "
                   "may not have been created")


@dataclass(frozen=True, kw_only=True)
class RowIdentity:
    """What a row to create is known by in the journal.

    A migrated row is its legacy ticket (``migrated``), wherever the sheet is; any other
    row is its sheet (``scope``) and its cells: ``content``, a hash of every cell but
    bulksync's own and its place among identical rows. ``earlier`` is the key bulksync 0.1
    gave the same row (its Suptask cells only), looked up when ``key`` is not known.
    """

    key: str
    content: str
    migrated: bool = False
    earlier: str = ""
    own: Mapping[str, str] = field(default_factory=dict)
    """The row's own columns (the user's), kept with its create: what tells a stale save's
    edited row from a row of other people (see :func:`_stale`)."""

    @classmethod
    def of_row(cls, scope: str, content: str, *, earlier: str = "",
               own: Mapping[str, str] | None = None) -> RowIdentity:
        key = f"row\x1f{scope}\x1f{content}"
        old = f"row\x1f{scope}\x1f{earlier}" if earlier else ""
        return cls(key=key, content=content, earlier="" if old == key else old, own=own or {})

    @classmethod
    def of_legacy(cls, integration: str, legacy_id: str, content: str) -> RowIdentity:
        return cls(key=f"legacy\x1f{integration}\x1f{legacy_id}", content=content, migrated=True)


@dataclass(frozen=True, eq=False)
class Loaded:
    """A checked sheet and its plan against the state of ``target``: all a run needs.

    ``identities`` is each create row's :class:`RowIdentity` (see :mod:`bulksync.journal`);
    ``baselines`` what was last sent per ticket; ``deleted`` the tickets the state knows
    were deleted on this target.
    """

    prepared: Prepared
    plan: Plan
    settings: Settings
    target: Target
    baselines: Mapping[str, dict[str, str]] = field(default_factory=dict)
    identities: Mapping[int, RowIdentity] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()

    @property
    def report(self) -> ValidationReport:
        return self.prepared.report


def refuse_foreign(path: Path, view: View, ids: Any, numbers: Mapping[str, int] | None = None) -> None:
    """Raise :class:`TargetMismatch` if the sheet's ticketIds belong to another target
    (``numbers``: the sheet's own ticketNumber of each, to read one with a rotated token)."""
    foreign = [t for t in ids.tolist() if t in view.foreign]
    if foreign:
        other = view.foreign[foreign[0]]
        mine = tuple(t for t in foreign if view.foreign[t] == other)
        raise TargetMismatch(path, view.target, other, len(foreign), ticket_ids=mine,
                             numbers={t: numbers[t] for t in mine if numbers and t in numbers})


def plan_push(prepared: Prepared, settings: Settings, view: View, *, force: bool = False,
              allow_duplicates: bool = False, resend_unresolved: bool = False,
              keys: bool = False, relink: bool = False, trust_ids: bool = False,
              identities: Mapping[int, RowIdentity] | None = None) -> Loaded:
    """Every request a push of the checked sheet sends, against the state ``view``.

    Rows that cannot be planned (a cell emptied that the API cannot empty) join the
    report. ``keys``: compute every create row's journal key (a push needs them; a plan
    needs them only to find what the state already knows). ``relink``: rows standing
    where their ticket was created from, without its ID (a stale save), are updates of
    that ticket instead of being held. ``trust_ids``: do not look for IDs that stand beside
    another ticket's cells (see :func:`moved_ids`).
    """
    rows, report = prepared.rows, prepared.report
    if report.sheet_invalid:
        return Loaded(prepared, Plan((), reconciliation=Reconciliation(str(view.target))), settings, view.target)
    numbers = ticket_numbers(prepared, view)
    refuse_foreign(prepared.table.path, view, rows.frame["ticketId"], numbers)
    plan = plan_rows(rows, exclude=report.invalid_rows, force=force, baselines=view.baselines)
    if plan.problems:  # rows that cannot be planned have no operation
        prepared = replace(prepared, report=report.with_problems(plan.problems))
    if not trust_ids:
        out_of_place = moved_ids(plan.operations, rows, view, numbers)
        if out_of_place:
            prepared = replace(prepared, report=prepared.report.with_problems(out_of_place))
            return Loaded(prepared, Plan((), reconciliation=Reconciliation(str(view.target))), settings, view.target)
    if identities is None:
        identities = {}
        if (keys or view.creates) and any(op.kind == "create" for op in plan.operations):
            identities = identities_of(prepared, settings)
    known = reconcile(plan, identities, view, prepared.scope, allow_duplicates=allow_duplicates,
                      sheet=_sheet_rows(prepared))
    doubled = _doubled(known, _sheet_rows(prepared), numbers)
    if doubled and not trust_ids:
        prepared = replace(prepared, report=prepared.report.with_problems(doubled))
        return Loaded(prepared, Plan((), reconciliation=Reconciliation(str(view.target))), settings,
                      view.target)
    if relink and known.stale:
        plan, known, problems = _relink(plan, known, rows, view, force=force)
        if problems:
            prepared = replace(prepared, report=prepared.report.with_problems(problems))
    sides, held = _sides(plan, known, prepared, settings, view, resend=resend_unresolved)
    plan = replace(plan, operations=plan.operations + sides, reconciliation=known, held=held)
    if known.stale:  # held whole, as any row held back: nothing of it is sent
        stale = [op for op in plan.operations if op.kind == "create" and op.row_number in known.stale]
        plan = replace(plan, operations=tuple(op for op in plan.operations if op not in stale),
                       holds=plan.holds + tuple(Hold(op.row_number, known.stale[op.row_number].error,
                                                     code="stale", operation=op) for op in stale))
    return Loaded(prepared=prepared, plan=plan, settings=settings, target=view.target, baselines=view.baselines,
                  identities=identities, deleted=view.deleted)


def plan_delete(prepared: Prepared, settings: Settings, view: View) -> Loaded:
    """The DELETE of every listed ticket; a row marked ``deleted`` in the sheet, or whose
    ticket the state knows was deleted on this target, is planned as already done."""
    ids = prepared.rows.frame["ticketId"]
    refuse_foreign(prepared.table.path, view, ids, ticket_numbers(prepared, view))
    out_of_place = moved_ids(plan_rows(prepared.rows, baselines=view.baselines).operations, prepared.rows,
                             view, ticket_numbers(prepared, view), delete=True)
    if out_of_place:  # the user means the tickets whose cells they see
        prepared = replace(prepared, report=prepared.report.with_problems(out_of_place))
        return Loaded(prepared, Plan((), reconciliation=Reconciliation(str(view.target))), settings, view.target)
    marked = sheet_statuses(prepared.table, "deleted")
    ops = [Operation(int(row), "deleted" if int(row) in marked or ticket_id in view.deleted
                     else "delete", ticket_id, {})
           for row, ticket_id in zip(ids.index, ids.tolist(), strict=True)]
    return Loaded(prepared, Plan(tuple(ops), reconciliation=Reconciliation(str(view.target))),
                  settings, view.target, deleted=view.deleted)


def _sides(plan: Plan, known: Reconciliation, prepared: Prepared, settings: Settings, view: View, *,
           resend: bool) -> tuple[tuple[Operation, ...], tuple[tuple[int, str, str], ...]]:
    """The migration's links and replies, planned like everything else (see plan_sides)."""
    mapping, mapped = settings.mapping, prepared.mapped
    if mapping is None or not (mapped.legacy_ids or mapped.comments):
        return (), ()
    invalid = prepared.report.invalid_rows
    tickets: dict[int, str | None] = {}
    ids = prepared.rows.frame["ticketId"]
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


def identities_of(prepared: Prepared, settings: Settings) -> dict[int, RowIdentity]:
    """Every row's identity in the journal (what a create of it is known by)."""
    rows = prepared.rows
    integration = settings.mapping.integration if settings.mapping else ""
    return row_identities(row_contents(rows), prepared.mapped.legacy_ids, integration, prepared.scope,
                          earlier=row_contents(rows, users=False) if rows.user_cells else None,
                          own=_own_cells(rows))


def _own_cells(rows: Rows) -> dict[int, dict[str, str]]:
    """Row → its non-empty cells in the user's own columns, by header."""
    out: dict[int, dict[str, str]] = {}
    for name, values in rows.user_cells.items():
        for row, value in zip(values.index.tolist(), values.tolist(), strict=True):
            if value:
                out.setdefault(int(row), {})[name] = value
    return out


def row_identities(contents: Mapping[int, str], legacy_ids: Mapping[int, str], integration: str,
                   scope: str, *, earlier: Mapping[int, str] | None = None,
                   own: Mapping[int, Mapping[str, str]] | None = None) -> dict[int, RowIdentity]:
    """Row → its identity. A migrated row is its legacy ticket, wherever the sheet is; any
    other row is its place in this sheet and its cells (``earlier``: its contents as
    bulksync 0.1 hashed them)."""
    out = {}
    for row, content in contents.items():
        legacy = legacy_ids.get(row)
        out[row] = (RowIdentity.of_legacy(integration, legacy, content) if legacy else
                    RowIdentity.of_row(scope, content, earlier=earlier.get(row, "") if earlier else "",
                                       own=(own or {}).get(row)))
    return out


MOVED = ("row(s) hold another ticket's cells beside their ticketId: the sheet was sorted (or rows "
         "pasted in another order) without bulksync's columns ticketId, ticketNumber, syncStatus and "
         "syncError, so the IDs no longer stand beside their own tickets' cells. Nothing was sent. "
         "Undo the sort (Ctrl+Z), or sort again with bulksync's columns selected too, so each ID "
         "stands beside its cells; an Excel Table or filter range that holds them moves them with "
         "the rows.")
MOVED_PUSH = " If the rows really are edits you made, push with --trust-ids"
MOVED_DELETE = " To delete the tickets whose IDs are listed whatever stands beside them, list the IDs alone"


def moved_ids(operations: Sequence[Operation], rows: Rows, view: View,
              numbers: Mapping[str, int], *, delete: bool = False) -> tuple[Problem, ...]:
    """Rows whose ticketId stands beside another ticket's cells: the row's cells (its Suptask
    columns, and the user's own columns as they were when its ticket was created) are closer
    to what bulksync last synced for *another* ticket of the sheet than to its own, by at
    least two cells (the description counting two), and that other ticket's row has changed
    too: a sort, or a paste in another order, that left bulksync's columns behind, also when
    a column was filled in afterwards or the file re-saved by a spreadsheet since. An edit
    that happens to equal a neighbour's values (closing one ticket of a list where another is
    closed) leaves the neighbour's row as it was, so it is not taken for a move; nor is a
    swap of one column alone (a list of ticketIds and statuses cannot tell it from edits).

    A ``--set`` value is the same on every row, so it does not count. Each row is compared
    with the tickets that share a rare cell with it, not with every ticket: linear."""
    fields = frozenset(rows.own_cells)
    own = _own_cells(rows)
    made = {e.ticket_id: e.own for e in view.creates.values() if e.ticket_id and e.own}

    def cells(ticket_id: str, synced: Mapping[str, str]) -> dict[str, str]:
        out = {k: _same_form(v) for k, v in synced.items() if k in fields and v}
        out.update({f"\x1e{k}": _same_form(v) for k, v in made.get(ticket_id, {}).items()})
        return out

    now: dict[str, dict[str, str]] = {}
    then: dict[str, dict[str, str]] = {}
    at: dict[str, int] = {}
    for op in operations:
        if op.kind not in ("update", "unchanged") or not op.ticket_id or op.ticket_id not in view.baselines:
            continue
        row = dict(view.baselines[op.ticket_id])
        for change in op.changes:
            row[change.field] = change.new
        now[op.ticket_id] = {**cells("", row), **{f"\x1e{k}": _same_form(v) for k, v in own.get(op.row_number, {}).items()
                                                 if op.ticket_id in made}}
        then[op.ticket_id], at[op.ticket_id] = cells(op.ticket_id, view.baselines[op.ticket_id]), op.row_number
    changed = {t for t in now if now[t] != then[t]}
    holders: dict[tuple[str, str], list[str]] = {}
    for ticket_id in changed:
        for cell in then[ticket_id].items():
            holders.setdefault(cell, []).append(ticket_id)

    def score(row: Mapping[str, str], synced: Mapping[str, str]) -> int:
        return sum(2 if k == "description" else 1 for k, v in row.items() if synced.get(k) == v)

    def name(ticket_id: str) -> str:
        return f"#{numbers[ticket_id]}" if ticket_id in numbers else ticket_id[:8]

    problems = []
    for ticket_id in sorted(changed, key=at.__getitem__):
        row = now[ticket_id]
        mine = score(row, then[ticket_id])
        rare = {u for cell in row.items() if len(holders.get(cell, ())) <= 3 for u in holders.get(cell, ())}
        best = max(((score(row, then[u]), u) for u in rare if u != ticket_id), default=(0, ""))
        if best[0] >= 2 and best[0] > mine:
            other = best[1]
            problems.append(Problem(at[ticket_id], "ticketId", (
                f"holds ticket {name(other)}'s cells beside {name(ticket_id)}'s ID ({name(other)}'s ID "
                f"is on row {at[other]})"), "moved-id", ticket_id))
    if problems:
        problems.insert(0, Problem(1, None, f"{len(problems)} {MOVED}{MOVED_DELETE if delete else MOVED_PUSH}",
                                   "moved-ids", None))
    return tuple(problems)


def _same_form(value: str) -> str:
    """A cell as compared for a move: a number as a spreadsheet's re-save leaves it."""
    return as_number(value.strip())


def ticket_numbers(prepared: Prepared, view: View) -> dict[str, int]:
    """ticketId → its number, as the sheet's ticketNumber cells and the state know them."""
    out = {e.ticket_id: e.ticket_number for e in view.creates.values()
           if e.ticket_id and e.ticket_number is not None}
    table = prepared.table
    at_id, at_number = table.position("ticketId"), table.position("ticketNumber")
    if at_id is not None and at_number is not None:
        for ticket_id, number in zip(table.frame[at_id].str.strip().tolist(),
                                     table.frame[at_number].str.strip().tolist(), strict=True):
            if ticket_id and number.isdigit():
                out[ticket_id] = int(number)
    return out


def _relink(plan: Plan, known: Reconciliation, rows: Rows, view: View, *,
            force: bool) -> tuple[Plan, Reconciliation, tuple[Problem, ...]]:
    """The stale rows as updates of the tickets they were created as (their edits against
    what was sent), instead of creates held back; a row that cannot be planned so (a cell
    emptied that the API cannot empty) has no operation and is a problem."""
    paired = sorted(r for r, k in known.stale.items() if k.ticket_id and r in rows.frame.index)
    frame = rows.frame.loc[paired].copy()
    frame["ticketId"] = [known.stale[int(r)].ticket_id for r in frame.index]
    updates = plan_rows(replace(rows, frame=frame), baselines=view.baselines, force=force)
    by_row = {op.row_number: op for op in updates.operations}
    operations = tuple(by_row[op.row_number] if op.row_number in paired else op
                       for op in plan.operations
                       if op.row_number not in paired or op.row_number in by_row)
    return (replace(plan, operations=operations, problems=plan.problems + updates.problems,
                    holds=plan.holds + updates.holds),
            replace(known, stale={r: k for r, k in known.stale.items() if r not in paired},
                    relinked={r: known.stale[r] for r in paired}), updates.problems)


def _doubled(known: Reconciliation, sheet: Sequence[tuple[int, str]], numbers: Mapping[str, int]
             ) -> tuple[Problem, ...]:
    """Rows without an ID whose cells are a ticket (found by them) whose ID already stands on
    another row: the rows were sorted apart from bulksync's columns, and that other row holds
    other cells beside it. Writing the ID here would put it in the sheet twice."""
    where = {t: row for row, t in sheet if t}
    problems = []
    for row, k in sorted((*known.recovered.items(), *known.matched.items())):
        if k.ticket_id in where and where[k.ticket_id] != row:
            name = f"#{k.ticket_number}" if k.ticket_number is not None else k.ticket_id[:8]
            problems.append(Problem(row, "ticketId", (
                f"holds ticket {name}'s cells, whose ID is on row {where[k.ticket_id]} beside other "
                "cells"), "moved-id", k.ticket_id))
    if problems:
        problems.insert(0, Problem(1, None, f"{len(problems)} {MOVED}{MOVED_PUSH}", "moved-ids", None))
    return tuple(problems)


def _sheet_rows(prepared: Prepared) -> tuple[tuple[int, str], ...]:
    """(row, ticketId or "") of every row of the sheet, hidden and invalid ones too."""
    where = prepared.table.position("ticketId")
    index = prepared.table.frame.index.tolist()
    if where is None:
        return tuple((int(r), "") for r in index)
    return tuple(zip((int(r) for r in index), prepared.table.frame[where].str.strip().tolist(), strict=True))


def reconcile(plan: Plan, identities: Mapping[int, RowIdentity], view: View, scope: str, *,
              allow_duplicates: bool = False, sheet: Sequence[tuple[int, str]] = ()) -> Reconciliation:
    """What the state already settles of the plan's creates."""
    recovered: dict[int, Known] = {}
    matched: dict[int, Known] = {}
    pending: dict[int, Known] = {}
    if not identities:  # nothing to find: the state knows no create of this target
        return Reconciliation(str(view.target))
    creates = [op.row_number for op in plan.operations if op.kind == "create"]
    loose = {identities[r].content for r in creates if not identities[r].migrated}
    others = {} if allow_duplicates else view.others(loose, scope)
    for row in creates:
        identity = identities[row]
        key, entry = identity.key, view.creates.get(identity.key)
        if entry is None and identity.earlier in view.creates:  # pushed by bulksync 0.1
            key, entry = identity.earlier, view.creates[identity.earlier]
        if entry is not None and entry.state == "created":
            recovered[row] = Known(entry.ticket_id, entry.ticket_number, key=key)
        elif entry is not None and entry.state in ("sending", "uncertain"):
            pending[row] = Known(None, None, entry.error, key=key)
        elif not identity.migrated and identity.content in others:
            other = others[identity.content]
            if other.state == "created":
                matched[row] = Known(other.ticket_id, other.ticket_number, key=other.key)
            else:  # e.g. a crash before another copy's write-back: resolved like our own
                pending[row] = Known(None, None, f"{other.error or STOPPED_EARLIER} (a row with the "
                                     f"same cells, in {other.scope})", key=other.key)
    found = {k.key: row for row, k in (*recovered.items(), *pending.items())}
    migrated = {r for r in creates if identities[r].migrated}
    cells = {op.row_number: _cells(op.payload, identities[op.row_number].own) for op in plan.operations
             if op.kind == "create" and op.row_number in identities}
    stale = {} if allow_duplicates else _stale(sheet, found, others=migrated | set(matched), view=view,
                                               scope=scope, cells=cells)
    for row in [r for r, k in stale.items() if k.error == RESAVED]:  # re-saved only: the same row
        k = stale.pop(row)
        if k.ticket_id:
            recovered[row] = Known(k.ticket_id, k.ticket_number, key=k.key)
        else:  # its create's outcome is unknown: resolved like any, before anything is resent
            pending[row] = Known(None, None, STOPPED_EARLIER, key=k.key)
    return Reconciliation(str(view.target), recovered, matched, pending, stale)


def _stale(sheet: Sequence[tuple[int, str]], found: Mapping[str, int], *, others: set[int], view: View,
           scope: str, cells: Mapping[int, Mapping[str, str]]) -> dict[int, Known]:
    """Rows without an ID that stand where a create of this sheet was made, in a sheet that
    lost that create's ID: a save from a window opened before the push (Excel or LibreOffice
    kept the sheet as it was, plus the user's edits). Creating such a row would make a second
    ticket for it, so it is held.

    A create counts as lost when its ticket is not in the sheet and none of its run's IDs is
    (a run that left any of its IDs in the sheet did not lose them this way: rows deleted
    since, rows typed anew), or when an earlier push held it (``lost``). Rows found by their
    cells (``found``: journal key → the row now) are that run's unedited rows. Each row without an
    ID is placed among the rows whose place at that push is known (rows found, rows whose ID
    names a create of this sheet): between two of them stand the creates made between them.
    As many rows as creates in a gap are paired in order (``Known.ticket_id``, for
    ``--relink``); otherwise every row of the gap is held unpaired, naming the tickets it may
    be (the user types the right ID, or creates it anew). A row is held only if it still
    shares at least half of the cells that tell that push's rows apart with its create
    (``cells``: each row's sent fields and own columns; see :func:`_alike`): a row typed
    anew where a lost one stood is created. ``others``: rows to leave alone (migrated,
    matched by a copy); hidden and invalid rows are placed too (held when they come back).
    """
    mine = [e for e in view.creates.values()
            if e.scope == scope and e.state in ("created", "sending", "uncertain")
            and RowIdentity.of_row(scope, e.content).key == e.key]
    if not mine:
        return {}
    ids = {t for _, t in sheet if t}
    kept_runs = {e.run for e in mine if e.ticket_id in ids}
    lost = [e for e in mine if e.key not in found and e.ticket_id not in ids
            and (e.lost or e.run not in kept_runs)]
    if not lost:
        return {}
    by_ticket = {e.ticket_id: e for e in mine if e.ticket_id}
    by_key = {e.key: e for e in mine}
    anchors: list[tuple[int, int]] = []  # (row now, row at that push)
    loose: list[int] = []
    for row, ticket_id in sheet:
        if ticket_id in by_ticket:
            anchors.append((row, by_ticket[ticket_id].row_number))
        elif not ticket_id and row not in others:
            loose.append(row)
    anchors += [(row, by_key[k].row_number) for k, row in found.items() if k in by_key]
    anchors.sort()
    ordered = all(a[1] < b[1] for a, b in zip(anchors, anchors[1:], strict=False))
    gaps: dict[int, list[int]] = {}
    for row in loose:
        if row in found.values():
            continue
        below = sum(1 for a in anchors if a[0] < row) if ordered else 0
        gaps.setdefault(below, []).append(row)
    out: dict[int, Known] = {}
    for below, rows in gaps.items():
        low = anchors[below - 1][1] if ordered and below else 0
        high = anchors[below][1] if ordered and below < len(anchors) else 1 << 62
        made = sorted((e for e in lost if low < e.row_number < high), key=lambda e: e.row_number)
        if not made:
            continue
        likeness = _likeness(mine)
        out.update(_pair([r for r in rows if r in cells], made, cells, likeness))
        if len(made) == len(rows):  # hidden or invalid rows, not sent now: by their place
            out.update({row: _held(e) for row, e in zip(rows, made, strict=True) if row not in cells})
        else:
            out.update({row: _maybe(made) for row in rows if row not in cells})
    return out


def _pair(rows: Sequence[int], made: Sequence[CreateEntry], cells: Mapping[int, Mapping[str, str]],
          likeness: Callable[[Mapping[str, str], CreateEntry], int]) -> dict[int, Known]:
    """Rows of one gap and the lost creates of it: a row and a create that are each other's
    one closest match are paired; a row still like some create but not paired so is held
    unpaired; a row like none is a new row (left to be created)."""
    score = {(r, i): likeness(cells[r], e) for r in rows for i, e in enumerate(made)}
    out: dict[int, Known] = {}
    for r in rows:
        mine = sorted(((score[r, i], i) for i in range(len(made)) if score[r, i] > 0), reverse=True)
        if not mine:
            continue
        best, i = mine[0]
        theirs = sorted((score[q, i] for q in rows), reverse=True)
        unique = (len(mine) == 1 or mine[1][0] < best) and (len(theirs) == 1 or theirs[1] < best)
        if unique and _resaved(cells[r], made[i]):
            out[r] = Known(made[i].ticket_id, made[i].ticket_number, key=made[i].key, error=RESAVED)
        else:
            out[r] = _held(made[i]) if unique else _maybe([made[j] for _, j in mine])
    return out


RESAVED = "resaved"
"""The ``error`` of a stale row that is its create as a spreadsheet re-wrote it: recovered."""


def _resaved(row: Mapping[str, str], e: CreateEntry) -> bool:
    """Whether the row is the create ``e`` as it was, but for what a spreadsheet re-wrote."""
    theirs = _cells(e.payload, e.own)
    return all(_near(theirs.get(k, ""), row.get(k, "")) == "same" for k in {*theirs, *row})


def _cells(payload: Mapping[str, Any], own: Mapping[str, str]) -> dict[str, str]:
    """A create's cells as sent, and its row's own columns (kept apart by a prefix)."""
    return {**cells_of_payload(payload), **{f"\x1e{k}": v for k, v in own.items()}}


def _likeness(run: Sequence[CreateEntry]) -> Callable[[Mapping[str, str], CreateEntry], int]:
    """How much a row is still a lost create, over the cells that differ between the sheet's
    creates (``run``; a form or a --set value that every row shares tells nothing; with one
    create, every cell counts): 0 when fewer than half of them (the description counting
    two) are the same or near (a row typed anew), else two for each cell that is the same
    (or re-written by a spreadsheet), one for each a few words away."""
    made = [_cells(e.payload, e.own) for e in run]
    names = {k for c in made for k in c}
    telling = {k for k in names if len({c.get(k, "") for c in made}) > 1} or names

    weight = {k: 2 if k == "description" else 1 for k in telling}  # the text that says what it is

    def likeness(row: Mapping[str, str], entry: CreateEntry) -> int:
        theirs = _cells(entry.payload, entry.own)
        near = {k: _near(theirs.get(k, ""), row.get(k, "")) for k in telling}
        if 2 * sum(weight[k] for k, n in near.items() if n) < sum(weight.values()):
            return 0
        return sum(0 if not n else 2 if n == "same" else 1 for n in near.values())

    return likeness


def _near(old: str, new: str) -> Literal["same", "near", ""]:
    """``same``: the same cell, or the same after a spreadsheet re-wrote it; ``near``: the
    same after an edit of a few words (a text of some length that is still mostly what it
    was); else empty."""
    if old == new or (old and new and reformatting(old, new) is not None):
        return "same"
    if not old or not new:
        return ""
    import difflib

    if re.sub(r"\d+", "#", old) == re.sub(r"\d+", "#", new):
        return ""  # "Laptop for hire 3" is another item than "Laptop for hire 0", not an edit of it
    close = min(len(old), len(new)) >= 8 and difflib.SequenceMatcher(None, old, new).ratio() >= 0.6
    return "near" if close else ""


def _number(e: CreateEntry) -> str:
    return f"#{e.ticket_number}" if e.ticket_number is not None else str(e.ticket_id or "(not known yet)")


def _held(e: CreateEntry) -> Known:
    """A row that is the create ``e``, edited in a sheet that lost its ID."""
    if e.state != "created" or not e.ticket_id:
        return Known(None, None, key=e.key, error=(
            "an earlier create of this row has an unknown outcome, and the row was edited since in a "
            "sheet that lost that push's IDs: nothing was created. Push the sheet as it was to "
            "resolve it, or check in Suptask and type the ticketId into the row"))
    return Known(e.ticket_id, e.ticket_number, key=e.key, error=(
        f"ticket {_number(e)} was created from this row, and the sheet no longer holds its ID (it "
        "was saved from a window opened before that push?) while the row was edited since: nothing "
        "was created. Push with --relink to write the ID back and send the edits as an update "
        "(checked against Suptask first), or with --allow-duplicates to create a new ticket for it"))


def _maybe(made: Sequence[CreateEntry]) -> Known:
    """A row that may be any of the creates ``made`` (rows were also added or removed)."""
    names = ", ".join(_number(e) for e in made[:6]) + (", …" if len(made) > 6 else "")
    return Known(None, None, key=made[0].key, keys=tuple(e.key for e in made), error=(
        f"this row may be one of the tickets {names}, created from rows here before the sheet lost "
        "their IDs (it was saved from a window opened before that push?), and rows were added or "
        "removed since: nothing was created. Find its ticket in Suptask and type its ticketId into "
        "the row, or push with --allow-duplicates to create a new ticket for it"))
