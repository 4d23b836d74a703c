"""The dry run: every request the campaign would send, with its key, and a summary of them.

Pure and streaming: recipients are read, rendered and turned into requests one at a time, so a
1,000,000-row campaign plans in bounded memory. The same campaign and data always give the same
requests in the same order with the same keys (byte-identical `plan --out`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from runner.audience.chatids import url_path
from runner.audience.mask import display_chat, mask_one
from runner.audience.recipients import LISTED_ROWS, ReadStats, Recipient, iter_recipients
from runner.audience.suppress import Suppression, load_suppression
from runner.campaign.load import Campaign
from runner.campaign.schedule import (
    Hold,
    HoldSource,
    Schedule,
    ScheduleError,
    zones_of,
)
from runner.consent.standing import Standing
from runner.errors import CampaignError, Problem
from runner.law.place import place_of
from runner.law.segments import Segments, SegmentTally
from runner.planning.jsonenc import encode_sorted
from runner.planning.keys import content_hash, step_keys
from runner.planning.render import (
    Rendered,
    Renderer,
    RenderError,
    referenced_variables,
    render_error,
    render_problem,
)
from runner.planning.request import PlannedRequest
from runner.states import RequestStatus, Wait

PLAN_SCHEMA_VERSION = 1
PREVIEW_COUNT = 3


_ENCODE = encode_sorted
_STR = json.encoder.encode_basestring  # a JSON string, as _ENCODE writes one (UTF-8 kept)
_VARIANT_FIELDS: dict[str, str] = {}  # variant id -> its `,"variant":...` field, made once


def _part_texts(body: dict[str, Any]) -> list[str]:
    """The texts of a body's `parts` (a body whose `text` is neither a string nor a list)."""
    return [
        t
        for p in body.get("parts") or ()
        if isinstance(p, dict)
        for t in (p.get("text"),)
        if type(t) is str and t
    ]


def _variant_field(variant: str) -> str:
    field = _VARIANT_FIELDS[variant] = ',"variant":' + _STR(variant)
    return field


def dump_line(req: PlannedRequest) -> str:
    """One `plan --out` line: keys sorted, UTF-8, compact, `\\n`-terminated.

    Written field by field in sorted order rather than through ``to_json_obj`` (a dict built,
    then sorted, per request): the same bytes (tests/test_plan_output.py compares the two), a
    third of the cost."""
    rts, variant = req.reply_to_step, req.variant
    return "".join(
        (
            '{"body":',
            _ENCODE(req.body),
            ',"key":',
            _STR(req.key),
            ',"messages":',
            int.__repr__(req.messages),
            ',"method":',
            _STR(req.method),
            ',"path":',
            _STR(req.path),
            ',"recipient":',
            _STR(req.recipient),
            "" if rts is None else ',"reply_to_step":' + _STR(rts),
            ',"step":',
            _STR(req.step),
            "" if variant is None else _VARIANT_FIELDS.get(variant) or _variant_field(variant),
            "}\n",
        )
    )


class ProblemCollector:
    """Keeps every distinct problem, but only the first few of a problem repeated for many
    recipients (an undefined variable in 90,000 rows is one problem, said once with a count)."""

    PER_KIND = 3
    MAX_KINDS = 200

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._counts: dict[tuple[str, str], int] = {}
        self._first: dict[tuple[str, str], Problem] = {}
        self._more: dict[tuple[str, str], list[str]] = {}  # where the unshown ones are (first 20)
        self.dropped = 0

    def add(self, problem: Problem) -> None:
        kind = (problem.layer, problem.message)
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        if n == 0:
            if len(self._first) >= self.MAX_KINDS:
                self.dropped += 1
                return
            self._first[kind] = problem
        if n < self.PER_KIND:
            self.problems.append(problem)
        elif kind in self._first:
            more = self._more.setdefault(kind, [])
            if len(more) < LISTED_ROWS:
                first = self._first[kind]
                more.append(
                    str(problem.line)
                    if problem.line is not None and problem.file == first.file
                    else problem.location()
                )

    def extend(self, problems: list[Problem]) -> None:
        for p in problems:
            self.add(p)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.result() if p.severity == "error"]

    def result(self, *, with_dropped: bool = True) -> list[Problem]:
        """Every problem kept, sorted by place; the count of those dropped comes last (it has
        no place) unless ``with_dropped`` is False (validate says it after the problems)."""
        out = list(self.problems)
        for kind, n in self._counts.items():
            if n > self.PER_KIND and kind in self._first:
                first = self._first[kind]
                more = self._more.get(kind, [])
                rest = n - self.PER_KIND - len(more)
                named = ", ".join(more) + (f" and {rest:,} more" if rest > 0 else "")
                out.append(
                    Problem(
                        f"the same problem for {n - self.PER_KIND:,} more recipients "
                        f"(row{'s' if n - self.PER_KIND != 1 else ''} {named}): {first.message}",
                        file=first.file,
                        line=first.line,
                        path=first.path,
                        hint=first.hint or "fix each row named",
                        severity=first.severity,
                        layer=first.layer,
                    )
                )
        out.sort(key=Problem.sort_key)
        if self.dropped and with_dropped:
            out.append(
                Problem(
                    f"{self.dropped:,} more problems not shown",
                    hint="fix the ones above and run again",
                )
            )
        return out


@dataclass
class StepCounts:
    requests: int = 0
    messages: int = 0
    skipped: int = 0  # by `when`, or because the step it replies to was skipped
    variants: dict[str, int] | None = None  # a step with variants: requests per variant id
    # If every phone got it by SMS: messages, their segments, the most in one message, how many
    # exceed the policy's max_segments, and the first text that needed UCS-2.
    tally: SegmentTally = field(default_factory=SegmentTally)
    sms_bodies: list[dict[str, Any]] = field(default_factory=list)  # not yet in the tally

    def tally_sms(self) -> None:
        """Tally the texts of the bodies gathered since the last call, in their order."""
        bodies, self.sms_bodies = self.sms_bodies, []
        first = [b.get("text") for b in bodies]
        texts = [t for t in first if type(t) is str]
        if len(texts) != len(first):  # lists of texts, parts: read body by body
            texts = []
            for text, body in zip(first, bodies, strict=True):
                if type(text) is str:
                    texts.append(text)
                elif type(text) is list:
                    texts += [t for t in text if type(t) is str]
                else:
                    texts += _part_texts(body)
        self.tally.texts += texts
        self.tally.flush()

    @property
    def sms_messages(self) -> int:
        return self.tally.messages

    @property
    def segments(self) -> int:
        return self.tally.segments

    @property
    def max_segments(self) -> int:
        return self.tally.most

    @property
    def over_max(self) -> int:
        return self.tally.over

    @property
    def ucs2(self) -> Segments | None:
        return self.tally.ucs2

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "messages": self.messages,
            "skipped": self.skipped,
        }
        if self.variants is not None:
            out["variants"] = dict(self.variants)
        return out

    def segments_dict(self) -> dict[str, Any]:
        return {
            "messages": self.sms_messages,
            "segments": self.segments,
            "max_per_message": self.max_segments,
            "encoding": "UCS-2" if self.ucs2 else "GSM-7",
        }


@dataclass
class PlanSummary:
    campaign: str
    revision: int
    rows: int = 0
    recipients: int = 0  # distinct chats that get a plan
    duplicates: int = 0
    suppressed: int = 0
    # Of ``suppressed``: kept by the state's consent ledger, not by a suppression file.
    opted_out: int = 0
    held: int = 0
    invalid: int = 0
    empty_rows: int = 0  # rows whose cells are all empty (",,,," from a spreadsheet): skipped
    no_chat: int = 0  # rows whose chat id cells are empty: skipped (recipients.strict: errors)
    excluded: int = 0  # rows recipients.exclude_when excludes: never rendered
    excluded_by: str = ""  # the columns exclude_when reads ("Do not text")
    read_as: str | None = None  # how the data file was read, when not plain UTF-8 CSV
    requests: int = 0
    messages: int = 0
    skipped: int = 0
    emails: int = 0
    groups: int = 0
    unplaced: int = 0  # recipients whose number gives no US place: the law's hours cannot apply
    steps: dict[str, StepCounts] = field(default_factory=dict)
    from_numbers: dict[str, int] = field(default_factory=dict)
    previews: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": PLAN_SCHEMA_VERSION,
            "campaign": self.campaign,
            "revision": self.revision,
            "recipients": self.recipients,
            "requests": self.requests,
            "messages": self.messages,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "steps": {k: v.to_dict() for k, v in self.steps.items()},
            "warnings": list(self.warnings),
            "previews": self.previews,
        }
        if self.from_numbers:
            out["from_numbers"] = dict(sorted(self.from_numbers.items()))
        sms = {k: v.segments_dict() for k, v in self.steps.items() if v.sms_messages}
        if sms:
            out["sms_segments"] = sms  # what each step costs if every phone gets it by SMS
        if self.unplaced:
            out["unplaced"] = self.unplaced
        if self.excluded:
            out["excluded"] = {"recipients": self.excluded, "by": self.excluded_by}
        if self.no_chat:
            out["rows_without_chat"] = self.no_chat
        if self.read_as:
            out["read_as"] = self.read_as
        if self.opted_out or self.held:
            out["consent"] = {"opted_out": self.opted_out, "held": self.held}
        return out


class Planner:
    """Walks a campaign once. Iterate `requests()`; afterwards `summary` and `problems` hold
    the counts and everything found (call `raise_if_invalid()` before trusting the requests)."""

    def __init__(
        self,
        campaign: Campaign,
        *,
        show_recipients: bool = False,
        previews: int = PREVIEW_COUNT,
        suppression: Suppression | None = None,
        consent: Mapping[str, Standing] | None = None,
    ) -> None:
        """``consent``: the state's ledger (chats opted out or held, runner.store.ledger) when
        the caller read it; those chats are suppressed like the files' entries."""
        self.campaign = campaign
        self.renderer = Renderer(campaign)
        self._keys = {s.id: step_keys(campaign.id, campaign.revision, s.id) for s in campaign.steps}
        self.show = show_recipients
        self.preview_count = previews
        self.collector = ProblemCollector()
        self.collector.extend(campaign.warnings)
        if suppression is None:
            suppression, problems = load_suppression(
                campaign.suppress,
                campaign.base_dir,
                campaign.doc.file,
                campaign.doc.locate,
                campaign.source.region,
            )
            self.collector.extend(problems)
        if consent:
            suppression = suppression.with_consent(consent)
        self.suppression = suppression
        self.summary = PlanSummary(
            campaign=campaign.id,
            revision=campaign.revision,
            steps={
                s.id: StepCounts(
                    variants={v.variant or "": 0 for v in s.variants} if s.variants else None
                )
                for s in campaign.steps
            },
        )
        # (step id, variant id) pairs not previewed yet: `plan` previews one recipient of each.
        self._unseen_variants = {(s.id, v.variant) for s in campaign.steps for v in s.variants}
        self._dup_lines: list[str] = []
        self.read_stats = ReadStats()
        self._law = campaign.law
        # Read once, not per recipient: whether a recipient needs a zone, and how it gets one.
        sched = campaign.schedule_rules
        self._zoned = sched is not None or campaign.law.active
        self._zone_var = (sched.zone_var or None) if sched is not None else None
        self._default_zone = (
            sched.default_zone.key if sched is not None and sched.default_zone else None
        )
        # Without a journal to read: what the law may hold is observed here, per recipient with
        # a zone (ScheduleCounter.observe); the others are only counted (nothing can hold them).
        self.observer: Callable[[PlannedRequest, None], object] | None = None
        self.unzoned_messages = 0
        self._sms_pending = 0  # recipients whose bodies wait in StepCounts.sms_bodies
        for counts in self.summary.steps.values():
            counts.tally.limit = campaign.policy.max_segments

    @property
    def problems(self) -> list[Problem]:
        return self.collector.result()

    def raise_if_invalid(self) -> None:
        errors = self.collector.errors
        if errors:
            raise CampaignError(errors)

    def recipients(self) -> Iterator[tuple[Recipient, list[Rendered]]]:
        """Each recipient that gets messages, with its rendered steps (problems collected)."""
        s = self.summary
        for rec in iter_recipients(self.campaign.doc, self.campaign.source, self.read_stats):
            s.rows += 1
            if rec.problem is not None:
                s.invalid += 1
                self.collector.add(rec.problem)
                if rec.vars:
                    # Its templates are checked too, so fixing the chat ids does not reveal a
                    # second wave of errors.
                    try:
                        self.renderer.render(rec)
                    except RenderError as err:
                        self.collector.add(render_problem(self.campaign, rec, err))
                continue
            if rec.duplicate:
                s.duplicates += 1
                self.collector.add(
                    Problem(
                        "this chat is listed again; it is sent once and the first row's variables win",
                        file=rec.file,
                        line=rec.line,
                        path=rec.path,
                        severity="warning",
                        layer="recipients",
                        hint="remove the repeated row",
                    )
                )
                if len(self._dup_lines) < 5:
                    self._dup_lines.append(rec.where())
                continue
            if self.campaign.exclude_when is not None and self._excluded(rec):
                continue
            chat = rec.chat or ""
            if chat in self.suppression:
                s.suppressed += 1
                if not self.suppression.in_files(chat):
                    if self.suppression.standing(chat) is Standing.OPTED_OUT:
                        s.opted_out += 1
                    else:
                        s.held += 1
                continue
            try:
                rendered = self.renderer.render(rec)
            except RenderError as err:
                self.collector.add(render_problem(self.campaign, rec, err))
                continue
            if self._zoned:
                sched = self.campaign.schedule_rules
                try:
                    rec.zone = self._zone_of(chat, rec.vars, sched)
                except ScheduleError as err:
                    self.collector.add(
                        Problem(
                            f"{sched.zone_var if sched else 'zone'}: {err}",
                            file=rec.file,
                            line=rec.line,
                            path=rec.path or str(sched.zone_var if sched else ""),
                            hint=err.hint,
                            layer="schedule",
                        )
                    )
                    continue
            s.recipients += 1
            if "," in chat:
                s.groups += 1
            elif "@" in chat:
                s.emails += 1
            yield rec, rendered

    def _zone_of(self, chat: str, variables: dict[str, Any], sched: Schedule | None) -> str | None:
        """The recipient's zone(s): its `timezone_var` when set, else its number's (several,
        comma-separated, when its area code spans zones), else the campaign's zone."""
        place = place_of(chat)
        if not place.us and self._law.legal:
            self.summary.unplaced += 1
        if (
            sched is not None
            and self._zone_var is not None
            and variables.get(self._zone_var) not in (None, "")
        ):
            return sched.zone_for(variables).key
        if place.zones:  # placed
            return ",".join(place.zones)
        return self._default_zone

    def _excluded(self, rec: Recipient) -> bool:
        """Whether recipients.exclude_when excludes this row (counted); a row it cannot be
        evaluated for is a problem at the row, and is not planned either."""
        cond = self.campaign.exclude_when
        assert cond is not None
        try:
            out = cond(self.renderer.context(rec))
        except Exception as err:  # noqa: BLE001 - every template failure is the user's
            rerr = render_error("recipients.exclude_when", err)
            self.renderer.explain(rerr, rec)
            self.collector.add(render_problem(self.campaign, rec, rerr))
            return True
        if out:
            s = self.summary
            s.excluded += 1
            if not s.excluded_by:
                s.excluded_by = _condition_columns(cond.source, rec.columns or {})
        return out

    def requests(self) -> Iterator[PlannedRequest]:
        s = self.summary
        pooled = isinstance(self.campaign.sender.get("from_number"), list)
        observe = self.observer
        for rec, rendered in self.recipients():
            before = s.messages
            reqs = self.requests_for(rec, rendered)
            yield from reqs
            if observe is not None:
                if rec.zone is not None:
                    for r in reqs:
                        observe(r, None)
                else:
                    self.unzoned_messages += s.messages - before  # requests_for counted them
            if pooled:
                number = self.renderer.from_number(rec.chat or "") or ""
                s.from_numbers[number] = s.from_numbers.get(number, 0) + 1
            if len(s.previews) < self.preview_count:
                s.previews.append(self._preview(rec, rendered, reqs))
                self._unseen_variants.difference_update((r.step, r.variant) for r in reqs)
            elif (
                self._unseen_variants
                and self.preview_count
                and any((r.step, r.variant) in self._unseen_variants for r in reqs)
            ):
                s.previews.append(self._preview(rec, rendered, reqs))
                self._unseen_variants.difference_update((r.step, r.variant) for r in reqs)
        self._finish()

    def requests_for(self, rec: Recipient, rendered: list[Rendered]) -> list[PlannedRequest]:
        """One recipient's requests, in step order, counted into the summary."""
        s = self.summary
        keys = self._keys
        chat = rec.chat or ""
        # A phone number (nearly every chat) needs only its + encoded; quote() costs more.
        digits = chat[1:]
        path = (
            f"/chats/%2B{digits}/messages"
            if chat[:1] == "+" and digits.isascii() and digits.isdigit()
            else url_path(chat)
        )
        reqs = []
        # A phone (or a group of phones) may get the text by SMS when iMessage is not there.
        sms = chat[:1] == "+"
        if sms:
            self._sms_pending += 1
            if self._sms_pending >= SegmentTally.BATCH:
                self._sms_pending = 0
                for counts in s.steps.values():
                    counts.tally_sms()
        for r in rendered:
            step = r.step
            counts = s.steps[step.id]
            if r.body is None:
                counts.skipped += 1
                s.skipped += 1
                continue
            # Positional, in PlannedRequest's field order (as the send spool stores it): a
            # keyword call costs a third more, three times per recipient.
            req = PlannedRequest(
                chat,
                step.id,
                keys[step.id](chat, 0),
                "POST",
                path,
                r.body,
                step.messages,
                step.reply_to_step,
                rec.index,
                step.index,
                rec.zone,
                step.variant,
            )
            counts.requests += 1
            counts.messages += req.messages
            if sms:
                # The body, not its texts: they are read in batches (StepCounts.tally_sms), in
                # list comprehensions instead of a few checks and calls per request.
                counts.sms_bodies.append(r.body)
            by_variant = counts.variants
            if by_variant is not None:
                by_variant[step.variant or ""] += 1
            s.requests += 1
            s.messages += req.messages
            reqs.append(req)
        return reqs

    def run(self) -> PlanSummary:
        """Plan without keeping the requests (validation, summaries)."""
        for _ in self.requests():
            pass
        return self.summary

    def _preview(
        self, rec: Recipient, rendered: list[Rendered], reqs: list[PlannedRequest]
    ) -> dict[str, Any]:
        by_step = {r.step: r for r in reqs}
        steps = []
        for r in rendered:
            item: dict[str, Any] = {"step": r.step.id}
            if r.body is None:
                item["skipped"] = r.skipped
            else:
                req = by_step[r.step.id]
                body = r.body if self.show else _masked(r.body, rec.chat or "")
                item.update(key=req.key, messages=req.messages, body=body)
                if req.reply_to_step:
                    item["reply_to_step"] = req.reply_to_step
                if req.variant is not None:
                    item["variant"] = req.variant
            steps.append(item)
        return {
            "recipient": display_chat(rec.chat or "", self.show),
            "vars": sorted(rec.vars),
            "steps": steps,
        }

    def _finish(self) -> None:
        s = self.summary
        w = s.warnings
        self.collector.extend(self.renderer.empty_value_problems())
        self.collector.extend(self.read_stats.problems(self.campaign.source))
        s.empty_rows = self.read_stats.empty_rows
        s.no_chat = self.read_stats.no_chat.count
        if self.read_stats.layout is not None:
            s.read_as = self.read_stats.layout.describe()
        # The same warnings validate prints (one list): each said once, with its place.
        for p in self.collector.result(with_dropped=False):
            if p.severity == "warning" and _DUPLICATE not in p.message:
                w.append(_one_line(p))
        empty = self.read_stats.warning()
        if empty:
            w.append(empty)
        if s.duplicates:
            w.append(
                f"{s.duplicates:,} recipient row(s) repeat a chat listed earlier (e.g. {', '.join(self._dup_lines)}); "
                "each chat is sent once and the first row's variables win"
            )
        if s.suppressed:
            w.append(
                f"{s.suppressed:,} recipient(s) are suppressed (opted out or excluded): nothing is sent to them"
            )
        if s.excluded:
            w.append(
                f"{s.excluded:,} recipient(s) are excluded by recipients.exclude_when ({s.excluded_by}): "
                "nothing is sent to them"
            )
        if s.opted_out or s.held:
            w.append(
                f"of them, the consent ledger keeps {s.opted_out:,} who opted out and "
                f"{s.held:,} held for review (campaign optouts review)"
            )
        for step in self.campaign.steps:
            for view in step.variants or [step]:
                if view.effect:
                    named = f"step '{step.id}'" + (
                        f" (variant '{view.variant}')" if view.variant else ""
                    )
                    w.append(
                        f"{named}: the effect '{view.effect}' shows on iMessage only; "
                        "SMS/RCS recipients get the message without it"
                    )
            if step.reply_to_step:
                w.append(f"step '{step.id}': inline replies thread on iMessage only")
        if s.emails:
            w.append(
                f"{s.emails:,} recipient(s) are email addresses: iMessage only, there is no SMS fallback for them"
            )
        if s.invalid:
            w.append(f"{s.invalid:,} recipient row(s) are invalid (see the errors)")
        if s.unplaced:
            w.append(
                f"{s.unplaced:,} recipient(s) cannot be placed in a US state by their number "
                "(an email, an unassigned area code such as 555, a toll-free or non-US number): "
                "no legal hours apply to them, only the campaign's window and zone"
            )
        limit = self.campaign.policy.max_segments
        for counts in s.steps.values():
            counts.tally_sms()
            counts.tally.flush()
        for sid, counts in s.steps.items():
            seg = counts.ucs2
            if seg is not None:
                w.append(
                    f"step '{sid}': {seg.culprit_name()} at character {seg.position} makes the "
                    "text UCS-2 by SMS: 70 characters a segment instead of 160"
                )
            if limit and counts.over_max:
                w.append(
                    f"step '{sid}': {counts.over_max:,} message(s) take more than the policy's "
                    f"max_segments {limit} by SMS (up to {counts.max_segments})"
                )


_DUPLICATE = "this chat is listed again"  # said once as a count among the plan's warnings


def _one_line(p: Problem) -> str:
    """A warning as the plan lists it: place, message, hint."""
    where = p.location() if p.file else ""
    text = f"{where}: {p.message}" if where else p.message
    return f"{text} (hint: {p.hint})" if p.hint else text


def _condition_columns(source: str, columns: Mapping[str, str]) -> str:
    """The columns (as headed) an exclude_when expression reads: "Do not text"."""
    try:
        names = referenced_variables(
            "{{ " + source.strip().removeprefix("{{").removesuffix("}}") + " }}"
        )
    except Exception:  # noqa: BLE001 - compiled once already; a name list is only a label
        names = ()
    shown = [columns.get(n, n) for n in names]
    return ", ".join(shown) if shown else "exclude_when"


def _masked(value: Any, chat: str) -> Any:
    """A preview body with the recipient's own phones/emails masked where a template printed
    them ({{ recipient }}): previews end up in pull-request comments and CI logs."""
    people = [m for m in chat.split(",") if m and not m.startswith("grp_")]
    if isinstance(value, str):
        for person in people:
            if person in value:
                value = value.replace(person, mask_one(person))
        return value
    if isinstance(value, list):
        return [_masked(v, chat) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, chat) for k, v in value.items()}
    return value


def plan_campaign(campaign: Campaign, **kwargs: Any) -> tuple[list[PlannedRequest], Planner]:
    """Small campaigns, tests: every request in a list. Raises CampaignError if invalid."""
    planner = Planner(campaign, **kwargs)
    reqs = list(planner.requests())
    planner.raise_if_invalid()
    return reqs, planner


def iter_plan(campaign: Campaign, **kwargs: Any) -> Iterator[PlannedRequest]:
    """Stream the requests; raises CampaignError at the end if any recipient was invalid.
    Callers that act on requests (send) must validate first."""
    planner = Planner(campaign, **kwargs)
    yield from planner.requests()
    planner.raise_if_invalid()


def summarize(campaign: Campaign, **kwargs: Any) -> PlanSummary:
    planner = Planner(campaign, **kwargs)
    planner.run()
    planner.raise_if_invalid()
    return planner.summary


class JournalEntry(Protocol):
    """What planning reads of an earlier run's journal row (runner.store.journal.Entry)."""

    @property
    def chat(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def status(self) -> RequestStatus: ...
    @property
    def content_hash(self) -> str | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def last_attempt_at(self) -> float | None: ...
    @property
    def variant(self) -> str | None: ...


class JournalReader(Protocol):
    """What planning reads of a journal (runner.store.journal.Journal), so that planning stays
    free of sqlite3."""

    def lookup(self, keys: Iterable[str]) -> Mapping[str, JournalEntry]: ...

    def entries(self, revision: int | None = None) -> Iterable[JournalEntry]: ...


class JournalOverlay:
    """Marks planned requests with what an earlier run's journal says of their keys, and counts
    what a send would repeat:

    - ``accepted``: requests of the plan already accepted (a re-run will not send them);
    - ``older_content``: recipients accepted under the same key with a different body (a text
      fixed half-way: those who had the step keep the old text);
    - ``other_variant``: recipients accepted under the same key with another variant than the
      one the plan now assigns (variants or weights edited): the key has no variant, so they
      are not sent again, and this is said apart from older content;
    - ``earlier_revision``: recipients the plan would send to who already got messages of an
      earlier ``revision`` (bumping it sends everything again, on purpose or not);
    - ``same_content_other_step``: recipients the plan would send a body they already got,
      accepted under another step id (a renamed step is a new key: it is sent again).

    Recipients are counted once per line. With ``revision`` None the earlier-revision and
    renamed-step checks are skipped (the journal is not read beyond the plan's keys).
    """

    CHUNK = 500

    def __init__(self, journal: JournalReader, revision: int | None = None) -> None:
        self.journal = journal
        self.revision = revision
        self.accepted = 0
        self.older_content = 0
        self.other_variant = 0
        self.earlier_revision = 0
        self.same_content_other_step = 0
        self._older_chats: set[int] = set()
        self._variant_chats: set[int] = set()
        self._earlier_chats: set[int] = set()
        self._same_chats: set[int] = set()
        # From every accepted row: chats that got an earlier revision, and per (chat, content)
        # the step ids it was accepted under. Read once, on the first chunk.
        self._history: tuple[set[int], dict[int, set[str]]] | None = None

    def _load_history(self) -> tuple[set[int], dict[int, set[str]]]:
        if self._history is None:
            earlier: set[int] = set()
            sent: dict[int, set[str]] = {}
            if self.revision is not None:
                for e in self.journal.entries():
                    if e.status != RequestStatus.ACCEPTED:
                        continue
                    if e.revision < self.revision:
                        earlier.add(hash(e.chat))
                    if e.content_hash:
                        sent.setdefault(hash((e.chat, e.content_hash)), set()).add(e.step)
            self._history = (earlier, sent)
        return self._history

    def _count(self, seen: set[int], chat: str) -> bool:
        h = hash(chat)
        if h in seen:
            return False
        seen.add(h)
        return True

    def _observe(self, r: PlannedRequest, entry: JournalEntry | None) -> None:
        if entry is not None and entry.status == RequestStatus.ACCEPTED:
            self.accepted += 1
            if r.variant is not None and entry.variant is not None and entry.variant != r.variant:
                self.other_variant += self._count(self._variant_chats, r.recipient)
            elif entry.content_hash and entry.content_hash != content_hash(r.body):
                self.older_content += self._count(self._older_chats, r.recipient)
            return
        if self.revision is None:
            return
        earlier, sent = self._load_history()
        if hash(r.recipient) in earlier:
            self.earlier_revision += self._count(self._earlier_chats, r.recipient)
        steps = sent.get(hash((r.recipient, content_hash(r.body))))
        if steps and (len(steps) > 1 or r.step not in steps):
            self.same_content_other_step += self._count(self._same_chats, r.recipient)

    def annotate(
        self, requests: Iterator[PlannedRequest]
    ) -> Iterator[tuple[PlannedRequest, JournalEntry | None]]:
        buf: list[PlannedRequest] = []

        def flush() -> Iterator[tuple[PlannedRequest, JournalEntry | None]]:
            found = self.journal.lookup([r.key for r in buf])
            for r in buf:
                entry = found.get(r.key)
                self._observe(r, entry)
                yield r, entry
            buf.clear()

        for req in requests:
            buf.append(req)
            if len(buf) >= self.CHUNK:
                yield from flush()
        if buf:
            yield from flush()

    def run(self, requests: Iterator[PlannedRequest]) -> JournalOverlay:
        """Annotate every request, keeping only the counts."""
        for _ in self.annotate(requests):
            pass
        return self

    @property
    def resends(self) -> bool:
        """Whether sending the plan would repeat something recipients already got."""
        return bool(self.earlier_revision or self.same_content_other_step)

    def warnings(self) -> list[str]:
        """What a send would repeat, in words (empty when nothing)."""
        out = []
        if self.earlier_revision:
            out.append(
                f"{self.earlier_revision:,} recipient(s) already got messages of an earlier "
                "revision: this revision sends them its messages again"
            )
        if self.same_content_other_step:
            out.append(
                f"{self.same_content_other_step:,} recipient(s) already got the same content "
                "under another step id (a renamed step is sent again)"
            )
        if self.older_content:
            out.append(
                f"{self.older_content:,} recipient(s) got older content of a step; they are "
                "not sent the new content"
            )
        if self.other_variant:
            out.append(
                f"{self.other_variant:,} recipient(s) got another variant of a step than the "
                "one now assigned (variants or weights changed); they are not sent it again"
            )
        return out

    def to_dict(self) -> dict[str, int]:
        out = {
            "accepted": self.accepted,
            "older_content": self.older_content,
            "earlier_revision": self.earlier_revision,
            "same_content_other_step": self.same_content_other_step,
        }
        if self.other_variant:
            out["other_variant"] = self.other_variant
        return out


class CapSource(HoldSource, Protocol):
    """Frequency caps (runner.law.legal.Caps): holds, and what a plan assumes sent."""

    def note(self, chat: str, when: float, messages: int = 1) -> None: ...


class ScheduleCounter:
    """Counts, for one instant, how many messages are due, waiting (for the window, by zone;
    for a delay; for the previous step; for not_before; held by the law's hours, by rule;
    capped), or expired. Requests must arrive in plan order (recipient, then step), each with
    its journal entry (or None). ``caps``: frequency caps read from the state (plan --state)."""

    def __init__(self, campaign: Campaign, at: datetime, caps: CapSource | None = None) -> None:
        self.campaign = campaign
        self.at = at
        self.rules = campaign.schedule_rules or Schedule(None, None, None, None, None)
        self.counts: dict[str, int] = {}
        self.window_by_zone: dict[str, int] = {}
        self.held_by: dict[str, int] = {}  # "held by law (FL 08:00-20:00)" -> messages
        self.next_due: datetime | None = None
        self._prev: tuple[str, str, float | None] | None = None  # (recipient, state, accepted_at)
        self._delays = {s.id: s.delay_seconds for s in campaign.steps}
        self._sources = [src for src in (campaign.law, caps) if src is not None and src.active]
        self._caps = caps
        r = self.rules
        # Nothing of the campaign's own can hold a message: only the law's holds are asked.
        self._plain = (
            r.window is None
            and r.not_before is None
            and r.not_after is None
            and not any(self._delays.values())
        )
        # A request with no zone (no schedule, a number the law cannot place) is due whatever
        # the time, unless a team window or a cap could hold it: counted without a look.
        self.unzoned_due = self._plain and caps is None and campaign.law.team_window is None
        self.due_unzoned = 0
        self._for: tuple[str, str | None] | None = None  # (recipient, zone) of the cache below
        self._zones: tuple[ZoneInfo, ...] = ()
        self._holds: list[Hold] = []

    @property
    def held(self) -> bool:
        """Whether anything was held by the law, the team's hours or a cap."""
        return bool(self.held_by)

    def observe(self, req: PlannedRequest, entry: JournalEntry | None) -> str:
        prev = self._prev if self._prev and self._prev[0] == req.recipient else None
        if entry is not None and entry.status == RequestStatus.ACCEPTED:
            state: str = RequestStatus.ACCEPTED
            accepted_at = entry.finished_at or entry.last_attempt_at
        else:
            accepted_at = None
            delay = self._delays.get(req.step)
            if self._for != (req.recipient, req.zone):
                self._for = (req.recipient, req.zone)
                self._zones = zones_of(req.zone, self.rules.default_zone)
                self._holds = [
                    h for src in self._sources for h in src.holds_for(req.recipient, self._zones)
                ]
            zones, holds = self._zones, self._holds
            if prev is not None and prev[1] not in (RequestStatus.ACCEPTED, Wait.DUE):
                state, when = (
                    (Wait.EXPIRED, None) if prev[1] == Wait.EXPIRED else (Wait.PREVIOUS, None)
                )
            elif self._plain and not holds:
                state, when = Wait.DUE, None
            else:
                # A previous step due now is assumed accepted now: its delay counts from `at`.
                prev_at = (
                    prev[2]
                    if prev and prev[1] == RequestStatus.ACCEPTED
                    else (self.at.timestamp() if prev else None)
                )
                timing = self.rules.timing(
                    self.at,
                    zones,
                    delay=delay,
                    previous_accepted=prev_at,
                    has_previous=prev is not None,
                    holds=holds,
                )
                state, when = timing.state, timing.when
                if timing.held_by is not None:
                    name = (
                        f"held by law ({timing.held_by})"
                        if state == Wait.LAW
                        else f"capped ({timing.held_by})"
                    )
                    self.held_by[name] = self.held_by.get(name, 0) + req.messages
            if state == Wait.WINDOW:
                key = ",".join(z.key for z in zones)
                self.window_by_zone[key] = self.window_by_zone.get(key, 0) + req.messages
            if when is not None and (self.next_due is None or when < self.next_due):
                self.next_due = when
        self.counts[state] = self.counts.get(state, 0) + req.messages
        if state == Wait.DUE and self._caps is not None:
            self._caps.note(req.recipient, self.at.timestamp(), req.messages)  # as if sent now
        self._prev = (req.recipient, state, accepted_at)
        return state

    def to_dict(self) -> dict[str, Any]:
        counts = dict(self.counts)
        if self.due_unzoned:
            counts[Wait.DUE] = counts.get(Wait.DUE, 0) + self.due_unzoned
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "messages": dict(sorted(counts.items())),
            "waiting_for_window_by_zone": dict(sorted(self.window_by_zone.items())),
            "held_by": dict(sorted(self.held_by.items())),
            "next_due": self.next_due.isoformat().replace("+00:00", "Z") if self.next_due else None,
        }
