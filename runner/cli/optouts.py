"""`campaign optouts FILE`: read a sent campaign's replies into the state's consent ledger
(`--export`: and write the ledger's opt-outs into the first `suppress` file);
`campaign optouts review`: the held replies a person must decide on.

Exit codes (runner.exitcodes): 0 done (also when nothing was sent yet), 1 user error, 3 some
chats could not be read (what was found is recorded; run it again: nothing is recorded twice),
or another run holds the campaign's journal.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from runner import exitcodes
from runner.audience.mask import display_chat
from runner.campaign.load import load_campaign
from runner.cli._base import http_stack_option, state_option, user_errors
from runner.cli.console import echo
from runner.errors import StoppedEarly
from runner.report.words import answers_line
from runner.run.optouts_session import (
    OptoutsOutcome,
    ReviewOutcome,
    collect_optouts,
    review_holds,
)
from runner.store.ledger import ChatStanding


def _hold_line(h: ChatStanding, show: bool) -> str:
    e = h.event
    where = f"{e.campaign}/{e.step}" if e.campaign else "-"
    text = json.dumps(e.excerpt or "", ensure_ascii=False)
    return f"  #{e.id}  {display_chat(h.chat, show)}  {e.word}  {_date(e.at_ms)}  {where}  {text}"


def _date(at_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at_ms / 1000))


def _print_text(outcome: OptoutsOutcome, show: bool) -> None:
    result = outcome.result
    dry = outcome.dry_run
    if outcome.sent_yet:
        echo(
            f"checked {result.chats:,} chats ({result.requests:,} requests, "
            f"{result.replies:,} replies read)"
        )
        verb = "would record" if dry else "recorded"
        echo(
            f"{verb} {len(outcome.opted_out):,} new opt-out"
            f"{'s' if len(outcome.opted_out) != 1 else ''} in the consent ledger "
            f"({outcome.ledger})"
        )
        for s in outcome.opted_out:
            echo(f"  {display_chat(s.chat, show)}  {s.event.word}  {_date(s.event.at_ms)}")
        if outcome.already_out:
            echo(f"{outcome.already_out:,} already opted out")
        back = [c for c in outcome.changes if c.after is None]
        if back:
            echo(f"{len(back):,} opted in again (START/UNSTOP): messages resume")
        if outcome.holds:
            echo(
                f"{len(outcome.holds):,} chat{'s' if len(outcome.holds) != 1 else ''} held "
                "(a stop word, not at the start): nothing is sent to them until a person "
                "decides with `campaign optouts review`:"
            )
            for h in outcome.holds:
                echo(_hold_line(h, show))
    answered = answers_line(outcome.answered)
    if answered:
        echo(answered)
    if outcome.target is not None:
        verb = "would export" if dry else "exported"
        echo(
            f"{verb} {len(outcome.exported):,} opt-out"
            f"{'s' if len(outcome.exported) != 1 else ''} to {outcome.target}"
            + (" (commit it for review)" if outcome.exported and not dry else "")
        )


class _DefaultGroup(click.Group):
    """`campaign optouts FILE ...` runs `read`; `campaign optouts review ...` the review."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["read", *args]
        return super().parse_args(ctx, args)


@click.group(
    cls=_DefaultGroup,
    subcommand_metavar="FILE [OPTIONS] | review [OPTIONS]",
    epilog="""\b
`campaign optouts FILE` is `campaign optouts read FILE`; see
`campaign optouts read --help` and `campaign optouts review --help`.

\b
Exit codes:
  0  done
  1  a user error (invalid campaign, no key, a damaged ledger, an unknown hold)
  3  some chats could not be read, the key was refused, or another run holds the journal
""",
)
def optouts() -> None:
    """Read STOP replies into the consent ledger; review held replies; export to `suppress`.

    Every campaign sent with one state (--state) shares its consent ledger: a chat that
    opted out there is never messaged again by any of them, and `campaign send` reads a chat's
    new replies itself before messaging it again. This command reads every reply of a sent
    campaign (e.g. to rebuild the ledger), holds the ambiguous ones for a person, and with
    --export writes the ledger's opt-outs into the campaign's first `suppress` file.
    """


@optouts.command(
    "read",
    epilog="""\b
Exit codes:
  0  done (also when nothing was sent yet)
  1  a user error (invalid campaign, no key, a damaged ledger)
  3  stopped early (the key was refused) or some chats could not be read: what was found is
     recorded; run it again (nothing is recorded twice); or another run holds the
     campaign's journal
""",
)
@click.argument("file", type=click.Path(dir_okay=False))
@state_option("Where the journals and the consent ledger are.")
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="API base URL [default: BLOOIO_BASE_URL if set, else the live API]",
)
@click.option(
    "--since",
    "since",
    default=None,
    metavar="TIME",
    help="read replies after TIME instead of each chat's first send: ISO 8601 with an "
    "offset, or a duration back from now such as 7d",
)
@click.option(
    "--rate",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.01, max=1e6),
    help="requests per second at most",
)
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 32),
    help="requests in flight",
)
@click.option(
    "--max-attempts",
    default=5,
    show_default=True,
    type=click.IntRange(1, 10),
    help="tries per request on 429, 5xx and network errors (with backoff)",
)
@http_stack_option()
@click.option(
    "--export",
    "export_to_file",
    is_flag=True,
    help="also write the ledger's opt-outs into the first `suppress` file (under a "
    "lock; lines already there are kept, none is written twice)",
)
@click.option("--dry-run", is_flag=True, help="print what would be recorded; write nothing")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@user_errors()
def read(
    file: str,
    state_dir: Path,
    base_url: str | None,
    since: str | None,
    rate: float,
    concurrency: int,
    max_attempts: int,
    http_stack: str | None,
    export_to_file: bool,
    dry_run: bool,
    fmt: str,
    show_recipients: bool,
) -> None:
    """Read a sent campaign's replies into the consent ledger (and --export to the file)."""
    outcome = collect_optouts(
        file,
        state_dir=state_dir,
        base_url=base_url,
        since=since,
        rate=rate,
        concurrency=concurrency,
        max_attempts=max_attempts,
        dry_run=dry_run,
        export_to_file=export_to_file,
        http_stack=http_stack,
    )
    if not outcome.sent_yet:
        echo(
            f"nothing sent yet for {load_campaign(file).id}: no journal at {outcome.journal} "
            "(is --state right?)",
            err=True,
        )
    if fmt == "json":
        echo(json.dumps(outcome.to_dict(show_recipients), indent=2, ensure_ascii=False))
    else:
        _print_text(outcome, show_recipients)
    result = outcome.result
    if result.not_found:
        echo(f"{result.not_found:,} chats unknown to the API (no replies to read)", err=True)
    if result.failed:
        for chat, reason in result.failed[:5]:
            echo(f"could not read {display_chat(chat, show_recipients)}: {reason}", err=True)
        raise StoppedEarly(
            f"{len(result.failed):,} chats could not be read",
            hint="run the same command again later; nothing is recorded twice",
        )
    sys.exit(outcome.exit_code if outcome.sent_yet else exitcodes.OK)


@optouts.command(
    "review",
    epilog="""\b
Exit codes:
  0  listed (and decided)
  1  a user error (no ledger, an unknown hold)
""",
)
@state_option("Where the consent ledger is.")
@click.option(
    "--release",
    "release",
    multiple=True,
    metavar="N|CHAT",
    help="dismiss this hold (its number in the list, or the chat id): messages resume",
)
@click.option(
    "--opt-out",
    "opt_out",
    multiple=True,
    metavar="N|CHAT",
    help="confirm this hold as an opt-out: never messaged again",
)
@click.option(
    "--by",
    default=None,
    metavar="NAME",
    help="who decides, recorded with the decision [default: the OS user]",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@user_errors()
def review(
    state_dir: Path,
    release: tuple[str, ...],
    opt_out: tuple[str, ...],
    by: str | None,
    fmt: str,
    show_recipients: bool,
) -> None:
    """List the held replies of a state; release a hold or confirm it as an opt-out."""
    outcome: ReviewOutcome = review_holds(
        state_dir=state_dir, release=release, opt_out=opt_out, by=by
    )
    if fmt == "json":
        echo(json.dumps(outcome.to_dict(show_recipients), indent=2, ensure_ascii=False))
        return
    for c in outcome.decided:
        now = "released: messages resume" if c.after is None else "opted out: never messaged again"
        echo(f"{display_chat(c.chat, show_recipients)}: {now} (by {outcome.by})")
    if not outcome.holds:
        echo("no held replies: nothing waits for a decision")
        return
    echo(
        f"{len(outcome.holds):,} held repl{'ies' if len(outcome.holds) != 1 else 'y'} "
        "(nothing is sent to these chats until you decide):"
    )
    for h in outcome.holds:
        echo(_hold_line(h, show_recipients))
    echo(
        "decide with: campaign optouts review --release N (not an opt-out) or "
        "--opt-out N (an opt-out)"
    )
