"""The team policy's default_region reads the numbers every campaign writes without +, unless
the campaign names its own (issue 26 item 1)."""

from __future__ import annotations

from pathlib import Path

from runner.campaign.load import load_campaign
from runner.planning.planner import iter_plan


def _campaign(folder: Path, recipients: str) -> Path:
    (folder / "people.csv").write_text("phone\n(415) 555-2671\n")
    path = folder / "c.yaml"
    path.write_text(
        f"version: 1\nid: region\nrecipients: {recipients}\nsteps:\n  - id: hello\n    text: Hi\n"
    )
    return path


def test_the_policy_region_applies_and_the_campaign_region_wins(tmp_path: Path):
    (tmp_path / "runner.yaml").write_text("default_region: US\n")
    path = _campaign(tmp_path, "{file: people.csv, to: phone}")
    policy = tmp_path / "runner.yaml"
    [req] = list(iter_plan(load_campaign(path, policy=policy)))
    assert req.recipient == "+14155552671"
    path = _campaign(tmp_path, "{file: people.csv, to: phone, default_region: CA}")
    assert load_campaign(path, policy=policy).source.region == "CA"
