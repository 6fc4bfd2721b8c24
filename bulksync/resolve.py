"""Resolve uncertain creates by reading the ticket numbers around them.

A create whose answer was lost may or may not have made a ticket. Ticket
numbers are handed out in order, so if the journal knows the highest number
answered *before* the create was sent (``lo``) and the lowest number of a
create sent *after* the server was surely done with it (``hi``), the ticket,
if it exists, has a number between them. Each number in between that is not
already one of ours is read (``GET /ticket/{n}``) and compared with what was
sent:

* one match: the create did happen; its ID is recovered (``resolved``);
* every number read, none matches, both ends known: it did not happen
  (``absent``) and may safely be sent again;
* anything less (a read failed, an end is unknown): still ``uncertain``.

What this cannot prove: a match only shows that a ticket with the same
description and form exists in that range (someone could have filed the
same text by hand at that moment); a ticket deleted since reads as absent;
the reads assume the API numbers tickets without gaps and that the server is
done with a request once ``settle`` seconds have passed since it was sent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bulksync.journal import CreateEntry

if TYPE_CHECKING:
    from bulksync.api import SuptaskClient
    from bulksync.runner import RunStats

__all__ = ["NOT_SETTLED", "Outcome", "resolve_uncertain", "same_ticket", "window"]

SCAN_LIMIT = 50
"""At most this many numbers are read per uncertain create."""
END_RUN = 3
"""With no known upper end, this many 404s in a row mark the end of the numbers."""

Verdict = Literal["resolved", "absent", "uncertain"]
NOT_SETTLED = "the server may still be working on it"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    ticket_id: str | None = None
    ticket_number: int | None = None
    reason: str = ""


def window(entry: CreateEntry, created: list[CreateEntry], settle: float) -> tuple[int | None, int | None]:
    """(lo, hi): the ticket, if any, has a number strictly between them (None: unknown)."""
    settled = entry.settled_at if entry.settled_at is not None else entry.sent_at + settle
    after = [e.ticket_number for e in created
             if e.ticket_number is not None and e.sent_at > settled]
    return entry.lower_number, (min(after) if after else None)


def same_ticket(payload: Mapping[str, Any], ticket: Mapping[str, Any]) -> bool:
    """Does the ticket read back look like the one this payload would have made?

    Only fields a later edit in Slack is unlikely to change are compared: the
    description must be equal; formId and requesterChannel too, where the API shows them.
    """
    if ticket.get("description") != payload.get("description"):
        return False
    return all(ticket.get(f) in (None, payload.get(f)) for f in ("formId", "requesterChannel"))


async def resolve_uncertain(client: SuptaskClient, pending: list[CreateEntry],
                            created: list[CreateEntry], *, settle: float,
                            stats: RunStats | None = None) -> dict[str, Outcome]:
    """An Outcome per pending entry (by key). Reads are cached and shared between entries;
    each is counted in ``stats.requests``."""
    import httpx

    from bulksync.api import ticket_id_of
    from bulksync.policy import classify
    from bulksync.runner import Pacer, failure_of

    # The run's one pacer: reads share the budget with creates, links and replies.
    pacer = stats.pacer if stats is not None and stats.pacer is not None else Pacer()
    if stats is not None:
        stats.pacer = pacer
    cache: dict[int, tuple[int, Any]] = {}
    claimed = {e.ticket_number for e in created if e.ticket_number is not None}
    taken = {e.ticket_id.lower() for e in created if e.ticket_id}
    now = time.time()

    async def read(number: int) -> tuple[int, Any]:
        if number not in cache:
            status, body = 0, None
            for attempt in range(1, 4):
                await pacer.acquire()
                if stats is not None:
                    stats.requests += 1
                try:
                    response = await client.request("GET", f"/ticket/{number}")
                except httpx.TransportError as e:  # this read is inconclusive unless retried
                    status = 0
                    if classify("GET", failure_of(e), attempt=attempt) in ("retry", "retry-unsent"):
                        continue
                    break
                finally:
                    pacer.release()
                pacer.observe(response)
                status = response.status_code
                if status >= 400 and classify("GET", "status", status, attempt=attempt) in (
                        "retry", "retry-unsent"):
                    continue
                try:
                    body = response.json()
                except ValueError:
                    body = None
                break
            cache[number] = (status, body)
        return cache[number]

    outcomes: dict[str, Outcome] = {}
    for entry in sorted(pending, key=lambda e: e.sent_at):
        settled = entry.settled_at if entry.settled_at is not None else entry.sent_at + settle
        if settled > now:
            outcomes[entry.key] = Outcome("uncertain", reason=NOT_SETTLED)
            continue
        lo, hi = window(entry, created, settle)
        if lo is None and hi is None:
            outcomes[entry.key] = Outcome("uncertain", reason="no ticket numbers are known around it")
            continue
        start = lo + 1 if lo is not None else max(1, hi - SCAN_LIMIT)  # type: ignore[operator]
        stop = hi if hi is not None else start + SCAN_LIMIT
        conclusive = lo is not None
        misses = 0
        match: tuple[str, int] | None = None
        for number in range(start, min(stop, start + SCAN_LIMIT)):
            if number in claimed:
                misses = 0
                continue
            status, body = await read(number)
            if status == 200 and isinstance(body, dict):
                misses = 0
                # Believed only as a new ticket's UUID, not one another row already has.
                found = ticket_id_of(body.get("id"))
                if same_ticket(entry.payload, body) and found is not None and found not in taken:
                    match = (found, number)
                    break
            elif status == 404:
                misses += 1
                if hi is None and misses >= END_RUN:
                    break
            else:
                conclusive = False
        else:
            if hi is None or stop > start + SCAN_LIMIT:
                conclusive = False
        if match:
            claimed.add(match[1])
            taken.add(match[0])
            outcomes[entry.key] = Outcome("resolved", match[0], match[1])
        elif conclusive:
            outcomes[entry.key] = Outcome("absent")
        else:
            outcomes[entry.key] = Outcome("uncertain", reason="the ticket numbers around it could "
                                                              "not all be read")
    return outcomes
