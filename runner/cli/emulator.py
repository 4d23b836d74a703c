"""``campaign emulator``: a local Blooio API to rehearse campaigns against, until Ctrl-C;
``campaign emulator reply``: make a recipient of a running emulator answer (STOP).

``emulator`` is a click group that runs the server when no subcommand is given, so
``campaign emulator --port 8765 &`` works as it always did.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.core import ParameterSource

from runner.cli._base import user_errors
from runner.emulator.control import DEFAULT_PORT, help_text
from runner.emulator.options import CLICK_METAVARS, OPTIONS, build_config
from runner.emulator.runtime import serve
from runner.errors import CampaignError

_SERVER_PARAMS = ("port", "port_file", "config_json", *(opt.field for opt in OPTIONS))
_EPILOG = f"""\b
Shares (--fault-*, --share-*, --p-*) are fractions between 0 and 1, not percents:
--fault-500 0.1 answers 10% of requests with a 500.

\b
Exit codes: 0 stopped by Ctrl-C or SIGTERM; 1 bad settings or the port is taken.

\b
Stop a backgrounded emulator (`campaign emulator --port {DEFAULT_PORT} &`) with `kill %1` in
the shell that started it, or `kill PID` with the PID its banner prints.

{help_text()}
"""


def _add_options(fn: Any) -> Any:
    for opt in reversed(OPTIONS):
        if opt.kind == "flag":
            fn = click.option(opt.flag, opt.field, is_flag=True, default=False, help=opt.help)(fn)
        elif opt.kind == "rules":
            fn = click.option(
                opt.flag, opt.field, multiple=True, help=opt.help, metavar=CLICK_METAVARS[opt.kind]
            )(fn)
        else:
            fn = click.option(
                opt.flag, opt.field, default=None, help=opt.help, metavar=CLICK_METAVARS[opt.kind]
            )(fn)
    return fn


@click.group(invoke_without_command=True, epilog=_EPILOG, subcommand_metavar="[reply ...]")
@click.option(
    "--port", type=int, default=DEFAULT_PORT, show_default=True, help="0 = pick a free port"
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="write the chosen port to this file once listening",
)
@click.option("--config-json", default=None, help="JSON object of EmulatorConfig fields")
@_add_options
@click.pass_context
@user_errors(None)
def emulator(
    ctx: click.Context, port: int, port_file: str | None, config_json: str | None, **values: Any
) -> None:
    """Run a local Blooio v2 API emulator on 127.0.0.1 (faults, caps, delivery) until Ctrl-C.

    With no subcommand it serves in the foreground and prints its base URL, test key, PID and
    control endpoints. `campaign emulator reply` talks to one already running.
    """
    if ctx.invoked_subcommand is not None:
        given = [
            name
            for name in _SERVER_PARAMS
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
        ]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise CampaignError(
                f"{flags}: server settings, not for `campaign emulator {ctx.invoked_subcommand}`",
                layer="cli",
                hint="start the server with `campaign emulator [OPTIONS]`; "
                "give the subcommand its own options after its name",
            )
        return
    try:
        config = build_config(values, port, config_json)
    except (ValueError, TypeError) as exc:
        raise CampaignError(f"emulator settings: {exc}", layer="cli") from None
    try:
        serve(config, port_file, lambda text: click.echo(text))
    except OSError as exc:
        raise CampaignError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror}",
            hint="choose another --port, or --port 0 for a free one",
            layer="cli",
        ) from None


_REPLY_EPILOG = f"""\b
Examples:
  campaign emulator --port {DEFAULT_PORT} &
  campaign emulator reply --to +15551230001 --text STOP
  campaign send CAMPAIGN.yaml --yes     # reads the STOP first: that chat gets nothing more

\b
Exit codes: 0 the reply was recorded; 1 no emulator answers at the URL, the URL is not on
this machine, or the emulator refused the reply (e.g. an invalid chat).
"""


@emulator.command(epilog=_REPLY_EPILOG)
@click.option(
    "--to",
    "chat",
    required=True,
    metavar="CHAT",
    help="the chat that answers: +E.164 phone, email, or grp_ id",
)
@click.option("--text", required=True, help="what the recipient writes, e.g. STOP")
@click.option(
    "--sender", default=None, help="in a group chat, the member who writes [default: the first]"
)
@click.option(
    "--to-number",
    default=None,
    help="the organisation number written to [default: the number that last wrote to this chat]",
)
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="the running emulator, http://127.0.0.1:PORT (or its /v2/api base URL) "
    f"[default: BLOOIO_BASE_URL if set, else http://127.0.0.1:{DEFAULT_PORT}]",
)
@user_errors(None)
def reply(chat: str, text: str, sender: str | None, to_number: str | None, url: str | None) -> None:
    """Make a recipient answer a running emulator (rehearse STOP replies and opt-outs).

    Same as POST /__emulator/reply; the reply shows up in the chat's message list, where
    `campaign optouts` and `campaign track` read it.
    """
    from runner.emulator import control

    source = "--url"
    if url is None:
        env = os.environ.get("BLOOIO_BASE_URL")
        url, source = (
            (env, "BLOOIO_BASE_URL") if env else (control.root_url(DEFAULT_PORT), "the default URL")
        )
    try:
        root = control.loopback_root(url)
    except ValueError as exc:
        raise CampaignError(
            f"{source}: {exc}",
            layer="cli",
            hint="pass --url http://127.0.0.1:PORT of the emulator you started",
        ) from None
    data: dict[str, Any] = {"chat": chat, "text": text}
    if sender is not None:
        data["sender"] = sender
    if to_number is not None:
        data["to_number"] = to_number
    try:
        got = control.call(root, "POST", "reply", data)
    except control.ControlError as exc:
        raise CampaignError(
            f"the emulator at {root} refused the reply: {exc.message} ({exc.status})", layer="cli"
        ) from None
    except OSError as exc:
        reason = getattr(exc, "reason", exc)  # urllib wraps the socket error
        reason = getattr(reason, "strerror", None) or reason
        raise CampaignError(
            f"no emulator answers at {root} ({reason}); start one with "
            f"`campaign emulator --port PORT &` and pass --url",
            layer="cli",
        ) from None
    except ValueError:
        raise CampaignError(f"{root} answered, but not as a Blooio emulator", layer="cli") from None
    click.echo(
        f"{got.get('chat_id', chat)} replied {text!r} to {got.get('internal_id')}: "
        f"{got.get('message_id')}"
    )
