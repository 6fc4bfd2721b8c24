"""The journal: what bulksync sent to each API and what came back, in SQLite, safe across crashes.

Everything bulksync remembers belongs to a **target**: the API's normalised base
URL and a fingerprint of the token (see :class:`Target`). State learned from one
target is never used for another, so a rehearsal on the sandbox leaves nothing
that a push to the real API would take for done.

All targets share one store, ``state.sqlite`` in bulksync's state folder
(:func:`state_home`: ``$BULKSYNC_HOME``, else the platform's user state folder,
``~/.local/state/bulksync`` on Linux). It is not beside the sheet, so a renamed
copy, a re-export or a copy in another folder reach the same store.

Before a create is sent its *intent* is committed, and the commit is also a
claim: a second run (another process, another copy of the sheet) that would
create the same row finds the claim and does not send. The answer (ticket ID
and number) is committed the moment it arrives. So after a ``kill -9`` the next
run knows every ticket it was given, and which creates were in flight.

A row is identified by (target, integration type, legacy ID) when a mapping
names the legacy ID (a re-export anywhere finds it), else by the sheet (its real
path), a hash of its own Suptask cells and its place among identical rows: two
identical rows are two tickets. Rows of another sheet with the same cells are
found by the hash (``content``) and not created again unless asked.

WAL mode with ``synchronous=NORMAL``: a committed row survives the process
being killed; only a power failure can lose the last few commits. A store that
is empty or not a bulksync store is an error (:class:`StateError`), never taken
for a new one.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self
from urllib.parse import urlsplit, urlunsplit

from bulksync.clock import SYSTEM, Clock
from bulksync.errors import StateError
from bulksync.memo import ByIdentity

__all__ = ["Changed", "CreateEntry", "Journal", "RunEffects", "RunRecord", "Target", "UpdateRecord", "Window",
           "changed_fields", "learn", "state_home", "store_path", "window_of"]

HOME_ENV = "BULKSYNC_HOME"
STORE_NAME = "state.sqlite"
SCHEMA_VERSION = 3
CreateState = Literal["sending", "created", "uncertain", "failed"]

_SCHEMA_V1 = """
CREATE TABLE targets (
    target TEXT PRIMARY KEY,       -- url + ' ' + token fingerprint
    url TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen REAL NOT NULL
);
CREATE TABLE creates (
    target TEXT NOT NULL,
    key TEXT NOT NULL,             -- the row's identity (see the module docstring)
    scope TEXT NOT NULL,           -- the sheet it came from (its real path)
    content TEXT NOT NULL,         -- hash of its cells and place among identical rows
    row_number INTEGER NOT NULL,   -- where the row was when last sent
    state TEXT NOT NULL,           -- sending | created | uncertain | failed
    payload TEXT NOT NULL,         -- the JSON body sent
    ticket_id TEXT,
    ticket_number INTEGER,
    error TEXT NOT NULL DEFAULT '',
    lower_number INTEGER,          -- highest ticket number answered before this was sent
    sent_at REAL NOT NULL,
    settled_at REAL,               -- when the server was surely done with it (answer time)
    run TEXT NOT NULL DEFAULT '',  -- the run that claimed it
    answer TEXT NOT NULL DEFAULT '', -- an answer that could not be believed (never shown in a sheet)
    PRIMARY KEY (target, key)
);
CREATE INDEX creates_content ON creates (target, content);
CREATE TABLE tickets (             -- every ticket bulksync created, updated or deleted here
    target TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    cells TEXT,                    -- JSON: the field values last sent (see bulksync.plan)
    deleted INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL,
    PRIMARY KEY (target, ticket_id)
);
CREATE INDEX tickets_id ON tickets (ticket_id);
CREATE TABLE sides (               -- links to the old ticket, and replies, per ticket
    target TEXT NOT NULL,
    kind TEXT NOT NULL,            -- link | reply
    ticket_id TEXT NOT NULL,
    seq INTEGER NOT NULL,          -- a reply's place in the thread (0 for the link)
    state TEXT NOT NULL,           -- sending | done | uncertain | failed
    error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    run TEXT NOT NULL DEFAULT '',  -- the run that claimed it
    PRIMARY KEY (target, kind, ticket_id, seq)
);
CREATE TABLE updates (
    target TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    row_number INTEGER NOT NULL,
    state TEXT NOT NULL,           -- failed (a later success removes the row)
    payload TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (target, ticket_id)
);
"""
_SCHEMA_V2 = """
CREATE TABLE reads (               -- tickets read by number (pull, push --check), schema 2
    target TEXT NOT NULL,
    number INTEGER NOT NULL,
    ticket TEXT,                   -- JSON: what was read (bulksync.api.ReadTicket), NULL: failed
    error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (target, number)
);
CREATE TABLE pulls (               -- a pull of one sheet: unfinished, the next one resumes it
    target TEXT NOT NULL,
    scope TEXT NOT NULL,
    started REAL NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (target, scope)
);
"""
_SCHEMA_V3 = """
CREATE TABLE aliases (             -- a token for the same workspace as another, schema 3
    target TEXT PRIMARY KEY,       -- this target's key (url + ' ' + fingerprint) ...
    same_as TEXT NOT NULL,         -- ... keeps its state under this one's
    at REAL NOT NULL
);
ALTER TABLE creates ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE creates ADD COLUMN own TEXT NOT NULL DEFAULT '{}';
CREATE TABLE runs (                -- every push, delete and undo that sent something, schema 3
    target TEXT NOT NULL,
    run TEXT NOT NULL,             -- the run's id (creates.run, sides.run)
    scope TEXT NOT NULL,           -- the sheet (its real path)
    command TEXT NOT NULL,         -- push | delete | undo
    started REAL NOT NULL,
    finished REAL,                 -- NULL: stopped before it ended (killed)
    counts TEXT NOT NULL DEFAULT '{}', -- JSON: created, updated, deleted, linked, replied, failed
    undoes TEXT NOT NULL DEFAULT '', -- an undo: the run it takes back
    undone REAL,                   -- when an undo finished taking this run back
    PRIMARY KEY (target, run)
);
CREATE INDEX runs_scope ON runs (target, scope, started);
CREATE TABLE changes (             -- what a run changed on a ticket, for undo, schema 3
    target TEXT NOT NULL,
    run TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    kind TEXT NOT NULL,            -- update | delete
    row_number INTEGER NOT NULL,
    before TEXT,                   -- JSON: the changed fields' values before the run (NULL: not known)
    after TEXT,                    -- JSON: the values the run gave them
    PRIMARY KEY (target, run, ticket_id, kind)
);
CREATE INDEX creates_run ON creates (target, run);
CREATE INDEX sides_run ON sides (target, run);
CREATE INDEX creates_ticket ON creates (target, ticket_id);
CREATE INDEX creates_scope ON creates (target, scope);
CREATE INDEX creates_number ON creates (target, ticket_number);
CREATE INDEX sides_ticket ON sides (target, ticket_id);
CREATE TABLE windows (             -- the rate-limit window the API last answered, per target
    target TEXT PRIMARY KEY,
    lim REAL NOT NULL,             -- X-RateLimit-Limit: requests per window
    span REAL NOT NULL,            -- seconds a window lasts (as far as the answers showed)
    remaining REAL,                -- X-RateLimit-Remaining of the last answer
    reset_at REAL,                 -- when that window resets (epoch seconds)
    at REAL NOT NULL
)
"""
# creates.lost and creates.own have no comment in their statements: SQLite would keep it inside
# the table's SQL. lost is 1 when the sheet lost the ticket's ID in a stale save (see
# CreateEntry.lost); own is the JSON of the row's own columns (the user's, not sent).
_MIGRATIONS = {2: _SCHEMA_V2, 3: _SCHEMA_V3}
"""Schema version → what takes a store of the version before to it."""
_SCHEMA = _SCHEMA_V1 + _SCHEMA_V2 + _SCHEMA_V3
"""A new store's schema; an older store gets the later versions' changes when opened."""


def state_home() -> Path:
    """Where bulksync keeps its state: ``$BULKSYNC_HOME``, else the user's state folder."""
    given = os.environ.get(HOME_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    import platformdirs

    return platformdirs.user_state_path("bulksync", appauthor=False)


def store_path() -> Path:
    return state_home() / STORE_NAME


def private_folder(folder: Path) -> None:
    """Make ``folder`` (and missing parents) and keep it for its owner only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)


@dataclass(frozen=True)
class Target:
    """The API a piece of state was learned from: its normalised URL and token fingerprint.

    The fingerprint is a slow salted hash (PBKDF2) cut to 64 bits: enough to tell
    tokens apart, useless for recovering one. ``fingerprint`` is empty when no token
    is known (``plan`` without one).
    """

    url: str
    fingerprint: str

    @classmethod
    def of(cls, api_url: str, token: str | None) -> Target:
        return cls(normalise_url(api_url), fingerprint(token) if token else "")

    @property
    def key(self) -> str:
        return f"{self.url} {self.fingerprint}"

    @property
    def local(self) -> bool:
        from bulksync.config import is_loopback

        return is_loopback(urlsplit(self.url).hostname or "")

    def __str__(self) -> str:
        token = f"token {self.fingerprint[:8]}" if self.fingerprint else "no token given"
        where = " (a local server: the sandbox, a rehearsal)" if self.local else ""
        return f"{self.url}{where}, {token}"


def normalise_url(url: str) -> str:
    """Scheme and host in lower case, no default port, no trailing slash, no credentials."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))


def fingerprint(token: str) -> str:
    """What the store knows a token by: 8 bytes of PBKDF2 (50,000 rounds), so that the store
    gives a token away no faster than guessing does.

    The rounds cost tens of milliseconds, which a script or notebook calling push, pull or
    undo again and again would pay on every call: each token's is computed once per process,
    kept by the token's SHA-256 (not by the token).
    """
    import hashlib

    key = hashlib.sha256(token.encode()).digest()
    known = _FINGERPRINTS.get(key)
    if known is None:
        known = hashlib.pbkdf2_hmac("sha256", token.encode(), b"bulksync target v1", 50_000)[:8].hex()
        if len(_FINGERPRINTS) >= 16:
            _FINGERPRINTS.clear()
        _FINGERPRINTS[key] = known
    return known


_FINGERPRINTS: dict[bytes, str] = {}


class UpdateRecord(NamedTuple):
    """A finished update (or a pull's or check's reading), as the journal records it."""

    ticket_id: str
    row_number: int
    payload: Mapping[str, Any]
    ok: bool
    error: str
    baseline: Mapping[str, str] | None
    """The ticket's cells after it (None: not known to have changed)."""
    before: Mapping[str, str] | None = None
    """A run's update: the changed fields' values before it (what undo puts back); None when
    bulksync had not seen the ticket before, or for a reading."""


@dataclass(frozen=True, kw_only=True)
class Window:
    """A rate-limit window as the API's headers told it."""

    limit: float
    span: float
    remaining: float | None = None
    reset_at: float | None = None

    def seconds_for(self, requests: int, now: float | None = None) -> float:
        """About how long ``requests`` take under this window: 0 when the window left holds
        them, else the wait for its reset and for each further window they need."""
        import math

        now = time.time() if now is None else now
        current = self.reset_at is not None and self.reset_at > now
        left = self.remaining if current and self.remaining is not None else self.limit
        if requests <= left:
            return 0.0
        first = (self.reset_at or now) - now if current else self.span
        return first + (math.ceil((requests - left) / self.limit) - 1) * self.span

    def said(self) -> str:
        return f"{self.limit:g} requests per {self.span:.0f} s"


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A run bulksync made from a sheet (see :meth:`Journal.runs`)."""

    run: str
    command: str
    started: float
    finished: float | None
    counts: Mapping[str, int]
    undoes: str = ""
    undone: float | None = None


class Changed(NamedTuple):
    """A ticket a run updated: the fields it changed, before (None: not known) and after."""

    ticket_id: str
    row_number: int
    before: Mapping[str, str] | None
    after: Mapping[str, str]


class RunEffects(NamedTuple):
    """What one run did to tickets (see :meth:`Journal.effects`)."""

    created: tuple[tuple[str, int | None, int, str], ...]
    """(ticketId, number, row, journal key) of each ticket it created."""
    updated: tuple[Changed, ...]
    deleted: tuple[tuple[str, int], ...]
    """(ticketId, row)."""
    sides: tuple[tuple[str, str, int], ...]
    """(link | reply, ticketId, seq) it posted."""


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
    scope: str = ""
    content: str = ""
    run: str = ""
    lost: bool = False
    """The sheet lost this ticket's ID (a save from a window opened before the push): a row
    without an ID in its place is held until the user says (see reconcile)."""
    own: Mapping[str, str] = field(default_factory=dict)
    """The row's own columns (the user's, not sent) when it was created, by header."""

    def settled_by(self, settle: float) -> float:
        """When the server was surely done with this create: when its answer came, else
        ``settle`` seconds (``--settle``) after it was sent."""
        return self.settled_at if self.settled_at is not None else self.sent_at + settle


_ENTRY = ("key, row_number, state, payload, ticket_id, ticket_number, error, lower_number, sent_at, "
          "settled_at, scope, content, run, lost, own")


def _entry(r: Sequence[Any]) -> CreateEntry:
    return CreateEntry(key=r[0], row_number=r[1], state=r[2], payload=json.loads(r[3]), ticket_id=r[4],
                       ticket_number=r[5], error=r[6], lower_number=r[7], sent_at=r[8], settled_at=r[9],
                       scope=r[10], content=r[11], run=r[12], lost=bool(r[13]), own=json.loads(r[14]))


def _connect(path: Path, *, create: bool) -> sqlite3.Connection | None:
    """The store at ``path``, checked; None if it does not exist and ``create`` is false.
    Called behind the guard (:func:`_guarded`), which says SQLite's and the system's errors."""
    if not path.exists():  # may raise (an I/O error, a folder that cannot be read): the guard says it
        if not create:
            return None
        _create(path)
    if path.stat().st_size == 0:
        raise StateError(path, "is empty (0 bytes): it was truncated")
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            raise StateError(path, "is not a bulksync state store (no schema version)")
        if version > SCHEMA_VERSION:
            raise StateError(path, f"was written by a newer bulksync (schema {version}); upgrade "
                                   "bulksync", recover=False)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("SELECT count(*) FROM targets").fetchone()
        if version < SCHEMA_VERSION:
            _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


BUSY = ("database is locked", "busy")
"""What an SQLite error says when another connection holds the store past the busy timeout."""
ENVIRONMENT = (
    (("disk is full",), "free some disk space, then run again; the store itself is not damaged"),
    (("disk i/o error",), "the disk could not be read or written: check the disk (and its free space), "
                          "then run again"),
    (("readonly", "read-only", "unable to open", "no such file", "permission denied"),
     "make it and its folder writable by you, then run again; the store itself is not damaged"),
    (("out of memory",), "the machine is out of memory: close other programs, then run again"),
)
"""What an SQLite error says when the machine, not the store, is at fault → what to do."""
_ERRNO_ADVICE = {
    errno.ENOSPC: "free some disk space, then run again",
    errno.EDQUOT: "free some disk space (or raise your quota), then run again",
    errno.EIO: "the disk could not be read or written: check the disk, then run again",
    errno.EACCES: "make it and its folder readable and writable by you, then run again",
    errno.EPERM: "make it and its folder readable and writable by you, then run again",
    errno.EROFS: "its file system is mounted read-only: make it writable, then run again",
}
"""What to do about a system error on the store's file, by its errno."""


def _advice(e: sqlite3.Error | OSError) -> str | None:
    """What to do when ``e`` is the machine's fault (a full disk, an I/O error, a folder that
    cannot be written, no memory), None when it is not."""
    if isinstance(e, OSError):
        return _ERRNO_ADVICE.get(e.errno or 0, "run again once that is fixed")
    text = str(e).lower()
    return next((advice for words, advice in ENVIRONMENT if any(w in text for w in words)), None)


def _said(e: sqlite3.Error | OSError) -> str:
    """The error as the system or SQLite said it (a system error with its errno's name)."""
    if isinstance(e, OSError) and e.strerror:
        name = errno.errorcode.get(e.errno or 0)
        return f"{e.strerror}, {name}" if name else e.strerror
    return str(e)


def _unusable(path: Path, e: sqlite3.Error | OSError) -> StateError:
    """The store cannot be used, said as what it is: busy (another run holds it), a full disk,
    an I/O error or a folder that cannot be written (what to do, run again), or an error
    SQLite did not expect; the advice to move the store aside is given only when SQLite's
    own integrity check finds it damaged. Says nothing of what the command had done (the
    command knows: :meth:`StateError.told`)."""
    text = _said(e)
    if isinstance(e, sqlite3.Error) and any(word in text.lower() for word in BUSY):
        return StateError(path, f"is busy ({text}): another bulksync run is using it; wait for it to "
                                "finish, then run again", recover=False)
    advice = _advice(e)
    if advice is not None:
        return StateError(path, f"cannot be used ({text}): {advice}", recover=False)
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as again:
        if any(word in str(again).lower() for word in BUSY) or _advice(again) is not None:
            return StateError(path, f"cannot be used ({text}); its integrity check could not run "
                                    f"({again}): run again", recover=False)
        verdict = str(again)
    if verdict == "ok":
        return StateError(path, f"failed unexpectedly ({type(e).__name__}: {text}); its integrity check "
                                "finds nothing wrong: run again, and report this if it happens again",
                          recover=False)
    return StateError(path, f"is damaged ({text}; its integrity check says: {verdict})")


def _guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a :class:`Journal` method, or a function that reads the store at
    ``path=``) with every failure of the store, SQLite's or the system's (a full disk, an I/O
    error, a folder that cannot be written, a busy or damaged store), a StateError naming
    the store (:func:`_unusable`), never a traceback. The one path: :class:`Journal` gets it
    on every public method and on opening (:func:`_guard_every_method`), the readers of the
    store by decorator."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (sqlite3.Error, OSError) as e:
            path = args[0].path if args and isinstance(args[0], Journal) else kwargs.get("path") or store_path()
            raise _unusable(path, e) from None
    return wrapper


def _migrate(db: sqlite3.Connection) -> None:
    """An older schema to this one (2: the reads of pulls; 3: token aliases and lost IDs), in
    one transaction; another process may do it first."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _create(path: Path) -> None:
    """Make a new store whole, then link it into place: no process ever sees a half-made one
    (and a store that exists but is empty is therefore damaged, never new)."""
    try:
        private_folder(path.parent)
        temp = path.with_name(f".{path.name}.{os.getpid()}.new")
        temp.unlink(missing_ok=True)
        temp.touch(mode=0o600)  # the store holds ticket contents: for its owner only
        db = sqlite3.connect(str(temp), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # One transaction, the schema version with it: one commit to sync, not one a table.
            db.executescript(f"BEGIN;\n{_SCHEMA};\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
        finally:
            db.close()
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process made it meanwhile: use theirs
        finally:
            temp.unlink(missing_ok=True)
    except (OSError, sqlite3.Error) as e:
        advice = _advice(e) or "run again"
        raise StateError(path, f"cannot be created ({_said(e)}): {advice}", recover=False) from None


@dataclass(frozen=True)
class View:
    """What the store knows for one target and one sheet, read without changing anything:
    the plan's input."""

    target: Target
    baselines: Mapping[str, dict[str, str]]
    creates: Mapping[str, CreateEntry]
    """This target's create entries, by key."""
    deleted: frozenset[str]
    foreign: Mapping[str, Target]
    """ticketId → the other target it is known on, for tickets not known on this one."""
    sides: Mapping[tuple[str, str, int], str] = field(default_factory=dict)
    """(link | reply, ticketId, seq) → state of the links and replies sent on this target."""

    @classmethod
    def empty(cls, target: Target) -> View:
        return cls(target, {}, {}, frozenset(), {})

    def others(self, contents: Iterable[str], scope: str) -> dict[str, CreateEntry]:
        """content → an entry of *another* sheet with the same cells (created or in flight)."""
        wanted = set(contents)
        out: dict[str, CreateEntry] = {}
        for e in self.creates.values():
            if e.scope != scope and e.content in wanted and e.state != "failed":
                if e.content not in out or e.state == "created":
                    out[e.content] = e
        return out


READS = " reads"
"""The windows table keeps a target's read window under its key with this added."""


@_guarded
def window_of(target: Target, *, path: Path | None = None, reads: bool = False) -> Window | None:
    """The rate-limit window ``target``'s API last answered (for ``reads``, or for writes: the
    two may differ), if the store knows one (read only)."""
    path = path or store_path()
    db = _connect(path, create=False)
    if db is None:
        return None
    try:
        row = db.execute("SELECT lim, span, remaining, reset_at FROM windows WHERE target = ?",
                         (_canonical(db, target.key) + (READS if reads else ""),)).fetchone()
    finally:
        db.close()
    return None if row is None else Window(limit=row[0], span=row[1], remaining=row[2], reset_at=row[3])


def _canonical(db: sqlite3.Connection, key: str) -> str:
    """The target key whose state ``key`` shares (a rotated token's: the first token's)."""
    row = db.execute("SELECT same_as FROM aliases WHERE target = ?", (key,)).fetchone()
    return str(row[0]) if row else key


@_guarded
def read_view(target: Target, ticket_ids: Iterable[str], *, path: Path | None = None,
              scope: str | None = None, keys: Iterable[str] = (), contents: Iterable[str] = ()) -> View:
    """The store's knowledge for ``target`` (and which of ``ticket_ids`` belong to others).
    Never creates the store. Without a token fingerprint, the URL's one known token is used.

    With ``scope`` (a sheet), only what that sheet needs is read, each by an index: the
    baselines and creates of ``ticket_ids``, the creates of the sheet, of its rows' journal
    ``keys`` and of the same ``contents`` elsewhere, and the links and replies of its
    tickets; a push costs what its sheet holds, not what the store has gathered. Without
    it, everything the store knows of the target (undo, and a few small reads)."""
    path = path or store_path()
    db = _connect(path, create=False)
    if db is None:
        return View.empty(target)
    try:
        if not target.fingerprint:  # aliases are one token: a rotated token's successor is not another
            known = [r[0] for r in db.execute(
                "SELECT fingerprint FROM targets WHERE url = ? AND target NOT IN "
                "(SELECT target FROM aliases)", (target.url,))]
            if len(known) != 1:
                return View.empty(target)
            target = Target(target.url, known[0])
        key = _canonical(db, target.key)
        ids = sorted({t for t in ticket_ids if t})

        def each(sql: str, values: Sequence[str], *extra: Any) -> Iterable[Sequence[Any]]:
            """``sql`` (with ``IN ({marks})``) over ``values`` in chunks, the target first."""
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                yield from db.execute(sql.format(marks=",".join("?" * len(chunk))), (key, *chunk, *extra))

        baselines: dict[str, dict[str, str]] = {}
        deleted: set[str] = set()
        rows = (db.execute("SELECT ticket_id, cells, deleted FROM tickets WHERE target = ?", (key,))
                if scope is None else
                each("SELECT ticket_id, cells, deleted FROM tickets WHERE target = ? AND ticket_id IN ({marks})", ids))
        for ticket_id, cells, gone in rows:
            if cells is not None:
                baselines[ticket_id] = json.loads(cells)
            if gone:
                deleted.add(ticket_id)
        if scope is None:
            creates = {r[0]: _entry(r) for r in db.execute(
                f"SELECT {_ENTRY} FROM creates WHERE target = ?", (key,))}
            sides_rows: Iterable[Sequence[Any]] = db.execute(
                "SELECT kind, ticket_id, seq, state FROM sides WHERE target = ?", (key,))
        else:
            found = [*db.execute(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND scope = ?", (key, scope)),
                     *each(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND key IN ({{marks}})",
                           sorted(set(keys))),
                     *each(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND ticket_id IN ({{marks}})", ids),
                     *each(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND content IN ({{marks}})",
                           sorted(set(contents)))]
            creates = {r[0]: _entry(r) for r in found}
            sides_rows = each("SELECT kind, ticket_id, seq, state FROM sides WHERE target = ? AND "
                              "ticket_id IN ({marks})", ids)
        mine = {e.ticket_id for e in creates.values() if e.ticket_id}
        foreign: dict[str, Target] = {}
        unknown = [t for t in ids if t not in baselines and t not in mine]
        for start in range(0, len(unknown), 500):
            chunk = unknown[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for ticket_id, url, fingerprint in db.execute(
                    "SELECT t.ticket_id, g.url, g.fingerprint FROM tickets t JOIN targets g "
                    f"ON g.target = t.target WHERE t.ticket_id IN ({marks}) AND t.target != ?",
                    (*chunk, key)):
                foreign.setdefault(ticket_id, Target(url, fingerprint))
        sides = {(kind, ticket_id, seq): state for kind, ticket_id, seq, state in sides_rows}
        return View(target=target, baselines=baselines, creates=creates, deleted=frozenset(deleted),
                    foreign=foreign, sides=sides)
    finally:  # a failure of the store is the guard's to say (@_guarded)
        db.close()


class Journal:
    """The store, as one run on one target sees it. Every method commits before it returns."""

    def __init__(self, target: Target, *, path: Path | None = None, run: str = "",
                 clock: Clock = SYSTEM) -> None:
        self.path = path or store_path()
        self.target = target
        self._clock = clock  # what every stamp reads (when a create was sent and answered: the settle time)
        self.run = run or f"{os.getpid()}-{self._clock.time():.6f}"
        db = _connect(self.path, create=True)
        assert db is not None
        self._db = db
        try:
            self._db.execute("INSERT OR IGNORE INTO targets (target, url, fingerprint, first_seen) "
                             "VALUES (?, ?, ?, ?)", (target.key, target.url, target.fingerprint,
                                                     self._clock.time()))
            self._key = _canonical(self._db, target.key)
            row = self._db.execute("SELECT max(ticket_number) FROM creates WHERE target = ?",
                                   (self._key,)).fetchone()
        except BaseException:
            self._db.close()
            raise
        self.highest_number: int | None = row[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- creates -------------------------------------------------------------

    def creates(self, keys: Iterable[str] | None = None) -> dict[str, CreateEntry]:
        """This target's create entries (those of ``keys``, each by its key), by key."""
        if keys is None:
            rows = self._db.execute(f"SELECT {_ENTRY} FROM creates WHERE target = ?", (self._key,))
            return {r[0]: _entry(r) for r in rows}
        wanted = sorted(set(keys))
        out: dict[str, CreateEntry] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            out.update((r[0], _entry(r)) for r in self._db.execute(
                f"SELECT {_ENTRY} FROM creates WHERE target = ? AND key IN ({','.join('?' * len(chunk))})",
                (self._key, *chunk)))
        return out

    def created_after(self, number: int | None) -> list[CreateEntry]:
        """This target's creates answered with a ticket number above ``number`` (all of them
        when None), by the index on numbers: what resolving an uncertain create reads around."""
        if number is None:
            rows = self._db.execute(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND state = 'created'",
                                    (self._key,))
        else:
            rows = self._db.execute(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND ticket_number > ? "
                                    "AND state = 'created'", (self._key, number))
        return [_entry(r) for r in rows]

    def intend(self, key: str, row_number: int, payload: Mapping[str, Any], *, scope: str = "",
               content: str = "", exclusive_content: bool = False,
               own: Mapping[str, str] | None = None) -> CreateEntry | None:
        """Claim the row and record that its create is about to be sent (committed before it
        is). Returns None when claimed, else the entry that stops it: the row created, or in
        flight in another run, or (``exclusive_content``) the same cells claimed by another sheet.
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # the check and the claim are one step
            row = self._db.execute(f"SELECT {_ENTRY} FROM creates WHERE target = ? AND key = ?",
                                   (self._key, key)).fetchone()
            if row is not None:
                entry = _entry(row)
                if entry.state == "created" or (entry.state in ("sending", "uncertain")
                                                and entry.run != self.run):
                    return entry
            if exclusive_content and content:
                other = self._db.execute(
                    f"SELECT {_ENTRY} FROM creates WHERE target = ? AND content = ? AND scope != ? "
                    "AND state != 'failed' LIMIT 1", (self._key, content, scope)).fetchone()
                if other is not None:
                    return _entry(other)
            self._db.execute(
                "INSERT INTO creates (target, key, scope, content, row_number, state, payload, "
                "lower_number, sent_at, run, own) VALUES (?, ?, ?, ?, ?, 'sending', ?, ?, ?, ?, ?) "
                "ON CONFLICT(target, key) DO UPDATE SET scope = excluded.scope, "
                "content = excluded.content, row_number = excluded.row_number, state = 'sending', "
                "payload = excluded.payload, error = '', lower_number = excluded.lower_number, "
                "sent_at = excluded.sent_at, settled_at = NULL, run = excluded.run, own = excluded.own, lost = 0",
                (self._key, key, scope, content, row_number, json.dumps(payload, sort_keys=True),
                 self._highest(), self._clock.time(), self.run, json.dumps(dict(own or {}), sort_keys=True)))
        return None

    def _highest(self) -> int | None:
        """The highest ticket number answered on this target so far (by any run)."""
        row = self._db.execute("SELECT max(ticket_number) FROM creates WHERE target = ?",
                               (self._key,)).fetchone()
        if row[0] is not None and (self.highest_number is None or row[0] > self.highest_number):
            self.highest_number = row[0]
        return self.highest_number

    def not_sent(self, key: str) -> None:
        """The create certainly was not processed (no connection, 429, 503): forget the intent."""
        self._db.execute("DELETE FROM creates WHERE target = ? AND key = ? AND state = 'sending'",
                         (self._key, key))

    def created(self, key: str, ticket_id: str, ticket_number: int | None,
                baseline: Mapping[str, str] | None = None) -> None:
        """Record the new ticket (and, in the same transaction, the cells it was made with)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE creates SET state = 'created', ticket_id = ?, ticket_number = ?, "
                             "error = '', settled_at = ? WHERE target = ? AND key = ?",
                             (ticket_id, ticket_number, self._clock.time(), self._key, key))
            self._ticket(ticket_id, baseline)
        if ticket_number is not None and (self.highest_number is None
                                          or ticket_number > self.highest_number):
            self.highest_number = ticket_number

    def adopt(self, key: str, *, scope: str, content: str, row_number: int, payload: Mapping[str, Any],
              ticket_id: str, ticket_number: int | None) -> None:
        """Record that this sheet's row is a ticket another sheet made (same cells). Its send
        time is recorded as 0 (long ago): it must never bound an uncertain create's window."""
        self._db.execute(
            "INSERT INTO creates (target, key, scope, content, row_number, state, payload, ticket_id, "
            "ticket_number, sent_at, settled_at, run) "
            "VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?) ON CONFLICT(target, key) DO NOTHING",
            (self._key, key, scope, content, row_number, json.dumps(payload, sort_keys=True),
             ticket_id, ticket_number, 0.0, 0.0, self.run))

    def uncertain(self, key: str, error: str, *, answered: bool, answer: str = "") -> None:
        """The outcome is unknown. ``answered``: the server did answer (with an error), so it is
        done; ``answer``: what it said, when that could not be believed."""
        self._db.execute("UPDATE creates SET state = 'uncertain', error = ?, settled_at = ?, answer = ? "
                         "WHERE target = ? AND key = ?",
                         (error, self._clock.time() if answered else None, answer, self._key, key))

    def owner(self, ticket_id: str) -> str | None:
        """The key of the row this target's ticket was created for, if any."""
        row = self._db.execute("SELECT key FROM creates WHERE target = ? AND ticket_id = ? "
                               "AND state = 'created' AND sent_at > 0 LIMIT 1",
                               (self._key, ticket_id)).fetchone()
        return row[0] if row else None

    def failed(self, key: str, error: str) -> None:
        """The server refused the create: no ticket was made."""
        self._db.execute("UPDATE creates SET state = 'failed', error = ?, settled_at = ? "
                         "WHERE target = ? AND key = ?", (error, self._clock.time(), self._key, key))

    def forget_unsettled(self, key: str) -> bool:
        """Forget a create proven absent, so it can be sent again: only while it is still
        in flight or uncertain (a created entry is never forgotten). True if it was."""
        cursor = self._db.execute("DELETE FROM creates WHERE target = ? AND key = ? AND state IN "
                                  "('sending', 'uncertain')", (self._key, key))
        return cursor.rowcount > 0

    # -- runs (for runs and undo) ----------------------------------------------

    def begin_run(self, scope: str, command: str, *, undoes: str = "") -> None:
        """Record that this run starts on the sheet ``scope`` (committed before it sends)."""
        self._db.execute("INSERT OR IGNORE INTO runs (target, run, scope, command, started, undoes) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (self._key, self.run, scope, command, self._clock.time(), undoes))

    def finish_run(self, counts: Mapping[str, int], *, requests: int) -> None:
        """Record what the run did; a run that sent nothing and changed nothing is forgotten."""
        if not requests and not any(counts.values()):
            self._db.execute("DELETE FROM runs WHERE target = ? AND run = ?", (self._key, self.run))
            return
        self._db.execute("UPDATE runs SET finished = ?, counts = ? WHERE target = ? AND run = ?",
                         (self._clock.time(), json.dumps(dict(counts), sort_keys=True), self._key, self.run))

    def learnt_window(self, window: Window, *, reads: bool = False) -> None:
        """Keep the rate-limit window the API answered (for the next run's estimate), of its
        reads or of its writes (Suptask documents a window for reads only)."""
        self._db.execute("INSERT INTO windows (target, lim, span, remaining, reset_at, at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target) DO UPDATE SET lim = excluded.lim, "
                         "span = max(span, excluded.span), remaining = excluded.remaining, "  # a short run's
                         "reset_at = excluded.reset_at, at = excluded.at",  # span is a window's tail
                         (self._key + (READS if reads else ""), window.limit, window.span, window.remaining,
                          window.reset_at, self._clock.time()))

    def window(self, *, reads: bool = False) -> Window | None:
        """The rate-limit window this target's API answered last (for reads, or writes), if any."""
        row = self._db.execute("SELECT lim, span, remaining, reset_at FROM windows WHERE target = ?",
                               (self._key + (READS if reads else ""),)).fetchone()
        return None if row is None else Window(limit=row[0], span=row[1], remaining=row[2], reset_at=row[3])

    def counts(self) -> dict[str, int]:
        """What the store knows of this target: sheets, tickets, runs."""
        return {"sheets": int(self._db.execute("SELECT count(DISTINCT scope) FROM creates WHERE target = ?",
                                               (self._key,)).fetchone()[0]),
                "tickets": int(self._db.execute("SELECT count(*) FROM tickets WHERE target = ?",
                                                (self._key,)).fetchone()[0]),
                "runs": int(self._db.execute("SELECT count(*) FROM runs WHERE target = ?",
                                             (self._key,)).fetchone()[0])}

    def runs(self, scope: str) -> list[RunRecord]:
        """The runs made from the sheet ``scope`` on this target, oldest first."""
        return [RunRecord(run=r[0], command=r[1], started=r[2], finished=r[3], counts=json.loads(r[4]),
                          undoes=r[5], undone=r[6])
                for r in self._db.execute(
                    "SELECT run, command, started, finished, counts, undoes, undone FROM runs "
                    "WHERE target = ? AND scope = ? ORDER BY started, run", (self._key, scope))]

    def effects(self, run: str) -> RunEffects:
        """What ``run`` did to tickets: created (by its own requests, not matched), updated
        (fields before and after), deleted, and the links and replies it posted."""
        created = sorted(((str(r[0]), r[1], int(r[2]), str(r[3])) for r in self._db.execute(
            "SELECT ticket_id, ticket_number, row_number, key FROM creates WHERE target = ? AND run = ? "
            "AND state = 'created' AND sent_at > 0 AND ticket_id IS NOT NULL", (self._key, run))),
            key=lambda c: (c[1] if c[1] is not None else 1 << 62, c[2]))
        updated, deleted = [], []
        for ticket_id, kind, row, before, after in self._db.execute(
                "SELECT ticket_id, kind, row_number, before, after FROM changes WHERE target = ? AND run = ? "
                "ORDER BY row_number, ticket_id", (self._key, run)):
            if kind == "delete":
                deleted.append((str(ticket_id), int(row)))
            else:
                updated.append(Changed(str(ticket_id), int(row), None if before is None else json.loads(before),
                                       json.loads(after or "{}")))
        sides = sorted((str(k), str(t), int(q)) for k, t, q in self._db.execute(
            "SELECT kind, ticket_id, seq FROM sides WHERE target = ? AND run = ? AND state = 'done'",
            (self._key, run)))
        return RunEffects(tuple(created), tuple(updated), tuple(deleted), tuple(sides))

    def later_changes(self, run: str) -> dict[str, dict[str, str]]:
        """ticketId → field → the id of a run after ``run`` (on any sheet) that changed it and
        stands: undone runs, and the undos themselves, have left nothing to keep."""
        out: dict[str, dict[str, str]] = {}
        started = self._db.execute("SELECT started FROM runs WHERE target = ? AND run = ?",
                                   (self._key, run)).fetchone()
        if started is None:
            return out
        for later, ticket_id, after in self._db.execute(
                "SELECT c.run, c.ticket_id, c.after FROM changes c JOIN runs r ON r.target = c.target "
                "AND r.run = c.run WHERE c.target = ? AND c.kind = 'update' AND r.started > ? "
                "AND r.undoes = '' AND r.undone IS NULL ORDER BY r.started", (self._key, started[0])):
            for name in json.loads(after or "{}"):
                out.setdefault(str(ticket_id), {}).setdefault(name, str(later))
        return out

    def numbers(self, ticket_ids: Iterable[str]) -> dict[str, int]:
        """ticketId → its number, as the creates and the reads of this target know it."""
        wanted = set(ticket_ids)
        return {str(t): int(n) for t, n in self._each(
            "SELECT ticket_id, ticket_number FROM creates WHERE target = ? AND ticket_id IN ({marks}) "
            "AND ticket_number IS NOT NULL", wanted)}

    def undone(self, run: str, deleted: Iterable[str], *, whole: bool) -> None:
        """An undo of ``run`` took back its creates ``deleted``: their rows are new rows again
        (nothing of them is recovered); ``whole``: everything it could take back is, so the
        run is marked undone."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM creates WHERE target = ? AND run = ? AND ticket_id = ?",
                                 [(self._key, run, t) for t in deleted])
            if whole:
                self._db.execute("UPDATE runs SET undone = ? WHERE target = ? AND run = ?",
                                 (self._clock.time(), self._key, run))

    def tickets_of(self, scope: str, ticket_ids: Iterable[str] = ()) -> set[str]:
        """The tickets the state keeps for the sheet ``scope``: those it created, those its runs
        changed, and ``ticket_ids`` (the sheet's own)."""
        out = set(ticket_ids)
        out.update(str(r[0]) for r in self._db.execute(
            "SELECT ticket_id FROM creates WHERE target = ? AND scope = ? AND ticket_id IS NOT NULL",
            (self._key, scope)))
        out.update(str(r[0]) for r in self._db.execute(
            "SELECT c.ticket_id FROM changes c JOIN runs r ON r.target = c.target AND r.run = c.run "
            "WHERE c.target = ? AND r.scope = ?", (self._key, scope)))
        return out

    def holding(self, scope: str, ticket_ids: Iterable[str] = ()) -> dict[str, int]:
        """How much the state keeps for the sheet: its tickets' fields as last synced, its
        rows' identities, its runs and their changes (``bulksync runs``)."""
        tickets = self.tickets_of(scope, ticket_ids)
        known = sum(1 for t in tickets if self._db.execute(
            "SELECT 1 FROM tickets WHERE target = ? AND ticket_id = ? AND cells IS NOT NULL",
            (self._key, t)).fetchone())
        rows = self._db.execute("SELECT count(*) FROM creates WHERE target = ? AND scope = ?",
                                (self._key, scope)).fetchone()[0]
        runs = self._db.execute("SELECT count(*) FROM runs WHERE target = ? AND scope = ?",
                                (self._key, scope)).fetchone()[0]
        return {"tickets": known, "rows": int(rows), "runs": int(runs)}

    def forget(self, scope: str, ticket_ids: Iterable[str] = ()) -> dict[str, int]:
        """Remove what the state keeps for the sheet ``scope`` (see :meth:`holding`), the text
        gone from the store's bytes: deleted pages are overwritten (secure_delete), the
        write-ahead log emptied and the file rebuilt (VACUUM)."""
        held = self.holding(scope, ticket_ids)
        shared = {str(r[0]) for r in self._db.execute(  # other sheets still need these tickets' fields
            "SELECT ticket_id FROM creates WHERE target = ? AND scope != ? AND ticket_id IS NOT NULL "
            "UNION SELECT c.ticket_id FROM changes c JOIN runs r ON r.target = c.target AND r.run = c.run "
            "WHERE c.target = ? AND r.scope != ?", (self._key, scope, self._key, scope))}
        tickets = sorted(self.tickets_of(scope, ticket_ids) - shared)
        self._db.execute("PRAGMA secure_delete = ON")
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            runs = [r[0] for r in self._db.execute("SELECT run FROM runs WHERE target = ? AND scope = ?",
                                                   (self._key, scope))]
            self._db.executemany("DELETE FROM changes WHERE target = ? AND run = ?", [(self._key, r) for r in runs])
            self._db.execute("DELETE FROM runs WHERE target = ? AND scope = ?", (self._key, scope))
            self._db.execute("DELETE FROM creates WHERE target = ? AND scope = ?", (self._key, scope))
            self._db.execute("DELETE FROM pulls WHERE target = ? AND scope = ?", (self._key, scope))
            for table in ("tickets", "updates", "sides"):
                self._db.executemany(f"DELETE FROM {table} WHERE target = ? AND ticket_id = ?",
                                     [(self._key, t) for t in tickets])
            wanted = set(tickets)
            gone = [n for n, ticket in self._db.execute(
                "SELECT number, ticket FROM reads WHERE target = ? AND ticket IS NOT NULL", (self._key,))
                if json.loads(ticket).get("ticket_id") in wanted]
            self._db.executemany("DELETE FROM reads WHERE target = ? AND number = ?",
                                 [(self._key, n) for n in gone])
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return held

    def mark_lost(self, keys: Iterable[str], *, settled: Iterable[str] = (), scope: str = "") -> None:
        """The sheet no longer holds these creates' IDs while rows stand in their place (a stale
        save): held until the user says, however many IDs are recovered meanwhile. ``settled``:
        creates the user relinked; ``scope``: a sheet whose every such create the user chose
        to leave (--allow-duplicates)."""
        with self._db:
            self._db.execute("BEGIN")
            if scope:
                self._db.execute("UPDATE creates SET lost = 0 WHERE target = ? AND scope = ? AND lost = 1",
                                 (self._key, scope))
            self._db.executemany("UPDATE creates SET lost = 0 WHERE target = ? AND key = ?",
                                 [(self._key, k) for k in settled])
            self._db.executemany("UPDATE creates SET lost = 1 WHERE target = ? AND key = ?",
                                 [(self._key, k) for k in keys])

    def same_workspace(self, earlier: Target) -> None:
        """This run's token reads the tickets ``earlier`` made: one workspace. From now on this
        target's state is kept with (and its own merged into) the earlier target's."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            into = _canonical(self._db, earlier.key)
            if into == self._key:
                return
            for table in ("creates", "tickets", "sides", "updates", "reads", "pulls", "runs", "changes"):
                self._db.execute(f"UPDATE OR REPLACE {table} SET target = ? WHERE target = ?",
                                 (into, self._key))
            # Every token whose state was kept under this one's now keeps it under ``into``.
            self._db.execute("UPDATE aliases SET same_as = ? WHERE same_as = ?", (into, self._key))
            for key in {self.target.key, self._key}:
                self._db.execute("INSERT OR REPLACE INTO aliases (target, same_as, at) VALUES (?, ?, ?)",
                                 (key, into, self._clock.time()))
        self._key = into

    # -- tickets and baselines -------------------------------------------------

    def _ticket(self, ticket_id: str, cells: Mapping[str, str] | None) -> None:
        self._db.execute("INSERT INTO tickets (target, ticket_id, cells, at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(target, ticket_id) DO UPDATE SET "
                         "cells = coalesce(excluded.cells, cells), at = excluded.at",
                         (self._key, ticket_id,
                          json.dumps(cells, sort_keys=True) if cells is not None else None, self._clock.time()))

    # -- reads by number (pull) ----------------------------------------------------------

    def pull_since(self, scope: str) -> float:
        """When the pull of this sheet began: an unfinished one's start (the pull resumes it,
        and what it read since is not read again), else now (a new pull)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT started, finished FROM pulls WHERE target = ? AND scope = ?",
                                   (self._key, scope)).fetchone()
            if row is not None and not row[1]:
                return float(row[0])
            now = self._clock.time()
            self._db.execute("INSERT INTO pulls (target, scope, started) VALUES (?, ?, ?) ON CONFLICT"
                             "(target, scope) DO UPDATE SET started = excluded.started, finished = 0",
                             (self._key, scope, now))
            return now

    def pull_finished(self, scope: str) -> None:
        self._db.execute("UPDATE pulls SET finished = 1 WHERE target = ? AND scope = ?", (self._key, scope))

    def read_done(self, number: int, ticket: Mapping[str, Any] | None, error: str) -> None:
        """Record a read as soon as it is done (committed: a kill loses no read)."""
        self._db.execute("INSERT INTO reads (target, number, ticket, error, at) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT(target, number) DO UPDATE SET ticket = excluded.ticket, "
                         "error = excluded.error, at = excluded.at",
                         (self._key, number, None if ticket is None else json.dumps(ticket), error,
                          self._clock.time()))

    def _each(self, sql: str, values: Iterable[Any]) -> Iterator[Sequence[Any]]:
        """``sql`` (with ``IN ({marks})``, the target first) over ``values``, 500 at a time."""
        wanted = sorted(set(values))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            yield from self._db.execute(sql.format(marks=",".join("?" * len(chunk))), (self._key, *chunk))

    def baseline_times(self, ticket_ids: Iterable[str]) -> dict[str, float]:
        """ticketId → when bulksync last recorded what the ticket holds (a push or a pull)."""
        return {str(t): float(at) for t, at in self._each(
            "SELECT ticket_id, at FROM tickets WHERE target = ? AND ticket_id IN ({marks})", ticket_ids)}

    def reads(self, numbers: Iterable[int]) -> dict[int, tuple[float, dict[str, Any] | None, str]]:
        """number → (when it was last read, what was read or None, the error)."""
        return {int(number): (float(at), json.loads(ticket) if ticket else None, str(error))
                for number, ticket, error, at in self._each(
                    "SELECT number, ticket, error, at FROM reads WHERE target = ? AND number IN ({marks})", numbers)}

    def deleted_many(self, ticket_ids: Iterable[str], rows: Mapping[str, int] | None = None) -> None:
        """Record tickets deleted on this target (a later delete of them is already done), and
        as this run's changes (``rows``: their rows in the sheet)."""
        now = self._clock.time()
        gone = list(ticket_ids)
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO tickets (target, ticket_id, deleted, at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT(target, ticket_id) DO UPDATE SET deleted = 1, at = excluded.at",
                [(self._key, t, now) for t in gone])
            self._db.executemany(
                "INSERT OR IGNORE INTO changes (target, run, ticket_id, kind, row_number) "
                "VALUES (?, ?, ?, 'delete', ?)", [(self._key, self.run, t, (rows or {}).get(t, 0)) for t in gone])

    # -- links and replies ---------------------------------------------------

    def claim_side(self, kind: str, ticket_id: str, seq: int, *, take_over: bool = False) -> str | None:
        """Claim a link or reply and record that it is about to be sent (one step). Returns
        None when claimed, else the state that stops it: ``done``, or ``sending`` /
        ``uncertain`` from another run (a copy of the sheet pushed at the same time), unless
        ``take_over`` (the user checked, and asks to send unresolved ones again)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT state, run FROM sides WHERE target = ? AND kind = ? AND "
                                   "ticket_id = ? AND seq = ?", (self._key, kind, ticket_id, seq)).fetchone()
            if row is not None and (row[0] == "done" or (
                    row[0] in ("sending", "uncertain") and row[1] != self.run and not take_over)):
                return str(row[0])
            self._db.execute("INSERT INTO sides (target, kind, ticket_id, seq, state, at, run) "
                             "VALUES (?, ?, ?, ?, 'sending', ?, ?) ON CONFLICT(target, kind, ticket_id, seq) "
                             "DO UPDATE SET state = 'sending', error = '', at = excluded.at, run = excluded.run",
                             (self._key, kind, ticket_id, seq, self._clock.time(), self.run))
        return None

    def side(self, kind: str, ticket_id: str, seq: int, state: str, error: str = "") -> None:
        self._db.execute("INSERT INTO sides (target, kind, ticket_id, seq, state, error, at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(target, kind, ticket_id, seq) "
                         "DO UPDATE SET state = excluded.state, error = excluded.error, at = excluded.at",
                         (self._key, kind, ticket_id, seq, state, error, self._clock.time()))

    def forget_side(self, kind: str, ticket_id: str, seq: int) -> None:
        self._db.execute("DELETE FROM sides WHERE target = ? AND kind = ? AND ticket_id = ? AND seq = ?",
                         (self._key, kind, ticket_id, seq))

    # -- updates -------------------------------------------------------------

    def updates(self, ticket_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """ticketId → (state, error) of the updates of ``ticket_ids`` whose last attempt failed."""
        return {r[0]: (r[1], r[2]) for r in self._each(
            "SELECT ticket_id, state, error FROM updates WHERE target = ? AND ticket_id IN ({marks})", ticket_ids)}

    def updated_many(self, records: Sequence[UpdateRecord], *, seen_at: float | None = None) -> None:
        """Record finished updates in one transaction. Updates are idempotent, so they are
        written in batches; a crash loses at most a batch, and the next push then simply
        sends those rows again. A successful update of a run (``payload``) is also a change
        of that run: its fields before and after, for undo.

        A failed update is kept (with its body and error) for ``--only-failed``; a
        successful one leaves only its new baseline, and clears an earlier failure.
        ``seen_at``: when the baselines were read (a pull), instead of now.
        """
        now = self._clock.time()
        dumps = _memo_dumps()
        target = self._key
        when = now if seen_at is None else seen_at  # a pull's baselines: as of when it read
        listed = {str(r[0]) for r in self._each(
            "SELECT ticket_id FROM updates WHERE target = ? AND ticket_id IN ({marks})",
            (r.ticket_id for r in records))}
        failed = [(target, r.ticket_id, r.row_number, dumps(r.payload), r.error, now)
                  for r in records if not r.ok]
        cleared = [(target, r.ticket_id) for r in records if r.ok and r.ticket_id in listed]
        changed = [(target, self.run, r.ticket_id, r.row_number,
                    None if r.before is None else json.dumps(r.before, sort_keys=True),
                    json.dumps({k: (r.baseline or {}).get(k, "") for k in changed_fields(r.payload)}, sort_keys=True))
                   for r in records if r.ok and r.payload]
        with self._db:
            self._db.execute("BEGIN")
            if failed:
                self._db.executemany(
                    "INSERT INTO updates (target, ticket_id, row_number, state, payload, error, at) "
                    "VALUES (?, ?, ?, 'failed', ?, ?, ?) ON CONFLICT(target, ticket_id) DO UPDATE SET "
                    "row_number = excluded.row_number, state = excluded.state, "
                    "payload = excluded.payload, error = excluded.error, at = excluded.at", failed)
            if cleared:
                self._db.executemany("DELETE FROM updates WHERE target = ? AND ticket_id = ?", cleared)
            self._db.executemany(
                "INSERT INTO tickets (target, ticket_id, cells, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(target, ticket_id) DO UPDATE SET cells = excluded.cells, at = excluded.at",
                [(target, r.ticket_id, dumps(r.baseline), when) for r in records if r.baseline is not None])
            self._db.executemany(
                "INSERT INTO changes (target, run, ticket_id, kind, row_number, before, after) "
                "VALUES (?, ?, ?, 'update', ?, ?, ?) ON CONFLICT(target, run, ticket_id, kind) DO UPDATE "
                "SET after = excluded.after", changed)



def learn(target: Target, learnt: Mapping[str, Mapping[str, str]]) -> None:
    """Add what a check, a pull or an undo saw on the server to the tickets' baselines (merged
    on top of what the run itself recorded): called only once the sheet holds those values."""
    if not learnt:
        return
    current = read_view(target, list(learnt), scope="").baselines
    records: list[UpdateRecord] = []
    for ticket_id, cells in learnt.items():
        merged = {**current.get(ticket_id, {}), **cells}
        records.append(UpdateRecord(ticket_id=ticket_id, row_number=0, payload={}, ok=True, error="",
                                    baseline={k: v for k, v in merged.items() if v}))
    with Journal(target) as journal:
        journal.updated_many(records)


def _guard_every_method(cls: type) -> None:
    """Every public method of ``cls``, and its opening, behind the guard (:func:`_guarded`):
    one added later is covered too, without a list."""
    for name, value in list(vars(cls).items()):
        if callable(value) and (not name.startswith("_") or name == "__init__"):
            setattr(cls, name, _guarded(value))


_guard_every_method(Journal)


def changed_fields(payload: Mapping[str, Any]) -> list[str]:
    """The cells an update's body sets or clears (custom fields by their column name)."""
    from bulksync.plan import cells_of_payload

    cells = set(cells_of_payload(payload))
    return sorted(cells | {k for k, v in payload.items() if k != "customFields" and (v is None or v == [])})


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
