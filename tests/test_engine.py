"""The request engine's retry rules (bulksync/engine.py), with a scripted server (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from bulksync.api import SuptaskClient
from bulksync.engine import RunStats, run_operations
from bulksync.plan import Operation
from bulksync.results import RowResult
from tests.conftest import SkippingClock

TID = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"
CREATE = Operation(2, "create", None, {"description": "x"})
UPDATE = Operation(3, "update", TID, {"status": "Closed"})


def _run(answers: list[Callable[[httpx.Request], httpx.Response]], ops: list[Operation],
         concurrency: int = 1) -> tuple[dict[int, RowResult], RunStats, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1](request)

    results: dict[int, RowResult] = {}

    async def go() -> RunStats:
        async with SuptaskClient(token="t", base_url="https://api.example.com/v2",
                                 transport=httpx.MockTransport(handler)) as client:
            # A 429 pauses the run a second at least: skipped on this clock.
            return await run_operations(client, ops, results, concurrency=concurrency, backoff=0.001,
                                        stats=RunStats(clock=SkippingClock()))

    stats = asyncio.run(go())
    return results, stats, seen


def status(code: int, **kw: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, **kw)  # type: ignore[arg-type]


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"oldTicket": {"id": TID, "ticketNumber": 9}})


def dropped(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


def test_a_create_is_retried_only_when_it_certainly_was_not_processed() -> None:
    results, stats, seen = _run([refused, status(429, headers={"Retry-After": "0"}),
                                 status(503), created], [CREATE])
    assert len(seen) == 4 and stats.requests == 4
    assert results[2] == RowResult(2, "created", ticket_id=TID, ticket_number=9)


def test_a_create_with_an_unknown_outcome_is_uncertain_and_not_sent_again() -> None:
    for answer in (status(500, json={"message": "boom"}), status(502), status(504), dropped):
        results, _, seen = _run([answer, created], [CREATE])
        assert len(seen) == 1
        assert results[2].status == "uncertain"
        assert "may or may not have been created" in results[2].error


def test_an_update_is_retried_on_5xx_and_dropped_connections() -> None:
    results, _, seen = _run([status(500), dropped, status(502), status(200)], [UPDATE])
    assert len(seen) == 4
    assert results[3] == RowResult(3, "updated", ticket_id=TID)


def test_a_row_that_keeps_failing_is_failed_with_the_servers_message() -> None:
    results, _, seen = _run([status(400, json={"message": "status is not valid"})], [UPDATE])
    assert len(seen) == 1
    assert results[3] == RowResult(3, "failed", ticket_id=TID, error="HTTP 400: status is not valid")
    results, _, seen = _run([status(500)], [UPDATE])
    assert len(seen) == 5 and results[3].status == "failed"


def test_a_refused_token_stops_the_whole_run() -> None:
    ops = [Operation(n, "create", None, {"description": str(n)}) for n in range(2, 52)]
    results, stats, seen = _run([status(401, json={"message": "Unauthorized"})], ops, concurrency=4)
    assert stats.stopped is not None and "refused the token" in str(stats.stopped)
    assert len(seen) <= 4
    assert results == {}  # refused: no row is marked; the sheet is left as it was
