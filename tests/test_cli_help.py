"""Help that tells enough: every command's --help (the lazy COMMANDS table walked, the emulator's
`reply` subcommand included) lists its exit codes, and the shared options say where their
defaults come from. That docs/cli.md says exactly what --help says is tests/test_docs.py's."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.cli._base import COMMANDS


def all_commands() -> dict[tuple[str, ...], click.Command]:
    """Every command by its words after `campaign`: () is the group itself."""
    ctx = click.Context(main)
    found: dict[tuple[str, ...], click.Command] = {(): main}
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        found[(name,)] = command
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                found[(name, sub_name)] = sub
    return found


COMMAND_KEYS = sorted(all_commands())


@pytest.mark.parametrize("key", [k for k in COMMAND_KEYS if k], ids=" ".join)
def test_every_commands_help_lists_its_exit_codes(key):
    result = CliRunner().invoke(main, [*key, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert re.search(r"Exit codes:\s+0 ", result.output) or "Exit codes:\n    0  " in result.output


def _help(*args: str) -> str:
    return CliRunner().invoke(main, [*args, "--help"], terminal_width=200).output


def test_state_is_a_directory_or_url_everywhere_and_urls_say_where_their_default_comes_from():
    for name in ("plan", "send", "track", "report", "reach", "optouts read", "optouts review"):
        text = _help(*name.split())
        assert "--state DIR|URL" in text and "RUNNER_STATE" in text, name
    for name in ("preview", "send", "track", "reach", "optouts read"):
        line = next(ln for ln in _help(*name.split()).splitlines() if "--base-url" in ln)
        assert "BLOOIO_BASE_URL if set" in line, name


def test_emulator_shares_say_they_are_fractions_not_percents():
    text = _help("emulator")
    for flag in ("--fault-500", "--fault-drop", "--p-delivery-failed", "--share-sms"):
        assert re.search(rf"{flag} 0\.\.1 ", text), flag
    assert "fractions between 0 and 1, not percents" in text


def test_a_fraction_option_given_a_percent_is_refused_with_what_it_expects():
    result = CliRunner().invoke(main, ["emulator", "--fault-500", "10%"])
    assert result.exit_code == 1
    assert "--fault-500 expects a fraction between 0 and 1 (0.1 = 10%)" in result.output
