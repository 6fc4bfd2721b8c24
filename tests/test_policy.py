"""The one retry classification, as a table: every failure kind, every status family, every
kind of request (issue 15)."""

from __future__ import annotations

import httpx
import pytest

from bulksync.engine import failure_of
from bulksync.policy import classify

# (method, failure, status, attempt, anything succeeded) → what to do
TABLE = [
    # Nothing was sent: safe for every request, and a POST's intent can be forgotten.
    ("POST", "connect", 0, 1, False, "retry-unsent"),
    ("PATCH", "connect", 0, 1, False, "retry-unsent"),
    ("DELETE", "connect", 0, 1, False, "retry-unsent"),
    ("GET", "connect", 0, 1, False, "retry-unsent"),
    # Broken while sending, after sending, or out of time: open for a POST, retried otherwise.
    ("POST", "write", 0, 1, False, "uncertain"),
    ("POST", "read", 0, 1, False, "uncertain"),
    ("POST", "timeout", 0, 1, False, "uncertain"),
    ("PATCH", "write", 0, 1, False, "retry"),
    ("PATCH", "read", 0, 1, False, "retry"),
    ("PATCH", "timeout", 0, 1, False, "retry"),
    ("DELETE", "read", 0, 1, False, "retry"),
    ("GET", "timeout", 0, 1, False, "retry"),
    # Not processed by HTTP's definition.
    ("POST", "status", 429, 1, False, "retry-unsent"),
    ("POST", "status", 503, 1, True, "retry-unsent"),
    ("PATCH", "status", 429, 1, False, "retry-unsent"),
    # Maybe done.
    ("POST", "status", 500, 1, True, "uncertain"),
    ("POST", "status", 502, 1, True, "uncertain"),
    ("POST", "status", 504, 1, True, "uncertain"),
    ("PATCH", "status", 500, 1, True, "retry"),
    ("GET", "status", 502, 1, True, "retry"),
    ("DELETE", "status", 504, 1, True, "retry"),
    ("POST", "status", 501, 1, True, "uncertain"),  # any 5xx but 503 may have been done
    ("POST", "status", 520, 1, True, "uncertain"),
    ("POST", "status", 524, 1, True, "uncertain"),
    ("PATCH", "status", 524, 1, True, "retry"),
    # The token.
    ("POST", "status", 401, 1, True, "stop"),
    ("PATCH", "status", 403, 1, False, "stop"),
    ("PATCH", "status", 403, 1, True, "failed"),  # another team's ticket, once others went through
    # The server's final word.
    ("POST", "status", 400, 1, False, "failed"),
    ("PATCH", "status", 404, 1, True, "failed"),
    ("POST", "status", 409, 1, True, "failed"),
    ("DELETE", "status", 404, 1, True, "failed"),
    ("DELETE", "status", 404, 2, True, "done"),  # an earlier attempt's answer was lost
    ("GET", "status", 404, 1, True, "failed"),
]


@pytest.mark.parametrize("method, failure, status, attempt, succeeded, expected", TABLE)
def test_the_retry_table(method: str, failure: str, status: int, attempt: int, succeeded: bool,
                         expected: str) -> None:
    assert classify(method, failure, status, attempt=attempt,  # type: ignore[arg-type]
                    anything_succeeded=succeeded) == expected


REQUEST = httpx.Request("POST", "https://api.example.com/ticket")


@pytest.mark.parametrize("error, expected", [
    (httpx.ConnectError("refused", request=REQUEST), "connect"),
    (httpx.ConnectTimeout("slow", request=REQUEST), "connect"),
    (httpx.PoolTimeout("busy", request=REQUEST), "connect"),
    (httpx.WriteError("broken pipe", request=REQUEST), "write"),
    (httpx.WriteTimeout("slow", request=REQUEST), "write"),
    (httpx.ReadError("reset", request=REQUEST), "read"),
    (httpx.RemoteProtocolError("closed mid-answer", request=REQUEST), "read"),
    (httpx.ReadTimeout("deadline", request=REQUEST), "timeout"),
])
def test_each_transport_error_is_placed_where_it_broke(error: httpx.TransportError, expected: str) -> None:
    assert failure_of(error) == expected
