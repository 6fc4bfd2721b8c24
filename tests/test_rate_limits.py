"""Rate limits as the real API gives them (issue 25): the window is learnt, not discovered by
429s, and a 429 never fails a row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, SkippingClock, write


def test_a_window_smaller_than_the_concurrency_is_not_hammered_at_its_reset(tmp_path: Path,
                                                                           clock: SkippingClock) -> None:
    sheet = write(tmp_path / "t.csv", "description\n" + "".join(f"Ticket {i}\n" for i in range(12)))
    # The sandbox's window and the run's pauses read one clock: the waits for its resets are skipped.
    with Sandbox(token=TOKEN, rate_limit=(3, 1.0), clock=clock) as sb:
        result = bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL, concurrency=8,
                               clock=clock)
        refused = sum(1 for r in sb.requests() if r["status"] == 429)
    assert result.counts["created"] == 12 and refused <= 3, refused


def test_a_429_never_fails_a_row_however_many_times_it_comes(clock: SkippingClock) -> None:
    from bulksync.api import SuptaskClient
    from bulksync.engine import RunStats, run_operations
    from bulksync.plan import Operation

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
                                 concurrency=1, backoff=0.001, stats=RunStats(clock=clock))

    asyncio.run(go())
    assert results[2].status == "created" and sum(tries.values()) == 9
    # Each 429 paused the run (a second at least: Retry-After 0 is never no pause), on its clock.
    assert sum(clock.slept) >= 8


def _pushed(tmp_path: Path, sb: Sandbox, rows: int = 30) -> Path:
    sheet = write(tmp_path / "t.csv", "description,status\n" + "".join(f"Ticket {i},Open\n" for i in range(rows)))
    bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL)
    return sheet


def test_a_pull_whose_token_is_refused_stops_at_the_first_answer(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    with Sandbox(token=TOKEN) as sb:
        sheet = _pushed(tmp_path, sb)
        before, sent = sheet.read_bytes(), len(sb.requests())
        sb.token = "a-new-token"  # the old one revoked
        pulled = run_cli("pull", str(sheet), env={"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN})
        assert pulled.returncode == 2, pulled.stdout + pulled.stderr
        assert "refused the token" in pulled.stderr and "Traceback" not in pulled.stderr
        assert len(sb.requests()) - sent == 1 and sheet.read_bytes() == before


def test_a_check_whose_token_is_refused_sends_nothing(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN) as sb:
        sheet = _pushed(tmp_path, sb, rows=5)
        sheet.write_text(sheet.read_text().replace(",Open,", ",Closed,"))
        before, sent = sheet.read_bytes(), len(sb.requests())
        sb.token = "a-new-token"
        try:
            bulksync.push(sheet, token=TOKEN, api_url=sb.url, check=True)
        except bulksync.AuthError as e:
            assert "refused the token" in str(e)
        else:
            raise AssertionError("a refused token must stop push --check")
        assert [r["method"] for r in sb.requests()[sent:]] == ["GET"] and sheet.read_bytes() == before


def test_reads_wait_out_a_429_instead_of_failing_the_row(tmp_path: Path, clock: SkippingClock) -> None:
    with Sandbox(token=TOKEN, clock=clock) as sb:
        sheet = _pushed(tmp_path, sb, rows=6)
        sb.rate_limit = (2, 1.0)
        result = bulksync.pull(sheet, token=TOKEN, api_url=sb.url, clock=clock)
        assert result.counts["pulled"] == 6 and result.counts["failed"] == 0


def test_a_read_answered_429_many_times_is_read_in_the_end(clock: SkippingClock) -> None:
    from bulksync.api import SuptaskClient
    from bulksync.engine import Pacer, RunStats, read_number

    calls = []

    def busy_then_done(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 6:  # more than a read's three attempts
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"id": "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32", "ticketNumber": 7})

    async def go() -> tuple[int, Any]:
        async with SuptaskClient(token=TOKEN, base_url="https://api.example.com",
                                 transport=httpx.MockTransport(busy_then_done)) as client:
            return await read_number(client, Pacer(clock=clock), RunStats(clock=clock), 7)

    status, body = asyncio.run(go())
    assert status == 200 and body["ticketNumber"] == 7 and len(calls) == 7
    # Backing off longer each time (0.5 s doubled, ±50%): a minute and more, skipped on the clock.
    assert sum(clock.slept) >= 0.25 * (1 + 2 + 4 + 8 + 16 + 30)


def test_a_window_estimate_counts_the_windows() -> None:
    from bulksync.journal import Window

    now = 1000.0
    window = Window(limit=4, span=8.0, remaining=4, reset_at=now + 8)
    assert window.seconds_for(4, now) == 0  # the window left holds them
    assert window.seconds_for(16, now) == 8 + 2 * 8  # this window's reset, then two more
    spent = Window(limit=4, span=8.0, remaining=0, reset_at=now + 3)
    assert spent.seconds_for(4, now) == 3
    past = Window(limit=4, span=8.0, remaining=0, reset_at=now - 1)  # an old answer: a fresh window
    assert past.seconds_for(4, now) == 0 and past.seconds_for(5, now) == 8


def test_a_push_says_first_how_long_the_learnt_window_makes_it(tmp_path: Path, clock: SkippingClock) -> None:
    said: list[str] = []
    with Sandbox(token=TOKEN, rate_limit=(4, 1.0), clock=clock) as sb:
        first = write(tmp_path / "a.csv", "description\n" + "".join(f"A{i}\n" for i in range(3)))
        bulksync.push(first, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL, clock=clock)
        sheet = write(tmp_path / "b.csv", "description\n" + "".join(f"B{i}\n" for i in range(6)))
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL, on_notice=said.append,
                      clock=clock)
    assert any(s.startswith("6 request(s): the API allows 4 requests per 1 s (as its last answer said), "
                            "so this takes about") for s in said), said


def test_status_says_whether_the_token_is_accepted_and_the_window_left(tmp_path: Path) -> None:
    import json

    from tests.conftest import run_cli

    with Sandbox(token=TOKEN, rate_limit=(50, 60.0)) as sb:
        env = {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}
        good = run_cli("status", "--json", env=env, cwd=tmp_path)
        assert good.returncode == 0, good.stderr
        found = json.loads(good.stdout)
        assert found["accepted"] and found["answer"].startswith("HTTP 404") and found["window"]["limit"] == 50
        assert found["window"]["remaining"] == 49 and TOKEN not in good.stdout
        text = run_cli("status", env=env, cwd=tmp_path)
        assert "rate limit: 50 requests per 60 s; 49 left" in text.stdout or "48 left" in text.stdout
        assert len(sb.requests()) == 2  # one read each
        refused = run_cli("status", env={**env, "SUPTASK_API_TOKEN": "not-the-token"}, cwd=tmp_path)
        assert refused.returncode == 2 and "the token is refused" in refused.stdout
    gone = run_cli("status", env=env, cwd=tmp_path)  # the server is gone
    assert gone.returncode == 2 and "no answer" in gone.stdout and "Traceback" not in gone.stderr


def test_progress_says_how_long_the_windows_make_the_rest(tmp_path: Path, clock: SkippingClock) -> None:
    notes: list[str] = []
    sheet = write(tmp_path / "t.csv", "description\n" + "".join(f"T{i}\n" for i in range(12)))
    with Sandbox(token=TOKEN, rate_limit=(4, 1.0), clock=clock) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL,
                      on_progress=lambda done, total, note: notes.append(note), clock=clock)
    assert any("s left at the API's 4 requests per 1 s" in n for n in notes), notes


# -- what an adversarial review found (issue 25) --------------------------------------------------

def test_a_header_that_is_not_a_number_is_no_limit() -> None:
    from bulksync.engine import Pacer

    pacer = Pacer()
    for remaining, limit in (("NaN", "3"), ("inf", "inf"), ("9", "3")):
        pacer.observe(httpx.Response(200, headers={"X-RateLimit-Remaining": remaining, "X-RateLimit-Limit": limit,
                                                   "X-RateLimit-Reset": "5"}))
        assert isinstance(pacer.note(10), str)  # no crash where the progress line is made
    assert pacer.try_acquire() == 0.0


def test_a_429_with_only_retry_after_sends_one_request_at_a_time_after_it() -> None:
    from bulksync.engine import Pacer

    pacer = Pacer()
    pacer.observe(httpx.Response(429, headers={"Retry-After": "0"}))
    pacer.paused_until = 0.0  # the pause is over
    assert pacer.try_acquire() == 0.0 and pacer.try_acquire() > 0  # a second waits for the first's answer
    pacer.release()
    pacer.observe(httpx.Response(200))
    assert pacer.try_acquire() == 0.0 and pacer.try_acquire() == 0.0


def test_a_403_on_the_first_ticket_read_is_that_tickets_not_the_tokens() -> None:
    from bulksync.api import SuptaskClient
    from bulksync.engine import Pacer, RunStats, read_number

    def another_team(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "Forbidden"})

    async def go() -> tuple[int, RunStats]:
        stats = RunStats()
        async with SuptaskClient(token=TOKEN, base_url="https://api.example.com",
                                 transport=httpx.MockTransport(another_team)) as client:
            return (await read_number(client, Pacer(), stats, 7))[0], stats

    status, stats = asyncio.run(go())
    assert status == 403 and stats.stopped is None and stats.requests == 1


def test_status_with_a_refused_token_leaves_no_trace_in_the_store(tmp_path: Path) -> None:
    import sqlite3

    from bulksync.journal import store_path

    with Sandbox(token=TOKEN) as sb:
        _pushed(tmp_path, sb, rows=1)
        refused = bulksync.status(token="not-the-token", api_url=sb.url)
        assert not refused.accepted
    with sqlite3.connect(store_path()) as db:
        assert db.execute("SELECT count(*) FROM targets").fetchone()[0] == 1


def test_pull_numbers_with_a_refused_token_makes_no_sheet(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN) as sb:
        _pushed(tmp_path, sb, rows=2)
        new = tmp_path / "new.csv"
        try:
            bulksync.pull(new, token="not-the-token", api_url=sb.url, numbers=[1, 2])
        except bulksync.AuthError:
            pass
        else:
            raise AssertionError("a refused token must stop pull --numbers")
        assert not new.exists()


def test_the_breaker_opens_after_failures_for_its_window_on_the_runs_clock(clock: SkippingClock) -> None:
    from bulksync.engine import BREAKER_FAILURES, BREAKER_SECONDS, RunStats

    stats = RunStats(clock=clock)
    for _ in range(3):
        stats.connect_failed("api.example.com", "ConnectError")
    clock.advance(BREAKER_SECONDS - 1)
    stats.connect_failed("api.example.com", "ConnectError")
    assert stats.stopped is None  # four failures in 19 s: not yet
    clock.advance(1)
    stats.connect_failed("api.example.com", "ConnectError")
    assert isinstance(stats.stopped, bulksync.ApiUnreachable) and "5 failed connections in 20 s" in str(stats.stopped)
    again = RunStats(clock=clock)  # a connection made in between starts the window again
    for _ in range(2):
        again.connect_failed("api.example.com", "ConnectError")
        clock.advance(BREAKER_SECONDS)
        again.connected()
    assert again.stopped is None and again.failures_in_a_row == 0 < BREAKER_FAILURES


def test_a_spent_window_pauses_until_its_reset_on_the_pacers_clock(clock: SkippingClock) -> None:
    from bulksync.engine import Pacer

    pacer = Pacer(clock=clock)
    assert pacer.try_acquire() == 0.0
    pacer.release()
    pacer.observe(httpx.Response(200, headers={"X-RateLimit-Limit": "4", "X-RateLimit-Remaining": "0",
                                               "X-RateLimit-Reset": "30"}))
    assert 29.9 < pacer.try_acquire() <= 30.1 and "rate limit: waiting 30 s" in pacer.note()
    asyncio.run(pacer.acquire())  # waits the reset out on the clock, not in real time
    assert 29.9 < sum(clock.slept) <= 30.1 and pacer.waiting() == 0
