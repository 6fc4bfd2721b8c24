"""The README documents every command, and every command has help text."""

from __future__ import annotations

from pathlib import Path

from bulksync.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_command_has_help_and_is_in_the_readme() -> None:
    for name, command in main.commands.items():
        assert command.help, name
        assert f"bulksync {name}" in README, name


def test_every_push_option_is_in_the_readme() -> None:
    for param in main.commands["push"].params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in README, opt


def test_quick_start_is_two_commands() -> None:
    assert "make demo" in README and "make test" in README
