"""`campaign state ...`: commands about where the journals and the consent ledger live."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli._base import StateType, state_option, user_errors
from runner.errors import CampaignError
from runner.run.state_session import import_state
from runner.run.state_session import unlock as unlock_campaign


@click.group(
    epilog="""\b
Exit codes:
  0  done; otherwise those of the command (campaign state unlock --help)
"""
)
def state() -> None:
    """Commands about a state: `state unlock` ends a stuck run's lock in a PostgreSQL state."""


@state.command(
    "unlock",
    epilog="""\b
Exit codes:
  0  the holder's session was ended and its lock row removed
  1  the campaign does not hold that lock id (nothing changed), or the state is a folder
""",
)
@click.argument("campaign_id")
@click.option(
    "--lock-id",
    "lock_id",
    type=int,
    required=True,
    help="the lock id the refusal named (a newer lock is never broken)",
)
@state_option("The database state (a folder's locks die with their process).")
@user_errors(None)
def unlock(campaign_id: str, lock_id: int, state_dir: Path | str) -> None:
    """End a stuck run's hold on CAMPAIGN_ID in a PostgreSQL state."""
    held = unlock_campaign(state_dir, campaign_id, lock_id)
    click.echo(f"unlocked {campaign_id}: ended {held.describe()}")


@state.command(
    "import",
    epilog="""\b
Exit codes:
  0  every campaign imported (running it twice changes nothing)
  1  some campaign's journal in the database is newer (the others were imported), or a user
     error
  3  the database is unreachable, or a run holds one of the campaigns
""",
)
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--to",
    "to",
    type=StateType(),
    required=True,
    metavar="URL",
    help="the database state (postgresql://...)",
)
@user_errors(None)
def import_(folder: Path, to: str) -> None:
    """Copy a folder state's journals and consent ledger into a PostgreSQL state."""
    result = import_state(folder, to)
    for cid, n in result.campaigns.items():
        click.echo(f"imported {cid}: {n:,} requests")
    click.echo(f"consent ledger: {result.events:,} events added")
    if result.refused:
        raise CampaignError(result.refused)
