"""Where runner keeps its state by default: the one spelling of the state directory."""

from __future__ import annotations

import re
from pathlib import Path

from runner.errors import CampaignError, Problem

DEFAULT_STATE_DIR = ".runner"
"""Journals, the consent ledger and the capability cache live in this folder at the root of the
campaign's git repository (runner.store.where), unless a command is given ``--state``,
``RUNNER_STATE`` or the team policy's ``state:``."""


# The schema's pattern for a campaign id, matched whole (a trailing newline is not a slug).
_CAMPAIGN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def journal_path(state_dir: str | Path, campaign_id: str) -> Path:
    """Where a campaign's journal lives: one file per campaign id under the state directory.
    The id names a file, so only a slug is taken (the schema says so; this holds it for a
    caller of the library that skipped validation)."""
    if not _CAMPAIGN_ID.fullmatch(campaign_id):
        raise CampaignError(
            Problem(
                f"{campaign_id!r} is not a campaign id",
                path="id",
                hint="lower-case letters, digits, - and _, at most 64",
            )
        )
    return Path(state_dir) / f"{campaign_id}.sqlite"


LEDGER_FILE = "_consent.sqlite"
"""The state's consent ledger (runner.store.ledger), beside the journals; no campaign id (a slug
starting with a letter or digit) can take its name."""


def ledger_path(state_dir: str | Path) -> Path:
    """Where a state's consent ledger lives."""
    return Path(state_dir) / LEDGER_FILE
