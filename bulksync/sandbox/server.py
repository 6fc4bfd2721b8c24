"""The sandbox server: the documented Suptask API over real HTTP on loopback, with fault switches.

Standard library only (http.server, sqlite3), so it starts in milliseconds and
needs nothing the package does not already have. Besides the API under
``/api/v2/public`` it answers two introspection paths, without auth:
``GET /_sandbox/tickets``, ``GET /_sandbox/requests`` (the request log) and
``GET /_sandbox/openapi.json`` (the contract it answers by);
in Python, ``Sandbox.tickets()`` and ``Sandbox.requests()`` give the same.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self

from bulksync.clock import SYSTEM, Clock

__all__ = ["Sandbox", "parse_rate_limit"]

PREFIX = "/api/v2/public"
SPEC = Path(__file__).with_name("openapi.json")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REPLY_CHANNELS = ("requester", "responder")
CreateShape = Literal["observed", "documented"]
ReadShape = Literal["plain", "webhook"]

# Field name → (accepted types, nullable on create, nullable on update)
_FIELDS: dict[str, tuple[tuple[type, ...], bool, bool]] = {
    "description": ((str,), False, False),
    "requesterChannel": ((str,), False, False),
    "formId": ((str,), False, False),
    "priority": ((str,), False, True),
    "status": ((str,), False, False),
    "assignee": ((str,), True, True),
    "requester": ((str,), False, False),
    "tags": ((list,), True, True),
    "customFields": ((list,), False, False),
    # Reported by one client (not documented): create takes queueId and requesterId, PATCH dueDate.
    "queueId": ((str,), False, False),
    "requesterId": ((str,), False, False),
    "dueDate": ((str,), True, True),
}
_REQUIRED = ("description", "requesterChannel", "formId")


def webhook_shape(ticket: dict[str, Any]) -> dict[str, Any]:
    """A ticket as the Webhooks page shows one (the one documented shape of a ticket): number
    as a string, status upper case, the ``UNASSIGNED`` sentinel, ``createdAt`` in epoch
    seconds, answers in ``formValues`` by field name, and no description."""
    import calendar

    created = calendar.timegm(time.strptime(ticket["createdAt"], "%Y-%m-%dT%H:%M:%SZ"))
    number = ticket["ticketNumber"]
    return {
        "id": ticket["id"], "ticketNumber": str(number), "teamTicketId": f"team-{number}",
        "status": str(ticket.get("status") or "").upper(), "priority": ticket.get("priority"),
        "assignee": ticket.get("assignee") or "UNASSIGNED", "requesterId": ticket.get("requesterId"),
        "tags": ticket.get("tags") or [], "createdAt": created, "formId": ticket.get("formId"),
        "queueId": ticket.get("queueId"), "archived": False, "teamId": "T0SANDBOX", "source": "api",
        "formValues": [{"fieldName": cf["fieldId"], "value": cf["value"]}
                       for cf in ticket.get("customFields", [])],
        "requesterTicketPermalink": f"https://app.suptask.com/tickets/{number}",
        "responderTicketPermalink": f"https://app.suptask.com/tickets/{number}?as=agent",
    }


def parse_rate_limit(text: str) -> tuple[int, float]:
    """``"100/900"`` → (100 requests, per 900 seconds)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*", text)
    if not m or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
        raise ValueError(f"{text!r} is not N/SECONDS, e.g. 100/900")
    return int(m.group(1)), float(m.group(2))


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check_fields(body: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Refusal(400, "the body must be a JSON object")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise _Refusal(400, f"unknown field(s): {', '.join(unknown)}")
    for name, value in body.items():
        types, null_create, null_update = _FIELDS[name]
        if value is None:
            if not (null_create if create else null_update):
                raise _Refusal(400, f"{name} may not be null")
            continue
        if not isinstance(value, types):
            raise _Refusal(400, f"{name} must be a {'string' if types == (str,) else 'array'}")
    if create:
        for name in _REQUIRED:
            if not body.get(name):
                raise _Refusal(400, f"{name} is required")
    if "formId" in body and not _UUID.fullmatch(body["formId"]):
        raise _Refusal(400, "formId must be a UUID")
    if isinstance(body.get("tags"), list) and not all(isinstance(t, str) for t in body["tags"]):
        raise _Refusal(400, "tags must be an array of strings")
    for cf in body.get("customFields") or []:
        if (not isinstance(cf, dict) or set(cf) != {"fieldId", "value"}
                or not isinstance(cf["fieldId"], str) or not _UUID.fullmatch(cf["fieldId"])
                or not isinstance(cf["value"], str)):
            raise _Refusal(400, 'each customFields entry must be {"fieldId": "<uuid>", "value": "<string>"}')
    return body


class _Store:
    """Tickets in SQLite (in memory, or a file with --db), and the request log in memory."""

    def __init__(self, db: Path | None) -> None:
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(str(db) if db else ":memory:", check_same_thread=False,
                                    isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL" if db else "PRAGMA journal_mode=MEMORY")
        self.conn.execute("CREATE TABLE IF NOT EXISTS ticket (id TEXT PRIMARY KEY, "
                          "number INTEGER UNIQUE NOT NULL, body TEXT NOT NULL)")
        self.log: list[dict[str, Any]] = []

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            (last,) = self.conn.execute("SELECT coalesce(max(number), 0) FROM ticket").fetchone()
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            ticket = {"id": str(uuid.uuid4()), "ticketNumber": last + 1, "status": "Open",
                      "priority": None, "assignee": None, "requesterId": None, "tags": [],
                      "customFields": [], "createdAt": now, "updatedAt": now,
                      "externalLinks": [], "replies": []}
            self._apply(ticket, fields)
            self.conn.execute("INSERT INTO ticket VALUES (?, ?, ?)",
                              (ticket["id"], ticket["ticketNumber"], json.dumps(ticket)))
            return ticket

    def load_samples(self) -> None:
        """The tickets the sample close list (sample_data/close-tickets.csv) names, so that the
        README's bulk close runs on a fresh sandbox (``bulksync sandbox --samples``)."""
        import csv
        import io

        from bulksync.resources import bundled

        text = (bundled("sample_data") / "close-tickets.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            ticket = self.create({"description": f"Sample ticket ({row['reason']})"})
            with self.lock:
                self.conn.execute("UPDATE ticket SET id = ?, body = ? WHERE id = ?",
                                  (row["ticketId"], json.dumps({**ticket, "id": row["ticketId"]}),
                                   ticket["id"]))

    @staticmethod
    def _apply(ticket: dict[str, Any], fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if name == "requester":
                ticket["requesterId"] = value
            elif name == "customFields":
                merged = {cf["fieldId"]: cf["value"] for cf in ticket["customFields"]}
                merged.update({cf["fieldId"]: cf["value"] for cf in value})
                ticket["customFields"] = [{"fieldId": k, "value": v} for k, v in merged.items()]
            else:
                ticket[name] = value

    def change(self, ticket_id: str, mutate: Callable[[dict[str, Any]], None]) -> bool:
        with self.lock:
            row = self.conn.execute("SELECT body FROM ticket WHERE id = ?", (ticket_id,)).fetchone()
            if row is None:
                return False
            ticket = json.loads(row[0])
            mutate(ticket)
            ticket["updatedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.conn.execute("UPDATE ticket SET body = ? WHERE id = ?", (json.dumps(ticket), ticket_id))
            return True

    def update(self, ticket_id: str, fields: dict[str, Any]) -> bool:
        return self.change(ticket_id, lambda t: self._apply(t, fields))

    def delete(self, ticket_id: str) -> bool:
        with self.lock:
            return self.conn.execute("DELETE FROM ticket WHERE id = ?", (ticket_id,)).rowcount > 0

    def by_number(self, number: int) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute("SELECT body FROM ticket WHERE number = ?", (number,)).fetchone()
        return json.loads(row[0]) if row else None

    def tickets(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute("SELECT body FROM ticket ORDER BY number").fetchall()
        return [json.loads(r[0]) for r in rows]


class Sandbox:
    """A running (or ready to run) sandbox server.

    Use it as a context manager in tests (it serves from a background thread)::

        with Sandbox(token="t") as sb:
            ...  # talk to sb.url with "Authorization: Api-Token t"
            sb.tickets(), sb.requests()
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 create_shape: CreateShape = "observed", rate_limit: tuple[int, float] | None = None,
                 latency_ms: float = 0, fail_rate: float = 0, drop_rate: float = 0,
                 ambiguous_rate: float = 0, seed: int | None = None, db: Path | str | None = None,
                 samples: bool = False, read_shape: ReadShape = "plain",
                 failing_reads: Iterable[int] = (), clock: Clock = SYSTEM) -> None:
        for name, p in (("fail_rate", fail_rate), ("drop_rate", drop_rate),
                        ("ambiguous_rate", ambiguous_rate)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        self.token = token or secrets.token_urlsafe(18)
        self.create_shape = create_shape
        self.read_shape = read_shape
        self.failing_reads: set[int] = set(failing_reads)
        """Ticket numbers whose GET answers 500, as some tickets do on the live API."""
        self.rate_limit = rate_limit
        self.clock = clock
        """What the rate-limit window counts by (its ``time()``): the real time, unless a test
        gives the sandbox the clock it gives bulksync, so that both skip the same pauses."""
        self.latency = latency_ms / 1000
        self.fail_rate, self.drop_rate, self.ambiguous_rate = fail_rate, drop_rate, ambiguous_rate
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._window: tuple[float, int] = (0.0, 0)
        self._handling = 0  # connections open now (see idle)
        self._handled = threading.Condition()
        self._store = _Store(Path(db) if db else None)
        if samples:
            self._store.load_samples()
        self._server = _Server((host, port), _Handler)
        self._server.sandbox = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PREFIX}"

    def tickets(self) -> list[dict[str, Any]]:
        return self._store.tickets()

    def edit(self, number: int, **fields: Any) -> dict[str, Any]:
        """Change a ticket as an agent would in Slack (status, assignee, priority, tags,
        description, customFields…): what a later read, pull or conflict check meets."""
        found = self._store.by_number(number)
        if found is None:
            raise KeyError(f"no ticket number {number}")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def in_slack(ticket: dict[str, Any]) -> None:
            self._store._apply(ticket, fields)
            ticket["updatedAt"] = now

        self._store.change(found["id"], in_slack)
        edited = self._store.by_number(number)
        assert edited is not None
        return edited

    def requests(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return list(self._store.log)

    def idle(self, timeout: float = 30) -> bool:
        """Wait until no connection is open, so every request a client sent before it went
        away (killed) has been handled, its ticket made or not: True when idle, False if
        ``timeout`` passed first. A client still connected keeps it from being idle."""
        with self._handled:
            return self._handled.wait_for(lambda: self._handling == 0, timeout)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name="bulksync-sandbox")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler --------------------------------------------------

    def roll(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < p

    def choose(self, options: tuple[str, ...]) -> str:
        with self._rng_lock:
            return self._rng.choice(options)

    def take_rate(self) -> tuple[dict[str, str], bool]:
        """Count one request in the fixed window: its headers, and whether it is over the limit."""
        if self.rate_limit is None:
            return {}, False
        limit, span = self.rate_limit
        with self._rng_lock:
            now = self.clock.time()
            start, used = self._window
            if now >= start + span:
                start, used = now, 0
            over = used >= limit
            if not over:
                used += 1
            self._window = (start, used)
        reset = start + span
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - used),
                   "X-RateLimit-Reset": f"{reset:.3f}"}
        if over:
            headers["Retry-After"] = str(max(1, int(reset - now + 0.999)))
        return headers, over


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    sandbox: Sandbox

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sandbox._handled:  # counted as it is accepted, before its thread starts
            self.sandbox._handling += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.sandbox._handled:
                self.sandbox._handling -= 1
                self.sandbox._handled.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, and Nagle must not hold the reply back.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                 f"Content-Length: {len(payload)}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        self.wfile.flush()

    def _handle(self, method: str) -> None:
        sb = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:  # the client went away mid-request: nothing to process
            self.close_connection = True
            with sb._store.lock:
                sb._store.log.append({"method": method, "path": self.path, "time": time.time(),
                                      "body": None, "status": 0, "fault": "incomplete request"})
            return
        # --latency-ms is the time from the request's arrival to its answer, work included.
        answer_at = time.monotonic() + sb.latency
        path = self.path.split("?", 1)[0]
        if path.startswith("/_sandbox/tickets/") and method == "POST":
            self._admin_edit(path[len("/_sandbox/tickets/"):], raw)
            return
        if path.startswith("/_sandbox/") and method == "GET":
            what = path[len("/_sandbox/"):]
            if what in ("tickets", "requests"):
                self._reply(200, sb.tickets() if what == "tickets" else sb.requests())
            elif what == "openapi.json":
                self._reply(200, json.loads(SPEC.read_text(encoding="utf-8")))
            else:
                self._reply(404, {"message": "unknown sandbox path"})
            return
        entry: dict[str, Any] = {"method": method, "path": path, "time": time.time()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        entry["body"] = body
        status, answer, headers = self._answer(method, path, raw, body, entry)
        entry["status"] = status
        with sb._store.lock:
            sb._store.log.append(entry)
        wait = answer_at - time.monotonic()
        if wait > 0 and path.startswith(PREFIX + "/"):
            time.sleep(wait)
        if status == 0:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._reply(status, answer, headers)

    def _admin_edit(self, number: str, raw: bytes) -> None:
        """``POST /_sandbox/tickets/{number}`` with fields: a change made in Slack, not by the API."""
        try:
            fields = json.loads(raw or b"{}")
            if not number.isdigit() or not isinstance(fields, dict):
                raise ValueError
            self._reply(200, self.server.sandbox.edit(int(number), **fields))
        except KeyError:
            self._reply(404, {"message": "Ticket not found"})
        except ValueError:
            self._reply(400, {"message": "POST a JSON object of fields to /_sandbox/tickets/{number}"})

    def _answer(self, method: str, path: str, raw: bytes, body: Any,
                entry: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, headers); status 0 means: drop the connection."""
        sb = self.server.sandbox
        if not path.startswith(PREFIX + "/"):
            return 404, {"message": f"no such path; the API is under {PREFIX}"}, {}
        route = path[len(PREFIX):]
        auth = self.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme not in ("Api-Token", "Bearer") or not secrets.compare_digest(given, sb.token):
            return 401, {"message": "Unauthorized: send Authorization: Api-Token <token>"}, {}
        rate_headers, over = sb.take_rate()
        if over:
            return 429, {"message": "Too many requests"}, rate_headers
        if sb.roll(sb.fail_rate):
            entry["fault"] = "fail"
            return 503, {"message": "Service unavailable (sandbox --fail-rate)"}, rate_headers
        if sb.roll(sb.drop_rate):
            entry["fault"] = "drop"
            return 0, None, {}
        try:
            status, answer = self._route(method, route, raw, body, entry)
        except _Refusal as r:
            return r.status, {"message": r.message}, rate_headers
        if entry.get("fault") == "ambiguous":
            return (500 if sb.choose(("500", "drop")) == "500" else 0), \
                {"message": "Internal server error"}, rate_headers
        return status, answer, rate_headers

    def _route(self, method: str, route: str, raw: bytes, body: Any,
               entry: dict[str, Any]) -> tuple[int, Any]:
        sb = self.server.sandbox
        store = sb._store
        parts = route.strip("/").split("/")
        if raw and not isinstance(body, (dict, list)):
            raise _Refusal(400, "the body is not valid JSON")
        if parts == ["ticket"] and method == "POST":
            ticket = store.create(_check_fields(body, create=True))
            entry["ticketId"] = ticket["id"]
            if sb.roll(sb.ambiguous_rate):
                entry["fault"] = "ambiguous"
            if sb.create_shape == "documented":
                return 201, {"ticketId": ticket["id"]}
            return 201, {"oldTicket": {
                "id": ticket["id"], "ticketNumber": ticket["ticketNumber"],
                "permalink": f"https://app.suptask.com/tickets/{ticket['ticketNumber']}"}}
        if len(parts) == 2 and parts[0] == "ticket" and method == "GET":
            return 200, self._read(parts[1])
        if len(parts) == 2 and parts[0] == "ticket" and method in ("PATCH", "DELETE"):
            ticket_id = self._ticket_id(parts[1])
            if method == "DELETE":
                done = store.delete(ticket_id)
            else:
                done = store.update(ticket_id, _check_fields(body, create=False))
            if not done:
                raise _Refusal(404, "Ticket not found")
            return 200, None
        if len(parts) == 3 and parts[:2] == ["ticket", "external"] and method == "POST":
            link = self._link(body)
            if not store.change(self._ticket_id(parts[2]), lambda t: t["externalLinks"].append(link)):
                raise _Refusal(404, "Ticket not found")
            return 201, {"success": True, "message": "External ticket linked"}
        if len(parts) == 3 and parts[:2] == ["ticket", "reply"] and method == "POST":
            reply = self._reply_body(body)
            if not store.change(self._ticket_id(parts[2]), lambda t: t["replies"].append(reply)):
                raise _Refusal(404, "Ticket not found")
            return 200, {"success": True, "message": "Reply sent"}
        raise _Refusal(404 if method in ("GET", "POST", "PATCH", "DELETE") else 405,
                       f"no route for {method} {route}")

    def _read(self, number: str) -> dict[str, Any]:
        """``GET /ticket/{ticketNumber}``, in the sandbox's read shape."""
        sb = self.server.sandbox
        if not number.isdigit():
            raise _Refusal(400, "the ticket number must be numeric")
        if int(number) in sb.failing_reads:
            raise _Refusal(500, "Failed to fetch ticket form fields")
        found = sb._store.by_number(int(number))
        if found is None:
            raise _Refusal(404, "Ticket not found")
        return webhook_shape(found) if sb.read_shape == "webhook" else found

    @staticmethod
    def _ticket_id(text: str) -> str:
        if not _UUID.fullmatch(text):
            raise _Refusal(400, "the ticket ID must be a UUID")
        return text.lower()

    @staticmethod
    def _link(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Refusal(400, "the body must be a JSON object")
        unknown = sorted(set(body) - {"externalId", "integrationType", "url", "data"})
        if unknown:
            raise _Refusal(400, f"unknown field(s): {', '.join(unknown)}")
        for name in ("externalId", "integrationType"):  # optional, as documented
            if name in body and not isinstance(body[name], str):
                raise _Refusal(400, f"{name} must be a string")
        if "url" in body and not (isinstance(body["url"], str)
                                  and re.match(r"https?://\S+$", body["url"])):
            raise _Refusal(400, "url must be a URI")
        if "data" in body and not isinstance(body["data"], dict):
            raise _Refusal(400, "data must be an object")
        return dict(body)

    @staticmethod
    def _reply_body(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Refusal(400, "the body must be a JSON object")
        unknown = sorted(set(body) - {"text", "username", "channel"})
        if unknown:
            raise _Refusal(400, f"unknown field(s): {', '.join(unknown)}")
        for name in ("text", "username"):  # optional, as documented
            if name in body and not isinstance(body[name], str):
                raise _Refusal(400, f"{name} must be a string")
        channel = body.get("channel", ["requester"])
        if (not isinstance(channel, list) or not channel
                or not all(c in REPLY_CHANNELS for c in channel)):
            raise _Refusal(400, 'channel must be an array of "requester" and/or "responder" '
                                "(lower case)")
        return dict(body)
