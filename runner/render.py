"""Layer 3: render each recipient's steps into exact request bodies, and check what rendered.

Pure: (campaign, recipient) in, bodies or problems out. Validation renders every recipient
with this, so a problem of recipient 37,412 is found by `validate`, not at send time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from jinja2.exceptions import SecurityError, UndefinedError

from runner.campaign import Campaign, Step
from runner.contract import MAX_LINK_PREVIEW_TITLE, MAX_TEXT_CHARS, is_http_url, is_single_http_url
from runner.errors import Problem
from runner.loader import format_path
from runner.recipients import Recipient
from runner.templates import Compiled, base_context


@dataclass(slots=True)
class Rendered:
    """One step for one recipient: the body to send, or why it is skipped."""

    step: Step
    body: dict[str, Any] | None  # None when skipped
    skipped: str | None = None  # "when" | "reply_parent_skipped"


class RenderError(Exception):
    def __init__(self, path: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


class Renderer:
    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._base = base_context(campaign.vars)
        sender = campaign.sender
        pool = sender.get("from_number")
        self._pool: list[str] = [str(n).strip() for n in pool] if isinstance(pool, list) else []
        self._defaults = {k: sender[k] for k in ("use_typing_indicator", "share_contact") if k in sender}
        if isinstance(pool, str):
            self._defaults["from_number"] = pool.strip()

    def from_number(self, chat: str) -> str | None:
        """A pool assigns each chat one number by a stable hash: the same on every run and step
        (a reply must come from the number that sent its parent)."""
        if not self._pool:
            return self._defaults.get("from_number")
        digest = hashlib.sha256(chat.encode("utf-8")).digest()
        return self._pool[int.from_bytes(digest[:8], "big") % len(self._pool)]

    def context(self, rec: Recipient) -> dict[str, Any]:
        # Precedence: the recipient's own vars, then campaign vars, then `recipient`.
        ctx = dict(self._base)
        if "recipient" not in self.campaign.vars:
            ctx["recipient"] = rec.chat
        ctx.update(rec.vars)
        return ctx

    def render(self, rec: Recipient) -> list[Rendered]:
        """Every step for this recipient; raises RenderError on the first problem."""
        ctx = self.context(rec)
        out: list[Rendered] = []
        skipped: set[str] = set()
        for step in self.campaign.steps:
            path = format_path(step.path)
            if step.when is not None:
                try:
                    ok = step.when(**ctx)
                except UndefinedError as err:
                    raise RenderError(path + ".when", f"{err.message}", _undefined_hint()) from None
                except SecurityError as err:
                    raise RenderError(path + ".when", f"unsafe expression refused: {err}",
                                      "templates run in a sandbox: no attribute access to internals") from None
                except TemplateError as err:
                    raise RenderError(path + ".when", f"condition failed: {err}") from None
                if not ok:
                    skipped.add(step.id)
                    out.append(Rendered(step, None, "when"))
                    continue
            if step.reply_to_step is not None and step.reply_to_step in skipped:
                skipped.add(step.id)
                out.append(Rendered(step, None, "reply_parent_skipped"))
                continue
            body = {k: _render_tree(v, ctx, f"{path}.{k}") for k, v in step.content.items()}
            self._check(step, body, path)
            if step.effect:
                body["effect"] = step.effect
            for k, v in self._defaults.items():
                body.setdefault(k, v)
            for k in ("use_typing_indicator", "share_contact"):
                if k in step.data:
                    body[k] = step.data[k]
            number = step.data.get("from_number") or self.from_number(rec.chat or "")
            if number:
                body["from_number"] = number
            out.append(Rendered(step, body))
        return out

    def _check(self, step: Step, body: dict[str, Any], path: str) -> None:
        text = body.get("text")
        texts = text if isinstance(text, list) else [text] if text is not None else []
        for j, t in enumerate(texts):
            where = f"{path}.text" + (f"[{j}]" if isinstance(text, list) else "")
            if len(t) > MAX_TEXT_CHARS:
                raise RenderError(where, f"the text renders to {len(t):,} characters, over the {MAX_TEXT_CHARS:,} limit",
                                  "shorten it or split it into several steps")
            if not t.strip() and not body.get("attachments"):
                raise RenderError(where, "the text renders empty for this recipient (the API rejects a message without content)",
                                  "guard the step with when:, or use a default: {{ name | default('there') }}")
        lp = body.get("link_preview")
        if lp is not None:
            joined = "".join(p.get("text", "") for p in body.get("parts") or []) if text is None else text
            if not isinstance(joined, str) or not is_single_http_url(joined.strip()):
                raise RenderError(f"{path}.link_preview", "link_preview needs the text to be exactly one http(s) URL, "
                                  f"but it renders to {str(joined)[:60]!r}", "make the text just the URL")
            _check_preview(lp, f"{path}.link_preview")
        for j, att in enumerate(body.get("attachments") or []):
            url = att.get("url") if isinstance(att, dict) else att
            if not is_http_url(str(url)):
                raise RenderError(f"{path}.attachments[{j}]", f"attachment URL renders to {str(url)[:80]!r}, not an http(s) URL",
                                  "attachments must be full http(s):// URLs")
        for j, part in enumerate(body.get("parts") or []):
            ppath = f"{path}.parts[{j}]"
            if "url" in part and not is_http_url(part["url"]):
                raise RenderError(ppath + ".url", f"the part's url renders to {part['url'][:80]!r}, not an http(s) URL",
                                  "write a full http(s):// URL")
            if step.kind == "batch":
                if not is_single_http_url(part.get("text", "").strip()):
                    raise RenderError(ppath + ".text", "in a URL-balloon batch each part's text must be a single http(s) URL, "
                                      f"but it renders to {part.get('text', '')[:60]!r}", "put other text in a step of its own")
            elif "text" in part and not part["text"].strip() and not part.get("mention"):
                raise RenderError(ppath + ".text", "the part's text renders empty for this recipient",
                                  "use a default, or remove the part")
            if part.get("link_preview") is not None:
                _check_preview(part["link_preview"], ppath + ".link_preview")


def _check_preview(lp: dict[str, Any], path: str) -> None:
    title = lp.get("title")
    if title is not None and len(title) > MAX_LINK_PREVIEW_TITLE:
        raise RenderError(path + ".title", f"the title renders to {len(title)} characters, over the API's {MAX_LINK_PREVIEW_TITLE}",
                          "shorten the title")
    image = lp.get("image_url")
    if image is not None and not is_http_url(image, https_only=True):
        raise RenderError(path + ".image_url", f"image_url renders to {image[:80]!r}, not an https URL",
                          "the API downloads preview images over https only")


def _undefined_hint() -> str:
    return ("add the column/variable for this recipient, give a default "
            "({{ first_name | default('there') }}), or guard the step with when:")


def _render_tree(value: Any, ctx: dict[str, Any], path: str) -> Any:
    if isinstance(value, Compiled):
        try:
            return value.render(ctx)
        except UndefinedError as err:
            raise RenderError(path, f"{err.message}", _undefined_hint()) from None
        except SecurityError as err:
            raise RenderError(path, f"unsafe template refused: {err}",
                              "templates run in a sandbox: no access to Python internals") from None
        except TemplateError as err:
            raise RenderError(path, f"template failed: {err}") from None
        except (TypeError, ValueError, ArithmeticError) as err:
            raise RenderError(path, f"template failed: {err.__class__.__name__}: {err}") from None
    if isinstance(value, list):
        return [_render_tree(v, ctx, f"{path}[{j}]") for j, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _render_tree(v, ctx, f"{path}.{k}") for k, v in value.items()}
    return value


def render_problem(campaign: Campaign, rec: Recipient, err: RenderError) -> Problem:
    """Locate a per-recipient error at the recipient's row, naming the template's line too."""
    tpath = tuple(_parse_path(err.path))
    tline, _ = campaign.doc.locate(tpath)
    where = f"{campaign.doc.file}:{tline}" if tline else campaign.doc.file
    return Problem(
        f"{err.path} ({where}): {err.message}",
        file=rec.file, line=rec.line, path=rec.path or err.path, hint=err.hint, layer="template",
    )


def _parse_path(path: str) -> Iterator[str | int]:
    for chunk in path.replace("]", "").replace("[", ".").split("."):
        if chunk:
            yield int(chunk) if chunk.isdigit() else chunk
