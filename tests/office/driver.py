"""LibreOffice Calc, driven through UNO, doing to a sheet what its users do (for tests/office).

Run by a Python that has LibreOffice's bridge (Debian: /usr/bin/python3 with python3-uno),
never by bulksync's venv, which cannot import ``uno``::

    driver.py serve --pipe NAME
        start a headless soffice with a private profile, accepting UNO on pipe NAME; print
        "ready", and end it (and remove the profile) when stdin closes
    driver.py [--pipe NAME] sort FILE --by COLUMN (--range A1:D5 | --table [NAME] | --autofilter)
        [--descending]
        sort, as a user does: a selected range; an Excel Table (imported as a named database
        range) or an autofilter (the sheet's unnamed database range) by its own extent; the
        first row of the range is the header; then save in the file's own format
    driver.py [--pipe NAME] resave FILE
        open and save with no edit
    driver.py [--pipe NAME] hold FILE
        open FILE (its lock file .~lock.FILE# stands beside it), print "open", then obey
        lines on stdin: "set A3 text" (a cell as typed text), "save", "close"; each
        answered with one line ("ok", "saved", "closed", or "error: ...")

Without --pipe, an operation starts a private soffice for itself and ends it after.

A CSV is opened with the Text Import dialog's defaults, as a double click opens it
(comma, double quote, UTF-8, every column Standard, quoted fields not forced to text,
special numbers not detected: a number in a cell becomes a number, 00123 becomes 123 and
a 19-digit number 1.23456789012346E+018), and saved as the Save dialog's defaults save it
(the same separators, cell contents as shown, text not all quoted). A workbook is saved
with the "Calc MS Excel 2007 XML" filter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import uno  # type: ignore[import-not-found]
import unohelper  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.table import TableSortField  # type: ignore[import-not-found]
from com.sun.star.task import XInteractionHandler  # type: ignore[import-not-found]

CSV_FILTER = "Text - txt - csv (StarCalc)"
XLSX_FILTER = "Calc MS Excel 2007 XML"
# Tokens: separator (44 ,), text delimiter (34 "), character set (76 UTF-8), first line,
# column formats (none: Standard), language (0: default), quoted field as text, detect
# special numbers: the Text Import dialog's defaults.
CSV_IMPORT = "44,34,76,1,,0,false,false"
# On export token 7 is "quote all text cells", 9 "save cell contents as shown".
CSV_EXPORT = "44,34,76,1,,0,false,true,true"
CONNECT_SECONDS = 90


def _props(**values: Any) -> tuple[PropertyValue, ...]:
    out = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name = name
        prop.Value = value
        out.append(prop)
    return tuple(out)


class SaveAnyway(unohelper.Base, XInteractionHandler):  # type: ignore[misc]
    """The user's answer to what LibreOffice asks: yes. Saving over a file changed on disk
    since it was opened ("The file has been changed since it was opened for editing in
    LibreOffice... Save anyway?") is what the user does in the stale-save scenario; headless,
    LibreOffice's own handler aborts that save (ErrorCodeIOException, Abort Code:27), unless
    the change fell in the second the document was opened. The question itself is not read:
    pyuno fails to convert its request (ChangedByOthersRequest)."""

    def handle(self, request: Any) -> None:
        approve = uno.getTypeByName("com.sun.star.task.XInteractionApprove")
        for choice in request.getContinuations():
            if approve in choice.getTypes():
                choice.select()
                print("LibreOffice asked a question: approved", file=sys.stderr, flush=True)
                return


def _uno_url(pipe: str) -> str:
    return f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext"


def _connect(pipe: str, *, wait: float = 0.0, process: subprocess.Popen[bytes] | None = None) -> Any:
    """The desktop of the soffice accepting on ``pipe`` (waiting up to ``wait`` seconds for it)."""
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + wait
    while True:
        try:
            context = resolver.resolve(_uno_url(pipe))
            break
        except Exception:  # NoConnectException until soffice listens
            if process is not None and process.poll() is not None:
                raise SystemExit(f"error: soffice ended (exit {process.returncode}) before it listened") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"error: no soffice accepts on pipe {pipe}") from None
            time.sleep(0.2)
    return context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)


def _start(pipe: str) -> tuple[subprocess.Popen[bytes], str]:
    """A headless soffice with a private profile (a user's own is never touched or waited on)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise SystemExit("error: soffice is not installed (make test-office installs it)")
    profile = tempfile.mkdtemp(prefix="bulksync-office-profile-")
    process = subprocess.Popen(
        [soffice, "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
         f"-env:UserInstallation={uno.systemPathToFileUrl(profile)}", f"--accept=pipe,name={pipe};urp;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its own process group: ended whole, helpers and all
    return process, profile


def _stop(process: subprocess.Popen[bytes], profile: str, pipe: str) -> None:
    try:
        _connect(pipe).terminate()
    except BaseException:  # noqa: BLE001 - already gone, or not answering: ended below
        pass
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    shutil.rmtree(profile, ignore_errors=True)


def _is_csv(path: str) -> bool:
    return path.lower().endswith((".csv", ".txt"))


def _open(desktop: Any, path: str) -> Any:
    url = uno.systemPathToFileUrl(os.path.abspath(path))
    how = {"FilterName": CSV_FILTER, "FilterOptions": CSV_IMPORT} if _is_csv(path) else {}
    options = _props(Hidden=True, InteractionHandler=SaveAnyway(), **how)
    doc = desktop.loadComponentFromURL(url, "_blank", 0, options)
    if doc is None:
        raise SystemExit(f"error: LibreOffice could not open {path}")
    return doc


def _save(doc: Any, path: str) -> None:
    """Save in the file's own format, to its own name (as Ctrl-S, "Use Excel 2007-365!" or
    "Use Text CSV Format!" does)."""
    url = uno.systemPathToFileUrl(os.path.abspath(path))
    if _is_csv(path):
        doc.storeAsURL(url, _props(FilterName=CSV_FILTER, FilterOptions=CSV_EXPORT, Overwrite=True))
    else:
        doc.storeAsURL(url, _props(FilterName=XLSX_FILTER, Overwrite=True))


def _column(letters: str) -> int:
    """``B`` → 1."""
    number = 0
    for c in letters.upper():
        if not "A" <= c <= "Z":
            raise SystemExit(f"error: {letters!r} is not a column letter")
        number = number * 26 + ord(c) - ord("A") + 1
    return number - 1


def _range_to_sort(doc: Any, args: argparse.Namespace) -> Any:
    sheet = doc.Sheets.getByIndex(0)
    if args.range:
        return sheet.getCellRangeByName(args.range)
    if args.autofilter:
        unnamed = doc.getPropertyValue("UnnamedDatabaseRanges")
        if not unnamed.hasByTable(0):
            raise SystemExit("error: the first sheet has no autofilter")
        return unnamed.getByTable(0).getReferredCells()
    names = doc.DatabaseRanges.getElementNames()
    name = args.table or (names[0] if len(names) == 1 else None)
    if name is None or name not in names:
        raise SystemExit(f"error: no table {args.table or ''} among {list(names)}")
    return doc.DatabaseRanges.getByName(name).getReferredCells()


def sort(desktop: Any, args: argparse.Namespace) -> None:
    doc = _open(desktop, args.file)
    try:
        cells = _range_to_sort(doc, args)
        where = cells.getRangeAddress()
        field = TableSortField()
        field.Field = _column(args.by) - where.StartColumn
        field.IsAscending = not args.descending
        if not 0 <= field.Field <= where.EndColumn - where.StartColumn:
            raise SystemExit(f"error: column {args.by} is outside {cells.AbsoluteName}")
        descriptor = list(cells.createSortDescriptor())
        for prop in descriptor:
            if prop.Name == "SortFields":
                prop.Value = uno.Any("[]com.sun.star.table.TableSortField", (field,))
            elif prop.Name == "ContainsHeader":
                prop.Value = True
        uno.invoke(cells, "sort", (tuple(descriptor),))
        _save(doc, args.file)
        print(f"sorted {cells.AbsoluteName} by column {args.by.upper()}", flush=True)
    finally:
        doc.close(True)


def resave(desktop: Any, args: argparse.Namespace) -> None:
    doc = _open(desktop, args.file)
    try:
        _save(doc, args.file)
        print("saved", flush=True)
    finally:
        doc.close(True)


def hold(desktop: Any, args: argparse.Namespace) -> None:
    doc = _open(desktop, args.file)
    print("open", flush=True)
    try:
        for line in sys.stdin:
            command, _, rest = line.rstrip("\n").partition(" ")
            try:
                if command == "set":
                    cell, _, text = rest.partition(" ")
                    doc.Sheets.getByIndex(0).getCellRangeByName(cell).setString(text)
                    print("ok", flush=True)
                elif command == "save":
                    _save(doc, args.file)
                    print("saved", flush=True)
                elif command == "close":
                    break
                else:
                    print(f"error: unknown command {command!r}", flush=True)
            except Exception as e:  # noqa: BLE001 - said to the test, which fails on it
                print(f"error: {type(e).__name__}: {e}", flush=True)
    finally:
        doc.close(True)
        print("closed", flush=True)


def serve(args: argparse.Namespace) -> None:
    process, profile = _start(args.pipe)
    try:
        _connect(args.pipe, wait=CONNECT_SECONDS, process=process)
        print("ready", flush=True)
        sys.stdin.read()  # until the test closes stdin (or ends)
    finally:
        _stop(process, profile, args.pipe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipe", help="the pipe of a running soffice (driver.py serve)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve")
    do_sort = commands.add_parser("sort")
    do_sort.add_argument("file")
    do_sort.add_argument("--by", required=True, metavar="COLUMN")
    do_sort.add_argument("--descending", action="store_true")
    how = do_sort.add_mutually_exclusive_group(required=True)
    how.add_argument("--range", metavar="A1:D5")
    how.add_argument("--table", nargs="?", const="", metavar="NAME")
    how.add_argument("--autofilter", action="store_true")
    for name in ("resave", "hold"):
        commands.add_parser(name).add_argument("file")
    args = parser.parse_args()
    if args.command == "serve":
        if not args.pipe:
            parser.error("serve needs --pipe")
        serve(args)
        return
    operation = {"sort": sort, "resave": resave, "hold": hold}[args.command]
    if args.pipe:
        operation(_connect(args.pipe), args)
        return
    pipe = f"bulksync-office-{os.getpid()}"
    process, profile = _start(pipe)
    try:
        operation(_connect(pipe, wait=CONNECT_SECONDS, process=process), args)
    finally:
        _stop(process, profile, pipe)


if __name__ == "__main__":
    main()
