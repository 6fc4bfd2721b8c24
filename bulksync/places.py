"""How a place in a sheet is said to its user: column letters and row ranges.

Shared by the readers and writers (which address cells by letter) and by every message
that names a row or a column, so a sheet's reader is not where a report gets its words.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["column_index", "column_letter", "row_ranges"]


def column_letter(position: int) -> str:
    """0 → A, 25 → Z, 26 → AA: how a spreadsheet names a column."""
    letters = ""
    n = position + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """A → 0, Z → 25, AA → 26: the position of the column a spreadsheet names (column_letter's
    inverse)."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def row_ranges(rows: Iterable[int]) -> str:
    """Row numbers as a spreadsheet user reads them: ``2–5, 9``."""
    parts: list[list[int]] = []
    for n in sorted(set(rows)):
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts)
