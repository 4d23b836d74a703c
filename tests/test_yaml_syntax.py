"""YAML syntax errors in plain words, located where the problem starts, the parser's own text
kept after the sentence."""

from __future__ import annotations

import pytest

from runner.campaign.loader import load_text
from runner.errors import CampaignError


def error(text: str):
    with pytest.raises(CampaignError) as info:
        load_text(text, "c.yaml")
    [p] = info.value.problems
    assert p.message.startswith("YAML syntax error: ") and p.layer == "yaml"
    return p


def test_an_unclosed_quote_points_at_the_line_where_it_opens():
    p = error('version: 1\nid: "abc\nsteps:\n  - id: a\n    text: hi\n')
    assert (p.line, p.column) == (2, 5)
    assert (
        "this quote is never closed" in p.message and "while scanning a quoted scalar" in p.message
    )
    assert "close the quote" in (p.hint or "")


def test_a_quote_closed_lines_later_points_at_where_it_opens():
    p = error('steps:\n  - id: a\n    text: "hi\n  - id: b\n    text: "yo"\n')
    assert p.line == 3 and "not closed on its line" in p.message
    assert "the parser says:" in p.message


def test_a_tab_says_tabs_cannot_indent_yaml():
    p = error("version: 1\nsteps:\n  - id: a\n\ttext: hi\n")
    assert p.line == 4 and "tabs cannot indent YAML" in p.message and "spaces" in (p.hint or "")
    assert "'\\t'" in p.message  # the parser's words


@pytest.mark.parametrize(
    "text,key,line,more",
    [
        ("steps:\n  - id: a\n    text: hi\n     when: x\n", "when", 4, "more"),
        ("steps:\n  - id: a\n    text: hi\n   when: x\n", "when", 4, "less"),
        ("version: 1\n id: x\n", "id", 2, "more"),
        ("sender:\n  from_number: x\n    share_contact: true\n", "share_contact", 3, "more"),
    ],
)
def test_bad_indentation_names_the_key_out_of_line(text: str, key: str, line: int, more: str):
    p = error(text)
    assert (
        p.line == line
        and f"the key '{key}' is out of line" in p.message
        and f"{more} than" in p.message
    )
    assert key in (p.hint or "")


def test_a_colon_inside_a_plain_value():
    p = error("steps:\n  - id: a\n    text: Note: hi\n")
    assert p.line == 3 and "': ' inside a plain value" in p.message and "quote" in (p.hint or "")


def test_other_syntax_errors_keep_the_parsers_words():
    p = error("steps: [a, b\n")
    assert "expected ',' or ']'" in p.message
