"""The built wheel carries the samples and templates: the demo runs from it, away from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_runs_from_the_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("bulksync-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    for needed in ("bulksync/sample_data/new-tickets.csv", "bulksync/sample_data/new-tickets.xlsx",
                   "bulksync/templates/close-tickets.xlsx", "bulksync/sandbox/openapi.json",
                   "bulksync/templates/presets/jira.toml", "bulksync/sample_data/users.csv",
                   "bulksync/py.typed"):
        assert needed in names, needed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUPTASK_")},
           "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import bulksync; print(bulksync.__file__)"],
                           capture_output=True, text=True, env=env, cwd=elsewhere, check=True)
    assert where.stdout.strip() == str(site / "bulksync" / "__init__.py")
    result = subprocess.run([sys.executable, "-m", "bulksync", "demo"], capture_output=True,
                            text=True, env=env, cwd=elsewhere, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 created with 10 requests" in result.stdout
