"""One table of hostile strings against every sink of runner.safe_text (issue 22, items 1, 3,
4): the job log (no workflow command, no escape sequence), workflow command data and
properties, markdown (no HTML, no markup, no ping, code spans that cannot be closed, one line)
and $GITHUB_OUTPUT (no injected line)."""

from __future__ import annotations

import json
import re

import pytest

from runner.safe_text import (
    command_data,
    command_property,
    github_output,
    md_code,
    md_text,
    one_line,
    styled_terminal,
    terminal,
)

HOSTILE = [
    "0\n<!--\n",
    "\n::add-mask::secret",
    "\n::stop-commands::tok\n::error file=README.md,line=1::approve",
    "   ::warning::indented",
    "x ##[add-mask]secret",
    "\r::set-output name=x::y",
    "\x1b]52;c;ZXZpbA==\x07",  # OSC 52: write the clipboard
    "\x1b[2J\x1b[H cleared",
    "\x9b31m C1 CSI",
    "\u202eevil\u202c bidi",
    "a\u2028::add-mask::b\u2029c",
    "Hi {{ first_name }}` @octocat <img src=https://evil.example/i.png>",
    "``` fence ` and `` runs ```",
    "<details><summary>x</summary>",
    "| a | b |",
    "[link](https://evil.example) ![img](https://evil.example/i.png)",
    "ghadelimiter_x\nname=value\nEOF",
]

_COMMAND_LINE = re.compile(r"^\s*::")


def _no_command_line(text: str) -> None:
    for line in re.split(r"\r\n|\r|\n", text):
        assert not _COMMAND_LINE.match(line), line
        assert "##[" not in line, line


def _no_escape_or_control(text: str, keep: str = "") -> None:
    for ch in text:
        assert ch in keep or (ch.isprintable() and ch not in "\u202e\u202c\u2028\u2029"), repr(ch)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_job_log(hostile: str) -> None:
    for text in (terminal(f"line\n{hostile}\nend"), styled_terminal(f"\x1b[1m{hostile}\x1b[0m")):
        _no_command_line(text)
        _no_escape_or_control(
            re.sub(r"\x1b\[[0-9;]*m", "", text) if text.startswith("\x1b[1m") else text, keep="\n\t"
        )
    one = one_line(hostile)
    assert "\n" not in one and "\r" not in one
    _no_command_line(one)
    _no_escape_or_control(one)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_json_through_the_terminal_still_parses_to_the_same(hostile: str) -> None:
    doc = {"message": hostile, "file": hostile}
    text = terminal(json.dumps(doc, indent=2, ensure_ascii=False))
    _no_command_line(text)
    assert json.loads(text) == doc


@pytest.mark.parametrize("hostile", HOSTILE)
def test_workflow_command_data_and_properties(hostile: str) -> None:
    line = (
        f"::error file={command_property(hostile)},title={command_property(hostile)}::"
        f"{command_data(hostile)}"
    )
    assert "\n" not in line and "\r" not in line and "##[" not in line
    props = line[len("::error ") :].split("::", 1)[0]
    assert props.count("::") == 0 and props.count(",") == 1  # no property of its own
    _no_escape_or_control(line)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_markdown_text(hostile: str) -> None:
    text = md_text(hostile)
    assert "\n" not in text and "\r" not in text
    assert "<" not in text and ">" not in text  # no HTML: no <!--, no <img>, no <details>
    assert not re.search(r"@\w", text)  # no mention pings
    assert not re.search(r"(?<!\\)[`\[\]!|]", text)  # markup characters escaped
    _no_escape_or_control(text, keep="\u200b")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_markdown_code_spans_cannot_be_closed(hostile: str) -> None:
    span = md_code(hostile)
    assert "\n" not in span
    fence = re.match(r"`+", span).group()
    inner = span[len(fence) : -len(fence)]
    assert span.endswith(fence) and len(fence) not in {len(r) for r in re.findall(r"`+", inner)}
    cell = md_code(hostile, in_table=True)
    assert not re.search(r"(?<!\\)\|", cell)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_github_output(hostile: str) -> None:
    entry = github_output("ref", hostile)
    if "\n" in hostile or "\r" in hostile or "\u2028" in hostile:
        head, *body, end = entry.rstrip("\n").split("\n")
        delimiter = head.removeprefix("ref<<")
        assert head.startswith("ref<<") and end == delimiter and delimiter not in hostile
    else:
        assert entry == f"ref={hostile}\n"
    with pytest.raises(ValueError):
        github_output("a\nb", "x")
