"""Creates under a small rate-limit window (issue 25): how many answers are 429, and the time
against the windows' bound. Run: .venv/bin/python bench/rate_window.py [ROWS LIMIT SPAN CONCURRENCY]
(default: 30 creates under 3 requests per 5 s at --concurrency 8)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    os.environ["BULKSYNC_HOME"] = tempfile.mkdtemp(prefix="bulksync-bench-")
    import bulksync
    from bulksync.sandbox import Sandbox

    rows, limit, span, concurrency = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                                      int(sys.argv[4])) if len(sys.argv) == 5 else (30, 3, 5.0, 8)
    sheet = Path(tempfile.mkdtemp(prefix="bulksync-bench-")) / "t.csv"
    sheet.write_text("description\n" + "".join(f"Ticket {i}\n" for i in range(rows)), encoding="utf-8")
    with Sandbox(token="t", rate_limit=(limit, span)) as sb:
        start = time.monotonic()
        result = bulksync.push(sheet, token="t", api_url=sb.url, form_id="6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84",
                               channel="C076K6Y74L1", concurrency=concurrency)
        took = time.monotonic() - start
        answers = sb.requests()
    bound = (rows - 1) // limit * span
    print(f"{rows} creates under {limit} per {span:g} s at --concurrency {concurrency}: "
          f"{result.counts['created']} created, {result.counts['failed']} failed, {len(answers)} requests, "
          f"{sum(1 for a in answers if a['status'] == 429)} answered 429, {took:.1f} s "
          f"(the windows' bound: {bound:.1f} s, {took / bound:.2f}x)")


if __name__ == "__main__":
    main()
