"""A campaign: the loaded, schema-checked, rule-checked and compiled form of a campaign file.

`load_campaign` runs the static layers (YAML, schema, API rules, template compilation) and
raises CampaignError with every problem found; per-recipient rendering is render.py's job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError

from runner.audience.recipients import RecipientSource, check_source, source_of
from runner.campaign import rules
from runner.campaign.loader import load_file
from runner.campaign.policy import DEFAULT as DEFAULT_POLICY
from runner.campaign.policy import Policy, check_campaign, policy_for
from runner.campaign.schedule import Schedule, ScheduleError, parse_schedule
from runner.campaign.schema import validate_schema, yaml_value_warnings
from runner.campaign.steps import StepKind, parse_delay, step_kind
from runner.campaign.templates import Compiled, Condition, compile_condition, compile_text
from runner.contract import normalize_effect
from runner.errors import CampaignError, Problem
from runner.law.legal import Law
from runner.source.document import Document, PathT, format_path

# Fields of a step rendered per recipient (a step's own from_number may be a template too).
CONTENT_FIELDS = ("text", "attachments", "parts", "link_preview", "from_number")


@dataclass
class Step:
    id: str
    index: int
    data: dict[str, Any]
    kind: StepKind
    messages: int
    effect: str  # API spelling, "" for none
    when: Condition | None = None
    when_source: str | None = None
    reply_to_step: str | None = None
    delay_seconds: float | None = None
    # The body's content with every string replaced by a Compiled template.
    content: dict[str, Any] = field(default_factory=dict)
    # A step with variants: one view per variant, a Step of the same id, index and settings
    # whose content, kind, messages and effect are the variant's (the step's own content is
    # empty; its kind, messages and effect are the first variant's).
    variants: list[Step] = field(default_factory=list)
    variant: str | None = None  # on a variant's view: the variant's id
    variant_index: int = 0
    weight: float = 0.0

    @property
    def path(self) -> PathT:
        if self.variant is not None:
            return ("steps", self.index, "variants", self.variant_index)
        return ("steps", self.index)


@dataclass
class Campaign:
    path: Path
    doc: Document
    id: str
    revision: int
    name: str | None
    vars: dict[str, Any]
    sender: dict[str, Any]
    steps: list[Step]
    source: RecipientSource
    send_options: dict[str, Any]
    suppress: list[str] = field(default_factory=list)
    optout_words: list[str] = field(
        default_factory=list
    )  # on top of runner/consent/vocabulary.json's
    schedule: dict[str, Any] | None = None
    schedule_rules: Schedule | None = None
    warnings: list[Problem] = field(default_factory=list)
    policy: Policy = DEFAULT_POLICY  # the team policy it obeys (runner.yaml or the defaults)
    exclude_when: Condition | None = None  # recipients.exclude_when: rows that get nothing

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def law(self) -> Law:
        """The legal and team hours its messages obey (read by the schedule gate)."""
        return self.policy.law

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


def load_campaign(path: str | Path, *, policy: str | Path | Policy | None = None) -> Campaign:
    """Load and check a campaign file; raises CampaignError listing every static problem.
    ``policy``: a policy file (``--policy``) or one already loaded; by default the runner.yaml
    at the root of the campaign's git repository, else the defaults (legal hours)."""
    p = Path(path)
    team = policy if isinstance(policy, Policy) else policy_for(p, policy)
    doc = load_file(p)
    if not isinstance(doc.data, dict):
        raise CampaignError(
            doc.problem(
                (), "a campaign file must be a mapping (version, id, steps, ...)", layer="schema"
            )
        )
    problems = validate_schema(doc)
    if problems:
        # Rules and templates assume the shapes the schema guarantees.
        raise CampaignError(problems)
    problems = rules.check_static(doc) + yaml_value_warnings(doc)
    steps, template_problems = _compile_steps(doc)
    problems += template_problems
    source = source_of(doc, p.parent)
    if source.region is None and team.default_region:
        # The team's default_region for numbers written without +, unless the campaign names
        # its own (recipients.default_region narrows nothing: it is the campaign's data).
        source = dataclasses.replace(source, region=team.default_region.upper())
    problems += check_source(doc, source)
    exclude_when = _exclude_when(doc, problems)
    schedule_rules = None
    try:
        schedule_rules = parse_schedule(doc.data.get("schedule"))
    except ScheduleError as err:
        problems.append(doc.problem(("schedule",) + err.key, str(err), err.hint))
    problems += check_campaign(team, doc, schedule_rules)
    errors = [pr for pr in problems if pr.severity == "error"]
    if errors:
        raise CampaignError(errors)
    data = doc.data
    return Campaign(
        path=p,
        doc=doc,
        id=data["id"],
        revision=int(data.get("revision", 1)),
        name=data.get("name"),
        vars=dict(data.get("vars") or {}),
        sender=dict(data.get("sender") or {}),
        steps=steps,
        source=source,
        send_options=dict(data.get("send") or {}),
        suppress=list(data.get("suppress") or []),
        schedule=data.get("schedule"),
        optout_words=list(data.get("optout_words") or [])
        + [w for w in team.optout_words if w not in (data.get("optout_words") or [])],
        schedule_rules=schedule_rules,
        warnings=[pr for pr in problems if pr.severity == "warning"],
        policy=team,
        exclude_when=exclude_when,
    )


def _exclude_when(doc: Document, problems: list[Problem]) -> Condition | None:
    spec = doc.data.get("recipients")
    source = spec.get("exclude_when") if isinstance(spec, dict) else None
    if source is None:
        return None
    try:
        return compile_condition(str(source))
    except TemplateSyntaxError as err:
        problems.append(
            doc.problem(
                ("recipients", "exclude_when"),
                f"invalid condition: {err.message}",
                "write a jinja2 expression, e.g. exclude_when: do_not_text == 'yes'",
                layer="template",
            )
        )
        return None


def _compile_steps(doc: Document) -> tuple[list[Step], list[Problem]]:
    problems: list[Problem] = []
    steps: list[Step] = []
    for i, data in enumerate(doc.data.get("steps") or []):
        shape = step_kind(data)
        kind, messages = shape.kind, shape.messages
        effect = normalize_effect(str(data["effect"])) if data.get("effect") is not None else ""
        step = Step(
            id=str(data["id"]),
            index=i,
            data=data,
            kind=kind,
            messages=messages,
            effect=effect or "",
        )
        rt = data.get("reply_to")
        if isinstance(rt, dict) and "step" in rt:
            step.reply_to_step = str(rt["step"])
        if data.get("delay") is not None:
            step.delay_seconds = parse_delay(data["delay"])
        if data.get("when") is not None:
            step.when_source = str(data["when"])
            try:
                step.when = compile_condition(step.when_source)
            except TemplateSyntaxError as err:
                problems.append(
                    doc.problem(
                        ("steps", i, "when"),
                        f"invalid condition: {err.message}",
                        "write a jinja2 expression, e.g. when: code is defined",
                        layer="template",
                    )
                )
        content: dict[str, Any] = {}
        for name in CONTENT_FIELDS:
            if name in data and data[name] is not None:
                content[name] = _compile_tree(doc, ("steps", i, name), data[name], problems)
        rt_static = (
            {k: v for k, v in (rt or {}).items() if k != "step"} if isinstance(rt, dict) else {}
        )
        if rt_static:
            content["reply_to"] = _compile_tree(doc, ("steps", i, "reply_to"), rt_static, problems)
        step.content = content
        for k, vdata in enumerate(data.get("variants") or []):
            step.variants.append(_variant_view(doc, step, k, vdata, problems))
        if step.variants:
            first = step.variants[0]
            step.kind, step.messages, step.effect = first.kind, first.messages, first.effect
        steps.append(step)
    return steps, problems


def _variant_view(
    doc: Document, step: Step, k: int, vdata: dict[str, Any], problems: list[Problem]
) -> Step:
    """A variant as the Step it sends: the step's settings (when, delay, reply_to,
    from_number, ...) with the variant's content."""
    shape = step_kind(vdata)
    kind, messages = shape.kind, shape.messages
    effect = normalize_effect(str(vdata["effect"])) if vdata.get("effect") is not None else ""
    merged = {key: v for key, v in step.data.items() if key != "variants"}
    merged.update({key: v for key, v in vdata.items() if key not in ("id", "weight")})
    at = ("steps", step.index, "variants", k)
    content = {name: c for name, c in step.content.items() if name in ("from_number", "reply_to")}
    for name in CONTENT_FIELDS:
        if name != "from_number" and vdata.get(name) is not None:
            content[name] = _compile_tree(doc, at + (name,), vdata[name], problems)
    return Step(
        id=step.id,
        index=step.index,
        data=merged,
        kind=kind,
        messages=messages,
        effect=effect or "",
        when=step.when,
        when_source=step.when_source,
        reply_to_step=step.reply_to_step,
        delay_seconds=step.delay_seconds,
        content=content,
        variant=str(vdata["id"]),
        variant_index=k,
        weight=float(vdata["weight"]),
    )


def _compile_tree(doc: Document, path: PathT, value: Any, problems: list[Problem]) -> Any:
    if isinstance(value, str):
        try:
            return compile_text(value, format_path(path))
        except TemplateSyntaxError as err:
            problems.append(_syntax_problem(doc, path, err))
            return Compiled("")
    if isinstance(value, list):
        return [_compile_tree(doc, path + (j,), v, problems) for j, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _compile_tree(doc, path + (k,), v, problems) for k, v in value.items()}
    return value


def _syntax_problem(doc: Document, path: PathT, err: TemplateSyntaxError) -> Problem:
    line, col = doc.locate(path)
    if line is not None:
        # A block scalar's (| or >) template line n stands n lines below its indicator; a
        # quoted or plain string's line 1 is the value's own line.
        offset = (err.lineno or 1) - (0 if path in doc.block_scalars else 1)
        if offset:
            line, col = line + offset, None
    return Problem(
        f"template syntax error: {err.message}",
        file=doc.file,
        line=line,
        column=col,
        path=format_path(path),
        layer="template",
        hint="check the {{ }} and {% %} pairs; jinja2 syntax: https://jinja.palletsprojects.com/",
    )
