"""Text from outside (a server's answer, an exception's message) made safe to show or keep.

Every piece of such text passes :func:`clean` once, where it enters bulksync, before it
reaches a sheet, a side file, the journal or a terminal: the token is redacted, control
characters (and the Unicode ones that reorder or hide text) become spaces, whitespace is
collapsed and the length is capped. A spreadsheet's formula start is handled where a cell
is written (``neutralise``), since only a sheet gives it a meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MAX_TEXT", "clean", "shown_url"]

MAX_TEXT = 300
"""Characters of outside text kept in a message."""
REDACTED = "[token]"
MIN_SECRET = 4
"""Shorter "secrets" are not redacted: they are not secret, and would mangle every message."""

# C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings/overrides/isolates,
# zero-width characters and the BOM: none belong in a one-line message.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]+")


def clean(text: str, *, secrets: Iterable[str] = (), limit: int = MAX_TEXT) -> str:
    """``text`` on one line, without control characters or any of ``secrets``, at most
    ``limit`` characters (an ellipsis marks a cut)."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, REDACTED)
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def shown_url(url: str) -> str:
    """``url`` without user name or password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "(an unreadable URL)"
