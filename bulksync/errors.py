"""The one exception tree of bulksync.

Bad rows are never exceptions: they are problems in a ValidationReport. These
exceptions are for work that cannot go on at all::

    BulksyncError                  root; every error bulksync raises
    ├── UsageError                 bad options, config or mapping (exit 2)
    │   └── TokenMissing           SUPTASK_API_TOKEN is not set
    ├── SheetError                 the sheet cannot be read or written (exit 2)
    └── ApiError                   the API answered with an error (status, message)
        └── AuthError              the token was refused (401/403): the run stops (exit 2)

No message of these ever contains the API token.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ApiError", "AuthError", "BulksyncError", "SheetError", "TokenMissing", "UsageError"]


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
