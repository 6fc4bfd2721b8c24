"""Cost grows with the sheet, not with the store (issue 25): a push of CREATES creates and a
plan of a 3-row sheet, with an empty state store and with one already holding STORED tickets
of other sheets on the same target, side by side. Each measure runs in its own process (peak
memory is that process's). Run: .venv/bin/python bench/store_scale.py [STORED CREATES]
(default: 200,000 and 3,000)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

FORM, CHANNEL, TOKEN = "6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84", "C076K6Y74L1", "t"


def fill(home: Path, url: str, stored: int) -> None:
    """A store holding ``stored`` tickets created from other sheets on the target of ``url``."""
    os.environ["BULKSYNC_HOME"] = str(home)
    from bulksync.journal import Journal, Target

    target = Target.of(url, TOKEN)
    with Journal(target) as journal:
        db = journal._db  # the bench builds a big store fast, as no user path would
        key = target.key
        rows = []
        for i in range(stored):
            ticket = str(uuid.uuid4())
            rows.append((key, f"row\x1f/old/sheet{i // 5000}.csv\x1f{i:032x}:0", f"/old/sheet{i // 5000}.csv",
                         f"{i:032x}:0", i % 5000 + 2, json.dumps({"description": f"Old ticket {i}"}), ticket, i + 1))
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT INTO creates (target, key, scope, content, row_number, state, payload, ticket_id, "
                           "ticket_number, sent_at, settled_at, run) VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?, 1, 1, 'old')",
                           rows)
            db.executemany("INSERT INTO tickets (target, ticket_id, cells, at) VALUES (?, ?, ?, 1)",
                           [(key, r[6], r[5]) for r in rows])


def measure(what: str, home: str, url: str, rows: int) -> None:
    """In a process of its own: push ``rows`` creates, or plan a 3-row sheet."""
    os.environ["BULKSYNC_HOME"] = home
    import bulksync

    sheet = Path(tempfile.mkdtemp(prefix="bulksync-bench-")) / "t.csv"
    sheet.write_text("description\n" + "".join(f"New ticket {i}\n" for i in range(rows)), encoding="utf-8")
    start = time.perf_counter()
    if what == "push":
        result = bulksync.push(sheet, token=TOKEN, api_url=url, form_id=FORM, channel=CHANNEL, concurrency=8)
        assert result.counts["created"] == rows, result.summary()
    else:
        bulksync.plan(sheet, token=TOKEN, api_url=url, form_id=FORM, channel=CHANNEL)
    took = time.perf_counter() - start
    print(json.dumps({"seconds": took, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(what: str, home: Path, url: str, rows: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--measure", what, str(home), url, str(rows)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        measure(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    stored, creates = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) == 3 else (200_000, 3_000)
    from bulksync.sandbox import Sandbox

    with Sandbox(token=TOKEN) as sb:
        empty, full = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
        start = time.perf_counter()
        fill(full, sb.url, stored)
        print(f"store of {stored:,} tickets built in {time.perf_counter() - start:.0f} s")
        for what, rows in (("plan", 3), ("push", creates)):
            a, b = run(what, empty, sb.url, rows), run(what, full, sb.url, rows)
            print(f"{what} of {rows:,} rows: empty store {a['seconds']:.2f} s, {a['peak_mb']:.0f} MB; "
                  f"{stored:,} stored {b['seconds']:.2f} s, {b['peak_mb']:.0f} MB "
                  f"({b['seconds'] / a['seconds']:.2f}x time, {b['peak_mb'] / a['peak_mb']:.2f}x memory)")


if __name__ == "__main__":
    main()
