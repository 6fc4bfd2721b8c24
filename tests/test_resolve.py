"""Resolving uncertain creates by ticket number, and the pacer: pure logic and a scripted API."""

from __future__ import annotations

import asyncio
import time

import httpx

from bulksync.api import SuptaskClient
from bulksync.engine import Pacer, RunStats
from bulksync.journal import CreateEntry
from bulksync.resolve import Outcome, resolve_uncertain, same_ticket, window
from tests.conftest import SkippingClock

FORM = "6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84"
MINE = "1a2b3c4d-0000-4000-8000-00000000000a"
OTHER = "1a2b3c4d-0000-4000-8000-00000000000b"
O1 = "1a2b3c4d-0000-4000-8000-00000000000c"
O2 = "1a2b3c4d-0000-4000-8000-00000000000d"
FIRST = "1a2b3c4d-0000-4000-8000-00000000000e"
SECOND = "1a2b3c4d-0000-4000-8000-00000000000f"
PAYLOAD = {"description": "Printer jams", "formId": FORM, "requesterChannel": "C076K6Y74L1"}


def entry(key: str, *, state: str = "uncertain", number: int | None = None, lower: int | None = None,
          sent: float = 100.0, settled: float | None = None, payload: dict[str, str] | None = None
          ) -> CreateEntry:
    return CreateEntry(key, 2, state, payload or PAYLOAD,  # type: ignore[arg-type]
                       f"1a2b3c4d-0000-4000-8000-{number:012d}" if number else None,
                       number, "", lower, sent, settled)


def test_window_is_between_what_was_answered_before_and_sent_after() -> None:
    created = [entry("a", state="created", number=4, sent=90), entry("b", state="created", number=9, sent=130),
               entry("c", state="created", number=7, sent=101)]
    pending = entry("x", lower=4, sent=100)
    assert window(pending, created, settle=10) == (4, 9)  # "c" was sent before x surely settled
    assert window(entry("y", lower=4, sent=100, settled=100.5), created, settle=10) == (4, 7)
    assert window(entry("z", sent=200), created, settle=10) == (None, None)


def test_same_ticket_compares_what_slack_edits_leave_alone() -> None:
    assert same_ticket(PAYLOAD, {**PAYLOAD, "status": "Closed", "priority": "Low"})
    assert same_ticket(PAYLOAD, {"description": "Printer jams"})
    assert not same_ticket(PAYLOAD, {**PAYLOAD, "description": "Printer jams!"})
    assert not same_ticket(PAYLOAD, {**PAYLOAD, "formId": "0f0e0d0c-0b0a-4909-8807-060504030201"})


def _resolve(tickets: dict[int, object], pending: list[CreateEntry], created: list[CreateEntry]
             ) -> tuple[dict[str, Outcome], list[int]]:
    reads: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.path.rsplit("/", 1)[1])
        reads.append(number)
        answer = tickets.get(number)
        if isinstance(answer, int):
            return httpx.Response(answer, json={"message": "Failed to fetch ticket form fields"})
        if answer is None:
            return httpx.Response(404, json={"message": "Ticket not found"})
        return httpx.Response(200, json=answer)

    async def go() -> dict[str, Outcome]:
        async with SuptaskClient(token="t", base_url="https://api.example.com/v2",
                                 transport=httpx.MockTransport(handler)) as client:
            # A read answered 500 is read again after back-offs, skipped on this clock.
            return await resolve_uncertain(client, pending, created, settle=1,
                                           stats=RunStats(clock=SkippingClock()))

    return asyncio.run(go()), reads


CREATED = [entry("a", state="created", number=10, sent=1), entry("b", state="created", number=14, sent=200)]


def test_a_match_recovers_the_ticket() -> None:
    tickets = {11: {"id": OTHER, "description": "VPN"}, 12: {"id": MINE, **PAYLOAD}}
    outcomes, reads = _resolve(tickets, [entry("x", lower=10, sent=100)], CREATED)
    assert outcomes == {"x": Outcome("resolved", MINE, 12)}
    assert reads == [11, 12]


def test_every_number_read_and_no_match_proves_absence() -> None:
    tickets = {11: {"id": O1, "description": "VPN"}, 12: {"id": O2, "description": "Mail"}}
    outcomes, reads = _resolve(tickets, [entry("x", lower=10, sent=100)], CREATED)
    assert outcomes["x"].verdict == "absent"
    assert reads == [11, 12, 13]  # 13 answered 404: no ticket there


def test_an_unreadable_number_leaves_it_uncertain() -> None:
    tickets = {11: 500, 12: {"id": O2, "description": "Mail"}}
    outcomes, _ = _resolve(tickets, [entry("x", lower=10, sent=100)], CREATED)
    assert outcomes["x"].verdict == "uncertain"


def test_no_known_lower_end_can_match_but_never_prove_absence() -> None:
    outcomes, _ = _resolve({13: {"id": MINE, **PAYLOAD}}, [entry("x", sent=100)], CREATED)
    assert outcomes["x"] == Outcome("resolved", MINE, 13)
    outcomes, _ = _resolve({}, [entry("x", sent=100)], CREATED)
    assert outcomes["x"].verdict == "uncertain"


def test_two_identical_uncertain_rows_claim_two_tickets() -> None:
    tickets = {11: {"id": FIRST, **PAYLOAD}, 12: {"id": SECOND, **PAYLOAD}}
    outcomes, _ = _resolve(tickets, [entry("x", lower=10, sent=100), entry("y", lower=10, sent=101)], CREATED)
    assert (outcomes["x"].ticket_id, outcomes["y"].ticket_id) == (FIRST, SECOND)


def test_not_yet_settled_is_left_for_later() -> None:
    outcomes, reads = _resolve({}, [entry("x", lower=10, sent=time.time())], CREATED)
    assert outcomes["x"].verdict == "uncertain" and reads == []


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_pacer_spends_the_window_then_waits_for_its_reset() -> None:
    reset = str(time.time() + 5)

    def answer(remaining: int) -> None:  # as the runner does: observe, then release
        pacer.observe(_response(201, **{"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": reset}))
        pacer.release()

    pacer = Pacer()
    pacer.in_flight = 3
    answer(3)  # 3 left, 2 still in flight
    assert pacer.try_acquire() == 0  # one more fits
    assert 0 < pacer.try_acquire() <= Pacer.HOLD  # 3 in flight hold the 3 left: wait for answers
    assert pacer.waiting() == 0  # ... not for the reset
    answer(2)  # 2 left, 2 in flight
    assert pacer.try_acquire() > 0
    answer(3)  # an older answer arriving late: the lowest count stands (2 left, 1 in flight)
    assert pacer.try_acquire() == 0  # the server had counted that one already: its slot is used
    assert pacer.try_acquire() > 0
    answer(0)  # the window is spent: everyone waits for its reset
    assert 4.9 < pacer.waiting() <= 5.1


def test_pacer_never_sends_more_than_the_window_has_left() -> None:
    """Whatever order answers come in, requests in flight never exceed what the server said was left."""
    import random

    rng = random.Random(7)
    for _ in range(200):
        pacer = Pacer()
        limit, counted, in_flight = 30, 0, []  # the server's count; requests sent, not yet counted
        answered: list[int] = []  # Remaining for requests counted, not yet answered
        reset = str(time.time() + 60)
        for _ in range(5000):  # bounded: a pacer that holds slots back forever fails below
            step = rng.random()
            if step < 0.4 and pacer.try_acquire() == 0:
                in_flight.append(1)
                assert counted + len(in_flight) <= limit  # never over the limit
            elif step < 0.7 and in_flight:
                in_flight.pop()
                counted += 1
                answered.insert(rng.randrange(len(answered) + 1), limit - counted)
            elif answered:
                pacer.observe(_response(201, **{"X-RateLimit-Remaining": str(answered.pop()),
                                                "X-RateLimit-Reset": reset}))
                pacer.release()
            elif counted >= limit and not in_flight:
                break
        assert counted == limit  # and the whole window was used


def test_pacer_pauses_everyone_on_429_until_retry_after() -> None:
    pacer = Pacer()
    pacer.observe(_response(429, **{"Retry-After": "3"}))
    assert 2.9 < pacer.waiting() <= 3.1
    pacer = Pacer()
    pacer.observe(_response(201, **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(time.time() + 2)}))
    assert 1.9 < pacer.waiting() <= 2.1


def test_pacer_rate_cap_spaces_requests(clock: SkippingClock) -> None:
    async def go() -> None:
        pacer = Pacer(rate=20, clock=clock)
        for _ in range(5):
            await pacer.acquire()
            pacer.release()

    asyncio.run(go())
    # A pause before each but the first: 4 / 20 s in all (less the real time between them).
    assert sum(clock.slept) > 4 / 20 - 0.01 and len(clock.slept) >= 4


def test_an_answer_is_believed_only_as_a_new_tickets_uuid() -> None:
    """The ID read back goes into the sheet: a formula, a non-UUID or another row's ticket is
    no match (the create stays unresolved rather than take it)."""
    taken = CREATED[0].ticket_id
    assert taken is not None
    for bad in ['=HYPERLINK("http://evil","x")', "x\x1b]0;pwned\x07", taken, taken.upper(),
                "00000000-0000-0000-0000-000000000000"]:
        outcomes, _ = _resolve({11: {"id": bad, **PAYLOAD}}, [entry("x", lower=10, sent=100)], CREATED)
        assert outcomes["x"].verdict != "resolved", bad
    outcomes, _ = _resolve({11: {"id": MINE.upper(), **PAYLOAD}}, [entry("x", lower=10, sent=100)], CREATED)
    assert outcomes["x"] == Outcome("resolved", MINE, 11)  # the same UUID, in lower case
