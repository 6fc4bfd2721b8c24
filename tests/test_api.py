"""The client: auth header, answer shapes, URL safety (httpx.MockTransport, no network)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bulksync.api import CreatedTicket, SuptaskClient, check_api_url, created_ticket, error_message
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


def test_tls_certificates_are_verified() -> None:
    import ssl

    client = SuptaskClient(token="t", base_url="https://api.example.com/v2")
    context = client._transports[0]._pool._ssl_context  # type: ignore[attr-defined]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    asyncio.run(client.aclose())


@pytest.mark.parametrize("base", [
    "https://public-api-prod.suptask.com/api/v2/public", "http://127.0.0.1:8080",
    "https://H.Example:443/p/", "https://h.example/a/../b", "https://h.example/x%20y",
    "https://h.example/caf\u00e9"])
@pytest.mark.parametrize("path", [
    "/ticket", f"/ticket/{TID}", "/ticket/external/AB-1.2", "/ticket/external/AB 1", "/ticket?page=2",
    "/ticket/..", "/ticket/./x", "/ticket/a%2Fb", "/ticket/caf\u00e9", "ticket"])
def test_the_url_shortcut_gives_exactly_what_httpx_parses(base: str, path: str) -> None:
    client = SuptaskClient(token="t", base_url=base, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    ours = client._url(path)
    parsed = httpx.URL(f"{client.base_url}/{path.lstrip('/')}")
    assert (str(ours), ours.raw_path, ours.host, ours.port, ours.scheme) == \
        (str(parsed), parsed.raw_path, parsed.host, parsed.port, parsed.scheme)


def test_the_url_shortcut_is_taken_for_ticket_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    client = SuptaskClient(token="t", base_url="https://api.example.com/v2",
                           transport=httpx.MockTransport(lambda r: httpx.Response(200)))

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(httpx._urls, "urlparse", no_parse)
    assert str(client._url(f"/ticket/{TID}")) == f"https://api.example.com/v2/ticket/{TID}"
    with pytest.raises(AssertionError):
        client._url("/ticket?page=2")  # not a plain path: httpx parses it
