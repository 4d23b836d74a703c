"""The jinja2 environment: sandboxed, strict, and compiled once per campaign.

Sandboxed because campaign files come from pull requests: `{{ ''.__class__.__mro__ }}` must be
refused, not evaluated. Strict because an undefined variable must be an error found by
`validate`, never a blank sent to a customer.
"""

from __future__ import annotations

import math
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar, Token
from functools import lru_cache, update_wrapper
from itertools import islice
from typing import Any, TypeVar

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from markupsafe import Markup

from runner import limits
from runner.campaign.datefilter import datetime_filter

_MARKERS = ("{{", "{%", "{#")
T = TypeVar("T")


# A rendered text is at most 10,000 characters. A campaign from a pull request could still ask
# a CI runner for gigabytes (`{{ 'x' * 10**9 }}`, `{{ 'x'.ljust(10**9) }}`, a loop of large
# pieces): each of these is refused before it allocates, and a template's whole output is
# bounded while it is produced.
MAX_REPEAT = 100_000
MAX_POWER = 10**12
MAX_NUMBER_ARGUMENT = 100_000  # widths, lengths and counts passed to methods and filters
MAX_OUTPUT = 1_000_000  # characters one template may produce
MAX_TEMPLATE_STRING = limits.MAX_TEMPLATE_STRING  # characters of any string built on the way
_WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate", "format", "batch", "slice")


def _check_arguments(name: str, args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) > MAX_NUMBER_ARGUMENT
        ):
            raise SecurityError(f"{name}() with the argument {value:,} is too large")


def _capped(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def capped(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(name, args[1:], kwargs)  # args[0] is the filtered value (or context)
        return fn(*args, **kwargs)

    for attr in ("jinja_pass_arg",):  # keep jinja2's pass_context/pass_environment marker
        if hasattr(fn, attr):
            setattr(capped, attr, getattr(fn, attr))
    return capped


# A width or precision in a format spec (`{:>N}`, `%Nd`, `%.Nf`) allocates N characters before
# anything can count them; each is bounded like a method's width argument.
_PERCENT_SPEC = re.compile(r"%%|%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGIT_RUN = re.compile(r"\d+")


def _too_wide(digits: str) -> bool:
    significant = digits.lstrip("0")
    # Compare lengths first: int() of a 5,000-digit run is itself refused (and slow).
    return (
        len(significant) > len(str(MAX_NUMBER_ARGUMENT))
        or int(significant or 0) > MAX_NUMBER_ARGUMENT
    )


def check_format_spec(spec: str) -> None:
    """Refuse a str.format spec (`>999999999`, `.999999999f`) whose width or precision is
    over MAX_NUMBER_ARGUMENT. Every digit run counts (a digit fill character is a run of one)."""
    for run in _DIGIT_RUN.findall(spec):
        if _too_wide(run):
            raise SecurityError(
                f"a format width or precision over {MAX_NUMBER_ARGUMENT:,} is refused"
            )


def check_percent_format(fmt: str, values: Any) -> None:
    """Refuse `%` formatting (the operator, the `format` filter) whose width or precision,
    written or taken from the values by `*`, is over MAX_NUMBER_ARGUMENT."""
    star = False
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*":
                star = True
            elif group and _too_wide(group):
                raise SecurityError(
                    f"a format width or precision over {MAX_NUMBER_ARGUMENT:,} is refused"
                )
    if star:
        for value in values if isinstance(values, tuple) else (values,):
            if (
                isinstance(value, int)
                and not isinstance(value, bool)
                and abs(value) > MAX_NUMBER_ARGUMENT
            ):
                raise SecurityError(f"a format width or precision of {value:,} (by *) is too large")


def percent_size(fmt: str, values: Any) -> int:
    """At most how long ``fmt % values`` is: each conversion as wide as its width or the
    longest value, whichever is more (`'%s' * 50000 % ((big,) * 50000)` is refused before the
    50,000 copies are joined)."""
    items = (
        values
        if isinstance(values, tuple)
        else tuple(values.values())
        if isinstance(values, dict)
        else (values,)
    )
    longest = max((_text_len(v) for v in items), default=0)
    size = len(fmt)
    for match in _PERCENT_SPEC.finditer(fmt):
        if match.group() == "%%":
            continue
        width = match.group(1)
        size += max(
            int(width) if width and width.isdigit() else MAX_NUMBER_ARGUMENT if width == "*" else 0,
            longest,
        )
    return size


class _BoundedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        # Called with the spec after nested fields (`{:{w}}`) are filled in; each field's text
        # is counted, so `('{0}' * 30000).format(big)` stops before the copies are joined.
        check_format_spec(format_spec)
        text = super().format_field(value, format_spec)
        self._built = getattr(self, "_built", 0) + _text_len(text)
        _too_big(self._built, "format()")
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def _bounded_format_filter(fn: Callable[..., str]) -> Callable[..., str]:
    """jinja2's `format` filter (`value % args`) with its widths bounded."""

    def format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_arguments("format", args, kwargs)
        check_percent_format(str(value), args)
        _too_big(percent_size(str(value), kwargs or args), "the filter format")
        return fn(value, *args, **kwargs)

    return format_filter


def _too_big(size: int, what: str) -> None:
    if size > MAX_TEMPLATE_STRING:
        raise SecurityError(
            f"{what} would build a string of {size:,} characters (at most {MAX_TEMPLATE_STRING:,})"
        )


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value)) if value is not None else 0


def _replace_size(s: Any, old: Any, new: Any, count: Any = None) -> int:
    s, old, new = str(s), str(old), str(new)
    n = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        n = min(n, count)
    return len(s) + n * (len(new) - len(old))


def _join_size(sep: Any, items: list[Any]) -> int:
    return sum(_text_len(x) for x in items) + _text_len(sep) * max(len(items) - 1, 0)


def _lines(s: str) -> int:
    return s.count("\n") + 1


# What a string method or a filter would build, computed before it is built: the result of
# `('a'*40000)|replace('a', 'a'*40000)` is 1.6 billion characters, every input of it small.
def _method_size(obj: Any, args: tuple, kwargs: dict) -> int | None:
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return None
    if name == "replace" and len(args) >= 2:
        return _replace_size(
            owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count")
        )
    if name == "join" and args and isinstance(args[0], (list, tuple)):
        return _join_size(owner, list(args[0]))
    if name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        return len(owner) + owner.count("\t") * (size if isinstance(size, int) else 8)
    return None


def _filter_estimates() -> dict[str, Callable[..., int]]:
    def indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
        text = str(s)
        return len(text) + _lines(text) * (
            _text_len(width)
            if isinstance(width, str)
            else int(width)
            if isinstance(width, int)
            else 4
        )

    def wordwrap(
        s: Any,
        width: Any = 79,
        break_long_words: Any = True,
        wrapstring: Any = None,
        *_: Any,
        **kw: Any,
    ) -> int:
        text, wrap = str(s), kw.get("wrapstring", wrapstring)
        per = max(int(width) if isinstance(width, int) else 79, 1)
        return len(text) + (len(text) // per + _lines(text)) * max(_text_len(wrap), 1)

    return {
        "replace": lambda s, old="", new="", count=None, **kw: _replace_size(
            s, old, new, kw.get("count", count)
        ),
        "indent": indent,
        "wordwrap": wordwrap,
    }


def _sized(name: str, fn: Callable[..., Any], estimate: Callable[..., int]) -> Callable[..., Any]:
    """A filter whose result size is known before it is built, refused over the cap."""
    skip = 1 if hasattr(fn, "jinja_pass_arg") else 0

    def sized(*args: Any, **kwargs: Any) -> Any:
        _too_big(estimate(*args[skip:], **kwargs), f"the filter {name}")
        return fn(*args, **kwargs)

    for attr in ("jinja_pass_arg",):
        if hasattr(fn, attr):
            setattr(sized, attr, getattr(fn, attr))
    return sized


_SIZED_FILTERS = frozenset({"replace", "indent", "wordwrap", "join"})


def _measured(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def measured(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, str):
            _too_big(len(result), f"the filter {name}")
        return result

    for attr in ("jinja_pass_arg",):
        if hasattr(fn, attr):
            setattr(measured, attr, getattr(fn, attr))
    return measured


def _sized_join(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The join filter: its items read once (a generator too), then sized, then joined."""

    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        if attribute is None:
            _too_big(_join_size(d, items), "the filter join")
        result = fn(eval_ctx, items, d, attribute)
        _too_big(_text_len(result), "the filter join")
        return result

    join.jinja_pass_arg = fn.jinja_pass_arg  # type: ignore[attr-defined]
    return join


def _no_none(value: Any) -> Any:
    """A null from the data (JSONL null, YAML ~) must not reach a customer as the word None."""
    if value is None:
        raise UndefinedError("a variable is null (empty in the data), so the text would say 'None'")
    return value


_FIRST_PIECES = 32  # read at C speed; each piece is already bounded (MAX_REPEAT, the caps)


def bounded_concat(pieces: Iterable[str]) -> str:
    """Join a template's output pieces, refusing more than MAX_OUTPUT characters in all."""
    pieces = iter(pieces)
    out = list(islice(pieces, _FIRST_PIECES))
    size = sum(map(len, out))
    if size > MAX_OUTPUT:
        raise SecurityError(f"the template renders more than {MAX_OUTPUT:,} characters")
    if len(out) == _FIRST_PIECES:  # a loop: keep counting as it goes
        append = out.append
        for piece in pieces:
            size += len(piece)
            if size > MAX_OUTPUT:
                raise SecurityError(f"the template renders more than {MAX_OUTPUT:,} characters")
            append(piece)
    return "".join(out)


def _bounded_str_join(seq: Iterable[object]) -> str:
    """The `~` operator, bounded like a template's output."""
    return bounded_concat(map(str, seq))


class _NoFoldingCodeGenerator(CodeGenerator):
    """jinja2 evaluates constant output expressions while compiling (`{{ "%9999999d" % 1 }}`,
    `{{ "x"|center(...) }}`), outside any render budget and before a sandbox check can count
    their cost. Only literal text and literals are written as constants here; every other
    expression is evaluated when rendering, under the sandbox's limits. (The optimizer, which
    folds constants elsewhere, is off: see environment().)"""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, (nodes.TemplateData, nodes.Const)):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)


class _Sandbox(ImmutableSandboxedEnvironment):
    # Intercepted operators are also never folded at compile time (jinja2's BinExpr.as_const).
    intercepted_binops = frozenset(["*", "**", "+", "%"])
    code_generator_class = _NoFoldingCodeGenerator

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """jinja2's sandboxed str.format/format_map, with widths and precisions bounded."""
        if not isinstance(
            value, (types.MethodType, types.BuiltinMethodType)
        ) or value.__name__ not in ("format", "format_map"):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_format_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter
        if isinstance(f_self, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = _BoundedFormatter(self)
        vformat = formatter.vformat

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            return str_type(vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_budget()
        name = getattr(__obj, "__name__", "a function")
        _check_arguments(name, args, kwargs)
        size = _method_size(__obj, args, kwargs)
        if size is not None:
            _too_big(size, f"{name}()")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):  # what no estimate foresaw is still refused, once built
            _too_big(len(result), f"{name}()")
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if (
                isinstance(left, (int, float))
                and isinstance(right, (int, float))
                and abs(right) > 64
                and abs(left) > 1
            ):
                raise SecurityError(f"the power {left!r} ** {right!r} is too large")
            result = left**right
            if isinstance(result, int) and abs(result) > MAX_POWER:
                raise SecurityError("the power is too large")
            return result
        if operator == "+":
            if (
                isinstance(left, (str, list, tuple))
                and isinstance(right, (str, list, tuple))
                and len(left) + len(right) > MAX_OUTPUT
            ):
                raise SecurityError(f"joining values longer than {MAX_OUTPUT:,} is refused")
            return left + right
        if operator == "%":
            if isinstance(left, str):
                check_percent_format(left, right)
                _too_big(percent_size(left, right), "'%' formatting")
            return left % right
        for seq, n in ((left, right), (right, left)):
            if (
                isinstance(seq, (str, list, tuple))
                and isinstance(n, int)
                and len(seq) * n > MAX_REPEAT
            ):
                raise SecurityError(f"repeating a value {n:,} times is too large")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_no_none,
        # No constant folding at compile time: what a template computes, it computes while
        # rendering, under the render budget and the sandbox's limits.
        optimized=False,
    )
    for name in _WIDTH_FILTERS:
        env.filters[name] = _capped(name, env.filters[name])
    env.filters["format"] = _bounded_format_filter(env.filters["format"])
    env.filters["datetime"] = datetime_filter
    for name, estimate in _filter_estimates().items():
        env.filters[name] = _sized(name, env.filters[name], estimate)
    env.filters["join"] = _sized_join(env.filters["join"])
    # Every other filter's result is measured once built: a chain (urlencode triples '&')
    # stops at its first step over the cap, not after gigabytes.
    for name, fn in list(env.filters.items()):
        if name not in _SIZED_FILTERS:
            env.filters[name] = _measured(name, fn)
    return env


def _compile(source: str) -> Template:
    env = environment()
    tree = env.parse(source)
    # Each loop's iterable goes through loop_guard, imported by the compiled module itself
    # (not looked up in the context, where a recipient's variable could shadow it).
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.ImportedName(_LOOP_GUARD), [loop.iter], [], None, None, lineno=loop.iter.lineno
        )
    tmpl = env.template_class.from_code(env, env.compile(tree), env.make_globals(None), None)
    # `~` compiles to a call of the module's `str_join`; bound it like the output.
    namespace = tmpl.root_render_func.__globals__
    if "str_join" in namespace:
        namespace["str_join"] = _bounded_str_join
    return tmpl


# A render of one recipient takes microseconds; a template that loops for seconds is an
# attack on the machine running validate (CI), not a campaign.
RENDER_BUDGET_SECONDS = 2.0

_ACTIVE: ContextVar[TimeBudget | None] = ContextVar("runner_render_budget", default=None)


class TimeBudget:
    """Stops a render that runs past its budget, cooperatively: no signal, no thread.

    While a budget is active (``with budget:``), every step of every template loop and every
    call a template makes looks at the clock; past the deadline they raise SecurityError. A
    template can only run long by looping (jinja2 has no while, and recursion ends at Python's
    limit), and each loop iteration or call checks, so an endless template stops within the
    budget plus one step. Works in any thread and leaves no state behind once exited.
    """

    def __init__(
        self, seconds: float = RENDER_BUDGET_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.deadline = math.inf
        self._tokens: list[Token[TimeBudget | None]] = []

    def __enter__(self) -> TimeBudget:
        self.deadline = self.clock() + self.seconds
        self._tokens.append(_ACTIVE.set(self))
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.reset(self._tokens.pop())

    def check(self) -> None:
        if self.clock() > self.deadline:
            raise SecurityError(f"rendering took longer than {self.seconds:g} s")

    def guarded(self, iterable: Iterable[T]) -> Iterator[T]:
        check = self.check
        for item in iterable:
            check()
            yield item


def _check_budget() -> None:
    budget = _ACTIVE.get()
    if budget is not None:
        budget.check()


def loop_guard(iterable: Iterable[T]) -> Iterable[T]:
    """Every template `for` loop iterates through this (see _compile): under an active budget
    each iteration checks the clock."""
    budget = _ACTIVE.get()
    return iterable if budget is None else budget.guarded(iterable)


_LOOP_GUARD = f"{__name__}.loop_guard"


def is_template(text: str) -> bool:
    return any(m in text for m in _MARKERS)


class Compiled:
    """A compiled template string; plain strings skip jinja2 entirely.

    ``path`` is where the string stands in the campaign ("steps[0].text"), so a rendering
    error can say so without the hot path building path strings for every recipient.
    """

    __slots__ = (
        "source",
        "path",
        "shareable",
        "constant",
        "_looped",
        "_render",
        "_blocks",
        "_name",
    )
    _render: Callable[[Context], Iterator[str]] | None

    def __init__(self, source: str, path: str = "") -> None:
        self.source = source
        self.path = path
        self.shareable = True
        if is_template(source):
            tmpl = _compile(source)
            self._render = tmpl.root_render_func
            self._blocks = tmpl.blocks
            self._name = tmpl.name
            tree = environment().parse(source)
            self.shareable = _reads_only(tree)
            # Without a loop a template yields at most one piece per output node, each bounded
            # by the sandbox's caps; with at most _FIRST_PIECES of them bounded_concat would
            # take them all in one read anyway, so they are joined at C speed and measured
            # once. Anything else is counted while it grows.
            self._looped = (
                next(iter(tree.find_all(nodes.For)), None) is not None
                or sum(len(o.nodes) for o in tree.find_all(nodes.Output)) > _FIRST_PIECES
            )
        else:
            self._render = None
        self.constant = self._render is None  # renders to ``source`` itself, for everyone

    def render(self, ctx: dict[str, Any], shared: Context | None = None) -> str:
        """``shared``: one recipient's context, reused by the templates that only read it."""
        if self._render is None:
            return self.source
        if shared is None or not self.shareable:
            shared = fast_context(ctx, self._name, self._blocks)
        if self._looped:
            return bounded_concat(self._render(shared))
        out = "".join(self._render(shared))
        if len(out) > MAX_OUTPUT:
            raise SecurityError(f"the template renders more than {MAX_OUTPUT:,} characters")
        return out


# Template constructs that write to the render context; a template without them only reads it,
# so one Context per recipient can serve all its templates (creating a Context is a large part
# of rendering a short template).
_WRITERS = (
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Block,
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.With,
    nodes.Scope,
    nodes.OverlayScope,
    nodes.EvalContextModifier,
)


def _reads_only(tree: nodes.Template) -> bool:
    return next(iter(tree.find_all(_WRITERS)), None) is None


def fast_context(
    ctx: dict[str, Any], name: str | None = None, blocks: dict | None = None
) -> Context:
    """A jinja2 Context over ``ctx`` without copying it.

    ``Template.new_context`` copies the variables and iterates the template's globals ChainMap
    for every call, which is most of the cost of rendering a short template. ``ctx`` already
    holds the environment's globals (see base_context), so it can be the parent as it is.
    """
    return Context(environment(), ctx, name, blocks or {})


def base_context(campaign_vars: dict[str, Any]) -> dict[str, Any]:
    """Globals + campaign vars; each recipient's context is this updated with its own vars."""
    return {**environment().globals, **campaign_vars}


def compile_text(source: str, path: str = "") -> Compiled:
    """Compile or raise TemplateSyntaxError (callers locate it)."""
    return Compiled(source, path)


class Condition:
    """A `when:` expression, bare (`code is defined`) or in braces (`{{ code is defined }}`),
    evaluated with jinja2's truthiness."""

    __slots__ = ("source", "_render")

    def __init__(self, source: str) -> None:
        self.source = source
        text = source.strip()
        if text.startswith("{{") and text.endswith("}}"):
            text = text[2:-2].strip()
        if not text:
            raise TemplateSyntaxError("the condition is empty", 1)
        env = environment()
        # compile_expression accepts exactly one expression (raising TemplateSyntaxError
        # otherwise), so the text cannot close the if-block below; the block form is what we
        # evaluate because it avoids compile_expression's per-call copy of the variables.
        env.compile_expression(text)
        tmpl = _compile("{% if " + text + " %}1{% endif %}")
        self._render = tmpl.root_render_func

    def __call__(self, ctx: dict[str, Any], shared: Context | None = None) -> bool:
        # An expression cannot assign, so a recipient's shared context is always safe here.
        return bounded_concat(self._render(shared or fast_context(ctx))) == "1"


def compile_condition(source: str) -> Condition:
    return Condition(source)
