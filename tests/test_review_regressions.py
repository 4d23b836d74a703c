"""Regressions found in review: each input once crashed, mislocated its error, or passed
validation although the API would refuse what it sends."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.campaign.loader import load_text
from runner.cli import main


def validate(tmp_path: Path, text: str, **files: str) -> tuple[int, list[dict]]:
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path), "--format", "json"])
    assert "Traceback" not in result.output
    doc = json.loads(result.output)
    return result.exit_code, doc["files"][0]["errors"]


HEAD = 'version: 1\nid: r\nrecipients: [{to: "+15551230001", vars: {v: x}}]\n'


def test_lines_count_newlines_only_even_with_unicode_line_separators():
    d = load_text('name: "a\u2028b"\nother: 1\n', "f.yaml")
    assert d.locate(("other",)) == (2, 8)


def test_merged_keys_do_not_take_the_position_of_the_mappings_own_keys():
    d = load_text("base: &b\n  x: 1\n  y: 2\nm:\n  y: 3\n  <<: *b\n", "f.yaml")
    assert d.data["m"] == {"y": 3, "x": 1}
    assert d.locate(("m", "y")) == (5, 6)


@pytest.mark.parametrize("body,message", [
    ("steps:\n  - id: a\n    text: hi\n    from_number: not a phone\n", "not an E.164"),
    ("steps:\n  - id: a\n    text: hi\n  - id: b\n    text: again\n    from_number: \"+15550000000\"\n"
     "    reply_to: {step: a}\n", "different number"),
    ("revision: " + "9" * 5000 + "\nsteps:\n  - id: a\n    text: hi\n", "cannot read this value"),
    ("schedule: {timezone: America, window: {start: \"09:00\", end: \"17:00\"}}\n"
     "steps:\n  - id: a\n    text: hi\n", "unknown time zone"),
    ("steps:\n  - id: a\n    text: hi\n  - id: b\n    delay: 99999999d\n    text: x\n", "at most a year"),
    ("send: {rate_per_second: .inf}\nsteps:\n  - id: a\n    text: hi\n", "is not a rate"),
    ("steps:\n  - id: a\n    parts: [{text: \"{{ 'x' * 20000 }}\"}]\n", "over the 10,000 limit"),
    ("steps:\n  - id: a\n    text: hi\n  - id: b\n    text: hi\n    reply_to: {message_id: \"{{ v[:0] }}\"}\n",
     "empty message_id"),
])
def test_refused_with_a_located_error(tmp_path, body, message):
    code, errors = validate(tmp_path, HEAD + body)
    assert code == 1
    assert any(message in e["message"] for e in errors), errors
    assert all(e.get("line") for e in errors)


def test_a_tracking_url_with_a_url_in_its_query_is_one_url(tmp_path):
    code, errors = validate(tmp_path, HEAD + (
        "steps:\n  - id: a\n    text: \"https://t.example.com/r?to=https://shop.example.com/a\"\n"
        "    link_preview: {title: Shop}\n"))
    assert code == 0, errors


def test_a_url_only_text_is_sent_trimmed(tmp_path):
    (tmp_path / "c.yaml").write_text(HEAD + (
        "steps:\n  - id: a\n    parts:\n      - text: \"https://shop.example.com/a \"\n"
        "        link_preview: {title: A}\n      - text: \"https://shop.example.com/b\\n\"\n"))
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    parts = json.loads(out.read_text())["body"]["parts"]
    assert [p["text"] for p in parts] == ["https://shop.example.com/a", "https://shop.example.com/b"]


def test_jsonl_with_a_huge_number_or_deep_nesting_is_a_located_error(tmp_path):
    code, errors = validate(
        tmp_path, 'version: 1\nid: r\nrecipients: {file: r.jsonl}\nsteps:\n  - id: a\n    text: hi\n',
        **{"r.jsonl": '{"to": "+15551230001"}\n{"to": "+15551230002", "n": ' + "9" * 5000 + "}\n"
           + '{"to": "+15551230003", "n": ' + "[" * 100000 + "]" * 100000 + "}\n"})
    assert code == 1
    assert sorted(e["line"] for e in errors) == [2, 3]


def test_previews_mask_a_recipient_printed_by_a_template(tmp_path):
    (tmp_path / "c.yaml").write_text(HEAD + "steps:\n  - id: a\n    text: \"Your number {{ recipient }}\"\n")
    masked = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--format", "markdown"])
    assert "+15551230001" not in masked.output and "+1555•••0001" in masked.output
    shown = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--show-recipients"])
    assert "Your number +15551230001" in shown.output


def test_plan_out_follows_a_symlink_instead_of_replacing_it(tmp_path):
    (tmp_path / "c.yaml").write_text(HEAD + "steps:\n  - id: a\n    text: hi\n")
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--out", str(link)])
    assert result.exit_code == 0
    assert link.is_symlink() and json.loads(target.read_text())["step"] == "a"
