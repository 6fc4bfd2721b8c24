"""A sheet open in Excel or LibreOffice is not written behind its back (issue 23, point 3).

While the lock file an application keeps beside an open document stands there, push, pull,
reset and delete stop before sending (exit 2), the file byte for byte as it was;
--ignore-lock-file goes past one a crash left. plan and validate only read: they go on,
plan with a note. What a lock file says of its owner is outside text, read defensively.
The lock files are made here as the applications write them; tests/office meets a real
LibreOffice (make test-office).
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import openpyxl
import pytest

import bulksync
from bulksync.errors import SheetBusy, SheetOpen
from bulksync.lock import open_in
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli, write

NAME = "tickets-march"  # a stem of 8 characters or more: Word's rule would cut its owner file's name
ROWS = [("Printer jams", "High"), ("VPN drops", "Medium"), ("Wrong VAT", "Low")]
LIBREOFFICE = ",alice,laptop,05.06.2024 14:03,file:///home/alice/.config/libreoffice/4;"
COMMANDS = {
    "push": ["--form-id", FORM, "--channel", CHANNEL],
    "pull": [],
    "delete": ["--yes"],
    "reset": ["--yes"],
}


def _env(sb: Sandbox) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}


def _sheet(folder: Path, suffix: str) -> Path:
    path = folder / f"{NAME}{suffix}"
    if suffix == ".csv":
        return write(path, "description,priority\n" + "".join(f"{d},{p}\n" for d, p in ROWS))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["description", "priority"])
    for row in ROWS:
        sheet.append(list(row))
    book.save(path)
    return path


def excel_owner_file(user: str, *, word: bool = False) -> bytes:
    """An Office owner file as Excel (165 bytes) or Word (162) writes it: the name's length,
    the name in the code page, padding, at 55 (Word: 54) the length as two bytes, then the
    name in UTF-16-LE, padding."""
    name = user[:52]
    data = bytearray([len(name)]) + name.encode("cp1252", "replace")
    data += (b"\0" if word else b" ") * ((54 if word else 55) - len(data))
    data += bytes([len(name), 0]) + name.encode("utf-16-le")
    size = 162 if word else 165
    data += (b"\0" * (size - len(data))) if word else (b" \0" * size)[:size - len(data)]
    return bytes(data)


def _lock(sheet: Path, kind: str) -> Path:
    """Stand ``kind``'s lock file beside ``sheet``, as the application does when it opens it."""
    if kind == "libreoffice":
        lock = sheet.parent / f".~lock.{sheet.name}#"
        lock.write_text(LIBREOFFICE, encoding="utf-8")
    else:
        lock = sheet.parent / ("~$" + (sheet.name[2:] if kind == "owner-file-cut" else sheet.name))
        lock.write_bytes(excel_owner_file("Bob Smith"))
    return lock


SAID = {"libreoffice": ("LibreOffice", "by alice on laptop since 2024-06-05 14:03"),
        "owner-file": ("Excel", "by Bob Smith since "),
        "owner-file-cut": ("Excel", "by Bob Smith since ")}


@pytest.fixture
def pushed(tmp_path: Path, sandbox: Sandbox, request: pytest.FixtureRequest) -> Path:
    """A pushed sheet: each command has work to do in it (push: a new row)."""
    suffix = getattr(request, "param", ".xlsx")
    path = _sheet(tmp_path, suffix)
    assert bulksync.push(path, token=TOKEN, api_url=sandbox.url, form_id=FORM, channel=CHANNEL).ok
    if suffix == ".csv":
        text = path.read_text(encoding="utf-8")
        path.write_text(text + "Broken chair,Low" + "," * (text.split("\n")[0].count(",") - 1) + "\n",
                        encoding="utf-8")
    else:
        book = openpyxl.load_workbook(path)
        assert book.active is not None
        book.active.append(["Broken chair", "Low"])
        book.save(path)
    return path


def _refused(path: Path, kind: str, command: str, sandbox: Sandbox) -> str:
    """Run ``command`` on ``path`` with ``kind``'s lock file beside it: it is refused with
    exit 2, nothing sent, the file byte for byte as it was. Its message."""
    lock = _lock(path, kind)
    before, sent = path.read_bytes(), len(sandbox.requests())
    done = run_cli(command, str(path), *COMMANDS[command], env=_env(sandbox))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert path.read_bytes() == before
    assert len(sandbox.requests()) == sent
    application, who = SAID[kind]
    message = done.stderr
    assert f"{path} is open in {application} (lock file {lock} {who}" in message, message
    assert "save and close it, then run again" in message
    assert f"If no {application} has it open (the lock file was left by a crash), delete {lock} or " \
           "give --ignore-lock-file" in message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("kind", ["libreoffice", "owner-file", "owner-file-cut"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_workbook_open_elsewhere_is_refused_before_sending(pushed: Path, sandbox: Sandbox, kind: str,
                                                            command: str) -> None:
    _refused(pushed, kind, command, sandbox)


@pytest.mark.parametrize("pushed", [".csv"], indirect=True)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_csv_open_in_libreoffice_is_refused_too(pushed: Path, sandbox: Sandbox, command: str) -> None:
    _refused(pushed, "libreoffice", command, sandbox)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_ignore_lock_file_goes_past_a_lock_file_a_crash_left(pushed: Path, sandbox: Sandbox,
                                                             command: str) -> None:
    _lock(pushed, "libreoffice")
    before, sent = pushed.read_bytes(), len(sandbox.requests())
    done = run_cli(command, str(pushed), *COMMANDS[command], "--ignore-lock-file", env=_env(sandbox))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert pushed.read_bytes() != before
    assert len(sandbox.requests()) > sent or command == "reset"
    if command != "reset":  # the lock file still stands: a window may show the file as it was
        assert "that window does not show what was just written; close it without saving" in done.stderr


def test_the_library_raises_sheet_open_naming_who_and_goes_on_when_told(
        pushed: Path, sandbox: Sandbox) -> None:
    lock = _lock(pushed, "libreoffice")
    options = {"token": TOKEN, "api_url": sandbox.url, "form_id": FORM, "channel": CHANNEL}
    before, sent = pushed.read_bytes(), len(sandbox.requests())
    with pytest.raises(SheetOpen) as refused:
        bulksync.push(pushed, **options)
    assert (pushed.read_bytes(), len(sandbox.requests())) == (before, sent)
    e = refused.value
    assert isinstance(e, SheetBusy)  # someone else works on the sheet: a later run goes through
    assert (e.path, e.application, e.lock_file, e.owner, e.since) == (
        pushed, "LibreOffice", lock, "alice on laptop", "2024-06-05 14:03")
    result = bulksync.push(pushed, ignore_lock_file=True, **options)
    assert result.counts["created"] == 1 and len(sandbox.tickets()) == 4
    lock.unlink()
    assert bulksync.push(pushed, **options).counts["unchanged"] == 4


def test_plan_and_validate_only_read_plan_says_the_file_is_open(pushed: Path, sandbox: Sandbox) -> None:
    lock = _lock(pushed, "owner-file")
    done = run_cli("plan", str(pushed), "--form-id", FORM, "--channel", CHANNEL, env=_env(sandbox))
    assert done.returncode == 0, done.stderr
    assert f"note: {pushed} is open in Excel (lock file {lock} by Bob Smith since " in done.stderr
    assert "this plan is of the file as last saved, and push refuses while it is open" in done.stderr
    assert "1 to create" in done.stdout
    as_json = run_cli("plan", str(pushed), "--form-id", FORM, "--channel", CHANNEL, "--json",
                      env=_env(sandbox))
    assert any("is open in Excel" in n for n in json.loads(as_json.stdout)["notes"])
    checked = run_cli("validate", str(pushed), "--form-id", FORM, "--channel", CHANNEL)
    assert checked.returncode == 0, checked.stderr
    lock.unlink()
    again = run_cli("plan", str(pushed), "--form-id", FORM, "--channel", CHANNEL, env=_env(sandbox))
    assert "is open in" not in again.stderr


# -- which lock file names a sheet ------------------------------------------------------------

@pytest.mark.parametrize(("name", "owner_files"), [
    ("t.xlsx", ["~$t.xlsx"]),
    ("report.xlsx", ["~$report.xlsx"]),               # a 6-character stem: never cut
    ("tickets.xlsx", ["~$tickets.xlsx", "~$ickets.xlsx"]),  # 7: Word cuts one
    ("tickets-march.xlsx", ["~$tickets-march.xlsx", "~$ckets-march.xlsx"]),  # 8 or more: two
])
def test_the_owner_file_names_looked_for(tmp_path: Path, name: str, owner_files: list[str]) -> None:
    sheet = write(tmp_path / name, "description\nx\n")
    assert open_in(sheet) is None
    for owner_file in owner_files:
        (tmp_path / owner_file).write_bytes(excel_owner_file("Bob"))
        found = open_in(sheet)
        assert found is not None and (found.application, found.lock_file.name) == ("Excel", owner_file)
        (tmp_path / owner_file).unlink()
    # Nor is another sheet's lock file taken for this one's.
    (tmp_path / f"~$x{name}").write_bytes(excel_owner_file("Bob"))
    (tmp_path / f".~lock.x{name}#").write_text(LIBREOFFICE)
    (tmp_path / f".~lock.{name}").write_text(LIBREOFFICE)
    assert open_in(sheet) is None


def test_a_lock_file_beside_the_file_a_symlink_names_counts(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    real = write(tmp_path / "data" / "t.csv", "description\nx\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    (real.parent / ".~lock.t.csv#").write_text(LIBREOFFICE)
    found = open_in(link)
    assert found is not None and found.lock_file == real.parent / ".~lock.t.csv#"


def test_no_lock_file_for_a_sheet_that_does_not_exist_yet(tmp_path: Path) -> None:
    (tmp_path / ".~lock.new.xlsx#").write_text(LIBREOFFICE)
    assert open_in(tmp_path / "new.xlsx") is None


# -- what a lock file says of its owner -------------------------------------------------------

@pytest.mark.parametrize(("text", "owner", "since"), [
    (LIBREOFFICE, "alice on laptop", "2024-06-05 14:03"),
    ("Alice Martin,alice,laptop,05.06.2024 14:03,file:///x;", "Alice Martin on laptop", "2024-06-05 14:03"),
    (r"Martin\, Alice,alice,lap\;top,05.06.2024 14:03,file:///x;", "Martin, Alice on lap;top",
     "2024-06-05 14:03"),
    (",alice,,yesterday,;", "alice", "yesterday"),
    (",al\x1b[31mice\x07,host\r\nname,05.06.2024 14:03\x00,;", "al [31mice on host name", "2024-06-05 14:03"),
    (b",al\xffice,laptop,05.06.2024 14:03,;", "", None),  # not UTF-8: says nothing but when it was made
])
def test_libreoffice_lock_files_are_read(tmp_path: Path, text: str | bytes, owner: str,
                                        since: str | None) -> None:
    sheet = write(tmp_path / "t.xlsx", "")
    lock = tmp_path / ".~lock.t.xlsx#"
    lock.write_bytes(text if isinstance(text, bytes) else text.encode())
    found = open_in(sheet)
    assert found is not None
    assert (found.application, found.owner) == ("LibreOffice", owner)
    if since is None:  # the lock file's own time
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", found.since)
    else:
        assert found.since == since


@pytest.mark.parametrize(("data", "owner"), [
    (excel_owner_file("Bob Smith"), "Bob Smith"),
    (excel_owner_file("Bob Smith", word=True), "Bob Smith"),
    (excel_owner_file("Zoë Ångström-Łukasiewicz"), "Zoë Ångström-Łukasiewicz"),  # UTF-16 beats cp1252
    (excel_owner_file("x" * 32), "x" * 32),  # its length is the padding byte: Excel's place is found
    (excel_owner_file("x" * 60), "x" * 52),
    (bytes([5]) + b"admin" + b" " * 20, "admin"),  # no UTF-16 copy: the code page's
    (bytes([3]) + b"a\x1bb", "a b"),
    (bytes([9]) + b"Bob Smith" + b" " * 45 + bytes([9, 0]) + "Bob\x1b[2JSm".encode("utf-16-le"), "Bob [2JSm"),
    (bytes([4]) + b"Bob\x81" + b" " * 50 + bytes([4, 0]) + b"\x00\xd8a\x00b\x00c\x00", ""),  # neither reads
])
def test_owner_files_are_read(tmp_path: Path, data: bytes, owner: str) -> None:
    sheet = write(tmp_path / "t.xlsx", "")
    (tmp_path / "~$t.xlsx").write_bytes(data)
    found = open_in(sheet)
    assert found is not None and (found.application, found.owner) == ("Excel", owner)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", found.since)


def test_garbage_lock_files_never_crash_and_never_show_control_characters(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.xlsx", "")
    rng = random.Random(23)
    seen = 0
    for size in [0, 1, 2, 53, 54, 55, 56, 57, 161, 162, 165, 300, 5000, *(rng.randrange(400) for _ in range(200))]:
        data = bytes(rng.randrange(256) for _ in range(size))
        for lock in (tmp_path / "~$t.xlsx", tmp_path / ".~lock.t.xlsx#"):
            lock.write_bytes(data)
            found = open_in(sheet)
            assert found is not None and found.lock_file == lock
            shown = found.describe()
            assert not any(c < " " or "\x7f" <= c <= "\x9f" for c in shown), repr(shown)
            assert len(shown) - len(str(lock)) < 150
            seen += bool(found.owner)
            lock.unlink()
    assert seen  # some garbage reads as a name: the check that it is cleaned can fail


def test_a_lock_file_that_is_not_a_regular_file_still_counts_and_is_never_opened(tmp_path: Path) -> None:
    sheet = write(tmp_path / "t.xlsx", "")
    os.mkfifo(tmp_path / ".~lock.t.xlsx#")  # opening it to read would wait for a writer forever
    found = open_in(sheet)
    assert found is not None and (found.application, found.owner) == ("LibreOffice", "")
    (tmp_path / ".~lock.t.xlsx#").unlink()
    (tmp_path / "~$t.xlsx").mkdir()
    found = open_in(sheet)
    assert found is not None and (found.application, found.owner, found.since) == ("Excel", "", found.since)
    (tmp_path / "~$t.xlsx").rmdir()
    (tmp_path / "~$t.xlsx").symlink_to(tmp_path / "nowhere")  # a dangling link: still there
    assert open_in(sheet) is not None


def test_the_message_without_an_owner(tmp_path: Path) -> None:
    e = SheetOpen(tmp_path / "t.csv", application="LibreOffice", lock_file=tmp_path / ".~lock.t.csv#")
    assert str(e).startswith(f"{tmp_path / 't.csv'} is open in LibreOffice (lock file "
                             f"{tmp_path / '.~lock.t.csv#'}); save and close it")
