"""Rows (+ baselines) → Operations: what each row asks of the API. A pure function.

A row's *cells* are its non-empty Suptask values as text (tags normalised to
``a,b``), keyed by field name (``customField_<uuid>`` for custom fields). A
*baseline* is the cells bulksync last sent for a ticket (kept in the journal);
comparing the two gives the fields an update must carry.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from bulksync.columns import API_FIELDS, CUSTOM_FIELD_PREFIX, TICKET_ID, Problem, Rows

if TYPE_CHECKING:
    from bulksync.columns import ValidationReport
    from bulksync.mapping import Comment

__all__ = ["ONCE_KINDS", "Change", "Hold", "Operation", "Plan", "apply_payload", "cells_of_payload",
           "excuse_reformatted", "hold_groups", "plan_rows", "reformatting", "settle_holds"]

Kind = Literal["create", "update", "unchanged", "skip", "link", "reply", "delete", "deleted"]
SENDING_KINDS = frozenset({"create", "update", "link", "reply", "delete"})
ONCE_KINDS = frozenset({"create", "link", "reply"})
"""POSTs: with no idempotency key, sent again only when certainly not processed."""
Cells = Mapping[str, str]
HeldStatus = Literal["held"]

_METHODS = {"create": "POST", "update": "PATCH", "link": "POST", "reply": "POST", "delete": "DELETE"}
_PATHS = {"create": "/ticket", "update": "/ticket/", "delete": "/ticket/", "link": "/ticket/external/",
          "reply": "/ticket/reply/"}

CLEARED_AS: dict[str, Any] = {"assignee": None, "priority": None, "tags": []}
"""What an emptied cell sends. Other fields cannot be emptied through the API."""


@dataclass(frozen=True)
class Change:
    """One field of an update: its old value (last sent) and new value ("" = cleared)."""

    field: str
    old: str
    new: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "old": self.old, "new": self.new}


class Operation(NamedTuple):
    """One request for a row. ``unchanged``, ``skip`` and ``deleted`` (a ticket already
    deleted) rows send nothing; ``link`` and ``reply`` follow a row's create (``seq``
    orders a ticket's replies).

    A NamedTuple (immutable, like a frozen dataclass) because a plan makes one per row
    and a NamedTuple is made about four times faster (bench/RESULTS.md, preflight).
    """

    row_number: int
    kind: Kind
    ticket_id: str | None
    payload: Mapping[str, Any]
    changes: tuple[Change, ...] = ()
    seq: int = 0

    @property
    def sends(self) -> bool:
        return self.kind in SENDING_KINDS

    @property
    def method(self) -> str:
        return _METHODS.get(self.kind, "")

    @property
    def path(self) -> str:
        prefix = _PATHS.get(self.kind)
        if prefix is None:
            return ""
        if self.kind == "create":
            return prefix
        # A link or reply to a ticket this push creates: its ID is known once the create is.
        return prefix + (self.ticket_id or f"{{ticket of row {self.row_number}}}")

    def as_dict(self) -> dict[str, Any]:
        """The operation as JSON-ready data; ``body`` is the payload itself (read-only)."""
        out: dict[str, Any] = {"row": self.row_number, "kind": self.kind, "method": self.method,
                               "path": self.path, "body": self.payload}
        if self.changes:
            out["changes"] = [c.as_dict() for c in self.changes]
        return out


@dataclass(frozen=True)
class Known:
    """A ticket the state store knows a create row already has (see :mod:`bulksync.journal`)."""

    ticket_id: str | None
    ticket_number: int | None
    error: str = ""
    key: str = ""
    """The journal entry behind it (for a pending create: the one to resolve)."""
    keys: tuple[str, ...] = ()
    """A row held for a stale save that may be any of several creates: their entries."""


@dataclass(frozen=True)
class Reconciliation:
    """The plan's creates against what the state store knows of the target.

    ``recovered``: created earlier from this sheet (or, by legacy ID, from any copy);
    ``matched``: another sheet made a ticket with the same cells (not created again
    unless duplicates are allowed); ``pending``: an earlier create of the row (or of
    another sheet's row with the same cells) has an unknown outcome: it is resolved
    before anything is resent.
    """

    target: str = ""
    recovered: Mapping[int, Known] = field(default_factory=dict)
    matched: Mapping[int, Known] = field(default_factory=dict)
    pending: Mapping[int, Known] = field(default_factory=dict)
    stale: Mapping[int, Known] = field(default_factory=dict)
    """Rows without an ID standing where a ticket was created from, edited since, in a sheet
    that lost every ID of that run (saved from a window opened before the push): not
    created (``Known.error`` says why and what to do)."""
    relinked: Mapping[int, Known] = field(default_factory=dict)
    """Such rows given their ticket back (``--relink``): updated, and the ID written back."""

    def settled_rows(self) -> set[int]:
        """Rows whose create is not sent now: known, matched, or waiting to be resolved (the
        stale ones are held: see ``Plan.holds``)."""
        return {*self.recovered, *self.matched, *self.pending}

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "recovered": sorted(self.recovered),
                "matched": sorted(self.matched), "pending": sorted(self.pending),
                "stale": sorted(self.stale), "relinked": sorted(self.relinked)}


@dataclass(frozen=True)
class Hold:
    """A row the plan holds back until the user decides: nothing of it is sent (neither its
    own request nor its links and replies).

    A push marks the row ``status`` (syncStatus) with ``message`` (syncError, this row's own
    words), counts it under that status and exits 1. ``said`` is what the terminal says of
    it, once for all the rows that share a line (one line per column, say), the rows as
    ranges in front; without it, the message. ``operation`` is what the row would send,
    sent after all when its ``code`` is released (:func:`settle_holds`, e.g.
    ``--send-reformatted`` releases ``reformatted``).
    """

    row_number: int
    message: str
    status: HeldStatus = "held"
    code: str = ""
    """Why, for a program: ``reformatted`` (a spreadsheet application re-wrote a value)."""
    ticket_id: str | None = None
    said: tuple[str, ...] = ()
    operation: Operation | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row_number, "status": self.status, "code": self.code,
                "ticketId": self.ticket_id, "message": self.message,
                "operation": None if self.operation is None else self.operation.as_dict()}


def hold_groups(holds: Sequence[Hold]) -> dict[tuple[str, str], list[int]]:
    """(status, what is said) → the rows it is said of, in order of their first row."""
    out: dict[tuple[str, str], list[int]] = {}
    for hold in sorted(holds, key=lambda h: h.row_number):
        for line in hold.said or (hold.message,):
            out.setdefault((hold.status, line), []).append(hold.row_number)
    return out


@dataclass(frozen=True)
class Plan:
    """The operations for the valid rows, in sheet order, and the rows that cannot be planned."""

    operations: tuple[Operation, ...]
    problems: tuple[Problem, ...] = field(default=())
    reconciliation: Reconciliation = field(default_factory=Reconciliation)
    held: tuple[tuple[int, str, str], ...] = ()
    """(row, link | reply, why): links and replies not sent because an earlier attempt's
    outcome is unknown."""
    holds: tuple[Hold, ...] = ()
    """Rows held back whole (see :class:`Hold`): they have no operation."""

    def counts(self) -> dict[str, int]:
        c = Counter(op.kind for op in self.operations)
        return {"create": c["create"], "update": c["update"], "unchanged": c["unchanged"],
                "skip": c["skip"], "link": c["link"], "reply": c["reply"], "hold": len(self.holds)}

    @property
    def requests(self) -> int:
        """Requests the plan sends now: creates the state already settles are not counted."""
        settled = self.reconciliation.settled_rows()
        return sum(1 for op in self.operations
                   if op.sends and not (op.kind == "create" and op.row_number in settled))


def settle_holds(plan: Plan, *, release: frozenset[str] = frozenset()) -> Plan:
    """The plan as it is sent: the holds whose ``code`` is in ``release`` let go (their
    operations back, in sheet order), and the links and replies of the rows still held
    left out, so that nothing of a held row is sent. A pure function."""
    freed = [h for h in plan.holds if h.code in release and h.operation is not None]
    kept = tuple(h for h in plan.holds if not (h.code in release and h.operation is not None))
    held_rows = {h.row_number for h in kept}
    if not freed and not any(op.row_number in held_rows for op in plan.operations if op.kind in ("link", "reply")):
        return plan
    rows = [op for op in plan.operations if op.kind not in ("link", "reply")]
    rows += [h.operation for h in freed if h.operation is not None]
    rows.sort(key=lambda op: op.row_number)  # stable: a row's own operations keep their order
    sides = [op for op in plan.operations if op.kind in ("link", "reply") and op.row_number not in held_rows]
    return replace(plan, operations=(*rows, *sides), holds=kept)


CHECK_SIDE = ("look at the ticket in Suptask: if it is not there, push with --resend-unresolved "
              "to send it again")


def plan_sides(tickets: Mapping[int, str | None], legacy: Mapping[int, str], *, integration: str,
               url: str | None, comments: Mapping[int, Sequence[Comment]],
               done: Mapping[tuple[str, str, int], str], resend: bool = False,
               ) -> tuple[tuple[Operation, ...], tuple[tuple[int, str, str], ...]]:
    """The links to old tickets and the replies (comment history) a migration sends, each
    once: (operations, held back). ``tickets`` maps a row to its ticket's ID, or to None when
    this push creates it (the operation then names the row, and is sent once the create
    succeeds). ``done`` is the state of earlier links and replies, by (kind, ticketId, seq).
    A reply whose earlier outcome is unknown holds back its thread's later replies, so a
    thread never gets out of order. A pure function."""
    ops: list[Operation] = []
    held: list[tuple[int, str, str]] = []
    if integration:
        for row in sorted(tickets):
            if row not in legacy:
                continue
            ticket_id = tickets[row]
            state = done.get(("link", ticket_id, 0)) if ticket_id else None
            if state == "done":
                continue
            if state in ("sending", "uncertain") and not resend:
                held.append((row, "link", f"link: an earlier attempt's outcome is unknown; {CHECK_SIDE}"))
                continue
            payload = {"externalId": legacy[row], "integrationType": integration}
            if url:
                payload["url"] = url.replace("{id}", legacy[row])
            ops.append(Operation(row, "link", ticket_id, payload))
    for row in sorted(comments):
        if row not in tickets:
            continue
        ticket_id = tickets[row]
        for seq, comment in enumerate(comments[row]):
            state = done.get(("reply", ticket_id, seq)) if ticket_id else None
            if state == "done":
                continue
            if state in ("sending", "uncertain") and not resend:
                held.append((row, "reply", f"reply {seq + 1}: an earlier attempt's outcome is unknown; "
                                           f"later replies wait; {CHECK_SIDE}"))
                break
            reply: dict[str, Any] = {"text": comment.body,
                                     "channel": ["requester" if comment.public else "responder"]}
            if comment.author:
                reply["username"] = comment.author
            ops.append(Operation(row, "reply", ticket_id, reply, seq=seq))
    return tuple(ops), tuple(held)


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",")]


def payload_of(cells: Cells) -> dict[str, Any]:
    """The JSON body for these cells, in the API's field order."""
    payload: dict[str, Any] = {}
    custom = []
    for name, value in cells.items():
        if name.startswith(CUSTOM_FIELD_PREFIX):
            custom.append({"fieldId": name[len(CUSTOM_FIELD_PREFIX):], "value": value})
        elif name == "tags":
            payload[name] = value.split(",")
        else:
            payload[name] = value
    ordered: dict[str, Any] = {name: payload[name] for name in API_FIELDS if name in payload}
    if custom:
        ordered["customFields"] = custom
    return ordered


def cells_of_payload(payload: Mapping[str, Any]) -> dict[str, str]:
    """The cells a payload sets (a cleared field is absent)."""
    cells: dict[str, str] = {}
    for name, value in payload.items():
        if name == "customFields":
            for cf in value:
                cells[CUSTOM_FIELD_PREFIX + cf["fieldId"]] = cf["value"]
        elif name == "tags":
            if value:
                cells[name] = ",".join(value)
        elif value is not None:
            cells[name] = value
    return cells


def apply_payload(baseline: Cells | None, payload: Mapping[str, Any]) -> dict[str, str]:
    """The ticket's cells after ``payload`` was applied to ``baseline``."""
    cells = dict(baseline or {})
    for name, value in payload.items():
        if name != "customFields" and (value is None or value == []):
            cells.pop(name, None)
    cells.update(cells_of_payload(payload))
    return cells


def _diff(cells: Cells, baseline: Cells, present: frozenset[str]) -> tuple[dict[str, Any], list[Change],
                                                                          list[str]]:
    """(payload, changes, fields emptied that cannot be)."""
    changed = {name: value for name, value in cells.items() if baseline.get(name) != value}
    payload = payload_of(changed)
    changes = [Change(name, baseline.get(name, ""), value) for name, value in changed.items()]
    refused: list[str] = []
    for name, old in baseline.items():
        if name in cells or name not in present:
            continue  # still set, or a column this sheet does not have: left as it is
        if name in CLEARED_AS:
            payload[name] = CLEARED_AS[name]
            changes.append(Change(name, old, ""))
        else:
            refused.append(name)
    return payload, changes, refused


def plan_rows(rows: Rows, *, exclude: frozenset[int] = frozenset(),
              baselines: Mapping[str, Cells] | None = None, force: bool = False) -> Plan:
    """One Operation per row of ``rows`` not in ``exclude``.

    Without a baseline a row sends its non-empty cells. With one, an update
    carries only what changed since (an emptied cell clears ``assignee`` and
    ``priority`` with null and ``tags`` with []); ``force`` sends every row in full.
    """
    frame = rows.frame
    every = {f: frame[f].tolist() for f in (*API_FIELDS, *rows.custom_fields)}
    names = [f for f, values in every.items() if any(values)]  # columns with something to send
    columns = [every[f] for f in names]
    tags_at = names.index("tags") if "tags" in names else -1
    tag_lists: list[list[str] | None] = []
    if tags_at >= 0:  # compare and send tags in one spelling: "a, b" is "a,b"
        # Each distinct cell is split once (tags repeat); every row gets its own list.
        split = {v: split_tags(v) for v in set(columns[tags_at]) if v}
        canonical = {v: ",".join(t) for v, t in split.items()}
        tag_lists = [split[v][:] if v else None for v in columns[tags_at]]
        columns[tags_at] = [canonical[v] if v else "" for v in columns[tags_at]]
    numbers: list[int] = frame.index.tolist()
    ids: list[str] = frame[TICKET_ID].tolist()
    baselines = baselines or {}

    keep = [i for i, row in enumerate(numbers) if row not in exclude] if exclude else range(len(numbers))
    diffed = [i for i in keep if ids[i] and ids[i] in baselines] if baselines else []
    plain = keep if not diffed else [i for i in keep if not (ids[i] and ids[i] in baselines)]
    ops = _plain_operations(plain, names, columns=columns, tag_lists=tag_lists, numbers=numbers, ids=ids)
    if not diffed:
        return Plan(tuple(ops))

    by_index = dict(zip(plain, ops, strict=True))
    problems: list[Problem] = []
    present = rows.present
    orders: dict[str, DateOrder | None] = {}
    rewritten: list[_Rewritten] = []
    for i in diffed:
        row, ticket_id = numbers[i], ids[i]
        baseline = baselines[ticket_id]
        cells = {name: values[i] for name, values in zip(names, columns, strict=True) if values[i]}
        payload, changes, refused = _diff(cells, baseline, present)
        if refused:
            problems.extend(Problem(row, name, f"was {baseline[name]!r} and is now empty, but "
                                               f"the API cannot empty {name}; put a value back",
                                    "cannot-empty", "")
                            for name in refused)
            continue
        if force:
            payload = {**payload_of(cells), **{k: v for k, v in payload.items() if k in CLEARED_AS
                                               and k not in cells}}
        op = Operation(row, "update" if payload else "unchanged", ticket_id, payload, tuple(changes))
        found = _rewrites(row, changes, rows, names=names, columns=columns, orders=orders) if changes else ()
        if found:
            rewritten.append(_Rewritten(op, found, tuple(c.field for c in changes
                                                         if c.field not in {f.field for f, _ in found})))
            continue
        by_index[i] = op
    return Plan(tuple(by_index[i] for i in keep if i in by_index), tuple(problems),
                holds=_reformat_holds(rewritten))


class _Rewritten(NamedTuple):
    """A row's update whose ``found`` changes are a spreadsheet's re-writing (``others``:
    the fields it edits besides)."""

    operation: Operation
    found: tuple[tuple[Change, Reformatting], ...]
    others: tuple[str, ...]


def _rewrites(row: int, changes: Sequence[Change], rows: Rows, *, names: list[str],
              columns: list[list[str]], orders: dict[str, DateOrder | None]
              ) -> tuple[tuple[Change, Reformatting], ...]:
    """The row's changes that are its own cells re-written by a spreadsheet application (not
    a value given by --set, which the sheet does not hold)."""
    found = []
    for change in changes:
        if not (change.old[:1] in _REWRITTEN_START and change.new[:1] in _REWRITE_START):
            continue  # every form below starts so: most edits are told at once
        if change.field not in orders:  # a column's date order, once, when it is needed
            orders[change.field] = (date_order(columns[names.index(change.field)])
                                    if change.field in names else None)
        kind = reformatting(change.old, change.new, order=orders[change.field])
        own = rows.own_cells.get(change.field)
        if kind is not None and own is not None and own.get(row) == change.new:
            found.append((change, kind))
    return tuple(found)


_REWRITTEN_START = frozenset("-+=@0123456789")
"""How a value that a re-save rewrites begins: a number, a date, or text taken for a formula."""
_REWRITE_START = frozenset(("", "#", "E", "T", "F", "t", "f", *"-0123456789"))
"""How what it becomes begins: a number or date, or a formula's result (an error, TRUE, FALSE
or nothing)."""


_WHAT_HAPPENED: dict[Reformatting, str] = {
    "long number": "LibreOffice or Excel rewrote the number when the file was saved",
    "leading zeros": ("LibreOffice or Excel took the text for a number and dropped its leading zeros "
                      "when the file was saved"),
    "trailing zeros": ("LibreOffice or Excel took the text for a number and dropped the zeros at the end "
                       "of its decimals when the file was saved"),
    "date": ("LibreOffice or Excel took the text for a date and wrote it in its own date format when the "
             "file was saved"),
    "time": ("LibreOffice or Excel took the text for a time and wrote it in its own time format when the "
             "file was saved"),
    "thousands separators": ("LibreOffice or Excel took the text for a number and dropped its thousands "
                             "separators when the file was saved"),
    "leading plus": ("LibreOffice or Excel took the text for a number and dropped its leading + when the file "
                     "was saved (as it does to phone numbers)"),
    "scientific notation": ("LibreOffice or Excel took the text for a number in scientific notation and wrote "
                            "the number out in its own way when the file was saved"),
    "negative zero": "LibreOffice or Excel took the text for the number -0 and wrote it as 0 when the file was saved",
    "formula": ("LibreOffice or Excel took the text for a formula and replaced it by its result when the file "
                "was saved (bulksync writes such values with a leading ', which keeps them text, when it "
                "writes them into a sheet)"),
}


def _remedy(*, many: bool) -> str:
    return ("format the column as Text (or import the CSV with that column as Text) and put the "
            + ("values back, or give --send-reformatted to send them as they are" if many else
               "value back, or give --send-reformatted to send it as it is"))


_ALSO_EDITED = ("the row has other edits too, held with it so that no row is sent in part: put the "
                "re-written values back (or give --send-reformatted) and push again to send them")


def _reformat_holds(rewritten: Sequence[_Rewritten]) -> tuple[Hold, ...]:
    """One Hold per row; what the terminal says is one line per column and what happened to
    it (the rows in front, as ranges), and one for the rows held with other edits."""
    groups: dict[tuple[str, Reformatting], list[tuple[str, str]]] = {}
    for r in rewritten:
        for change, kind in r.found:
            groups.setdefault((change.field, kind), []).append((change.old, change.new))
    said: dict[tuple[str, Reformatting], str] = {}
    for (name, kind), pairs in groups.items():
        old, new = pairs[0]
        many = len(pairs) > 1
        if all(p == pairs[0] for p in pairs):
            what = f"{name} holds {new} where bulksync last sent {old}"
        else:
            what = f"{name} holds values like {new} where bulksync last sent {old}"
        said[(name, kind)] = f"{what}: {_WHAT_HAPPENED[kind]}; {_remedy(many=many)}"
    holds = []
    for r in rewritten:
        op = r.operation
        parts = [f"{c.field} holds {c.new} where bulksync last sent {c.old}: {_WHAT_HAPPENED[kind]}"
                 for c, kind in r.found]
        message = "; ".join(parts) + "; " + _remedy(many=len(parts) > 1)
        lines = tuple(said[(c.field, kind)] for c, kind in r.found)
        if r.others:
            message += (f"; its other edits ({', '.join(r.others)}) are held with it, so that the row "
                        "is not sent in part")
            lines += (_ALSO_EDITED,)
        holds.append(Hold(op.row_number, message, code="reformatted", ticket_id=op.ticket_id,
                          said=lines, operation=op))
    return tuple(holds)


def _plain_operations(at: Sequence[int], names: list[str], *, columns: list[list[str]],
                      tag_lists: list[list[str] | None], numbers: list[int],
                      ids: list[str]) -> list[Operation]:
    """The Operations of the rows at positions ``at`` that have no baseline: every non-empty cell.

    Built column-wise, one comprehension per step, as a plan makes one per row.
    """
    everything = isinstance(at, range)

    def pick(values: list[Any]) -> list[Any]:
        return values if everything else [values[i] for i in at]

    standard = [(n, pick(tag_lists if n == "tags" else v)) for n, v in zip(names, columns, strict=True)
                if not n.startswith(CUSTOM_FIELD_PREFIX)]
    custom = [(n[len(CUSTOM_FIELD_PREFIX):], pick(v)) for n, v in zip(names, columns, strict=True)
              if n.startswith(CUSTOM_FIELD_PREFIX)]
    std_names = [n for n, _ in standard]
    payloads: list[dict[str, Any]]
    if standard and not custom and "tags" not in std_names and len(at) > 1 and all(
            v.count(v[0]) == len(v) for _, v in standard):
        # Every row sends the same body (a bulk close or edit by --set): one payload, shared
        # (an Operation's payload is read-only), so the journal and JSON see it once.
        payloads = [{k: v[0] for k, v in standard if v[0]}] * len(at)
    else:
        payloads = [
            dict(zip(std_names, c, strict=True)) if all(c)  # every cell filled: the fast path
            else {k: v for k, v in zip(std_names, c, strict=True) if v}
            for c in zip(*[v for _, v in standard], strict=True)
        ] if standard else [{} for _ in at]
    if custom:
        fids = [fid for fid, _ in custom]
        fields = [[{"fieldId": fid, "value": v} for fid, v in zip(fids, values, strict=True) if v]
                  for values in zip(*[v for _, v in custom], strict=True)]
        for payload, these in zip(payloads, fields, strict=True):
            if these:
                payload["customFields"] = these
    tids = [t or None for t in pick(ids)]
    kinds: list[Kind] = ["create" if t is None else ("update" if p else "skip")
                         for t, p in zip(tids, payloads, strict=True)]
    return list(map(Operation, pick(numbers), kinds, tids, payloads))


# -- a spreadsheet's reformatting is not an edit ----------------------------------------------

Reformatting = Literal["long number", "leading zeros", "trailing zeros", "date", "time", "thousands separators",
                       "leading plus", "scientific notation", "negative zero", "formula"]
DateOrder = Literal["mdy", "dmy"]

_PLAIN_NUMBER = re.compile(r"(-?)(\d+)(?:([.,])(\d+))?")
_EXPONENT_FORM = re.compile(r"(-?\d)(?:[.,](\d+))?[eE]\+(\d{1,3})")
_WHOLE = re.compile(r"-?\d+")
_GROUPED = re.compile(r"([+-]?)([1-9]\d{0,2})((?P<g>[,. \u00a0\u202f])\d{3}(?:(?P=g)\d{3})*)(?:([.,])(\d+))?")
_SIGNED = re.compile(r"([+-])(\d+(?:[.,]\d+)?)")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d{1,3}")
_NUMBER_SHOWN = re.compile(r"-?\d+(?:[.,]\d+)?(?:[eE][+-]?\d{1,3})?")
_FORMULA_ERROR = re.compile(r"#(?:NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|SPILL!|CALC!|FIELD!|BLOCKED!|BUSY!|"
                            r"CONNECT!|UNKNOWN!|GETTING_DATA)|Err:\d{3}")
_TIME = (r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,6}))?)?"
         r"(?:\s*(?P<ap>[AaPp])\.?[Mm]\.?)?")
_TIME_ONLY = re.compile(_TIME)
_ISO_DATE = re.compile(rf"(?P<y>\d{{4}})-(?P<mo>\d{{1,2}})-(?P<d>\d{{1,2}})(?:[T ]{_TIME})?")
_YEAR_FIRST = re.compile(rf"(?P<y>\d{{4}})(?P<sep>[/.])(?P<mo>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})(?:\s+{_TIME})?")
_YEAR_LAST = re.compile(rf"(?P<a>\d{{1,2}})(?P<sep>[/.-])(?P<b>\d{{1,2}})(?P=sep)(?P<y>\d{{4}}|\d{{2}})\.?"
                        rf"(?:,?\s+{_TIME})?")
_MONTH_NAMED = re.compile(rf"(?P<d>\d{{1,2}})(?P<sep>[- ])(?P<mon>[A-Za-z]{{3,9}})\.?(?P=sep)"
                          rf"(?P<y>\d{{4}}|\d{{2}})(?:\s+{_TIME})?")
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


class _When(NamedTuple):
    """One reading of a date or time cell. ``short_year``: written with two digits (``26``),
    which stand for any century's year ending in them. No date: a time of day alone."""

    date: tuple[int, int, int] | None
    short_year: bool
    time: tuple[int, int, int, int]

    def same(self, other: _When) -> bool:
        if self.time != other.time or (self.date is None) != (other.date is None):
            return False
        if self.date is None or other.date is None:
            return True
        (y1, m1, d1), (y2, m2, d2) = self.date, other.date
        if (m1, d1) != (m2, d2):
            return False
        return y1 % 100 == y2 % 100 if self.short_year or other.short_year else y1 == y2


def reformatting(old: str, new: str, *, order: DateOrder | None = None) -> Reformatting | None:
    """How a spreadsheet application's re-save turned ``old`` (what bulksync last sent) into
    ``new``, or None: ``new`` is an edit (or no change at all). A pure function.

    What Excel and LibreOffice do to a cell they take for a number or a date, and write
    back in their own format when the file is saved (a CSV opened and saved again, or a
    text cell replaced by a number or date cell in a workbook):

    * ``long number``: a whole number written with fewer digits, as the application's
      15 significant digits (or a float's 17) allow: in scientific notation, any exponent
      width, ``E`` or ``e``, a point or a comma (``1234567890123456789`` →
      ``1.23456789012346E+018``, ``1.23457E+18``, ``1.2345678901234568e+18``), or with
      zeros for the digits lost (``1234567890123450000``). The mantissa must be the old
      number rounded (or cut) to the digits it has;
    * ``leading zeros``: all of them dropped (``00123`` → ``123``; ``0123`` is an edit:
      an application drops every leading zero, never some);
    * ``trailing zeros``: all the zeros ending a decimal dropped (``2.10`` → ``2.1``,
      ``3.0`` → ``3``). Zeros added (``1.5`` → ``1.50``) are an edit: General format never
      writes them, and only a number format someone chose does;
    * ``date`` / ``time``: the same instant in another spelling (``2026-01-05`` →
      ``1/5/2026``, ``05/01/2026``, ``01/05/26``, ``05.01.2026``, ``5-Jan-2026``,
      ``2026-01-05 00:00:00``; ``14:30`` → ``14:30:00``, ``2:30 PM``). A date without a
      time is midnight, a time without seconds has none: ``2026-01-05`` → ``1/5/2026
      14:30`` is an edit. Day and month are read both ways (``1/5/2026`` is 5 January or
      1 May) unless ``order`` says which (a column whose other cells show it, see
      :func:`date_order`); an ambiguous value counts when one reading is ``old``;
    * ``thousands separators``: dropped from a real grouping (``1,000`` → ``1000``,
      ``1,234,567.50`` → ``1234567.5``; groups of three after a first of one to three digits
      not starting with 0: ``1,00`` → ``100`` is an edit). A point groups too
      (``1.000`` → ``1000``, as a German or French LibreOffice reads it; an English one
      reads ``1.000`` as 1: ``trailing zeros``). A comma followed by three digits is a
      grouping only, never a decimal comma: ``1,000`` → ``1`` is an edit;
    * ``leading plus``: ``+4915112345678`` → ``4915112345678`` (and what the number's
      digits may undergo besides, as above);
    * ``scientific notation``: ``1e5`` → ``100000``, ``1E3`` → ``1000``, ``4E12`` →
      ``4E+12``: the same number, in the application's way;
    * ``negative zero``: ``-0`` → ``0``;
    * ``formula``: text that begins as a formula does (``=``, or ``+``, ``-``, ``@`` before
      something that is not a plain number), replaced by what looks like a formula's
      result: a number, ``TRUE`` or ``FALSE``, an error (``#NAME?``, ``Err:508``) or
      nothing (``=1+1`` → ``2``). The formula is not evaluated, so any such result counts,
      and only such results: ``=A1&B1`` → ``ab`` is an edit, as is ``=5`` → ``6``
      (a constant's result is known).
    """
    if old == new or not old:
        return None
    if not new:
        return _formula_result(old, new)
    return (_number_rewrite(old, new) or _notation_rewrite(old, new) or _date_rewrite(old, new, order)
            or _formula_result(old, new))


def _number_rewrite(old: str, new: str) -> Reformatting | None:
    plain = _PLAIN_NUMBER.fullmatch(old)
    if plain is None:
        return None
    sign, whole, sep, fraction = plain.groups()
    if sep is None:
        significant = whole.lstrip("0")
        if new == sign + (significant or "0"):
            return "leading zeros"
        return "long number" if significant and _same_long_number(int(sign + significant), new) else None
    if sep == "," and len(fraction) == 3:  # 1,000: a thousands separator, not a decimal comma
        return None
    kept = fraction.rstrip("0")
    if new == sign + (whole.lstrip("0") or "0") + (sep + kept if kept else ""):
        return "leading zeros" if (whole.lstrip("0") or "0") != whole else "trailing zeros"
    return None


def _notation_rewrite(old: str, new: str) -> Reformatting | None:
    """A number that the application reads whatever its notation (grouped, with a sign, in
    scientific notation) written as it writes numbers (see :func:`_written_as`)."""
    grouped = _GROUPED.fullmatch(old)
    if grouped is not None:
        sign, first, groups, separator, point, fraction = grouped.groups()
        if point is None or point != separator:
            digits = first + groups.replace(separator, "")
            number = f"{sign}{digits}" + (f".{fraction}" if fraction else "")
            kept = (number, number.replace(".", point)) if point else (number,)  # decimals as they were
            if new in kept or _written_as(number, new) or (
                    not fraction and _same_long_number(int(sign + digits), new)):
                return "thousands separators"
        return None
    signed = _SIGNED.fullmatch(old)
    if signed is not None:
        sign, rest = signed.groups()
        if sign == "+":
            return "leading plus" if (_number_rewrite(rest, new) or rest == new
                                      or _written_as(rest, new)) else None
        if rest.strip("0.,") == "" and new == "0":
            return "negative zero"
        return None
    if _SCIENTIFIC.fullmatch(old) and _written_as(old, new):
        return "scientific notation"
    return None


def _written_as(number: str, new: str) -> bool:
    """Is ``new`` the value of ``number`` (digits, a point or comma, an exponent) as an
    application writes a number in General format: no leading or trailing zeros, ``0``
    for zero, a point or a comma for the decimals, or in scientific notation (a value
    with more digits than it keeps is a ``long number``, told apart above)?"""
    from decimal import Decimal, InvalidOperation

    if not _NUMBER_SHOWN.fullmatch(new):
        return False
    try:
        value = Decimal(number.replace(",", "."))
        shown = Decimal(new.replace(",", "."))
    except InvalidOperation:
        return False
    if value != shown:
        return False
    if "e" in new.lower():
        return True
    text = new.lstrip("-")
    whole, _, fraction = text.replace(",", ".").partition(".")
    plain = (whole == "0" or not whole.startswith("0")) and not fraction.endswith("0") and (
        not new.startswith("-") or value != 0)
    return plain and (bool(fraction) or "." not in text.replace(",", "."))


def _formula_result(old: str, new: str) -> Reformatting | None:
    """``old`` begins as a formula and ``new`` looks like what a formula gives."""
    if len(old) < 2 or old[0] not in "=+-@" or old[1:].isspace():
        return None
    body = old[1:].strip()
    if _PLAIN_NUMBER.fullmatch(body.lstrip("+-")):  # a constant: its result is known
        value = ("-" if (old[0] == "-") != body.startswith("-") else "") + body.lstrip("+-")
        return "formula" if _written_as(value, new) else None
    if new == "" or new.upper() in ("TRUE", "FALSE") or _FORMULA_ERROR.fullmatch(new):
        return "formula"
    return "formula" if _NUMBER_SHOWN.fullmatch(new) else None


def _same_long_number(number: int, new: str) -> bool:
    """Is ``new`` the whole ``number`` with fewer significant digits, as an application
    writes it: rounded or cut to the digits shown, or from the nearest float (a workbook's
    number cell)?"""
    from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal

    exponent = _EXPONENT_FORM.fullmatch(new)
    if exponent is not None:
        lead, rest, power = exponent.groups()
        shown = Decimal(f"{lead}.{rest}" if rest else lead).scaleb(int(power))
        widths = [len(lead.lstrip("-") + (rest or ""))]
    elif _WHOLE.fullmatch(new) and not new.lstrip("-").startswith("0"):
        shown, widths = Decimal(new), [15, 16, 17]
    else:
        return False
    exact = Decimal(number)
    if abs(exact.adjusted() - shown.adjusted()) > 1 or exact.adjusted() > 300:
        return False
    context = Context(prec=400)

    def rounded(value: Decimal, width: int, how: str = ROUND_HALF_UP) -> Decimal:
        step = value.adjusted() - width + 1
        return value.scaleb(-step, context).to_integral_value(how).scaleb(step, context)

    # What the application holds: Excel's 15 digits (cut, as typing or opening a CSV cuts
    # them), or the nearest float (LibreOffice, a workbook's number cell); then shown rounded.
    held = (exact, rounded(exact, 15, ROUND_DOWN), Decimal(float(number)))
    return shown in held or any(rounded(value, width) == shown for value in held for width in widths)


def _date_rewrite(old: str, new: str, order: DateOrder | None) -> Reformatting | None:
    before = _readings(old, None)
    if not before:
        return None
    after = _readings(new, order)
    for a in after:
        if any(a.same(b) for b in before):
            return "date" if a.date is not None else "time"
    return None


def _readings(text: str, order: DateOrder | None) -> list[_When]:
    """The instants ``text`` may stand for: none if it is no date or time as applications
    write them, two if day and month may be read both ways."""
    if not any(c.isdigit() for c in text[:2]) or len(text) > 40:
        return []
    found = _ISO_DATE.fullmatch(text) or _YEAR_FIRST.fullmatch(text)
    if found is not None:
        return _dated(int(found["y"]), int(found["mo"]), int(found["d"]), short=False, found=found)
    found = _YEAR_LAST.fullmatch(text)
    if found is not None:
        a, b, y = int(found["a"]), int(found["b"]), found["y"]
        readings = []
        if order != "dmy":
            readings += _dated(int(y), a, b, short=len(y) == 2, found=found)
        if order != "mdy" and a != b:
            readings += _dated(int(y), b, a, short=len(y) == 2, found=found)
        return readings
    found = _MONTH_NAMED.fullmatch(text)
    if found is not None:
        month = _MONTHS.get(found["mon"][:3].lower())
        if month is None or (len(found["mon"]) > 3 and not _is_month_name(found["mon"])):
            return []
        return _dated(int(found["y"]), month, int(found["d"]), short=len(found["y"]) == 2, found=found)
    found = _TIME_ONLY.fullmatch(text)
    if found is not None:
        time = _time_of(found)
        return [] if time is None else [_When(date=None, short_year=False, time=time)]
    return []


def _is_month_name(word: str) -> bool:
    import calendar

    return word.lower() in {calendar.month_name[i].lower() for i in range(1, 13)} or word.lower() == "sept"


def _dated(year: int, month: int, day: int, *, short: bool, found: re.Match[str]) -> list[_When]:
    import datetime as dt

    try:
        dt.date(2000 + year if short else year, month, day)
    except ValueError:
        return []
    time = _time_of(found) if found["h"] is not None else (0, 0, 0, 0)
    return [] if time is None else [_When(date=(year, month, day), short_year=short, time=time)]


def _time_of(found: re.Match[str]) -> tuple[int, int, int, int] | None:
    hour, minute = int(found["h"]), int(found["mi"])
    second = int(found["s"] or 0)
    micro = int((found["f"] or "0").ljust(6, "0"))
    if found["ap"] is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if found["ap"] in "Pp" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second, micro


def date_order(values: Sequence[str]) -> DateOrder | None:
    """The order of day and month in a column's dates, when its cells show it: a cell like
    ``13/1/2026`` (day first) or ``1/13/2026`` (month first), and none the other way."""
    month_first = day_first = False
    for value in values:
        found = _YEAR_LAST.fullmatch(value) if value[:1].isdigit() else None
        if found is not None:
            a, b = int(found["a"]), int(found["b"])
            month_first = month_first or (b > 12 >= a)
            day_first = day_first or (a > 12 >= b)
    if month_first == day_first:
        return None
    return "mdy" if month_first else "dmy"


def excuse_reformatted(report: ValidationReport, rows: Rows, baselines: Mapping[str, Cells]) -> ValidationReport:
    """The report without its ``lost-digits`` problems of cells that hold, with fewer digits,
    the very number bulksync last sent for the row's ticket: the plan holds those rows (or
    sends them with ``--send-reformatted``), knowing the number. Without a baseline (a create)
    the digits are lost indeed, and the problem stays."""
    lost = [p for p in report.problems if p.code == "lost-digits" and p.value]
    if not lost or not baselines:
        return report
    frame = rows.frame
    excused = set()
    for p in lost:
        if p.row_number not in frame.index:
            continue
        baseline = baselines.get(str(frame.at[p.row_number, TICKET_ID]))
        value = (p.value or "").strip()
        if baseline and any(frame.at[p.row_number, name] == value
                            and reformatting(baseline.get(name, ""), value) == "long number"
                            for name in rows.custom_fields):
            excused.add(id(p))
    if not excused:
        return report
    return replace(report, problems=tuple(p for p in report.problems if id(p) not in excused))
