"""One writer per sheet: an OS lock that the OS releases if the process dies.

``push``, ``delete``, ``pull`` and ``reset`` hold it for the whole run. It is keyed by the
sheet's real path (symlinks and relative names resolved), and lives in bulksync's state
folder, so two names for one file meet at one lock. filelock takes ``flock`` on Unix and
``msvcrt.locking`` on Windows; a kill -9 never leaves a stale lock.

Nor is a sheet written behind a spreadsheet application's back: a window that has the file
open saves its own copy over bulksync's cells. bulksync replaces the file with a rename,
which no lock an application holds on the file itself stops; but Excel and LibreOffice each
keep a lock file beside a document while it is open, and taking the sheet's lock refuses
while one stands there (:class:`~bulksync.errors.SheetOpen`):

- LibreOffice: ``.~lock.NAME#``, one CSV record ``user,system user,host,dd.mm.yyyy hh:mm,
  profile URL;`` (``,``, ``;`` and ``\\`` escaped with ``\\``), also for a CSV it has open;
- Excel: the owner file ``~$NAME`` (Word's rule cuts long names: ``~$`` then the name
  without its first two characters, or its first one for a 7-character stem; both are
  looked for). Its first byte is the user name's length (1 to 52), the name follows in
  the Windows code page, and at offset 54 (Word) or 55 (Excel) the length again as two
  bytes, then the name in UTF-16-LE (the layout LibreOffice reads, svl msodocumentlockfile).

Either file outlives a crash of its application, so a flag goes past it; what the file
says of its owner is outside text: read from a regular file only, 4 KB at most, and
shown without control characters.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bulksync.errors import SheetBusy, SheetOpen, StateError
from bulksync.journal import private_folder, state_home
from bulksync.sheets.read import sheet_identity
from bulksync.untrusted import clean

__all__ = ["OpenIn", "open_in", "sheet_lock"]

LOCK_FILE_READ = 4096
"""Bytes of a lock file read: both formats are a few hundred at most."""
MSO_NAME_MAX = 52
"""The longest user name an Office owner file holds."""
NOTHING_DONE = "nothing was sent and the sheet is unchanged"
"""What a command had done when the sheet's lock could not be taken."""


@contextmanager
def sheet_lock(sheet: Path, *, ignore_lock_file: bool = False) -> Iterator[None]:
    """Hold the sheet's lock, or raise :class:`SheetBusy` at once naming who holds it, and
    :class:`SheetOpen` while Excel's or LibreOffice's lock file stands beside the sheet
    (unless ``ignore_lock_file``: one a crash left)."""
    import filelock

    folder = state_home() / "locks"
    name = hashlib.sha256(sheet_identity(sheet).encode()).hexdigest()[:32]
    path = folder / f"{name}.lock"
    holder = folder / f"{name}.holder"
    try:
        private_folder(folder.parent)
        private_folder(folder)
    except OSError as e:
        raise StateError(folder, f"cannot be created ({e.strerror})", recover=False,
                         outcome=NOTHING_DONE) from None
    lock = filelock.FileLock(path, timeout=0, thread_local=False, fallback_to_soft=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SheetBusy(sheet, _holder(holder)) from None
    except OSError as e:
        raise StateError(path, f"cannot be locked ({e.strerror})", recover=False,
                         outcome=NOTHING_DONE) from None
    try:
        if not ignore_lock_file:  # checked under the lock: no other bulksync run writes meanwhile
            found = open_in(sheet)
            if found is not None:
                raise SheetOpen(sheet, application=found.application, lock_file=found.lock_file,
                                owner=found.owner, since=found.since)
        try:
            holder.write_text(json.dumps({"pid": os.getpid(), "command": _command(),
                                          "since": time.strftime("%H:%M:%S")}))
        except OSError:
            pass  # only the message of a second run would miss it
        yield
    finally:
        lock.release()


def _command() -> str:
    args = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:3]]
    return " ".join(a for a in args if a)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"process {int(info['pid'])}, {str(info['command'])[:80]}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@dataclass(frozen=True)
class OpenIn:
    """A spreadsheet application's lock file beside a sheet: who has the sheet open, as the
    file says (``owner`` and ``since`` are empty when it does not say)."""

    application: str
    """``LibreOffice`` or ``Excel``."""
    lock_file: Path
    owner: str = ""
    since: str = ""

    def describe(self) -> str:
        """``lock file .~lock.t.xlsx# by alice on laptop since 2024-06-05 14:03``."""
        who = (f" by {self.owner}" if self.owner else "") + (f" since {self.since}" if self.since else "")
        return f"lock file {self.lock_file}{who}"


def open_in(sheet: Path | str) -> OpenIn | None:
    """The lock file LibreOffice or Excel keeps beside ``sheet`` while it has it open, if one
    stands there (beside the name given, and beside the file a symlink names). A sheet that
    does not exist yet has none."""
    sheet = Path(sheet)
    if not sheet.exists():
        return None
    folders = dict.fromkeys([(sheet.parent, sheet.name)])
    real = Path(os.path.realpath(sheet))
    folders[(real.parent, real.name)] = None
    for folder, name in folders:
        for candidate, read in ((folder / f".~lock.{name}#", _libreoffice),
                                *((folder / f"~${cut}", _excel) for cut in _owner_names(name))):
            data = _lock_bytes(candidate)
            if data is not None:
                return read(candidate, data)
    return None


def _owner_names(name: str) -> list[str]:
    """What follows ``~$`` in an Office owner file's name: Excel keeps the whole name; Word
    cuts a stem of 8 characters or more by two, and one of 7 by one (the rule LibreOffice
    follows when it writes one, svl msodocumentlockfile)."""
    stem = len(name) - len(Path(name).suffix) if Path(name).suffix else len(name)
    cuts = [name]
    if stem >= 8:
        cuts.append(name[2:])
    elif stem == 7:
        cuts.append(name[1:])
    return cuts


def _lock_bytes(path: Path) -> bytes | None:
    """None when nothing stands at ``path``; else the first bytes of the lock file (empty for
    what is not a regular file, or cannot be read: it is there, so the sheet is open, but
    it says nothing). A FIFO is never opened: that would wait for a writer."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError:
        return b""
    if not stat.S_ISREG(mode):
        return b""
    try:
        with open(path, "rb") as f:
            return f.read(LOCK_FILE_READ)
    except OSError:
        return b""


def _libreoffice(path: Path, data: bytes) -> OpenIn:
    try:
        text = data.decode("utf-8")  # as LibreOffice writes it; anything else says nothing
    except UnicodeDecodeError:
        text = ""
    fields = _lock_fields(text)
    fields += [""] * (4 - len(fields))
    user, system_user, host, date = (clean(f, limit=40) for f in fields[:4])
    owner = user or system_user
    if owner and host:
        owner = f"{owner} on {host}"
    return OpenIn("LibreOffice", path, owner, _lo_date(date) or _modified(path))


def _lock_fields(text: str) -> list[str]:
    """The fields of LibreOffice's one-record lock file: comma-separated, ended by ``;``,
    a backslash escaping the next character."""
    fields: list[str] = []
    field: list[str] = []
    escaped = False
    for c in text:
        if escaped:
            field.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            fields.append("".join(field))
            field = []
        elif c == ";":
            break
        else:
            field.append(c)
    fields.append("".join(field))
    return fields


def _lo_date(text: str) -> str:
    """LibreOffice's ``05.06.2024 14:03`` as ``2024-06-05 14:03``; another text as it is."""
    import datetime

    try:
        return datetime.datetime.strptime(text, "%d.%m.%Y %H:%M").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text


def _excel(path: Path, data: bytes) -> OpenIn:
    return OpenIn("Excel", path, _owner_name(data), _modified(path))


def _owner_name(data: bytes) -> str:
    """The user name in an Office owner file: the UTF-16 copy where the lengths agree, else
    the code-page copy; empty for what holds neither."""
    length = data[0] if data else 0
    if not 0 < length <= MSO_NAME_MAX:
        return ""
    for at in (54, 55):  # Word's place, Excel's and PowerPoint's
        end = at + 2 + 2 * length
        if len(data) >= end and data[at] == length and data[at + 1] == 0:
            try:
                name = clean(data[at + 2:end].decode("utf-16-le"), limit=MSO_NAME_MAX)
            except UnicodeDecodeError:  # a lone surrogate: not a name
                continue
            if name:
                return name
    try:
        return clean(data[1:1 + length].decode("cp1252"), limit=MSO_NAME_MAX) if len(data) > length else ""
    except UnicodeDecodeError:  # one of the five bytes cp1252 leaves undefined: not a name
        return ""


def _modified(path: Path) -> str:
    """When the lock file was written (the application writes it as it opens the document)."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(os.lstat(path).st_mtime))
    except OSError:
        return ""
