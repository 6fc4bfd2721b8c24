"""Text from outside (a server's answer, an exception's message) made safe to show or keep.

Every piece of such text passes :func:`clean` once, where it enters bulksync, before it
reaches a sheet, a side file, the journal or a terminal: the token is redacted, control
characters (and the Unicode ones that reorder or hide text) become spaces, whitespace is
collapsed and the length is capped. A spreadsheet's formula start is handled where a cell
is written (``neutralise``), since only a sheet gives it a meaning.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MAX_TEXT", "clean", "neutralise", "redact", "shown_url", "unneutralise"]

MAX_TEXT = 300
"""Characters of outside text kept in a message."""
REDACTED = "[token]"
MIN_SECRET = 4
"""Shorter "secrets" are not redacted: they are not secret, and would mangle every message."""

def clean(text: str, *, secrets: Iterable[str] = (), limit: int = MAX_TEXT) -> str:
    """``text`` on one line, without control or invisible characters or any of ``secrets``,
    at most ``limit`` characters (an ellipsis marks a cut)."""
    text = redact(text[:max(limit * 8, 4096)], secrets)  # what is kept is short: not megabytes
    text = " ".join(text.translate(_invisible()).split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (as a server may echo it) replaced by ``[token]``,
    and nothing else changed: the one rule for keeping the token out of what is shown or kept."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            text = _disguises(secret).sub(REDACTED, text)
    return text


@functools.cache
def _disguises(secret: str) -> re.Pattern[str]:
    """The secret as a server may echo it: plain, JSON- or repr-escaped (backslashes before
    quotes and backslashes), or re-encoded so that NULs or spaces fall between its
    characters (UTF-16 read as 8-bit text)."""
    junk = r"(?:[\x00\s]|\\)*"
    return re.compile(junk.join(re.escape(c) for c in secret))


@functools.cache
def _invisible() -> dict[int, str]:
    """Every character that controls, reorders or hides text, mapped to a space: the control
    and format categories (C0, C1, bidi marks and isolates, zero-width characters, tags, the
    soft hyphen...), line and paragraph separators, and the blank "letters" that render as
    nothing (Hangul fillers, U+034F, U+17B4/5, U+2800)."""
    # The blocks that hold such characters (Unicode 15): the BMP, the Brahmi to Egyptian
    # blocks, shorthand and musical format controls, and the tags. Scanning only them keeps
    # the table's making to milliseconds.
    blocks = (range(0x10000), range(0x11000, 0x14000), range(0x1BC00, 0x1D200),
              range(0xE0000, 0xE1000))
    spaces = {c: " " for block in blocks for c in block
              if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp")}
    spaces.update({c: " " for c in (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0)})
    return spaces


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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text a spreadsheet will show as text, never run as a formula (a leading ')."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def unneutralise(text: str) -> str:
    """The value a neutralised cell stands for: a leading apostrophe before ``= + - @`` is
    the spreadsheet's way of saying "text", not part of the value (Excel's convention too)."""
    return text[1:] if text[:1] == "'" and text.startswith(_FORMULA_START, 1) else text
