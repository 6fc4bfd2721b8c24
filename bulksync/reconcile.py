"""The plan against the state store: what a push or a delete will send, decided before it runs.

:mod:`bulksync.plan` turns rows into operations; this module sets them against what
the state store knows of the target (a :class:`~bulksync.journal.View`, read once):
which creates are already settled (recovered, matched in another sheet, pending an
uncertain outcome), which links and replies are done, which tickets were deleted.
Everything here is a function of its inputs; nothing is written and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bulksync.columns import ValidationReport, row_contents
from bulksync.config import Settings
from bulksync.errors import TargetMismatch
from bulksync.journal import Target, View
from bulksync.plan import Known, Operation, Plan, Reconciliation, plan_rows, plan_sides
from bulksync.preflight import Checked, sheet_statuses

__all__ = ["STOPPED_EARLIER", "Loaded", "plan_delete", "plan_push", "reconcile", "row_identities"]

STOPPED_EARLIER = ("an earlier run stopped while this create was in flight; the ticket may or "
                   "may not have been created")


@dataclass(frozen=True, eq=False)
class Loaded:
    """A checked sheet and its plan against the state of ``target``: all a run needs.

    ``identities`` is each create row's (journal key, content) (see :mod:`bulksync.journal`);
    ``baselines`` what was last sent per ticket; ``deleted`` the tickets the state knows
    were deleted on this target.
    """

    checked: Checked
    plan: Plan
    settings: Settings
    target: Target
    baselines: Mapping[str, dict[str, str]] = field(default_factory=dict)
    identities: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()

    @property
    def report(self) -> ValidationReport:
        return self.checked.report


def refuse_foreign(path: Path, view: View, ids: Any) -> None:
    """Raise :class:`TargetMismatch` if the sheet's ticketIds belong to another target."""
    foreign = [t for t in ids.tolist() if t in view.foreign]
    if foreign:
        raise TargetMismatch(path, str(view.target), view.foreign[foreign[0]], len(foreign))


def plan_push(checked: Checked, settings: Settings, view: View, *, force: bool = False,
              allow_duplicates: bool = False, resend_unresolved: bool = False,
              keys: bool = False) -> Loaded:
    """Every request a push of the checked sheet sends, against the state ``view``.

    Rows that cannot be planned (a cell emptied that the API cannot empty) join the
    report. ``keys``: compute every create row's journal key (a push needs them; a plan
    needs them only to find what the state already knows).
    """
    rows, report = checked.rows, checked.report
    if report.sheet_invalid:
        return Loaded(checked, Plan(()), settings, view.target)
    refuse_foreign(checked.table.path, view, rows.frame["ticketId"])
    plan = plan_rows(rows, exclude=report.invalid_rows, force=force, baselines=view.baselines)
    if plan.problems:  # rows that cannot be planned have no operation
        checked = replace(checked, report=report.with_problems(plan.problems))
    identities: dict[int, tuple[str, str]] = {}
    if (keys or view.creates) and any(op.kind == "create" for op in plan.operations):
        integration = settings.mapping.integration if settings.mapping else ""
        identities = row_identities(row_contents(rows), checked.mapped.legacy_ids, integration,
                                    checked.scope)
    known = reconcile(plan, identities, view, checked.scope, allow_duplicates=allow_duplicates)
    sides, held = _sides(plan, known, checked, settings, view, resend=resend_unresolved)
    plan = replace(plan, operations=plan.operations + sides, reconciliation=known, held=held)
    return Loaded(checked, plan, settings, view.target, view.baselines, identities, view.deleted)


def plan_delete(checked: Checked, settings: Settings, view: View) -> Loaded:
    """The DELETE of every listed ticket; a row marked ``deleted`` in the sheet, or whose
    ticket the state knows was deleted on this target, is planned as already done."""
    ids = checked.rows.frame["ticketId"]
    refuse_foreign(checked.table.path, view, ids)
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
    """What the state already settles of the plan's creates."""
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
