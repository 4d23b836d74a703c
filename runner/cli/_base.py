"""The click group and the one place where user errors become messages and exit codes.

Commands are loaded lazily (click's documented "LazyGroup" pattern): ``campaign validate``
must not pay for the HTTP client, SQLite or the emulator that other commands need, so each
command's module is imported only when that command runs (or its own ``--help`` is shown).
This is the one deliberate lazy import in runner; everything else imports at the top.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner import exitcodes
from runner.cli import console
from runner.errors import CampaignError, Problem
from runner.report.diagnostics import render_problems
from runner.store.paths import DEFAULT_STATE_DIR
from runner.version import __version__

# name -> (module under runner.cli defining a click command of the same name, short help).
# The short help (each command's first sentence) is what `campaign --help` lists without
# importing anything; tests/test_cli_startup.py checks it against each command's docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "runner.cli.validate",
        "Check campaign files (or folders of them): schema, API "
        "rules, and every recipient rendered.",
    ),
    "plan": (
        "runner.cli.plan",
        "Dry run: render every request (keys included) with no network and no API key.",
    ),
    "diff": (
        "runner.cli.diff",
        "Compare a campaign with its version at a git ref: who gets "
        "what, what is sent again (no network, no API key).",
    ),
    "preview": (
        "runner.cli.preview",
        "Show the exact requests one recipient would get (no network, no API key).",
    ),
    "reach": (
        "runner.cli.reach",
        "Check each phone and email's capabilities (iMessage, SMS) before a send; cached.",
    ),
    "send": ("runner.cli.send", "Send a campaign (asks first unless --yes)."),
    "track": (
        "runner.cli.track",
        "Poll delivery status of accepted messages into the journal until all are final.",
    ),
    "report": (
        "runner.cli.report",
        "Report the last send of a campaign: totals, per step, failures, delivery (after track).",
    ),
    "optouts": (
        "runner.cli.optouts",
        "Read STOP replies into the consent ledger; review held replies; export to `suppress`.",
    ),
    "status": (
        "runner.cli.status",
        "List every campaign of a state: run state, requests, opt-outs, last run by whom.",
    ),
    "state": (
        "runner.cli.state",
        "Commands about a state: `state unlock` ends a stuck run's lock in a PostgreSQL state.",
    ),
    "webhook": (
        "runner.cli.webhook",
        "Create, list, delete and rotate the account's webhook subscriptions.",
    ),
    "listen": (
        "runner.cli.listen",
        "Receive Blooio's signed webhooks into the state until Ctrl-C.",
    ),
    "init": (
        "runner.cli.init",
        "Write a commented starter campaign into DIR (default: here; created if missing).",
    ),
    "emulator": (
        "runner.cli.emulator",
        "Run a local Blooio v2 API emulator on 127.0.0.1 (faults, caps, delivery) until Ctrl-C.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported from ``COMMANDS`` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name][0])
        command = getattr(module, cmd_name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{COMMANDS[cmd_name][0]}.{cmd_name} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The table's short help, cut as click cuts a command's own (click.Group.format_commands),
        # so `campaign --help` reads the same and imports no command module.
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=short).get_short_help_str(limit))
            for name, (_, short) in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Colour: on when the output is a terminal, off when NO_COLOR is set; "
    "--color/--no-color decide for every command. `campaign COMMAND --help` "
    "lists each command's options and exit codes.",
)
@click.version_option(__version__, prog_name="campaign")
@click.option(
    "--color/--no-color",
    "color",
    default=None,
    help="Colour the output (and progress) or not [default: on a terminal, unless "
    "NO_COLOR is set].",
)
@click.pass_context
def main(ctx: click.Context, color: bool | None) -> None:
    """Declarative YAML campaigns for the Blooio messaging API."""
    # Subcommand contexts inherit ``color``; click.echo then strips styles when it is False.
    ctx.color = console.resolve(color)


class RateType(click.ParamType):
    """Requests per second: a number, or ``unlimited`` (passed on as the word: no ceiling).
    Whether the number is finite and positive is the library's rule (resolve_options)."""

    name = "N|unlimited"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | str:
        if isinstance(value, float | int):
            return float(value)
        if str(value).strip().lower() == "unlimited":
            return "unlimited"
        try:
            return float(value)
        except ValueError:
            self.fail(
                f"{value!r} is not a number of requests per second (or 'unlimited')", param, ctx
            )


RATE = RateType()


class StateType(click.ParamType):
    """--state DIR or a postgresql:// URL (kept as the string libpq reads; never echoed)."""

    name = "DIR|URL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        if isinstance(value, Path):
            return value
        text = str(value)
        if text.startswith(("postgresql://", "postgres://")):
            return text
        if "://" in text:
            self.fail("a state is a folder or a postgresql://user@host/dbname URL", param, ctx)
        return click.Path(file_okay=False, path_type=Path).convert(value, param, ctx)


def state_option(help: str = "Journal directory.") -> Callable:
    """--state DIR|URL [env RUNNER_STATE]; None when neither is given, so that the command finds
    the state from the campaign (runner.store.where: the policy's, else the repository root's);
    a postgresql:// URL keeps every campaign's journal and the ledger in one database (the
    team's shared state)."""
    return click.option(
        "--state",
        "state_dir",
        type=StateType(),
        envvar="RUNNER_STATE",
        show_envvar=True,
        default=None,
        help=help + " A folder, or a postgresql:// URL (libpq: PGPASSWORD, "
        "~/.pgpass, PGSERVICE, sslmode) [default: runner.yaml's "
        f"state:, else {DEFAULT_STATE_DIR}/ at the root of the "
        "campaign's git repository, or in its folder outside git].",
    )


def policy_option() -> Callable:
    """--policy FILE: the team policy instead of runner.yaml at the campaigns' git root."""
    return click.option(
        "--policy",
        "policy",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help="Team policy file [default: runner.yaml at the root of the "
        "campaign's git repository, else legal hours and no limits].",
    )


def http_stack_option() -> Callable:
    """--http-stack fast|httpx [env RUNNER_HTTP_STACK]: the escape hatch (runner/http/stacks.py).
    The names are spelled here so that a command's --help imports no HTTP code."""
    return click.option(
        "--http-stack",
        "http_stack",
        type=click.Choice(["fast", "httpx"]),
        envvar="RUNNER_HTTP_STACK",
        show_envvar=True,
        help="HTTP stack: the runner's fast one (default), or stock httpx for a "
        "network the fast one cannot handle.",
    )


def api_options(state_help: str = "Journal directory.") -> Callable:
    """--base-url, --rate, --concurrency, --http-stack and --state, the same for every command
    that talks to the API (campaign `send:` settings give rate and concurrency defaults)."""

    def decorate(fn: Callable) -> Callable:
        for option in reversed(
            (
                click.option(
                    "--base-url",
                    metavar="URL",
                    help="API base URL [default: BLOOIO_BASE_URL if set, else the live API].",
                ),
                click.option(
                    "--rate",
                    type=RATE,
                    metavar="N|unlimited",
                    help="Client-side ceiling, requests per second, or 'unlimited' "
                    "[default: the campaign's send.rate_per_second, else 10].",
                ),
                click.option(
                    "--concurrency",
                    type=click.IntRange(1, 1024),
                    help="Requests in flight [default: the campaign's send.concurrency, else 8].",
                ),
                http_stack_option(),
                state_option(state_help),
            )
        ):
            fn = option(fn)
        return fn

    return decorate


def os_problem(err: OSError) -> Problem:
    """An OSError the user caused (a folder where a file goes, a read-only or full disk) as one
    line with the path and the system's reason, never a traceback."""
    reason = err.strerror or str(err)
    if err.filename2 is not None:
        reason = f"{reason} (and {err.filename2})"
    path = None if err.filename is None else str(err.filename)
    return Problem(reason, file=path, layer="io")


def user_errors(fmt_option: str | None = "fmt") -> Callable:
    """Decorate a command so that a CampaignError (or an OSError on a user's path) prints its
    problems and exits non-zero.

    ``fmt_option`` names the command's ``--format`` parameter, so problems come out in the
    format the user asked for (text, json, github); no traceback ever reaches a user.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CampaignError as err:
                problems, code = err.problems, err.exit_code
            except OSError as err:
                problems, code = [os_problem(err)], exitcodes.FAILED
            fmt = kwargs.get(fmt_option, "text") if fmt_option else "text"
            if fmt not in ("text", "json", "github"):
                fmt = "text"
            out = render_problems(problems, fmt, color=console.use_color(sys.stderr))
            if fmt == "github":  # workflow commands on purpose, their data escaped
                click.echo(out, nl=not out.endswith("\n"))
            else:
                console.echo(out, err=fmt == "text", nl=not out.endswith("\n"), styled=True)
            sys.exit(code)

        return wrapper

    return decorate


def emit(text: str, out_file: Path | None, what: str, *, styled: bool = False) -> None:
    """``text`` to ``--out`` FILE (its folder made), or to stdout through the terminal sink
    (``styled``: keep the runner's own colours); a file that cannot be written is a user error
    naming it (``what``: "the report", "the preview")."""
    if out_file is None:
        console.echo(text, nl=False, styled=styled)
        return
    try:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text, encoding="utf-8")
    except OSError as err:
        raise CampaignError(
            f"cannot write {what} to {out_file}: {err.strerror}",
            hint="choose a path in a folder you can write",
        ) from None
