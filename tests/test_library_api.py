"""The library under the CLI: `import runner` is cheap, its names resolve, and its calls return
result objects and never print."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import runner
from runner import exitcodes

pytest_plugins = ["emulator_fixtures"]

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN = REPO / "campaigns" / "spring-sale.yaml"
EAGER = {"CampaignError", "Problem", "StoppedEarly", "__version__"}


def test_import_runner_loads_no_http_client_and_no_sqlite():
    code = (
        "import json, sys, runner; print(json.dumps(sorted(m for m in sys.modules if m in "
        "('httpx', 'sqlite3', 'jinja2', 'jsonschema') or m.startswith('runner.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["runner.errors", "runner.exitcodes", "runner.version"]


def test_every_public_name_is_listed_and_resolves_to_its_module():
    assert set(runner.__all__) == EAGER | set(runner._LAZY)
    for name, module in runner._LAZY.items():
        expected = importlib.import_module(module)
        if module != f"runner.{name}":  # runner.report is its (callable) package
            expected = getattr(expected, name)
        assert getattr(runner, name) is expected
    assert set(runner.__all__) <= set(dir(runner))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        runner.nope  # noqa: B018


def test_plan_returns_a_result_and_prints_nothing(capfd):
    outcome = runner.plan(CAMPAIGN)
    assert outcome.summary.requests > 0
    assert set(outcome.extra) <= {"schedule", "policy"}  # no journal given: nothing to annotate
    assert outcome.campaign.id == runner.load_campaign(CAMPAIGN).id
    assert capfd.readouterr() == ("", "")


def test_plan_of_an_invalid_campaign_raises_campaign_error(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("version: 1\nid: x\n")
    with pytest.raises(runner.CampaignError) as err:
        runner.plan(bad)
    assert err.value.exit_code == exitcodes.FAILED and err.value.problems


def test_send_then_track_returns_outcomes_and_prints_nothing(tmp_path, emulator, capfd):
    (tmp_path / "people.csv").write_text("phone\n+15553000001\n+15553000002\n+15553000003\n")
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        'version: 1\nid: lib\nsender: {from_number: "+15551234567"}\n'
        "recipients: {file: people.csv, to: phone}\n"
        'steps:\n  - id: hello\n    text: "Hi"\n'
    )
    outcome = runner.send(
        campaign,
        state_dir=tmp_path / "st",
        base_url=emulator.base_url,
        api_key=emulator.api_key,
        track=True,
        track_timeout=30,
    )
    assert outcome.exit_code == exitcodes.OK
    assert (outcome.result.stats.accepted, outcome.result.stop_reason) == (3, None)
    assert outcome.tracked is not None and outcome.tracked.stats.total == 3
    assert outcome.journal == tmp_path / "st" / "lib.sqlite" and outcome.journal.is_file()
    assert emulator.stats()["messages_accepted"] == 3
    again = runner.send(
        campaign, state_dir=tmp_path / "st", base_url=emulator.base_url, api_key=emulator.api_key
    )
    assert (again.exit_code, again.result.stats.already) == (exitcodes.OK, 3)
    assert emulator.stats()["messages_accepted"] == 3  # resumed: nothing sent twice
    assert capfd.readouterr() == ("", "")
