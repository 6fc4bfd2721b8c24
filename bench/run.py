"""Every performance figure of issue 8, each a ratio measured side by side in this one run.

    .venv/bin/python bench/run.py            # or: make bench
    .venv/bin/python bench/run.py --quick    # smaller sizes, for a smoke run

Prints a Markdown table to paste into bench/RESULTS.md. Processes are timed
process to process (wall clock, peak RSS from wait4), the way a user meets them.
These shared machines are noisy, so every figure is the best of REPEATS runs
of each side, the sides interleaved (A B A B ...), and the ratio is taken
between the two bests. bulksync is byte-compiled first, as pip does when it
installs a package (this environment sets PYTHONDONTWRITEBYTECODE, and the
project is installed in editable mode).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
FORM = "6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84"
CHANNEL = "C076K6Y74L1"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SUPTASK_")}
REPEATS = 3


def best_of(*commands: list[str], repeats: int = REPEATS) -> list[tuple[float, float]]:
    """(best seconds, peak RSS MB) of each command over ``repeats`` interleaved runs."""
    best = [(float("inf"), 0.0)] * len(commands)
    for _ in range(repeats):
        for i, args in enumerate(commands):
            seconds, mb = timed(args)
            best[i] = (min(best[i][0], seconds), max(best[i][1], mb))
    return best


def timed(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env or ENV, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{args} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def csv_sheet(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("description,priority,status,assignee,tags,customField_0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95,notes\n")
        for i in range(rows):
            f.write(f'Ticket {i}: printer on floor {i % 9} jams,High,Open,U05KQ2M8Z1A,"hardware,printer",IT,note {i}\n')


def start_sandbox(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([PY, "-m", "bulksync", "sandbox", "--token", "bench", *args],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[-1]


def throughput(tmp: Path, rows: int) -> list[str]:
    """1. Rows per second while sending, against the 16 / 0.05 s bound; raw httpx beside it."""
    import httpx

    import bulksync

    proc, url = start_sandbox("--latency-ms", "50")
    out = []
    try:
        def push(concurrency: int, n: int) -> float:
            work = Path(tempfile.mkdtemp(dir=tmp))
            csv_sheet(work / "t.csv", n)
            marks: list[float] = []
            # The same rows every time: each sheet creates them anew (not matched to the last).
            bulksync.push(work / "t.csv", token="bench", api_url=url, form_id=FORM, channel=CHANNEL,
                          concurrency=concurrency, allow_duplicates=True,
                          on_progress=lambda d, t, note: marks.append(time.perf_counter()))
            return n / (marks[-1] - marks[0])

        async def raw(n: int) -> float:
            body = {"description": "x", "requesterChannel": CHANNEL, "formId": FORM}
            async with httpx.AsyncClient(headers={"Authorization": "Api-Token bench"},
                                         limits=httpx.Limits(max_connections=16)) as client:
                todo = iter(range(n))

                async def worker() -> None:
                    for _ in todo:
                        await client.post(url + "/ticket", json=body)

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(16)))
                return n / (time.perf_counter() - started)

        one = push(1, 40)
        sixteen = bare = 0.0
        for _ in range(REPEATS):
            sixteen = max(sixteen, push(16, rows))
            bare = max(bare, asyncio.run(raw(rows)))
        thirty_two = push(32, rows)
        bound = 16 / 0.05
        out.append(f"| 1. throughput, `--concurrency 16`, {rows} creates, 50 ms latency | "
                   f"{sixteen:.0f} rows/s = **{sixteen / bound:.2f}** of the bound 320/s; "
                   f"{sixteen / one:.1f}x one at a time ({one:.1f} rows/s); raw httpx, 16 workers, same run: "
                   f"{bare:.0f}/s ({bare / bound:.2f}); bulksync/raw = {sixteen / bare:.2f}; "
                   f"`--concurrency 32`: {thirty_two:.0f} rows/s | >= 0.85 |")
    finally:
        proc.terminate()
    return out


def pacing(tmp: Path) -> list[str]:
    """2. 120 creates under a 30/3 s fixed window: span against the ideal, and 429s."""
    import httpx

    import bulksync

    proc, url = start_sandbox("--rate-limit", "30/3")
    try:
        work = tmp / "pacing"
        work.mkdir()
        csv_sheet(work / "t.csv", 120)
        marks: list[float] = []
        bulksync.push(work / "t.csv", token="bench", api_url=url, form_id=FORM, channel=CHANNEL,
                      concurrency=4, on_progress=lambda d, t, n: marks.append(time.perf_counter()))
        log = httpx.get(url.split("/api/")[0] + "/_sandbox/requests").json()
    finally:
        proc.terminate()
    span = marks[-1] - marks[0]
    ideal = (120 / 30 - 1) * 3  # three full windows must pass before the fourth opens
    too_many = sum(1 for r in log if r["status"] == 429)
    return [f"| 2. pacing, 120 creates, `--rate-limit 30/3` | {span:.1f} s = **{span / ideal:.2f}x** the "
            f"ideal {ideal:.0f} s; **{too_many}** answers of 429 | <= 1.25x, <= 2 |"]


def preflight(tmp: Path, rows: int, label: str, targets: str, repeats: int = REPEATS) -> list[str]:
    """3 and 6. `bulksync plan` against a bare pandas.read_csv of the same file."""
    work = tmp / f"plan-{rows}"
    work.mkdir()
    sheet = work / "t.csv"
    csv_sheet(sheet, rows)
    (work / "bulksync.toml").write_text(f'form_id = "{FORM}"\nchannel = "{CHANNEL}"\n')
    (bare, bare_mb), (plan, plan_mb), (printed, printed_mb) = best_of(
        [PY, "-c", "import pandas as pd, sys; pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)",
         str(sheet)],
        [PY, "-m", "bulksync", "plan", str(sheet), "--limit", "0"],
        [PY, "-m", "bulksync", "plan", str(sheet), "--json"], repeats=repeats)
    return [f"| {label}, {rows:,} rows | plan {plan:.2f} s, peak {plan_mb:.0f} MB; bare read_csv "
            f"{bare:.2f} s, {bare_mb:.0f} MB: **{plan / bare:.2f}x**; `plan --json` (every operation "
            f"printed) {printed:.2f} s, {printed_mb:.0f} MB: **{printed / bare:.2f}x** | {targets} |"]


def xlsx_close(tmp: Path, rows: int, repeats: int = REPEATS) -> list[str]:
    """4. Bulk close of a workbook: bulksync's cost beyond the requests vs openpyxl load + save."""
    from openpyxl import Workbook

    work = tmp / f"xlsx-{rows}"
    work.mkdir()
    book = work / "close.xlsx"
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Tickets")
    ws.append(["ticketId", "reason"])
    for i in range(rows):
        ws.append([f"00000000-0000-4000-8000-{i:012d}", f"duplicate of {i}"])
    pristine = work / "pristine.xlsx"
    wb.save(pristine)

    def fresh() -> None:  # every run closes the same untouched workbook, with no state yet
        shutil.copyfile(pristine, book)
        shutil.rmtree(os.environ["BULKSYNC_HOME"], ignore_errors=True)

    # The requests themselves are taken out by a transport that answers at once (in process).
    # The script ends as the console script does (bulksync.cli.run): output flushed, then
    # os._exit, without freeing the heap object by object.
    # The GC is tuned as the console script tunes it for a push (bulksync.cli._tune_gc): the
    # library itself leaves the collector alone (issue 15).
    script = f"""
import httpx, bulksync, os
import bulksync.cli as cli
cli._CONSOLE = True
cli._tune_gc(long_run=True)
t = httpx.MockTransport(lambda r: httpx.Response(200))
bulksync.push({str(book)!r}, token="x", api_url="https://api.example.com", set={{"status": "Closed"}},
              transport=t, concurrency=16)
os._exit(0)
"""
    # The requests on their own are timed in a fresh process too, interleaved with the
    # two sides, so that all three meet the machine in the same state.
    requests_alone = (f"import asyncio, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                      f"from run import _mock_requests; print(asyncio.run(_mock_requests({rows})))")
    # What no work of bulksync's own can go below: importing what a push needs.
    imports_alone = ("import os, httpx, pandas, pandera.pandas, python_calamine, lxml.etree, bulksync.sync; "
                     "os._exit(0)")
    ours, ours_mb, base, base_mb, requests = (float("inf"), 0.0, float("inf"), 0.0, float("inf"))
    imports = float("inf")
    for _ in range(repeats):
        fresh()
        seconds, mb = timed([PY, "-c", script])
        ours, ours_mb = min(ours, seconds), max(ours_mb, mb)
        out = subprocess.run([PY, "-c", requests_alone], env=ENV, capture_output=True, text=True,
                             check=True).stdout
        requests = min(requests, float(out))
        seconds, mb = timed([PY, "-c", f"import openpyxl; wb = openpyxl.load_workbook({str(pristine)!r}); "
                                       f"wb.save({str(work / 'copy.xlsx')!r})"])
        base, base_mb = min(base, seconds), max(base_mb, mb)
        imports = min(imports, timed([PY, "-c", imports_alone])[0])
    beyond = ours - requests
    return [f"| 4. XLSX bulk close, {rows:,} rows | bulksync {ours:.2f} s in all, of which the "
            f"{rows:,} PATCHes through bulksync's client on their own (same run) {requests:.2f} s: "
            f"beyond the requests {beyond:.2f} s, peak {ours_mb:.0f} MB; openpyxl load+save "
            f"{base:.2f} s, {base_mb:.0f} MB: **{beyond / base:.2f}x** (the imports alone: {imports:.2f} s, "
            f"{imports / base:.2f}x) | <= 0.75x, < 600 MB |"]


async def _mock_requests(n: int) -> float:
    """The requests themselves: n PATCHes, 16 at a time, through bulksync's own client (the
    transport bulksync sends through) to an in-process answer. Nothing else: no plan, runner
    bookkeeping or journal, which count as bulksync's cost beyond the requests."""
    import httpx

    from bulksync.api import SuptaskClient

    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    async with SuptaskClient(token="x", base_url="https://api.example.com", transport=transport) as client:
        todo = iter(range(n))

        async def worker() -> None:
            for i in todo:
                await client.request("PATCH", f"/ticket/00000000-0000-4000-8000-{i:012d}",
                                     {"status": "Closed"})

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(16)))
        return time.perf_counter() - started


def startup() -> list[str]:
    """5. `bulksync --help`, best of five."""
    best = min(timed([PY, "-m", "bulksync", "--help"])[0] for _ in range(5))
    bare = min(timed([PY, "-c", "pass"])[0] for _ in range(5))
    return [f"| 5. `bulksync --help` (best of 5) | **{best:.3f} s** (a bare `python -c pass`: {bare:.3f} s) "
            "| < 0.35 s |"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    q = args.quick
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d')}; command: {' '.join(['bench/run.py', *sys.argv[1:]])}\n")
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "bulksync"), quiet=1)
    print("| figure | measured | target |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        # bulksync's state for the bench's runs stays in the bench's folder.
        os.environ["BULKSYNC_HOME"] = ENV["BULKSYNC_HOME"] = str(tmp / "state")
        for lines in (throughput(tmp, 200 if q else 500), pacing(tmp),
                      preflight(tmp, 10_000 if q else 100_000, "3. preflight", "<= 3x"),
                      xlsx_close(tmp, 2_000 if q else 20_000, repeats=5),
                      [] if q else xlsx_close(tmp, 100_000),
                      startup(),
                      [] if q else preflight(tmp, 1_000_000, "6. scale", "< 60 s, < 2 GB", repeats=1)):
            for line in lines:
                print(line, flush=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
