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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bulksync.clock import SYSTEM
from bulksync.engine import read_number
from bulksync.journal import CreateEntry

if TYPE_CHECKING:
    from bulksync.api import SuptaskClient
    from bulksync.engine import Pacer, RunStats

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
    settled = entry.settled_by(settle)
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
    from bulksync.engine import Pacer

    # The run's one pacer: reads share the budget with creates, links and replies.
    pacer = stats.paced() if stats is not None else Pacer(clock=SYSTEM)
    resolver = _Resolver(client, pacer, stats, created, settle)
    outcomes: dict[str, Outcome] = {}
    for entry in sorted(pending, key=lambda e: e.sent_at):
        outcomes[entry.key] = await resolver.outcome(entry)
    return outcomes


class _Resolver:
    """What the entries of one ``resolve_uncertain`` share: the reads so far, and the ticket
    numbers and IDs already ours (a ticket found for one entry is not another's)."""

    def __init__(self, client: SuptaskClient, pacer: Pacer, stats: RunStats | None,
                 created: list[CreateEntry], settle: float) -> None:
        self.client = client
        self.pacer = pacer
        self.stats = stats
        self.created = created
        self.settle = settle
        self.cache: dict[int, tuple[int, Any]] = {}
        self.claimed = {e.ticket_number for e in created if e.ticket_number is not None}
        self.taken = {e.ticket_id.lower() for e in created if e.ticket_id}
        self.now = pacer.clock.time()  # the settle time is waited out on the run's clock

    async def outcome(self, entry: CreateEntry) -> Outcome:
        settled = entry.settled_by(self.settle)
        if settled > self.now:
            return Outcome("uncertain", reason=NOT_SETTLED)
        lo, hi = window(entry, self.created, self.settle)
        if lo is None and hi is None:
            return Outcome("uncertain", reason="no ticket numbers are known around it")
        start = lo + 1 if lo is not None else max(1, hi - SCAN_LIMIT)  # type: ignore[operator]
        stop = hi if hi is not None else start + SCAN_LIMIT
        match, complete = await self.search(entry, start, stop, hi)
        if match:
            self.claimed.add(match[1])
            self.taken.add(match[0])
            return Outcome("resolved", match[0], match[1])
        if lo is not None and complete:
            return Outcome("absent")
        return Outcome("uncertain", reason="the ticket numbers around it could not all be read")

    async def search(self, entry: CreateEntry, start: int, stop: int,
                     hi: int | None) -> tuple[tuple[str, int] | None, bool]:
        """Read the numbers from ``start`` to ``stop`` (at most SCAN_LIMIT) that are not ours:
        the entry's ticket (ID, number) if one matches, and whether the search was complete
        (every number read, up to ``hi`` or, with no ``hi``, a run of 404s that ends them)."""
        from bulksync.api import ticket_id_of

        complete = True
        misses = 0
        for number in range(start, min(stop, start + SCAN_LIMIT)):
            if number in self.claimed:
                misses = 0
                continue
            status, body = await self.read(number)
            if status == 200 and isinstance(body, dict):
                misses = 0
                # Believed only as a new ticket's UUID, not one another row already has.
                found = ticket_id_of(body.get("id"))
                if same_ticket(entry.payload, body) and found is not None and found not in self.taken:
                    return (found, number), complete
            elif status == 404:
                misses += 1
                if hi is None and misses >= END_RUN:
                    return None, complete
            else:
                complete = False
        return None, complete and hi is not None and stop <= start + SCAN_LIMIT

    async def read(self, number: int) -> tuple[int, Any]:
        """``GET /ticket/{number}``: (status, body), status 0 if no answer; read once, then cached."""
        if number not in self.cache:
            self.cache[number] = await self._get(number)
        return self.cache[number]

    async def _get(self, number: int) -> tuple[int, Any]:
        return await read_number(self.client, self.pacer, self.stats, number)


