"""The identity memo behind bulk edits' shared payloads and cells."""

from __future__ import annotations

from bulksync.memo import ByIdentity


def test_each_object_is_computed_once_and_equal_objects_apart() -> None:
    calls: list[object] = []

    def make(d: dict[str, str]) -> str:
        calls.append(d)
        return ",".join(sorted(d))

    memo = ByIdentity(make, size=2)
    a, b, c = {"x": "1"}, {"x": "1"}, {"y": "2"}
    assert [memo(a), memo(a), memo(b), memo(a), memo(b)] == ["x"] * 5
    assert len(calls) == 2 and calls[0] is a and calls[1] is b  # equal but distinct: each once
    assert [memo(c), memo(c)] == ["y", "y"] and len(calls) == 4  # past its size: computed each time
