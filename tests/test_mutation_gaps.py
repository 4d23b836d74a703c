"""Behaviour mutation testing found unpinned in the pure modules (benchmarks/mutation_score.py):
windows that open and close off the hour, a not_after equal to not_before, the reasons a phone
number cannot be parsed, and the exact shape of the validation errors around them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from phonenumbers import NumberParseException
from test_schedule import campaign, one_error, validate

from runner.audience.phones import PhoneError, _parse_reason, normalize_phone
from runner.campaign.schedule import (
    ScheduleError,
    Timing,
    Window,
    parse_hhmm,
    parse_instant,
    parse_schedule,
)

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)


# -- the minute a window opens and closes -------------------------------------------------------

def test_a_window_opens_on_its_minute_not_its_hour():
    s = parse_schedule({"timezone": "America/New_York", "window": {"start": "09:30", "end": "17:45"}})
    assert s.state(ny(2026, 6, 1, 9, 29, 59), NY) == (Timing.WAIT_WINDOW, ny(2026, 6, 1, 9, 30))
    assert s.state(ny(2026, 6, 1, 9, 30), NY) == (Timing.DUE, None)
    assert s.state(ny(2026, 6, 1, 17, 44, 59), NY) == (Timing.DUE, None)
    assert s.state(ny(2026, 6, 1, 17, 45), NY) == (Timing.WAIT_WINDOW, ny(2026, 6, 2, 9, 30))


def test_a_window_crossing_midnight_opens_and_closes_on_its_minutes():
    w = Window(parse_hhmm("22:15", ()), parse_hhmm("00:05", ()), None)
    assert w.crosses_midnight
    local = datetime(2026, 6, 1, 22, 15, tzinfo=NY)
    assert w.opened_on(local) == local
    assert w.opened_on(datetime(2026, 6, 1, 22, 14, 59, tzinfo=NY)) is None
    assert w.opened_on(datetime(2026, 6, 2, 0, 4, 59, tzinfo=NY)) == local  # the day it opened
    assert w.opened_on(datetime(2026, 6, 2, 0, 5, tzinfo=NY)) is None
    # Asked at the opening itself, the next opening is now.
    assert w.next_open(local.astimezone(UTC), NY) == local.astimezone(UTC)


def test_a_window_ending_at_midnight_crosses_it():
    w = Window(parse_hhmm("20:00", ()), parse_hhmm("00:00", ()), None)
    assert w.crosses_midnight
    assert w.opened_on(datetime(2026, 6, 1, 23, 59, 59, tzinfo=NY)) is not None
    assert w.opened_on(datetime(2026, 6, 2, 0, 0, tzinfo=NY)) is None


@pytest.mark.parametrize("text, parsed", [("09:30", (9, 30)), ("0:05", (0, 5)), (" 23:59 ", (23, 59))])
def test_times_of_day_keep_their_minutes(text, parsed):
    t = parse_hhmm(text, ("window", "start"))
    assert (t.hour, t.minute) == parsed


@pytest.mark.parametrize("text", ["9:5", "09:300", "0930", "9h30", "-1:30", "24:00", "09:60", "", "True"])
def test_malformed_times_name_their_key(text):
    with pytest.raises(ScheduleError) as info:
        parse_hhmm(text, ("window", "end"))
    assert info.value.key == ("window", "end")
    assert info.value.hint == 'write 24-hour "HH:MM", e.g. "09:00" or "20:30"'


def test_a_time_yaml_read_as_a_number_says_so():
    with pytest.raises(ScheduleError) as info:
        parse_hhmm(570, ("window", "start"))
    assert str(info.value) == "the time was read as the number 570"
    assert info.value.hint == 'quote it: "09:30"'


@pytest.mark.parametrize("text, error", [
    ("2026-12-01T14:00:00", "has no UTC offset"),
    ("1999-12-31T23:00:00Z", "years 2000-2999"),
    ("3000-01-01T00:00:00Z", "years 2000-2999"),
    ("next week", "is not an ISO 8601 date-time"),
])
def test_bad_instants_are_refused_with_their_key(text, error):
    with pytest.raises(ScheduleError) as info:
        parse_instant(text, ("not_before",))
    assert error in str(info.value) and info.value.key == ("not_before",)


def test_instants_at_the_year_bounds_are_accepted_in_utc():
    assert parse_instant("2000-01-01T00:00:00Z", ()) == datetime(2000, 1, 1, tzinfo=UTC)
    assert parse_instant("2999-12-31T19:00:00-05:00", ()) == datetime(3000, 1, 1, tzinfo=UTC)


# -- not_after equal to not_before: an empty range ---------------------------------------------

def test_not_after_equal_to_not_before_is_refused():
    with pytest.raises(ScheduleError) as info:
        parse_schedule({"not_before": "2026-12-01T00:00:00Z", "not_after": "2026-12-01T00:00:00Z"})
    assert info.value.key == ("not_after",)
    assert str(info.value) == "not_after is not later than not_before"


def test_not_after_equal_to_not_before_is_a_located_error(tmp_path):
    err = one_error(validate(campaign(tmp_path, """
        not_before: "2026-12-01T09:00:00-05:00"
        not_after: "2026-12-01T14:00:00Z"
    """)))
    assert (err["line"], err["path"]) == (9, "schedule.not_after")
    assert err["message"].endswith("not_after is not later than not_before")


def test_one_second_between_not_before_and_not_after_is_a_range():
    s = parse_schedule({"not_before": "2026-12-01T00:00:00Z", "not_after": "2026-12-01T00:00:01Z"})
    assert s.state(datetime(2026, 12, 1, tzinfo=UTC), ZoneInfo("UTC")) == (Timing.DUE, None)
    assert s.state(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC), ZoneInfo("UTC"))[0] == Timing.PAST_NOT_AFTER


# -- why a phone number cannot be parsed (phones._parse_reason) ---------------------------------

@pytest.mark.parametrize("text, reason", [
    ("+999 1234567", "no valid country code"),
    ("(2)", "not a number"),
    ("011 1", "too short after the international prefix"),
    ("+44 1", "too short"),
    ("1" * 300, "too long"),
])
def test_an_unparseable_phone_says_why(text, reason):
    with pytest.raises(PhoneError) as info:
        normalize_phone(text, "US")
    assert str(info.value) == f"'{text}' is not a phone number ({reason})"
    assert info.value.hint.startswith("write the number with its area code (a US number: ")


def test_a_parse_error_the_runner_does_not_know_keeps_the_librarys_words():
    err = NumberParseException(99, "something new")
    assert _parse_reason(err) == str(err)
