"""Settings from ``bulksync.toml`` (beside the sheet, or ``--config``), the environment and options.

Precedence, strongest first: an option given to the call or on the command
line, then the environment (``SUPTASK_API_URL``), then the config file, then
bulksync's defaults. ``set`` values merge, the option winning per field.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulksync.api import DEFAULT_API_URL
from bulksync.columns import Defaults
from bulksync.errors import UsageError

__all__ = ["CONFIG_NAME", "Settings", "resolve_settings"]

CONFIG_NAME = "bulksync.toml"
_KEYS: dict[str, type | tuple[type, ...]] = {"api_url": str, "form_id": str, "channel": str, "sheet": str, "concurrency": int,
         "rate": (int, float), "set": dict}


@dataclass(frozen=True)
class Settings:
    """Everything a command needs besides the sheet and the token."""

    defaults: Defaults = field(default_factory=Defaults)
    sheet: str | None = None
    api_url: str = DEFAULT_API_URL
    concurrency: int = 4
    rate: float | None = None
    config_path: Path | None = None


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
        if not isinstance(value, _KEYS[key]) or isinstance(value, bool):
            raise UsageError(f"{path}: {key} has the wrong type ({type(value).__name__})")
    for key, value in data.get("set", {}).items():
        if not isinstance(value, str):
            raise UsageError(f"{path}: set.{key} must be a string")
    return data


def resolve_settings(sheet_path: Path | str, *, config: Path | str | None = None,
                     sheet: str | None = None, form_id: str | None = None,
                     channel: str | None = None, set: Mapping[str, str] | None = None,
                     api_url: str | None = None, concurrency: int | None = None,
                     rate: float | None = None) -> Settings:
    """Merge options, environment and the config file into Settings."""
    config_path: Path | None
    if config is not None:
        config_path = Path(config)
        if not config_path.is_file():
            raise UsageError(f"{config_path}: no such config file")
    else:
        beside = Path(sheet_path).parent / CONFIG_NAME
        config_path = beside if beside.is_file() else None
    data = _load(config_path) if config_path else {}
    values = {**data.get("set", {}), **(set or {})}
    conc = concurrency if concurrency is not None else data.get("concurrency", 4)
    if conc < 1:
        raise UsageError("concurrency must be at least 1")
    pace = rate if rate is not None else data.get("rate")
    if pace is not None and pace <= 0:
        raise UsageError("rate must be a positive number of requests per second")
    defaults = Defaults(form_id=form_id or data.get("form_id"),
                        channel=channel or data.get("channel"), set=values)
    defaults.check()
    return Settings(
        defaults=defaults,
        sheet=sheet or data.get("sheet"),
        api_url=api_url or os.environ.get("SUPTASK_API_URL") or data.get("api_url") or DEFAULT_API_URL,
        concurrency=conc,
        rate=float(pace) if pace is not None else None,
        config_path=config_path,
    )
