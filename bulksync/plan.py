"""Rows → Operations: what each row asks of the API (the plan stage, a pure function)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bulksync.columns import API_FIELDS, CUSTOM_FIELD_PREFIX, TICKET_ID, Rows

__all__ = ["Operation", "Plan", "plan_rows"]

Kind = Literal["create", "update", "skip"]


@dataclass(frozen=True)
class Operation:
    """One row's request. ``skip`` rows have nothing to send."""

    row_number: int
    kind: Kind
    ticket_id: str | None
    payload: Mapping[str, Any]

    @property
    def method(self) -> str:
        return {"create": "POST", "update": "PATCH", "skip": ""}[self.kind]

    @property
    def path(self) -> str:
        if self.kind == "create":
            return "/ticket"
        if self.kind == "update":
            return f"/ticket/{self.ticket_id}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row_number, "kind": self.kind, "method": self.method,
                "path": self.path, "body": dict(self.payload)}


@dataclass(frozen=True)
class Plan:
    """The operations for the valid rows, in sheet order."""

    operations: tuple[Operation, ...]

    def counts(self) -> dict[str, int]:
        c = Counter(op.kind for op in self.operations)
        return {"create": c["create"], "update": c["update"], "skip": c["skip"]}

    @property
    def requests(self) -> int:
        return sum(1 for op in self.operations if op.kind != "skip")


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",")]


def plan_rows(rows: Rows, *, exclude: frozenset[int] = frozenset()) -> Plan:
    """One Operation per row of ``rows`` not in ``exclude``; empty cells are not sent."""
    frame = rows.frame
    fields = [f for f in API_FIELDS if frame[f].ne("").any()]
    custom = [f for f in rows.custom_fields if frame[f].ne("").any()]
    numbers = frame.index.tolist()
    ids = frame[TICKET_ID].tolist()
    field_values = [frame[f].tolist() for f in fields]
    custom_values = [frame[f].tolist() for f in custom]
    custom_ids = [f[len(CUSTOM_FIELD_PREFIX):] for f in custom]

    ops: list[Operation] = []
    for i, row in enumerate(numbers):
        if row in exclude:
            continue
        payload: dict[str, Any] = {}
        for name, values in zip(fields, field_values, strict=True):
            value = values[i]
            if value:
                payload[name] = split_tags(value) if name == "tags" else value
        cf = [{"fieldId": fid, "value": values[i]} for fid, values in zip(custom_ids, custom_values, strict=True)
              if values[i]]
        if cf:
            payload["customFields"] = cf
        ticket_id = ids[i] or None
        if ticket_id is None:
            kind: Kind = "create"
        else:
            kind = "update" if payload else "skip"
        ops.append(Operation(row_number=int(row), kind=kind, ticket_id=ticket_id, payload=payload))
    return Plan(tuple(ops))
