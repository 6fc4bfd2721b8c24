"""Where the bundled sample sheets and templates are, installed or in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["bundled"]


def bundled(name: str) -> Path:
    """The folder ``name`` ("sample_data" or "templates"): inside the installed wheel, where
    the build puts it, or at the top of a source checkout (an editable install)."""
    inside = Path(str(resources.files("bulksync"))) / name
    if inside.is_dir():
        return inside
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"bulksync's {name} folder is missing from this installation")
