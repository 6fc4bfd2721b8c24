"""bulksync: sync spreadsheets with Suptask, the Slack helpdesk.

The public door: everything a user of the library needs is importable from
here; the modules behind it are internal.
"""

from __future__ import annotations

from bulksync.columns import Defaults, Problem, ValidationReport
from bulksync.errors import (
    ApiError,
    ApiUnreachable,
    AuthError,
    BulksyncError,
    SheetBusy,
    SheetError,
    SheetOpen,
    StateError,
    TargetMismatch,
    TokenMissing,
    UsageError,
)
from bulksync.plan import Operation, Plan
from bulksync.results import PushResult, RowResult, RunResult
from bulksync.sync import (
    RunInfo,
    Status,
    UndoResult,
    adelete,
    apull,
    apush,
    aundo,
    delete,
    plan,
    progress_bar,
    pull,
    push,
    runs,
    status,
    undo,
    validate,
)

__version__ = "0.2.0"

__all__ = [
    "ApiError",
    "ApiUnreachable",
    "AuthError",
    "BulksyncError",
    "Defaults",
    "Operation",
    "Plan",
    "Problem",
    "PushResult",
    "RowResult",
    "RunInfo",
    "RunResult",
    "SheetBusy",
    "SheetError",
    "SheetOpen",
    "StateError",
    "Status",
    "TargetMismatch",
    "TokenMissing",
    "UndoResult",
    "UsageError",
    "ValidationReport",
    "__version__",
    "adelete",
    "apull",
    "apush",
    "aundo",
    "delete",
    "plan",
    "progress_bar",
    "pull",
    "push",
    "runs",
    "status",
    "undo",
    "validate",
]
