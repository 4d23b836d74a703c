"""Turn problems into text for people, JSON for tools, or GitHub workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable

from runner.errors import Problem
from runner.safe_text import command_data, command_property, one_line

_RED, _YELLOW, _DIM, _BOLD, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def format_text(p: Problem, *, color: bool = False) -> str:
    # Messages quote campaign and server text: one line each, no control characters, no
    # workflow command (runner.safe_text), before any colour is added.
    sev = p.severity
    message, location = one_line(p.message), one_line(p.location()) if p.file else ""
    if color:
        sev = (_RED if sev == "error" else _YELLOW) + sev + _RESET
    head = f"{location}: {sev}: {message}" if p.file else f"{sev}: {message}"
    if p.path and p.path not in p.message:
        head += f" [{one_line(p.path)}]"
    if color:
        head = _BOLD + head.replace(_RESET, _RESET + _BOLD, 1) + _RESET
    if p.hint:
        hint = f"    hint: {one_line(p.hint)}"
        head += "\n" + (_DIM + hint + _RESET if color else hint)
    return head


def format_github(p: Problem) -> str:
    props = []
    if p.file:
        props.append(f"file={command_property(p.file)}")
    if p.line:
        props.append(f"line={p.line}")
    if p.column:
        props.append(f"col={p.column}")
    if p.path:
        props.append(f"title={command_property(p.path)}")
    message = p.message + (f" (hint: {p.hint})" if p.hint else "")
    kind = "error" if p.severity == "error" else "warning"
    return f"::{kind} {','.join(props)}::{command_data(message)}"


def render_problems(problems: Iterable[Problem], fmt: str = "text", *, color: bool = False) -> str:
    problems = list(problems)
    if fmt == "json":
        return json.dumps(
            {
                "schema_version": 1,
                "valid": not any(p.severity == "error" for p in problems),
                "problems": [p.to_dict() for p in problems],
            },
            indent=2,
            ensure_ascii=False,
        )
    if fmt == "github":
        return "\n".join(format_github(p) for p in problems)
    return "\n".join(format_text(p, color=color) for p in problems)


def more_problems(count: int, *, github: bool = False) -> str:
    """The line after the problems shown: how many were left out, and how to see them."""
    text = f"{count:,} more problem{'s' if count != 1 else ''} not shown"
    hint = "fix the ones above and run again, or raise --max-problems"
    if github:
        return f"::notice::{command_data(f'{text} ({hint})')}"
    return f"{text}\n    hint: {hint}"
