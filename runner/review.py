"""The pull-request review of the GitHub action (action.yml): validate, plan, diff, and write the
step summary and the comment. ``python -m runner.review`` runs it; action/campaign-review.sh
calls that.

A pull request, a fork's included, controls everything read here: file names, ids, template
text, committed symlinks. So every text goes through runner.safe_text for its sink; every file
written (plans) stays inside the repository and is never written through a symlink; plan
file names encode the campaign's path (``campaigns/a__b.yaml`` and ``campaigns/a/b.yaml``
cannot meet); the comment stays under GitHub's 65,536 characters and the summary under 1 MiB,
what would be sent again first, with a note of what was cut (the full text stays in the review
folder).

``python -m runner.review changed REF`` lists the campaigns whose plan changed since REF, for
the action's `mode: send` (action/campaign-send.sh).

Environment (set by action.yml): CAMPAIGNS (paths, whitespace separated: files or folders),
PLANS_DIR, RUNNER_STATE, DIFF_BASE (a git ref; empty: no diff), REVIEW_DIR,
GITHUB_STEP_SUMMARY.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import click

from runner import limits
from runner.campaign.load import load_campaign
from runner.errors import CampaignError, Problem
from runner.planning.validate import expand_paths, validate_run
from runner.report.diagnostics import format_github
from runner.report.diff import render_markdown as diff_markdown
from runner.report.plan import render_markdown as plan_markdown
from runner.run.diff_session import campaign_diff
from runner.run.dry_run import plan as dry_run
from runner.safe_text import command_data, github_output, md_code, one_line, terminal
from runner.store.backend import open_journal
from runner.store.journal import Journal
from runner.store.paths import journal_path
from runner.store.pgconn import is_url
from runner.store.state import open_state

MARKER = "<!-- campaign-runner-review -->"
_MAX_NAME = 200  # bytes of a plan file's name before it is shortened with a hash


def plan_name(campaign_file: str) -> str:
    """The plan file's name for a campaign path: the path percent-encoded whole (``/`` too, and
    ``%`` itself), so two paths never share a name; very long ones end in a hash of the path."""
    rel = Path(campaign_file).as_posix().removeprefix("./")
    name = quote(rel, safe="") + ".jsonl"
    if name.startswith("."):
        name = "%2E" + name[1:]  # never a hidden file, never "." or ".."
    if len(name.encode()) > _MAX_NAME:
        digest = hashlib.sha256(rel.encode()).hexdigest()[:16]
        name = name[: _MAX_NAME - 24] + "~" + digest + ".jsonl"
    return name


def confined(repo: Path, path: Path, what: str) -> Path:
    """``path`` (relative to ``repo``) if neither it nor any folder on the way from ``repo`` is
    a symlink, and it stays inside ``repo``; else a CampaignError naming it."""
    repo = repo.resolve()
    full = path if path.is_absolute() else repo / path
    try:
        rel = Path(os.path.normpath(full)).relative_to(repo)
    except ValueError:
        raise CampaignError(
            Problem(
                f"{what} {path} is outside the repository",
                file=str(path),
                hint="the review writes only inside the repository",
            )
        ) from None
    here = repo
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            raise CampaignError(
                Problem(
                    f"{what} {path}: {here.relative_to(repo)} is a symlink",
                    file=str(path),
                    hint="the review never writes through a "
                    "symlink; remove it from the pull request",
                )
            )
    return repo / rel


def campaign_files(spec: str, repo: Path) -> tuple[list[str], list[Problem]]:
    """The campaign files the action's ``campaigns`` input names (files, or folders walked as
    ``validate`` walks them), each once; those outside the repository or reached through a
    symlink are left out with a problem (a symlink could point at a secret whose text an error
    would quote into the public comment)."""
    found: list[str] = []
    problems: list[Problem] = []
    paths = []
    for raw in spec.split():
        try:
            paths.append(str(confined(repo, Path(raw), "the campaign path").relative_to(repo)))
        except CampaignError as err:
            problems += err.problems
    for path in expand_paths(paths):
        try:
            confined(repo, path, "the campaign file")
        except CampaignError as err:
            problems += err.problems
            continue
        if str(path) not in found:
            found.append(str(path))
    return found, problems


@dataclass
class Section:
    """One campaign's part of the review."""

    file: str
    plan_md: str
    diff_md: str | None = None
    would_resend: int | None = None  # None: no diff, or the diff failed
    new_requests: int | None = None
    failed: bool = False


@dataclass
class Review:
    sections: list[Section] = field(default_factory=list)
    status: int = 0


def _state_of(value: str | None) -> Path | str:
    """RUNNER_STATE: a postgresql:// URL as it is, else a folder (default .runner)."""
    return value if value is not None and is_url(value) else Path(value or ".runner")


def _plan_one(file: str, repo: Path, plans_dir: Path | None, state_dir: Path | str) -> str:
    """The plan's markdown; the plan file written into ``plans_dir`` (None: refused, so the
    plan is made and shown but not written)."""
    out = None
    if plans_dir is not None:
        out = confined(repo, plans_dir / plan_name(file), "the plan file")
        out.parent.mkdir(parents=True, exist_ok=True)
        confined(repo, out, "the plan file")  # mkdir made nothing a symlink; checked once more
    campaign = load_campaign(file)
    if is_url(state_dir):  # the team's database state (RUNNER_STATE=postgresql://...)
        state = open_state(state_dir)
        if state.has_journal(campaign.id):
            with open_journal(state, campaign.id) as journal, journal.snapshot("plan"):
                outcome = dry_run(campaign, journal=journal, out=out)
        else:
            outcome = dry_run(campaign, out=out)
        return plan_markdown(
            outcome.summary, file=file, effects=outcome.effects, extra=outcome.extra
        )
    jpath = journal_path(state_dir, campaign.id)
    if jpath.is_symlink() or jpath.exists():
        # A committed journal is opened (and an old one upgraded in place): never a symlink.
        confined(repo, jpath, "the journal")
    if jpath.is_file():
        with Journal(jpath) as journal, journal.snapshot("plan"):
            outcome = dry_run(campaign, journal=journal, out=out)
    else:
        outcome = dry_run(campaign, out=out)
    return plan_markdown(outcome.summary, file=file, effects=outcome.effects, extra=outcome.extra)


@dataclass
class JobLog:
    """The job log: lines, and problems as annotations, each said once (validate, plan and
    diff find the same problem)."""

    write: Callable[[str], None]
    said: set[str] = field(default_factory=set)

    def line(self, text: str) -> None:
        self.write(terminal(text))

    def annotate(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            line = format_github(p)  # a workflow command on purpose, its data escaped
            if line not in self.said:
                self.said.add(line)
                self.write(line)


def run_review(
    files: list[str],
    *,
    repo: Path,
    plans_dir: Path | None,
    state_dir: Path | str,
    base: str | None,
    log: JobLog,
) -> Review:
    """Validate (annotations to ``log``, the job log), then plan and diff each file."""
    review = Review()
    try:
        run = validate_run(files)
    except CampaignError as err:
        log.annotate(err.problems)
        review.status = 1
        return review
    for result in run.results:
        log.annotate(result.problems)
    log.line(f"{sum(r.valid for r in run.results)} of {len(run.results)} campaign file(s) valid")
    if not run.valid:
        review.status = 1
    for file in files:
        section = Section(file, "")
        try:
            section.plan_md = _plan_one(file, repo, plans_dir, state_dir)
        except CampaignError as err:
            log.annotate(err.problems)
            section.plan_md = f"### {md_code(file)}: plan failed, see the job log\n"
            section.failed = True
        if base:
            try:
                doc = campaign_diff(file, base=base)
                section.diff_md = diff_markdown(doc)
                section.would_resend = int(doc["totals"]["would_resend"])
                section.new_requests = int(doc["totals"]["new_requests"])
            except CampaignError as err:
                log.annotate(err.problems)
                section.diff_md = (
                    f"### {md_code(file)}: diff against {md_code(base)} failed, see the job log\n"
                )
                section.failed = True
        review.status |= int(section.failed)
        review.sections.append(section)
    return review


def headline(review: Review, base: str | None) -> list[str]:
    """What matters most, first: per campaign, how many requests would be sent again."""
    lines = [MARKER, "## Campaign review", "", "Dry run: nothing was sent.", ""]
    if not base:
        return lines
    ranked = sorted(review.sections, key=lambda s: -(s.would_resend or 0))
    lines += ["| campaign file | would send again | new requests |", "|---|--:|--:|"]
    for s in ranked:
        again = (
            "diff failed"
            if s.would_resend is None
            else f"**{s.would_resend:,}**"
            if s.would_resend
            else "0"
        )
        new = "—" if s.new_requests is None else f"{s.new_requests:,}"
        lines.append(f"| {md_code(s.file, in_table=True)} | {again} | {new} |")
    return lines + [""]


def _close_details(lines: list[str]) -> list[str]:
    opened = sum(ln.count("<details>") for ln in lines) - sum(
        ln.count("</details>") for ln in lines
    )
    return lines + ["", "</details>"] * max(opened, 0)


def fit(
    head: list[str], sections: list[str], limit: int, size: Callable[[str], int], full_name: str
) -> str:
    """``head`` then as many ``sections`` as fit under ``limit`` (measured by ``size``); a
    section that does not fit whole is cut at a line (an open ``<details>`` closed), and a
    note says what was cut and where the full text is."""

    def note(cut_sections: int, cut_size: int) -> str:
        return (
            f"\n> ✂️ Cut to stay under GitHub's limit: {cut_sections} of {len(sections)} "
            f"campaign section(s) shortened or left out ({cut_size:,} more). The full review "
            f"is {md_code(full_name)} in the review folder (the action's `comment-file` "
            "output's folder, uploaded as the `campaign-review` artifact).\n"
        )

    reserve = size(note(len(sections), 10**12)) + 16
    text = "\n".join(head) + "\n"
    if size(text) + reserve > limit:  # the head alone is too long: cut it by lines too
        kept: list[str] = []
        for ln in head:
            if size("\n".join(kept + [ln]) + "\n") + reserve > limit:
                break
            kept.append(ln)
        text = "\n".join(kept) + "\n"
        return text + note(len(sections), sum(size(s) for s in sections))
    for i, section in enumerate(sections):
        if size(text + section) + reserve <= limit:
            text += section
            continue
        kept = []
        for ln in section.split("\n"):
            candidate = "\n".join(_close_details(kept + [ln])) + "\n"
            if size(text + candidate) + reserve > limit:
                break
            kept.append(ln)
        part = "\n".join(_close_details(kept)) + "\n" if kept else ""
        text += part
        rest = sum(size(s) for s in sections[i:]) - size(part)
        return text + note(len(sections) - i, rest)
    return text


def write_outputs(
    review: Review, base: str | None, review_dir: Path, summary_file: Path | None
) -> Path:
    """The full texts into ``review_dir`` (``summary-full.md``, ``comment-full.md``); the
    comment, capped, as ``comment.md`` (its path is returned); the summary, capped, appended to
    ``summary_file``. The summary holds plans and diffs; the comment the diffs (the plans when
    there is no base)."""
    head = headline(review, base)
    # The campaigns that would send again first: if anything is cut, it is not them.
    ranked = sorted(review.sections, key=lambda s: -(s.would_resend or 0))
    summary_parts = [s.plan_md + "\n" + (s.diff_md + "\n" if s.diff_md else "") for s in ranked]
    comment_parts = [(s.diff_md if base and s.diff_md else s.plan_md) + "\n" for s in ranked]
    review_dir.mkdir(parents=True, exist_ok=True)
    (review_dir / "summary-full.md").write_text(
        "\n".join(head[1:]) + "\n" + "".join(summary_parts), encoding="utf-8"
    )
    (review_dir / "comment-full.md").write_text(
        "\n".join(head) + "\n" + "".join(comment_parts), encoding="utf-8"
    )
    comment = fit(head, comment_parts, limits.MAX_COMMENT_CHARS, len, "comment-full.md")
    comment_path = review_dir / "comment.md"
    comment_path.write_text(comment, encoding="utf-8")
    if summary_file is not None:
        summary = fit(
            head[1:],
            summary_parts,
            limits.MAX_SUMMARY_BYTES,
            lambda t: len(t.encode("utf-8")),
            "summary-full.md",
        )
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(summary)
    return comment_path


def own_comment(lines: Iterable[str], login: str) -> int | None:
    """The id of the review comment to update: the first whose author is ``login`` (the
    token's own account) and whose body starts with the marker. Anyone can post a comment
    starting with the marker; only the bot's own is edited. ``lines``: one JSON object a
    line, ``{"id", "login", "body"}`` (what action.yml's gh api --jq writes)."""
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        body, author, cid = item.get("body"), item.get("login"), item.get("id")
        if (
            author == login
            and isinstance(body, str)
            and body.startswith(MARKER)
            and isinstance(cid, int)
            and not isinstance(cid, bool)
        ):
            return cid
    return None


_NO_BASE = ("", "0" * 40)  # a branch's first push: github.event.before is forty zeros


def changed_campaigns(files: list[str], base: str) -> list[str]:
    """The campaign files whose plan gains requests since ``base`` (a new campaign, a new step
    or recipient, content sent again under a new key): what the action's `mode: send` sends on
    merge. A file whose diff fails is kept (its send then says what is wrong); without a base
    (a branch's first push), every file."""
    if base in _NO_BASE:
        return list(files)
    out = []
    for file in files:
        try:
            totals = campaign_diff(file, base=base)["totals"]
        except CampaignError:
            out.append(file)
            continue
        if int(totals["new_requests"]) + int(totals["would_resend"]):
            out.append(file)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["changed"] and len(args) == 2:
        # changed REF: the campaign files of CAMPAIGNS whose plan gains requests since REF, one
        # a line (action/campaign-send.sh sends those); problems as annotations on stderr.
        files, problems = campaign_files(os.environ.get("CAMPAIGNS", "campaigns"), Path.cwd())
        for p in problems:
            click.echo(format_github(p), err=True)
        for file in changed_campaigns(files, args[1]):
            click.echo(one_line(file))  # a newline in a name cannot make two paths
        return 1 if problems else 0
    if args[:1] == ["output"] and len(args) == 3:
        # output NAME VALUE: one $GITHUB_OUTPUT entry that VALUE cannot break out of.
        click.echo(github_output(args[1], args[2]), nl=False)
        return 0
    if args[:1] == ["own-comment"]:
        # own-comment LOGIN < comments (one JSON object a line): prints the id, or nothing.
        found = own_comment(sys.stdin, args[1] if len(args) > 1 else "")
        if found is not None:
            click.echo(str(found))
        return 0
    env = os.environ
    repo = Path.cwd().resolve()

    log = JobLog(click.echo)

    files, problems = campaign_files(env.get("CAMPAIGNS", "campaigns"), repo)
    log.annotate(problems)
    if not files:
        log.write(
            f"::error::{command_data('no campaign files found in: ' + env.get('CAMPAIGNS', ''))}"
        )
        return 1
    base = env.get("DIFF_BASE") or None
    plans_dir: Path | None = None
    try:
        plans_dir = confined(repo, Path(env.get("PLANS_DIR") or "plans"), "the plans folder")
    except CampaignError as err:  # reviewed all the same; no plan file is written
        log.annotate(err.problems)
        problems += err.problems
    review = run_review(
        files,
        repo=repo,
        plans_dir=plans_dir,
        state_dir=_state_of(env.get("RUNNER_STATE")),
        base=base,
        log=log,
    )
    summary = env.get("GITHUB_STEP_SUMMARY")
    write_outputs(
        review,
        base,
        Path(env.get("REVIEW_DIR") or ".campaign-review"),
        Path(summary) if summary else None,
    )
    return 1 if problems else review.status


if __name__ == "__main__":
    sys.exit(main())
