"""The public door stays honest, and --help stays light."""

from __future__ import annotations

import subprocess
import sys

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
