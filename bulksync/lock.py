"""One writer per sheet: an OS lock that the OS releases if the process dies.

``push``, ``delete`` and ``reset`` hold it for the whole run. It is keyed by the sheet's
real path (symlinks and relative names resolved), and lives in bulksync's state folder,
so two names for one file meet at one lock. filelock takes ``flock`` on Unix and
``msvcrt.locking`` on Windows; a kill -9 never leaves a stale lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bulksync.errors import SheetBusy, StateError
from bulksync.journal import private_folder, state_home
from bulksync.sheets.read import sheet_identity

__all__ = ["sheet_lock"]


@contextmanager
def sheet_lock(sheet: Path) -> Iterator[None]:
    """Hold the sheet's lock, or raise :class:`SheetBusy` at once naming who holds it."""
    import filelock

    folder = state_home() / "locks"
    name = hashlib.sha256(sheet_identity(sheet).encode()).hexdigest()[:32]
    path = folder / f"{name}.lock"
    holder = folder / f"{name}.holder"
    try:
        private_folder(folder.parent)
        private_folder(folder)
    except OSError as e:
        raise StateError(folder, f"cannot be created ({e.strerror})", recover=False) from None
    lock = filelock.FileLock(path, timeout=0, thread_local=False, fallback_to_soft=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SheetBusy(sheet, _holder(holder)) from None
    except OSError as e:
        raise StateError(path, f"cannot be locked ({e.strerror})", recover=False) from None
    try:
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
