"""`campaign listen`: receive Blooio's signed webhooks into the state (replies and opt-outs into
the consent ledger, delivery statuses into the journals), until Ctrl-C.

Exit codes (runner.exitcodes): 0 stopped by Ctrl-C, 1 a user error (no secret, the port is
taken, a damaged ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click

from runner.campaign.policy import policy_for
from runner.cli._base import state_option, user_errors
from runner.cli.console import echo
from runner.errors import CampaignError
from runner.http.server import Server
from runner.run.optouts import stop_words
from runner.store.where import locate_state
from runner.webhooks.listener import DEFAULT_PATH, Listener
from runner.webhooks.sink import WebhookSink


def _secrets(values: tuple[str, ...]) -> list[str]:
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    if not out:
        raise CampaignError(
            "no webhook signing secret",
            hint="set BLOOIO_WEBHOOK_SECRET (the signing_secret POST /webhooks "
            "returned; several, comma-separated, during a rotation) or "
            "pass --secret",
        )
    return out


@click.command(
    epilog="""\b
Exit codes:
  0  stopped (Ctrl-C)
  1  a user error: no secret, the address is taken, a damaged ledger
"""
)
@state_option("Where the journals and the consent ledger are written.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address to listen on (put a TLS reverse proxy in front of it)",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="0 picks a free port",
)
@click.option(
    "--path",
    "path",
    default=DEFAULT_PATH,
    show_default=True,
    help="the URL path the subscription posts to",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    envvar="BLOOIO_WEBHOOK_SECRET",
    show_envvar=True,
    metavar="SECRET",
    help="signing secret (repeat, or comma-separate, during a rotation); never printed",
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the chosen port here once listening",
)
@user_errors(None)
def listen(
    state_dir: Path | str | None,
    host: str,
    port: int,
    path: str,
    secrets: tuple[str, ...],
    port_file: Path | None,
) -> None:
    """Receive Blooio's signed webhooks into the state until Ctrl-C."""
    keys = _secrets(secrets)
    # a folder, or a postgresql:// URL: the same sink writes both
    state = locate_state(state_dir, None, policy=lambda: policy_for(Path.cwd()))
    sink = WebhookSink(state, stop_words())
    listener = Listener(sink, keys, path=path, log=lambda line: echo(click.unstyle(line), err=True))

    async def serve() -> None:
        server = Server(listener, listener.max_body, host=host)
        try:
            bound = await server.start(port)
        except OSError as err:
            raise CampaignError(
                f"cannot listen on {host}:{port}: {err.strerror or err}",
                hint="choose another --port, or stop what uses it",
            ) from None
        if port_file is not None:
            port_file.write_text(f"{bound}\n", encoding="utf-8")
        echo(
            f"listening on http://{host}:{bound}{path} (state {state.label}); Ctrl-C stops",
            err=True,
        )
        try:
            await server.serve_forever()
        finally:
            await listener.close()
            await server.close()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    finally:
        sink.close()
        s = listener.stats
        echo(
            f"accepted {s.accepted:,} webhooks ({sink.stats.replies:,} replies, "
            f"{sink.stats.statuses:,} statuses), refused {s.refused:,}, ignored "
            f"{s.ignored:,}",
            err=True,
        )
    sys.exit(0)
