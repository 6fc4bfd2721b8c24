"""What to do after a request: one classification for every request bulksync sends.

The API has no idempotency key, so the rule is about what the server may have done:

* a POST (create, link, reply) is sent again only when it certainly was not processed:
  the connection was never made, or the answer was 429 or 503 ("not processed" by HTTP's
  definition). Anything else that leaves its outcome open (a timeout, a connection lost
  while sending or after, any other 5xx: 500, 502, 504, a proxy's 520-524...) makes it
  ``uncertain``: resolved later, never resent blind;
* PATCH, DELETE and GET are idempotent: retried on the same open outcomes;
* 401 (and 403 before anything succeeded) means the token is refused: the run stops;
* any other 4xx is the server's final word on that request: ``failed``.

``classify`` is a pure function of its inputs (``tests/test_policy.py`` walks the whole
table); ``backoff`` is how long every retry waits.
"""

from __future__ import annotations

import random
from typing import Literal

__all__ = ["Failure", "Next", "backoff", "classify"]

Failure = Literal["connect", "write", "read", "timeout", "status"]
"""How a request ended without a usable answer: the connection was never made (connect:
refused, DNS, TLS, pool), it broke while sending (write) or while reading the answer (read),
the deadline passed (timeout), or the server answered with an error ``status``."""

Next = Literal["retry", "retry-unsent", "uncertain", "failed", "stop", "done"]
"""``retry``: send it again (idempotent); ``retry-unsent``: send it again, and the intent of a
POST can be forgotten (it was not processed); ``uncertain``: a POST whose outcome is open;
``failed``: final; ``stop``: the token was refused, stop the run; ``done``: the goal is met
(a DELETE answered 404 after an earlier attempt was lost)."""

NOT_PROCESSED = frozenset({429, 503})
"""Statuses that say the request was not carried out (HTTP's own definition)."""


def classify(method: str, failure: Failure, status: int = 0, *, attempt: int = 1,
             anything_succeeded: bool = False) -> Next:
    """What to do after ``failure`` of a ``method`` request (``status`` for a status failure)."""
    once = method == "POST"
    if failure == "connect":
        return "retry-unsent"
    if failure in ("write", "read", "timeout"):
        return "uncertain" if once else "retry"
    if status == 401 or (status == 403 and not anything_succeeded):
        return "stop"
    if status in NOT_PROCESSED:
        return "retry-unsent"
    if 500 <= status <= 599:  # a server or gateway error (500, 502, 504, 520-524...): maybe done
        return "uncertain" if once else "retry"
    if method == "DELETE" and status == 404 and attempt > 1:
        return "done"  # an earlier attempt's answer was lost, but the ticket is gone
    return "failed"


MAX_BACKOFF = 30.0
"""No retry waits longer than this for its own backoff (a 429's pause may be longer)."""
BACKOFF_BASE = 0.5
"""The first retry's pause, in seconds, before jitter."""
MAX_ATTEMPTS = 5
"""Attempts at a request that fails for a reason a retry may mend (a 429 or 503 is not counted)."""
READ_ATTEMPTS = 3
"""Attempts at a read by ticket number (resolving, pulling, checking) that gets no answer."""


def backoff(attempt: int, base: float = BACKOFF_BASE) -> float:
    """The pause before the attempt after ``attempt``: ``base`` doubled for each attempt, at
    most MAX_BACKOFF, with jitter (×0.5 to ×1.5) so that workers do not retry in step."""
    return min(MAX_BACKOFF, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)
