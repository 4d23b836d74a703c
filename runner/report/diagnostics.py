"""Turn problems into text for people, JSON for tools, or GitHub workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable

from runner.errors import Problem

_RED, _YELLOW, _DIM, _BOLD, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def format_text(p: Problem, *, color: bool = False) -> str:
    sev = p.severity
    if color:
        sev = (_RED if sev == "error" else _YELLOW) + sev + _RESET
    head = f"{p.location()}: {sev}: {p.message}" if p.file else f"{sev}: {p.message}"
    if p.path and p.path not in p.message:
        head += f" [{p.path}]"
    if color:
        head = _BOLD + head.replace(_RESET, _RESET + _BOLD, 1) + _RESET
    if p.hint:
        hint = f"    hint: {p.hint}"
        head += "\n" + (_DIM + hint + _RESET if color else hint)
    return head


def _gh_escape(text: str, *, prop: bool = False) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts escaping rules
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(p: Problem) -> str:
    props = []
    if p.file:
        props.append(f"file={_gh_escape(p.file, prop=True)}")
    if p.line:
        props.append(f"line={p.line}")
    if p.column:
        props.append(f"col={p.column}")
    if p.path:
        props.append(f"title={_gh_escape(p.path, prop=True)}")
    message = p.message + (f" (hint: {p.hint})" if p.hint else "")
    kind = "error" if p.severity == "error" else "warning"
    return f"::{kind} {','.join(props)}::{_gh_escape(message)}"


def render_problems(problems: Iterable[Problem], fmt: str = "text", *, color: bool = False) -> str:
    problems = list(problems)
    if fmt == "json":
        return json.dumps({"schema_version": 1, "valid": not any(p.severity == "error" for p in problems),
                           "problems": [p.to_dict() for p in problems]}, indent=2, ensure_ascii=False)
    if fmt == "github":
        return "\n".join(format_github(p) for p in problems)
    return "\n".join(format_text(p, color=color) for p in problems)


def more_problems(count: int, *, github: bool = False) -> str:
    """The line after the problems shown: how many were left out, and how to see them."""
    text = f"{count:,} more problem{'s' if count != 1 else ''} not shown"
    hint = "fix the ones above and run again, or raise --max-problems"
    if github:
        return f"::notice::{_gh_escape(f'{text} ({hint})')}"
    return f"{text}\n    hint: {hint}"
