"""The CLI reference (docs/cli.md), generated from the click commands themselves, so it cannot
drift from `--help`: every command and subcommand, its usage, its help and its options with
their defaults, and its exit codes. `python -m runner.cli.reference > docs/cli.md` writes it;
tests/test_docs.py checks the file is current."""

from __future__ import annotations

import click

from runner.cli._base import COMMANDS, main

HEADER = """# CLI reference

Generated from the commands themselves (`python -m runner.cli.reference > docs/cli.md`; a test
fails when this file and `campaign COMMAND --help` differ). `campaign` and `python -m runner`
are the same program.
"""


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(main)
    out: list[tuple[str, click.Command]] = []
    for name in sorted(COMMANDS):
        command = main.get_command(ctx, name)
        assert command is not None
        out.append((name, command))
        if isinstance(command, click.Group):
            out += [(f"{name} {sub}", c) for sub, c in sorted(command.commands.items())]
    return out


def _help(path: str, command: click.Command) -> str:
    parent = click.Context(main, info_name="campaign")
    ctx = parent
    for word in path.split():
        ctx = click.Context(command if word == path.split()[-1] else ctx.command,
                            info_name=word, parent=ctx, terminal_width=100, max_content_width=100)
    ctx.command = command
    return command.get_help(ctx)


def render() -> str:
    parts = [HEADER]
    for path, command in _commands():
        parts.append(f"\n## `campaign {path}`\n\n```text\n{_help(path, command).rstrip()}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
