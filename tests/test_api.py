"""The client: auth header, answer shapes, URL safety (httpx.MockTransport, no network)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bulksync.api import CreatedTicket, SuptaskClient, created_ticket, error_message
from bulksync.config import check_api_url
from bulksync.errors import UsageError

TID = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"


@pytest.mark.parametrize(("body", "expected"), [
    ({"ticketId": TID}, CreatedTicket(TID, None)),
    ({"oldTicket": {"id": TID, "ticketNumber": 42, "permalink": "x"}}, CreatedTicket(TID, 42)),
    ({"id": TID, "ticketNumber": "7"}, CreatedTicket(TID, 7)),
    ({"success": True}, None),
    ([TID], None),
])
def test_created_ticket_reads_both_shapes(body: object, expected: CreatedTicket | None) -> None:
    assert created_ticket(body) == expected


def test_requests_carry_the_api_token_header_and_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"ticketId": TID})

    async def go() -> httpx.Response:
        async with SuptaskClient(token="s3cret", base_url="https://api.example.com/api/v2/public",
                                 transport=httpx.MockTransport(handler)) as client:
            return await client.request("POST", "/ticket", {"description": "x"})

    response = asyncio.run(go())
    assert response.status_code == 201
    (request,) = seen
    assert str(request.url) == "https://api.example.com/api/v2/public/ticket"
    assert request.headers["Authorization"] == "Api-Token s3cret"
    assert request.content == b'{"description":"x"}'


def test_error_message_prefers_the_servers_words() -> None:
    assert error_message(httpx.Response(400, json={"message": "formId is required"})) == \
        "HTTP 400: formId is required"
    assert error_message(httpx.Response(502, text="<html>Bad gateway</html>")) == \
        "HTTP 502: <html>Bad gateway</html>"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/api", "http://localhost/x", "https://a.example/"])
def test_allowed_urls(url: str) -> None:
    assert check_api_url(url) == url.rstrip("/")


@pytest.mark.parametrize(("url", "message"), [
    ("http://api.example.com/api", "uses plain http"),
    ("ftp://x/", "not an http"),
])
def test_refused_urls(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_api_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/api", "http://[::1/api", "http://127.0.0.1:abc/api",
                                 "http://user:pw@127.0.0.1:8080/api"])
def test_malformed_urls_are_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="not a valid URL|not an http|user name or password") as e:
        check_api_url(url)
    assert "pw@" not in str(e.value)


def test_surrounding_whitespace_in_a_url_is_dropped() -> None:
    assert check_api_url(" https://api.example.com/v2/\n") == "https://api.example.com/v2"


@pytest.mark.parametrize("value, expected", [
    (42, 42), ("42", 42), (" 7 ", 7), (3.0, 3), (True, None), (-5, None), (0, None), (2.5, None),
    (float("inf"), None), (10**30, None), ("1e3", None), ("", None), (None, None), ([1], None)])
def test_ticket_numbers_are_believed_only_when_plausible(value: object, expected: int | None) -> None:
    from bulksync.api import ticket_number

    assert ticket_number(value) == expected
