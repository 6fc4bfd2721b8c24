"""The one exception tree of bulksync.

Bad rows are never exceptions: they are problems in a ValidationReport. These
exceptions are for work that cannot go on at all::

    BulksyncError                  root; every error bulksync raises
    ├── UsageError                 bad options, config or mapping (exit 2)
    │   └── TokenMissing           SUPTASK_API_TOKEN is not set
    ├── SheetError                 the sheet cannot be read or written (exit 2)
    ├── StateError                 bulksync's state store is damaged or unusable (exit 2)
    ├── TargetMismatch             the sheet's tickets belong to another API (exit 2)
    ├── SheetBusy                  another bulksync run holds the sheet (exit 2)
    │   └── SheetOpen              Excel or LibreOffice has the sheet open: its lock file stands beside it
    └── ApiError                   the API answered with an error (status, message)
        ├── AuthError              the token was refused (401/403): the run stops (exit 2)
        └── ApiUnreachable         connections kept failing (API down, DNS): the run stops (exit 2)

No message of these ever contains the API token.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Generic, Protocol, TypeVar

__all__ = ["ApiError", "ApiUnreachable", "AuthError", "BulksyncError", "SheetBusy", "SheetError", "SheetOpen",
           "StateError", "TargetMismatch", "TokenMissing", "UsageError"]


class BulksyncError(Exception):
    """Root of every error bulksync raises on purpose."""


class UsageError(BulksyncError):
    """An option, config file or mapping file cannot be used."""


class TokenMissing(UsageError):
    """No API token was given."""

    def __init__(self) -> None:
        super().__init__(
            "no API token: set SUPTASK_API_TOKEN to the token of a Suptask user "
            "(or token = \"...\" in a bulksync.toml only you can read)"
        )


class SheetError(BulksyncError):
    """The sheet file cannot be read or written back."""

    def __init__(self, path: Path | str, message: str, *, row_number: int | None = None,
                 column: str | None = None) -> None:
        self.path = Path(path)
        self.row_number = row_number
        self.column = column
        where = str(path)
        if row_number is not None:
            where += f": row {row_number}"
        if column is not None:
            where += f", column {column}" if row_number is not None else f": column {column}"
        super().__init__(f"{where}: {message}")


class StateError(BulksyncError):
    """bulksync's state store (see :mod:`bulksync.journal`) cannot be used.

    ``problem`` says what is wrong as it is (a full disk, an I/O error, a busy or damaged
    store) and what to do; ``outcome``, when known, what the command had done when it
    stopped ("nothing was sent", what was written back). The store's guard does not know
    it: the command adds it (:meth:`told`)."""

    def __init__(self, path: Path | str, problem: str, *, recover: bool = True, outcome: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.damaged = recover
        """The store itself is damaged (the message advises restoring or moving it aside)."""
        self.outcome = outcome
        """What the command had done when it stopped, if it said so."""
        message = f"bulksync's state store {path} {problem}" + (f"; {outcome}" if outcome else "")
        if recover:
            message += (". It records the tickets bulksync created: restore it from a backup if "
                        f"you have one; otherwise move it aside (mv {path} {path}.damaged) to start a "
                        "new one: sheets that already hold their ticketIds are safe, but rows whose "
                        "IDs never reached their sheet will be created again")
        super().__init__(message)

    def told(self, outcome: str) -> StateError:
        """This error, saying ``outcome`` (what the command had done when it stopped); one that
        says an outcome already keeps it (it was said where it was known)."""
        if self.outcome or not outcome:
            return self
        return StateError(self.path, self.problem, recover=self.damaged, outcome=outcome)


class Endpoint(Protocol):
    """What an error says of an API target (``bulksync.journal.Target``): its URL and token
    fingerprint, and ``str()`` for people."""

    @property
    def url(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...


E = TypeVar("E", bound=Endpoint)


class TargetMismatch(BulksyncError, Generic[E]):
    """The sheet holds ticketIds that bulksync created on another API than the one pushed to
    (``other``; ``target`` is this run's)."""

    def __init__(self, path: Path | str, target: E, other: E, count: int, *, tried: str = "",
                 ticket_ids: tuple[str, ...] = (), numbers: Mapping[str, int] | None = None) -> None:
        self.path = Path(path)
        self.target = target
        self.other = other
        self.count = count
        self.same_url = same_url = other.url == target.url
        """A rotated token, maybe: the rotated-token check reads one ticket to tell."""
        self.ticket_ids = ticket_ids
        """The sheet's ticketIds known on the other target, in sheet order."""
        self.numbers = dict(numbers or {})
        """Their numbers, as the sheet's ticketNumber cells give them."""
        hint = (" The URL is the same and the token differs: "
                + (f"with the new token, {tried}, so it is not taken for the same workspace; "
                   "if it is, push this sheet with the old token"
                   if tried else "if the new token is for the same Suptask workspace, push with it "
                   "(bulksync reads one ticket to check, and keeps the sheet's state)")
                + "; a reset would create its tickets again." if same_url else "")
        super().__init__(
            f"{path}: {count} ticketId{'s' if count != 1 else ''} in this sheet came from {other}, "
            f"not from {target}, the target of this run; nothing was sent. To push it to the "
            f"target as new tickets, clear bulksync's columns first (bulksync reset {path}), or "
            f"push a fresh export.{hint}")

    def tried(self, what: str) -> TargetMismatch[E]:
        """This refusal, saying what the read with the new token found."""
        return TargetMismatch(self.path, self.target, self.other, self.count, tried=what,
                              ticket_ids=self.ticket_ids, numbers=self.numbers)


class SheetBusy(BulksyncError):
    """Another bulksync run is pushing or deleting the same sheet."""

    def __init__(self, path: Path | str, holder: str) -> None:
        self.path = Path(path)
        self.holder = holder
        super().__init__(f"{path}: another bulksync run is working on this sheet ({holder}); "
                         "nothing was sent. Wait for it to finish, then run again")


class SheetOpen(SheetBusy):
    """Excel or LibreOffice has the sheet open: the lock file it keeps while a document is open
    stands beside the sheet. A save from that window would drop what bulksync writes, so
    nothing is sent and the file is not touched. A :class:`SheetBusy`: someone else is
    working on the sheet, and a later run goes through."""

    def __init__(self, path: Path | str, *, application: str, lock_file: Path | str, owner: str = "",
                 since: str = "") -> None:
        self.path = Path(path)
        self.application = application
        self.lock_file = Path(lock_file)
        self.owner = owner
        self.since = since
        who = (f" by {owner}" if owner else "") + (f" since {since}" if since else "")
        self.holder = f"{application}, lock file {lock_file}{who}"
        BulksyncError.__init__(
            self, f"{path} is open in {application} (lock file {lock_file}{who}); save and close it, "
            f"then run again. Nothing was sent and the file is unchanged. If no {application} has it "
            f"open (the lock file was left by a crash), delete {lock_file} or give --ignore-lock-file")


class ApiError(BulksyncError):
    """The API answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "",
                 path: str = "") -> None:
        self.status = status
        self.method = method
        self.path = path
        self.message = message
        super().__init__(message)


class AuthError(ApiError):
    """The token was refused; nothing more is sent."""


class ApiUnreachable(ApiError):
    """Connections to the API kept failing; nothing more is sent."""

    def __init__(self, message: str, *, host: str) -> None:
        self.host = host
        super().__init__(message)
