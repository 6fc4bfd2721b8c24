"""The README and the manual are true (issues 16, 26): every command they show runs as
printed, in order, page by page, each page in a fresh folder holding the sample data,
against a fresh sandbox started with ``--samples``.

A page runs on its own, as a reader who lands on it would run it: a page whose commands
need an earlier step (a push before a pull, a run before an undo) prints that step."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from tests.conftest import TOKEN, run_cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
"""The front page, then every page of the manual."""

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
    """(line, command) for every shell command in a page's code blocks: indented blocks
    (in a list item too: indented four past the item's text) and ``sh`` fences; a ``$``
    prompt is dropped, output lines are skipped."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    item = 0  # where the text of the list item being read starts (0: no list)
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else (line.lstrip()[3:].strip() or "text")
            continue
        started = re.match(r" {0,3}(?:[-*+]|\d+[.)]) +", line)
        if fence is None and started:
            item = len(started.group(0))
        elif fence is None and line.strip() and not line.startswith(" "):
            item = 0  # a paragraph at the margin ends the list
        if fence is not None:
            code = line.strip() if fence in ("sh", "bash", "shell") else None
        else:
            indent = " " * (item + 4)
            code = line[len(indent):] if line.startswith(indent) and not line[len(indent)] == " " else None
        if code is None:
            continue
        code = code.removeprefix("$ ").strip()
        if re.match(r"(\.venv/bin/)?bulksync |cp ", code):
            out.append((number, code))
    return out


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_extractor_finds_the_commands_and_only_them() -> None:
    text = ("Run\n\n    bulksync plan a.csv   # look\n    a.csv: 1 to create\n\n"
            "```sh\n$ bulksync push a.csv\n```\n```toml\nbulksync = 1\n```\n"
            "- a list item\n\n      bulksync validate in-a-list.csv\n\n  bulksync in the item's text\n"
            "1. **Step**\n\n       bulksync plan step.csv\n\n   ```sh\n   bulksync push step.csv\n   ```\n"
            "\nBack at the margin\n\n      bulksync in a paragraph's indented code block plus two\n")
    assert readme_commands(text) == [(3, "bulksync plan a.csv   # look"), (7, "bulksync push a.csv"),
                                     (14, "bulksync validate in-a-list.csv"), (19, "bulksync plan step.csv"),
                                     (22, "bulksync push step.csv")]


def test_the_pages_show_the_commands_of_each_job() -> None:
    """A page that lost its commands would pass the run below with nothing run."""
    counts = {_name(p): len(readme_commands(p.read_text(encoding="utf-8"))) for p in PAGES}
    assert counts["README.md"] >= 12
    for page in ("migrate", "bulk-close", "round-trip", "undo", "sending", "sandbox"):
        assert counts[f"docs/{page}.md"] >= 2, page
    assert sum(counts.values()) >= 40


def test_every_exit_code_named_is_of_a_command_shown() -> None:
    shown = {c.split("#")[0].strip()
             for p in PAGES for _, c in readme_commands(p.read_text(encoding="utf-8"))}
    assert set(EXIT) <= shown


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    samples = bundled("sample_data")
    shutil.copytree(samples, tmp_path / "sample_data")
    for part in samples.iterdir():  # the commands name the samples by themselves, too
        shutil.copy(part, tmp_path / part.name)
    return tmp_path


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_command_of_the_page_runs_as_printed(page: Path, folder: Path) -> None:
    commands = readme_commands(page.read_text(encoding="utf-8"))
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
                f"{_name(page)} line {line}: {command}\n{result.stdout}{result.stderr}")
            assert "Traceback" not in result.stderr, f"{_name(page)} line {line}: {command}"
    if any("push close-tickets.csv --set status=Closed" in c for _, c in commands):
        assert {t["status"] for t in sb.tickets() if t["description"].startswith("Sample ticket")} == {"Closed"}


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line, code) of every ``python`` fence of a page."""
    blocks, start, lines = [], 0, text.splitlines()
    for number, line in enumerate(lines, 1):
        if line.strip() == "```python":
            start = number
        elif line.strip() == "```" and start:
            blocks.append((start, "\n".join(lines[start:number - 1])))
            start = 0
    return blocks


def test_the_python_page_runs_as_printed(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """docs/python.md's sessions, in order, each a session of its own (a fresh sandbox and
    state: the page's sheets hold the same rows, which bulksync would take for copies), each
    as Jupyter runs a cell: a cell with a top-level ``await`` runs inside an event loop (so
    the plain calls in it run inside a running loop too, as in a notebook)."""
    import ast
    import asyncio
    import inspect

    page = ROOT / "docs" / "python.md"
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    assert len(blocks) >= 2 and any("await " in code for _, code in blocks)
    monkeypatch.chdir(folder)
    for line, code in blocks:
        namespace: dict[str, Any] = {}
        monkeypatch.setenv("BULKSYNC_HOME", str(tmp_path_factory.mktemp("home")))
        with Sandbox(token=TOKEN) as sb:
            monkeypatch.setenv("SUPTASK_API_URL", sb.url)
            monkeypatch.setenv("SUPTASK_API_TOKEN", TOKEN)
            compiled = compile(code, f"docs/python.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            outcome = eval(compiled, namespace)  # noqa: S307 - the page's own code
            if inspect.iscoroutine(outcome):
                asyncio.run(outcome)
            made = len(sb.tickets())
        result = namespace["result"]
        assert result.ok and made == result.counts["created"] > 0, line
        if "undone" in namespace:  # the notebook session: a frame of the rows, an undo planned
            assert len(namespace["frame"]) == len(result.results)
            assert len(namespace["undone"].plan.operations) == made


def test_the_samples_flag_holds_the_close_list(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN, samples=True) as sb:
        ids = {t["id"] for t in sb.tickets()}
    listed = (bundled("sample_data") / "close-tickets.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert ids == {line.split(",")[0] for line in listed}
