"""Behaviour mutation testing found unpinned in the pure modules (benchmarks/mutation_score.py):
windows that open and close off the hour, a not_after equal to not_before, the reasons a phone
number cannot be parsed or cannot be one (and whose country it is), chat-id hints and errors
word for word, the executor's gate and the content hash."""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from phonenumbers import NumberParseException
from test_schedule import campaign, one_error, validate

from runner.audience.chatids import E164_HINT, ChatIdError, e164_hint, normalize_chat, url_path
from runner.audience.phones import PhoneError, _parse_reason, normalize_phone
from runner.campaign.schedule import (
    Readiness,
    Schedule,
    ScheduleError,
    gate_for,
    parse_at,
    parse_hhmm,
    parse_instant,
    parse_schedule,
)
from runner.planning.keys import answer_key, content_hash, idempotency_key, step_keys
from runner.states import Wait
from runner.window import Window

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)


# -- the minute a window opens and closes -------------------------------------------------------


def test_a_window_opens_on_its_minute_not_its_hour():
    s = parse_schedule(
        {"timezone": "America/New_York", "window": {"start": "09:30", "end": "17:45"}}
    )
    assert s.state(ny(2026, 6, 1, 9, 29, 59), NY) == (Wait.WINDOW, ny(2026, 6, 1, 9, 30))
    assert s.state(ny(2026, 6, 1, 9, 30), NY) == (Wait.DUE, None)
    assert s.state(ny(2026, 6, 1, 17, 44, 59), NY) == (Wait.DUE, None)
    assert s.state(ny(2026, 6, 1, 17, 45), NY) == (Wait.WINDOW, ny(2026, 6, 2, 9, 30))


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


@pytest.mark.parametrize(
    "text, parsed", [("09:30", (9, 30)), ("0:05", (0, 5)), (" 23:59 ", (23, 59))]
)
def test_times_of_day_keep_their_minutes(text, parsed):
    t = parse_hhmm(text, ("window", "start"))
    assert (t.hour, t.minute) == parsed


@pytest.mark.parametrize(
    "text", ["9:5", "09:300", "0930", "9h30", "-1:30", "24:00", "09:60", "", "True"]
)
def test_malformed_times_name_their_key(text):
    with pytest.raises(ScheduleError) as info:
        parse_hhmm(text, ("window", "end"))
    assert info.value.key == ("window", "end")
    assert str(info.value) == f"{text.strip()!r} is not a time of day"
    assert info.value.hint == 'write 24-hour "HH:MM", e.g. "09:00" or "20:30"'


def test_a_time_yaml_read_as_a_number_says_so():
    with pytest.raises(ScheduleError) as info:
        parse_hhmm(570, ("window", "start"))
    assert str(info.value) == "the time was read as the number 570"
    assert info.value.hint == 'quote it: "09:30"'


@pytest.mark.parametrize(
    "text, error",
    [
        ("2026-12-01T14:00:00", "has no UTC offset"),
        ("1999-12-31T23:00:00Z", "years 2000-2999"),
        ("3000-01-01T00:00:00Z", "years 2000-2999"),
        ("next week", "is not an ISO 8601 date-time"),
    ],
)
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
    assert info.value.hint == "swap or fix the dates"


def test_not_after_equal_to_not_before_is_a_located_error(tmp_path):
    err = one_error(
        validate(
            campaign(
                tmp_path,
                """
        not_before: "2026-12-01T09:00:00-05:00"
        not_after: "2026-12-01T14:00:00Z"
    """,
            )
        )
    )
    assert (err["line"], err["path"]) == (9, "schedule.not_after")
    assert err["message"].endswith("not_after is not later than not_before")


def test_one_second_between_not_before_and_not_after_is_a_range():
    s = parse_schedule({"not_before": "2026-12-01T00:00:00Z", "not_after": "2026-12-01T00:00:01Z"})
    assert s.state(datetime(2026, 12, 1, tzinfo=UTC), ZoneInfo("UTC")) == (Wait.DUE, None)
    assert s.state(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC), ZoneInfo("UTC"))[0] == Wait.EXPIRED


# -- why a phone number cannot be parsed (phones._parse_reason) ---------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ("+999 1234567", "no valid country code"),
        ("(2)", "not a number"),
        ("011 1", "too short after the international prefix"),
        ("+44 1", "too short"),
        ("1" * 300, "too long"),
    ],
)
def test_an_unparseable_phone_says_why(text, reason):
    with pytest.raises(PhoneError) as info:
        normalize_phone(text, "US")
    assert str(info.value) == f"'{text}' is not a phone number ({reason})"
    assert info.value.hint.startswith("write the number with its area code (a US number: ")


def test_a_parse_error_the_runner_does_not_know_keeps_the_librarys_words():
    err = NumberParseException(99, "something new")
    assert _parse_reason(err) == str(err)


# -- why a phone number is impossible: the number's own country, the library's reason ----------


@pytest.mark.parametrize(
    "text, region, message",
    [
        ("(212) 555-01", "US", "it is too short for US (read with default_region US)"),
        ("+1 212 555 01011 1", "US", "it is too long for US (read with default_region US)"),
        # A +44 number read with region US is British: the message names its own country.
        (
            "+44 20 7946 09",
            "US",
            "it is a local number without an area code for GB (read with default_region US)",
        ),
        ("555-12", "CA", "it is too short for US (read with default_region CA)"),
    ],
)
def test_an_impossible_phone_names_its_country_and_the_reason(text, region, message):
    with pytest.raises(PhoneError) as info:
        normalize_phone(text, region)
    assert str(info.value) == f"'{text}' cannot be a phone number: {message}"
    assert info.value.hint.startswith(f"check the digits (a {region} number: '")
    assert info.value.hint.endswith(
        "'); a number of another country starts with + and its country code"
    )


def test_the_hint_shows_the_regions_example_number_in_both_spellings():
    with pytest.raises(PhoneError) as info:
        normalize_phone("(212) 555-01", "US")
    assert info.value.hint == (
        "check the digits (a US number: '(201) 555-0123' or '+12015550123'); "
        "a number of another country starts with + and its country code"
    )


def test_an_unassigned_number_is_accepted_with_the_one_warning():
    phone = normalize_phone("(555) 123-4567", "US")
    assert phone.e164 == "+15551234567"
    assert phone.warning == (
        "possible but not assigned in its country's numbering plan (a fictional or unused range)"
    )
    assert normalize_phone("(212) 555-0101", "us").warning is None  # the region in any case


# -- chat ids: the forms near E.164, lists read with the region, the exact words --------------


@pytest.mark.parametrize(
    "value, hint",
    [
        ("12345678", "add '+' and the country code, digits only (a US number: '+112345678')"),
        (
            "123456789012345",
            "add '+' and the country code, digits only (a US number: '+16789012345')",
        ),
        ("+1 (555) 123-4567", "write it as '+15551234567' (a '+', the country code, digits only)"),
        ("1234567", E164_HINT),  # too few digits to be a phone written another way
        ("1234567890123456", E164_HINT),  # too many
    ],
)
def test_the_hint_for_a_phone_in_another_form(value, hint):
    assert e164_hint(value) == hint


def test_a_phone_yaml_read_as_a_number_is_told_to_be_quoted():
    assert e164_hint(15551234567) == "quote it: YAML read an unquoted +1555… as a number"
    assert e164_hint(True) == e164_hint(None) == E164_HINT


def test_a_list_of_phones_is_read_with_the_campaigns_region():
    notes: list = []  # the numbers read with a warning
    expected = "+12125550101,+15551234567"
    assert normalize_chat("(555) 123-4567, (212) 555-0101", "US", notes) == expected
    assert [n.warning for n in notes] == [
        "possible but not assigned in its country's numbering plan (a fictional or unused range)"
    ]
    notes.clear()
    assert normalize_chat(["(555) 123-4567", "(212) 555-0101"], "US", notes) == expected
    assert len(notes) == 1


@pytest.mark.parametrize(
    "to, message, hint",
    [
        ([], "'to' is an empty list", "list at least two phones/emails"),
        (
            ["+15551230001", 15551230002],
            "a member of 'to' was read as the number 15551230002",
            'quote each phone number: ["+15551230001", ...]',
        ),
        (
            ["+15551230001", "grp_x"],
            "a group id ('grp_x') cannot be a member of a list",
            "use the group id alone, or list its members' phones/emails",
        ),
        (
            "ada@example",
            "'ada@example' is not a valid email address",
            "write it as name@example.com",
        ),
        (" , ", "'to' lists no phone or email", None),
        (
            15551230001,
            "'to' was read as the number 15551230001, not a phone number",
            'quote it: to: "+15551230001" (YAML reads an unquoted +1555… as a number)',
        ),
    ],
)
def test_chat_id_errors_say_what_and_how(to, message, hint):
    with pytest.raises(ChatIdError) as info:
        normalize_chat(to)
    assert (str(info.value), info.value.hint) == (message, hint)


def test_a_phone_the_region_cannot_read_keeps_the_phones_words():
    with pytest.raises(ChatIdError) as info:
        normalize_chat("(212) 555-01", "US")
    assert str(info.value).startswith("'(212) 555-01' cannot be a phone number: it is too short")
    assert info.value.hint.startswith("check the digits (a US number: ")


def test_the_chat_id_is_one_path_segment():
    assert (
        url_path("+15551230001,ada@example.com")
        == "/chats/%2B15551230001%2Cada%40example.com/messages"
    )
    assert url_path("grp_a/b") == "/chats/grp_a%2Fb/messages"  # a slash cannot open a new segment


# -- the executor's gate and the content hash ----------------------------------------------------


@dataclass
class _Step:
    id: str
    delay_seconds: float | None = None


@dataclass
class _NoLaw:
    active: bool = False


@dataclass
class _Campaign:
    schedule_rules: Schedule | None
    steps: list[_Step]
    law: _NoLaw = field(default_factory=_NoLaw)


@dataclass
class _Request:
    step: str
    zone: str | None = None


def test_no_schedule_and_no_delay_needs_no_gate():
    assert gate_for(_Campaign(None, [_Step("a"), _Step("b", 0)])) is None


def test_the_gate_reads_the_recipients_zone_then_the_campaigns():
    rules = parse_schedule(
        {"timezone": "America/New_York", "window": {"start": "09:00", "end": "17:00"}}
    )
    gate = gate_for(_Campaign(rules, [_Step("a")]))
    at = datetime(2026, 6, 1, 14, 0, tzinfo=UTC).timestamp()  # 10:00 in New York, 23:00 in Tokyo
    assert gate(_Request("a"), None, False, at) == Readiness(Wait.DUE, None)
    state, due = astuple(gate(_Request("a", "Asia/Tokyo"), None, False, at))
    assert state == Wait.WINDOW
    assert due == datetime(2026, 6, 2, 0, 0, tzinfo=UTC).timestamp()  # 09:00 in Tokyo


def test_a_delay_alone_makes_a_gate_counting_from_the_previous_step():
    gate = gate_for(_Campaign(None, [_Step("a"), _Step("b", 3600)]))
    assert gate(_Request("b"), 1000.0, True, 2000.0) == Readiness(Wait.DELAY, 4600.0)
    assert gate(_Request("b"), 1000.0, True, 4600.0) == Readiness(Wait.DUE, None)
    assert gate(_Request("b"), None, True, 4600.0) == Readiness(Wait.PREVIOUS, None)
    assert gate(_Request("a"), None, False, 0.0) == Readiness(Wait.DUE, None)


def test_the_content_hash_is_of_the_body_without_its_reply_parent():
    body = {"text": "Hi", "effect": "slam"}
    same = content_hash(body)
    assert len(same) == 16 and int(same, 16) >= 0  # 64 bits of a SHA-256, in hex
    assert content_hash({"effect": "slam", "text": "Hi"}) == same
    assert content_hash({**body, "reply_to": {"message_id": "m1"}}) == same
    assert content_hash({**body, "text": "Hi!"}) != same
    assert content_hash({"text": ["Hi", "there"]}) != content_hash({"text": ["there", "Hi"]})


def test_a_steps_keys_default_to_the_first_message_as_the_key_does():
    key = step_keys("spring", 3, "intro")
    assert key("+15551230001") == idempotency_key("spring", 3, "intro", "+15551230001")
    assert key("+15551230001") == key("+15551230001", 0) != key("+15551230001", 1)


# -- parse_schedule: each refusal's key, words and hint ------------------------------------------

WINDOW_HINT = "set schedule.timezone (and optionally timezone_var for per-recipient zones)"


@pytest.mark.parametrize(
    "spec, key, message, hint",
    [
        (
            {"timezone": "Mars/Olympus"},
            ("timezone",),
            "unknown time zone 'Mars/Olympus'",
            "use an IANA name such as America/New_York or Europe/Paris",
        ),
        (
            {"timezone": "UTC", "window": {"start": "09:00", "end": "09:00"}},
            ("window",),
            "the window starts and ends at the same time",
            "give different start and end times (a window may cross midnight)",
        ),
        (
            {
                "timezone": "UTC",
                "window": {"start": "09:00", "end": "17:00", "days": ["mon", "someday"]},
            },
            ("window", "days"),
            "unknown day(s): someday",
            "use mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            {"timezone": "UTC", "window": {"start": "09:00", "end": "17:00", "days": ["x", 7]}},
            ("window", "days"),
            "unknown day(s): x, 7",
            "use mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            {"timezone": "UTC", "window": {"start": "09:00", "end": "17:00", "days": []}},
            ("window", "days"),
            "the window has no days",
            "list at least one day",
        ),
        (
            {"window": {"start": "09:00", "end": "17:00"}},
            ("window",),
            "a window needs a time zone",
            WINDOW_HINT,
        ),
        (
            {"not_before": "soon"},
            ("not_before",),
            "'soon' is not an ISO 8601 date-time",
            'write e.g. "2026-12-01T14:00:00Z" or "2026-12-01T09:00:00-05:00"',
        ),
        (
            {"not_after": "2026-12-01T14:00:00"},
            ("not_after",),
            "'2026-12-01T14:00:00' has no UTC offset, so it is ambiguous",
            'add Z or an offset: "2026-12-01T14:00:00Z"',
        ),
        (
            {"not_after": "1999-12-01T14:00:00Z"},
            ("not_after",),
            "'1999-12-01T14:00:00Z' is not a date this runner can schedule (years 2000-2999)",
            "check the year",
        ),
    ],
)
def test_each_schedule_refusal_names_its_key_and_says_how_to_fix_it(spec, key, message, hint):
    with pytest.raises(ScheduleError) as info:
        parse_schedule(spec)
    assert (info.value.key, str(info.value), info.value.hint) == (key, message, hint)


def test_a_window_with_a_per_recipient_zone_needs_no_default_zone():
    s = parse_schedule({"timezone_var": "tz", "window": {"start": "09:00", "end": "17:00"}})
    assert s.zone_var == "tz" and s.default_zone is None and s.window is not None


def test_days_are_read_by_their_first_three_letters_in_any_case():
    s = parse_schedule(
        {"timezone": "UTC", "window": {"start": "09:00", "end": "17:00", "days": ["Monday", "FRI"]}}
    )
    assert s.window.days == frozenset({0, 4})


def test_instants_are_kept_in_utc_itself():
    at = parse_instant("2026-12-01T09:00:00-05:00", ())
    assert at == datetime(2026, 12, 1, 14, tzinfo=UTC) and at.tzinfo is UTC


def test_at_now_is_this_second_in_utc():
    before = datetime.now(UTC).replace(microsecond=0)
    now = parse_at("now")
    assert now.tzinfo is UTC and now.microsecond == 0 and now >= before
    assert parse_at("2026-12-01T14:00:00Z") == datetime(2026, 12, 1, 14, tzinfo=UTC)
    with pytest.raises(ScheduleError) as info:
        parse_at("NOW")
    assert info.value.key == ()


# -- Schedule.state: which wait is named, and what counts -------------------------------------


def test_the_window_contains_its_opening_instant():
    w = Window(parse_hhmm("09:30", ()), parse_hhmm("17:45", ()), None)
    assert w.opened_on(datetime(2026, 6, 1, 9, 30, tzinfo=NY)) == datetime(
        2026, 6, 1, 9, 30, tzinfo=NY
    )
    assert w.opened_on(datetime(2026, 6, 1, 9, 29, 59, tzinfo=NY)) is None


def test_a_delay_without_a_previous_step_waits_for_nothing():
    s = parse_schedule({"not_before": "2026-12-01T00:00:00Z"})
    at = datetime(2026, 12, 2, tzinfo=UTC)
    assert s.state(at, ZoneInfo("UTC"), delay=3600) == (Wait.DUE, None)  # no previous step
    # A previous step accepted, and no delay for this one: due at once.
    assert s.state(
        at, ZoneInfo("UTC"), delay=None, previous_accepted=at.timestamp(), has_previous=True
    ) == (Wait.DUE, None)


def test_the_first_wait_is_the_one_named():
    s = parse_schedule({"not_before": "2026-12-01T12:00:00Z"})
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    # not_before is 2 h away, the delay ends in 5 h: the message waits for the start first.
    ready = at.timestamp() + 5 * 3600 - 3600
    state, due = s.state(
        at,
        ZoneInfo("UTC"),
        delay=5 * 3600,
        previous_accepted=at.timestamp() - 3600,
        has_previous=True,
    )
    assert (state, due.timestamp()) == (Wait.START, ready)


def test_a_recipient_without_a_zone_is_scheduled_in_utc_when_the_campaign_names_none():
    rules = parse_schedule({"timezone_var": "tz", "window": {"start": "09:00", "end": "17:00"}})
    gate = gate_for(_Campaign(rules, [_Step("a")]))
    assert gate(
        _Request("a"), None, False, datetime(2026, 6, 1, 9, tzinfo=UTC).timestamp()
    ) == Readiness(Wait.DUE, None)
    assert gate(
        _Request("a"), None, False, datetime(2026, 6, 1, 8, tzinfo=UTC).timestamp()
    ) == Readiness(Wait.WINDOW, datetime(2026, 6, 1, 9, tzinfo=UTC).timestamp())


def test_a_window_opening_in_the_spring_forward_gap_opens_when_the_clock_jumps():
    # 02:10 does not exist in New York on 2026-03-08 (02:00 -> 03:00 EDT): the window opens
    # at 03:00 EDT = 07:00 UTC to the second, wherever the bisection starts.
    s = parse_schedule(
        {"timezone": "America/New_York", "window": {"start": "02:10", "end": "04:00"}}
    )
    assert s.state(datetime(2026, 3, 8, 5, 0, tzinfo=UTC), NY) == (
        Wait.WINDOW,
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    )
    assert s.state(datetime(2026, 3, 8, 7, 0, tzinfo=UTC), NY) == (Wait.DUE, None)


def test_an_answer_key_is_its_own_derivation():
    import hashlib

    key = answer_key("help", "+15551230001", "2026-12-01")
    digest = hashlib.sha256(b"answer\x1fhelp\x1f+15551230001\x1f2026-12-01").hexdigest()[:40]
    assert key == "rnr1-" + digest
    assert (
        answer_key("stop", "+15551230001")
        == "rnr1-" + hashlib.sha256(b"answer\x1fstop\x1f+15551230001\x1f").hexdigest()[:40]
    )


def test_only_a_phone_in_another_form_is_marked_for_default_region():
    with pytest.raises(ChatIdError) as info:
        normalize_chat("ada@example")
    assert info.value.phone_like is False
    with pytest.raises(ChatIdError) as info:
        normalize_chat("(555) 123-4567")
    assert info.value.phone_like is True


def test_a_zone_less_recipient_is_in_utc_whatever_the_machines_zone(monkeypatch):
    # A naive "local" fallback would read the host's zone; only an explicit UTC passes here.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        test_a_recipient_without_a_zone_is_scheduled_in_utc_when_the_campaign_names_none()
    finally:
        monkeypatch.undo()
        time.tzset()


# -- Schedule.timing with the law's holds (rewritten by the law merge) ----------------------------


@dataclass(frozen=True)
class _Hold:
    """A hold that lets a message go from `opens` on (a law's hours, a cap)."""

    opens: datetime
    label: str = "test hours"
    reason: Wait = Wait.LAW

    def next_open(self, after: datetime) -> datetime:
        return max(after, self.opens)


def test_timing_alone_assumes_no_previous_step_and_names_no_hold():
    s = parse_schedule({"not_before": "2026-06-01T00:00:00Z"})
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    # A delay with no previous step (the default) waits for nothing.
    t = s.timing(at, (ZoneInfo("UTC"),), delay=3600)
    assert (t.state, t.when, t.held_by) == (Wait.DUE, None, None)


def test_every_zone_of_a_recipient_is_asked_however_many():
    s = parse_schedule({"timezone": "UTC", "window": {"start": "09:00", "end": "17:00"}})
    zones = tuple(
        ZoneInfo(z)
        for z in (
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "America/Anchorage",
        )
    )
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)  # 08:00 in New York: no zone's window is open
    t = s.timing(at, zones)
    assert t.state == Wait.WINDOW
    # The windows overlap from 09:00 in Anchorage, the last to open (13:00 in New York).
    assert t.when == datetime(2026, 6, 1, 17, tzinfo=UTC)


def test_every_hold_is_asked_however_many():
    s = parse_schedule({"not_before": "2026-06-01T00:00:00Z"})
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    later = datetime(2026, 6, 1, 13, tzinfo=UTC)
    holds = [_Hold(at, label=f"open {i}") for i in range(5)] + [_Hold(later, label="FL hours")]
    t = s.timing(at, (ZoneInfo("UTC"),), holds=holds)
    assert (t.state, t.when, t.held_by) == (Wait.LAW, later, "FL hours")


def test_a_hold_that_pushes_past_the_window_waits_for_the_next_window_in_a_second_round():
    s = parse_schedule(
        {"timezone": "America/New_York", "window": {"start": "09:00", "end": "17:00"}}
    )
    ny = ZoneInfo("America/New_York")
    at = datetime(2026, 6, 1, 12, tzinfo=ny)
    t = s.timing(at, (ny,), holds=[_Hold(datetime(2026, 6, 1, 18, tzinfo=ny))])
    # 18:00 is after the window: the next opening, named by the hold that held it first.
    assert (t.state, t.when, t.held_by) == (
        Wait.LAW,
        datetime(2026, 6, 2, 9, tzinfo=ny),
        "test hours",
    )


def test_a_message_held_past_not_after_expires_and_says_what_held_it():
    s = parse_schedule({"not_before": "2026-06-01T00:00:00Z", "not_after": "2026-06-01T15:00:00Z"})
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    hold = _Hold(datetime(2026, 6, 1, 16, tzinfo=UTC), label="3 per 24h", reason=Wait.CAP)
    t = s.timing(at, (ZoneInfo("UTC"),), holds=[hold])
    assert (t.state, t.when, t.held_by) == (Wait.EXPIRED, None, "3 per 24h")


def test_a_zone_less_request_is_in_the_campaigns_zone_not_utc():
    rules = parse_schedule(
        {"timezone": "America/New_York", "window": {"start": "09:00", "end": "17:00"}}
    )
    gate = gate_for(_Campaign(rules, [_Step("a")]))
    at = datetime(2026, 6, 1, 20, 0, tzinfo=UTC).timestamp()  # 16:00 in New York, 20:00 in UTC
    assert gate(_Request("a"), None, False, at) == Readiness(Wait.DUE, None)


def test_a_gate_with_only_not_before_or_not_after_still_waits_or_expires():
    start = parse_schedule({"not_before": "2026-06-01T12:00:00Z"})
    gate = gate_for(_Campaign(start, [_Step("a")]))
    noon = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
    assert gate(_Request("a"), None, False, noon - 60) == Readiness(Wait.START, noon)
    end = parse_schedule({"not_after": "2026-06-01T12:00:00Z"})
    gate = gate_for(_Campaign(end, [_Step("a")]))
    assert gate(_Request("a"), None, False, noon) == Readiness(Wait.EXPIRED, None)
    assert gate(_Request("a"), None, False, noon - 60) == Readiness(Wait.DUE, None)


# -- the opt-out vocabulary with a team's own words (runner.consent.match) ---------------------


def test_extra_stop_words_are_folded_deduplicated_and_ordered_longest_first():
    from runner.consent.match import _vocabulary, vocabulary

    _vocabulary.cache_clear()  # read afresh (mutation testing runs tests in one process)
    standard = vocabulary()
    v = vocabulary(["  Basta   Ya ", "", "   ", "stop", "zz top"])
    keys = [k for k, _ in v.stop_words]
    # Folded to one spacing and case; shown as written, upper-cased, in single spaces.
    assert ("basta ya", "BASTA YA") in v.stop_words and ("zz top", "ZZ TOP") in v.stop_words
    # Each once (the standard STOP is not repeated), the longest first, then alphabetical, so
    # "stopall" is tried before "stop" and "basta ya" before "zz top" (same length).
    assert len(keys) == len(set(keys)) == len(standard.stop_words) + 2
    assert keys == sorted(keys, key=lambda k: (-len(k), k))
    assert keys.index("basta ya") < keys.index("zz top") < keys.index("stop")
    assert dict(v.stop_words)["stop"] == "STOP"
    # Blank words add nothing: the standard vocabulary itself (its one cached copy).
    assert vocabulary(["", "  "]) is standard
    # A word that folds to nothing is no stop word; a standard one written otherwise keeps the
    # standard spelling; at equal lengths the folded text orders ("ca suffit" before "zz top ok",
    # though "Ç" sorts after "Z").
    other = vocabulary(["!!!", "Stop!", "zz top ok", "Ça suffit"])
    keys = [k for k, _ in other.stop_words]
    assert "" not in keys and dict(other.stop_words)["stop"] == "STOP"
    assert dict(other.stop_words)["ca suffit"] == "ÇA SUFFIT"
    assert keys.index("ca suffit") == keys.index("zz top ok") - 1
    assert standard.help == {k: k.upper() for k in standard.help} and "help" in standard.help


def test_an_unassigned_number_keeps_its_extension_beside_the_warning():
    phone = normalize_phone("(555) 123-0001 ext. 7", "US")
    assert (phone.e164, phone.extension) == ("+15551230001", "7")
    assert phone.warning is not None and "not assigned" in phone.warning


def test_at_exactly_not_after_a_later_step_is_expired_not_waiting_for_its_previous():
    s = parse_schedule({"not_before": "2026-06-01T00:00:00Z", "not_after": "2026-06-01T12:00:00Z"})
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    t = s.timing(at, (ZoneInfo("UTC"),), delay=60, previous_accepted=None, has_previous=True)
    assert t.state == Wait.EXPIRED
