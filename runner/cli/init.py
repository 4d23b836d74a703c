"""``campaign init [DIR]``: a starter campaign to validate, plan and rehearse."""

from __future__ import annotations

from pathlib import Path

import click

from runner.campaign.starter import next_steps, write_gitignore, write_starter
from runner.cli._base import user_errors
from runner.cli.console import echo


@click.command(
    epilog="""\b
Writes campaign.yaml, recipients.csv (two rows), suppression.txt,
.schema/campaign.schema.json (for editor completion) and, unless there is one, a .gitignore
for the state folder (.runner/) and plans/, then prints the next commands.

\b
Exit codes: 0 written; 1 a file is in the way (nothing is written, nothing overwritten).
"""
)
@click.argument("directory", default=".", metavar="[DIR]", type=click.Path(path_type=Path))
@user_errors(None)
def init(directory: Path) -> None:
    """Write a commented starter campaign into DIR (default: here; created if missing)."""
    for path in write_starter(directory):
        echo(f"wrote {path}")
    ignore = write_gitignore(directory)
    if ignore is not None:
        echo(f"wrote {ignore}")
    else:
        echo(
            f"kept {directory / '.gitignore'}: add .runner/ and plans/ to it (journals "
            "hold phone numbers)"
        )
    echo(next_steps(str(directory)))
