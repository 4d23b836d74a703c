"""Chat ids: the one normal form used in requests and idempotency keys, and errors that say
how to fix a bad `to`."""

from __future__ import annotations

import pytest

from runner.audience.chatids import ChatIdError, normalize_chat, url_path


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("+15551230001", "+15551230001"),
        ("  +15551230001 \t", "+15551230001"),
        ("Bob@Example.COM", "bob@example.com"),
        (" ada+vip@example.co.uk ", "ada+vip@example.co.uk"),
        ("grp_7f3a9c2e1b4d", "grp_7f3a9c2e1b4d"),
        ("+12345678", "+12345678"),  # 8 digits: the shortest E.164
        ("+123456789012345", "+123456789012345"),  # 15 digits: the longest
        (
            ["bob@example.com", "+15551230002", "+15551230001"],
            "+15551230001,+15551230002,bob@example.com",
        ),
        ([" Bob@Example.com", "+15551230002 "], "+15551230002,bob@example.com"),
        ("+15551230002, Bob@example.com", "+15551230002,bob@example.com"),
        (["+15551230001", "+15551230001", "+15551230002"], "+15551230001,+15551230002"),
    ],
)
def test_normal_form(raw: object, normal: str):
    assert normalize_chat(raw) == normal


def test_member_order_does_not_matter():
    a = normalize_chat(["+15551230002", "bob@example.com", "+15551230001"])
    b = normalize_chat(["BOB@example.com", "+15551230001", "+15551230002"])
    assert a == b


@pytest.mark.parametrize(
    "raw, message, hint",
    [
        (15551230001, "'to' was read as the number 15551230001, not a phone number", "quote it"),
        (1.5e10, "was read as the number", "quote it"),
        (
            ["+15551230001", 15551230002],
            "a member of 'to' was read as the number 15551230002",
            "quote each phone number",
        ),
        ("15551234567", "'15551234567' is not in E.164 form", "add '+' and the country code"),
        ("(555) 123-4567", "is not in E.164 form", "'+15551234567'"),
        ("+1 (555) 123-4567", "is not in E.164 form", "write it as '+15551234567'"),
        ("bob@example", "'bob@example' is not a valid email address", "name@example.com"),
        ("a b@example.com", "is not a valid email address", None),
        (
            ["+15551230001", "grp_abc123"],
            "a group id ('grp_abc123') cannot be a member of a list",
            "use the group id alone",
        ),
        ("", "'to' is empty", None),
        ("   ", "'to' is empty", None),
        (None, "'to' is missing or empty", None),
        ([], "'to' is an empty list", None),
        (" , ", "'to' lists no phone or email", None),
        ("+1234567", "is not an E.164 phone", None),  # 7 digits
        ("+1234567890123456", "is not an E.164 phone", None),  # 16 digits
        ("+0123456789", "is not an E.164 phone", None),  # no country code starts with 0
        ("grp_", "is not an E.164 phone", None),
        ("hello", "'hello' is not an E.164 phone ('+15551230001'), an email, a group id", None),
        ({"to": "+15551230001"}, "'to' must be an E.164 phone", None),
        (["+15551230001", None], "each member of 'to' must be a phone or email, got None", None),
    ],
)
def test_errors_say_what_is_wrong_and_how_to_fix_it(raw: object, message: str, hint: str | None):
    with pytest.raises(ChatIdError) as info:
        normalize_chat(raw)
    assert message in str(info.value)
    if hint is not None:
        assert hint in (info.value.hint or "")


def test_url_path_encodes_plus_at_and_comma():
    assert url_path("+15551230001") == "/chats/%2B15551230001/messages"
    assert (
        url_path("+15551230001,bob@example.com")
        == "/chats/%2B15551230001%2Cbob%40example.com/messages"
    )
    assert url_path("grp_7f3a9c2e1b4d") == "/chats/grp_7f3a9c2e1b4d/messages"
