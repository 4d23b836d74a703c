"""The click group and the one place where user errors become messages and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner import __version__
from runner.errors import CampaignError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campaign")
def main() -> None:
    """Declarative YAML campaigns for the Blooio messaging API."""


DEFAULT_STATE_DIR = ".runner"


def api_options(state_help: str = "Journal directory.") -> Callable:
    """--base-url, --rate, --concurrency and --state, the same for every command that talks
    to the API (campaign `send:` settings give rate and concurrency defaults)."""

    def decorate(fn: Callable) -> Callable:
        for option in reversed((
            click.option("--base-url", help="API base URL [env BLOOIO_BASE_URL; default the live API]"),
            click.option("--rate", type=float, help="Client-side ceiling, requests per second."),
            click.option("--concurrency", type=click.IntRange(1, 1024), help="Requests in flight."),
            click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
                         default=DEFAULT_STATE_DIR, show_default=True, help=state_help),
        )):
            fn = option(fn)
        return fn

    return decorate


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
                from runner.report.diagnostics import render_problems

                fmt = kwargs.get(fmt_option, "text") if fmt_option else "text"
                if fmt not in ("text", "json", "github"):
                    fmt = "text"
                out = render_problems(err.problems, fmt, color=sys.stderr.isatty())
                click.echo(out, err=fmt == "text", nl=not out.endswith("\n"))
                sys.exit(err.exit_code)

        return wrapper

    return decorate
