"""A real LibreOffice Calc does to pushed sheets what users do: holds them open, sorts them,
re-saves them, saves from a window opened before the push (STYLE.md, habit 22).

``make test-office`` runs these (installing LibreOffice first when it is missing); ``make
test`` leaves them out. LibreOffice is driven through UNO by tests/office/driver.py, run by a
Python that has LibreOffice's bridge (BULKSYNC_OFFICE_PYTHON, default /usr/bin/python3),
one headless soffice for the module. Without LibreOffice every test errors: never a skip.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.table import Table

from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FIELD, FORM, TOKEN, run_cli, write

DRIVER = Path(__file__).with_name("driver.py")
PYTHON = os.environ.get("BULKSYNC_OFFICE_PYTHON", "/usr/bin/python3")
OTHER = "d3c9f1a2-7b64-4e08-9a5d-2c6e8b1f3a70"
HEADER = ["description", "priority", "assignee", "tags"]
ROWS = [["Printer jams", "High", "U05KQ2M8Z1A", "hardware"],
        ["VPN drops", "Medium", "U02R4T6Y8U0", "network"],
        ["Wrong VAT", "Low", "U05KQ2M8Z1A", "billing"],
        ["Broken chair", "Low", "U02R4T6Y8U0", "facilities"]]
SECONDS = 120


class Office:
    """One headless soffice (driver.py serve) and the operations the tests ask of it."""

    def __init__(self, pipe: str) -> None:
        self.pipe = pipe

    def run(self, *args: str) -> str:
        done = subprocess.run([PYTHON, str(DRIVER), "--pipe", self.pipe, *args], capture_output=True,
                              text=True, timeout=SECONDS)
        assert done.returncode == 0, f"driver {args}: {done.stderr}"
        return done.stdout

    def sort(self, path: Path, *how: str, by: str) -> str:
        return self.run("sort", str(path), "--by", by, *how)

    def resave(self, path: Path) -> None:
        self.run("resave", str(path))

    @contextmanager
    def hold(self, path: Path) -> Iterator[Held]:
        """``path`` open in LibreOffice until the block ends (or the test saves and closes it)."""
        process = subprocess.Popen([PYTHON, str(DRIVER), "--pipe", self.pipe, "hold", str(path)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        held = Held(process)
        try:
            assert held.answer() == "open"
            yield held
        finally:
            if process.poll() is None:
                held.close()


class Held:
    """A document LibreOffice holds open, told what to do line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def answer(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def say(self, line: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.answer()

    def set(self, cell: str, text: str) -> None:
        assert self.say(f"set {cell} {text}") == "ok"

    def save(self) -> None:
        assert self.say("save") == "saved"

    def close(self) -> None:
        assert self.say("close") == "closed"
        assert self.process.wait(timeout=SECONDS) == 0


@pytest.fixture(scope="module")
def office() -> Iterator[Office]:
    missing = []
    if shutil.which("soffice") is None:
        missing.append("soffice is not on PATH")
    bridge = subprocess.run([PYTHON, "-c", "import uno"], capture_output=True, text=True)
    if bridge.returncode != 0:
        missing.append(f"{PYTHON} cannot import uno ({bridge.stderr.strip().splitlines()[-1:]})")
    if missing:
        pytest.fail("LibreOffice is needed for tests/office: " + "; ".join(missing) + ". `make "
                    "test-office` installs it (apt-get install libreoffice-calc-nogui python3-uno)",
                    pytrace=False)
    pipe = f"bulksync-test-{uuid.uuid4().hex[:12]}"
    serve = subprocess.Popen([PYTHON, str(DRIVER), "--pipe", pipe, "serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert serve.stdout is not None and serve.stdin is not None
    ready = serve.stdout.readline().strip()
    if ready != "ready":
        serve.kill()
        pytest.fail(f"soffice did not start: {serve.communicate()[1]}", pytrace=False)
    try:
        yield Office(pipe)
    finally:
        serve.stdin.close()
        serve.wait(timeout=SECONDS)


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def _workbook(path: Path, *, table: bool = False, autofilter: bool = False) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [HEADER, *ROWS]:
        sheet.append(row)
    if table:
        sheet.add_table(Table(displayName="Tickets", ref="A1:D5"))
    if autofilter:
        sheet.auto_filter.ref = "A1:D5"
    book.save(path)
    return path


def _push(path: Path, sb: Sandbox, *more: str) -> subprocess.CompletedProcess[str]:
    return run_cli("push", str(path), "--form-id", FORM, "--channel", CHANNEL, *more, env=_env(sb))


def _pushed(path: Path, sb: Sandbox) -> None:
    done = _push(path, sb)
    assert done.returncode == 0, done.stderr
    assert len(sb.tickets()) == len(ROWS)


def _plan(path: Path, sb: Sandbox) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    done = run_cli("plan", str(path), "--json", env=_env(sb))
    return done, json.loads(done.stdout) if done.stdout.strip() else {}


def _records(path: Path) -> list[dict[str, str]]:
    """The sheet's rows by header, as text."""
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def _each_id_beside_its_ticket(path: Path, sb: Sandbox) -> None:
    descriptions = {t["id"]: t["description"] for t in sb.tickets()}
    records = _records(path)
    assert len(records) == len(ROWS)
    assert {r["description"]: descriptions.get(r["ticketId"]) for r in records} == {
        r["description"]: r["description"] for r in records}


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


# -- a. open in LibreOffice --------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_a_sheet_open_in_libreoffice_is_not_pushed(office: Office, sandbox: Sandbox, tmp_path: Path,
                                                   suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        write(path, ",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in ROWS))
    else:
        _workbook(path)
    before = path.read_bytes()
    with office.hold(path):
        assert (tmp_path / f".~lock.t{suffix}#").exists()
        done = _push(path, sandbox)
        assert done.returncode == 2, _output(done)
        assert f"{path} is open in LibreOffice (lock file {tmp_path / f'.~lock.t{suffix}#'} by " \
               f"{getpass.getuser()} on " in done.stderr
        assert "save and close it, then run again" in done.stderr
        assert path.read_bytes() == before
        assert sandbox.requests() == []
    assert not (tmp_path / f".~lock.t{suffix}#").exists()
    _pushed(path, sandbox)


# -- b, c. sorting a table or an autofilter's range ---------------------------------------------

@pytest.mark.parametrize(("made", "how"), [({"table": True}, ("--table",)),
                                           ({"autofilter": True}, ("--autofilter",))],
                         ids=["table", "autofilter"])
def test_sorting_a_table_or_autofilter_keeps_each_id_beside_its_ticket(
        office: Office, sandbox: Sandbox, tmp_path: Path, made: dict[str, bool], how: tuple[str, ...]) -> None:
    path = _workbook(tmp_path / "t.xlsx", **made)
    _pushed(path, sandbox)
    sorted_ = office.sort(path, *how, by="A")
    assert [r["description"] for r in _records(path)] == sorted(r[0] for r in ROWS), sorted_
    _each_id_beside_its_ticket(path, sandbox)  # the sort took bulksync's columns along
    done, plan = _plan(path, sandbox)
    assert done.returncode == 0, _output(done)
    assert (plan["create"], plan["update"], plan["requests"]) == (0, 0, 0), (sorted_, plan)


# -- d. sorting only the user's columns --------------------------------------------------------

def test_sorting_only_the_users_columns_is_refused_naming_the_rows(office: Office, sandbox: Sandbox,
                                                                   tmp_path: Path) -> None:
    path = _workbook(tmp_path / "t.xlsx")
    _pushed(path, sandbox)
    ids = {r["description"]: r["ticketId"] for r in _records(path)}
    office.sort(path, "--range", "A1:D5", by="A")
    moved = [row for row, r in enumerate(_records(path), start=2) if ids[r["description"]] != r["ticketId"]]
    assert moved == [2, 3, 4, 5]  # every row's cells stand beside another ticket's ID now
    sent = len(sandbox.requests())
    planned = run_cli("plan", str(path), env=_env(sandbox))
    assert planned.returncode != 0 and "holds ticket" in _output(planned), _output(planned)
    done = _push(path, sandbox)
    assert done.returncode != 0 and "holds ticket" in _output(done), _output(done)
    for row in moved:
        assert f"row {row}" in _output(done) or f"rows {row}" in _output(done), _output(done)
    assert len(sandbox.requests()) == sent


# -- e, f. opened and saved with no edit -------------------------------------------------------

def test_a_workbook_re_saved_by_libreoffice_sends_nothing(office: Office, sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    path = _workbook(tmp_path / "t.xlsx")
    _pushed(path, sandbox)
    before = path.read_bytes()
    office.resave(path)
    assert path.read_bytes() != before  # LibreOffice wrote its own package
    done, plan = _plan(path, sandbox)
    assert done.returncode == 0, _output(done)
    assert (plan["create"], plan["update"], plan["requests"]) == (0, 0, 0), plan
    sent = len(sandbox.requests())
    pushed = _push(path, sandbox)
    assert pushed.returncode == 0, _output(pushed)
    assert len(sandbox.requests()) == sent


def test_a_csv_re_saved_by_libreoffice_does_not_send_the_values_it_reformatted(
        office: Office, sandbox: Sandbox, tmp_path: Path) -> None:
    big, code = f"customField_{FIELD}", f"customField_{OTHER}"
    path = write(tmp_path / "t.csv", f"description,priority,{big},{code}\n"
                 "Printer jams,High,1234567890123456789,Gold\n"
                 "VPN drops,Medium,IT,00123\n"
                 "Wrong VAT,Low,Billing,Silver\n")
    done = _push(path, sandbox)
    assert done.returncode == 0, _output(done)
    office.resave(path)
    # What LibreOffice's default import and export make of them (LibreOffice 7.4).
    assert [(r[big], r[code]) for r in _records(path)] == [
        ("1.23456789012346E+018", "Gold"), ("IT", "123"), ("Billing", "Silver")], path.read_text()
    sent = len(sandbox.requests())
    pushed = _push(path, sandbox)
    out = _output(pushed)
    assert pushed.returncode != 0, out
    assert [r for r in sandbox.requests()[sent:] if r["method"] == "PATCH"] == []
    assert big in out and code in out and "row 2" in out and "row 3" in out, out


# -- g. a save from a window opened before the push --------------------------------------------

def test_a_stale_save_is_not_created_again_and_unedited_rows_get_their_ids_back(
        office: Office, sandbox: Sandbox, tmp_path: Path) -> None:
    path = _workbook(tmp_path / "t.xlsx")
    with office.hold(path) as window:
        done = _push(path, sandbox, "--ignore-lock-file")
        assert done.returncode == 0, _output(done)
        assert "that window does not show what was just written" in done.stderr
        ids = [r["ticketId"] for r in _records(path)]
        assert all(ids) and len(sandbox.tickets()) == 4
        window.set("B3", "CRITICAL")  # row 3, VPN drops: Medium -> CRITICAL
        window.save()  # the window's copy, without bulksync's columns
        window.close()
    assert "ticketId" not in _records(path)[0]
    sent = len(sandbox.requests())
    again = _push(path, sandbox)
    out = _output(again)
    assert again.returncode != 0, out
    assert len(sandbox.tickets()) == 4 and not any(
        r["method"] == "POST" for r in sandbox.requests()[sent:]), out
    number = next(t["ticketNumber"] for t in sandbox.tickets() if t["id"] == ids[1])
    assert "row 3" in out and (ids[1] in out or f"#{number}" in out or f"ticket {number}" in out), out
    after = _records(path)
    assert [after[i].get("ticketId") for i in (0, 2, 3)] == [ids[0], ids[2], ids[3]]
