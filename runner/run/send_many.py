"""`campaign send DIR --due-only`: resume every campaign under a folder that has something due.

What a scheduler (cron every 15 minutes) runs. Each campaign file is checked on its own: one
with nothing due, or never sent (a schedule resumes what a person or the merge job started; it
never starts a campaign), is skipped and named; one with something due is sent as
`campaign send FILE` would, under its own lock. A campaign that cannot be sent (locked by a
run elsewhere, invalid, its state unreachable) is reported and the others go on.

One exit code for the whole folder, the most serious of the campaigns' (runner.exitcodes):
1 (some campaign failed for good, or is invalid) > 3 (some stopped early or is locked
elsewhere: run again) > 4 (sent what was due; more waits on the schedule) > 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from runner import exitcodes
from runner.campaign.load import load_campaign
from runner.errors import CampaignError, Problem
from runner.http.client import base_url_from
from runner.http.retry import StopReason
from runner.planning.validate import expand_paths
from runner.run.due import Due, due_at
from runner.run.rehearsal import rehearsal_now
from runner.run.session import SendOutcome, SendSession
from runner.store.state import State
from runner.store.where import locate_state

_STOP_ALL = (StopReason.INTERRUPTED, StopReason.UNAUTHORIZED)
# Most serious first: the folder's exit code is the first of these any campaign had.
_SEVERITY = (exitcodes.FAILED, exitcodes.STOPPED, exitcodes.WAITING, exitcodes.OK)


class Verdict(StrEnum):
    SENT = "sent"  # its due messages were sent (the exit code says how it ended)
    NOTHING_DUE = "nothing due"
    NEVER_SENT = "never sent"  # no journal: a schedule does not start a campaign
    REFUSED = "refused"  # an error before or while sending: locked, invalid, unreachable


@dataclass(frozen=True)
class SendOptions:
    """The options of `SendSession.open` that every campaign of a folder run shares."""

    rate: float | None = None
    concurrency: int | None = None
    timeout: float = 30.0
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    http_stack: str | None = None
    clean: bool = False
    policy: str | Path | None = None


@dataclass
class CampaignRun:
    file: Path
    verdict: Verdict
    exit_code: int = exitcodes.OK
    campaign: str | None = None
    due: Due | None = None
    outcome: SendOutcome | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class FolderRun:
    runs: list[CampaignRun] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        codes = {r.exit_code for r in self.runs}
        return next((c for c in _SEVERITY if c in codes), exitcodes.OK)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for r in self.runs if r.verdict is verdict)


def campaign_files(folder: Path) -> list[Path]:
    """The campaign files under ``folder``, as `validate` finds them (other YAML left out)."""
    return list(expand_paths([folder]))


def send_due(
    files: Iterable[Path],
    *,
    state_dir: str | Path | State | None = None,
    now: str | None = None,
    base_url: str | None = None,
    on_campaign: Callable[[CampaignRun], None] | None = None,
    options: SendOptions = SendOptions(),
) -> FolderRun:
    """Send each file's due messages (see the module's doc). ``now``: a rehearsal's time (against a non-live API);
    ``on_campaign``: called as each campaign is done (the CLI prints a line)."""
    done = FolderRun()
    at = None
    if now is not None:
        at = datetime.fromtimestamp(rehearsal_now(now, base_url_from(base_url)), UTC)
    for file in files:
        run = _one(file, state_dir, at, now, base_url, options)
        done.runs.append(run)
        if on_campaign is not None:
            on_campaign(run)
        if run.outcome is not None and run.outcome.result.stop_reason in _STOP_ALL:
            break  # Ctrl-C (or SIGTERM from the scheduler), or the key refused: for every one
    return done


def _one(
    file: Path,
    state_dir: str | Path | State | None,
    at: datetime | None,
    now: str | None,
    base_url: str | None,
    options: SendOptions,
) -> CampaignRun:
    try:
        campaign = load_campaign(file, policy=options.policy)
        state = locate_state(state_dir, file, policy=campaign.policy, campaign_id=campaign.id)
        due = due_at(campaign, state, at)
        if not due.sent_before:
            return CampaignRun(file, Verdict.NEVER_SENT, campaign=campaign.id, due=due)
        if not due.messages:
            return CampaignRun(file, Verdict.NOTHING_DUE, campaign=campaign.id, due=due)
        with SendSession.open(
            file,
            state_dir=state,
            now=now,
            base_url=base_url,
            rate=options.rate,
            concurrency=options.concurrency,
            timeout=options.timeout,
            max_attempts=options.max_attempts,
            backoff_base=options.backoff_base,
            backoff_cap=options.backoff_cap,
            http_stack=options.http_stack,
            clean=options.clean,
            policy=options.policy,
        ) as session:
            outcome = session.send()
        return CampaignRun(file, Verdict.SENT, outcome.exit_code, campaign.id, due, outcome)
    except CampaignError as err:
        return CampaignRun(file, Verdict.REFUSED, err.exit_code, problems=err.problems)
    except OSError as err:  # a folder or file the user named cannot be read or written
        return CampaignRun(
            file,
            Verdict.REFUSED,
            exitcodes.FAILED,
            problems=[
                Problem(err.strerror or str(err), file=str(err.filename or file), layer="io")
            ],
        )
