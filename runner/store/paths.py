"""Where runner keeps its state by default: the one spelling of the state directory."""

from __future__ import annotations

from pathlib import Path

DEFAULT_STATE_DIR = ".runner"
"""Journals and the capability cache live here, relative to the working directory, unless a
command is given ``--state DIR``."""


def journal_path(state_dir: str | Path, campaign_id: str) -> Path:
    """Where a campaign's journal lives: one file per campaign id under the state directory."""
    return Path(state_dir) / f"{campaign_id}.sqlite"


LEDGER_FILE = "_consent.sqlite"
"""The state's consent ledger (runner.store.ledger), beside the journals; no campaign id (a slug
starting with a letter or digit) can take its name."""


def ledger_path(state_dir: str | Path) -> Path:
    """Where a state's consent ledger lives."""
    return Path(state_dir) / LEDGER_FILE
