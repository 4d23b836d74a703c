"""What the planner's fast paths count, pinned: the SMS segments (`sms_segments` in the plan's
summary) of every body shape, tallied inline in batches; and the messages of recipients the law
cannot place, counted due without a look when only the law could hold anything."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from runner.campaign.load import load_campaign
from runner.law.segments import SegmentTally
from runner.planning.planner import plan_campaign
from runner.run import dry_run

CAMPAIGN = """\
version: 1
id: segments
recipients:
  - to: "+13055550123"
  - to: "+14155550123"
  - to: ada@example.com
steps:
  - id: one
    text: "Hi there"
  - id: many
    text:
      - "{{ 'x' * 200 }}"
      - "€ price"
  - id: parts
    parts:
      - text: "Your code"
      - url: "https://cdn.example.com/code.png"
  - id: curly
    text: "It’s here"
"""


@pytest.mark.parametrize("batch", [1, 2, 512])
def test_the_plan_counts_segments_of_every_body_shape_for_phones_only(
    tmp_path: Path, monkeypatch, batch
):
    monkeypatch.setattr(SegmentTally, "BATCH", batch)
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(CAMPAIGN), encoding="utf-8")
    _, planner = plan_campaign(load_campaign(path), previews=0)
    sms = planner.summary.to_dict()["sms_segments"]
    assert sms == {
        # "Hi there": one GSM-7 segment for each of the two phones; the email has none.
        "one": {"messages": 2, "segments": 2, "max_per_message": 1, "encoding": "GSM-7"},
        # 200 characters take two segments of 153; "€" is one extension character (2 septets).
        "many": {"messages": 4, "segments": 6, "max_per_message": 2, "encoding": "GSM-7"},
        "parts": {"messages": 2, "segments": 2, "max_per_message": 1, "encoding": "GSM-7"},
        "curly": {"messages": 2, "segments": 2, "max_per_message": 1, "encoding": "UCS-2"},
    }
    curly = planner.summary.steps["curly"].ucs2
    assert curly is not None and (curly.culprit, curly.position) == ("’", 3)


def test_unplaced_recipients_count_as_due_beside_those_the_law_holds(tmp_path: Path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent("""\
        version: 1
        id: law
        recipients:
          - to: "+13055550123"
          - to: "+15551230001"
          - to: "+15551230002"
        steps:
          - id: a
            text: "Hi"
          - id: b
            text: ["one", "two"]
        """),
        encoding="utf-8",
    )
    # 21:30 in Miami: past Florida's 20:00; the 555 numbers have no place, so nothing holds them.
    at = datetime(2026, 12, 8, 21, 30, tzinfo=ZoneInfo("America/New_York"))
    monkeypatch.setattr(dry_run, "parse_at", lambda text: at)
    outcome = dry_run.plan(path, out=tmp_path / "plan.jsonl", previews=0)
    assert outcome.summary.unplaced == 2
    # Step b waits for step a (its two texts are two messages).
    assert outcome.extra["schedule"]["messages"] == {"due": 6, "law": 1, "previous": 2}
