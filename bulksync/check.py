"""Conflict checks before a push (``push --check``): the sheet is not the only writer.

Agents change tickets in Slack all day. Before an update is sent, its ticket is read and
each field is compared three ways: the *baseline* (what bulksync last pushed or pulled),
the *sheet*, and the *server*. A field changed on both sides to different values is a
conflict (the row is not sent); a field changed only on the server is taken into the
sheet (not sent back); a field changed only in the sheet is sent. A pure function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bulksync.plan import CLEARED_AS, Operation, payload_of, split_tags

__all__ = ["Conflict", "Verdict", "decide", "same"]


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
        if same(name, ours, theirs):
            seen[name] = theirs
            continue
        if name in forced or force or baseline is None:
            # An empty cell clears only what bulksync itself had set (as plain --force does).
            if ours or (name in CLEARED_AS and baseline is not None and baseline.get(name)):
                send[name] = ours
            continue
        was = baseline.get(name, "")
        if same(name, ours, was):  # only the server changed it: the sheet learns it
            taken[name] = theirs
        elif same(name, theirs, was):  # only the sheet changed it: sent
            send[name] = ours
        else:
            conflicts.append(Conflict(name, ours, theirs, was))
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
