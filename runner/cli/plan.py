from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from runner.campaign.load import load_campaign
from runner.campaign.schedule import ScheduleError, parse_at
from runner.cli._base import main, user_errors
from runner.errors import CampaignError, Problem
from runner.planning.planner import JournalOverlay, Planner, ScheduleCounter, dump_line
from runner.report.plan import render_json, render_markdown, render_text


def open_journal(state_dir: str, campaign_id: str):
    """The campaign's journal if an earlier run left one, else None (a dry run creates nothing)."""
    from runner.store.journal import Journal, journal_path

    path = journal_path(state_dir, campaign_id)
    return Journal(path) if path.is_file() else None


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="markdown fits a pull-request comment or a CI step summary")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="write every request, one JSON object a line (byte-identical on re-run)")
@click.option("--state", "state_dir", default=".runner", show_default=True,
              help="where an earlier run's journal is looked for")
@click.option("--previews", default=3, show_default=True, type=click.IntRange(0, 100),
              help="how many recipients to preview")
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@click.option("--at", "at", default=None, metavar="TIME",
              help="with a schedule or delays: count what is due at TIME (ISO 8601 with offset, or 'now', the default)")
@user_errors()
def plan(file: str, fmt: str, out: str | None, state_dir: str, previews: int, show_recipients: bool,
         at: str | None) -> None:
    """Dry run: render every request (keys included) with no network and no API key."""
    campaign = load_campaign(file)
    planner = Planner(campaign, show_recipients=show_recipients, previews=previews)
    journal = open_journal(state_dir, campaign.id)
    overlay = JournalOverlay(journal) if journal is not None else None
    requests = planner.requests()
    stream = overlay.annotate(requests) if overlay else ((r, None) for r in requests)
    timing = None
    if campaign.schedule_rules is not None or any(s.delay_seconds for s in campaign.steps) or at:
        try:
            when = parse_at(at or "now")
        except ScheduleError as err:
            raise CampaignError(Problem(f"--at: {err}", hint=err.hint)) from None
        timing = ScheduleCounter(campaign, when)
        stream = _observe(stream, timing)
    try:
        if out:
            try:
                _write_out(Path(out), stream, planner.raise_if_invalid)
            except OSError as err:
                raise CampaignError(Problem(f"cannot write the plan to {out}: {err.strerror}",
                                            hint="choose a path in a folder you can write")) from None
        else:
            for _ in stream:
                pass
    finally:
        if journal is not None:
            journal.close()
    planner.raise_if_invalid()
    summary = planner.summary
    extra = {"journal": overlay.to_dict()} if overlay else {}
    if timing is not None:
        extra["schedule"] = timing.to_dict()
    effects = {s.id: s.effect for s in campaign.steps}
    if fmt == "json":
        click.echo(render_json(summary, extra=extra), nl=False)
    elif fmt == "markdown":
        click.echo(render_markdown(summary, file=file, effects=effects, extra=extra), nl=False)
    else:
        click.echo(render_text(summary, file=file, effects=effects, extra=extra), nl=False)
    if out and fmt == "text":
        click.echo(f"wrote {summary.requests:,} requests to {out}", err=True)
    # Problems that are only warnings (duplicates, etc.) are in the summary's warnings.
    sys.exit(0)


def _line(req, entry) -> str:
    if entry is None:
        return dump_line(req)
    obj = req.to_json_obj()
    obj["journal_status"] = entry.status  # what an earlier run's journal says of this key
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def _observe(stream, timing):
    for req, entry in stream:
        timing.observe(req, entry)
        yield req, entry


def _write_out(path: Path, stream, check) -> None:
    """Write atomically: an invalid campaign leaves no half-written plan behind. A symlink is
    followed (its target is replaced); a pipe or device (/dev/stdout) is written directly."""
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            for req, entry in stream:
                fh.write(_line(req, entry))
        check()
        return
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            write = fh.write
            for req, entry in stream:
                write(_line(req, entry))
        check()  # an invalid campaign publishes no plan, not even a partial one
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plan is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
