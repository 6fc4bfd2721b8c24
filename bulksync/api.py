"""The Suptask client: base URL, auth, paths, and the shapes of the answers."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from bulksync.errors import UsageError
from bulksync.untrusted import clean, shown_url

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["DEFAULT_API_URL", "CreatedTicket", "SuptaskClient", "created_ticket", "error_message"]

DEFAULT_API_URL = "https://public-api-prod.suptask.com/api/v2/public"
MAX_ANSWER = 1 << 20
"""Bytes of an answer (after decompression) read at most; a bigger one is a broken answer."""
SHARD_SIZE = 4
"""Connections per httpx pool; more connections use more pools."""
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_.~-]*[A-Za-z0-9_~-][A-Za-z0-9_.~-]*)+")
"""Segments of unreserved characters, none of them ``.`` or ``..``: nothing for a URL parser to
quote or normalise (a ticket ID's path)."""


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


def error_message(response: httpx.Response, secrets: tuple[str, ...] = ()) -> str:
    """The server's own words for an error answer: one clean line, short, the token redacted
    (a server may echo the Authorization header)."""
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
    return f"HTTP {response.status_code}: {clean(text, secrets=secrets)}"


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine (127.0.0.0/8, ::1, localhost)?"""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def check_api_url(url: str) -> str:
    """Refuse plain http except to a loopback host (the sandbox): tokens must not cross a network in clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL {shown_url(url)!r} is not an http(s) URL")
    if parts.scheme == "http":
        if not is_loopback(parts.hostname):
            raise UsageError(f"the API URL {shown_url(url)!r} uses plain http: use https "
                             "(plain http is allowed only to 127.0.0.1 / localhost)")
    return url.rstrip("/")


class SuptaskClient:
    """An async client for the Suptask public API.

    ``transport`` lets tests hand in an ``httpx.MockTransport``; everything else
    talks real HTTP. The token is only ever placed in the Authorization header.

    Requests go straight to httpx transports: bulksync builds each request itself
    (fixed headers, JSON body, timeouts), so ``httpx.AsyncClient``'s layers (URL
    merging, cookies, auth and redirect flows, event hooks) would only add CPU per
    request, which is what bounds throughput at high concurrency (bench/RESULTS.md).
    """

    def __init__(self, *, token: str, base_url: str = DEFAULT_API_URL,
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_connections: int = 4, timeout: float = 30.0) -> None:
        import httpx

        self.base_url = check_api_url(base_url)
        self.secrets = (token,)
        """Texts never to show: every message made from an answer or an error is redacted of them."""
        self.deadline = timeout
        fixed = [("Authorization", f"Api-Token {token}"), ("Accept", "application/json"),
                 ("User-Agent", "bulksync")]
        # Built once: httpx copies a Headers object faster than it parses a list.
        self._headers = httpx.Headers(fixed)
        self._json_headers = httpx.Headers([*fixed, ("Content-Type", "application/json")])
        self._base: httpx.URL | None = None
        self._base_path = ""
        try:
            base = httpx.URL(self.base_url)
            self._base_path = "" if base.path == "/" else base.path
            if _PLAIN_PATH.fullmatch(self._base_path) or not self._base_path:
                self._base = base
                # httpx's URL internals are not public: the shortcut is used only while it
                # gives exactly the URL httpx's own parser gives.
                probe = "/ticket/0-a_b.c~d"
                if self._url(probe) != httpx.URL(f"{self.base_url}{probe}"):
                    self._base = None
        except (AttributeError, TypeError):
            self._base = None
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout)).as_dict()
        if transport is not None:
            self._transports: list[httpx.AsyncBaseTransport] = [transport]
        else:
            # httpcore's pool looks at every connection each time it places a request, so
            # its cost grows with the pool: past a few connections, several small pools are
            # faster than one big one (bench/RESULTS.md, "Throughput at latency").
            shards = -(-max_connections // SHARD_SIZE)
            per_shard = -(-max_connections // shards)
            limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
            verify = httpx.create_ssl_context()  # one context (certificates verified) for every pool
            proxy = _proxy_for(self.base_url)
            self._transports = [_transport(verify, limits, proxy) for _ in range(shards)]
        self._busy = [0] * len(self._transports)

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """Send one request and read its whole answer (no redirects are followed).

        The whole exchange (connect, send, the complete answer) has ``timeout`` seconds: a
        server that trickles bytes ends as ``httpx.ReadTimeout``. An answer bigger than
        MAX_ANSWER bytes once decompressed ends as ``httpx.RemoteProtocolError``.
        """
        import httpx

        try:
            async with asyncio.timeout(self.deadline):
                return await self._exchange(method, path, body)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete answer within {self.deadline:g} s") from None

    async def _exchange(self, method: str, path: str, body: Any) -> httpx.Response:
        import httpx

        headers = self._headers
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False).encode()
            headers = self._json_headers
        request = httpx.Request(method, self._url(path), headers=headers, content=content,
                                extensions={"timeout": self._timeout})
        # The least busy pool: a request never queues in one pool while another has room.
        busy = self._busy
        shard = busy.index(min(busy))
        busy[shard] += 1
        try:
            response = await self._transports[shard].handle_async_request(request)
            response.request = request
            try:
                content = await _bounded_body(response)
            finally:
                await response.aclose()
            # The whole answer, decompressed, as httpx would hold it after aread().
            answer = httpx.Response(response.status_code, headers=_plain(response.headers),
                                    content=content, request=request,
                                    extensions=response.extensions)
        finally:
            busy[shard] -= 1
        return answer

    def _url(self, path: str) -> httpx.URL:
        """The URL of ``path`` on the API. A path of plain segments (``/ticket/<id>``) is put
        on the base URL parsed once, with no new parse: parsing is a third of a request's CPU."""
        import httpx

        if self._base is not None and _PLAIN_PATH.fullmatch(path):
            url = httpx.URL.__new__(httpx.URL)
            url._uri_reference = self._base._uri_reference._replace(path=self._base_path + path)
            return url
        return httpx.URL(f"{self.base_url}/{path.lstrip('/')}")

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _bounded_body(response: httpx.Response) -> bytes:
    """The answer's content, decompressed, at most MAX_ANSWER bytes. Decompression is bounded
    at every step (zlib's ``max_length``), so a gzip bomb never inflates past the cap: httpx's
    own decoders inflate each network chunk whole, a thousandfold for a bomb."""
    import zlib

    import httpx

    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        inflate = None
    elif encoding in ("gzip", "x-gzip"):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, as sent in practice
    else:
        raise httpx.RemoteProtocolError(f"the answer is in an encoding bulksync did not ask for "
                                        f"({clean(encoding, limit=40)})")
    too_big = httpx.RemoteProtocolError(
        f"the answer is larger than {MAX_ANSWER >> 20} MiB; not read further")
    if response.is_stream_consumed:  # a test's MockTransport answer: already read and decoded
        if len(response.content) > MAX_ANSWER:
            raise too_big
        return response.content
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        if inflate is not None:
            try:
                raw = inflate.decompress(raw, MAX_ANSWER + 1 - size)
            except zlib.error:
                raise httpx.RemoteProtocolError("the answer could not be decompressed") from None
            if inflate.unconsumed_tail:
                raise too_big
        size += len(raw)
        if size > MAX_ANSWER:
            raise too_big
        chunks.append(raw)
    return b"".join(chunks)


def _plain(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The headers of an answer whose content is already decompressed."""
    return [(k, v) for k, v in headers.raw if k.lower() not in (b"content-encoding", b"content-length",
                                                               b"transfer-encoding")]


def _proxy_for(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``NO_PROXY``...) names for ``url``, as httpx
    would; never one for a loopback host (the sandbox is on this machine)."""
    import urllib.request

    parts = urlsplit(url)
    if is_loopback(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _transport(verify: ssl.SSLContext, limits: httpx.Limits, proxy: str | None) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections use bulksync's asyncio backend (through a proxy: httpx's own)."""
    import httpcore
    import httpx

    from bulksync.netio import AsyncioBackend

    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, proxy=proxy)
    if proxy is None:
        # httpx builds its pool with the default (anyio) backend and takes no other; the pool
        # it builds is replaced by the same pool on the asyncio backend.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=AsyncioBackend())
    return transport
