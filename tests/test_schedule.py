"""Schedules with a controlled clock: windows (edges, midnight, DST), zones, delays, the
campaign period, expiry, next-due times; located validation errors; `plan --at` counts.

No test sleeps: every rule is a pure function of `now`.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.campaign.schedule import Schedule, ScheduleError, parse_schedule, zone
from runner.cli import main
from runner.states import Wait
from runner.window import Window

NY = zone("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in `tz`, as an aware UTC instant."""
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)


def windowed(start: str, end: str, days: list[str] | None = None, **extra) -> Schedule:
    w: dict = {"start": start, "end": end}
    if days is not None:
        w["days"] = days
    return parse_schedule({"timezone": "America/New_York", "window": w, **extra})


def first_due_by_scan(
    s: Schedule,
    now: datetime,
    tz,
    *,
    step: timedelta = timedelta(minutes=1),
    limit: int = 3 * 24 * 60,
) -> datetime | None:
    """The first instant >= now at which the message is due, found by brute force."""
    t = now
    for _ in range(limit):
        if s.state(t, tz)[0] == Wait.DUE:
            return t
        t += step
    return None


# -- windows --------------------------------------------------------------------------------


def test_window_start_is_inclusive_and_end_exclusive():
    s = windowed("09:00", "17:00")
    # 2026-06-01 is a Monday; New York is on EDT (UTC-4).
    assert s.state(local(NY, 2026, 6, 1, 8, 59, 59), NY) == (Wait.WINDOW, utc(2026, 6, 1, 13, 0))
    assert s.state(local(NY, 2026, 6, 1, 9, 0), NY) == (Wait.DUE, None)
    assert s.state(local(NY, 2026, 6, 1, 16, 59, 59), NY) == (Wait.DUE, None)
    # At 17:00 the window is closed: next due is tomorrow's opening.
    assert s.state(local(NY, 2026, 6, 1, 17, 0), NY) == (Wait.WINDOW, utc(2026, 6, 2, 13, 0))


def test_days_filter_skips_to_the_next_allowed_day():
    s = windowed("09:00", "17:00", ["mon", "tue", "wed", "thu", "fri"])
    # Friday 17:30 -> Monday 09:00 (2026-06-05 is a Friday).
    assert s.state(local(NY, 2026, 6, 5, 17, 30), NY) == (Wait.WINDOW, local(NY, 2026, 6, 8, 9, 0))
    # Saturday noon is inside the hours but not on an allowed day.
    assert s.state(local(NY, 2026, 6, 6, 12, 0), NY)[0] == Wait.WINDOW


def test_window_crossing_midnight_belongs_to_the_day_it_opened():
    s = windowed("20:00", "01:00", ["fri"])  # Friday 8pm to Saturday 1am
    assert s.window.crosses_midnight
    fri, sat = (2026, 6, 5), (2026, 6, 6)
    assert s.state(local(NY, *fri, 20, 0), NY) == (Wait.DUE, None)
    assert s.state(local(NY, *sat, 0, 30), NY) == (Wait.DUE, None)  # opened on Friday
    assert s.state(local(NY, *sat, 1, 0), NY)[0] == Wait.WINDOW  # end exclusive
    # Friday 00:30 belongs to Thursday's window, which the days filter excludes.
    assert s.state(local(NY, *fri, 0, 30), NY) == (Wait.WINDOW, local(NY, *fri, 20, 0))
    # Saturday evening opens no window: the next one is the following Friday.
    assert s.state(local(NY, *sat, 20, 30), NY) == (Wait.WINDOW, local(NY, 2026, 6, 12, 20, 0))


def test_window_crossing_midnight_every_day():
    s = windowed("22:00", "06:00")
    assert s.state(local(NY, 2026, 6, 1, 21, 59), NY) == (Wait.WINDOW, local(NY, 2026, 6, 1, 22, 0))
    assert s.state(local(NY, 2026, 6, 2, 5, 59), NY) == (Wait.DUE, None)
    assert s.state(local(NY, 2026, 6, 2, 6, 0), NY) == (Wait.WINDOW, local(NY, 2026, 6, 2, 22, 0))


def test_window_hours_follow_the_dst_offset():
    s = windowed("09:00", "17:00")
    # 09:00 is 14:00Z on EST (before 2026-03-08) and 13:00Z on EDT (after).
    assert s.state(utc(2026, 3, 7, 13, 30), NY) == (Wait.WINDOW, utc(2026, 3, 7, 14, 0))
    assert s.state(utc(2026, 3, 8, 13, 30), NY) == (Wait.DUE, None)
    assert s.state(utc(2026, 11, 1, 13, 30), NY) == (Wait.WINDOW, utc(2026, 11, 1, 14, 0))


def test_spring_forward_window_start_that_does_not_exist():
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT; 02:30 never happens.
    s = windowed("02:30", "04:00")
    before = local(NY, 2026, 3, 8, 1, 0)  # 06:00Z
    # The first instant whose local time is inside the window is 03:00 EDT.
    assert s.state(utc(2026, 3, 8, 7, 0), NY) == (Wait.DUE, None)
    assert first_due_by_scan(s, before, NY) == utc(2026, 3, 8, 7, 0)
    assert s.state(before, NY) == (Wait.WINDOW, utc(2026, 3, 8, 7, 0))


def test_spring_forward_window_is_open_on_that_day_and_closes_at_its_end():
    s = windowed("02:30", "04:00")
    assert s.state(utc(2026, 3, 8, 7, 45), NY) == (Wait.DUE, None)  # 03:45 EDT
    assert s.state(utc(2026, 3, 8, 8, 0), NY)[0] == Wait.WINDOW  # 04:00 EDT
    # The next day the window opens at 02:30 EDT as usual.
    assert s.state(utc(2026, 3, 8, 8, 0), NY)[1] == local(NY, 2026, 3, 9, 2, 30)


def test_fall_back_window_opens_at_the_first_0130():
    # 2026-11-01: 01:00-02:00 happens twice in New York (EDT, then EST).
    s = windowed("01:30", "03:00")
    first_0130 = local(NY, 2026, 11, 1, 1, 30, fold=0)
    assert first_0130 == utc(2026, 11, 1, 5, 30)
    assert s.state(utc(2026, 11, 1, 4, 0), NY) == (Wait.WINDOW, first_0130)
    assert s.state(first_0130, NY) == (Wait.DUE, None)
    assert s.state(local(NY, 2026, 11, 1, 1, 45, fold=1), NY) == (Wait.DUE, None)  # 01:45 EST
    assert s.state(local(NY, 2026, 11, 1, 2, 59), NY) == (Wait.DUE, None)
    assert s.state(local(NY, 2026, 11, 1, 3, 0), NY)[0] == Wait.WINDOW


def test_fall_back_next_due_is_the_second_0130_when_between_the_two():
    s = windowed("01:30", "03:00")
    between = local(NY, 2026, 11, 1, 1, 15, fold=1)  # 06:15Z: the clock shows 01:15 again
    # Local time rule: 01:15 is outside a 01:30-03:00 window, whichever pass of the hour it is.
    assert s.state(between, NY)[0] == Wait.WINDOW
    assert first_due_by_scan(s, between, NY) == utc(2026, 11, 1, 6, 30)
    assert s.state(between, NY)[1] == utc(2026, 11, 1, 6, 30)


@pytest.mark.parametrize(
    "start,end,days",
    [
        ("09:00", "17:00", None),
        ("20:00", "01:00", ["fri", "sat"]),
        ("00:00", "23:59", ["sun"]),
        ("23:00", "00:30", None),
    ],
)
@pytest.mark.parametrize("tzname", ["America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_next_due_is_the_first_due_instant_on_ordinary_days(start, end, days, tzname):
    """Away from DST changes, the reported next-due time is exactly the first due minute."""
    tz = zone(tzname)
    s = windowed(start, end, days)
    for now in (utc(2026, 6, 3, 0, 7), utc(2026, 6, 4, 15, 33), utc(2026, 6, 6, 22, 1)):
        state, when = s.state(now, tz)
        scanned = first_due_by_scan(s, now, tz, limit=9 * 24 * 60)
        if state == Wait.DUE:
            assert scanned == now and when is None
        else:
            assert state == Wait.WINDOW
            # `when` may fall between scan minutes (now has odd minutes); it is never later.
            assert when is not None and when <= scanned < when + timedelta(minutes=1)
            assert s.state(when, tz) == (Wait.DUE, None)
            assert s.state(when - timedelta(seconds=1), tz)[0] == Wait.WINDOW


# -- zones ----------------------------------------------------------------------------------


def test_recipient_zone_overrides_the_default():
    s = parse_schedule(
        {
            "timezone": "America/New_York",
            "timezone_var": "tz",
            "window": {"start": "09:00", "end": "17:00"},
        }
    )
    tokyo = s.zone_for({"tz": "Asia/Tokyo"})
    assert tokyo.key == "Asia/Tokyo"
    assert s.zone_for({"tz": ""}).key == "America/New_York"
    assert s.zone_for({}).key == "America/New_York"
    now = utc(2026, 6, 1, 14, 0)  # 10:00 in New York, 23:00 in Tokyo
    assert s.state(now, s.zone_for({})) == (Wait.DUE, None)
    assert s.state(now, tokyo) == (Wait.WINDOW, utc(2026, 6, 2, 0, 0))  # 09:00 JST
    with pytest.raises(ScheduleError, match="unknown time zone"):
        s.zone_for({"tz": "Mars/Olympus"})


def test_no_zone_at_all_means_utc():
    s = parse_schedule({"not_before": "2026-06-01T00:00:00Z"})
    assert s.zone_for({"tz": "Asia/Tokyo"}).key == "UTC"  # no timezone_var: the variable is ignored


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "../etc/passwd", "/usr/share/zoneinfo/UTC", "America/New York"]
)
def test_unknown_or_path_zones_are_refused(name):
    with pytest.raises(ScheduleError):
        zone(name)


# -- delays and order -----------------------------------------------------------------------


def test_delay_counts_from_the_previous_steps_acceptance():
    s = parse_schedule({"not_before": "2026-01-01T00:00:00Z"})
    accepted = utc(2026, 6, 1, 12, 0).timestamp()
    kw = {"delay": 7200, "previous_accepted": accepted, "has_previous": True}
    assert s.state(utc(2026, 6, 1, 13, 59, 59), UTC, **kw) == (Wait.DELAY, utc(2026, 6, 1, 14, 0))
    assert s.state(utc(2026, 6, 1, 14, 0), UTC, **kw) == (Wait.DUE, None)


def test_delay_waits_for_the_previous_step_to_be_accepted():
    s = parse_schedule({"not_before": "2026-01-01T00:00:00Z"})
    assert s.state(utc(2026, 6, 1), UTC, delay=60, previous_accepted=None, has_previous=True) == (
        Wait.PREVIOUS,
        None,
    )


def test_delay_ending_outside_the_window_waits_for_the_next_opening():
    s = windowed("09:00", "17:00")
    accepted = local(NY, 2026, 6, 1, 16, 0).timestamp()
    state, when = s.state(
        local(NY, 2026, 6, 1, 16, 30), NY, delay=7200, previous_accepted=accepted, has_previous=True
    )
    assert (state, when) == (Wait.DELAY, local(NY, 2026, 6, 2, 9, 0))
    # A delay ending inside the window is due at its end.
    state, when = s.state(
        local(NY, 2026, 6, 1, 10, 0),
        NY,
        delay=3600,
        previous_accepted=local(NY, 2026, 6, 1, 9, 30).timestamp(),
        has_previous=True,
    )
    assert (state, when) == (Wait.DELAY, local(NY, 2026, 6, 1, 10, 30))


# -- campaign period ------------------------------------------------------------------------


def test_not_before_is_inclusive_and_not_after_exclusive():
    s = parse_schedule({"not_before": "2026-12-01T14:00:00Z", "not_after": "2026-12-03T00:00:00Z"})
    assert s.state(utc(2026, 12, 1, 13, 59), UTC) == (Wait.START, utc(2026, 12, 1, 14, 0))
    assert s.state(utc(2026, 12, 1, 14, 0), UTC) == (Wait.DUE, None)
    assert s.state(utc(2026, 12, 2, 23, 59, 59), UTC) == (Wait.DUE, None)
    assert s.state(utc(2026, 12, 3, 0, 0), UTC) == (Wait.EXPIRED, None)


def test_not_before_with_an_offset_is_an_instant():
    s = parse_schedule({"not_before": "2026-12-01T09:00:00-05:00"})
    assert s.not_before == utc(2026, 12, 1, 14, 0)


def test_not_before_then_window():
    s = windowed("09:00", "17:00", not_before="2026-06-01T22:00:00Z")  # 18:00 EDT
    assert s.state(utc(2026, 6, 1, 12, 0), NY) == (Wait.START, local(NY, 2026, 6, 2, 9, 0))


def test_message_due_only_after_not_after_is_expired():
    s = windowed("09:00", "17:00", not_after="2026-06-01T22:00:00Z")
    # After 17:00 local on the last day, the next opening is past not_after.
    assert s.state(local(NY, 2026, 6, 1, 17, 30), NY) == (Wait.EXPIRED, None)
    accepted = local(NY, 2026, 6, 1, 16, 0).timestamp()
    assert s.state(
        local(NY, 2026, 6, 1, 16, 30),
        NY,
        delay=7 * 3600,
        previous_accepted=accepted,
        has_previous=True,
    ) == (Wait.EXPIRED, None)
    assert s.state(local(NY, 2026, 6, 1, 16, 30), NY) == (Wait.DUE, None)


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,key",
    [
        ({"timezone": "UTC", "window": {"start": 570, "end": "17:00"}}, ("window", "start")),
        ({"timezone": "UTC", "window": {"start": "09:00", "end": "25:00"}}, ("window", "end")),
        ({"timezone": "UTC", "window": {"start": "9", "end": "17:00"}}, ("window", "start")),
        ({"timezone": "UTC", "window": {"start": "09:00", "end": "09:00"}}, ("window",)),
        (
            {
                "timezone": "UTC",
                "window": {"start": "09:00", "end": "17:00", "days": ["mon", "fir"]},
            },
            ("window", "days"),
        ),
        ({"window": {"start": "09:00", "end": "17:00"}}, ("window",)),
        ({"not_before": "2026-12-01T14:00:00"}, ("not_before",)),
        ({"not_after": "next week"}, ("not_after",)),
        (
            {"not_before": "2026-12-02T00:00:00Z", "not_after": "2026-12-01T00:00:00Z"},
            ("not_after",),
        ),
    ],
)
def test_parse_schedule_names_the_bad_key(spec, key):
    with pytest.raises(ScheduleError) as info:
        parse_schedule(spec)
    assert info.value.key == key
    assert info.value.hint


def test_unquoted_time_read_as_a_number_says_to_quote_it():
    with pytest.raises(ScheduleError, match="number 570") as info:
        parse_schedule({"timezone": "UTC", "window": {"start": 570, "end": "17:00"}})
    assert '"09:30"' in info.value.hint


def test_window_object_shape():
    s = windowed("09:00", "17:00", ["Mon", "fri"])
    assert s.window == Window(time(9, 0), time(17, 0), frozenset({0, 4}))


# -- validate: located errors through the CLI -----------------------------------------------

BASE = """\
version: 1
id: sched-test
recipients:
  - to: "+15551230001"
    vars: {{tz: {tz}}}
  - to: "+15551230002"
schedule:
{schedule}
steps:
  - id: first
    text: hi
  - id: second
    delay: {delay}
    text: again
"""


def campaign(tmp_path: Path, schedule: str, *, tz: str = "Asia/Tokyo", delay: str = "2h") -> Path:
    body = textwrap.indent(textwrap.dedent(schedule).strip("\n"), "  ")
    path = tmp_path / "c.yaml"
    path.write_text(BASE.format(schedule=body, tz=tz, delay=delay), encoding="utf-8")
    return path


def validate(path: Path) -> list[dict]:
    result = CliRunner().invoke(main, ["validate", "--format", "json", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    doc = json.loads(result.stdout)
    assert result.exit_code == (0 if doc["valid"] else 1)
    return doc["files"][0]["errors"]


def one_error(errors: list[dict]) -> dict:
    assert len(errors) == 1, errors
    return errors[0]


def test_validate_accepts_a_full_schedule(tmp_path):
    path = campaign(
        tmp_path,
        """
        timezone: America/New_York
        timezone_var: tz
        window: {start: "20:00", end: "01:00", days: [fri, sat]}
        not_before: "2026-12-01T14:00:00Z"
        not_after: 2026-12-03T00:00:00Z
    """,
    )
    assert validate(path) == []


def test_validate_unknown_default_zone_is_located(tmp_path):
    path = campaign(
        tmp_path,
        """
        timezone_var: tz
        timezone: America/New_Yrok
    """,
    )
    err = one_error(validate(path))
    assert "unknown time zone" in err["message"]
    assert (err["line"], err["path"]) == (9, "schedule.timezone")


def test_validate_unknown_recipient_zone_is_located_at_the_recipient(tmp_path):
    path = campaign(tmp_path, "timezone: America/New_York\ntimezone_var: tz\n", tz="Mars/Olympus")
    err = one_error(validate(path))
    assert "Mars/Olympus" in err["message"] and err["line"] == 4


@pytest.mark.parametrize(
    "window,line,path,needle",
    [
        ('{start: "25:00", end: "17:00"}', 9, "schedule.window.start", "25:00"),
        ('{start: 9:30, end: "17:00"}', 9, "schedule.window.start", "number"),
        (
            '{start: "09:00", end: "17:00", days: [mon, tuesday]}',
            9,
            "schedule.window.days[1]",
            "tue",
        ),
        ('{start: "09:00", end: "09:00"}', 9, "schedule.window", "same time"),
    ],
)
def test_validate_bad_window_is_located(tmp_path, window, line, path, needle):
    err = one_error(validate(campaign(tmp_path, f"timezone: UTC\nwindow: {window}\n")))
    assert (err["line"], err["path"]) == (line, path)
    assert needle in err["message"] + (err.get("hint") or "")


def test_validate_unquoted_time_hint_says_quote(tmp_path):
    err = one_error(
        validate(campaign(tmp_path, "timezone: UTC\nwindow:\n  start: 9:30\n  end: '17:00'\n"))
    )
    assert (err["line"], err["path"]) == (10, "schedule.window.start")
    assert "quote" in err["hint"].lower()


def test_validate_missing_offset_is_located(tmp_path):
    err = one_error(
        validate(campaign(tmp_path, 'timezone: UTC\nnot_before: "2026-12-01T14:00:00"\n'))
    )
    assert (err["line"], err["path"]) == (9, "schedule.not_before")
    assert "offset" in err["hint"]


def test_validate_not_after_before_not_before_is_located(tmp_path):
    err = one_error(
        validate(
            campaign(
                tmp_path,
                """
        not_before: "2026-12-03T00:00:00Z"
        not_after: "2026-12-01T00:00:00Z"
    """,
            )
        )
    )
    assert (err["line"], err["path"]) == (9, "schedule.not_after")


@pytest.mark.parametrize("delay", ["2x", "1.5h", "-2h", "two days", "2 weeks"])
def test_validate_bad_duration_is_located(tmp_path, delay):
    err = one_error(validate(campaign(tmp_path, "timezone: UTC\n", delay=f'"{delay}"')))
    assert (err["line"], err["path"]) == (13, "steps[1].delay")


@pytest.mark.parametrize("delay", ["45s", "30m", "2h", "2d"])
def test_validate_good_durations(tmp_path, delay):
    assert validate(campaign(tmp_path, "timezone: UTC\n", delay=delay)) == []


def test_validate_window_without_zone_is_an_error(tmp_path):
    err = one_error(validate(campaign(tmp_path, 'window: {start: "09:00", end: "17:00"}\n')))
    assert err["line"] == 8 and err["path"].startswith("schedule")


# -- plan --at ------------------------------------------------------------------------------

PLAN_AT = """\
version: 1
id: plan-at
recipients:
  - to: "+15551230001"
    vars: {{tz: America/New_York}}
  - to: "+15551230002"
  - to: "+15551230003"
    vars: {{tz: Asia/Tokyo}}
schedule:
  timezone: America/Chicago
  timezone_var: tz
  window: {{start: "09:00", end: "17:00"}}
{extra}
steps:
  - id: a
    text: hi
  - id: b
    delay: 1h
    text: ["one", "two"]
"""


def plan_at(tmp_path: Path, at: str, extra: str = "") -> dict:
    path = tmp_path / "p.yaml"
    path.write_text(PLAN_AT.format(extra=extra), encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["plan", str(path), "--at", at, "--format", "json", "--state", str(tmp_path / "state")],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["schedule"]


def test_plan_at_counts_messages_by_state(tmp_path):
    # Monday 14:00Z: 10:00 in New York, 09:00 in Chicago (start inclusive), 23:00 in Tokyo.
    sched = plan_at(tmp_path, "2026-06-01T14:00:00Z")
    # Step a is due for two; their b waits an hour after a (assumed accepted now); Tokyo's a
    # waits for its window and its b for a.
    assert sched["messages"] == {Wait.DUE: 2, Wait.DELAY: 4, Wait.WINDOW: 1, Wait.PREVIOUS: 2}
    assert sched["waiting_for_window_by_zone"] == {"Asia/Tokyo": 1}
    assert sched["next_due"] == "2026-06-01T15:00:00Z"
    assert sched["at"] == "2026-06-01T14:00:00Z"


def test_plan_at_counts_expired_messages(tmp_path):
    sched = plan_at(tmp_path, "2026-06-01T14:00:00Z", '  not_after: "2026-06-01T15:00:00Z"')
    # b falls due exactly at not_after: expired, as is all of Tokyo (its window opens later).
    assert sched["messages"] == {Wait.DUE: 2, Wait.EXPIRED: 7}
    assert sched["next_due"] is None


def test_plan_at_before_the_campaign_starts(tmp_path):
    sched = plan_at(tmp_path, "2026-06-01T14:00:00Z", '  not_before: "2026-06-02T16:00:00Z"')
    assert sched["messages"][Wait.START] == 3  # every a: the campaign has not started
    assert sched["messages"][Wait.PREVIOUS] == 6
    assert sched["next_due"] == "2026-06-02T16:00:00Z"


def test_plan_at_rejects_a_time_without_offset(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PLAN_AT.format(extra=""), encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(path), "--at", "2026-06-01T14:00:00"])
    assert result.exit_code == 1
    assert "offset" in result.output and not isinstance(result.exception, Exception)
