"""`plan` as one library call: every request rendered (keys included) with no network and no
API key, annotated with an earlier run's journal when one is given, counted against the
schedule, and optionally written one JSON object a line. Nothing prints."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from runner.campaign.load import Campaign, load_campaign
from runner.campaign.schedule import ScheduleError, parse_at
from runner.consent.standing import Standing
from runner.errors import CampaignError, Problem
from runner.planning.planfile import dump_header, header, inputs_of
from runner.planning.planner import (
    CapSource,
    JournalEntry,
    JournalOverlay,
    Planner,
    PlanSummary,
    ScheduleCounter,
    dump_line,
)
from runner.planning.request import PlannedRequest

if TYPE_CHECKING:  # the caller opens it: a plan without a journal must not load SQLite
    from runner.store.journal import Journal

Annotated = Iterable[tuple[PlannedRequest, JournalEntry | None]]


@dataclass
class PlanOutcome:
    campaign: Campaign
    summary: PlanSummary
    extra: dict[str, Any]  # "journal" (what an earlier run did) and "schedule" (what is due)

    @property
    def effects(self) -> dict[str, str]:
        return {s.id: s.effect for s in self.campaign.steps}


def plan(
    source: str | Path | Campaign,
    *,
    journal: Journal | None = None,
    out: str | Path | None = None,
    show_recipients: bool = False,
    previews: int = 3,
    at: str | None = None,
    policy: str | Path | None = None,
    caps: CapSource | None = None,
    consent: Mapping[str, Standing] | None = None,
) -> PlanOutcome:
    """Plan a campaign (a file, or one already loaded). ``journal``: an earlier run's (see ``runner.store.journal.Journal``),
    to say per request what it did; ``out``: write every request there, atomically;
    ``policy``: a policy file instead of the repository's runner.yaml; ``caps``: frequency caps
    read from the state, to count what they hold; ``consent``: the state's consent ledger (its
    opted-out and held chats are left out)."""
    campaign = source if isinstance(source, Campaign) else load_campaign(source, policy=policy)
    planner = Planner(campaign, show_recipients=show_recipients, previews=previews, consent=consent)
    overlay = JournalOverlay(journal, campaign.revision) if journal is not None else None
    requests = planner.requests()
    stream: Annotated = overlay.annotate(requests) if overlay else ((r, None) for r in requests)
    timing = None
    # The schedule section is shown when the campaign has a schedule (or --at asks); the law's
    # hours and caps are counted always and shown when they hold something.
    scheduled = (
        campaign.schedule_rules is not None
        or any(s.delay_seconds for s in campaign.steps)
        or bool(at)
    )
    if scheduled or campaign.law.active or caps is not None:
        try:
            when = parse_at(at or "now")
        except ScheduleError as err:
            raise CampaignError(Problem(f"--at: {err}", hint=err.hint)) from None
        timing = ScheduleCounter(campaign, when, caps)
        if overlay is None and not scheduled and timing.unzoned_due:
            planner.observer = timing.observe  # only the law holds: the planner asks per zone
        else:
            stream = _observe(stream, timing)
    if out:
        inputs = inputs_of(campaign)  # hashed before planning: the digest is of what was read

        def head() -> dict[str, Any]:
            s = planner.summary
            return header(campaign, inputs, requests=s.requests, messages=s.messages, at=at)

        # Without a journal or a schedule to observe, the requests go straight to their lines.
        lines: Iterable[str] = (
            map(dump_line, requests)
            if overlay is None and (timing is None or planner.observer)
            else (_line(req, entry) for req, entry in stream)
        )
        try:
            _write_out(Path(out), lines, planner.raise_if_invalid, head)
        except OSError as err:
            raise CampaignError(
                Problem(
                    f"cannot write the plan to {out}: {err.strerror}",
                    hint="choose a path in a folder you can write",
                )
            ) from None
    else:
        for _ in stream:
            pass
    planner.raise_if_invalid()
    if timing is not None:
        timing.due_unzoned += planner.unzoned_messages
    extra: dict[str, Any] = {"journal": overlay.to_dict()} if overlay else {}
    if timing is not None and (scheduled or timing.held):
        extra["schedule"] = timing.to_dict()
    extra["policy"] = campaign.policy.describe()
    return PlanOutcome(campaign, planner.summary, extra)


def _line(req: PlannedRequest, entry: JournalEntry | None) -> str:
    if entry is None:
        return dump_line(req)
    obj = req.to_json_obj()
    obj["journal_status"] = entry.status  # what an earlier run's journal says of this key
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def _observe(
    stream: Annotated, timing: ScheduleCounter
) -> Iterator[tuple[PlannedRequest, JournalEntry | None]]:
    for req, entry in stream:
        timing.observe(req, entry)
        yield req, entry


def _write_out(
    path: Path, lines: Iterable[str], check: Callable[[], None], head: Callable[[], dict[str, Any]]
) -> None:
    """Write atomically: an invalid campaign leaves no half-written plan behind. The header
    (first line) holds the counts, so the requests are spooled first. A symlink is followed
    (its target is replaced); a pipe or device (/dev/stdout) is written directly."""
    # The spool is encoded once as it is written and copied back as bytes (no decoding and
    # encoding again); lines are written a batch at a time.
    with tempfile.TemporaryFile("w+b") as raw:
        spool = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        write = spool.write
        batch = list(islice(lines, _BATCH))
        while batch:
            write("".join(batch))
            batch = list(islice(lines, _BATCH))
        spool.detach()  # flushed into raw, which stays open (and closes alone)
        check()  # an invalid campaign publishes no plan, not even a partial one
        if path.exists() and not path.is_file():
            with open(path, "wb") as fh:
                _publish(fh, head(), raw)
            return
        if path.is_symlink():
            path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                _publish(fh, head(), raw)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plan is an ordinary file
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


_BATCH = 512


def _publish(out: BinaryIO, head: dict[str, Any], spool: BinaryIO) -> None:
    """The header, then the spooled request lines (from the spool's start), as bytes."""
    out.write(dump_header(head).encode("utf-8"))
    spool.seek(0)
    shutil.copyfileobj(spool, out, 1 << 20)
