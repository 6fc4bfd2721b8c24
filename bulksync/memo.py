"""A memo for a function of read-only objects, looked up by the object's identity.

A bulk edit meets the same few objects many times over (its one payload, its one
baseline, the one cells mapping its rows share when written back); hashing their
contents each time would cost more than the work saved. The memo holds each object
it keeps, so no other object can take its id meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """``make(obj)``, computed once per object for the first ``size`` objects met."""

    def __init__(self, make: Callable[[K], V], size: int = 64) -> None:
        self._make = make
        self._size = size
        self._seen: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        hit = self._seen.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self._make(obj)
        if len(self._seen) < self._size:
            self._seen[id(obj)] = (obj, value)
        return value
