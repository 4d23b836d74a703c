"""`campaign validate` on inputs that once crashed it, mislocated their error, or passed
although the API would refuse what they send: each is a located error (or, for the one valid
input, no error)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import main


def validate(tmp_path: Path, text: str, **files: str) -> tuple[int, list[dict]]:
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path), "--format", "json"])
    # CliRunner catches what escapes the command (it never prints a traceback): check that.
    assert not isinstance(result.exception, Exception), result.exc_info
    doc = json.loads(result.output)
    return result.exit_code, doc["files"][0]["errors"]


HEAD = 'version: 1\nid: r\nrecipients: [{to: "+15551230001", vars: {v: x}}]\n'


@pytest.mark.parametrize(
    "body,message",
    [
        ("steps:\n  - id: a\n    text: hi\n    from_number: not a phone\n", "not an E.164"),
        (
            'steps:\n  - id: a\n    text: hi\n  - id: b\n    text: again\n    from_number: "+15550000000"\n'
            "    reply_to: {step: a}\n",
            "different number",
        ),
        (
            "revision: " + "9" * 5000 + "\nsteps:\n  - id: a\n    text: hi\n",
            "cannot read this value",
        ),
        (
            'schedule: {timezone: America, window: {start: "09:00", end: "17:00"}}\n'
            "steps:\n  - id: a\n    text: hi\n",
            "unknown time zone",
        ),
        (
            "steps:\n  - id: a\n    text: hi\n  - id: b\n    delay: 99999999d\n    text: x\n",
            "at most a year",
        ),
        ("send: {rate_per_second: .inf}\nsteps:\n  - id: a\n    text: hi\n", "is not a rate"),
        (
            "steps:\n  - id: a\n    parts: [{text: \"{{ 'x' * 20000 }}\"}]\n",
            "over the 10,000 limit",
        ),
        (
            'steps:\n  - id: a\n    text: hi\n  - id: b\n    text: hi\n    reply_to: {message_id: "{{ v[:0] }}"}\n',
            "empty message_id",
        ),
    ],
)
def test_refused_with_a_located_error(tmp_path, body, message):
    code, errors = validate(tmp_path, HEAD + body)
    assert code == 1
    assert any(message in e["message"] for e in errors), errors
    assert all(e.get("line") for e in errors)


def test_a_tracking_url_with_a_url_in_its_query_is_one_url(tmp_path):
    code, errors = validate(
        tmp_path,
        HEAD
        + (
            'steps:\n  - id: a\n    text: "https://t.example.com/r?to=https://shop.example.com/a"\n'
            "    link_preview: {title: Shop}\n"
        ),
    )
    assert code == 0, errors


def test_jsonl_with_a_huge_number_or_deep_nesting_is_a_located_error(tmp_path):
    code, errors = validate(
        tmp_path,
        "version: 1\nid: r\nrecipients: {file: r.jsonl}\nsteps:\n  - id: a\n    text: hi\n",
        **{
            "r.jsonl": '{"to": "+15551230001"}\n{"to": "+15551230002", "n": '
            + "9" * 5000
            + "}\n"
            + '{"to": "+15551230003", "n": '
            + "[" * 100000
            + "]" * 100000
            + "}\n"
        },
    )
    assert code == 1
    assert sorted(e["line"] for e in errors) == [2, 3]
