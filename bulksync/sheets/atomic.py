"""Replace a file all at once: write a temporary file beside it, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["read_only", "replace_file", "writable_folder"]


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def read_only(path: Path) -> bool:
    """Is the file marked read-only (no write bit for anyone, as ``chmod 444`` leaves it)?
    The mode bits are read, not access rights: root may write anything, but a file its
    owner marked read-only is not to be overwritten."""
    try:
        return not os.stat(path).st_mode & 0o222
    except OSError:
        return False


def writable_folder(path: Path) -> str | None:
    """Why a file cannot be written beside ``path`` (its real folder), or None if it can."""
    folder = Path(os.path.realpath(path)).parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".bulksync-probe.", dir=folder)
    except OSError as e:
        return f"{folder}: {e.strerror or e}"
    os.close(fd)
    os.unlink(probe)
    return None


def replace_file(target: Path, content: bytes | Callable[[BinaryIO], None], *,
                 like: Path | None = None) -> None:
    """Atomically give ``target`` the bytes ``content`` (or what ``content(f)`` writes).

    A symlink is written through: the file it points to is replaced and the link kept.
    The file's permission bits are taken from ``like`` when it exists, so a write-back
    does not change who may read the user's file; a new file gets the mode the umask
    gives (as any program's new file would), not mkstemp's 0600.
    """
    target = Path(os.path.realpath(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if like is not None and like.exists():
            os.chmod(tmp, like.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
