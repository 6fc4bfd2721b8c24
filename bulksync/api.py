"""The Suptask client: base URL, auth, paths, and the shapes of the answers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from bulksync.errors import UsageError

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API_URL", "CreatedTicket", "SuptaskClient", "created_ticket", "error_message"]

DEFAULT_API_URL = "https://public-api-prod.suptask.com/api/v2/public"
SHARD_SIZE = 4
"""Connections per httpx pool; more connections use more pools."""


@dataclass(frozen=True)
class CreatedTicket:
    ticket_id: str
    ticket_number: int | None


def created_ticket(body: Any) -> CreatedTicket | None:
    """The new ticket's ID (and number) from a 201 body, in either shape.

    Documented: ``{"ticketId": "<uuid>"}``. Observed on the live API: the
    created ticket nested under ``oldTicket`` (``{"oldTicket": {"id", "ticketNumber"}}``).
    """
    if not isinstance(body, dict):
        return None
    old = body.get("oldTicket")
    nested: dict[str, Any] = old if isinstance(old, dict) else {}
    ticket_id = body.get("ticketId") or nested.get("id") or body.get("id")
    if not isinstance(ticket_id, str) or not ticket_id:
        return None
    number = body.get("ticketNumber", nested.get("ticketNumber"))
    try:
        number = int(number) if number is not None else None
    except (TypeError, ValueError):
        number = None
    return CreatedTicket(ticket_id, number)


def error_message(response: httpx.Response) -> str:
    """The server's own words for an error answer, kept short."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "errors"):
            if body.get(key):
                value = body[key]
                text = value if isinstance(value, str) else str(value)
                break
    if not text:
        text = response.text.strip() or response.reason_phrase
    text = " ".join(text.split())
    return f"HTTP {response.status_code}: {text[:300]}"


def check_api_url(url: str) -> str:
    """Refuse plain http except to a loopback host (the sandbox): tokens must not cross a network in clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL {url!r} is not an http(s) URL")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise UsageError(f"the API URL {url!r} uses plain http: use https "
                             "(plain http is allowed only to 127.0.0.1 / localhost)")
    return url.rstrip("/")


class SuptaskClient:
    """An async client for the Suptask public API.

    ``transport`` lets tests hand in an ``httpx.MockTransport``; everything else
    talks real HTTP. The token is only ever placed in the Authorization header.
    """

    def __init__(self, *, token: str, base_url: str = DEFAULT_API_URL,
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_connections: int = 4, timeout: float = 30.0) -> None:
        import httpx

        self.base_url = check_api_url(base_url)
        # httpcore's pool looks at every connection each time it places a request, so its
        # cost grows with the pool: past a few connections, several small pools are faster
        # than one big one (bench/RESULTS.md, "Throughput at latency").
        shards = 1 if transport is not None else -(-max_connections // SHARD_SIZE)
        per_shard = -(-max_connections // shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        verify = httpx.create_ssl_context()  # one context (certificates verified) for every pool
        self._clients = [httpx.AsyncClient(verify=verify,
            base_url=self.base_url + "/",
            headers={"Authorization": f"Api-Token {token}", "Accept": "application/json",
                     "User-Agent": "bulksync"},
            transport=transport, limits=limits,
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False,
        ) for _ in range(shards)]
        self._next = 0

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        client = self._clients[self._next]
        self._next = (self._next + 1) % len(self._clients)
        return await client.request(method, path.lstrip("/"), **kwargs)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
