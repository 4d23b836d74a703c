"""Whether output is coloured, decided once for every command.

``campaign --color/--no-color`` and the ``NO_COLOR`` convention (https://no-color.org) are
read here, and nowhere else. The decision is stored on click's root context as ``ctx.color``,
which click itself honours: with colour off, ``click.echo`` strips every ANSI style from every
command's output, whatever printed it. Deliberately free of rich: ``validate`` and ``plan``
start without importing it (tests/test_cli_startup.py); the progress display imports rich.
"""

from __future__ import annotations

import os
from typing import IO

import click

from runner.safe_text import styled_terminal, terminal


def env_says_no_color() -> bool:
    """NO_COLOR set to anything non-empty turns colour off (no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def resolve(flag: bool | None) -> bool | None:
    """True/False when the user decided (``--color``/``--no-color``, or NO_COLOR), None for auto
    (colour exactly when the stream written to is a terminal)."""
    if flag is not None:
        return flag
    return False if env_says_no_color() else None


def use_color(stream: IO[str]) -> bool:
    """Whether to colour what goes to ``stream`` in the command now running."""
    ctx = click.get_current_context(silent=True)
    decided = ctx.color if ctx is not None and ctx.color is not None else resolve(None)
    if decided is not None:
        return decided
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def echo(text: str = "", *, err: bool = False, nl: bool = True, styled: bool = False) -> None:
    """``click.echo`` through the terminal sink (runner.safe_text): what a campaign, a data file
    or a server wrote cannot move the cursor, write the clipboard (OSC 52) or run a workflow
    command in a CI log. ``styled``: the text holds the runner's own colours, which are kept."""
    click.echo(styled_terminal(text) if styled else terminal(text), err=err, nl=nl)
