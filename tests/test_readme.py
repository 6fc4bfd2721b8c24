"""The README is true (issue 16): every command it shows runs as printed, in order, in a
folder holding the sample data, against a sandbox started with ``--samples``."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from tests.conftest import TOKEN, run_cli

README = Path(__file__).resolve().parent.parent / "README.md"

NOT_RUN = {
    "sandbox": "runs until Ctrl-C; the sandbox itself serves these commands (tests/test_sandbox.py)",
    "demo": "make demo runs it; tests/test_cli.py and tests/test_wheel.py run it",
}
"""Commands this test does not run, and why."""

EXIT = {
    "bulksync validate sample_data/tickets-with-mistakes.csv": 1,  # shown for its problems
    "bulksync delete close-tickets.csv": 2,  # off a terminal without --yes: refused, as the text says
    "bulksync reset zendesk-export.csv": 2,  # the same
}
"""Commands whose documented outcome is not exit code 0."""


def readme_commands(text: str) -> list[tuple[int, str]]:
    """(line, command) for every shell command in the README's code blocks: indented blocks
    and ``sh`` fences; a ``$`` prompt is dropped, output lines are skipped."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fence = None if fence is not None else (line[3:].strip() or "text")
            continue
        if fence is not None:
            code = line if fence in ("sh", "bash", "shell") else None
        else:
            code = line[4:] if line.startswith("    ") and not line.startswith("     ") else None
        if code is None:
            continue
        code = code.removeprefix("$ ").strip()
        if re.match(r"(\.venv/bin/)?bulksync |cp ", code):
            out.append((number, code))
    return out


def test_the_extractor_finds_the_commands_and_only_them() -> None:
    text = ("Run\n\n    bulksync plan a.csv   # look\n    a.csv: 1 to create\n\n"
            "```sh\n$ bulksync push a.csv\n```\n```toml\nbulksync = 1\n```\n"
            "- a list item\n\n      bulksync in a list is prose\n")
    assert readme_commands(text) == [(3, "bulksync plan a.csv   # look"), (7, "bulksync push a.csv")]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    samples = bundled("sample_data")
    shutil.copytree(samples, tmp_path / "sample_data")
    for part in samples.iterdir():  # the commands name the samples by themselves, too
        shutil.copy(part, tmp_path / part.name)
    return tmp_path


def test_every_command_in_the_readme_runs_as_printed(folder: Path) -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 15
    ran = 0
    with Sandbox(token=TOKEN, samples=True) as sb:
        env = {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}
        for line, command in commands:
            words = shlex.split(command, comments=True)
            if words[0] == "cp":
                shutil.copy(folder / words[1], folder / words[2])
                continue
            if words[1] in NOT_RUN:
                continue
            result = run_cli(*words[1:], env=env, cwd=folder)
            expected = EXIT.get(command.split("#")[0].strip(), 0)
            assert result.returncode == expected, (
                f"README line {line}: {command}\n{result.stdout}{result.stderr}")
            assert "Traceback" not in result.stderr, f"README line {line}: {command}"
            ran += 1
    assert ran >= 15
    assert {t["status"] for t in sb.tickets() if t["description"].startswith("Sample ticket")} == {"Closed"}


def test_the_samples_flag_holds_the_close_list(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN, samples=True) as sb:
        ids = {t["id"] for t in sb.tickets()}
    listed = (bundled("sample_data") / "close-tickets.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert ids == {line.split(",")[0] for line in listed}
