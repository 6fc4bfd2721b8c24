"""The docs document every command and option, the README stays a front page, the
manual's links lead somewhere, "How it works" names every module by its stage, and
shell completion works as docs/completion.md shows it."""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bulksync.cli import main
from tests.test_layout import STAGES, parsed

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bulksync"
README_PATH = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
README = README_PATH.read_text(encoding="utf-8")
DOCS = README + "".join(page.read_text(encoding="utf-8") for page in PAGES)
"""The README and every page of the manual, as one text."""


def test_every_command_has_help_and_is_on_the_front_page() -> None:
    for name, command in main.commands.items():
        assert command.help, name
        assert f"bulksync {name}" in README, name


def test_every_option_of_every_command_is_in_the_docs() -> None:
    missing = [f"{name} {opt}" for name, command in main.commands.items() for param in command.params
               for opt in (*param.opts, *param.secondary_opts)
               if opt.startswith("--") and not re.search(rf"{re.escape(opt)}(?![\w-])", DOCS)]
    assert missing == []


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_quick_start_is_two_commands() -> None:
    quick = _section(README, "## Quick start")
    commands = [line[4:].split("#")[0].strip() for line in quick.splitlines() if line.startswith("    ")]
    assert commands == ["make demo", "make test"]


def test_the_readme_is_a_front_page() -> None:
    """At most 250 lines (issue 26), and it leads to every page of the manual."""
    assert len(README.splitlines()) <= 250
    for page in PAGES:
        assert f"](docs/{page.name})" in README, page.name


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def broken_links(path: Path) -> list[str]:
    """Links of a page to a file of this repository, or to a heading, that lead nowhere."""
    broken = []
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and anchor not in _anchors(linked)):
            broken.append(target)
    return broken


def test_every_link_leads_somewhere() -> None:
    assert [f"{page.relative_to(ROOT)}: {target}" for page in (README_PATH, ROOT / "CHANGELOG.md", *PAGES)
            for target in broken_links(page)] == []


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "a.md"
    page.write_text("# The top: a page\n\n[x](b.md) [y](#the-top-a-page) [z](#nowhere) [w](a.md#the-top-a-page)"
                    " [v](a.md#top) [u](https://example.com/b.md)\n\n```\n# not a heading\n```\n"
                    "[t](#not-a-heading)\n")
    assert broken_links(page) == ["b.md", "#nowhere", "a.md#top", "#not-a-heading"]


# How it works: the table of modules by stage


def how_it_works_problems(text: str) -> list[str]:
    """What the table in docs/how-it-works.md gets wrong: its stages must be
    tests/test_layout.py's, in order; every module of the package must be named in the row of
    its stage (a folder, ``sandbox/``, names what is in it; a file holding only a docstring
    needs no row); every file the table names must exist."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("| ") else []
        if len(cells) == 2 and cells[0] not in ("stage", "---"):
            rows[cells[0]] = re.findall(r"`([\w/]+(?:\.py|/))`", cells[1])
    problems = []
    if list(rows) != [stage for stage, _ in STAGES]:
        problems.append(f"stages {list(rows)} are not tests/test_layout.py's {[s for s, _ in STAGES]}")
    stage_of = {name: stage for stage, names in STAGES for name in names}
    for stage, named in rows.items():
        problems += [f"{stage}: {name} does not exist" for name in named if not (PACKAGE / name).exists()]
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        body = parsed(path).body
        if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            continue
        module = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        rows_naming = [stage for stage, named in rows.items()
                       if relative in named or any(n.endswith("/") and relative.startswith(n) for n in named)]
        if not rows_naming:
            problems.append(f"{relative} is in no row")
        elif rows_naming != [stage_of.get(module)]:
            problems.append(f"{relative} is under {rows_naming}, tests/test_layout.py has it in "
                            f"{stage_of.get(module)}")
    return problems


HOW_IT_WORKS = (ROOT / "docs" / "how-it-works.md").read_text(encoding="utf-8")


def test_how_it_works_names_every_module_by_its_stage() -> None:
    assert how_it_works_problems(HOW_IT_WORKS) == []


def test_the_module_table_check_can_fail() -> None:
    assert how_it_works_problems(HOW_IT_WORKS.replace(", `lock.py` (one writer per sheet)", "")) == [
        "lock.py is in no row"]
    assert how_it_works_problems(HOW_IT_WORKS.replace("`memo.py`", "`memo2.py`")) == [
        "shared: memo2.py does not exist", "memo.py is in no row"]
    moved = HOW_IT_WORKS.replace(", `lock.py` (one writer per sheet)", "").replace(
        "`config.py` |", "`config.py`, `lock.py` |")
    assert how_it_works_problems(moved) == [
        "lock.py is under ['map, validate'], tests/test_layout.py has it in run"]


# Shell completion, as docs/completion.md sets it up


def _console_script() -> str:
    script = Path(sys.executable).parent / "bulksync"
    assert script.exists(), f"{script}: install bulksync into the venv (make test does)"
    return str(script)


def _complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SUPTASK_", "_BULKSYNC", "COMP_"))}
    return subprocess.run([_console_script()], capture_output=True, text=True, timeout=60,
                          env={**full, **env})


COMPLETION = (ROOT / "docs" / "completion.md").read_text(encoding="utf-8")
SCRIPT_SIGNS = {
    "bash": ["_bulksync_completion() {", "complete -o nosort -F _bulksync_completion bulksync"],
    "zsh": ["#compdef bulksync", "compdef _bulksync_completion bulksync"],
    "fish": ["function _bulksync_completion", "complete --no-files --command bulksync"],
}
"""What each shell's completion script must hold: its function, registered for bulksync."""


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_page_sets_up_each_shell(shell: str) -> None:
    """Every way the page shows to get the script (in the startup file, or saved once)
    runs the installed console script with that shell's instruction."""
    shown = re.findall(r"_BULKSYNC_COMPLETE=(\w+) bulksync", COMPLETION)
    assert shown.count(f"{shell}_source") == 2, shown
    result = _complete({"_BULKSYNC_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0, result.stderr
    for sign in SCRIPT_SIGNS[shell]:
        assert sign in result.stdout, (shell, sign)


def test_a_completion_request_returns_the_commands() -> None:
    asked = next(line for line in COMPLETION.splitlines() if line.startswith("COMP_WORDS="))
    env = dict(word.split("=", 1) for word in shlex.split(asked)[:-1])
    assert env == {"COMP_WORDS": "bulksync pu", "COMP_CWORD": "1", "_BULKSYNC_COMPLETE": "bash_complete"}
    result = _complete(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain,pull", "plain,push"]
    everything = _complete({**env, "COMP_WORDS": "bulksync ", "COMP_CWORD": "1"})
    assert {line.removeprefix("plain,") for line in everything.stdout.split()} == set(main.commands)
    options = _complete({**env, "COMP_WORDS": "bulksync push --re", "COMP_CWORD": "2"})
    assert "plain,--retry-uncertain" in options.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_bash_completes_through_the_script(tmp_path: Path) -> None:
    """The script the page puts in ~/.bashrc, loaded in a real bash, completes a command."""
    bin_dir = Path(_console_script()).parent
    program = ('eval "$(_BULKSYNC_COMPLETE=bash_source bulksync)"; '
               "COMP_WORDS=(bulksync pu); COMP_CWORD=1; _bulksync_completion bulksync; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_BULKSYNC", "COMP_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.stdout.split() == ["pull", "push"], result.stderr


def test_the_version_is_one_and_the_changelog_has_it() -> None:
    """pyproject.toml, bulksync.__version__ and the changelog's latest release agree."""
    import tomllib

    import bulksync

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(.+?)\]", changelog, flags=re.M)
    assert releases[0] == "Unreleased"
    assert declared == bulksync.__version__ == releases[1]
