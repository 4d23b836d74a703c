"""Help that matches the README: every command's options (the lazy COMMANDS table walked, the
emulator's `reply` subcommand included, hidden options left out) are exactly those the README's
CLI reference lists for it, and every command's --help lists its exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.cli._base import COMMANDS

README = Path(__file__).resolve().parent.parent / "README.md"
OPTION = re.compile(r"(?<![\w-])--[a-z0-9]+(?:-[a-z0-9]+)*")


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


def documented_options(command: click.Command) -> set[str]:
    """The long options a user can type (both sides of --x/--no-x), hidden ones excepted."""
    return {flag for p in command.params if isinstance(p, click.Option) and not p.hidden
            for flag in (*p.opts, *p.secondary_opts) if flag.startswith("--")}


def cli_reference() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## CLI reference")
    return text[start:text.index("\n## ", start + 1)]


def readme_bullets() -> dict[tuple[str, ...], str]:
    """The README's option list: "- `campaign WORDS ARGS`: text" (continued on indented lines)
    by the command's words."""
    bullets: dict[tuple[str, ...], str] = {}
    key: tuple[str, ...] | None = None
    for line in cli_reference().splitlines():
        head = re.match(r"- `campaign((?: [a-z]+)*)[^`]*`:(.*)", line)
        if head:
            key = tuple(head.group(1).split())
            assert key not in bullets, f"two README bullets for {key}"
            bullets[key] = head.group(2)
        elif key is not None and line.startswith("  "):
            bullets[key] += " " + line.strip()
        else:
            key = None
    return bullets


COMMAND_KEYS = sorted(all_commands())


def test_the_readme_has_one_option_list_per_command_and_no_other():
    assert sorted(readme_bullets()) == COMMAND_KEYS


@pytest.mark.parametrize("key", COMMAND_KEYS, ids=lambda k: " ".join(k) or "campaign")
def test_each_commands_options_are_those_the_readme_lists(key):
    command = all_commands()[key]
    listed = set(OPTION.findall(readme_bullets()[key]))
    declared = documented_options(command) - {"--help"}
    assert listed - declared == set(), f"the README lists options `campaign {' '.join(key)}` lacks"
    assert declared - listed == set(), f"options of `campaign {' '.join(key)}` the README omits"


def test_the_readme_table_has_a_row_per_command():
    rows = {tuple(m.group(1).split()) for m in
            re.finditer(r"^\| `campaign((?: [a-z]+)*)[^`]*` \|", cli_reference(), re.M)}
    assert rows == set(COMMAND_KEYS) - {()}


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
