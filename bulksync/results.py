"""Per-row outcomes and the run summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bulksync.places import row_ranges

if TYPE_CHECKING:
    import pandas as pd

    from bulksync.columns import ValidationReport
    from bulksync.errors import BulksyncError
    from bulksync.plan import Hold

__all__ = ["PushResult", "RowResult", "RunResult", "Status"]

Status = Literal["created", "updated", "unchanged", "deleted", "pulled", "failed", "conflict",
                 "uncertain", "invalid", "skipped", "held", "undone", "kept"]
STATUSES: tuple[Status, ...] = ("created", "updated", "unchanged", "deleted", "pulled", "failed",
                                "conflict", "uncertain", "invalid", "skipped", "held", "undone", "kept")
"""``held``: not sent until the user decides (a row standing where a ticket's row was, without
its ID; a value a spreadsheet application re-wrote): ``syncError`` says why and what to do.
``undone``: an undo took the row's run back; ``kept``: it left some of it, saying why (a field
changed in Suptask since)."""
OK_STATUSES = frozenset({"created", "updated", "unchanged", "deleted", "pulled", "skipped", "undone"})


@dataclass(frozen=True)
class RowResult:
    """What happened to one row (spreadsheet row number, header = 1)."""

    row_number: int
    status: Status
    ticket_id: str | None = None
    ticket_number: int | None = None
    error: str = ""
    via: str = ""
    """How a ``created`` row's ID was obtained when not from this run's answer:
    ``journal`` (an earlier run's answer), ``resolved`` (found by reading ticket numbers) or
    ``matched`` (made from another sheet with the same cells). ``busy``: an ``uncertain`` row
    not sent because another run is creating it. ``already``: a ``deleted`` row whose ticket
    was deleted before (nothing sent)."""

    raw: str = field(default="", repr=False)
    """An answer that could not be believed, for the journal only (never the sheet)."""

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row_number, "status": self.status, "ticketId": self.ticket_id,
                "ticketNumber": self.ticket_number, "error": self.error}


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run (push, pull, delete, or an undo's requests): one RowResult per row
    that was planned, and where they were written."""

    path: Path
    results: Mapping[int, RowResult]
    requests: int
    written_to: Path | None
    ignored_columns: tuple[str, ...] = ()
    report: ValidationReport | None = None
    refused: bool = False
    stopped: str = ""
    interrupted: bool = False
    note: str = ""
    side: Mapping[str, int] = field(default_factory=dict)
    """Links and replies: ``linked``, ``replied``, and ``link_failed``, ``reply_uncertain``…"""
    target: str = ""
    """The API pushed to (URL, whether it is a local sandbox, the token's fingerprint)."""
    error: BulksyncError | None = None
    """Why the run stopped, as a typed error (``AuthError``, ``ApiUnreachable``, ``StateError``);
    ``stopped`` is its message."""
    run_report: Path | None = None
    """The run report written (``--report``, or a migration's by default), if any."""
    cells_changed: int = 0
    """A pull's: the sheet's cells it changed."""
    holds: tuple[Hold, ...] = ()
    """The plan's rows held back: the summary says each of their lines once, for all its rows."""
    counts: Mapping[str, int] = field(init=False)

    def __post_init__(self) -> None:
        c = Counter(r.status for r in self.results.values())
        object.__setattr__(self, "counts", {s: c[s] for s in STATUSES})

    @property
    def beside(self) -> bool:
        """The outcomes went into a results file beside the sheet, not into the sheet."""
        return self.written_to is not None and self.written_to != self.path

    @property
    def ok(self) -> bool:
        side_problems = any(n for k, n in self.side.items() if k not in ("linked", "replied"))
        return (not (self.stopped or self.refused or self.interrupted or side_problems or self.beside)
                and all(r.status in OK_STATUSES for r in self.results.values()))

    def to_frame(self) -> pd.DataFrame:
        """Each row's outcome as a pandas DataFrame, indexed by spreadsheet row number: status,
        ticketId, ticketNumber, error (for a notebook, or a join with the sheet)."""
        import pandas as pd

        rows = sorted(self.results.values(), key=lambda r: r.row_number)
        return pd.DataFrame({"status": [r.status for r in rows], "ticketId": [r.ticket_id for r in rows],
                             "ticketNumber": pd.array([r.ticket_number for r in rows], dtype="Int64"),
                             "error": [r.error for r in rows]},
                            index=pd.Index([r.row_number for r in rows], name="row"))

    def summary(self) -> dict[str, Any]:
        vias = Counter(r.via for r in self.results.values())
        return {
            "file": str(self.path),
            "target": self.target,
            **self.counts,
            "recovered": vias["journal"],
            "resolved": vias["resolved"],
            "matched": vias["matched"],
            "already": vias["already"],
            "linked": self.side.get("linked", 0),
            "replied": self.side.get("replied", 0),
            **{k: n for k, n in sorted(self.side.items()) if k not in ("linked", "replied")},
            "requests": self.requests,
            "cells_changed": self.cells_changed,
            "written_to": str(self.written_to) if self.written_to else None,
            "run_report": str(self.run_report) if self.run_report else None,
            "ignored_columns": list(self.ignored_columns),
            "stopped": self.stopped or None,
            "refused": self.refused,
            "interrupted": self.interrupted,
            "note": self.note or None,
            "problems": [r.as_dict() for r in sorted(self.results.values(), key=lambda r: r.row_number)
                         if r.status not in OK_STATUSES],
            "groups": [{"status": status, "error": error, "count": len(rows), "rows": row_ranges(rows)}
                       for (status, error), rows in self.groups().items()],
        }

    def groups(self) -> dict[tuple[str, str], list[int]]:
        """The rows that did not succeed, by (status, error), in order of their first row: 37
        rows failing with one message are one line of the summary."""
        from bulksync.plan import hold_groups

        held = {h.row_number for h in self.holds
                if h.row_number in self.results and self.results[h.row_number].status == h.status}
        out: dict[tuple[str, str], list[int]] = {}
        for r in sorted(self.results.values(), key=lambda r: r.row_number):
            if r.status not in OK_STATUSES and r.row_number not in held:
                out.setdefault((r.status, r.error), []).append(r.row_number)
        if held:  # a held row's lines are said once for all the rows they name
            out.update(hold_groups([h for h in self.holds if h.row_number in held]))
            out = dict(sorted(out.items(), key=lambda item: item[1][0]))
        return out


PushResult = RunResult
""":class:`RunResult`'s name before 0.2.0, kept so code written for 0.1 still imports it."""
