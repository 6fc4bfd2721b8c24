"""The public door stays honest, and --help stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bulksync


def test_all_is_sorted_and_importable() -> None:
    assert bulksync.__all__ == sorted(bulksync.__all__)
    for name in bulksync.__all__:
        assert hasattr(bulksync, name), name


def test_help_does_not_import_pandas_pandera_or_httpx() -> None:
    code = ("import sys; from bulksync.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'pandera', 'httpx', 'lxml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_calling_push_inside_a_running_event_loop_is_a_bulksync_error(tmp_path: Path) -> None:
    import asyncio

    import pytest

    from tests.conftest import CHANNEL, FORM, write

    sheet = write(tmp_path / "t.csv", "description\nx\n")

    async def inside() -> None:
        bulksync.push(sheet, token="t0ken-x", api_url="http://127.0.0.1:9", form_id=FORM, channel=CHANNEL)

    with pytest.raises(bulksync.UsageError, match="asyncio.to_thread"):
        asyncio.run(inside())
    assert sheet.read_text() == "description\nx\n"
