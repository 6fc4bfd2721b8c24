"""Settings from ``bulksync.toml`` (beside the sheet, or ``--config``), the environment and options.

Precedence, strongest first: an option given to the call or on the command
line, then the environment (``SUPTASK_API_URL``), then the config file, then
bulksync's defaults. ``set`` values merge, the option winning per field.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit

from bulksync.columns import API_FIELDS, CUSTOM_FIELD_PREFIX, TICKET_ID, Defaults
from bulksync.errors import UsageError
from bulksync.untrusted import clean, shown_url

if TYPE_CHECKING:
    from bulksync.mapping import ColumnMapping, Comment, Users

__all__ = ["CONFIG_NAME", "DEFAULT_API_URL", "Settings", "SheetOptions", "check_api_url", "is_loopback",
           "resolve_settings"]

DEFAULT_API_URL = "https://public-api-prod.suptask.com/api/v2/public"

DEFAULT_SETTLE = 60.0
"""Seconds after which a create whose answer was lost is surely done at the server."""
DEFAULT_TIMEOUT = 30.0
"""Seconds a request may take; the settle time can be no shorter."""
DEFAULT_CONCURRENCY = 4
"""Requests in flight at once (``--concurrency``)."""


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine (127.0.0.0/8, ::1, localhost)?"""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def check_api_url(url: str) -> str:
    """The API URL, checked: a well-formed http(s) URL (surrounding whitespace stripped), and
    plain http only to a loopback host (the sandbox): tokens must not cross a network in clear."""
    url = url.strip()
    if url == DEFAULT_API_URL:  # known good; a plan without a URL need not import httpx for it
        return url
    import httpx

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range or not a number raises here
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as e:
        raise UsageError(f"the API URL {shown_url(url)!r} is not a valid URL ({clean(str(e), limit=80)})") \
            from None
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"the API URL {shown_url(url)!r} carries a user name or password: remove it "
                         "(the API takes only the token, from SUPTASK_API_TOKEN)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL {shown_url(url)!r} is not an http(s) URL")
    if parts.scheme == "http":
        if not is_loopback(parts.hostname):
            raise UsageError(f"the API URL {shown_url(url)!r} uses plain http: use https "
                             "(plain http is allowed only to 127.0.0.1 / localhost)")
    return url.rstrip("/")


class SheetOptions(TypedDict, total=False):
    """The options every command that reads a sheet takes (see :func:`resolve_settings`)."""

    sheet: str | None
    config: Path | str | None
    form_id: str | None
    channel: str | None
    set: Mapping[str, str] | None
    mapping: str | Path | None
    users: str | Path | None
    comments: str | Path | None
    default_requester: str | None
    legacy_url: str | None
    encoding: str | None
    delimiter: str | None
    include_hidden: bool
    header_row: int | None


CONFIG_NAME = "bulksync.toml"
_KEYS: dict[str, type | tuple[type, ...]] = {
    "api_url": str, "form_id": str, "channel": str, "sheet": str, "concurrency": int,
    "rate": (int, float), "set": dict, "mapping": str, "users": str, "comments": str,
    "default_requester": str, "legacy_url": str, "token": str, "max_unpacked_mb": int,
    "encoding": str, "delimiter": str, "columns": dict, "own_columns": list, "include_hidden": bool,
    "header_row": int,
}
MAX_UNPACKED_ENV = "BULKSYNC_MAX_UNPACKED_MB"
MAX_ROWS = 1_048_576
"""Excel's last row."""
DEFAULT_MAX_UNPACKED_MB = 512


@dataclass(frozen=True)
class Settings:
    """Everything a command needs besides the sheet and the token."""

    defaults: Defaults = field(default_factory=Defaults)
    sheet: str | None = None
    api_url: str = DEFAULT_API_URL
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    config_path: Path | None = None
    token: str | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()
    mapping: ColumnMapping | None = None
    users: Users | None = None
    comments: Mapping[str, list[Comment]] | None = None
    default_requester: str | None = None
    max_unpacked_mb: int = DEFAULT_MAX_UNPACKED_MB
    """A workbook that unpacks to more than this many MiB is refused before parsing."""
    encoding: str | None = None
    delimiter: str | None = None
    """A CSV's encoding and delimiter, when not left to detection."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """Column → the sheet's header that holds it ([columns] in bulksync.toml)."""
    own_columns: frozenset[str] = frozenset()
    """Headers that are the user's own, however close to a known column's name."""
    include_hidden: bool = False
    """Push the rows a workbook's filter hides too."""
    header_row: int | None = None
    """The row that names the columns, when not row 1 (a title block above the table)."""


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: cannot read the config file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the config file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}; known keys are {', '.join(sorted(_KEYS))}")
    for key, value in data.items():
        if not isinstance(value, _KEYS[key]) or (isinstance(value, bool) and _KEYS[key] is not bool):
            raise UsageError(f"{path}: {key} has the wrong type ({type(value).__name__})")
    for table in ("set", "columns"):
        for key, value in data.get(table, {}).items():
            if not isinstance(value, str):
                raise UsageError(f"{path}: {table}.{key} must be a string")
    if not all(isinstance(v, str) for v in data.get("own_columns", [])):
        raise UsageError(f"{path}: own_columns must be a list of header names")
    for key in data.get("columns", {}):
        if key not in (TICKET_ID, *API_FIELDS) and not key.startswith(CUSTOM_FIELD_PREFIX):
            raise UsageError(f"{path}: columns.{key} is not a column bulksync fills; the keys of "
                             f"[columns] are {TICKET_ID}, {', '.join(API_FIELDS)} and "
                             f"{CUSTOM_FIELD_PREFIX}<uuid>")
    return data


def resolve_settings(sheet_path: Path | str, *, config: Path | str | None = None,
                     sheet: str | None = None, form_id: str | None = None,
                     channel: str | None = None, set: Mapping[str, str] | None = None,
                     mapping: str | Path | None = None, users: str | Path | None = None,
                     comments: str | Path | None = None, default_requester: str | None = None,
                     legacy_url: str | None = None, api_url: str | None = None,
                     concurrency: int | None = None, rate: float | None = None,
                     encoding: str | None = None, delimiter: str | None = None,
                     include_hidden: bool = False, header_row: int | None = None,
                     sheet_only: bool = False, no_mapping: bool = False) -> Settings:
    """Merge options, environment and the config file into Settings (files named in the
    config file are relative to it); load the mapping, users and comments files (not the
    users and comments with ``sheet_only``: what reading the sheet needs, for reset; nor the
    config's mapping with ``no_mapping``: an export read to suggest one)."""
    from dataclasses import replace

    from bulksync.mapping import load_comments, load_mapping, load_users

    config_path: Path | None
    if config is not None:
        config_path = Path(config)
        if not config_path.is_file():
            raise UsageError(f"{config_path}: no such config file")
    else:
        beside = Path(sheet_path).parent / CONFIG_NAME
        config_path = beside if beside.is_file() else None
    data = _load(config_path) if config_path else {}

    def from_config(key: str) -> Path | str | None:
        value: str | None = data.get(key)
        if value is None or key == "mapping" and not Path(value).suffix:
            return value  # a preset name, not a path
        assert config_path is not None
        return config_path.parent / value

    values = {**data.get("set", {}), **(set or {})}
    conc = concurrency if concurrency is not None else data.get("concurrency", DEFAULT_CONCURRENCY)
    if conc < 1:
        raise UsageError("concurrency must be at least 1")
    pace = rate if rate is not None else data.get("rate")
    if pace is not None and pace <= 0:
        raise UsageError("rate must be a positive number of requests per second")
    default_requester = default_requester or data.get("default_requester")
    defaults = Defaults(form_id=form_id or data.get("form_id"), channel=channel or data.get("channel"),
                        requester=default_requester, set=values)
    defaults.check()
    mapping_source = mapping or (None if no_mapping else from_config("mapping"))
    the_mapping = load_mapping(mapping_source) if mapping_source else None
    url = legacy_url or data.get("legacy_url")
    if the_mapping is not None and url:
        the_mapping = replace(the_mapping, url=url)
    warnings: list[str] = []
    token = data.get("token")
    if token and config_path is not None and config_path.stat().st_mode & 0o077:
        warnings.append(f"{config_path} holds the API token but others may read it; "
                        f"run: chmod 600 {config_path}")
    cap = data.get("max_unpacked_mb", DEFAULT_MAX_UNPACKED_MB)
    if os.environ.get(MAX_UNPACKED_ENV, "").strip():
        try:
            cap = int(os.environ[MAX_UNPACKED_ENV])
        except ValueError:
            raise UsageError(f"{MAX_UNPACKED_ENV} must be a whole number of MiB") from None
    if cap < 1:
        raise UsageError("max_unpacked_mb must be at least 1")
    top = header_row if header_row is not None else data.get("header_row")
    if top is not None and not 1 <= top <= MAX_ROWS:
        raise UsageError(f"header_row must be a row number from 1 to {MAX_ROWS:,}")
    users_source = None if sheet_only else users or from_config("users")
    comments_source = None if sheet_only else comments or from_config("comments")
    return Settings(
        defaults=defaults,
        sheet=sheet or data.get("sheet"),
        encoding=encoding or data.get("encoding"),
        delimiter=delimiter or data.get("delimiter"),
        columns=dict(data.get("columns", {})),
        own_columns=frozenset(h.strip() for h in data.get("own_columns", [])),
        include_hidden=include_hidden or bool(data.get("include_hidden")),
        header_row=top,
        api_url=check_api_url(api_url or os.environ.get("SUPTASK_API_URL", "").strip()
                              or data.get("api_url") or DEFAULT_API_URL),
        concurrency=conc,
        rate=float(pace) if pace is not None else None,
        config_path=config_path,
        mapping=the_mapping,
        users=load_users(users_source) if users_source else None,
        comments=load_comments(comments_source) if comments_source else None,
        default_requester=default_requester,
        token=token,
        warnings=tuple(warnings),
        max_unpacked_mb=cap,
    )
