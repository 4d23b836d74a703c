"""First-day papercuts of issue 25: dates as people write them, window days in any case."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from jinja2.exceptions import TemplateRuntimeError

from runner.campaign.datefilter import datetime_filter
from runner.campaign.load import load_campaign
from runner.planning.planner import plan_campaign


def test_the_datetime_filter_formats_dates_as_people_write_them():
    at = datetime(2024, 3, 6, 9, 30)
    assert datetime_filter(at, "%A %-d %B, %H:%M") == "Wednesday 6 March, 09:30"
    assert datetime_filter("2024-03-06T09:30:00") == "6 March 2024, 09:30"  # a CSV cell
    assert datetime_filter("2024-03-06 09:30") == "6 March 2024, 09:30"
    assert datetime_filter(date(2024, 3, 6)) == "6 March 2024"
    assert datetime_filter("2024-03-06", "%d/%m/%Y") == "06/03/2024"
    with pytest.raises(TemplateRuntimeError, match="not a date"):
        datetime_filter("next tuesday")
    with pytest.raises(TemplateRuntimeError, match="at most"):
        datetime_filter(at, "%Y" * 500)


def test_a_datetime_renders_through_the_filter_in_a_campaign(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        'version: 1\nid: dates\nrecipients:\n  - to: "+12128675301"\n'
        "    vars: {at: 2024-03-06T09:30:00}\nsteps:\n  - id: a\n"
        "    text: \"See you {{ at | datetime('%A at %H:%M') }}\"\n",
        encoding="utf-8",
    )
    [req], _ = plan_campaign(load_campaign(path))
    assert req.body["text"] == "See you Wednesday at 09:30"


@pytest.mark.parametrize("days", ["[Mon, Tue]", "[MON, tue]", "[mon, Fri]"])
def test_window_days_in_any_case(tmp_path: Path, days: str):
    # `days: [Mon]` was refused though effects accept any case.
    path = tmp_path / "c.yaml"
    path.write_text(
        'version: 1\nid: days\nrecipients: [{to: "+12128675301"}]\nschedule:\n'
        "  timezone: America/New_York\n"
        f'  window: {{start: "09:00", end: "17:00", days: {days}}}\n'
        "steps:\n  - id: a\n    text: Hi\n",
        encoding="utf-8",
    )
    campaign = load_campaign(path)
    assert campaign.schedule_rules is not None and campaign.schedule_rules.window is not None
    assert 0 in campaign.schedule_rules.window.days
