"""The CLI reference in docs/cli.md, generated from the click commands themselves so that it
cannot drift from `--help`: the group, then every command and subcommand with its usage, help,
options (defaults and environment variables included) and exit codes.

docs/cli.md keeps a hand-written introduction above ``MARKER``; everything below it is
``render()``. ``python -m runner.cli.reference docs/cli.md`` rewrites that part in place (the
introduction is kept); with no argument the generated part is printed. tests/test_docs.py
fails, naming that command, when the checked-in file differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli._base import COMMANDS, main

MARKER = (
    "<!-- Generated below by `python -m runner.cli.reference docs/cli.md` from the "
    "commands' own help: edit the commands, not this. -->"
)
REGENERATE = "python -m runner.cli.reference docs/cli.md"
# A fixed width, click's own default (help is wrapped at 78 columns on any terminal of 80 or
# more): the file does not depend on the terminal it was generated in, and reads as --help does.
WIDTH = 80


def commands() -> list[tuple[str, click.Command]]:
    """Every command by its words after `campaign` ("" for the group), in COMMANDS' order
    (the order of the work: validate, plan, ... emulator), subcommands after their group."""
    ctx = click.Context(main)
    found: list[tuple[str, click.Command]] = [("", main)]
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None, name
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in sorted(command.commands.items())]
    return found


def help_text(path: str, command: click.Command) -> str:
    """`campaign PATH --help` as click prints it on a terminal WIDTH columns wide."""
    # The group's context_settings (-h as well as --help), as `campaign ... --help` has them.
    ctx = click.Context(main, info_name="campaign", terminal_width=WIDTH, **main.context_settings)
    group: click.Command = main
    for word in path.split():
        sub = command if word == path.split()[-1] else group
        if isinstance(group, click.Group):
            sub = group.get_command(ctx, word) or sub
        ctx = click.Context(sub, info_name=word, parent=ctx, terminal_width=WIDTH)
        group = sub
    return command.get_help(ctx).rstrip()


def anchor(path: str) -> str:
    """GitHub's anchor of the heading "`campaign PATH`"."""
    return "campaign" + "".join(f"-{word}" for word in path.split())


def render() -> str:
    """The generated part of docs/cli.md: an index of the commands, then each one's help."""
    listed = commands()
    lines = ["", "## Commands", "", "| command | what it does |", "|---|---|"]
    for path, command in listed[1:]:
        short = command.get_short_help_str(limit=200).replace("|", "\\|")
        lines.append(f"| [`campaign {path}`](#{anchor(path)}) | {short} |")
    lines.append("")
    for path, command in listed:
        title = f"campaign {path}".strip()
        lines += [f"## `{title}`", "", "```text", help_text(path, command), "```", ""]
    return "\n".join(lines)


def rewrite(text: str) -> str:
    """The file ``text`` with everything after MARKER regenerated (MARKER appended if absent)."""
    head = text.split(MARKER, 1)[0].rstrip("\n")
    return f"{head}\n\n{MARKER}\n{render()}"


def _main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(render())
        return 0
    target = Path(argv[0])
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    new = rewrite(old)
    if new != old:
        target.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
