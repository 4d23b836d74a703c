"""``campaign emulator``: a local Blooio API to rehearse campaigns against, until Ctrl-C."""

from __future__ import annotations

from typing import Any

import click

from runner.cli._base import user_errors
from runner.emulator.options import CLICK_METAVARS, OPTIONS, build_config
from runner.emulator.runtime import serve
from runner.errors import CampaignError


def _add_options(fn: Any) -> Any:
    for opt in reversed(OPTIONS):
        if opt.kind == "flag":
            fn = click.option(opt.flag, opt.field, is_flag=True, default=False, help=opt.help)(fn)
        else:
            fn = click.option(opt.flag, opt.field, default=None, help=opt.help,
                              metavar=CLICK_METAVARS[opt.kind])(fn)
    return fn


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="0 = pick a free port")
@click.option("--port-file", type=click.Path(dir_okay=False), default=None,
              help="write the chosen port to this file once listening")
@click.option("--config-json", default=None, help="JSON object of EmulatorConfig fields")
@_add_options
@user_errors(None)
def emulator(port: int, port_file: str | None, config_json: str | None, **values: Any) -> None:
    """Run a local Blooio v2 API emulator on 127.0.0.1 (faults, caps, delivery) until Ctrl-C."""
    try:
        config = build_config(values, port, config_json)
    except (ValueError, TypeError) as exc:
        raise CampaignError(f"emulator settings: {exc}", layer="cli") from None
    try:
        serve(config, port_file, lambda text: click.echo(text))
    except OSError as exc:
        raise CampaignError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}",
                            hint="choose another --port, or --port 0 for a free one",
                            layer="cli") from None
