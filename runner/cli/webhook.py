"""`campaign webhook`: create, list, delete and rotate the account's webhook subscriptions.

Exit codes (runner.exitcodes): 0 done, 1 a user error (no key, an unknown webhook, the API
refused the URL), 3 the key was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from runner.cli._base import http_stack_option, user_errors
from runner.cli.console import echo
from runner.http.client import ApiOptions, api_key_from_env, base_url_from
from runner.http.stacks import stack_from
from runner.run import webhooks_session as hooks

_EXIT = """\b
Exit codes:
  0  done
  1  a user error: no key, an unknown webhook, the API refused the URL
  3  the API refused the key
"""


def _options(base_url: str | None, http_stack: str | None) -> ApiOptions:
    return ApiOptions(
        base_url=base_url_from(base_url),
        rate_per_second=None,
        concurrency=1,
        max_attempts=4,
        http_stack=stack_from(http_stack),
    )


def _common(fn: Callable) -> Callable:
    fn = http_stack_option()(fn)
    return click.option(
        "--base-url",
        default=None,
        metavar="URL",
        help="API base URL [default: BLOOIO_BASE_URL if set, else the live API]",
    )(fn)


@click.group(epilog=_EXIT)
def webhook() -> None:
    """Create, list, delete and rotate the account's webhook subscriptions."""


@webhook.command("create", epilog=_EXIT)
@click.argument("url")
@click.option(
    "--type",
    "kind",
    type=click.Choice(hooks.TYPES),
    default="all",
    show_default=True,
    help="which events: message (replies), status (delivery), all",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="where to write the signing secret the API shows once (mode 0600; keep it out of git)",
)
@_common
@user_errors(None)
def create(
    url: str, kind: str, secret_file: Path, base_url: str | None, http_stack: str | None
) -> None:
    """Subscribe URL to the account's webhooks; the signing secret goes to --secret-file."""
    sub = hooks.create(
        _options(base_url, http_stack), api_key_from_env("webhook"), url, kind, secret_file
    )
    echo(
        f"webhook {sub.webhook_id} posts {sub.type or kind} events to {sub.url}; its "
        f"signing secret is in {secret_file}"
    )
    echo(f'receive them: BLOOIO_WEBHOOK_SECRET="$(cat {secret_file})" campaign listen')


@webhook.command("list", epilog=_EXIT)
@_common
@user_errors(None)
def list_(base_url: str | None, http_stack: str | None) -> None:
    """List the account's webhook subscriptions."""
    subs = hooks.listing(_options(base_url, http_stack), api_key_from_env("webhook"))
    if not subs:
        echo("no webhooks")
    for s in subs:
        echo(f"{s.webhook_id}  {s.type or '-'}  {s.url}")


@webhook.command("delete", epilog=_EXIT)
@click.argument("webhook_id")
@_common
@user_errors(None)
def delete(webhook_id: str, base_url: str | None, http_stack: str | None) -> None:
    """Delete one webhook subscription."""
    hooks.delete(_options(base_url, http_stack), api_key_from_env("webhook"), webhook_id)
    echo(f"webhook {webhook_id} deleted")


@webhook.command("rotate", epilog=_EXIT)
@click.argument("webhook_id")
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="where to write the new signing secret (mode 0600)",
)
@_common
@user_errors(None)
def rotate(
    webhook_id: str, secret_file: Path, base_url: str | None, http_stack: str | None
) -> None:
    """Replace a webhook's signing secret (run listen with both until the old one stops)."""
    hooks.rotate(
        _options(base_url, http_stack), api_key_from_env("webhook"), webhook_id, secret_file
    )
    echo(
        f"webhook {webhook_id}: new signing secret in {secret_file}; run listen with the "
        "new and the old one (BLOOIO_WEBHOOK_SECRET=new,old) until the old stops arriving"
    )
