"""Rate limits as the real API gives them (issue 25): the window is learnt, not discovered by
429s, and a 429 never fails a row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, write


def test_a_window_smaller_than_the_concurrency_is_not_hammered_at_its_reset(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.csv", "description\n" + "".join(f"Ticket {i}\n" for i in range(12)))
    with Sandbox(token=TOKEN, rate_limit=(3, 1.0)) as sb:
        result = bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL, concurrency=8)
        refused = sum(1 for r in sb.requests() if r["status"] == 429)
    assert result.counts["created"] == 12 and refused <= 3, refused


def test_a_429_never_fails_a_row_however_many_times_it_comes() -> None:
    from bulksync.api import SuptaskClient
    from bulksync.plan import Operation
    from bulksync.runner import run_operations

    tries: dict[str, int] = {}

    def busy_then_done(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        tries[body] = tries.get(body, 0) + 1
        if tries[body] <= 8:  # more than a row's five attempts
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(201, json={"ticketId": "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32", "ticketNumber": 1})

    results: dict[int, Any] = {}

    async def go() -> None:
        async with SuptaskClient(token=TOKEN, base_url="https://api.example.com",
                                 transport=httpx.MockTransport(busy_then_done)) as client:
            await run_operations(client, [Operation(2, "create", None, {"description": "x"})], results,
                                 concurrency=1, backoff=0.001)

    asyncio.run(go())
    assert results[2].status == "created" and sum(tries.values()) == 9
