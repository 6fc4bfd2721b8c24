"""The Suptask client: base URL, auth, paths, and the shapes of the answers."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from bulksync.columns import is_uuid
from bulksync.config import DEFAULT_API_URL, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, check_api_url, is_loopback
from bulksync.untrusted import clean, redact

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["DEFAULT_API_URL", "CreatedTicket", "ReadTicket", "SuptaskClient", "created_ticket", "error_message",
           "read_ticket"]

MAX_ANSWER = 1 << 20
"""Bytes of an answer (after decompression) read at most; a bigger one is a broken answer."""


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
    return CreatedTicket(ticket_id, ticket_number(body.get("ticketNumber", nested.get("ticketNumber"))))


MAX_NUMBER = 10**12
"""No team has a trillion tickets: a bigger (or negative, or fractional) number is not believed."""


def ticket_number(value: Any) -> int | None:
    """A ticket number as the API may give it (a number, or its digits as a string, as
    webhooks show it), or None when it is not a plausible one (a bool, a fraction,
    Infinity, a negative, an absurdly large number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 13:
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_NUMBER:
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_NUMBER:
        return value
    return None


def ticket_id_of(value: Any) -> str | None:
    """A ticket ID believed from a server: a UUID, in lower case (IDs compare as equal whatever
    their case), and not the all-zero UUID. None otherwise."""
    if not isinstance(value, str) or not is_uuid(value):
        return None
    value = value.lower()
    return None if value == "00000000-0000-0000-0000-000000000000" else value


DEFAULT_STATUSES = ("Open", "In-progress", "Escalated", "Waiting for customer", "On-hold", "Closed")
"""Suptask's default statuses (renamable per workspace); webhooks show them upper case."""
UNASSIGNED = "UNASSIGNED"
"""What a ticket's ``assignee`` holds when nobody is assigned, in the webhook shape."""
_STATUS_BY_KEY = {"".join(ch for ch in s.casefold() if ch.isalnum()): s for s in DEFAULT_STATUSES}


@dataclass(frozen=True)
class ReadTicket:
    """A ticket as ``GET /ticket/{ticketNumber}`` answered it, read tolerantly, in the sheet's
    terms: ``cells`` by column (``status``, ``priority``, ``assignee``, ``requester``,
    ``tags``, ``description`` when the answer has it, ``customField_<uuid>``). Answers of form
    fields known only by name (``formValues``) cannot be placed in a sheet, and are left out."""

    ticket_id: str | None
    ticket_number: int | None
    cells: dict[str, str]


def read_ticket(body: Any, secrets: tuple[str, ...] = ()) -> ReadTicket | None:
    """``body`` (a ticket, or a webhook's ``{"ticket": {...}}``) as a :class:`ReadTicket`, or
    None if it is not a ticket. Every shape any source names is accepted: the number as a
    number or text, the status in any case (a default status gets its usual spelling), the
    ``UNASSIGNED`` sentinel as no assignee, tags as a list or text, multi-select answers as
    lists. Text is cleaned of what a terminal
    or a spreadsheet would act on."""
    if not isinstance(body, dict):
        return None
    ticket = body["ticket"] if isinstance(body.get("ticket"), dict) else body
    cells: dict[str, str] = {}

    def put(column: str, value: Any) -> None:
        text = _answer_text(value, secrets)
        if text is not None:
            cells[column] = text

    status = _answer_text(ticket.get("status"), secrets)
    if status is not None:
        cells["status"] = _STATUS_BY_KEY.get("".join(c for c in status.casefold() if c.isalnum()), status)
    for name in ("priority", "assignee"):  # present and null: none (these can be cleared)
        if name in ticket and ticket[name] is None:
            cells[name] = ""
    put("priority", ticket.get("priority"))
    assignee = _answer_text(ticket.get("assignee"), secrets)
    if assignee is not None:
        cells["assignee"] = "" if assignee.upper() == UNASSIGNED else assignee
    put("requester", ticket.get("requesterId", ticket.get("requester")))
    put("tags", ticket.get("tags"))
    put("description", ticket.get("description"))
    for item in _items(ticket.get("customFields")):
        if is_uuid(str(item.get("fieldId", ""))):
            put(f"customField_{str(item['fieldId']).lower()}", item.get("value"))
    for item in _items(ticket.get("formValues")):
        name = str(item.get("fieldName", ""))
        if is_uuid(name):
            put(f"customField_{name.lower()}", item.get("value"))
    return ReadTicket(ticket_id_of(ticket.get("id")), ticket_number(ticket.get("ticketNumber")), cells)


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


_NOT_IN_A_CELL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters: no cell holds them (XML forbids most); tabs and line breaks stay."""


def _answer_text(value: Any, secrets: tuple[str, ...]) -> str | None:
    """A value of an answer as a sheet's cell, exactly as the ticket holds it (spaces, line
    breaks and length kept: it goes back to Suptask on the next push) but for control
    characters and the token: None when absent, a list joined by commas."""
    if value is None:
        return None
    if isinstance(value, list):
        value = ",".join(str(v) for v in value if v is not None)
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return redact(_NOT_IN_A_CELL.sub("", str(value)), secrets)


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


def _verified_context() -> ssl.SSLContext:
    """The TLS context every client uses: certificates verified against certifi's bundle, or
    those SSL_CERT_FILE or SSL_CERT_DIR name (httpx's rule).

    Loading a bundle takes tens of milliseconds, which a script or notebook calling push,
    pull or undo again and again would pay on every call: one context is made per process
    and bundle, and shared by the clients, as httpx advises. A bundle file rewritten in place
    is another bundle (its size, time and inode are part of the key), as is another
    SSLKEYLOGFILE, which a context reads when it is made.
    """
    import os

    def stamp(path: str) -> tuple[int, ...]:
        try:
            seen = os.stat(path)
        except OSError:
            return ()
        return seen.st_ino, seen.st_size, seen.st_mtime_ns

    names = ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE")
    key = tuple((os.environ.get(n, ""), stamp(os.environ.get(n, ""))) for n in names)
    return _context_for(key)


@functools.lru_cache(maxsize=4)
def _context_for(key: tuple[tuple[str, tuple[int, ...]], ...]) -> ssl.SSLContext:  # the key: what httpx reads
    import httpx

    return httpx.create_ssl_context(trust_env=True)


class SuptaskClient:
    """An async client for the Suptask public API, on ``httpx.AsyncClient``.

    ``transport`` lets tests hand in an ``httpx.MockTransport``; everything else
    talks real HTTP. The token is only ever placed in the Authorization header.
    Redirects are not followed, cookies are not kept between runs, TLS certificates
    are verified, and the environment's proxy settings are honoured, except that a
    loopback URL (the sandbox) never goes through a proxy.
    """

    def __init__(self, *, token: str, base_url: str = DEFAULT_API_URL,
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_connections: int = DEFAULT_CONCURRENCY, timeout: float = DEFAULT_TIMEOUT) -> None:
        import httpx

        self.base_url = check_api_url(base_url)
        self.host = urlsplit(self.base_url).hostname or self.base_url
        """The API's host, as messages name it."""
        self.secrets = (token,)
        """Texts never to show: every message made from an answer or an error is redacted of them."""
        self.deadline = timeout
        loopback = is_loopback(urlsplit(self.base_url).hostname or "")
        self._client = httpx.AsyncClient(
            # A loopback URL (the sandbox) never goes through a proxy, nor reads the proxy
            # settings at all (a broken one must not stop a rehearsal); the certificates the
            # environment names (SSL_CERT_FILE, SSL_CERT_DIR) are trusted either way.
            trust_env=not loopback, verify=_verified_context(),
            base_url=self.base_url + "/",
            headers={"Authorization": f"Api-Token {token}", "Accept": "application/json",
                     "User-Agent": "bulksync", "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            transport=transport, follow_redirects=False)

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """Send one request and read its whole answer (no redirects are followed).

        The whole exchange (connect, send, the complete answer) has ``timeout`` seconds: a
        server that trickles bytes ends as ``httpx.ReadTimeout``. An answer bigger than
        MAX_ANSWER bytes once decompressed ends as ``httpx.RemoteProtocolError``.
        """
        import httpx

        content = None
        headers = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False).encode()
            headers = {"Content-Type": "application/json"}
        request = self._client.build_request(method, path.lstrip("/"), content=content,
                                             headers=headers)
        try:
            async with asyncio.timeout(self.deadline):
                response = await self._client.send(request, stream=True)
                try:
                    content = await _bounded_body(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete answer within {self.deadline:g} s",
                                    request=request) from None
        # The whole answer, decompressed, as httpx would hold it after aread().
        return httpx.Response(response.status_code, headers=_plain(response.headers),
                              content=content, request=request, extensions=response.extensions)

    async def aclose(self) -> None:
        await self._client.aclose()

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
