"""The journal: what bulksync sent and what came back, in SQLite, safe across crashes.

It lives beside the sheet, in ``.bulksync/<sheet file name>.journal.sqlite``;
deleting that file resets it. Before a create is sent its *intent* is
committed; the answer (ticket ID and number) is committed the moment it
arrives, before anything else is done with it. So after a ``kill -9`` the next
run knows every ticket it was given, and which creates were in flight.

WAL mode with ``synchronous=NORMAL``: a committed row survives the process
being killed; only a power failure can lose the last few commits.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from bulksync.errors import SheetError
from bulksync.memo import ByIdentity

__all__ = ["CreateEntry", "Journal", "journal_path"]

STATE_DIR = ".bulksync"
CreateState = Literal["sending", "created", "uncertain", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS creates (
    key TEXT PRIMARY KEY,          -- the row's identity (see bulksync.identity)
    row_number INTEGER NOT NULL,   -- where the row was when last sent
    state TEXT NOT NULL,           -- sending | created | uncertain | failed
    payload TEXT NOT NULL,         -- the JSON body sent
    ticket_id TEXT,
    ticket_number INTEGER,
    error TEXT NOT NULL DEFAULT '',
    lower_number INTEGER,          -- highest ticket number answered before this was sent
    sent_at REAL NOT NULL,
    settled_at REAL                -- when the server was surely done with it (answer time)
);
CREATE TABLE IF NOT EXISTS baselines (
    ticket_id TEXT PRIMARY KEY,
    cells TEXT NOT NULL,           -- JSON: the field values last sent (see bulksync.plan)
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sides (   -- links to the old ticket, and replies, per ticket
    kind TEXT NOT NULL,            -- link | reply
    ticket_id TEXT NOT NULL,
    seq INTEGER NOT NULL,          -- a reply's place in the thread (0 for the link)
    state TEXT NOT NULL,           -- sending | done | uncertain | failed
    error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (kind, ticket_id, seq)
);
CREATE TABLE IF NOT EXISTS updates (
    ticket_id TEXT PRIMARY KEY,
    row_number INTEGER NOT NULL,
    state TEXT NOT NULL,           -- failed (a later success removes the row)
    payload TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
);
"""


def journal_path(sheet: Path) -> Path:
    return sheet.parent / STATE_DIR / f"{sheet.name}.journal.sqlite"


@dataclass(frozen=True)
class CreateEntry:
    key: str
    row_number: int
    state: CreateState
    payload: Mapping[str, Any]
    ticket_id: str | None
    ticket_number: int | None
    error: str
    lower_number: int | None
    sent_at: float
    settled_at: float | None


class Journal:
    """One sheet's journal. Every method commits before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SheetError(path, f"cannot open the journal ({e})") from None
        row = self._db.execute("SELECT max(ticket_number) FROM creates").fetchone()
        self.highest_number: int | None = row[0]
        self._failed_ids: set[str] | None = None  # ticket IDs in `updates`, read once

    @classmethod
    def for_sheet(cls, sheet: Path) -> Journal:
        return cls(journal_path(sheet))

    @staticmethod
    def read_baselines(sheet: Path) -> dict[str, dict[str, str]]:
        """The baselines of ``sheet``'s journal, read without creating or changing anything."""
        path = journal_path(sheet)
        if not path.is_file():
            return {}
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT ticket_id, cells FROM baselines").fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            return {}
        return {ticket_id: json.loads(cells) for ticket_id, cells in rows}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- creates -------------------------------------------------------------

    def creates(self, keys: Iterable[str] | None = None) -> dict[str, CreateEntry]:
        rows = self._db.execute("SELECT * FROM creates").fetchall()
        wanted = set(keys) if keys is not None else None
        out = {}
        for r in rows:
            if wanted is None or r[0] in wanted:
                out[r[0]] = CreateEntry(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7],
                                        r[8], r[9])
        return out

    def intend(self, key: str, row_number: int, payload: Mapping[str, Any]) -> None:
        """Record that a create is about to be sent (committed before it is)."""
        self._db.execute(
            "INSERT INTO creates (key, row_number, state, payload, lower_number, sent_at) "
            "VALUES (?, ?, 'sending', ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "row_number = excluded.row_number, state = 'sending', payload = excluded.payload, "
            "error = '', lower_number = excluded.lower_number, sent_at = excluded.sent_at, "
            "settled_at = NULL",
            (key, row_number, json.dumps(payload, sort_keys=True), self.highest_number, time.time()))

    def not_sent(self, key: str) -> None:
        """The create certainly was not processed (no connection, 429, 503): forget the intent."""
        self._db.execute("DELETE FROM creates WHERE key = ? AND state = 'sending'", (key,))

    def created(self, key: str, ticket_id: str, ticket_number: int | None,
                baseline: Mapping[str, str] | None = None) -> None:
        """Record the new ticket (and, in the same transaction, the cells it was made with)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE creates SET state = 'created', ticket_id = ?, ticket_number = ?, "
                             "error = '', settled_at = ? WHERE key = ?",
                             (ticket_id, ticket_number, time.time(), key))
            if baseline is not None:
                self.set_baseline(ticket_id, baseline)
        if ticket_number is not None and (self.highest_number is None
                                          or ticket_number > self.highest_number):
            self.highest_number = ticket_number

    def uncertain(self, key: str, error: str, *, answered: bool) -> None:
        """The outcome is unknown. ``answered``: the server did answer (with an error), so it is done."""
        self._db.execute("UPDATE creates SET state = 'uncertain', error = ?, settled_at = ? "
                         "WHERE key = ?", (error, time.time() if answered else None, key))

    def failed(self, key: str, error: str) -> None:
        """The server refused the create: no ticket was made."""
        self._db.execute("UPDATE creates SET state = 'failed', error = ?, settled_at = ? WHERE key = ?",
                         (error, time.time(), key))

    def forget(self, key: str) -> None:
        self._db.execute("DELETE FROM creates WHERE key = ?", (key,))

    # -- baselines -----------------------------------------------------------

    def set_baseline(self, ticket_id: str, cells: Mapping[str, str]) -> None:
        self._db.execute("INSERT INTO baselines (ticket_id, cells, at) VALUES (?, ?, ?) "
                         "ON CONFLICT(ticket_id) DO UPDATE SET cells = excluded.cells, at = excluded.at",
                         (ticket_id, json.dumps(cells, sort_keys=True), time.time()))

    # -- links and replies ---------------------------------------------------

    def sides(self, kind: str) -> dict[tuple[str, int], str]:
        """(ticketId, seq) → state, for ``link`` or ``reply``."""
        return {(t, n): state for t, n, state in self._db.execute(
            "SELECT ticket_id, seq, state FROM sides WHERE kind = ?", (kind,)).fetchall()}

    def side(self, kind: str, ticket_id: str, seq: int, state: str, error: str = "") -> None:
        self._db.execute("INSERT INTO sides (kind, ticket_id, seq, state, error, at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, ticket_id, seq) DO UPDATE SET "
                         "state = excluded.state, error = excluded.error, at = excluded.at",
                         (kind, ticket_id, seq, state, error, time.time()))

    def forget_side(self, kind: str, ticket_id: str, seq: int) -> None:
        self._db.execute("DELETE FROM sides WHERE kind = ? AND ticket_id = ? AND seq = ?",
                         (kind, ticket_id, seq))

    # -- updates -------------------------------------------------------------

    def updates(self) -> dict[str, tuple[str, str]]:
        """ticketId → (state, error) of updates whose last attempt failed."""
        return {r[0]: (r[1], r[2]) for r in
                self._db.execute("SELECT ticket_id, state, error FROM updates").fetchall()}

    def updated_many(self, records: Sequence[tuple[str, int, Mapping[str, Any], bool, str,
                                                   Mapping[str, str] | None]]) -> None:
        """Record finished updates in one transaction: (ticketId, row, payload, ok, error,
        new baseline or None). Updates are idempotent, so they are written in batches; a
        crash loses at most a batch, and the next push then simply sends those rows again.

        A failed update is kept (with its body and error) for ``--only-failed``; a
        successful one leaves only its new baseline, and clears an earlier failure.
        """
        now = time.time()
        dumps = _memo_dumps()
        if self._failed_ids is None:
            self._failed_ids = {r[0] for r in self._db.execute("SELECT ticket_id FROM updates")}
        listed = self._failed_ids
        failed = [(t, row, dumps(payload), error, now)
                  for t, row, payload, ok, error, _ in records if not ok]
        cleared = [(t,) for t, _, _, ok, _, _ in records if ok and t in listed]
        with self._db:
            self._db.execute("BEGIN")
            if failed:
                self._db.executemany(
                    "INSERT INTO updates (ticket_id, row_number, state, payload, error, at) "
                    "VALUES (?, ?, 'failed', ?, ?, ?) ON CONFLICT(ticket_id) DO UPDATE SET "
                    "row_number = excluded.row_number, state = excluded.state, "
                    "payload = excluded.payload, error = excluded.error, at = excluded.at", failed)
            if cleared:
                self._db.executemany("DELETE FROM updates WHERE ticket_id = ?", cleared)
            self._db.executemany(
                "INSERT INTO baselines (ticket_id, cells, at) VALUES (?, ?, ?) "
                "ON CONFLICT(ticket_id) DO UPDATE SET cells = excluded.cells, at = excluded.at",
                [(t, dumps(cells), now) for t, _, _, _, _, cells in records if cells is not None])
        listed.difference_update(t for (t,) in cleared)
        listed.update(t for t, *_ in failed)


def _memo_dumps() -> Callable[[Mapping[str, Any]], str]:
    """``json.dumps(..., sort_keys=True)`` that encodes each distinct flat mapping once.

    A bulk edit sends the same body (and leaves the same baseline) on many rows, often the
    very same mapping object (see ``plan``), which is then looked up by identity.
    Mappings holding lists (tags, custom fields) are simply encoded each time.
    """
    seen: dict[frozenset[tuple[str, type, Any]], str] = {}

    def dumps(value: Mapping[str, Any]) -> str:
        try:  # the type is part of the key: 1, 1.0 and True are equal but encode differently
            key = frozenset((k, type(v), v) for k, v in value.items())
        except TypeError:  # an unhashable value
            return json.dumps(value, sort_keys=True)
        text = seen.get(key)
        if text is None:
            text = seen[key] = json.dumps(value, sort_keys=True)
        return text

    return ByIdentity(dumps)
