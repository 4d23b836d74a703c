"""Layer 3: render each recipient's steps into exact request bodies, and check what rendered.

Pure: (campaign, recipient) in, bodies or problems out. Validation renders every recipient
with this, so a problem of recipient 37,412 is found by `validate`, not at send time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context

from runner.audience.chatids import e164_hint
from runner.audience.columns import closest
from runner.audience.recipients import Recipient
from runner.campaign.load import Campaign, Step
from runner.campaign.steps import StepKind
from runner.campaign.templates import Compiled, TimeBudget, base_context, environment, fast_context
from runner.contract import MAX_LINK_PREVIEW_TITLE, MAX_TEXT_CHARS, is_http_url, is_single_http_url
from runner.errors import Problem
from runner.planning.variants import step_assigner
from runner.source.document import format_path


@dataclass(slots=True)
class Rendered:
    """One step for one recipient: the body to send, or why it is skipped."""

    step: Step
    body: dict[str, Any] | None  # None when skipped
    skipped: str | None = None  # "when" | "reply_parent_skipped"


class RenderError(Exception):
    def __init__(
        self,
        path: str,
        message: str,
        hint: str | None = None,
        undefined: str | None = None,
        null: bool = False,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint
        self.undefined = undefined  # the variable jinja2 found undefined, when it says which
        self.null = null  # a variable printed is null (JSONL null, YAML ~)


# Filters that print an empty text for an empty value: `{{ first_name | title }}` says "Hey !"
# as surely as `{{ first_name }}`; so does `default('there')` without its second argument.
_KEEPS_EMPTY = frozenset(
    {
        "title",
        "upper",
        "lower",
        "capitalize",
        "trim",
        "string",
        "e",
        "escape",
        "striptags",
        "default",
        "d",
    }
)


def _printed_name(node: nodes.Node | None) -> str | None:
    """The variable an output expression prints as it is (through filters that keep an empty
    text empty), or None."""
    while isinstance(node, nodes.Filter):
        if node.name not in _KEEPS_EMPTY:
            return None
        if node.name in ("default", "d"):
            flag = (
                node.args[1]
                if len(node.args) > 1
                else next((kw.value for kw in node.kwargs if kw.key == "boolean"), None)
            )
            if isinstance(flag, nodes.Const) and flag.value:
                return None
        node = node.node
    return node.name if isinstance(node, nodes.Name) else None


def printed_variables(source: str) -> tuple[str, ...]:
    """Variables a template prints unconditionally (outside {% if %} and loops): the ones
    whose empty value leaves a gap in the text ("Hey !")."""
    tree = environment().parse(source)
    names: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, nodes.Output):
            for expr in stmt.nodes:
                name = _printed_name(expr)
                if name is not None and name not in names:
                    names.append(name)
    return tuple(names)


def _referenced(source: str) -> tuple[str, ...]:
    tree = environment().parse(source)
    return tuple(dict.fromkeys(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"))


_NONE: frozenset[str] = frozenset()


@dataclass
class EmptyValues:
    """A step's template printed an empty value: how often, and the first rows."""

    path: str  # "steps[0].text"
    variable: str
    count: int = 0
    first: list[str] = field(default_factory=list)


def _compiled(value: Any) -> Iterator[Compiled]:
    if isinstance(value, Compiled):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _compiled(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _compiled(v)


class Renderer:
    def __init__(self, campaign: Campaign, budget: TimeBudget | None = None) -> None:
        """``budget``: the time one recipient's render may take (RENDER_BUDGET_SECONDS)."""
        self.campaign = campaign
        self.budget = budget or TimeBudget()
        self._base = base_context(campaign.vars)
        self._set_recipient = "recipient" not in campaign.vars
        sender = campaign.sender
        pool = sender.get("from_number")
        self._pool: list[str] = [str(n).strip() for n in pool] if isinstance(pool, list) else []
        defaults: dict[str, Any] = {
            k: sender[k] for k in ("use_typing_indicator", "share_contact") if k in sender
        }
        self._single = pool.strip() if isinstance(pool, str) else None
        if self._single:
            defaults["from_number"] = self._single
        # What each step adds to every body, merged once: sender defaults < the step's own
        # settings; the effect in the API's spelling ("none" is omitted, never sent as null).
        # Keyed by id() of the Step a body is rendered from: the step, or the view of one of its
        # variants (an int key costs less per request than a (step, variant) tuple).
        self._views = [view for step in campaign.steps for view in (step.variants or [step])]
        # Each step with its variants' chooser (None without variants), in step order.
        self._steps = [
            (
                step,
                (step_assigner(campaign.id, step).choose, step.variants) if step.variants else None,
            )
            for step in campaign.steps
        ]
        self._static: dict[int, dict[str, Any]] = {}
        for step in self._views:
            static = dict(defaults)
            static.update(
                {
                    k: step.data[k]
                    for k in ("use_typing_indicator", "share_contact")
                    if step.data.get(k) is not None
                }
            )
            if step.data.get("from_number") is not None:
                static.pop("from_number", None)  # the step's own (rendered) number wins
            if step.effect:
                static["effect"] = step.effect
            self._static[id(step)] = static
        self._paths = {id(step): format_path(step.path) for step in self._views}
        self._when_paths = {step.id: format_path(step.path) + ".when" for step in campaign.steps}
        # Per step (or variant view), once: the function building its body, and the static
        # settings its content does not set (added after the checks, in the order setdefault
        # would add them).
        # The third item: the content is a text and nothing else ``_check`` looks at, so a
        # usual text (a string, not blank, within the limit) is settled inline, without the call.
        self._builds = {
            id(view): (
                step_builder(view.content),
                {k: v for k, v in self._static[id(view)].items() if k not in view.content},
                "text" in view.content and not (_CHECKED_KEYS & view.content.keys()),
            )
            for view in self._views
        }
        # Per step, the templates' unconditionally printed variables; per template path, every
        # variable it reads (to name the null one).
        self._printed: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
        self._reads: dict[str, tuple[str, ...]] = {}
        for step in self._views:
            printed = []
            for tmpl in _compiled(step.content):
                if tmpl.source and tmpl.path:
                    try:
                        self._reads[tmpl.path] = _referenced(tmpl.source)
                        names = printed_variables(tmpl.source)
                    except TemplateError:
                        continue
                    if names:
                        printed.append((tmpl.path, names))
            self._printed[id(step)] = printed
            if step.when_source:
                try:
                    self._reads[self._when_paths[step.id]] = _referenced(
                        "{{ "
                        + step.when_source.strip().removeprefix("{{").removesuffix("}}")
                        + " }}"
                    )
                except TemplateError:
                    pass
        self.empty_values: dict[tuple[str, str], EmptyValues] = {}
        self._all_printed = tuple(
            dict.fromkeys(
                n for printed in self._printed.values() for _, names in printed for n in names
            )
        )

    def from_number(self, chat: str) -> str | None:
        """A pool assigns each chat one number by a stable hash: the same on every run and step
        (a reply must come from the number that sent its parent).

        Rendezvous hashing (the number with the highest hash of chat + number wins) rather than
        hash modulo pool size: reordering the pool moves no chat, adding a number moves only
        the chats it wins, removing one moves only its own chats; so editing the pool
        mid-campaign keeps most replies on their parent's number."""
        if not self._pool:
            return self._single
        key = chat.encode("utf-8") + b"\x1f"
        return max(self._pool, key=lambda number: hashlib.sha256(key + number.encode()).digest())

    def context(self, rec: Recipient) -> dict[str, Any]:
        # Precedence: the recipient's own vars, then campaign vars, then `recipient`.
        ctx = dict(self._base)
        if self._set_recipient:
            ctx["recipient"] = rec.chat
        ctx.update(rec.vars)
        return ctx

    def render(self, rec: Recipient) -> list[Rendered]:
        """Every step for this recipient; raises RenderError on the first problem."""
        with self.budget:
            try:
                return self._render(rec)
            except RenderError as err:
                self.explain(err, rec)
                raise

    def explain(self, err: RenderError, rec: Recipient) -> None:
        """Name the variable: the closest column for an undefined one, the null one."""
        if err.undefined is not None:
            name = err.undefined
            guess = closest(name, [k for k in rec.vars if k != name], rec.columns)
            if guess is None:
                guess = closest(name, [k for k in self.campaign.vars if k != name])
            if guess is not None:
                err.message += f"; did you mean {guess}?"
            err.hint = (
                f"add a column/variable '{name}' for this recipient, give a default "
                f"({{{{ {name} | default('...', true) }}}}), or guard the step with "
                f"when: {name} is defined"
            )
        elif err.null:
            ctx = self.context(rec)
            nulls = [n for n in self._reads.get(err.path, ()) if n in ctx and ctx[n] is None]
            if nulls:
                name = nulls[0]
                err.message = f"the variable '{name}' is null (empty in the data), so the text would say 'None'"
                err.hint = (
                    f"fill '{name}' in the data, or write {{{{ {name} or '...' }}}} "
                    "(default() alone keeps a null)"
                )

    def _empty_printed(self, ctx: dict[str, Any]) -> frozenset[str]:
        """The printed variables that are empty (or blank) for this recipient; usually none,
        checked once per recipient so the steps need not look."""
        get = ctx.get
        empty = [n for n in self._all_printed if isinstance(v := get(n), str) and not v.strip()]
        return frozenset(empty) if empty else _NONE

    def _note_empty(self, step: Step, empty: frozenset[str], rec: Recipient) -> None:
        for path, names in self._printed[id(step)]:
            for name in names:
                if name in empty:
                    seen = self.empty_values.get((path, name))
                    if seen is None:
                        seen = self.empty_values[(path, name)] = EmptyValues(path, name)
                    seen.count += 1
                    if len(seen.first) < 3:
                        seen.first.append(rec.where())

    def empty_value_problems(self) -> list[Problem]:
        """One warning per step template that printed an empty value, with a count."""
        out = []
        for ev in self.empty_values.values():
            line, _ = self.campaign.doc.locate(tuple(_parse_path(ev.path)))
            out.append(
                Problem(
                    f"{ev.path} prints '{ev.variable}', which is empty for {ev.count:,} recipient(s) "
                    f'(e.g. {", ".join(ev.first)}): they get a gap in the text ("Hey !")',
                    file=self.campaign.doc.file,
                    line=line,
                    path=ev.path,
                    severity="warning",
                    layer="template",
                    hint=f"{{{{ {ev.variable} | default('there', true) }}}} replaces an empty value too "
                    f"(default('there') alone keeps it), or guard the step with when: {ev.variable}",
                )
            )
        return out

    def _render(self, rec: Recipient) -> list[Rendered]:
        ctx = self.context(rec)
        shared = fast_context(ctx)
        out: list[Rendered] = []
        skipped: set[str] = set()
        pooled = self.from_number(rec.chat or "") if self._pool else None
        empty = self._empty_printed(ctx) if self._all_printed else _NONE
        for step, pick in self._steps:
            if step.when is not None:
                try:
                    ok = step.when(ctx, shared)
                except Exception as err:  # noqa: BLE001 - every template failure is the user's
                    raise _render_error(self._when_paths[step.id], err) from None
                if not ok:
                    skipped.add(step.id)
                    out.append(Rendered(step, None, "when"))
                    continue
            if step.reply_to_step is not None and step.reply_to_step in skipped:
                skipped.add(step.id)
                out.append(Rendered(step, None, "reply_parent_skipped"))
                continue
            if pick is not None:
                step = pick[1][pick[0](rec.chat or "")]
            build, extra, text_only = self._builds[id(step)]
            body = build(ctx, shared)  # exactly the content's keys, which the checks keep
            if not (
                text_only
                and type(text := body["text"]) is str
                and len(text) <= MAX_TEXT_CHARS
                and text.strip()
            ):
                self._check(step, body)
            if empty:
                self._note_empty(step, empty, rec)
            if extra:
                body.update(extra)
            if pooled is not None and "from_number" not in body:
                body["from_number"] = pooled
            out.append(Rendered(step, body))
        return out

    def _check(self, step: Step, body: dict[str, Any]) -> None:
        path = self._paths[id(step)]
        number = body.get("from_number")
        hint = e164_hint(number) if number is not None else None
        if hint is not None:
            raise RenderError(
                f"{path}.from_number",
                f"from_number renders to {str(number)[:40]!r}, not an E.164 phone number",
                hint,
            )
        rt = body.get("reply_to")
        if rt is not None and not any(
            isinstance(v, str) and v.strip() for k, v in rt.items() if k in ("message_id", "guid")
        ):
            raise RenderError(
                f"{path}.reply_to",
                "reply_to renders to an empty message_id/guid "
                "(the API answers reply_target_invalid)",
                "give the variable a value, or guard the step with when:",
            )
        text = body.get("text")
        if type(text) is str and len(text) <= MAX_TEXT_CHARS and text.strip():
            pass  # the usual case, settled without the loop below
        elif text is not None:
            for j, t in enumerate(text if isinstance(text, list) else (text,)):
                if len(t) > MAX_TEXT_CHARS or not t.strip() and not body.get("attachments"):
                    where = f"{path}.text" + (f"[{j}]" if isinstance(text, list) else "")
                    if len(t) > MAX_TEXT_CHARS:
                        raise RenderError(
                            where,
                            f"the text renders to {len(t):,} characters, over the {MAX_TEXT_CHARS:,} limit",
                            "shorten it or split it into several steps",
                        )
                    raise RenderError(
                        where,
                        "the text renders empty for this recipient (the API rejects a message without content)",
                        "guard the step with when:, or use a default that also replaces an empty value: {{ name | default('there', true) }}",
                    )
        lp = body.get("link_preview")
        if lp is not None:
            if isinstance(text, str):
                body["text"] = text = text.strip()  # sent trimmed, as checked
            joined = (
                "".join(p.get("text", "") for p in body.get("parts") or [])
                if text is None
                else text
            )
            if not isinstance(joined, str) or not is_single_http_url(joined):
                raise RenderError(
                    f"{path}.link_preview",
                    "link_preview needs the text to be exactly one http(s) URL, "
                    f"but it renders to {str(joined)[:60]!r}",
                    "make the text just the URL",
                )
            _check_preview(lp, f"{path}.link_preview")
        attachments = body.get("attachments")
        if attachments:
            for j, att in enumerate(attachments):
                url = att.get("url") if isinstance(att, dict) else att
                if not is_http_url(str(url)):
                    raise RenderError(
                        f"{path}.attachments[{j}]",
                        f"attachment URL renders to {str(url)[:80]!r}, not an http(s) URL",
                        "attachments must be full http(s):// URLs",
                    )
        parts = body.get("parts")
        if parts:
            batch = step.kind is StepKind.BATCH
            for j, part in enumerate(parts):
                if "url" in part and not is_http_url(part["url"]):
                    raise RenderError(
                        f"{path}.parts[{j}].url",
                        f"the part's url renders to {part['url'][:80]!r}, not an http(s) URL",
                        "write a full http(s):// URL",
                    )
                if batch:
                    # A URL-only text is sent trimmed: a trailing newline from a block scalar
                    # must not turn a valid batch into a 400.
                    part["text"] = part.get("text", "").strip()
                    if not is_single_http_url(part["text"]):
                        raise RenderError(
                            f"{path}.parts[{j}].text",
                            "in a URL-balloon batch each part's text must be a single "
                            f"http(s) URL, but it renders to {part.get('text', '')[:60]!r}",
                            "put other text in a step of its own",
                        )
                elif "text" in part and not part["text"].strip() and not part.get("mention"):
                    raise RenderError(
                        f"{path}.parts[{j}].text",
                        "the part's text renders empty for this recipient",
                        "use a default, or remove the part",
                    )
                if len(part.get("text", "")) > MAX_TEXT_CHARS:
                    raise RenderError(
                        f"{path}.parts[{j}].text",
                        f"the part's text renders to {len(part['text']):,} "
                        f"characters, over the {MAX_TEXT_CHARS:,} limit",
                        "shorten it",
                    )
                if part.get("link_preview") is not None:
                    _check_preview(part["link_preview"], f"{path}.parts[{j}].link_preview")


# The body keys ``Renderer._check`` reads besides "text" (keep in step with it).
_CHECKED_KEYS = frozenset({"from_number", "reply_to", "link_preview", "attachments", "parts"})


def _check_preview(lp: dict[str, Any], path: str) -> None:
    title = lp.get("title")
    if title is not None and len(title) > MAX_LINK_PREVIEW_TITLE:
        raise RenderError(
            path + ".title",
            f"the title renders to {len(title)} characters, over the API's {MAX_LINK_PREVIEW_TITLE}",
            "shorten the title",
        )
    image = lp.get("image_url")
    if image is not None and not is_http_url(image, https_only=True):
        raise RenderError(
            path + ".image_url",
            f"image_url renders to {image[:80]!r}, not an https URL",
            "the API downloads preview images over https only",
        )


def _undefined_hint() -> str:
    return (
        "add the column/variable for this recipient, give a default "
        "({{ name | default('...', true) }}), or guard the step with when:"
    )


_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


def _render_error(path: str, err: Exception) -> RenderError:
    if isinstance(err, UndefinedError):
        if (err.message or "").startswith("a variable is null"):
            return RenderError(
                path,
                str(err.message),
                "fill it in the data, or write {{ name or '...' }} (default() alone keeps a null)",
                null=True,
            )
        m = _UNDEFINED.match(err.message or "")
        return RenderError(
            path, err.message or str(err), _undefined_hint(), undefined=m.group(1) if m else None
        )
    if isinstance(err, SecurityError):
        return RenderError(
            path,
            f"unsafe template refused: {err}",
            "templates run in a sandbox: no access to Python internals, no huge values",
        )
    if isinstance(err, TemplateError):
        return RenderError(
            path,
            f"template failed: {err}",
            "check the values this recipient gives the template and the filters' arguments",
        )
    return RenderError(
        path,
        f"template failed: {err.__class__.__name__}: {err}",
        "check the values this recipient gives the template (a number where text is "
        "expected, a date that is not one)",
    )


def step_builder(
    content: dict[str, Any],
) -> Callable[[dict[str, Any], Context | None], dict[str, Any]]:
    """One function that renders a step's content tree (templates in tree order, the first
    failure raised as a RenderError naming its path).

    Walking the tree for every recipient (a call and type checks per node) cost more than the
    templates themselves; the tree's shape is fixed per campaign, so it is turned once into a
    single function whose body is the tree as nested literals: a template is a call, a constant
    is the very object, and every list and dict is built anew, so the checks may rewrite a
    body without touching the campaign."""
    consts: dict[str, Any] = {"_render_error": _render_error}
    lines: list[str] = []

    def expr(value: Any) -> str:
        if isinstance(value, Compiled):
            if value.constant:
                name = f"k{len(consts)}"
                consts[name] = value.source
                return name
            n = len(consts)
            consts[f"r{n}"], consts[f"p{n}"] = value.render, value.path
            lines.append(
                f"    try:\n        v{n} = r{n}(ctx, shared)\n"
                f"    except Exception as err:\n"
                f"        raise _render_error(p{n}, err) from None"
            )
            return f"v{n}"
        if isinstance(value, list):
            return "[" + "".join(expr(v) + ", " for v in value) + "]"
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                name = f"k{len(consts)}"
                consts[name] = k
                items.append(f"{name}: {expr(v)}")
            return "{" + ", ".join(items) + "}"
        name = f"k{len(consts)}"
        consts[name] = value
        return name

    result = expr(dict(content))
    source = "def build(ctx, shared):\n" + "\n".join(lines) + f"\n    return {result}\n"
    exec(compile(source, "<step body>", "exec"), consts)  # noqa: S102 - our own code, names only
    build: Callable[[dict[str, Any], Context | None], dict[str, Any]] = consts["build"]
    return build


def render_problem(campaign: Campaign, rec: Recipient, err: RenderError) -> Problem:
    """Locate a per-recipient error at the recipient's row, naming the template's line too."""
    tpath = tuple(_parse_path(err.path))
    tline, _ = campaign.doc.locate(tpath)
    where = f"{campaign.doc.file}:{tline}" if tline else campaign.doc.file
    return Problem(
        f"{err.path} ({where}): {err.message}",
        file=rec.file,
        line=rec.line,
        path=rec.path or err.path,
        hint=err.hint,
        layer="template",
    )


def referenced_variables(source: str) -> tuple[str, ...]:
    """Every variable a template reads (``{{ a ~ b }}`` -> a, b)."""
    return _referenced(source)


def render_error(path: str, err: Exception) -> RenderError:
    """A template's failure as a RenderError at ``path`` (a condition's too)."""
    return _render_error(path, err)


def _parse_path(path: str) -> Iterator[str | int]:
    for chunk in path.replace("]", "").replace("[", ".").split("."):
        if chunk:
            yield int(chunk) if chunk.isdigit() else chunk
