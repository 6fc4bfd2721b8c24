"""The plan against the state store: what a push or a delete will send, decided before it runs.

:mod:`bulksync.plan` turns rows into operations; this module sets them against what
the state store knows of the target (a :class:`~bulksync.journal.View`, read once):
which creates are already settled (recovered, matched in another sheet, pending an
uncertain outcome), which links and replies are done, which tickets were deleted.
Everything here is a function of its inputs; nothing is written and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bulksync.columns import Problem, Rows, ValidationReport, row_contents
from bulksync.config import Settings
from bulksync.errors import TargetMismatch
from bulksync.journal import CreateEntry, Target, View
from bulksync.plan import Cells, Hold, Known, Operation, Plan, Reconciliation, plan_rows, plan_sides
from bulksync.preflight import Checked, sheet_statuses

__all__ = ["STOPPED_EARLIER", "Loaded", "RowIdentity", "moved_ids", "plan_delete", "plan_push", "reconcile",
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

    @classmethod
    def of_row(cls, scope: str, content: str, *, earlier: str = "") -> RowIdentity:
        key = f"row\x1f{scope}\x1f{content}"
        old = f"row\x1f{scope}\x1f{earlier}" if earlier else ""
        return cls(key=key, content=content, earlier="" if old == key else old)

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

    checked: Checked
    plan: Plan
    settings: Settings
    target: Target
    baselines: Mapping[str, dict[str, str]] = field(default_factory=dict)
    identities: Mapping[int, RowIdentity] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()

    @property
    def report(self) -> ValidationReport:
        return self.checked.report


def refuse_foreign(path: Path, view: View, ids: Any) -> None:
    """Raise :class:`TargetMismatch` if the sheet's ticketIds belong to another target."""
    foreign = [t for t in ids.tolist() if t in view.foreign]
    if foreign:
        other = view.foreign[foreign[0]]
        raise TargetMismatch(path, str(view.target), str(other), len(foreign),
                             same_url=other.url == view.target.url, earlier=other,
                             ticket_ids=tuple(t for t in foreign if view.foreign[t] == other))


def plan_push(checked: Checked, settings: Settings, view: View, *, force: bool = False,
              allow_duplicates: bool = False, resend_unresolved: bool = False,
              keys: bool = False, relink: bool = False, trust_ids: bool = False) -> Loaded:
    """Every request a push of the checked sheet sends, against the state ``view``.

    Rows that cannot be planned (a cell emptied that the API cannot empty) join the
    report. ``keys``: compute every create row's journal key (a push needs them; a plan
    needs them only to find what the state already knows). ``relink``: rows standing
    where their ticket was created from, without its ID (a stale save), are updates of
    that ticket instead of being held. ``trust_ids``: do not look for IDs that stand beside
    another ticket's cells (see :func:`moved_ids`).
    """
    rows, report = checked.rows, checked.report
    if report.sheet_invalid:
        return Loaded(checked, Plan(()), settings, view.target)
    refuse_foreign(checked.table.path, view, rows.frame["ticketId"])
    plan = plan_rows(rows, exclude=report.invalid_rows, force=force, baselines=view.baselines)
    if plan.problems:  # rows that cannot be planned have no operation
        checked = replace(checked, report=report.with_problems(plan.problems))
    if not trust_ids:
        out_of_place = moved_ids(plan.operations, rows, view.baselines, _numbers(checked, view))
        if out_of_place:
            checked = replace(checked, report=checked.report.with_problems(out_of_place))
            return Loaded(checked, Plan(()), settings, view.target)
    identities: dict[int, RowIdentity] = {}
    if (keys or view.creates) and any(op.kind == "create" for op in plan.operations):
        integration = settings.mapping.integration if settings.mapping else ""
        identities = row_identities(row_contents(rows), checked.mapped.legacy_ids, integration,
                                    checked.scope, earlier=row_contents(rows, users=False)
                                    if rows.user_cells else None)
    known = reconcile(plan, identities, view, checked.scope, allow_duplicates=allow_duplicates,
                      sheet_ids=_sheet_ids(checked))
    if relink and known.stale:
        plan, known, problems = _relink(plan, known, rows, view, force=force)
        if problems:
            checked = replace(checked, report=checked.report.with_problems(problems))
    sides, held = _sides(plan, known, checked, settings, view, resend=resend_unresolved)
    plan = replace(plan, operations=plan.operations + sides, reconciliation=known, held=held)
    if known.stale:  # held whole, as any row held back: nothing of it is sent
        stale = [op for op in plan.operations if op.kind == "create" and op.row_number in known.stale]
        plan = replace(plan, operations=tuple(op for op in plan.operations if op not in stale),
                       holds=plan.holds + tuple(Hold(op.row_number, known.stale[op.row_number].error,
                                                     code="stale", operation=op) for op in stale))
    return Loaded(checked, plan, settings, view.target, view.baselines, identities, view.deleted)


def plan_delete(checked: Checked, settings: Settings, view: View) -> Loaded:
    """The DELETE of every listed ticket; a row marked ``deleted`` in the sheet, or whose
    ticket the state knows was deleted on this target, is planned as already done."""
    ids = checked.rows.frame["ticketId"]
    refuse_foreign(checked.table.path, view, ids)
    out_of_place = moved_ids(plan_rows(checked.rows, baselines=view.baselines).operations, checked.rows,
                             view.baselines, _numbers(checked, view))
    if out_of_place:  # the user means the tickets whose cells they see
        checked = replace(checked, report=checked.report.with_problems(out_of_place))
        return Loaded(checked, Plan(()), settings, view.target)
    marked = sheet_statuses(checked.table, "deleted")
    ops = [Operation(int(row), "deleted" if int(row) in marked or ticket_id in view.deleted
                     else "delete", ticket_id, {})
           for row, ticket_id in zip(ids.index, ids.tolist(), strict=True)]
    return Loaded(checked, Plan(tuple(ops), reconciliation=Reconciliation(str(view.target))),
                  settings, view.target, deleted=view.deleted)


def _sides(plan: Plan, known: Reconciliation, checked: Checked, settings: Settings, view: View, *,
           resend: bool) -> tuple[tuple[Operation, ...], tuple[tuple[int, str, str], ...]]:
    """The migration's links and replies, planned like everything else (see plan_sides)."""
    mapping, mapped = settings.mapping, checked.mapped
    if mapping is None or not (mapped.legacy_ids or mapped.comments):
        return (), ()
    invalid = checked.report.invalid_rows
    tickets: dict[int, str | None] = {}
    ids = checked.rows.frame["ticketId"]
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
                   scope: str, *, earlier: Mapping[int, str] | None = None) -> dict[int, RowIdentity]:
    """Row → its identity. A migrated row is its legacy ticket, wherever the sheet is; any
    other row is its place in this sheet and its cells (``earlier``: its contents as
    bulksync 0.1 hashed them)."""
    out = {}
    for row, content in contents.items():
        legacy = legacy_ids.get(row)
        out[row] = (RowIdentity.of_legacy(integration, legacy, content) if legacy else
                    RowIdentity.of_row(scope, content, earlier=earlier.get(row, "") if earlier else ""))
    return out


MOVED = ("row(s) hold another ticket's cells beside their ticketId: the sheet was sorted (or rows "
         "pasted in another order) without bulksync's columns ticketId, ticketNumber, syncStatus and "
         "syncError, so the IDs no longer stand beside their own tickets' cells. Nothing was sent. "
         "Undo the sort (Ctrl+Z), or sort again with bulksync's columns selected too, so each ID "
         "stands beside its cells; an Excel Table or filter range that holds them moves them with "
         "the rows. If the rows really are edits you made, push with --trust-ids")


def moved_ids(operations: Sequence[Operation], rows: Rows, baselines: Mapping[str, Cells],
              numbers: Mapping[str, int]) -> tuple[Problem, ...]:
    """Rows whose ticketId stands beside another ticket's cells: the row's own Suptask cells
    equal what bulksync last synced for *another* ticket of the sheet, not for its own, and
    that other ticket's row has moved too (a sort, a paste in another order). An edit that
    happens to equal a neighbour's values (closing one ticket of a list where another is
    closed) leaves the neighbour's row as it was, so it is not taken for a move.

    Only the sheet's own columns count: a ``--set`` value is the same on every row."""
    own = frozenset(rows.own_cells)

    def seen(cells: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in cells.items() if k in own and v))

    now: dict[str, tuple[tuple[str, str], ...]] = {}
    at: dict[str, int] = {}
    for op in operations:
        if op.kind not in ("update", "unchanged") or op.ticket_id not in baselines or not op.ticket_id:
            continue
        cells = dict(baselines[op.ticket_id])
        for change in op.changes:
            cells[change.field] = change.new
        now[op.ticket_id], at[op.ticket_id] = seen(cells), op.row_number
    synced: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for ticket_id in now:
        synced.setdefault(seen(baselines[ticket_id]), []).append(ticket_id)
    moved = {t for t in now if now[t] != seen(baselines[t])}

    def name(ticket_id: str) -> str:
        return f"#{numbers[ticket_id]}" if ticket_id in numbers else ticket_id[:8]

    problems = []
    for ticket_id in sorted(moved, key=at.__getitem__):
        others = [u for u in synced.get(now[ticket_id], []) if u != ticket_id and u in moved]
        if others and now[ticket_id]:
            other = others[0]
            problems.append(Problem(at[ticket_id], "ticketId", (
                f"holds ticket {name(other)}'s cells beside {name(ticket_id)}'s ID ({name(other)}'s ID "
                f"is on row {at[other]})"), "moved-id", ticket_id))
    if problems:
        problems.insert(0, Problem(1, None, f"{len(problems)} {MOVED}", "moved-ids", None))
    return tuple(problems)


def _numbers(checked: Checked, view: View) -> dict[str, int]:
    """ticketId → its number, as the sheet's ticketNumber cells and the state know them."""
    out = {e.ticket_id: e.ticket_number for e in view.creates.values()
           if e.ticket_id and e.ticket_number is not None}
    table = checked.table
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
    frame = rows.frame.loc[sorted(known.stale)].copy()
    frame["ticketId"] = [known.stale[int(r)].ticket_id for r in frame.index]
    updates = plan_rows(replace(rows, frame=frame), baselines=view.baselines, force=force)
    by_row = {op.row_number: op for op in updates.operations}
    operations = tuple(by_row[op.row_number] if op.row_number in known.stale else op
                       for op in plan.operations
                       if op.row_number not in known.stale or op.row_number in by_row)
    return (replace(plan, operations=operations, problems=plan.problems + updates.problems,
                    holds=plan.holds + updates.holds),
            replace(known, stale={}, relinked=dict(known.stale)), updates.problems)


def _sheet_ids(checked: Checked) -> frozenset[str]:
    """Every ticketId the sheet holds, in any row (hidden and invalid ones too)."""
    where = checked.table.position("ticketId")
    if where is None:
        return frozenset()
    return frozenset(t for t in checked.table.frame[where].str.strip().tolist() if t)


def reconcile(plan: Plan, identities: Mapping[int, RowIdentity], view: View, scope: str, *,
              allow_duplicates: bool = False, sheet_ids: frozenset[str] = frozenset()) -> Reconciliation:
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
    stale = {} if allow_duplicates else _stale(
        [r for r in creates if r not in recovered and r not in pending and not identities[r].migrated],
        {k.key for k in recovered.values()}, view, scope, sheet_ids)
    for row in stale:
        matched.pop(row, None)  # the row's own ticket, not a copy's
    return Reconciliation(str(view.target), recovered, matched, pending, stale)


def _stale(rows: list[int], taken: set[str], view: View, scope: str,
           sheet_ids: frozenset[str]) -> dict[int, Known]:
    """Rows to create standing where a ticket of this sheet was created by a run whose every
    ID the sheet has lost, their cells edited since (else their key would have found it).

    That is what a save from a window opened before the push looks like (Excel or
    LibreOffice kept the sheet as it was, plus the user's edit): creating such a row would
    make a second ticket for it. A run that left any of its IDs in the sheet did not lose
    them that way (rows deleted since, new rows typed in their place, are new rows), unless
    an earlier push found the loss (``lost``: the run's other rows recovered since).
    """
    if not rows:
        return {}
    mine = [e for e in view.creates.values()
            if e.scope == scope and e.state == "created" and e.ticket_id and e.key not in taken
            and RowIdentity.of_row(scope, e.content).key == e.key]
    kept_runs = {e.run for e in mine if e.ticket_id in sheet_ids}
    at: dict[int, CreateEntry] = {}
    for e in mine:
        if (e.lost or e.run not in kept_runs) and e.ticket_id not in sheet_ids:
            if e.row_number not in at or e.sent_at > at[e.row_number].sent_at:
                at[e.row_number] = e
    out = {}
    for row in rows:
        if (made := at.get(row)) is not None:
            number = f"#{made.ticket_number}" if made.ticket_number is not None else str(made.ticket_id)
            out[row] = Known(made.ticket_id, made.ticket_number, key=made.key, error=(
                f"ticket {number} was created from this row, and the sheet no longer holds its ID "
                "(it was saved from a window opened before that push?) while the row was edited "
                "since: nothing was created. Push with --relink to write the ID back and send the "
                "edits as an update (checked against Suptask first), or with --allow-duplicates "
                "to create a new ticket for it"))
    return out
