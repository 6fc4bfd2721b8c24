"""The sandbox as users run it: `bulksync sandbox` in a subprocess, `bulksync push` against it."""

from __future__ import annotations

import csv
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bulksync.sandbox import Sandbox, parse_rate_limit
from tests.conftest import CHANNEL, FORM, SkippingClock, run_cli, write
from tests.processes import Command, start


class RunningSandbox:
    def __init__(self, process: Command, url: str, token: str) -> None:
        self.process, self.url, self.token = process, url, token
        self.root = url.split("/api/")[0]

    def env(self) -> dict[str, str]:
        return {"SUPTASK_API_URL": self.url, "SUPTASK_API_TOKEN": self.token}

    def tickets(self) -> list[dict[str, object]]:
        return httpx.get(f"{self.root}/_sandbox/tickets").json()  # type: ignore[no-any-return]

    def requests(self) -> list[dict[str, object]]:
        return httpx.get(f"{self.root}/_sandbox/requests").json()  # type: ignore[no-any-return]


@contextmanager
def sandbox_cli(*args: str) -> Iterator[RunningSandbox]:
    process = start("sandbox", *args)
    try:
        lines = process.lines(3)
        assert lines[0].startswith("Suptask sandbox listening on http://127.0.0.1:"), lines
        url = lines[0].split()[-1]
        token = lines[2].strip().split("=", 1)[1]
        yield RunningSandbox(process, url, token)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _sheet(tmp_path: Path, rows: int) -> Path:
    return write(tmp_path / "t.csv", "description\n" + "".join(f"Ticket {i}\n" for i in range(rows)))


def _statuses(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row["syncStatus"] for row in csv.DictReader(f)]


def _push(sb: RunningSandbox, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("push", str(path), "--form-id", FORM, "--channel", CHANNEL, "-q", *args,
                   env=sb.env())


def test_it_prints_url_and_token_and_checks_auth() -> None:
    with sandbox_cli("--token", "letmein") as sb:
        assert sb.token == "letmein"
        assert sb.url.endswith("/api/v2/public")
        for header, status in (("Api-Token letmein", 404), ("Bearer letmein", 404),
                               ("Api-Token nope", 401), ("letmein", 401), ("", 401)):
            response = httpx.get(f"{sb.url}/ticket/1", headers={"Authorization": header})
            assert response.status_code == status, header
            assert "message" in response.json()


def test_a_generated_token_and_a_free_port_each_time() -> None:
    with sandbox_cli() as a, sandbox_cli() as b:
        assert a.url != b.url and a.token != b.token and len(a.token) >= 20


def test_documented_create_shape(tmp_path: Path) -> None:
    with sandbox_cli("--create-shape", "documented") as sb:
        response = httpx.post(f"{sb.url}/ticket", headers={"Authorization": f"Api-Token {sb.token}"},
                              json={"description": "x", "requesterChannel": CHANNEL, "formId": FORM})
        assert response.status_code == 201
        assert list(response.json()) == ["ticketId"]


def test_rate_limit_headers_and_429(tmp_path: Path) -> None:
    with sandbox_cli("--rate-limit", "3/30") as sb:
        auth = {"Authorization": f"Api-Token {sb.token}"}
        answers = [httpx.get(f"{sb.url}/ticket/1", headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    reset = float(answers[0].headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 30
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 30


def test_push_stays_under_a_rate_limit(tmp_path: Path) -> None:
    path = _sheet(tmp_path, 12)
    with sandbox_cli("--rate-limit", "5/0.5") as sb:  # three windows and more, half a second each
        result = _push(sb, path, "--concurrency", "4")
        log = sb.requests()
        assert len(sb.tickets()) == 12
    assert result.returncode == 0, result.stderr
    assert sum(1 for r in log if r["status"] == 429) <= 2
    assert _statuses(path) == ["created"] * 12


def test_fail_rate_503s_are_retried_and_nothing_doubles(tmp_path: Path, cli_clock: SkippingClock) -> None:
    # The back-offs before each retry are skipped on the command line's clock (the sandbox,
    # in its own process, has no window to keep in step with it).
    path = _sheet(tmp_path, 20)
    with sandbox_cli("--fail-rate", "0.3", "--seed", "7") as sb:
        result = _push(sb, path)
        log = sb.requests()
        tickets = sb.tickets()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(1 for r in log if r["status"] == 503) >= 3
    assert len(tickets) == 20
    assert sorted(str(t["description"]) for t in tickets) == sorted(f"Ticket {i}" for i in range(20))


def test_drop_rate_leaves_creates_uncertain_never_doubled(tmp_path: Path) -> None:
    path = _sheet(tmp_path, 20)
    with sandbox_cli("--drop-rate", "0.25", "--seed", "3") as sb:
        result = _push(sb, path)
        tickets = sb.tickets()
        dropped = sum(1 for r in sb.requests() if r.get("fault") == "drop")
    statuses = _statuses(path)
    assert result.returncode == 1
    assert dropped >= 1 and statuses.count("uncertain") == dropped
    assert statuses.count("created") == len(tickets) == 20 - dropped


def test_ambiguous_rate_creates_then_fails_and_is_not_resent(tmp_path: Path) -> None:
    path = _sheet(tmp_path, 20)
    with sandbox_cli("--ambiguous-rate", "0.3", "--seed", "5") as sb:
        result = _push(sb, path)
        tickets = sb.tickets()
        posts = [r for r in sb.requests() if r["method"] == "POST"]
    statuses = _statuses(path)
    assert result.returncode == 1
    assert len(posts) == 20  # one request per row: nothing was sent twice
    assert statuses.count("uncertain") >= 1
    # Each uncertain create did make a ticket: the sandbox holds one per row, no more.
    assert len(tickets) == 20


def test_latency(tmp_path: Path) -> None:
    with sandbox_cli("--latency-ms", "150") as sb:
        started = time.monotonic()
        httpx.get(f"{sb.url}/ticket/1", headers={"Authorization": f"Api-Token {sb.token}"})
        assert time.monotonic() - started >= 0.15


def test_the_same_seed_gives_the_same_faults(tmp_path: Path) -> None:
    def faults() -> list[int]:
        with Sandbox(token="t", fail_rate=0.5, seed=11) as sb:
            with httpx.Client(headers={"Authorization": "Api-Token t"}) as c:
                return [c.get(f"{sb.url}/ticket/1").status_code for _ in range(12)]

    first = faults()
    assert first == faults() and 503 in first and 404 in first


def test_db_keeps_tickets_across_restarts(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    path = _sheet(tmp_path, 3)
    with sandbox_cli("--db", str(db), "--token", "t") as sb:
        assert _push(sb, path).returncode == 0
    with sandbox_cli("--db", str(db), "--token", "t") as sb:
        assert [t["ticketNumber"] for t in sb.tickets()] == [1, 2, 3]
        (tmp_path / "more").mkdir()
        more = _sheet(tmp_path / "more", 1)
        assert _push(sb, more).returncode == 0
        assert [t["ticketNumber"] for t in sb.tickets()] == [1, 2, 3, 4]


def test_every_operation_and_its_rules() -> None:
    with Sandbox(token="t") as sb, httpx.Client(base_url=sb.url + "/",
                                                headers={"Authorization": "Api-Token t"}) as c:
        base = {"description": "x", "requesterChannel": CHANNEL, "formId": FORM}
        tid = c.post("ticket", json=base).json()["oldTicket"]["id"]
        cases = [
            (c.post("ticket", json={**base, "formId": "nope"}), 400, "formId must be a UUID"),
            (c.post("ticket", json={"description": "x", "formId": FORM}), 400, "requesterChannel is required"),
            (c.post("ticket", json={**base, "priority": None}), 400, "priority may not be null"),
            (c.post("ticket", json={**base, "tags": "a,b"}), 400, "tags must be a array"),
            (c.post("ticket", json={**base, "subject": "x"}), 400, "unknown field(s): subject"),
            (c.post("ticket", json={**base, "customFields": [{"fieldId": "x", "value": 1}]}), 400,
             "each customFields entry"),
            (c.patch(f"ticket/{tid}", json={"priority": None, "assignee": None, "tags": None}), 200, None),
            (c.patch(f"ticket/{tid}", json={"status": None}), 400, "status may not be null"),
            (c.patch("ticket/not-a-uuid", json={}), 400, "the ticket ID must be a UUID"),
            (c.get("ticket/abc"), 400, "the ticket number must be numeric"),
            (c.get("ticket/99"), 404, "Ticket not found"),
            (c.post(f"ticket/reply/{tid}", json={"text": "hi", "channel": ["Requester"]}), 400, "lower case"),
            (c.post(f"ticket/reply/{tid}", json={"text": "hi", "channel": ["responder"]}), 200, None),
            # Every field of a link and a reply is optional, as documented; their types are not.
            (c.post(f"ticket/external/{tid}", json={"externalId": 1}), 400, "externalId must be a string"),
            (c.post(f"ticket/external/{tid}", json={"externalId": "1"}), 201, None),
            (c.post(f"ticket/reply/{tid}", json={}), 200, None),
            (c.post(f"ticket/reply/{tid}", json={"text": 5}), 400, "text must be a string"),
            # Fields one client reports the API takes: queueId, requesterId on create, dueDate on PATCH.
            (c.post("ticket", json={**base, "queueId": "q-1", "requesterId": "U073PBJPHGW"}), 201, None),
            (c.patch(f"ticket/{tid}", json={"dueDate": "2026-12-24"}), 200, None),
            (c.post(f"ticket/external/{tid}", json={"externalId": "1", "integrationType": "Jira",
                                                    "url": "https://jira.example.com/browse/OPS-1"}), 201, None),
            (c.delete(f"ticket/{tid}"), 200, None),
            (c.delete(f"ticket/{tid}"), 404, "Ticket not found"),
        ]
        for response, status, message in cases:
            assert response.status_code == status, (response.request.url, response.text)
            if message:
                assert message in response.json()["message"]
        assert c.get("ticket/1").status_code == 404  # deleted


def test_ticket_state_after_operations() -> None:
    with Sandbox(token="t") as sb, httpx.Client(base_url=sb.url + "/",
                                                headers={"Authorization": "Api-Token t"}) as c:
        tid = c.post("ticket", json={"description": "x", "requesterChannel": CHANNEL, "formId": FORM,
                                     "tags": ["a"], "requester": "U073PBJPHGW"}).json()["oldTicket"]["id"]
        c.patch(f"ticket/{tid}", json={"status": "Closed", "tags": None})
        c.post(f"ticket/reply/{tid}", json={"text": "hi", "username": "Ann", "channel": ["requester"]})
        c.post(f"ticket/external/{tid}", json={"externalId": "ZD-9", "integrationType": "Zendesk"})
        ticket = c.get("ticket/1").json()
    assert (ticket["id"], ticket["status"], ticket["tags"], ticket["requesterId"]) == (
        tid, "Closed", None, "U073PBJPHGW")
    assert ticket["replies"] == [{"text": "hi", "username": "Ann", "channel": ["requester"]}]
    assert ticket["externalLinks"] == [{"externalId": "ZD-9", "integrationType": "Zendesk"}]


@pytest.mark.parametrize("text", ["100", "0/5", "5/0", "a/b"])
def test_bad_rate_limit(text: str) -> None:
    with pytest.raises(ValueError, match="N/SECONDS"):
        parse_rate_limit(text)
    result = run_cli("sandbox", "--rate-limit", text)
    assert result.returncode == 2 and "N/SECONDS" in result.stderr


# -- reads like Suptask (issue 17) ---------------------------------------------------------------

def _client(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.url + "/", headers={"Authorization": f"Api-Token {sb.token}"})


def test_reads_in_the_webhook_shape_and_a_ticket_that_answers_500() -> None:
    field = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"
    with Sandbox(read_shape="webhook", failing_reads=[2]) as sb, _client(sb) as c:
        for text in ("SSO loops", "VPN drops"):
            assert c.post("ticket", json={"description": text, "requesterChannel": CHANNEL, "formId": FORM,
                                          "priority": "High", "tags": ["sso"],
                                          "customFields": [{"fieldId": field, "value": "IT"}]}).status_code == 201
        ticket = c.get("ticket/1").json()
        assert (ticket["ticketNumber"], ticket["status"], ticket["assignee"], ticket["tags"]) == (
            "1", "OPEN", "UNASSIGNED", ["sso"])
        assert isinstance(ticket["createdAt"], int) and abs(ticket["createdAt"] - time.time()) < 60
        assert ticket["formValues"] == [{"fieldName": field, "value": "IT"}]
        assert "description" not in ticket and ticket["teamTicketId"] == "team-1"
        failing = c.get("ticket/2")
        assert failing.status_code == 500 and failing.json() == {"message": "Failed to fetch ticket form fields"}


def test_a_ticket_changed_in_slack_through_the_admin_route() -> None:
    with Sandbox() as sb, _client(sb) as c:
        c.post("ticket", json={"description": "x", "requesterChannel": CHANNEL, "formId": FORM})
        before = c.get("ticket/1").json()
        edited = httpx.post(f"http://{sb.host}:{sb.port}/_sandbox/tickets/1",
                            json={"status": "Closed", "assignee": "U05KQ2M8Z1A"})
        assert edited.status_code == 200
        after = c.get("ticket/1").json()
        assert (after["status"], after["assignee"]) == ("Closed", "U05KQ2M8Z1A")
        assert after["updatedAt"] >= before["updatedAt"]
        assert sb.edit(1, priority="Low")["priority"] == "Low"  # the same from Python
        assert httpx.post(f"http://{sb.host}:{sb.port}/_sandbox/tickets/9", json={}).status_code == 404
        assert [r for r in sb.requests() if "_sandbox" in r["path"]] == []  # not API requests


def test_a_command_a_failed_test_left_running_is_stopped() -> None:
    """What the autouse fixture ``no_command_left`` does after every test: a command still
    running (here a sandbox, which runs until stopped) is killed, not waited for."""
    from tests.processes import stop_all

    process = start("sandbox")
    assert process.lines(1)[0].startswith("Suptask sandbox listening on")
    stop_all()
    assert process.returncode == -9
