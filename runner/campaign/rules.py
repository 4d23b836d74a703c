"""Layer 2 of validation: the API's rules that its schema does not express.

The OpenAPI schema of the send endpoint accepts `{}` and every combination its prose forbids;
the API answers those with a 400 at send time. Each rule here turns such a 400 into an error
at `validate` time, pointing at the line. Rules that depend on rendered values (a text that
must be one URL, an https image) are checked again per recipient by render.py.
"""

from __future__ import annotations

import math
from typing import Any

from runner.audience.chatids import e164_hint
from runner.campaign.steps import StepKind, parse_delay, step_kind
from runner.campaign.templates import is_template
from runner.contract import EFFECTS, is_http_url, is_single_http_url, normalize_effect
from runner.errors import Problem, did_you_mean
from runner.limits import MAX_VARIANTS_PER_CAMPAIGN
from runner.source.document import Document


def check_static(doc: Document) -> list[Problem]:
    data = doc.data
    problems: list[Problem] = []
    steps = data.get("steps") or []
    seen: dict[str, int] = {}
    kinds: dict[str, StepKind] = {}
    numbers: dict[str, Any] = {}  # each step's own from_number (None: the sender's)
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        sid = str(step.get("id"))
        if sid in seen:
            problems.append(
                doc.problem(
                    ("steps", i, "id"),
                    f"step id '{sid}' is used twice (first at steps[{seen[sid]}])",
                    "give every step a distinct id: it is part of each message's idempotency key",
                )
            )
        else:
            seen[sid] = i
        problems += _check_step(doc, i, step, seen, kinds, numbers)
        kinds[sid] = step_kind_of(step)
        numbers[sid] = step.get("from_number")
    problems += _check_sender(doc, data.get("sender") or {})
    variants = sum(len(s.get("variants") or []) for s in steps if isinstance(s, dict))
    if variants > MAX_VARIANTS_PER_CAMPAIGN:
        problems.append(
            doc.problem(
                ("steps",),
                f"{variants:,} variants in all: at most "
                f"{MAX_VARIANTS_PER_CAMPAIGN} in one campaign",
                "keep the variants you are testing; split the campaign",
            )
        )
    rate = (data.get("send") or {}).get("rate_per_second")
    if isinstance(rate, float) and not math.isfinite(rate):
        problems.append(
            doc.problem(
                ("send", "rate_per_second"),
                f"{rate} is not a rate",
                "a positive number of requests per second, e.g. 5",
            )
        )
    return problems


def _check_sender(doc: Document, sender: dict[str, Any]) -> list[Problem]:
    out = []
    fn = sender.get("from_number")
    numbers = fn if isinstance(fn, list) else [fn] if fn is not None else []
    for j, n in enumerate(numbers):
        path = ("sender", "from_number", j) if isinstance(fn, list) else ("sender", "from_number")
        hint = e164_hint(n.strip() if isinstance(n, str) else n)
        if hint is not None:
            out.append(doc.problem(path, f"from_number {n!r} is not an E.164 phone number", hint))
    if isinstance(fn, list) and len({str(n).strip() for n in fn}) != len(fn):
        out.append(
            doc.problem(
                ("sender", "from_number"),
                "the from_number pool lists a number twice",
                "list each number once",
            )
        )
    return out


def step_kind_of(step: dict[str, Any]) -> StepKind:
    """A step's kind for the rules of steps that reply to it: a step with variants counts as
    sending several messages when any of its variants does."""
    variants = step.get("variants")
    if isinstance(variants, list) and variants:
        kinds = [step_kind(v).kind for v in variants if isinstance(v, dict)]
        return next((k for k in kinds if k.several), kinds[0] if kinds else StepKind.TEXT)
    return step_kind(step).kind


def _check_step(
    doc: Document,
    i: int,
    step: dict[str, Any],
    earlier: dict[str, int],
    kinds: dict[str, StepKind],
    numbers: dict[str, Any],
) -> list[Problem]:
    at = ("steps", i)
    variants = step.get("variants")
    if variants is None:
        out, text, batch = _check_content(doc, at, step, f"step '{step.get('id')}'")
        contents = [(at, text, batch)]
    else:
        out, contents = _check_variants(doc, at, step)
    out += _check_step_settings(doc, i, at, step)
    rt = step.get("reply_to")
    if rt is not None:
        for where, text, batch in contents:
            out += _reply_content_rules(doc, at + ("reply_to",), where, text, batch)
        out += _reply_rules(doc, at + ("reply_to",), rt, earlier, kinds, step, numbers)
    return out


def _check_variants(
    doc: Document, at: tuple, step: dict[str, Any]
) -> tuple[list[Problem], list[tuple]]:
    """A step with variants: no content of its own, distinct variant ids, and each variant
    checked as a step's content is (the schema holds the count and positive weights)."""
    out: list[Problem] = []
    for name in _CONTENT:
        if step.get(name) is not None:
            out.append(
                doc.problem(
                    at + (name,),
                    f"a step with variants has no {name} of its own",
                    "move it into each variant (every variant carries its own content)",
                    key=True,
                )
            )
    seen: dict[str, int] = {}
    contents = []
    for k, variant in enumerate(step.get("variants") or []):
        if not isinstance(variant, dict):
            continue
        vat = at + ("variants", k)
        vid = str(variant.get("id"))
        if vid in seen:
            out.append(
                doc.problem(
                    vat + ("id",),
                    f"variant id '{vid}' is used twice in this step "
                    f"(first at variants[{seen[vid]}])",
                    "give every variant of a step a distinct id",
                )
            )
        else:
            seen[vid] = k
        weight = variant.get("weight")
        if isinstance(weight, float) and not math.isfinite(weight):
            # The schema's "exclusiveMinimum: 0" lets NaN through (NaN > 0 is false, and so is
            # NaN <= 0), and NaN would give the first variant every recipient.
            out.append(
                doc.problem(
                    vat + ("weight",),
                    f"weight {weight} is not a number of shares",
                    "a finite positive number, e.g. 50",
                )
            )
        problems, text, batch = _check_content(
            doc, vat, variant, f"variant '{vid}' of step '{step.get('id')}'"
        )
        out += problems
        contents.append((vat, text, batch))
    return out, contents


_CONTENT = ("text", "parts", "attachments", "effect", "link_preview")


def _check_content(
    doc: Document, at: tuple, step: dict[str, Any], name: str
) -> tuple[list[Problem], Any, bool]:
    """The rules of a step's content (or a variant's): returns the problems, the text and
    whether the content is a URL-balloon batch (for the reply rules)."""
    out: list[Problem] = []
    text, parts, attachments = step.get("text"), step.get("parts"), step.get("attachments")
    if text is None and not parts and not attachments:
        out.append(doc.problem(at, f"{name} has no content", "give it text, parts or attachments"))
    if text is not None and parts:
        out.append(
            doc.problem(
                at + ("parts",),
                "a step has either text or parts, not both",
                "move the text into a part ({text: ...}) or split the step in two",
                key=True,
            )
        )
    if isinstance(text, list) and not text:
        out.append(
            doc.problem(at + ("text",), "the text list is empty", "give at least one string")
        )

    # Effects: names, and never with parts (multipart bubbles cannot carry an effect).
    effect = step.get("effect")
    if effect is not None:
        canon = normalize_effect(str(effect))
        if canon is None:
            guess = did_you_mean(str(effect).lower().replace(" ", "-"), EFFECTS)
            out.append(
                doc.problem(
                    at + ("effect",),
                    f"unknown effect '{effect}'" + (f" — did you mean '{guess}'?" if guess else ""),
                    "one of: " + ", ".join(EFFECTS) + ", none",
                )
            )
        elif canon and parts:
            out.append(
                doc.problem(
                    at + ("effect",),
                    "an effect is not allowed with parts (the API rejects it)",
                    "remove the effect, or send the content as text instead of parts",
                )
            )

    batch = bool(parts) and any(
        isinstance(p, dict) and p.get("link_preview") is not None for p in parts or ()
    )
    for j, part in enumerate(parts or []):
        if not isinstance(part, dict):
            continue
        pat = at + ("parts", j)
        has_text, has_url = part.get("text") is not None, part.get("url") is not None
        if has_text == has_url:
            out.append(
                doc.problem(
                    pat,
                    "a part has text or url, exactly one of them",
                    "split it into two parts: {text: ...} and {url: ..., name: ...}",
                )
            )
        if part.get("mention") is not None and not has_text:
            out.append(
                doc.problem(
                    pat + ("mention",),
                    "mention is only allowed on a text part",
                    "add text (the whole text becomes the @mention) or remove mention",
                )
            )
        if part.get("name") is not None and not has_url:
            out.append(
                doc.problem(
                    pat + ("name",),
                    "name is only allowed on a url part",
                    "remove name, or use url: for an attachment",
                )
            )
        if batch:
            if has_url or part.get("name") is not None or part.get("mention") is not None:
                out.append(
                    doc.problem(
                        pat,
                        "in a URL-balloon batch (a part has link_preview) every part is text-only",
                        "remove url/name/mention, or remove every link_preview to send one multipart bubble",
                    )
                )
            elif (
                has_text
                and isinstance(part["text"], str)
                and not is_template(part["text"])
                and not is_single_http_url(part["text"].strip())
            ):
                out.append(
                    doc.problem(
                        pat + ("text",),
                        "in a URL-balloon batch each part's text must be a single http(s) URL",
                        "put other text in a step of its own",
                    )
                )
        if has_url:
            out += _url_rule(doc, pat + ("url",), part["url"])
        lp = part.get("link_preview")
        if isinstance(lp, dict):
            out += _link_preview_rules(doc, pat + ("link_preview",), lp)

    for j, att in enumerate(attachments or []):
        url = att.get("url") if isinstance(att, dict) else att
        out += _url_rule(
            doc, at + ("attachments", j) + (("url",) if isinstance(att, dict) else ()), url
        )

    lp = step.get("link_preview")
    if isinstance(lp, dict):
        out += _link_preview_rules(doc, at + ("link_preview",), lp)
        if isinstance(text, list) or parts is not None and batch:
            out.append(
                doc.problem(
                    at + ("link_preview",),
                    "link_preview needs a single text that is exactly one http(s) URL",
                    "use per-part link_preview for several links (a URL-balloon batch)",
                )
            )
        elif (
            isinstance(text, str) and not is_template(text) and not is_single_http_url(text.strip())
        ):
            out.append(
                doc.problem(
                    at + ("link_preview",),
                    "link_preview only applies when the text is exactly one http(s) URL",
                    "make the text just the URL, or remove link_preview",
                )
            )
    return out, text, batch


def _check_step_settings(doc: Document, i: int, at: tuple, step: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    number = step.get("from_number")
    if number is not None and not (isinstance(number, str) and is_template(number)):
        hint = e164_hint(number.strip() if isinstance(number, str) else number)
        if hint is not None:
            out.append(
                doc.problem(
                    at + ("from_number",),
                    f"from_number {number!r} is not an E.164 phone number",
                    hint,
                )
            )
    if step.get("delay") is not None:
        if parse_delay(step["delay"]) is None:
            out.append(
                doc.problem(
                    at + ("delay",),
                    f"{step['delay']!r} is not a duration of at most a year",
                    "write a whole number and a unit: 45s, 30m, 2h or 2d",
                )
            )
        elif i == 0:
            out.append(
                doc.problem(
                    at + ("delay",),
                    "the first step has no previous step to count a delay from",
                    "use schedule.not_before to start later",
                )
            )
    return out


def _url_rule(doc: Document, path: tuple, url: Any, *, https: bool = False) -> list[Problem]:
    if not isinstance(url, str) or is_template(url.split("/")[0] if "//" in url else url[:8]):
        return []
    if not is_http_url(url, https_only=https):
        scheme = "https" if https else "http(s)"
        return [
            doc.problem(path, f"'{url}' is not an {scheme} URL", f"write a full {scheme}:// URL")
        ]
    return []


def _link_preview_rules(doc: Document, path: tuple, lp: dict[str, Any]) -> list[Problem]:
    out = []
    if isinstance(lp.get("image_url"), str):
        out += _url_rule(doc, path + ("image_url",), lp["image_url"], https=True)
    return out


def _reply_content_rules(
    doc: Document, path: tuple, where: tuple, text: Any, batch: bool
) -> list[Problem]:
    """reply_to with content that cannot carry it; with variants, located at the variant."""
    out = []
    variant = where != path[:-1]
    if isinstance(text, list):
        out.append(
            doc.problem(
                where + ("text",) if variant else path,
                "reply_to is not allowed with a text list (the API rejects replies on fan-outs)",
                "send one text per step, or remove reply_to",
            )
        )
    if batch:
        out.append(
            doc.problem(
                where + ("parts",) if variant else path,
                "reply_to is not allowed with a URL-balloon batch",
                "remove reply_to or the link_preview of the parts",
            )
        )
    return out


def _reply_rules(
    doc: Document,
    path: tuple,
    rt: Any,
    earlier: dict[str, int],
    kinds: dict[str, StepKind],
    step: dict[str, Any],
    numbers: dict[str, Any],
) -> list[Problem]:
    out: list[Problem] = []
    if not isinstance(rt, dict):
        return out
    targets = [k for k in ("step", "message_id", "guid") if rt.get(k) not in (None, "")]
    if len(targets) != 1:
        out.append(
            doc.problem(
                path,
                "reply_to needs exactly one of step, message_id or guid",
                "e.g. reply_to: {step: hello}",
            )
        )
    if rt.get("part_index") is not None and "guid" not in targets:
        out.append(
            doc.problem(
                path + ("part_index",), "part_index only goes with guid", "remove part_index"
            )
        )
    target = rt.get("step")
    if target is not None:
        target = str(target)
        if target == str(step.get("id")):
            out.append(
                doc.problem(
                    path + ("step",), "a step cannot reply to itself", "name an earlier step"
                )
            )
        elif target not in earlier:
            guess = did_you_mean(target, list(earlier))
            out.append(
                doc.problem(
                    path + ("step",),
                    f"reply_to names step '{target}', which does not come earlier"
                    + (f" — did you mean '{guess}'?" if guess else ""),
                    "reply to a step defined above this one",
                )
            )
        elif (kind := kinds.get(target)) is not None and kind.several:
            out.append(
                doc.problem(
                    path + ("step",),
                    f"step '{target}' sends several messages, so a reply cannot target it",
                    "reply to a step that sends exactly one message",
                )
            )
        elif numbers.get(target) != step.get("from_number"):
            out.append(
                doc.problem(
                    path + ("step",),
                    f"this step sends from a different number than step '{target}', "
                    "so the API would refuse the reply (reply_target_device_mismatch)",
                    "give both steps the same from_number, or neither",
                )
            )
    return out
