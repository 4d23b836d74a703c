"""The click group and the one place where user errors become messages and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from runner import __version__
from runner.errors import CampaignError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campaign")
def main() -> None:
    """Declarative YAML campaigns for the Blooio messaging API."""


def user_errors(fmt_option: str | None = "fmt") -> Callable:
    """Decorate a command so that a CampaignError prints its problems and exits non-zero.

    ``fmt_option`` names the command's ``--format`` parameter, so problems come out in the
    format the user asked for (text, json, github); no traceback ever reaches a user.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CampaignError as err:
                from runner.diagnostics import render_problems

                fmt = kwargs.get(fmt_option, "text") if fmt_option else "text"
                if fmt not in ("text", "json", "github"):
                    fmt = "text"
                out = render_problems(err.problems, fmt, color=sys.stderr.isatty())
                click.echo(out, err=fmt == "text", nl=not out.endswith("\n"))
                sys.exit(err.exit_code)

        return wrapper

    return decorate
