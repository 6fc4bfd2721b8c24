"""Suggest a mapping file from an export itself (``bulksync mapping suggest``; the map stage, pure).

:func:`suggest` reads every value of a :class:`~bulksync.sheets.read.Table` and chooses, with
a reason for each choice: the legacy ID (a column that is unique, never empty and ID-like,
preferring a header that says so), the description (a subject, then a body), the status and
priority columns with a value map covering every distinct value of the file, the requester
and assignee (emails or user names, for ``--users``), the tags and their separator, and the
integration name, and whether a bundled preset reads the file as it is (then that is the
advice). :func:`render` writes it as a mapping file in the presets' format, each choice
commented with why; a guess is marked ``# check`` (a value it could not place, a column chosen
by its values alone, an integration name not given: it is part of each row's identity), and
``mapping.load_mapping`` lists those marks as notes until they are removed. Each distinct
value is judged once, however many rows hold it.

What it cannot know: a workflow's own words (``Waiting on ThingTrax``) get a guess from the
words they contain, marked; a column that holds people by an internal number cannot be told
from any other number; a header in another language is matched by its values only.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from bulksync.columns import OWNED_COLUMNS, PRIORITIES, STATUSES, TICKET_ID, toml_string
from bulksync.errors import SheetError
from bulksync.sheets.read import HEADER_SEARCH, normal_header
from bulksync.untrusted import clean

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from bulksync.mapping import ColumnMapping
    from bulksync.sheets.table import Table

__all__ = ["HeaderBelow", "PRIORITIES", "STATUSES", "Suggestion", "names_a_column", "render", "suggest",
           "toml_string"]

_OPEN, _PROGRESS, _ESCALATED, _WAITING, _HOLD, _CLOSED = STATUSES
_LOW, _MEDIUM, _HIGH, _CRITICAL = PRIORITIES

STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(("new", "open", "opened", "to do", "todo", "backlog", "reopened", "re-opened",
                     "untriaged", "triage", "not started", "submitted", "received", "requested",
                     "unassigned", "selected for development", "pending approval",
                     "nouveau", "ouvert", "nuevo", "abierto", "neu", "offen", "novo", "aberto", "nieuw"),
                    _OPEN),
    **dict.fromkeys(("in progress", "in-progress", "inprogress", "work in progress", "wip", "doing",
                     "working", "active", "assigned", "in review", "review", "under review",
                     "investigating", "analyzing", "analysing", "in development", "started",
                     "ongoing", "processing", "acknowledged", "accepted", "confirmed", "testing",
                     "in testing", "qa", "implementing", "en cours", "en curso", "en progreso",
                     "in bearbeitung", "em andamento", "in behandeling"), _PROGRESS),
    **dict.fromkeys(("escalated", "escalation"), _ESCALATED),
    **dict.fromkeys(("pending", "waiting", "waiting for customer", "waiting on customer",
                     "awaiting customer", "waiting for reporter", "waiting for response",
                     "awaiting response", "awaiting reply", "customer reply", "needs info",
                     "need info", "info needed", "more info", "feedback", "pending customer",
                     "waiting for user", "awaiting user info", "pending reminder",
                     "pending close", "pending auto close", "en attente", "pendiente", "en espera",
                     "wartend", "aguardando"), _WAITING),
    **dict.fromkeys(("hold", "on hold", "onhold", "on-hold", "paused", "blocked", "deferred",
                     "postponed", "suspended", "waiting on third party", "waiting for vendor",
                     "waiting on vendor", "parked", "later", "frozen", "icebox"), _HOLD),
    **dict.fromkeys(("closed", "resolved", "done", "fixed", "solved", "completed", "complete",
                     "finished", "cancelled", "canceled", "rejected", "won't fix", "wontfix",
                     "won't do", "duplicate", "invalid", "archived", "not a bug", "declined",
                     "obsolete", "verified", "delivered", "deployed", "released", "merged",
                     "closed (resolved)", "closed (unresolved)", "works for me", "worksforme",
                     "resolu", "ferme", "clos", "termine", "resuelto", "cerrado", "terminado", "geschlossen",
                     "erledigt", "gelost", "resolvido", "fechado", "opgelost", "gesloten"), _CLOSED),
}
"""A status word (as :func:`_fold` compares it: no case, no accents, spaces collapsed; a few
French, Spanish, Portuguese, German and Dutch ones too) → Suptask's."""

_STATUS_STEMS = (("third party", _HOLD), ("vendor", _HOLD), ("hold", _HOLD), ("block", _HOLD),
                 ("escalat", _ESCALATED), ("wait", _WAITING), ("pending", _WAITING),
                 ("await", _WAITING), ("progress", _PROGRESS), ("review", _PROGRESS),
                 ("assign", _PROGRESS), ("clos", _CLOSED), ("resolv", _CLOSED), ("done", _CLOSED),
                 ("complet", _CLOSED), ("fix", _CLOSED), ("solv", _CLOSED), ("cancel", _CLOSED),
                 ("reject", _CLOSED), ("open", _OPEN), ("new", _OPEN))
"""Parts of words that say a status, for a workflow's own names: a guess, marked ``# check``."""

PRIORITY_WORDS: dict[str, str] = {
    **dict.fromkeys(("critical", "urgent", "blocker", "highest", "emergency", "immediate", "asap",
                     "showstopper", "very high", "top", "p0", "p1", "sev1", "sev 1", "s1",
                     "severity 1", "1", "critique", "urgente", "critico", "kritisch", "dringend"), _CRITICAL),
    **dict.fromkeys(("high", "major", "important", "p2", "sev2", "sev 2", "s2", "severity 2", "2", "haute",
                     "elevee", "alta", "alto", "hoch"), _HIGH),
    **dict.fromkeys(("medium", "normal", "moderate", "standard", "average", "default", "p3",
                     "sev3", "sev 3", "s3", "severity 3", "3", "moyenne", "normale", "media", "medio",
                     "mittel"), _MEDIUM),
    **dict.fromkeys(("low", "minor", "trivial", "lowest", "planning", "very low", "cosmetic", "wish",
                     "p4", "p5", "sev4", "sev 4", "s4", "severity 4", "4", "5", "basse", "faible", "baja",
                     "bajo", "baixa", "niedrig"), _LOW),
    **dict.fromkeys(("-", "none", "unknown", "not set", "unset", "n/a", "no priority", "null"), ""),
}
"""A priority word → the template's priority; ``""``: no priority."""

_HINTS = {
    "legacy": ("id", "key", "issuekey", "issueid", "ticketid", "ticketnumber", "ticketno", "ticket#", "number",
               "#", "no", "issuenumber", "incidentnumber", "incidentid", "caseid", "casenumber",
               "ref", "reference", "requestid", "bugid"),
    "subject": ("subject", "title", "summary", "shortdescription", "issuetitle", "tickettitle",
                "name", "topic", "headline"),
    "body": ("description", "body", "content", "details", "message", "text", "problem",
             "longdescription", "issuedescription", "ticketdescription", "question"),
    "status": ("status", "state", "ticketstatus", "issuestatus", "incidentstate", "currentstatus",
               "stage"),
    "priority": ("priority", "urgency", "severity", "importance", "impact", "ticketpriority",
                 "issuepriority"),
    "requester": ("requesteremail", "requester", "reporteremail", "reporter", "authorusername",
                  "author", "callerid", "caller", "customeremail", "customer", "contactemail",
                  "contact", "contactid", "email", "fromemail", "from", "submitter",
                  "createdby", "openedby", "requestedby", "user", "client", "raisedby", "creator"),
    "assignee": ("assigneeemail", "assigneeusername", "assignee", "assignedto", "agent", "owner",
                 "technician", "responsible", "handler", "assigned", "resolver", "assigneduser"),
    "tags": ("tags", "labels", "label", "tag", "keywords"),
    "created": ("created", "createdat", "createdon", "datecreated", "createdtime", "createdatutc",
                "openedat", "opened", "creationdate", "submittedat", "datesubmitted", "date"),
}
"""Headers that say what a column is (compared as ``normal_header`` makes them), best first."""

_NOBODY = ("none", "unassigned", "nobody", "-", "n/a", "null", "not specified", "(none)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_USERNAME = re.compile(r"[\w.+-]{2,64}")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}\d*(?:[-_#][A-Za-z0-9]{1,16}){0,3}(?<=\d)|#?\d{1,18}"
                  r"|[0-9a-fA-F-]{32,36}")
"""An ID as tools write them: ``ABC-123``, ``INC0010112``, ``HD-2024-00123``, ``42``, ``#42``,
a UUID (a key ends in digits)."""
_DATE = re.compile(r"\d{1,4}[-/.][0-9A-Za-z]{1,3}[-/.]\d{1,4}([ T]\s*\d{1,2}:\d{2}.*)?")
_NUMBERED = re.compile(r"^(?:p|sev|s)?\s*(\d)\s*[-:.)]\s*([^\W\d_].*)$")
"""ServiceNow's ``1 - Critical``, ``P1-Immediate``: a rank, then a word (a decimal number,
``1.2``, is a version or an amount, never a rank and a word)."""
FEW = 30
"""A status or priority column has at most this many distinct values."""


@dataclass(frozen=True)
class Profile:
    """What a column holds, read from every cell (each distinct value judged once)."""

    header: str
    position: int
    counts: MappingABC[str, int]
    """Each distinct cell, stripped (``""`` too) → how many rows hold it, in the order of the rows."""
    filled: int
    distinct: int
    mean_length: float
    emails: float
    usernames: float
    keys: float
    dates: float
    numbers: float

    @property
    def name(self) -> str:
        return normal_header(self.header)

    @property
    def values(self) -> tuple[str, ...]:
        """Its distinct filled values, first seen first."""
        return tuple(v for v in self.counts if v)

    def hint(self, kind: str) -> int:
        """How well the header says ``kind``: 0 not at all, 1 some of its words do (``Old
        Ticket ID``), else higher the better (the header is one of the hints)."""
        hints = _HINTS[kind]
        if self.name in hints:
            return len(hints) - hints.index(self.name) + 100
        words = _words(self.header)
        runs = {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
        return 1 if any(h in runs for h in hints if len(h) > 3 and h not in _ANY_NUMBER) else 0

    @property
    def is_text(self) -> bool:
        """Free text: words, not IDs, dates, numbers or addresses."""
        return (self.filled > 0 and self.emails < 0.5 and self.dates < 0.5 and self.numbers < 0.5
                and self.keys < 0.5 and any(re.search(r"[^\W\d_]", v) for v in self.values))


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_ANY_NUMBER = ("number", "reference")
"""Hints that say an ID only as the whole header: a ``Serial Number`` or an ``Order
Reference`` is some other thing's."""


def _words(header: str) -> list[str]:
    """The words of a header, as :func:`normal_header` writes each (``ticketId``, ``Ticket
    ID`` and ``ticket_id``: ``ticket``, ``id``)."""
    return [w.casefold() for w in re.findall(r"[^\W_]+|#", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header))]


def profile(table: Table, frame: pd.DataFrame | None = None) -> list[Profile]:
    """Every named column of ``table`` (the first of a repeated header; not bulksync's own),
    read from ``frame`` (default: the table's rows). A column of 50,000 rows holds a few
    hundred distinct values at most, but for its IDs and texts: each is judged once."""
    frame = table.frame if frame is None else frame
    out: list[Profile] = []
    seen: set[str] = set()
    for position, header in enumerate(table.header):
        name = header.strip()
        if not name or name in seen or name in OWNED_COLUMNS:
            continue
        seen.add(name)
        counts: dict[str, int] = {}
        for raw, k in Counter(frame[position].tolist()).items():  # strip each distinct value once
            value = str(raw).strip()
            counts[value] = counts.get(value, 0) + k
        filled = len(frame) - counts.get("", 0)
        n = max(1, filled)

        def share(pattern: re.Pattern[str], counts: dict[str, int] = counts, n: int = n) -> float:
            return sum(k for v, k in counts.items() if v and pattern.fullmatch(v)) / n

        out.append(Profile(header=name, position=position, counts=counts, filled=filled,
                           distinct=len({v.casefold() for v in counts if v}),
                           mean_length=sum(len(v) * k for v, k in counts.items()) / n, emails=share(_EMAIL),
                           usernames=share(_USERNAME), keys=share(_KEY), dates=share(_DATE),
                           numbers=share(_NUMBER)))
    return out


@dataclass(frozen=True)
class Mapped:
    """One source value in a value map: its Suptask value, how many rows hold it, and why."""

    value: str
    """As the file writes it (the map's key is it casefolded)."""
    target: str
    rows: int
    why: str
    sure: bool


@dataclass(frozen=True)
class ValueChoice:
    field: str
    column: str
    why: str
    values: tuple[Mapped, ...]
    sure: bool = True
    """False: no header says so, the column was chosen by its values alone."""


@dataclass(frozen=True)
class Choice:
    column: str
    why: str
    sure: bool = True


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """A mapping suggested for one export, each choice with why."""

    source: str
    rows: int
    integration: Choice
    legacy_id: Choice | None
    not_legacy_id: str = ""
    """Why a column whose header says it is the ID is not the legacy ID (its row and value)."""
    description: tuple[Choice, ...]
    status: ValueChoice | None
    priority: ValueChoice | None
    requester: Choice | None
    assignee: Choice | None
    tags: Choice | None
    tag_separator: str
    nobody: tuple[str, ...]
    created: Choice | None
    preset: str | None
    """The bundled preset that reads the file as it is: its columns are there and its value
    maps hold every value (then ``--mapping NAME`` is the better choice, and its name sure)."""
    not_preset: str = ""
    """Why the preset the headers look like does not read the file (then this file is the way)."""
    footer: Choice | None = None
    """The start of an exporter's line after the last record (Jira Server's ``Generated at``)."""
    not_footer: str = ""
    """Why a last row shaped like a footer was kept as a ticket (its text reads as one)."""
    unused: tuple[str, ...] = field(default=())
    """The other columns: kept in the sheet as the user's own, never sent."""
    unmapped: MappingABC[str, str] = field(default_factory=dict)
    """Columns of ``unused`` that look mapped but are not → why (``Status``: too many values)."""
    clashes: MappingABC[str, str] = field(default_factory=dict)
    """The export's columns named as bulksync's own (``ticketId``) → what to do about it."""


def names_a_column(cell: str) -> bool:
    """Does a header cell say a column the suggestion looks for (to find the header row under
    a title block)?"""
    name = normal_header(cell)
    return any(name in hints for hints in _HINTS.values()) and name not in ("no", "date", "#")


_Chosen = TypeVar("_Chosen", "Choice", "ValueChoice")


def suggest(table: Table, *, integration: str | None = None, preset: str | None = None) -> Suggestion:
    """A mapping for ``table``, from its headers and every one of its values. ``integration``
    names the old tool (else guessed from the file's shape, marked). ``preset``: the bundled
    preset whose export the headers look like (``mapping.export_preset``), tried first: the
    suggestion's ``preset`` is the one that reads the file as it is, if any, whatever was given."""
    preset, not_preset = _reading_preset(table, preset)
    frame, footer, not_footer = _records(table)
    columns = profile(table, frame)
    rows = len(frame)
    legacy, why_not = _legacy_id(columns, rows, frame)
    taken = {legacy.column} if legacy else set()
    def take(choice: _Chosen | None) -> _Chosen | None:
        """``choice``, its column taken: no later choice reads it."""
        if choice is not None:
            taken.add(choice.column)
        return choice

    status = take(_values(columns, "status", taken, rows=rows))
    priority = take(_values(columns, "priority", taken, rows=rows))
    description = _description(columns, taken, rows=rows)
    taken.update(c.column for c in description)
    requester = take(_person(columns, "requester", taken, rows=rows))
    assignee = take(_person(columns, "assignee", taken, rows=rows))
    tags, separator = _tags(columns, taken)
    take(tags)
    created = _created(columns, taken)
    if rows and not (legacy or description or status or priority or requester or tags):
        _refuse_if_header_below(table, frame)
    people = [c for c in columns if c.header in {p.column for p in (requester, assignee) if p}]
    nobody = sorted({v for c in people for v in c.values if v.casefold() in _NOBODY})
    return Suggestion(source=str(table.path), rows=rows,
                      integration=_integration(table, columns, integration, preset),
                      legacy_id=legacy, not_legacy_id=why_not, description=description, status=status,
                      priority=priority, requester=requester, assignee=assignee, tags=tags,
                      tag_separator=separator, nobody=tuple(nobody), created=created, preset=preset,
                      not_preset=not_preset, footer=footer, not_footer=not_footer,
                      unused=tuple(c.header for c in columns if c.header not in taken),
                      unmapped=_too_varied(columns, taken), clashes=_clashes(table, frame))


class HeaderBelow(SheetError):
    """Nothing is found to suggest from, and a row below the header row looks like the header
    (a title block above the table that no header cell gave away): ``row`` is that row."""

    def __init__(self, path: Path | str, message: str, *, row: int) -> None:
        super().__init__(path, message)
        self.row = row


def _refuse_if_header_below(table: Table, frame: pd.DataFrame) -> None:
    """Raise :class:`HeaderBelow` if one of the first rows under the header looks like a header
    itself: two or more short, distinct names (no numbers, dates or addresses), the row
    under it filled too. Else an empty suggestion is written, as the file gives nothing more."""
    rows = [[str(v).strip() for v in frame.iloc[i]] for i in range(min(len(frame), HEADER_SEARCH))]
    for i, cells in enumerate(rows[:-1]):
        names = [c for c in cells if c]
        if (len(names) >= 2 and len({n.casefold() for n in names}) == len(names)
                and sum(1 for c in rows[i + 1] if c) >= 2
                and all(len(n) <= 60 and re.search(r"[^\W\d_]", n) and not any(
                    p.fullmatch(n) for p in (_NUMBER, _DATE, _EMAIL)) for n in names)):
            row = int(frame.index[i])
            shown = ", ".join(_comment_text(n)[:40] for n in names[:6]) + (", …" if len(names) > 6 else "")
            raise HeaderBelow(table.path, f"row {table.header_row} names no column a mapping can be suggested "
                                          f"from; row {row} looks like the header ({shown}): give --header-row {row}",
                              row=row)


def _reading_preset(table: Table, looks: str | None) -> tuple[str | None, str]:
    """The bundled preset that reads ``table`` as ``--mapping NAME`` would, without a missing
    column or a value its maps lack (people aside: they need ``--users`` either way), ``looks``
    first; and, when none does, why the one the headers look like does not.

    Each is the preset itself (``load_mapping``, ``apply_mapping``), so the advice is never
    the headers' word alone: a ``Ticket ID`` is any export's."""
    from bulksync.mapping import load_mapping, preset_names

    why_not = ""
    for name in sorted(preset_names(), key=lambda n: n != looks):
        lacks = _preset_lacks(table, load_mapping(name).for_sheet(table))
        if not lacks:
            return name, ""
        if not why_not and (name == looks or lacks.startswith("its value maps")):
            why_not = (f"the headers look like a {name.title()} export's, but --mapping {name} "
                       f"does not read this file: {lacks}")
    return None, why_not


def _preset_lacks(table: Table, preset: ColumnMapping) -> str:
    """What ``preset`` lacks to read ``table`` (its columns first, cheaply; then its values, as
    ``apply_mapping`` maps them), or ``""``."""
    from bulksync.mapping import apply_mapping

    needed = [c for c in (preset.legacy_id, *preset.columns.values())
              if c and c not in preset.optional and table.position(c) is None]
    if preset.description and all(table.position(c) is None for c in preset.description):
        needed.append(" or ".join(preset.description))
    if needed:
        return f"the file has no column {', '.join(needed)}"
    problems = [p for p in apply_mapping(table, preset).problems if p.code in ("missing-column", "unmapped-value")]
    values = sorted({p.value or "" for p in problems if p.code == "unmapped-value"})
    if values:
        return (f"its value maps lack {', '.join(_sample(v) for v in values[:5])}"
                + (f" and {len(values) - 5} more" if len(values) > 5 else ""))
    return clean(problems[0].message) if problems else ""


def _clashes(table: Table, frame: pd.DataFrame) -> dict[str, str]:
    """The export's columns that bulksync would take for its own (a mapped sheet's header
    that is exactly ``ticketId``, spaces around aside: ``Table.position``) → what to do.

    An old tool's ``ticketId`` would be read as the Suptask ticket each row updates; its
    ``ticketNumber``, ``syncStatus``, ``syncError`` written over. A sheet bulksync has pushed
    has them rightly (its ``syncStatus`` says so): then only ``ticketId`` is asked about."""
    own = {h.strip(): at for at, h in reversed(list(enumerate(table.header))) if h.strip() in OWNED_COLUMNS}
    pushed = "syncStatus" in own
    out = {}
    for name in sorted(own, key=own.__getitem__):
        if pushed and name != TICKET_ID:
            continue
        what = ("the Suptask ticket each row updates" if name == TICKET_ID
                else "bulksync writes it after each push")
        renamed = "Old ID" if name == TICKET_ID else f"Old {name}"
        why = (f"clashes with bulksync's own {name} column ({what}): rename it in the export "
               f"(e.g. to {toml_string(renamed)}) before push")
        if pushed:
            why += ", unless bulksync wrote it (this sheet has a syncStatus column, as a sheet bulksync pushed has)"
        values = [str(v).strip() for v in frame[own[name]].tolist()]
        if name == TICKET_ID and all(values) and len({v.casefold() for v in values}) == len(values):
            why += f"; its values are unique, so it can then be the legacy ID (legacy_id = {toml_string(renamed)})"
        out[name] = why
    return out


def _records(table: Table) -> tuple[pd.DataFrame, Choice | None, str]:
    """The table's rows without blank ones, and without an exporter's footer
    (``mapping.footer_row``: a last row whose first cell alone is filled, here in a sheet of
    several columns whose other rows fill more) when its text reads as one (:func:`footer_like`).
    A last row of that shape that reads otherwise (``Need help with the new laptop``) is a
    ticket, and said: (rows, footer, what was not taken for a footer)."""
    from bulksync.mapping import footer_row

    frame = table.frame
    filled = frame.apply(lambda column: ~column.isin([v for v in column.unique() if not str(v).strip()]))
    frame = frame[filled.any(axis=1)]
    filled = filled[filled.any(axis=1)]
    found = footer_row(frame) if len(frame) >= 2 and frame.shape[1] >= 3 else None
    if found is None or filled.iloc[:-1].sum(axis=1).max() < 3:
        return frame, None, ""
    number, text = found
    if not footer_like(text):
        return frame, None, (f"row {number} holds only its first cell ({_sample(text)}), but does not read "
                             "as an exporter's line (Generated at, Exported by, Total, 42 records): kept "
                             f"as a ticket; if it is not one, footer = {toml_string(_footer_start(text))}")
    start = _footer_start(text)
    why = f"row {number} ({_sample(text)}) is the exporter's footer, not a ticket: left out"
    if any(ch.isdigit() for ch in start):
        return frame.iloc[:-1], Choice(start, f"{why}; it starts with a number, so the next export's "
                                              "line may start otherwise", sure=False), ""
    return frame.iloc[:-1], Choice(start, why), ""


_FOOTER_TEXT = re.compile(r"""(?ix)
    ^(?:report\s+)?(?:generated|exported|printed|extracted)\s+(?:at|on|by|from|using|with|in)\b
  | \busing\s+jira\b
  | ^(?:grand\s+)?total\b[^\d]{0,20}\d
  | ^\d[\d,.\s]*\s(?:records?|rows?|tickets?|issues?|items?|results?)\b(?:\s+\w+)?\W*$
  | ^(?:page\s+)?\d+\s+of\s+\d+(?:\s+pages?)?\W*$
  | ^page\s+\d+\W*$""")


def footer_like(text: str) -> bool:
    """Does ``text`` read as an exporter's line, not a ticket's (``Generated at …``,
    ``Exported from … by``, ``… using JIRA``, ``Total: 42``, ``42 records``, ``Page 1 of 3``)?
    Only such a line is taken for a footer: anything else may be a ticket of one cell."""
    return _FOOTER_TEXT.search(text.strip()) is not None


def _footer_start(text: str) -> str:
    """What a footer line starts with, the same in the next export: its first two words before
    any with a digit (``Generated at``, ``Page``), with the space after them; else all of it."""
    words = text.split()
    kept = []
    for word in words[:2]:
        if any(ch.isdigit() for ch in word):
            break
        kept.append(word)
    return " ".join(kept) + " " if kept and len(kept) < len(words) else text


def _legacy_id(columns: list[Profile], rows: int, frame: pd.DataFrame) -> tuple[Choice | None, str]:
    """The column that is unique, never empty and ID-like; a header that says so first, then
    keys (``ABC-123``) before bare numbers, then the leftmost. And why a column whose header
    says it is the ID is not it (its first blank, repeated or odd cell), or ``""``."""
    if not rows:
        header = max((c for c in columns if c.hint("legacy") >= 100), key=lambda c: c.hint("legacy"), default=None)
        if header is None:
            return None, ""
        return Choice(header.header, "its header says it is an ID; the export has no rows to tell whether its "
                                    "values are unique and never empty", sure=False), ""
    unique = [c for c in columns if rows and c.filled == rows and c.distinct == rows]
    candidates = [c for c in unique if c.keys == 1.0]
    best = max(candidates, key=lambda c: (c.hint("legacy") > 0, _keyish(c), c.hint("legacy"), -c.position),
               default=None)
    rejected = max((c for c in columns if c.hint("legacy") >= 100 and c is not best),
                   key=lambda c: c.hint("legacy"), default=None)
    why_not = _id_trouble(rejected, frame) if rejected else ""
    if best is None:
        return None, why_not
    said = "its header says it is an ID, and " if best.hint("legacy") else ""
    shape = "keys like " if _keyish(best) else "IDs like "
    return Choice(best.header, f"{said}its {rows} values are unique, never empty, and {shape}"
                               f"{_sample(best.values[0])}"), why_not


def _id_trouble(column: Profile, frame: pd.DataFrame) -> str:
    """Why ``column`` is no legacy ID: its first empty, repeated or un-ID-like cell, by its row
    in the sheet (the frame's index)."""
    seen: dict[str, int] = {}
    cells = frame[column.position]
    for row, raw in zip(cells.index.tolist(), cells.tolist(), strict=True):
        value = str(raw).strip()
        if not value:
            return f"{column.header} is not the legacy ID: it is empty in row {row}"
        if value.casefold() in seen:
            return (f"{column.header} is not the legacy ID: row {row} repeats {_sample(value)} "
                    f"(row {seen[value.casefold()]})")
        if not _KEY.fullmatch(value):
            return f"{column.header} is not the legacy ID: {_sample(value)} in row {row} is not an ID"
        seen[value.casefold()] = row
    return f"{column.header} is not the legacy ID"


def _keyish(column: Profile) -> bool:
    return any(re.search(r"[A-Za-z]", v) for v in column.values)


def _description(columns: list[Profile], taken: set[str], *, rows: int) -> tuple[Choice, ...]:
    """The subject, then the body: headers that say so, else the free-text columns (the
    shorter one first). An export of no rows has only its headers to say so."""
    free = [c for c in columns if c.header not in taken and c.filled]
    subject = max((c for c in columns if c.header not in taken and c.hint("subject") >= 100
                   and (c.is_text or not rows)),
                  key=lambda c: c.hint("subject"), default=None)
    # A body column empty in this export stays: its cells are skipped, and the next export
    # of the same tool may fill them (Jira writes Description only when an issue has one).
    body = max((c for c in columns if c.header not in taken and c.hint("body") >= 100
                and c is not subject and (c.is_text or c.filled == 0)),
               key=lambda c: c.hint("body"), default=None)
    out = []
    if subject:
        out.append(Choice(subject.header, f"its header says it is the subject; {_lengths(subject)}"))
    if body:
        out.append(Choice(body.header, f"its header says it is the text; {_lengths(body)}"))
    if subject:
        return tuple(out)
    free = [c for c in free if c is not body]
    text = sorted((c for c in free if c.is_text and c.distinct > 1 and c.emails < 0.1),
                  key=lambda c: -c.distinct * c.mean_length)[:2]
    text.sort(key=lambda c: c.mean_length)
    guessed = tuple(Choice(c.header, f"no header says subject; a free-text column with much to "
                                     f"say ({_lengths(c)})", sure=False) for c in text)
    return guessed[:1] + tuple(out) if out else guessed


def _lengths(column: Profile) -> str:
    if not column.filled:
        return "empty in this export"
    return f"{column.filled} of its cells filled, {column.mean_length:.0f} characters on average"


def _values(columns: list[Profile], kind: str, taken: set[str], *, rows: int) -> ValueChoice | None:
    """The status or priority column (few distinct values; its header or its values say so),
    with a map of each of its values. In an export of no rows, the column its header says,
    with an empty map: every value of the next export is then a problem until mapped."""
    if not rows:
        named = max((c for c in columns if c.header not in taken and c.hint(kind) >= 100),
                    key=lambda c: c.hint(kind), default=None)
        if named is None:
            return None
        return ValueChoice(kind, named.header, "its header says so; the export has no rows, so no value is "
                                               "mapped: add a line for each value the next export holds", ())
    few = [c for c in columns if c.header not in taken and 0 < c.distinct <= FEW and c.emails == 0]
    if not few:
        return None

    def known(c: Profile) -> float:
        # A bare number is any count's value (replies, reopens): it says a priority only
        # in a column whose header says so.
        filled = {v: n for v, n in c.counts.items() if v and not v.isdigit()}
        return sum(n for v, n in filled.items() if _place(v, kind)[1]) / max(1, sum(filled.values()))

    shares = {c.header: known(c) for c in few}
    best = max(few, key=lambda c: (c.hint(kind), shares[c.header], -c.position))
    if best.hint(kind) == 0 and (shares[best.header] < 0.8 or best.distinct < 2):
        return None
    said = ("its header says so" if best.hint(kind)
            else f"{shares[best.header]:.0%} of its values are {kind} words")
    counts = {v: n for v, n in best.counts.items() if v}
    first: dict[str, str] = {}
    totals: Counter[str] = Counter()
    for value, n in counts.items():
        first.setdefault(_key(value), value)
        totals[_key(value)] += n
    mapped = []
    for key, value in first.items():
        target, sure, why = _place(value, kind)
        mapped.append(Mapped(value=value, target=target, rows=totals[key], why=why, sure=sure))
    mapped.sort(key=lambda m: (_rank(m.target, kind), -m.rows, m.value.casefold()))
    return ValueChoice(kind, best.header, f"{said}; {len(first)} distinct value(s), all mapped", tuple(mapped),
                       sure=best.hint(kind) > 0)


def _too_varied(columns: list[Profile], taken: set[str]) -> dict[str, str]:
    """Columns whose header says status or priority, left unmapped for holding too many
    values (free text, or a workflow to map by hand) → why."""
    out = {}
    for c in columns:
        kind = next((k for k in ("status", "priority") if c.hint(k) >= 100), None)
        if kind and c.header not in taken and c.distinct > FEW:
            out[c.header] = (f"its header says {kind}, but it has {c.distinct} distinct values and a {kind} "
                             f"column has few (at most {FEW}): map it yourself ([columns] {kind} = "
                             f"{toml_string(c.header)} and a [values.{kind}.map] entry for each value) if it is one")
    return out


def _rank(target: str, kind: str) -> int:
    order = STATUSES if kind == "status" else ("", *PRIORITIES)
    return order.index(target) if target in order else len(order)


def _key(value: str) -> str:
    """A value as the mapping compares it: casefolded, spaces around removed."""
    return value.strip().casefold()


def _place(value: str, kind: str) -> tuple[str, bool, str]:
    """(Suptask's value, sure?, why) for one value of the file, compared without case or
    accents (``Fermé`` is ``ferme``)."""
    words = STATUS_WORDS if kind == "status" else PRIORITY_WORDS
    word = _fold(value)
    if kind == "priority" and word.isdigit() and word in words:
        # GLPI and Freshdesk count 1 as the lowest, ServiceNow and Jira's P1 as the highest.
        return words[word], False, ("a bare number: 1 taken as the highest (GLPI and Freshdesk "
                                    "count 1 as the lowest)")
    if word in words:
        return words[word], True, "the word itself"
    numbered = _NUMBERED.match(word)
    if numbered and numbered.group(2).strip() in words:
        return words[numbered.group(2).strip()], True, f"its word, {numbered.group(2).strip()!r}"
    if numbered and kind == "priority" and numbered.group(1) in words:
        return words[numbered.group(1)], True, f"its rank, {numbered.group(1)}"
    parts = [p for p in re.split(r"[\s/,;()]+", word) if p]
    negated = _negated(parts, kind)
    for part in parts:
        if part in words and part not in ("-", "1", "2", "3", "4", "5") and part not in negated:
            return words[part], False, f"it holds the word {part!r}"
    said = " and ".join(repr(negated[p]) for p in negated)
    if kind == "status":
        kept = "".join(p for p in parts if p not in negated)
        for stem, target in _STATUS_STEMS:
            if stem.replace(" ", "") in kept:
                return target, False, f"it holds {stem!r}"
        if negated:
            return _OPEN, False, f"it says {said}, which is not a status; best guess: left open"
        return _OPEN, False, "no status word in it; best guess: left open"
    if negated:
        return _LOW, False, f"it says {said}; best guess: the lowest"
    return _MEDIUM, False, "no priority word in it; best guess: the middle one"


_NEGATIONS = ("not", "no", "non", "never")
_NEGATED = re.compile(r"(?:un|non-?)(\w.*)")


def _negated(parts: list[str], kind: str) -> dict[str, str]:
    """The parts of a value that a negation turns around (``Unresolved``, ``Not fixed``,
    ``non-urgent``: never the word they hold) → how the value says it."""
    words = STATUS_WORDS if kind == "status" else PRIORITY_WORDS
    stems = [stem.replace(" ", "") for stem, _ in _STATUS_STEMS] if kind == "status" else []

    def says(part: str) -> bool:
        return part in words or any(stem in part for stem in stems)

    out = {}
    for i, part in enumerate(parts):
        prefixed = _NEGATED.fullmatch(part)
        if i and parts[i - 1] in _NEGATIONS and says(part):
            out[part] = f"{parts[i - 1]} {part}"
        elif prefixed and says(prefixed.group(1)) and part not in words:
            out[part] = part
    for negation in _NEGATIONS:
        out.pop(negation, None)
    return out


def _fold(text: str) -> str:
    """``text`` as values are compared: casefolded, accents dropped (NFKD, without the
    combining marks), underscores as spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("_", " ").split())


def _person(columns: list[Profile], kind: str, taken: set[str], *, rows: int) -> Choice | None:
    """A column of emails or user names whose header says ``kind``: emails before user names
    before display names (each resolved by ``--users``); in an export of no rows, its header's."""
    if not rows:
        named = max((c for c in columns if c.header not in taken and c.hint(kind) >= 100),
                    key=lambda c: c.hint(kind), default=None)
        if named is None:
            return None
        return Choice(named.header, f"its header says {kind}; the export has no rows to tell what it holds")
    people = [c for c in columns if c.header not in taken and c.hint(kind) >= 100 and c.numbers < 0.5
              and c.dates < 0.5 and any(v and v.casefold() not in _NOBODY for v in c.values)]
    if not people:
        return None
    best = max(people, key=lambda c: (c.emails >= 0.5, c.usernames >= 0.9, c.hint(kind)))
    holds = ("emails" if best.emails >= 0.5 else "user names" if best.usernames >= 0.9
             else "people's names")
    return Choice(best.header, f"its header says {kind} and it holds {holds} "
                               f"(e.g. {_sample(next(v for v in best.values if v and v.casefold() not in _NOBODY))})")


def _tags(columns: list[Profile], taken: set[str]) -> tuple[Choice | None, str]:
    found = [c for c in columns if c.header not in taken and c.hint("tags") >= 100]
    if not found:
        return None, ","
    best = max(found, key=lambda c: c.hint("tags"))
    cells = [v for v in best.values if v]
    separator = next((s for s in (",", ";", "|") if any(s in v for v in cells)),
                     " " if any(" " in v for v in cells) else ",")
    shown = "space" if separator == " " else repr(separator)
    said = f"tags separated by {shown}" if cells else "empty in this export"
    return Choice(best.header, f"its header says so; {said}"), separator


def _created(columns: list[Profile], taken: set[str]) -> Choice | None:
    dated = [c for c in columns if c.header not in taken and c.hint("created") and c.dates >= 0.8]
    if not dated:
        return None
    best = max(dated, key=lambda c: (c.hint("created"), -c.position))
    return Choice(best.header, "the creation date")


_SHAPES = (
    ("Jira", ("issuetype", "summary", "key")),
    ("Jira", ("issuetype", "summary", "issuekey")),
    ("Zendesk", ("requesterid", "via")),
    ("Freshdesk", ("ticketid", "subject", "contactid")),
    ("ServiceNow", ("number", "shortdescription")),
    ("ServiceNow", ("sysid",)),
    ("GitLab", ("issueid", "url", "authorusername")),
    ("Redmine", ("#", "tracker", "subject")),
    ("osTicket", ("ticketnumber", "helptopic")),
    ("Trac", ("summary", "component", "milestone")),
    ("GLPI", ("id", "name", "content", "status")),
    ("Zoho Desk", ("ticketid", "subject", "contactname", "ticketowner")),
    ("Help Scout", ("conversationid", "mailbox")),
    ("GitHub", ("issuenumber", "title", "labels", "milestone")),
)
"""Header sets that name the tool that wrote them (all present)."""
_HOSTS = (("service-now.com", "ServiceNow"), ("github.com", "GitHub"), ("gitlab", "GitLab"),
          ("zendesk.com", "Zendesk"), ("freshdesk.com", "Freshdesk"), ("atlassian.net", "Jira"),
          ("freshservice.com", "Freshservice"), ("helpscout", "Help Scout"), ("zoho", "Zoho Desk"))


def _integration(table: Table, columns: list[Profile], given: str | None, preset: str | None) -> Choice:
    """The old tool's name: given, or a preset's that reads the file, else a guess, marked.

    The name is part of every row's identity (``legacy␟<integration>␟<id>``): changing it
    after a push makes every ticket anew, so a name from headers or links alone is checked."""
    if given:
        return Choice(given, "given with --integration")
    if preset:
        from bulksync.mapping import load_mapping

        name = load_mapping(preset).integration or preset.title()
        return Choice(name, f"--mapping {preset} reads this file: its integration name, so that a push "
                            "with either links the same old tickets")
    names = {c.name for c in columns}
    for tool, needs in _SHAPES:
        if all(n in names for n in needs):
            return Choice(tool, f"the headers ({', '.join(c.header for c in columns if c.name in needs)}) "
                                f"are {tool}'s, as far as headers tell; a guess: it is part of each row's "
                                "identity, so check it before the first push", sure=False)
    cells = " ".join(v for c in columns if c.keys < 1 for v in c.values[:50]).casefold()
    for host, tool in _HOSTS:
        if host in cells:
            return Choice(tool, f"its cells link to {host}; a guess: it is part of each row's identity, "
                                "so check it before the first push", sure=False)
    return Choice("Legacy helpdesk", "the file does not say which tool wrote it: name it (it is "
                                     "the integrationType of each link to an old ticket)", sure=False)


def _sample(value: str) -> str:
    return repr(_comment_text(value)[:40])


def _comment_text(text: str) -> str:
    """Text from the file made safe inside a TOML comment: one line, no control or invisible
    characters, at most ``untrusted.MAX_TEXT`` characters (a header can be a whole paragraph)."""
    return clean(text)


# -- the mapping file ------------------------------------------------------------------------

CHECK = "# check"
"""The mark of a guess: a line's comment that starts so (case aside). ``load_mapping`` lists
each such line as a note until it is removed; no other comment of the file may read as one."""
_MARK = "\x00"
"""The mark while the file is written: :func:`_comment_text` leaves no control character, so
only :func:`_line` writes it, and :func:`_marks_only` turns it into ``# check``."""
_LIKE_A_MARK = re.compile(r"#(?=\s*check)", re.IGNORECASE)


def _comment_start(line: str) -> int | None:
    """Where the comment of one line of the file starts: its first ``#`` outside a basic
    string (the only strings :func:`render` writes)."""
    quoted = False
    escaped = False
    for at, ch in enumerate(line):
        if quoted:
            quoted = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch == '"':
            quoted = True
        elif ch == "#":
            return at
    return None


def _marks_only(line: str) -> str:
    """``line`` with a comment that reads as the mark only where :func:`_line` marked it: a
    value's ``# check`` inside a comment loses its ``#`` (``＃``), a comment that would start
    with ``check`` starts ``- check``, and a string that a comment holds (a line to
    uncomment) spells its ``#`` ``\\u0023``, the same value to TOML."""
    at = _comment_start(line)
    if at is None:
        return line
    body = line[at + 1:]
    marked = body.startswith(" " + _MARK)
    body = body.replace(_MARK, "")
    out, quoted, escaped = [], False, False
    for i, ch in enumerate(body):
        if quoted:
            quoted = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch == '"':
            quoted = True
        if ch == "#" and _LIKE_A_MARK.match(body, i):
            ch = "\\u0023" if quoted else "\uff03"
        out.append(ch)
    body = "".join(out)
    if marked:
        return f"{line[:at]}{CHECK}:{body}"
    if re.match(r"\s*check", body, re.IGNORECASE):
        body = re.sub(r"^(\s*)", r"\1- ", body, count=1)
    return f"{line[:at]}#{body}"


def _line(key: str, value: str, why: str, *, sure: bool = True, width: int = 44) -> str:
    text = f"{key} = {value}"
    return f"{text.ljust(width)}  # {'' if sure else _MARK}{_comment_text(why)}"


def render(suggestion: Suggestion) -> str:
    """The suggestion as a mapping file: presets' keys, each choice commented with why."""
    s = suggestion
    out = [f"# bulksync mapping suggested from {_comment_text(s.source)} ({s.rows} rows) by "
           "`bulksync mapping suggest`.",
           "# Read it and change what is wrong. A guess is marked: its comment starts with the word",
           "# 'check'; once you have checked the line, remove the mark (`bulksync validate` lists the",
           "# marks left). Nothing is applied that this file does not say.",
           "# Then: bulksync validate EXPORT --mapping THIS-FILE --users users.csv (or --default-requester U…)"]
    if s.preset:
        out.append(f"# --mapping {s.preset} (the preset, kept up to date with {s.preset.title()}'s exports) reads "
                   "this file as it is: use it; this file is for comparison, or to start your own.")
    elif s.not_preset:
        out.append(f"# {_comment_text(s.not_preset)}.")
    out.append("")
    out.append(_line("integration", toml_string(s.integration.column), s.integration.why,
                     sure=s.integration.sure))
    for column, why in s.clashes.items():
        out.append(f"# {_comment_text(column)}: {_comment_text(why)}.")
    if s.not_legacy_id:
        out.append(f"# {_comment_text(s.not_legacy_id)}.")
    if s.legacy_id:
        out.append(_line("legacy_id", toml_string(s.legacy_id.column), s.legacy_id.why, sure=s.legacy_id.sure))
    else:
        out.append("# legacy_id: no column is unique, never empty and ID-like: without one, rows are not "
                   "linked to their old tickets, and a second push cannot tell them from new ones.")
    if s.footer:
        out.append(_line("footer", toml_string(s.footer.column), s.footer.why, sure=s.footer.sure))
    elif s.not_footer:
        out.append(f"# footer: not set: {_comment_text(s.not_footer)}")
    if s.tags:
        out.append(_line("tag_separator", toml_string(s.tag_separator), s.tags.why))
    if s.nobody:
        out.append(_line("nobody", "[" + ", ".join(toml_string(v) for v in s.nobody) + "]",
                         "people's cells that mean no one"))
    out += _columns_section(s)
    out += _description_section(s)
    for choice in (s.status, s.priority):
        if choice:
            out += _values_section(choice)
    out += _not_mapped(s)
    return "\n".join(_marks_only(line) for line in out) + "\n"


def _columns_section(s: Suggestion) -> list[str]:
    out = ["", "[columns]                                     # Suptask field = the export's column"]
    for name, choice in (("requester", s.requester), ("status", s.status), ("priority", s.priority),
                         ("tags", s.tags)):
        if choice is None:
            continue
        why = choice.why if isinstance(choice, Choice) else choice.why.split(";")[0]
        if name == "requester":
            why += "; one not in --users gets --default-requester"
        if isinstance(choice, ValueChoice) and not choice.sure:
            why += f"; no header says {name}: is it?"
        out.append(_line(name, toml_string(choice.column), why, sure=choice.sure))
    if s.assignee:
        # Without a users file every assigned row would be a problem ("not a Slack member ID"):
        # the suggestion says so instead of sending names, and leaves the choice to the user.
        out.append(f"# assignee = {toml_string(s.assignee.column)}   # {_comment_text(s.assignee.why)}; "
                   "uncomment it once --users lists your agents (Slack member IDs)")
    if s.requester is None:
        out.append("# requester: no column of emails or user names says requester; every ticket gets "
                   "--default-requester U…")
    return out


def _description_section(s: Suggestion) -> list[str]:
    if not s.description:
        return ["", "# [description]: no column of text found; give one: columns = [\"Subject\"]"]
    sure = all(c.sure for c in s.description)
    parts = "[" + ", ".join(toml_string(c.column) for c in s.description) + "]"
    out = ["", "[description]                                 # the columns, in order, empty ones skipped",
           _line("columns", parts, "subject first, then the text" if len(s.description) > 1 else
                 "the only text column found", sure=sure)]
    out += [f"#   {_comment_text(c.column)}: {_comment_text(c.why)}" for c in s.description]
    return out


def _values_section(choice: ValueChoice) -> list[str]:
    offered = STATUSES if choice.field == "status" else PRIORITIES
    out = ["", f"[values.{choice.field}.map]",
           f"# {_comment_text(choice.column)} → {choice.field}: {_comment_text(choice.why)}. "
           f"Suptask offers: {', '.join(offered)}" + ("; \"\" is no priority." if choice.field == "priority" else ".")]
    if not choice.values:
        example = '"open" = "Open"' if choice.field == "status" else '"urgent" = "CRITICAL"'
        out.append(f"# e.g. {example} (the value as the export writes it, in lower case)")
    for m in choice.values:
        why = f"{_sample(m.value)}, {m.rows} row(s): {m.why}"
        out.append(_line(toml_string(_key(m.value)), toml_string(m.target), why, sure=m.sure, width=36))
    return out


def _not_mapped(s: Suggestion) -> list[str]:
    out = ["", "# Not mapped (kept in the export as columns of your own, never sent):"]
    if s.created:
        out.append(f"#   {_comment_text(s.created.column)}: {s.created.why}. The mapping format has no "
                   "key for it: Suptask sets a ticket's creation time itself, so it stays in the sheet.")
    for column, why in {**s.clashes, **s.unmapped}.items():
        out.append(f"#   {_comment_text(column)}: {_comment_text(why)}.")
    rest = [c for c in s.unused if not (s.created and c == s.created.column) and c not in s.unmapped]
    if rest:
        shown = ", ".join(_comment_text(c) for c in rest[:40])
        out.append(f"#   {shown}" + (f" and {len(rest) - 40} more" if len(rest) > 40 else ""))
    out.append("#   To send one as a Suptask custom field: \"customField_<uuid>\" = \"Column\" under [columns].")
    return out
