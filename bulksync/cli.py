"""The bulksync command: options → a library call → output and an exit code. Nothing more.

Exit codes: 0 every row succeeded; 1 a row was invalid or failed;
2 usage error, unusable file or refused token; 130 interrupted.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from bulksync.config import DEFAULT_SETTLE, DEFAULT_TIMEOUT
from bulksync.errors import BulksyncError
from bulksync.places import row_ranges

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ROWS, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 130
SHOWN_PROBLEMS = 50


def _fail(message: str, code: int = EXIT_FATAL) -> None:
    click.echo(f"bulksync: error: {message}", err=True)
    sys.exit(code)


def _errors(func: F) -> F:
    """Turn bulksync's errors into one line on stderr and exit 2; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import warnings

        warnings.showwarning = _show_warning
        for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is shown, not fatal
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="backslashreplace")
        try:
            return func(*args, **kwargs)
        except BulksyncError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            click.echo("bulksync: interrupted; results obtained so far were written back", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    click.echo(f"bulksync: warning: {message}", err=True)


def _print_json(value: Any) -> None:
    """One JSON document and a newline on stdout (orjson: a 100,000-row plan's operations in a
    seventh of the time of the standard library's encoder, bench/RESULTS.md)."""
    import orjson

    try:
        data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:  # e.g. a file name that is not UTF-8: escaped, as json does
        data = (json.dumps(value) + "\n").encode()
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:  # a text-only stdout (a caller's StringIO)
        sys.stdout.write(data.decode())
    else:
        binary.write(data)
        binary.flush()


def _parse_set(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="--set")
        out[name.strip()] = value
    return out


_HEADER_ROW = click.option("--header-row", type=click.IntRange(1, 1_048_576), metavar="N",
                           help="The row that names the columns, when a title block stands "
                           "above it (default: 1).")


def _sheet_options(func: F) -> F:
    options = [
        click.argument("file", type=click.Path(path_type=Path)),
        click.option("--sheet", metavar="NAME", help="Worksheet of an .xlsx (default: the first)."),
        click.option("--config", type=click.Path(path_type=Path), metavar="FILE",
                     help="Config file (default: bulksync.toml beside the sheet, if any)."),
        click.option("--form-id", metavar="UUID", help="formId for rows that create a ticket "
                     "and have none."),
        click.option("--channel", metavar="ID", help="requesterChannel for rows that create a "
                     "ticket and have none."),
        click.option("--set", "set_", multiple=True, metavar="FIELD=VALUE",
                     help="Give FIELD this value on every row, e.g. --set status=Closed. "
                     "Repeatable."),
        click.option("--mapping", metavar="FILE|NAME", help="Read another tool's export through a "
                     "mapping file, or a preset: zendesk, jira, freshdesk."),
        click.option("--users", type=click.Path(path_type=Path), metavar="FILE",
                     help="CSV of user,slackId[,name]: turns emails, names and legacy IDs into "
                     "Slack member IDs."),
        click.option("--comments", type=click.Path(path_type=Path), metavar="FILE",
                     help="CSV of externalId,author,body,public,createdAt: posted as replies."),
        click.option("--default-requester", metavar="ID",
                     help="Slack member ID for rows that create a ticket and have no "
                     "requester, and for requesters not in --users."),
        click.option("--legacy-url", metavar="TEMPLATE",
                     help="URL of an old ticket, {id} = its ID, for the link to it."),
        click.option("--encoding", metavar="NAME", help="The CSV's encoding, e.g. cp1251, utf-16 "
                     "(default: UTF-8, else detected, and said)."),
        click.option("--delimiter", metavar="CHAR", help="The CSV's delimiter: a character, or "
                     "tab (default: detected from the header)."),
        click.option("--include-hidden", is_flag=True, help="Also the rows a workbook's filter "
                     "hides (left out by default)."),
        _HEADER_ROW,
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_SHEET_OPTIONS = ("sheet", "config", "form_id", "channel", "mapping", "users", "comments",
                  "default_requester", "legacy_url", "encoding", "delimiter", "include_hidden",
                  "header_row")


def _run_options(func: F) -> F:
    """The options of the commands that send (push, delete): output and the run report."""
    options = [
        click.option("--quiet", "-q", is_flag=True, help="No progress output, and no note on the "
                     "columns of your own."),
        click.option("--report", "run_report", type=click.Path(path_type=Path), metavar="FILE.csv",
                     help="Write a run report: each row's ticket, operation and outcome (a "
                     "migration writes FILE.bulksync-report.csv by default)."),
        click.option("--no-report", is_flag=True, help="No run report, not even a migration's."),
        click.option("--verbose", "-v", is_flag=True, help="Log every request and its answer on stderr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _api_options(func: F) -> F:
    """The options of the commands that talk to the API."""
    func = click.option("--concurrency", type=click.IntRange(1, 64), metavar="N",
                        help="Requests in flight at once (default 4).")(func)
    return click.option("--api-url", metavar="URL", help="API base URL (default: $SUPTASK_API_URL, "
                        "else Suptask's public endpoint).")(func)


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    """The library's sheet options out of a command's parameters (taking them out)."""
    out = {name: options.pop(name) for name in _SHEET_OPTIONS}
    out["set"] = _parse_set(options.pop("set_"))
    return out


def _log(verbose: bool) -> Callable[[str], None] | None:
    return (lambda line: click.echo(line, err=True)) if verbose else None


def _interactive() -> bool:
    """Can we ask the user a question? (Tests answer for the terminal.)"""
    return sys.stdin.isatty()


def _note_ignored(columns: tuple[str, ...]) -> None:
    """One short line: the sheet's own columns, which are kept and never sent."""
    if columns:
        from bulksync.untrusted import clean

        # Header text is the file's: shown without what a terminal would act on.
        names = ", ".join(clean(c, limit=30) for c in columns[:3])
        more = f" and {len(columns) - 3} more" if len(columns) > 3 else ""
        click.echo(f"note: {len(columns)} column(s) of your own, not sent: {names}{more}", err=True)


def _print_notes(notes: tuple[str, ...]) -> None:
    for note in notes:
        click.echo(f"note: {note}", err=True)


def _print_report(report: Any, *, err: bool = False, quiet: bool = False) -> None:
    _print_notes(report.notes)
    lines = report.lines()
    for line in lines[:SHOWN_PROBLEMS]:
        click.echo(line, err=err)
    if len(lines) > SHOWN_PROBLEMS:
        click.echo(f"... and {len(lines) - SHOWN_PROBLEMS} more problems (--json lists all)",
                   err=err)
    if not quiet:
        _note_ignored(report.ignored_columns)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bulksync")
def main() -> None:
    """Sync spreadsheets (CSV, XLSX) with Suptask tickets.

    A row without ticketId creates a ticket; a row with one updates it. The
    outcome (ticketId, ticketNumber, syncStatus, syncError) is written back
    into the same file, so the next push updates instead of duplicating.
    """


@main.command()
@_sheet_options
@_errors
def validate(file: Path, as_json: bool, **options: Any) -> None:
    """Check every row of FILE; print each problem with its row and column. Sends nothing."""
    from bulksync.sync import validate as run_validate

    _tune_gc()
    report = run_validate(file, **_settings(options))
    if as_json:
        _print_json(report.as_dict())
    else:
        _print_report(report)
        rows_with = len(report.invalid_rows)
        verdict = "valid" if report.valid else (
            f"{len(report.problems)} problem(s)" + (f" in {rows_with} row(s)" if rows_with else ""))
        if report.rows == 0 and report.valid:
            verdict = "no rows: nothing to do"
        click.echo(f"{file}: {report.rows} row(s), {verdict}")
    sys.exit(EXIT_OK if report.valid else EXIT_ROWS)


_FORCE = click.option("--force", is_flag=True,
                      help="Send every row in full, not only what changed since the last push.")
_RESEND_UNRESOLVED = click.option(
    "--resend-unresolved", is_flag=True,
    help="Send again creates, links and replies that could not be resolved. Check in "
    "Suptask first: if they exist, this duplicates them.")
_ALLOW_DUPLICATES = click.option(
    "--allow-duplicates", is_flag=True,
    help="Create rows even when another sheet already made a ticket with the same cells.")


_RELINK = click.option(
    "--relink", is_flag=True,
    help="Rows standing where their ticket was created from, without its ID (the sheet was saved "
    "from a window opened before a push) and edited since: write the ID back and send the edits "
    "as an update, checked against Suptask first.")


_SEND_REFORMATTED = click.option(
    "--send-reformatted", is_flag=True,
    help="Send values a spreadsheet application re-wrote on a save (00123 as 123, a long number "
    "as 1.23457E+18, a date in its own format) as they are, instead of holding their rows.")


_TRUST_IDS = click.option(
    "--trust-ids", is_flag=True,
    help="Send rows whose cells equal another ticket's last-synced cells as the edits they are "
    "(without it, IDs that a sort left beside other tickets' cells stop the push).")


_IGNORE_LOCK_FILE = click.option(
    "--ignore-lock-file", is_flag=True,
    help="Go on though Excel's or LibreOffice's lock file (~$FILE, .~lock.FILE#) stands beside FILE: "
    "only for one a crash left, with no window that has FILE open.")


def _shown(value: str) -> str:
    return "(empty)" if value == "" else json.dumps(value, ensure_ascii=False)


@main.command()
@_sheet_options
@click.option("--api-url", metavar="URL", help="API base URL (default: $SUPTASK_API_URL, "
              "else Suptask's public endpoint): the state of this API is planned against.")
@click.option("--limit", default=20, show_default=True, metavar="N",
              help="Show the first N requests (--json shows all).")
@_FORCE
@_ALLOW_DUPLICATES
@_RESEND_UNRESOLVED
@_RELINK
@_SEND_REFORMATTED
@_TRUST_IDS
@_errors
def plan(file: Path, as_json: bool, limit: int, force: bool, allow_duplicates: bool,
         resend_unresolved: bool, relink: bool, send_reformatted: bool, trust_ids: bool,
         api_url: str | None, **options: Any) -> None:
    """Show what push would send for FILE, and what changed since the last push.

    Needs no token (SUPTASK_API_TOKEN, if set, picks the state of that token); sends nothing.
    """
    from bulksync.sync import plan as run_plan

    _tune_gc()
    sheet_options = _settings(options)
    report, the_plan = run_plan(file, force=force, api_url=api_url, allow_duplicates=allow_duplicates,
                                resend_unresolved=resend_unresolved, relink=relink,
                                send_reformatted=send_reformatted, trust_ids=trust_ids, **sheet_options)
    counts = the_plan.counts()
    known = the_plan.reconciliation
    if as_json:
        _print_json({**report.as_dict(), **counts, "requests": the_plan.requests, **known.as_dict(),
                     "held": [{"row": r, "kind": k, "why": w} for r, k, w in the_plan.held],
                     "holds": [h.as_dict() for h in the_plan.holds],
                     "operations": [op.as_dict() for op in the_plan.operations]})
    else:
        click.echo(f"target: {known.target}", err=True)
        _print_report(report, err=True)
        settled = known.settled_rows()
        shown = [op for op in the_plan.operations
                 if op.sends and not (op.kind == "create" and op.row_number in settled)][:limit]
        for op in shown:
            if op.changes:
                click.echo(f"row {op.row_number}: {op.method} {op.path}")
                for c in op.changes:
                    click.echo(f"    {c.field}: {_shown(c.old)} → {_shown(c.new)}")
            else:
                click.echo(f"row {op.row_number}: {op.method} {op.path} "
                           f"{json.dumps(dict(op.payload), ensure_ascii=False)}")
        if the_plan.requests > len(shown):
            click.echo(f"... and {the_plan.requests - len(shown)} more")
        for label, rows in (("already created (recovered from bulksync's state)", known.recovered),
                            ("match tickets created from another sheet, not created again "
                             "(--allow-duplicates creates them)", known.matched),
                            ("have an earlier create whose outcome is unknown: resolved before "
                             "anything is resent", known.pending),
                            ("given back their ticket (--relink), its ID written back",
                             known.relinked)):
            if rows:
                click.echo(f"{len(rows)} row(s) {label}: {row_ranges(rows)}")
        creates = counts["create"] - len(settled)
        sides = "".join(f", {counts[k]} {k if counts[k] == 1 else plural}"
                        for k, plural in (("link", "links"), ("reply", "replies")) if counts[k])
        for row, kind, why in the_plan.held:
            click.echo(f"row {row}: {kind} not sent: {why}")
        from bulksync.plan import hold_groups

        for (status, line), at in hold_groups(the_plan.holds).items():  # as push says them
            where = f"row {at[0]}" if len(at) == 1 else f"{len(at)} rows ({row_ranges(at)})"
            click.echo(f"{file}: {where}: {status}: {line}")
        held = f", {counts['hold']} held" if counts["hold"] else ""
        click.echo(f"{file}: {creates} to create, {counts['update']} to update, "
                   f"{counts['unchanged']} unchanged, {counts['skip']} with nothing to send, "
                   f"{len(report.invalid_rows)} invalid{held}{sides} ({the_plan.requests} requests)")
        _note_unchanged(counts["unchanged"], bool(sheet_options.get("set")))
        checks = sum(1 for op in the_plan.operations if op.kind in ("update", "unchanged", "skip")
                     and op.ticket_id)
        if checks:
            from bulksync.engine import budget

            click.echo(f"note: with push --check, {budget(checks)}", err=True)
    sys.exit(EXIT_OK if report.valid and not the_plan.holds else EXIT_ROWS)


def _note_unchanged(count: int, by_set: bool) -> None:
    """What "unchanged" means when Suptask was not read: bulksync is not the only writer."""
    if count:
        edit = (" (including values given by --set that bulksync believes the tickets already have)"
                if by_set else "")
        click.echo(f"note: {count} unchanged{edit} means unchanged since bulksync last pushed or "
                   "pulled them; Suptask was not checked (push --check reads them first, pull "
                   "refreshes the sheet)", err=True)


class _Progress:
    """tqdm on a terminal; elsewhere a plain line every few seconds."""

    def __init__(self, *, quiet: bool, every: float = 5.0) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.every = every
        self.bar: Any = None
        self.started = time.monotonic()
        self.last = 0.0
        self.last_note = ""

    def __call__(self, done: int, total: int, note: str) -> None:
        if self.quiet or total == 0:
            return
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="request", file=sys.stderr, dynamic_ncols=True)
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        # A new wait is said at once; otherwise a line every few seconds.
        new_wait = bool(note) and note.split(",")[0] != self.last_note.split(",")[0]
        self.last_note = note
        if done != total and now - self.last < self.every and not new_wait:
            return
        self.last = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {int((total - done) / rate)}s" if rate > 0 and done < total else ""
        tail = f" ({note})" if note else ""
        click.echo(f"progress: {done}/{total} requests, {rate:.1f}/s{eta}{tail}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@main.command()
@_sheet_options
@_api_options
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="R",
              help="At most R requests per second.")
@click.option("--skip-invalid", is_flag=True,
              help="Send the valid rows; mark invalid ones syncStatus=invalid.")
@_FORCE
@click.option("--check", is_flag=True, help="Read each ticket about to be updated first: a field "
              "changed in Suptask and in the sheet is a conflict (not sent); one changed only in "
              "Suptask is taken into the sheet. --force sends the sheet's values anyway.")
@click.option("--only-failed", is_flag=True, help="Send only the rows that failed last time.")
@click.option("--retry-uncertain", is_flag=True,
              help="Wait until the server is surely done with creates whose answer was lost "
              "(--settle), then resolve them; only those proven absent are sent again.")
@_RESEND_UNRESOLVED
@_ALLOW_DUPLICATES
@_RELINK
@_SEND_REFORMATTED
@_TRUST_IDS
@_IGNORE_LOCK_FILE
@click.option("--settle", type=click.FloatRange(min=0), default=DEFAULT_SETTLE, show_default=True,
              metavar="SECONDS", help="How long the API may still be working on a create "
              "whose answer was lost (at least --timeout).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, metavar="SECONDS", help="How long a request may take.")
@_run_options
@_errors
def push(file: Path, as_json: bool, quiet: bool, verbose: bool, run_report: Path | None,
         no_report: bool, **options: Any) -> None:
    """Send FILE's rows to Suptask and write the outcome back into FILE.

    The token is read from SUPTASK_API_TOKEN. Ctrl-C stops cleanly (a second
    Ctrl-C at once); a rerun, a renamed copy or a re-export never creates a row twice.
    """
    from bulksync.sync import push as run_push

    _tune_gc(long_run=True)
    progress = _Progress(quiet=quiet)
    sheet_options = _settings(options)
    try:
        result = run_push(file, on_progress=progress, on_log=_log(verbose), on_notice=_notice,
                          run_report=False if no_report else run_report, **options, **sheet_options)
    finally:
        progress.close()
    if not (as_json or options["check"] or result.refused):
        _note_unchanged(result.counts["unchanged"], bool(sheet_options.get("set")))
    _conclude(file, result, as_json=as_json, quiet=quiet)


def _notice(text: str) -> None:
    click.echo(f"bulksync: {text}", err=True)


def _conclude(file: Path, result: Any, *, as_json: bool, quiet: bool = False) -> None:
    """Print the outcome of a push or a delete, as text or JSON, and exit with its code."""
    if result.refused:
        assert result.report is not None
        if as_json:
            found = result.report.as_dict()
            _print_json({**result.summary(), "problems": found["problems"], "groups": found["groups"]})
        else:
            _print_report(result.report, err=True, quiet=quiet)
        from bulksync.mapping import UNCONFIRMED_INTEGRATION

        if any(p.code == UNCONFIRMED_INTEGRATION for p in result.report.problems):
            click.echo(f"bulksync: {file}: nothing was sent and the file is unchanged", err=True)
        elif result.report.sheet_invalid:  # --skip-invalid leaves rows out, not a header
            click.echo(f"bulksync: {file}: the sheet's columns have problems (row "
                       f"{result.report.header_row}): nothing was sent and the file is unchanged; "
                       "fix them (--skip-invalid leaves out invalid rows, not these)", err=True)
        else:
            click.echo(f"bulksync: {file} has invalid rows: nothing was sent and the file is "
                       "unchanged (fix them, or use --skip-invalid)", err=True)
        sys.exit(EXIT_ROWS)
    _report_run(file, result, as_json=as_json, quiet=quiet)
    _finish(result)


def _report_run(file: Path, result: Any, *, as_json: bool, quiet: bool = False) -> None:
    summary = result.summary()
    if as_json:
        _print_json(summary)
        return
    if result.report is not None:
        _print_notes(result.report.notes)
    if not quiet:
        _note_ignored(result.ignored_columns)
    groups = result.groups()
    for (status, error), rows in list(groups.items())[:SHOWN_PROBLEMS]:
        where = f"row {rows[0]}" if len(rows) == 1 else f"{len(rows)} rows ({row_ranges(rows)})"
        click.echo(f"{file}: {where}: {status}: {error}" if error else f"{file}: {where}: {status}")
    if len(groups) > SHOWN_PROBLEMS:
        click.echo(f"... and {len(groups) - SHOWN_PROBLEMS} more (each row's outcome is in the sheet)")
    counts = ", ".join(f"{summary[k]} {k}" for k in
                       ("created", "updated", "unchanged", "deleted", "undone", "kept", "failed", "uncertain",
                        "held", "invalid", "skipped") if summary[k] or k in ("created", "updated", "failed"))
    extra = "".join(f", {summary[k]} of them {k}" for k in ("recovered", "resolved") if summary[k])
    if summary["already"]:
        extra += f", {summary['already']} of them already deleted (nothing sent)"
    if summary["matched"]:
        matched = [r.row_number for r in result.results.values() if r.via == "matched"]
        extra += (f", {summary['matched']} of them matched to tickets created from another sheet "
                  f"(rows {row_ranges(matched)}: not created again; --allow-duplicates creates them)")
    side = "".join(f", {n} {k.replace('_', ' ')}" for k, n in result.side.items() if n)
    if not result.results and result.report is not None and result.report.rows == 0:
        click.echo(f"{file}: no rows: nothing to do")
        return
    click.echo(f"{file}: {counts}{extra}{side} ({summary['requests']} requests)")
    if result.written_to:
        click.echo(f"results written to {result.written_to}")
    if result.run_report:
        click.echo(f"run report: {result.run_report}")


def _finish(result: Any) -> None:
    if result.note:
        click.echo(f"bulksync: {result.note}", err=True)
    if result.stopped:
        _fail(result.stopped)
    if result.interrupted:
        click.echo("bulksync: interrupted; everything obtained so far was written back and is "
                   "in the journal", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.beside:  # the sheet does not hold the outcomes: a script must not think it does
        sys.exit(EXIT_FATAL)
    sys.exit(EXIT_OK if result.ok else EXIT_ROWS)


@main.command()
@_sheet_options
@_api_options
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed off a terminal).")
@_IGNORE_LOCK_FILE
@_run_options
@_errors
def delete(file: Path, as_json: bool, yes: bool, quiet: bool, verbose: bool, api_url: str | None,
           concurrency: int | None, run_report: Path | None, no_report: bool, ignore_lock_file: bool,
           **options: Any) -> None:
    """Delete the tickets listed (by ticketId) in FILE, after confirming.

    The outcome of each row (syncStatus=deleted, or failed) is written back into FILE.
    """
    from bulksync.sync import delete as run_delete

    _tune_gc(long_run=True)
    sheet_options = _settings(options)

    def confirm(ops: list[Any]) -> bool:
        """Show exactly what will be deleted (the sheet is read once, and locked meanwhile)."""
        count = len(ops)
        question = (f"Delete {count} ticket{'s' if count != 1 else ''} listed in {file} "
                    f"(rows {row_ranges([op.row_number for op in ops])})? This cannot be undone.")
        if yes:
            return True
        if not _interactive():
            _fail(f"{question} Refusing without --yes when not on a terminal; nothing was deleted.")
        for op in ops[:SHOWN_PROBLEMS]:
            click.echo(f"row {op.row_number}: DELETE {op.path}", err=True)
        if click.confirm(question, default=False, err=True):
            return True
        click.echo("nothing was deleted", err=True)
        sys.exit(EXIT_FATAL)

    progress = _Progress(quiet=quiet)
    try:
        result = run_delete(file, api_url=api_url, concurrency=concurrency, on_progress=progress,
                            on_log=_log(verbose), on_notice=_notice, confirm=confirm,
                            run_report=run_report if run_report and not no_report else False,
                            ignore_lock_file=ignore_lock_file, **sheet_options)
    finally:
        progress.close()
    if result.report is not None and result.report.rows == 0 and not result.refused:
        if as_json:
            _print_json({**result.summary(), "problems": []})
        else:
            click.echo(f"{file}: no row has a ticketId: nothing to delete")
        sys.exit(EXIT_OK)
    _conclude(file, result, as_json=as_json, quiet=quiet)


@main.command()
@_sheet_options
@_api_options
@click.option("--columns", metavar="A,B", help="Refresh only these columns, e.g. status,assignee "
              "(default: every Suptask column the sheet has).")
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help="Read at most N tickets, those read longest ago first (a stopped pull resumes).")
@click.option("--numbers", metavar="RANGE", help="Make FILE (new, .csv or .xlsx) a sheet of these "
              "tickets, e.g. 2040-2100 or 2040,2045,2050-2060.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@_IGNORE_LOCK_FILE
@_errors
def pull(file: Path, as_json: bool, quiet: bool, api_url: str | None, concurrency: int | None,
         columns: str | None, limit: int | None, numbers: str | None, ignore_lock_file: bool,
         **options: Any) -> None:
    """Fill FILE's Suptask columns from the tickets as they are now in Suptask.

    Reads GET /ticket/{ticketNumber} for each row with a ticketNumber (or a ticketId whose
    number bulksync knows); writes only the cells that changed, and marks each row.
    """
    from bulksync.sync import pull as run_pull

    _tune_gc(long_run=True)
    sheet_options = _settings(options)
    sheet_options.pop("set", None)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    progress = _Progress(quiet=quiet)
    try:
        result = run_pull(file, api_url=api_url, columns=wanted, limit=limit, on_progress=progress,
                          on_notice=_notice, numbers=_number_range(numbers) if numbers else None,
                          ignore_lock_file=ignore_lock_file, **sheet_options)
    finally:
        progress.close()
    summary = result.summary()
    if as_json:
        _print_json(summary)
    else:
        for (status, error), rows in result.groups().items():
            where = f"row {rows[0]}" if len(rows) == 1 else f"{len(rows)} rows ({row_ranges(rows)})"
            click.echo(f"{file}: {where}: {status}: {error}")
        click.echo(f"{file}: {summary['pulled']} pulled ({result.cells_changed} cells "
                   f"changed), {summary['failed']} failed, {summary['skipped']} skipped "
                   f"({summary['requests']} requests)")
        if result.written_to:
            click.echo(f"results written to {result.written_to}")
    _finish(result)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--sheet", metavar="NAME", help="Worksheet of an .xlsx (default: the first).")
@click.option("--yes", "-y", is_flag=True, help="Clear without asking (needed off a terminal).")
@click.option("--encoding", metavar="NAME", help="The CSV's encoding (default: detected).")
@click.option("--delimiter", metavar="CHAR", help="The CSV's delimiter (default: detected).")
@_HEADER_ROW
@_IGNORE_LOCK_FILE
@_errors
def reset(file: Path, sheet: str | None, yes: bool, encoding: str | None, delimiter: str | None,
          header_row: int | None, ignore_lock_file: bool) -> None:
    """Clear bulksync's cells (ticketId, ticketNumber, syncStatus, syncError) in FILE.

    Use it to push a sheet to another API (e.g. after a rehearsal on the sandbox) as new
    tickets. Every other cell is kept; bulksync's state is kept too, so pushing FILE again
    to the API it came from recovers the same tickets instead of creating them.
    """
    from bulksync.sync import reset as run_reset

    question = (f"Clear ticketId, ticketNumber, syncStatus and syncError in {file}? A push then "
                "treats its rows as new tickets.")
    if not yes:
        if not _interactive():
            _fail(f"{question} Refusing without --yes when not on a terminal; nothing was changed.")
        if not click.confirm(question, default=False, err=True):
            click.echo("nothing was changed", err=True)
            sys.exit(EXIT_FATAL)
    count = run_reset(file, sheet=sheet, encoding=encoding, delimiter=delimiter, header_row=header_row,
                      ignore_lock_file=ignore_lock_file)
    click.echo(f"{file}: {count} cell(s) cleared" if count else f"{file}: nothing to clear")


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--custom-field", "custom_fields", multiple=True, metavar="UUID[=Label]",
              help="Add a customField_<UUID> column (Label: its note). Repeatable.")
@click.option("--preset", metavar="NAME", help="The columns of a tool's export instead "
              "(zendesk, jira, freshdesk).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@_errors
def template(out: Path, custom_fields: tuple[str, ...], preset: str | None, force: bool) -> None:
    """Write a fillable sheet to OUT (.xlsx or .csv) with the right columns.

    An .xlsx gets a note on every header, drop-down lists for status and
    priority, and a frozen header row; a .csv gets the header only.
    """
    from bulksync.template import write_template

    if out.exists() and not force:
        _fail(f"{out} exists; give --force to overwrite it")
    fields: list[tuple[str, str]] = []
    for item in custom_fields:
        uuid, _, label = item.partition("=")
        fields.append((uuid.strip(), label.strip()))
    write_template(out, custom_fields=fields, preset=preset)
    click.echo(f"wrote {out}")


@main.group()
def mapping() -> None:
    """Mapping files: read another tool's export into Suptask's columns.

    bulksync mapping suggest EXPORT writes a mapping file suggested from the export itself.
    """


@mapping.command()
@click.argument("export", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path, allow_dash=True), metavar="FILE",
              help="Write the mapping file to FILE (default, or -: print it).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--integration", metavar="NAME", help="The old tool's name, for the link to each old "
              "ticket (default: guessed from the export, and marked to check).")
@click.option("--sheet", metavar="NAME", help="Worksheet of an .xlsx (default: the first).")
@click.option("--config", type=click.Path(path_type=Path), metavar="FILE",
              help="Config file whose sheet, encoding, delimiter and header_row are read "
              "(default: bulksync.toml beside the export, if any).")
@click.option("--encoding", metavar="NAME", help="The CSV's encoding (default: UTF-8, else detected).")
@click.option("--delimiter", metavar="CHAR", help="The CSV's delimiter (default: detected).")
@_HEADER_ROW
@_errors
def suggest(export: Path, out: Path | None, force: bool, integration: str | None, sheet: str | None,
            config: Path | None, encoding: str | None, delimiter: str | None,
            header_row: int | None) -> None:
    """Suggest a mapping file for EXPORT, from its headers and every one of its values.

    Each choice is commented with why; a value it could not place is its best guess, marked
    '# check' (validate lists those until the mark is removed). Read it, edit it, then pass
    it to validate, plan and push with --mapping FILE.
    """
    from bulksync.config import resolve_settings
    from bulksync.mapping import export_preset
    from bulksync.sheets.read import read_table
    from bulksync.suggest import names_a_column, render
    from bulksync.suggest import suggest as suggest_mapping

    if integration is not None and not integration.strip():
        raise click.UsageError("--integration needs the old tool's name")
    if out is not None and str(out) == "-":
        out = None
    # The export as push reads it (bulksync.toml's sheet options too, not its mapping); the
    # reader's header check looks for the columns a suggestion reads.
    settings = resolve_settings(export, config=config, sheet=sheet, encoding=encoding,
                                delimiter=delimiter, header_row=header_row, sheet_only=True,
                                no_mapping=True)
    read = {os.path.realpath(p) for p in (export, settings.config_path) if p is not None}
    if out is not None and os.path.realpath(out) in read:
        _fail(f"--out {out} is a file this command reads: give another path (nothing was written)")
    if out is not None and out.exists() and not force:
        _fail(f"{out} exists; give --force to overwrite it (nothing was written)")
    table = read_table(export, sheet=settings.sheet, max_unpacked=settings.max_unpacked_mb << 20,
                       encoding=settings.encoding, delimiter=settings.delimiter,
                       header_row=settings.header_row, names=names_a_column)
    suggestion = suggest_mapping(table, integration=integration and integration.strip(),
                                 preset=export_preset(table.header))
    text = render(suggestion)
    _print_notes(table.notes)
    if suggestion.preset is not None:
        click.echo(f"note: --mapping {suggestion.preset} (the preset, kept up to date with its "
                   f"exports) reads {export} as it is: use it; a suggestion is written anyway, to "
                   "compare or to start from", err=True)
    elif suggestion.not_preset:
        click.echo(f"note: {suggestion.not_preset}", err=True)
    if out is None:
        click.echo(text, nl=False)
        return
    from bulksync.mapping import check_marks
    from bulksync.sheets.atomic import replace_file

    try:
        replace_file(out, text.encode("utf-8"), like=out)
    except OSError as e:
        _fail(f"{out}: cannot write the mapping file ({e.strerror})")
    marks = len(check_marks(out, text))
    click.echo(f"wrote {out}" + (f"; {marks} line(s) marked '# check' to look at" if marks else ""),
               err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="Port (default: a free one, printed).")
@click.option("--token", help="The token to accept (default: a generated one, printed).")
@click.option("--create-shape", type=click.Choice(["observed", "documented"]), default="observed",
              show_default=True, help="Body of a create's 201: {oldTicket: {...}} or {ticketId}.")
@click.option("--rate-limit", metavar="N/SECONDS", help="Fixed-window limit, e.g. 100/900.")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Delay every answer.")
@click.option("--fail-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests answered 503 before anything is done.")
@click.option("--drop-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of connections closed before anything is done.")
@click.option("--ambiguous-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of creates done, then answered 500 or dropped.")
@click.option("--seed", type=int, help="Seed for the fault switches.")
@click.option("--db", type=click.Path(path_type=Path), help="Keep tickets in this SQLite file.")
@click.option("--samples", is_flag=True, help="Start with the tickets sample_data/close-tickets.csv "
              "lists (for the README's bulk close).")
@click.option("--read-shape", type=click.Choice(["plain", "webhook"]), default="plain", show_default=True,
              help="GET /ticket/{number}'s answer: the sandbox's own, or the shape of Suptask's "
              "webhooks (number as text, status upper case, UNASSIGNED, epoch seconds).")
@click.option("--failing-reads", metavar="N,N", default="",
              help="Ticket numbers whose GET answers 500, as some do on the live API.")
@_errors
def sandbox(host: str, port: int, token: str | None, create_shape: str, rate_limit: str | None,
            latency_ms: float, fail_rate: float, drop_rate: float, ambiguous_rate: float,
            seed: int | None, db: Path | None, samples: bool, read_shape: str,
            failing_reads: str) -> None:
    """Run a local Suptask-compatible API (for rehearsals and tests) until Ctrl-C."""
    from bulksync.sandbox import Sandbox, parse_rate_limit

    try:
        limit = parse_rate_limit(rate_limit) if rate_limit else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--rate-limit") from None
    try:
        sb = Sandbox(host=host, port=port, token=token, create_shape=create_shape,  # type: ignore[arg-type]
                     rate_limit=limit, latency_ms=latency_ms, fail_rate=fail_rate,
                     drop_rate=drop_rate, ambiguous_rate=ambiguous_rate, seed=seed, db=db,
                     samples=samples, read_shape=read_shape,  # type: ignore[arg-type]
                     failing_reads=_numbers(failing_reads))
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e.strerror}")
    click.echo(f"Suptask sandbox listening on {sb.url}")
    click.echo(f"  export SUPTASK_API_URL={sb.url}")
    click.echo(f"  export SUPTASK_API_TOKEN={sb.token}")
    click.echo(f"  tickets: http://{sb.host}:{sb.port}/_sandbox/tickets   "
               f"request log: http://{sb.host}:{sb.port}/_sandbox/requests")
    click.echo(f"  change a ticket as in Slack: POST http://{sb.host}:{sb.port}/_sandbox/tickets/NUMBER "
               '{"status": "Open", ...}')
    sys.stdout.flush()
    try:
        sb.serve_forever()
    except KeyboardInterrupt:
        click.echo("sandbox stopped", err=True)


@main.command()
@click.option("--keep", type=click.Path(path_type=Path), metavar="DIR",
              help="Work in DIR instead of a new scratch folder.")
@_errors
def demo(keep: Path | None) -> None:
    """Run bulksync against a local sandbox: create, edit, bulk-close. Changes nothing of yours."""
    from bulksync.demo import run_demo

    sys.exit(run_demo(keep, echo=click.echo))


_CONSOLE = False
"""True in the console script (``run``): the process ends when the command does."""


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--api-url", metavar="URL", help="API base URL (default: $SUPTASK_API_URL, else "
              "Suptask's public endpoint): the runs made on that API are listed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@_errors
def runs(file: Path, api_url: str | None, as_json: bool) -> None:
    """List the runs bulksync made from FILE, numbered from 1 (for undo --run N)."""
    import datetime

    from bulksync.sync import kept
    from bulksync.sync import runs as list_runs

    found = list_runs(file, api_url=api_url)
    holds = kept(file, api_url=api_url)
    if as_json:
        _print_json({"file": str(file), "runs": [r.as_dict() for r in found], "holds": holds})
        sys.exit(EXIT_OK)
    if not found:
        click.echo(f"{file}: no runs on this target")
    for r in found:
        did = ", ".join(f"{r.counts[k]} {k}" for k in ("created", "updated", "deleted", "linked", "replied",
                                                       "failed") if r.counts.get(k))
        when = datetime.datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M")
        state = (" (undone)" if r.undone else "") + ("" if r.finished else " (stopped before it ended)")
        what = f"undo of run {r.undoes}" if r.undoes else r.command
        click.echo(f"run {r.number}: {when} {what}: {did or 'nothing'}{state}")
    if any(holds.values()):
        click.echo(f"bulksync's state keeps for {file}: the fields of {holds['tickets']} ticket(s) as last "
                   f"synced, {holds['rows']} row identity(ies), {holds['runs']} run(s) "
                   f"(bulksync forget {file} removes them)")
    if found:
        click.echo(f"target: {found[0].target}", err=True)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--api-url", metavar="URL", help="API base URL (default: $SUPTASK_API_URL, else "
              "Suptask's public endpoint): what bulksync keeps for that API is removed.")
@click.option("--yes", "-y", is_flag=True, help="Forget without asking (needed off a terminal).")
@_errors
def forget(file: Path, api_url: str | None, yes: bool) -> None:
    """Remove what bulksync's state keeps for FILE: its tickets' fields as last synced, its
    rows' identities, its runs. Gives up undo, recovery after a crash and --check for them."""
    from bulksync import sync

    holds = sync.kept(file, api_url=api_url)
    if not any(holds.values()):
        click.echo(f"{file}: bulksync's state keeps nothing for it on this target")
        sys.exit(EXIT_OK)
    question = (f"Forget the fields of {holds['tickets']} ticket(s), {holds['rows']} row identity(ies) and "
                f"{holds['runs']} run(s) bulksync keeps for {file}? Its runs can no longer be undone, rows "
                "whose IDs are not in the sheet are no longer recovered (pushed again, they are created "
                "anew), and --check has no baseline for its tickets.")
    if not yes:
        if not _interactive():
            _fail(f"{question} Refusing without --yes when not on a terminal; nothing was removed.")
        if not click.confirm(question, default=False, err=True):
            click.echo("nothing was removed", err=True)
            sys.exit(EXIT_FATAL)
    gone = sync.forget(file, api_url=api_url)
    click.echo(f"{file}: forgot the fields of {gone['tickets']} ticket(s), {gone['rows']} row identity(ies) "
               f"and {gone['runs']} run(s); the state store was rebuilt without them")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--run", "number", type=click.IntRange(min=1), metavar="N",
              help="The run to take back, as bulksync runs numbers it (default: the last one that "
              "changed something and is not undone).")
@click.option("--no-check", is_flag=True, help="Do not read the tickets first: a field changed in "
              "Suptask since the run is put back over that change.")
@click.option("--dry-run", is_flag=True, help="Print the requests the undo would send; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Undo without asking (needed off a terminal).")
@click.option("--api-url", metavar="URL", help="API base URL (default: $SUPTASK_API_URL, else "
              "Suptask's public endpoint).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@_IGNORE_LOCK_FILE
@_errors
def undo(file: Path, number: int | None, no_check: bool, dry_run: bool, yes: bool, api_url: str | None,
         quiet: bool, as_json: bool, ignore_lock_file: bool) -> None:
    """Take back a run made from FILE: delete the tickets it created, put back the fields it
    changed (not those changed in Suptask since), and update FILE to match."""
    from bulksync.sync import undo as run_undo

    if not (yes or dry_run or _interactive()):  # before the reads: nothing at all is sent
        _fail(f"undo of a run of {file}: refusing without --yes when not on a terminal (the requests "
              "are shown and confirmed on a terminal; --dry-run shows them); nothing was sent.")

    def confirm(ops: list[Any]) -> bool:
        """Show exactly the requests about to be sent."""
        question = f"Send these {len(ops)} request(s) to undo a run of {file}?"
        if yes:
            return True
        _print_requests(ops)
        if len(ops) > SHOWN_PROBLEMS:
            click.echo(f"... and {len(ops) - SHOWN_PROBLEMS} more (undo --dry-run lists them all)", err=True)
        if click.confirm(question, default=False, err=True):
            return True
        click.echo("nothing was sent", err=True)
        sys.exit(EXIT_FATAL)

    progress = _Progress(quiet=quiet)
    try:
        done = run_undo(file, run=number, check=not no_check, dry_run=dry_run, confirm=confirm,
                        api_url=api_url, on_progress=progress, on_notice=_notice,
                        ignore_lock_file=ignore_lock_file)
    finally:
        progress.close()
    plan = done.plan
    if dry_run or done.result is None:
        if as_json:
            _print_json({"file": str(file), "run": done.run.number, "requests": plan.requests,
                         "operations": [op.as_dict() for op in plan.operations],
                         "cannot": list(plan.cannot), "kept": list(plan.kept)})
        else:
            _print_requests(list(plan.operations), limit=None)
            click.echo(f"{file}: undo of run {done.run.number}: {plan.requests} request(s)"
                       + (" (dry run: nothing sent)" if dry_run else ": nothing to send"))
        sys.exit(EXIT_OK)
    _report_run(file, done.result, as_json=as_json, quiet=quiet)
    _finish(done.result)


def _print_requests(ops: list[Any], limit: int | None = SHOWN_PROBLEMS) -> None:
    for op in ops[:limit]:
        click.echo(f"row {op.row_number}: {op.method} {op.path}" if op.row_number > 0 else
                   f"(not in the sheet): {op.method} {op.path}", err=limit is not None)
        for c in op.changes:
            click.echo(f"    {c.field}: {_shown(c.old)} → {_shown(c.new)}", err=limit is not None)


@main.command()
@click.option("--api-url", metavar="URL", help="API base URL (default: $SUPTASK_API_URL, else "
              "Suptask's public endpoint).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@_errors
def status(api_url: str | None, as_json: bool) -> None:
    """Check the token before a long run: the target, whether the API accepts the token (one
    read), the rate-limit window and budget left, and what bulksync's state knows."""
    from bulksync.sync import status as run_status

    found = run_status(api_url=api_url)
    if as_json:
        _print_json(found.as_dict())
    else:
        click.echo(f"target: {found.url}{' (a local server: the sandbox, a rehearsal)' if found.local else ''}")
        click.echo(f"token: {found.fingerprint[:8]} (a fingerprint; the token is never shown)")
        click.echo(f"API: {found.answer}")
        window = found.as_dict()["window"]
        if isinstance(window, dict):
            click.echo(f"rate limit: {window['limit']:g} requests per {window['span']:.0f} s; "
                       f"{window['remaining']:g} left, resets in {window['reset_in']} s")
        else:
            click.echo("rate limit: the answer told none (Suptask documents 100 reads per 15 minutes)")
        click.echo(f"state: {found.store}: {found.known['sheets']} sheet(s), {found.known['tickets']} "
                   f"ticket(s), {found.known['runs']} run(s) on this target")
    sys.exit(EXIT_OK if found.accepted else EXIT_FATAL)


def _number_range(text: str) -> list[int]:
    """``2040-2100`` or ``2040,2045,2050-2060`` → the ticket numbers, in order, each once."""
    out: dict[int, None] = {}
    for part in text.replace(" ", "").split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()) or (sep and int(high) < int(low)):
            raise click.BadParameter(f"{part!r} is not a number or a range like 2040-2100",
                                     param_hint="--numbers")
        if sep and int(high) - int(low) > 100_000:
            raise click.BadParameter(f"{part!r} is more than 100,000 tickets", param_hint="--numbers")
        out.update(dict.fromkeys(range(int(low), int(high or low) + 1)))
    return list(out)


def _numbers(text: str) -> list[int]:
    try:
        return [int(n) for n in text.replace(" ", "").split(",") if n]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not ticket numbers separated by commas",
                                 param_hint="--failing-reads") from None


def _tune_gc(*, long_run: bool = False) -> None:
    """The console script's only say over Python's cyclic GC; the library never touches it.

    A command that reads, reports and ends (validate, plan) switches the collector off:
    what it makes is bounded by the sheet and freed when the process ends, and the
    collector's passes over the rows' objects cost a tenth of a 100,000-row plan
    (bench/RESULTS.md). A push or delete (``long_run``) keeps it on, with the modules just
    imported filed as permanent (``gc.freeze``: pandas and pandera are never garbage, and
    every full collection walked them) and young collections a hundred times rarer (the
    rows' dicts and Operations, hundreds of thousands, made no cycles to find). Commands
    run in-process (tests, callers of ``main``) keep the collector as it was.
    """
    if not _CONSOLE:
        return
    import gc

    if long_run:
        gc.freeze()
        gc.set_threshold(70_000, 10, 10)
    else:
        gc.disable()


def run() -> NoReturn:
    """The console script: run the command, then leave without tearing the heap down.

    After a command on a big sheet, freeing hundreds of thousands of objects and the
    modules of pandas and pandera takes a good part of a second, and there is nothing
    left to clean up by then: sheets and journals are written and closed. So the
    process flushes its output and exits at once (mypy does the same).
    """
    global _CONSOLE
    _CONSOLE = True
    try:
        main(standalone_mode=True)
        code: object = 0
    except SystemExit as e:
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head) or a closed stream
            pass
    os._exit(code)
