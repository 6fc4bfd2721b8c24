"""Mappings: turn another tool's export into Suptask's columns (the map stage, pure).

A mapping is a TOML file (or a bundled preset: ``zendesk``, ``jira``,
``freshdesk``)::

    integration = "Zendesk"            # integrationType of the link to the old ticket
    legacy_id = "Id"                   # the old ticket's ID: the row's identity, and the link
    url = "https://acme.zendesk.com/agent/tickets/{id}"   # optional link URL; {id} = legacy ID
    tag_separator = " "                # how tags are separated inside a cell
    comments = "Comment"               # optional: repeated columns "date;author;body" (Jira)
    comments_public = false            # are those comments public replies?

    [columns]                          # Suptask field = source column
    requester = "Requester email"
    tags = "Tags"                      # every column with this header (Jira repeats Labels)
    "customField_<uuid>" = "Product"

    [description]                      # composed from several columns, empty ones skipped
    columns = ["Subject", "Description"]
    separator = "\\n\\n"

    [values.status]                    # value map, matched ignoring case and spaces around
    map = { new = "Open", solved = "Closed" }
    default = "Open"                   # optional: without it an unmapped value is a problem

    [fixed]                            # the same value on every row
    status = "Open"

Users (``--users FILE``) are a CSV with ``user`` and ``slackId`` (and
optionally ``name``): any value in ``requester`` or ``assignee`` found in
``user`` becomes that Slack member ID; ``name`` is the display name of replies.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import tomllib
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulksync.columns import (
    API_FIELDS,
    CUSTOM_FIELD_PREFIX,
    MEMBER_PATTERN,
    OWNED_COLUMNS,
    Problem,
    canonical_column,
    is_uuid,
    toml_string,
)
from bulksync.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from bulksync.sheets.table import Table

__all__ = ["ColumnMapping", "Comment", "Mapped", "Users", "apply_mapping", "load_comments",
           "load_mapping", "load_users", "preset_names"]

PRESETS_DIR = "presets"
LEGACY = "legacy_id"
"""The key of ``ColumnMapping.alternatives`` for the legacy ID's columns (no Suptask field)."""
_KEYS = {"integration", "legacy_id", "url", "tag_separator", "comments", "comments_public",
         "columns", "description", "values", "fixed", "optional", "extends", "nobody", "footer"}


@dataclass(frozen=True)
class ValueMap:
    table: MappingABC[str, str]
    default: str | None = None
    by: str | None = None
    """A column whose value decides for a value the table lacks (Jira's Status Category)."""
    by_table: MappingABC[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnMapping:
    """A parsed, checked mapping file."""

    name: str
    integration: str = ""
    legacy_id: str | None = None
    url: str | None = None
    tag_separator: str = ","
    comments: str | None = None
    comments_public: bool = False
    columns: MappingABC[str, str] = field(default_factory=dict)
    description: tuple[str, ...] = ()
    description_separator: str = "\n\n"
    values: MappingABC[str, ValueMap] = field(default_factory=dict)
    fixed: MappingABC[str, str] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    """Source columns an export may lack (Jira writes Labels only when an issue has one)."""
    footer: str | None = None
    """The start of the line an exporter writes after the last record (Jira Server: ``Generated
    at``): a last row whose first cell starts so is not a ticket, and is left out."""
    nobody: frozenset[str] = frozenset()
    """Requester and assignee values that mean no one (Jira Server writes ``Unassigned``),
    case aside: read as an empty cell."""
    alternatives: MappingABC[str, tuple[str, ...]] = field(default_factory=dict)
    """Field → the columns to read it from when its column in ``columns`` is not in the sheet,
    in order (a Freshdesk export names the requester's email Email, or Contact ID)."""
    marks: tuple[Mark, ...] = ()
    """The lines marked ``# check`` (a guess of ``bulksync mapping suggest``): listed by
    validate, plan and push until the mark is removed; push refuses while ``integration``'s is
    there (it is part of every migrated row's identity)."""

    @property
    def unconfirmed_integration(self) -> Mark | None:
        """The mark on the ``integration`` line, while it is there."""
        return next((m for m in self.marks if not m.table and m.key == "integration"), None)

    def sources(self) -> list[str]:
        """The source columns this mapping reads, in a sensible order for a template."""
        out = [self.legacy_id] if self.legacy_id else []
        out += [c for c in self.description if c not in out]
        out += [c for c in self.columns.values() if c not in out]
        if self.comments and self.comments not in out:
            out.append(self.comments)
        return out

    def all_sources(self) -> list[str]:
        """The source columns this mapping may read: ``sources`` and the alternatives."""
        out = self.sources()
        return out + [c for others in self.alternatives.values() for c in others if c not in out]

    def for_sheet(self, table: Table) -> ColumnMapping:
        """This mapping reading each field from the first of its columns the sheet has."""
        if not self.alternatives:
            return self
        from dataclasses import replace

        chosen = dict(self.columns)
        if self.legacy_id:
            chosen[LEGACY] = self.legacy_id
        for name, others in self.alternatives.items():
            if name in chosen and table.position(chosen[name]) is None:
                chosen[name] = next((c for c in others if table.position(c) is not None), chosen[name])
        legacy_id = chosen.pop(LEGACY, None)
        return replace(self, columns=chosen, legacy_id=legacy_id)


@dataclass(frozen=True)
class User:
    slack_id: str
    name: str = ""


@dataclass(frozen=True)
class Users:
    """Source user (email, name, legacy ID; matched ignoring case) → Slack member ID and name."""

    by_user: MappingABC[str, User]
    path: Path | None = None

    def get(self, value: str) -> User | None:
        return self.by_user.get(value.strip().casefold())


@dataclass(frozen=True, kw_only=True)
class Comment:
    author: str
    body: str
    public: bool
    created_at: str = ""


@dataclass(frozen=True, eq=False)
class Mapped:
    """A table in Suptask's columns, plus what the map stage learned on the way."""

    table: Table
    problems: tuple[Problem, ...]
    legacy_ids: dict[int, str]
    comments: dict[int, list[Comment]]
    source_of: MappingABC[str, str]
    """Suptask column → the source column it came from, for messages."""
    notes: tuple[str, ...] = ()
    """What the map stage decided that the user should know (an exporter's footer left out)."""


def export_preset(header: tuple[str, ...]) -> str | None:
    """The preset whose export ``header`` looks like (most of its source columns are there),
    for a sheet pushed without ``--mapping``."""
    from bulksync.sheets.read import normal_header

    names = {normal_header(h) for h in header}
    for preset, sources in _preset_sources():
        found = sources & names
        # Status, Priority or Tags alone are any sheet's; the export's own names tell it apart.
        foreign = {n for n in found if canonical_column(n) is None}
        if len(found) >= 3 and len(found) >= 0.6 * len(sources) and len(foreign) >= 2:
            return preset
    return None


@functools.cache
def _preset_sources() -> tuple[tuple[str, frozenset[str]], ...]:
    """Each bundled preset's source columns, normalised: read once a process (the files are
    bulksync's own), not at every push of a sheet without a mapping."""
    from bulksync.resources import bundled
    from bulksync.sheets.read import normal_header

    # By the bundled file's path: a folder named like a preset where the command runs is not it.
    folder = bundled("templates") / PRESETS_DIR
    return tuple((preset, frozenset(normal_header(c) for c in load_mapping(folder / f"{preset}.toml").sources()))
                 for preset in preset_names())


def preset_names() -> list[str]:
    from bulksync.resources import bundled

    return sorted(p.stem for p in (bundled("templates") / PRESETS_DIR).glob("*.toml"))


def load_mapping(name_or_path: str | Path) -> ColumnMapping:
    """A mapping from a TOML file, or a bundled preset by name."""
    from bulksync.resources import bundled

    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        preset = bundled("templates") / PRESETS_DIR / f"{name_or_path}.toml"
        if not preset.is_file():
            raise UsageError(f"--mapping {name_or_path}: no such file, and not a preset "
                             f"(presets: {', '.join(preset_names())})")
        path = preset
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"{path}: cannot read the mapping ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    from dataclasses import replace

    mapping = _parse(path, data)
    marks = check_marks(path, path.read_text(encoding="utf-8"))
    return replace(mapping, marks=(*mapping.marks, *marks)) if marks else mapping


_TABLE = re.compile(r"\s*\[([^\[\]]+)\]\s*(#.*)?$")
UNCONFIRMED_INTEGRATION = "unconfirmed-integration"
"""The code of push's problem while the mapping's ``integration`` is marked ``# check``."""


@dataclass(frozen=True)
class Mark:
    """A line of a mapping file whose comment starts ``# check``: a guess of ``bulksync mapping
    suggest`` not yet confirmed: the ``key = value`` on it, in ``[table]`` (empty at the top),
    or no key when the line holds none of its own (a table's header, the end of a multi-line
    value)."""

    path: Path
    line: int
    table: str = ""
    key: str = ""
    value: object = None

    @property
    def note(self) -> str:
        if not self.key:
            return f"{self.path}, line {self.line} is marked '# check' (a guess): check it, then remove the mark"
        where = f"[{self.table}] " if self.table else ""
        return (f"{self.path}, line {self.line}: {where}{self.key!r} = {self.value!r} is marked '# check' "
                "(a guess): check it, then remove the mark")


def check_marks(path: Path, text: str) -> tuple[Mark, ...]:
    """The lines of ``text`` (a mapping file, valid TOML) whose comment starts ``# check``, case
    aside: a TOML comment, outside every string (multi-line ones too), whose first word is
    ``check``, after something of the line's own. ``# note # check`` is no mark, nor a
    ``#`` inside a quoted value, nor a line that is only a comment."""
    lines = text.splitlines()
    tables, table = [], ""
    for line in lines:  # the [table] each line is in
        header = _TABLE.match(line)
        table = header.group(1).strip() if header else table
        tables.append("" if header else table)
    marks = []
    for number, at in _comments(text):
        line = lines[number - 1]
        rest = line[at + 1:].lstrip()
        if not line[:at].strip() or not (rest[:5].casefold() == "check" and not (rest[5:6].isalnum() or rest[5:6] == "_")):
            continue
        try:
            pair = tomllib.loads(line[:at])
        except tomllib.TOMLDecodeError:
            pair = {}
        if len(pair) != 1 or _TABLE.match(line):
            marks.append(Mark(path, number))
            continue
        key, value = next(iter(pair.items()))
        while isinstance(value, dict) and len(value) == 1:  # a dotted key: a.b = 1
            inner, value = next(iter(value.items()))
            key = f"{key}.{inner}"
        marks.append(Mark(path, number, tables[number - 1], key, value))
    return tuple(marks)


def _comments(text: str) -> list[tuple[int, int]]:
    """Where each comment of ``text`` (TOML) starts: (line number, column of its ``#``), strings
    skipped, basic (with escapes) and literal, single- and multi-line."""
    found = []
    line, start, i, n = 1, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, start = line + 1, i + 1
        elif c == "#":
            found.append((line, i - start))
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                if text[i] == "\\" and c == '"':  # an escape: the next character is the string's
                    i += 1
                if i < n and text[i] == "\n":
                    line, start = line + 1, i + 1
                i += 1
            i += len(quote)
            if len(quote) == 3:
                while i < n and text[i] == c:  # up to two quotes end a multi-line string too
                    i += 1
            continue
        i += 1
    return found


def _fail(path: Path, message: str) -> UsageError:
    return UsageError(f"{path}: {message}")


def _unknown(path: Path, where: str, keys: set[str], known: set[str]) -> None:
    unknown = sorted(keys - known)
    if unknown:
        raise _fail(path, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
                          f"{' in ' + where if where else ''}; known keys are {', '.join(sorted(known))}")


def _field_name(path: Path, where: str, name: str) -> str:
    if name in API_FIELDS or (name.startswith(CUSTOM_FIELD_PREFIX)
                              and is_uuid(name[len(CUSTOM_FIELD_PREFIX):])):
        return name
    raise _fail(path, f"{where}: {name!r} is not a Suptask field ({', '.join(API_FIELDS)} or "
                      "customField_<uuid>)")


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"{where} must be a string")
    return value


def _first_of(path: Path, where: str, value: Any) -> tuple[str, tuple[str, ...]]:
    """A source column, or a list of them (the first the sheet has is read): (the first, the
    others)."""
    if not isinstance(value, list):
        return _text(path, where, value), ()
    if not value or not all(isinstance(c, str) and c for c in value):
        raise _fail(path, f"{where} must be a column name, or a list of column names (the first "
                          "the sheet has is read)")
    return value[0], tuple(value[1:])


def _texts(path: Path, data: dict[str, Any], key: str, what: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _fail(path, f"{key} must be {what}")
    return value


def _parse(path: Path, data: dict[str, Any]) -> ColumnMapping:
    _unknown(path, "", set(data), _KEYS)
    if "extends" in data:
        return _extended(path, data)
    columns: dict[str, str] = {}
    alternatives: dict[str, tuple[str, ...]] = {}
    for name, source in data.get("columns", {}).items():
        field_name = _field_name(path, "[columns]", name)
        columns[field_name], others = _first_of(path, f"columns.{name}", source)
        if others:
            alternatives[field_name] = others
    legacy_id, others = _first_of(path, "legacy_id", data["legacy_id"]) if "legacy_id" in data else ("", ())
    if others:
        alternatives[LEGACY] = others
    if "description" in columns:
        raise _fail(path, "give description in [description] columns, not in [columns]")
    description = data.get("description", {})
    if not isinstance(description, dict):
        raise _fail(path, "[description] must be a table")
    _unknown(path, "[description]", set(description), {"columns", "separator"})
    parts = description.get("columns", [])
    if not isinstance(parts, list) or not all(isinstance(c, str) for c in parts):
        raise _fail(path, "description.columns must be a list of column names")
    values = {}
    for name, spec in data.get("values", {}).items():
        _field_name(path, "[values]", name)
        if not isinstance(spec, dict):
            raise _fail(path, f"values.{name} must be a table with map (and default)")
        _unknown(path, f"[values.{name}]", set(spec), {"map", "default", "by", "by_map"})
        table = spec.get("map", {})
        by_table = spec.get("by_map", {})
        for key, given in (("map", table), ("by_map", by_table)):
            if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
                raise _fail(path, f"values.{name}.{key} must map source values to strings")
        default = spec.get("default")
        by = spec.get("by")
        values[name] = ValueMap({k.strip().casefold(): v for k, v in table.items()},
                                None if default is None else _text(path, f"values.{name}.default", default),
                                None if by is None else _text(path, f"values.{name}.by", by),
                                {k.strip().casefold(): v for k, v in by_table.items()})
    fixed = {_field_name(path, "[fixed]", k): _text(path, f"fixed.{k}", v)
             for k, v in data.get("fixed", {}).items()}
    public = data["comments_public"] if "comments_public" in data else False
    if not isinstance(public, bool):
        raise _fail(path, "comments_public must be true or false")
    optional = _texts(path, data, "optional", "a list of column names the export may lack")
    nobody = _texts(path, data, "nobody", 'a list of values that mean no one (e.g. ["Unassigned"])')
    return ColumnMapping(
        name=path.stem,
        integration=_text(path, "integration", data.get("integration", "")),
        legacy_id=legacy_id or None,
        url=data.get("url") and _text(path, "url", data["url"]),
        tag_separator=_text(path, "tag_separator", data.get("tag_separator", ",")) or ",",
        comments=data.get("comments") and _text(path, "comments", data["comments"]),
        comments_public=public,
        columns=columns,
        description=tuple(parts),
        description_separator=_text(path, "description.separator", description.get("separator", "\n\n")),
        values=values,
        fixed=fixed,
        optional=frozenset(optional),
        nobody=frozenset(v.strip().casefold() for v in nobody),
        footer=data.get("footer") and _text(path, "footer", data["footer"]),
        alternatives=alternatives,
    )


def _extended(path: Path, data: dict[str, Any]) -> ColumnMapping:
    """A mapping that ``extends`` a preset (or another mapping file): its own keys on top of
    the base's; its value maps add to (and override entries of) the base's."""
    from dataclasses import replace

    base_name = _text(path, "extends", data["extends"])
    base_path = path.parent / base_name if Path(base_name).suffix else base_name
    base = load_mapping(base_path)
    own = _parse(path, {k: v for k, v in data.items() if k != "extends"})
    values = dict(base.values)
    for name, vmap in own.values.items():
        prior = values.get(name)
        values[name] = ValueMap({**(prior.table if prior else {}), **vmap.table},
                                vmap.default if vmap.default is not None else (prior.default if prior else None),
                                vmap.by or (prior.by if prior else None),
                                {**(prior.by_table if prior else {}), **vmap.by_table})
    return replace(
        base,
        name=path.stem,
        integration=own.integration if "integration" in data else base.integration,
        legacy_id=own.legacy_id if "legacy_id" in data else base.legacy_id,
        url=own.url if "url" in data else base.url,
        tag_separator=own.tag_separator if "tag_separator" in data else base.tag_separator,
        comments=own.comments if "comments" in data else base.comments,
        comments_public=own.comments_public if "comments_public" in data else base.comments_public,
        columns={**base.columns, **own.columns},
        description=own.description if "description" in data else base.description,
        description_separator=(own.description_separator if "description" in data
                               else base.description_separator),
        values=values,
        fixed={**base.fixed, **own.fixed},
        optional=base.optional | own.optional,
        nobody=base.nobody | own.nobody,
        footer=own.footer if "footer" in data else base.footer,
        alternatives={**{k: v for k, v in base.alternatives.items()
                         if k not in own.columns and not (k == LEGACY and "legacy_id" in data)},
                      **own.alternatives},
    )


def _csv_file(path: Path, what: str) -> csv.DictReader[str]:
    """A UTF-8 CSV the user gave bulksync (users, comments), as dict rows."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise UsageError(f"{path}: cannot read the {what} file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the {what} file must be UTF-8 text") from None
    return csv.DictReader(io.StringIO(text))


def load_users(path: Path | str) -> Users:
    """The users CSV: columns ``user`` and ``slackId``, optionally ``name``."""
    path = Path(path)
    reader = _csv_file(path, "users")
    fields = set(reader.fieldnames or [])
    if not {"user", "slackId"} <= fields:
        raise UsageError(f"{path}: the users file needs the columns user and slackId "
                         f"(it has {', '.join(sorted(fields)) or 'none'})")
    by_user: dict[str, User] = {}
    for number, row in enumerate(reader, start=2):
        user, slack = (row.get("user") or "").strip(), (row.get("slackId") or "").strip()
        if not user and not slack:
            continue
        if not re.fullmatch(MEMBER_PATTERN, slack):
            raise UsageError(f"{path}: row {number}, column slackId: {slack!r} is not a Slack member ID")
        by_user[user.casefold()] = User(slack, (row.get("name") or "").strip())
    return Users(by_user, path)


def _column(table: Table, name: str) -> pd.Series | None:
    where = table.position(name)
    return None if where is None else table.frame[where].str.strip()


def _all_columns(table: Table, name: str) -> list[pd.Series]:
    return [table.frame[i] for i, h in enumerate(table.header) if h.strip() == name]


@dataclass
class _Reader:
    """The source columns the map stage reads: each is noted as used, each missing one as a problem."""

    table: Table
    problems: list[Problem] = field(default_factory=list)
    consumed: set[str] = field(default_factory=set)
    optional: frozenset[str] = frozenset()

    def need(self, name: str, where: str) -> pd.Series | None:
        """The column ``name``, stripped; None when the sheet has none (and a problem, unless
        the mapping lists it as optional)."""
        series = _column(self.table, name)
        if series is None and name not in self.optional:
            self.problems.append(Problem(1, name, f"the mapping ({where}) reads a column {name!r} that "
                                                  "this sheet does not have", "missing-column"))
        self.consumed.add(name)
        return series

    def all_columns(self, name: str) -> list[pd.Series]:
        """Every column headed ``name``, as they are (maybe none)."""
        self.consumed.add(name)
        return _all_columns(self.table, name)


def apply_mapping(table: Table, mapping: ColumnMapping | None, *, users: Users | None = None,
                  default_requester: str | None = None,
                  comments: MappingABC[str, list[Comment]] | None = None) -> Mapped:
    """``table`` in Suptask's columns. Without a mapping, only users are applied."""
    import pandas as pd

    from bulksync.sheets.table import Table as TableType

    if mapping is None:
        return _users_in_place(table, users, default_requester)
    table, notes = _without_footer(table, mapping.footer)
    notes = (*(m.note for m in mapping.marks), *notes)
    index = table.frame.index
    mapping = mapping.for_sheet(table)
    reader = _Reader(table, optional=mapping.optional)
    out: dict[str, pd.Series] = {}
    source_of: dict[str, str] = {}
    for name in OWNED_COLUMNS:
        series = _column(table, name)
        if series is not None:
            out[name] = series
    if mapping.description:
        description = _compose_description(reader, mapping)
        if description is not None:
            out["description"] = description
            source_of["description"] = " + ".join(c for c in mapping.description
                                                  if table.position(c) is not None)
    for name, source in mapping.columns.items():
        where = f"columns.{name}" + "".join(f", or {c!r}" for c in mapping.alternatives.get(name, ()))
        series = (_tags(reader, source, mapping.tag_separator) if name == "tags"
                  else reader.need(source, where))
        if series is not None:
            out[name] = series
            source_of[name] = source
    where = (f"a mapping file with extends = \"{mapping.name}\" (it keeps the rest of the preset)"
             if mapping.name in preset_names() else "the mapping file")
    for name, vmap in mapping.values.items():
        if name in out:
            by = _column(table, vmap.by) if vmap.by else None
            out[name], said = _map_values(out[name], vmap, name, reader.problems, where, by=by)
            notes = (*notes, *said)
    for name, value in mapping.fixed.items():
        out[name] = pd.Series(value, index=index, dtype=str)
    for name in ("requester", "assignee"):
        if name in out and mapping.nobody:
            out[name] = out[name].where(~out[name].str.casefold().isin(mapping.nobody), "")
    _map_user_columns(out, users, default_requester, reader.problems)
    legacy = _legacy_ids(reader, mapping.legacy_id, mapping.alternatives.get(LEGACY, ())) if mapping.legacy_id else {}
    thread = _comment_threads(reader, mapping, legacy, comments, users)
    _keep_other_columns(reader, out)
    problems = reader.problems
    # Problems in the order the user sees the sheet: by row, then by the source column's place.
    problems.sort(key=lambda p: (p.row_number, table.position(source_of.get(p.column or "", "")) or 0))
    header = tuple(out)
    mapped_frame = pd.DataFrame({i: s for i, s in enumerate(out.values())}, index=index)
    mapped = TableType(path=table.path, header=header, frame=mapped_frame, format=table.format,
                       fingerprint=table.fingerprint)
    return Mapped(table=mapped, problems=tuple(problems), legacy_ids=legacy, comments=thread,
                  source_of=source_of, notes=notes)


def _without_footer(table: Table, footer: str | None) -> tuple[Table, tuple[str, ...]]:
    """``table`` without its last row if that is the exporter's footer (:func:`footer_row`,
    its first cell starting with ``footer``), and the note that says so."""
    from dataclasses import replace

    found = footer_row(table.frame) if footer else None
    if found is None or not footer or not found[1].startswith(footer):
        return table, ()
    number, text = found
    return (replace(table, frame=table.frame.drop(index=number)),
            (f"row {number} is the exporter's footer ({text[:40]}…), not a ticket: left out",))


def footer_row(frame: pd.DataFrame) -> tuple[int, str] | None:
    """The one rule for an exporter's footer (Jira Server's ``Generated at … using JIRA``),
    which the map stage leaves out and ``mapping suggest`` looks for: the last row that is
    not blank, when its first cell alone is filled → (its row number, that cell, stripped)."""
    for i in range(len(frame) - 1, -1, -1):
        cells = [str(v).strip() for v in frame.iloc[i]]
        if any(cells):
            return (int(frame.index[i]), cells[0]) if cells[0] and not any(cells[1:]) else None
    return None


def _users_in_place(table: Table, users: Users | None, default_requester: str | None) -> Mapped:
    """A sheet already in Suptask's columns: only its users change, in place."""
    from bulksync.sheets.table import Table as TableType

    if users is None and not default_requester:
        return Mapped(table, (), {}, {}, {})
    frame = table.frame
    problems: list[Problem] = []
    changed = frame.copy()
    for name in ("requester", "assignee"):
        where = table.position(name)
        if where is not None:
            changed[where] = _map_users(frame[where].str.strip(), users, name, problems,
                                        default_requester if name == "requester" else None)
    mapped = TableType(path=table.path, header=table.header, frame=changed, format=table.format,
                       fingerprint=table.fingerprint)
    return Mapped(mapped, tuple(problems), {}, {}, {})


def _compose_description(reader: _Reader, mapping: ColumnMapping) -> pd.Series | None:
    """The description from ``mapping.description``'s columns, empty cells skipped; None, and a
    problem, when the sheet has none of them."""
    parts = [s for s in (_column(reader.table, c) for c in mapping.description) if s is not None]
    reader.consumed.update(mapping.description)
    if not parts:
        reader.problems.append(Problem(1, mapping.description[0], "the mapping composes the description "
                                       f"from {', '.join(mapping.description)}; none is in this sheet",
                                       "missing-column"))
        return None
    text = parts[0]
    for part in parts[1:]:
        text = text.where(part.eq(""), text + mapping.description_separator + part) \
            .where(text.ne(""), part)
    return text


def _tags(reader: _Reader, source: str, separator: str) -> pd.Series | None:
    """The tags of every column headed ``source`` (Jira repeats Labels), one comma-separated cell a
    row; None, and a problem, when the sheet has no such column."""
    import pandas as pd

    found = reader.all_columns(source)
    if not found:
        reader.need(source, "columns.tags")
        return None
    split = [s.str.split(separator) if separator.strip() else s.str.split() for s in found]
    joined = [",".join(t.strip() for lst in lists for t in lst if t.strip())
              for lists in zip(*[s.tolist() for s in split], strict=True)]
    return pd.Series(joined, index=reader.table.frame.index, dtype=str)


def _map_user_columns(out: dict[str, pd.Series], users: Users | None, default_requester: str | None,
                      problems: list[Problem]) -> None:
    """Map requester and assignee in ``out`` through the users file (requester also to the
    default requester), in place."""
    for name in ("requester", "assignee"):
        if name in out and (users is not None or (name == "requester" and default_requester)):
            out[name] = _map_users(out[name], users, name, problems,
                                   default_requester if name == "requester" else None)


def _legacy_ids(reader: _Reader, column: str, others: tuple[str, ...]) -> dict[int, str]:
    """Row number → the old ticket's ID, for the rows that have one."""
    ids = reader.need(column, "legacy_id" + "".join(f", or {c!r}" for c in others))
    if ids is None:
        return {}
    return {int(r): v for r, v in zip(reader.table.frame.index, ids.tolist(), strict=True) if v}


def _comment_threads(reader: _Reader, mapping: ColumnMapping, legacy: dict[int, str],
                     comments: MappingABC[str, list[Comment]] | None,
                     users: Users | None) -> dict[int, list[Comment]]:
    """Row number → its comments: the sheet's comment columns, then the comments file's (by legacy
    ID); authors get their names from the users file."""
    thread: dict[int, list[Comment]] = {}
    if mapping.comments:
        index = reader.table.frame.index
        for series in reader.all_columns(mapping.comments):
            for row, cell in zip(index, series.tolist(), strict=True):
                if cell.strip():
                    thread.setdefault(int(row), []).append(_jira_comment(cell, mapping.comments_public))
    if comments:
        for row, legacy_id in legacy.items():
            if legacy_id in comments:
                thread.setdefault(row, []).extend(comments[legacy_id])
    if users is not None:
        thread = {row: [_named(c, users) for c in cs] for row, cs in thread.items()}
    return thread


def _keep_other_columns(reader: _Reader, out: dict[str, pd.Series]) -> None:
    """Add the export's other columns to ``out``: they stay, as the user's own (never sent,
    named once as such)."""
    table = reader.table
    for name in (h.strip() for h in table.header):
        if name and name not in reader.consumed and canonical_column(name) is None:
            out.setdefault(name, table.frame[table.position(name)])


def _map_values(series: pd.Series, vmap: ValueMap, name: str, problems: list[Problem],
                where: str, *, by: pd.Series | None = None) -> tuple[pd.Series, tuple[str, ...]]:
    """The column's values mapped, and notes: a value the map lacks is mapped by the row's
    ``by`` cell where the mapping says so (a custom Jira status by its Status Category),
    and said once per value."""
    import pandas as pd

    keys = series.str.strip().str.casefold().tolist()
    mapped = [vmap.table.get(k, vmap.default if k else "") for k in keys]
    fallen: dict[str, dict[str, int]] = {}
    if by is not None:
        kinds = by.reindex(series.index, fill_value="").str.strip().tolist()
        for i, (value, kind) in enumerate(zip(series.tolist(), kinds, strict=True)):
            if mapped[i] is None and kind.casefold() in vmap.by_table:
                mapped[i] = vmap.by_table[kind.casefold()]
                said = fallen.setdefault(f"{str(value).strip()!r} → {mapped[i]!r} (its {vmap.by} is {kind!r})", {})
                said[kind] = said.get(kind, 0) + 1
    notes = tuple(f"{name} {text}, for {sum(n.values())} row(s): not in the mapping's [values.{name}], "
                  f"mapped by {vmap.by}" for text, n in fallen.items())
    for row, value, result in zip(series.index, series.tolist(), mapped, strict=True):
        if result is None:
            key = str(value).strip().casefold()
            problems.append(Problem(int(row), name, (
                f"{value!r} has no {name} in the mapping; add it to [values.{name}] in {where}, "
                f"e.g. map = {{ {toml_string(key)} = \"…\" }}, or give a default"), "unmapped-value", str(value)))
    return pd.Series([m or "" for m in mapped], index=series.index, dtype=str), notes


def _map_users(series: pd.Series, users: Users | None, name: str, problems: list[Problem],
               default: str | None) -> pd.Series:
    import pandas as pd

    out = []
    for row, value in zip(series.index, series.tolist(), strict=True):
        user = users.get(value) if users is not None and value else None
        if not value or user is not None:
            out.append(user.slack_id if user else value)
        elif re.fullmatch(MEMBER_PATTERN, value):
            out.append(value)
        elif default:
            out.append(default)
        else:
            fallback = " or give --default-requester" if name == "requester" else ""
            if users is None:
                message = (f"{value!r} is not a Slack member ID: give --users FILE (a CSV of email → "
                           f"Slack member ID){fallback}")
            else:
                where = f" ({users.path})" if users.path else ""
                message = f"{value!r} is not in the users file{where}; add it{fallback}"
            problems.append(Problem(int(row), name, message, "unknown-user", str(value)))
            out.append(value)
    return pd.Series(out, index=series.index, dtype=str)


def _jira_comment(cell: str, public: bool) -> Comment:
    """Jira's export: ``date;author;body`` (the body may itself hold semicolons). The body is
    kept as written: a code block's or a quote's indentation is part of it."""
    parts = cell.split(";", 2)
    if len(parts) == 3:
        return Comment(author=parts[1].strip(), body=parts[2], public=public,
                       created_at=parts[0].strip())
    return Comment(author="", body=cell, public=public)


def _named(comment: Comment, users: Users) -> Comment:
    user = users.get(comment.author)
    if user is None or not user.name:
        return comment
    return Comment(author=user.name, body=comment.body, public=comment.public, created_at=comment.created_at)


def load_comments(path: Path | str) -> dict[str, list[Comment]]:
    """``--comments FILE``: a CSV with externalId, author, body, public, createdAt; oldest first."""
    path = Path(path)
    reader = _csv_file(path, "comments")
    needed = {"externalId", "author", "body", "public", "createdAt"}
    missing = needed - set(reader.fieldnames or [])
    if missing:
        raise UsageError(f"{path}: the comments file needs the columns {', '.join(sorted(needed))} "
                         f"(missing: {', '.join(sorted(missing))})")
    rows: list[tuple[str, str, int, Comment]] = []
    for number, row in enumerate(reader, start=2):
        public = (row["public"] or "").strip().lower()
        if public not in ("true", "false", "1", "0", "yes", "no"):
            raise UsageError(f"{path}: row {number}, column public: {row['public']!r} is not true or false")
        body = row["body"] or ""  # kept as written: indentation and line breaks are the text's
        if not body.strip():
            continue
        rows.append((row["externalId"].strip(), row["createdAt"].strip(), number,
                     Comment(author=row["author"].strip(), body=body, public=public in ("true", "1", "yes"),
                             created_at=row["createdAt"].strip())))
    out: dict[str, list[Comment]] = {}
    for external_id, _, _, comment in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        out.setdefault(external_id, []).append(comment)
    return out

