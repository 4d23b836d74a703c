"""The jinja2 environment: sandboxed, strict, and compiled once per campaign.

Sandboxed because campaign files come from pull requests: `{{ ''.__class__.__mro__ }}` must be
refused, not evaluated. Strict because an undefined variable must be an error found by
`validate`, never a blank sent to a customer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_MARKERS = ("{{", "{%", "{#")


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
        trim_blocks=True, lstrip_blocks=True,
    )
    return env


def is_template(text: str) -> bool:
    return any(m in text for m in _MARKERS)


class Compiled:
    """A compiled template string; plain strings skip jinja2 entirely."""

    __slots__ = ("source", "_render", "_new_context")

    def __init__(self, source: str) -> None:
        self.source = source
        if is_template(source):
            tmpl = environment().from_string(source)
            self._render = tmpl.root_render_func
            self._new_context = tmpl.new_context
        else:
            self._render = None
            self._new_context = None

    def render(self, ctx: dict[str, Any]) -> str:
        if self._render is None:
            return self.source
        # ctx already holds the environment's globals (see base_context), so the context can
        # share it instead of copying it for every template of every recipient.
        return "".join(self._render(self._new_context(ctx, shared=True)))


def base_context(campaign_vars: dict[str, Any]) -> dict[str, Any]:
    """Globals + campaign vars; each recipient's context is this updated with its own vars."""
    return {**environment().globals, **campaign_vars}


def compile_text(source: str) -> Compiled:
    """Compile or raise TemplateSyntaxError (callers locate it)."""
    return Compiled(source)


def compile_condition(source: str):
    """A `when:` expression, bare (`code is defined`) or in braces (`{{ code is defined }}`)."""
    text = source.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    if not text:
        raise TemplateSyntaxError("the condition is empty", 1)
    return environment().compile_expression(text, undefined_to_none=False)
