"""A from_number pool: each chat keeps one number on every run, step and process (a reply must
come from the number that sent its parent), spread evenly, and shown by `plan`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.campaign.load import load_campaign
from runner.cli import main
from runner.planning.render import Renderer

POOL = ["+15551234567", "+15551234568", "+15551234569"]

CAMPAIGN = """\
version: 1
id: pool-test
sender:
  from_number: ["+15551234567", "+15551234568", "+15551234569"]
recipients:
  file: people.csv
steps:
  - id: hello
    text: "Hi {{ name }}"
  - id: link
    text: "https://shop.example.com/x"
    link_preview: {title: "X"}
  - id: follow
    text: "Still there, {{ name }}?"
    reply_to: {step: link}
"""


def write_campaign(tmp_path: Path, rows: list[str]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "people.csv").write_text(
        "to,name\n" + "".join(f"{r},N{i}\n" for i, r in enumerate(rows)), encoding="utf-8"
    )
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return path


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+1555{start + i:07d}" for i in range(n)]


def read_plan(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_same_number_for_a_chat_on_every_step(tmp_path):
    path = write_campaign(tmp_path, phones(60))
    out = tmp_path / "plan.jsonl"
    result = CliRunner().invoke(main, ["plan", str(path), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    by_chat: dict[str, set[str]] = {}
    for line in read_plan(out):
        by_chat.setdefault(line["recipient"], set()).add(line["body"]["from_number"])
    assert len(by_chat) == 60
    assert all(len(numbers) == 1 for numbers in by_chat.values())
    # Every number of the pool gets used and only those.
    assert set().union(*by_chat.values()) == set(POOL)


def test_assignment_does_not_depend_on_position_or_other_recipients(tmp_path):
    chats = phones(40)
    a = Renderer(load_campaign(write_campaign(tmp_path / "a", chats)))
    b = Renderer(load_campaign(write_campaign(tmp_path / "b", list(reversed(chats))[:25])))
    for chat in chats[15:]:
        assert a.from_number(chat) == b.from_number(chat)


def test_same_chat_written_differently_gets_the_same_number(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    body = CAMPAIGN.split("recipients:")[0]
    steps = "steps:\n  - id: hello\n    text: hi\n"
    a.write_text(
        body + 'recipients:\n  - to: ["+15551230002", "Bob@Example.com"]\n'
        '  - to: " Ada@Example.COM "\n' + steps,
        encoding="utf-8",
    )
    b.write_text(
        body + 'recipients:\n  - to: ["bob@example.com", "+15551230002"]\n'
        '  - to: "ada@example.com"\n' + steps,
        encoding="utf-8",
    )
    outs = []
    for path in (a, b):
        out = path.with_suffix(".jsonl")
        assert CliRunner().invoke(main, ["plan", str(path), "--out", str(out)]).exit_code == 0
        outs.append([(x["recipient"], x["body"]["from_number"]) for x in read_plan(out)])
    assert outs[0] == outs[1]


def test_same_numbers_in_separate_processes_with_different_hash_seeds(tmp_path):
    """Python's str hash is salted per process; the assignment must not use it."""
    path = write_campaign(tmp_path, phones(200) + ["ada@example.com"])
    outputs = []
    for seed in ("1", "987654"):
        out = tmp_path / f"plan-{seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env.pop("BLOOIO_API_KEY", None)
        proc = subprocess.run(
            [sys.executable, "-m", "runner", "plan", str(path), "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assigned = {
        x["recipient"]: x["body"]["from_number"] for x in read_plan(tmp_path / "plan-1.jsonl")
    }
    # And the same as this process computes (a third hash seed).
    renderer = Renderer(load_campaign(path))
    assert all(renderer.from_number(chat) == number for chat, number in assigned.items())


def test_even_spread_over_a_pool_of_three(tmp_path):
    renderer = Renderer(load_campaign(write_campaign(tmp_path, phones(3))))
    counts = Counter(renderer.from_number(chat) for chat in phones(10_000, start=2_000_000))
    assert set(counts) == set(POOL)
    for number in POOL:
        assert abs(counts[number] - 10_000 / 3) < 0.05 * 10_000 / 3, counts


def test_emails_spread_too(tmp_path):
    renderer = Renderer(load_campaign(write_campaign(tmp_path, phones(3))))
    counts = Counter(renderer.from_number(f"user{i}@example.com") for i in range(3_000))
    assert min(counts.values()) > 0.9 * 1_000, counts


def test_single_from_number_is_used_as_is(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        CAMPAIGN.replace(
            '["+15551234567", "+15551234568", "+15551234569"]', '"+15551234567"'
        ).replace("file: people.csv", "- to: '+15551230001'"),
        encoding="utf-8",
    )
    c = load_campaign(path)
    assert Renderer(c).from_number("+15551230001") == "+15551234567"
    assert Renderer(c).from_number("+15559999999") == "+15551234567"


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_plan_shows_the_assignment(tmp_path, fmt):
    path = write_campaign(tmp_path, phones(30))
    out = tmp_path / "plan.jsonl"
    result = CliRunner().invoke(main, ["plan", str(path), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = Counter(x["body"]["from_number"] for x in read_plan(out) if x["step"] == "hello")
    assert sum(expected.values()) == 30
    if fmt == "json":
        assert json.loads(result.stdout)["from_numbers"] == dict(expected)
    else:
        # One line per number with its chat count: "  +1555...  12" or "| +1555... | 12 |".
        rows = {}
        for line in result.stdout.splitlines():
            cells = line.replace("|", " ").split()
            if len(cells) == 2 and cells[0] in POOL:
                rows[cells[0]] = int(cells[1])
        assert rows == dict(expected), result.stdout


def test_preview_names_the_number_of_the_recipient(tmp_path):
    path = write_campaign(tmp_path, phones(5))
    renderer = Renderer(load_campaign(path))
    chat = phones(5)[3]
    result = CliRunner().invoke(main, ["preview", str(path), "--to", chat])
    assert result.exit_code == 0, result.output
    assert renderer.from_number(chat) in result.output
    others = set(POOL) - {renderer.from_number(chat)}
    assert not any(n in result.output for n in others)
