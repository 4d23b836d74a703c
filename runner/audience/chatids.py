"""Chat ids: what a recipient's `to` may be, and its one normal form (used in requests and keys).

A chat is an E.164 phone, an email, an explicit group id `grp_...`, or several phones/emails
(a multi-recipient chat; the API reuses one group for the same participants in any order).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from runner.audience.phones import Phone, PhoneError, looks_like_phone, normalize_phone

E164 = re.compile(r"^\+[1-9][0-9]{7,14}\Z")
EMAIL = re.compile(r"^[^@\s,;<>()\"]+@[^@\s,;<>()\"]+\.[A-Za-z0-9-]{2,}\Z")
GROUP = re.compile(r"^grp_[A-Za-z0-9_-]+$")

TO_FORMS = (
    "an E.164 phone ('+15551230001'), an email, a group id 'grp_...', or a list of phones/emails"
)


class ChatIdError(ValueError):
    def __init__(self, message: str, hint: str | None = None, *, phone_like: bool = False) -> None:
        super().__init__(message)
        self.hint = hint
        self.phone_like = phone_like  # a phone in another form: default_region would read it


# The one hint for a phone number that is not E.164 (from_number, a recipient's `to`).
E164_HINT = "an E.164 number: '+', the country code, then digits only, e.g. \"+15551234567\""
_QUOTE_HINT = "quote it: YAML read an unquoted +1555… as a number"


def _near_e164(value: str) -> str | None:
    """How to write a phone number given in another common form, or None if it is not one."""
    digits = re.sub(r"[\s().-]", "", value)
    if E164.match(digits) or (digits.isdigit() and 8 <= len(digits) <= 15):
        if digits.startswith("+"):
            return f"write it as '{digits}' (a '+', the country code, digits only)"
        return f"add '+' and the country code, digits only (a US number: '+1{digits[-10:]}')"
    return None


# A recipients file's phone in another form can be read as people write it when the campaign
# says which country national numbers belong to.
REGION_HINT = "; or set recipients.default_region (e.g. US) to read numbers as people write them"


def e164_hint(value: object) -> str | None:
    """None when ``value`` is an E.164 phone number; otherwise how to fix it.

    The one E.164 check: campaign rules, rendered from_numbers and recipients all use it.
    """
    if isinstance(value, str):
        if E164.match(value):
            return None
        return _near_e164(value) or E164_HINT
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _QUOTE_HINT
    return E164_HINT


def _member(value: str, region: str | None = None, notes: list[Phone] | None = None) -> str:
    v = value.strip()
    if region is not None and "@" not in v and not GROUP.match(v) and looks_like_phone(v):
        try:
            phone = normalize_phone(v, region)
        except PhoneError as err:
            raise ChatIdError(str(err), err.hint) from None
        if (phone.warning is not None or phone.extension is not None) and notes is not None:
            notes.append(phone)
        return phone.e164
    if E164.match(v):
        return v
    if "@" in v:
        if EMAIL.match(v):
            return v.lower()
        raise ChatIdError(f"'{v}' is not a valid email address", "write it as name@example.com")
    if GROUP.match(v):
        raise ChatIdError(
            f"a group id ('{v}') cannot be a member of a list",
            "use the group id alone, or list its members' phones/emails",
        )
    hint = _near_e164(v)
    if hint is not None:
        raise ChatIdError(f"'{v}' is not in E.164 form", hint, phone_like=region is None)
    raise ChatIdError(f"'{v}' is not {TO_FORMS}")


def normalize_chat(to: object, region: str | None = None, notes: list[Phone] | None = None) -> str:
    """The normal form of a recipient's `to`, or ChatIdError saying what is wrong and how to fix it.

    ``region`` (ISO 3166 alpha-2): phones in national or formatted form are read as numbers of
    that country (phones.py); ``notes`` collects the numbers accepted that way with something
    to say (not assigned, an extension dropped)."""
    if isinstance(to, bool) or to is None:
        raise ChatIdError(f"'to' is missing or empty; it must be {TO_FORMS}")
    if isinstance(to, (int, float)):
        raise ChatIdError(
            f"'to' was read as the number {to!r}, not a phone number",
            'quote it: to: "+15551230001" (YAML reads an unquoted +1555… as a number)',
        )
    if isinstance(to, str):
        text = to.strip()
        if not text:
            raise ChatIdError(f"'to' is empty; it must be {TO_FORMS}")
        if "," in text:
            return _normalize_list([p for p in text.split(",")], region, notes)
        if GROUP.match(text):
            return text
        return _member(text, region, notes)
    if isinstance(to, list):
        if not to:
            raise ChatIdError("'to' is an empty list", "list at least two phones/emails")
        for item in to:
            if not isinstance(item, str):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    raise ChatIdError(
                        f"a member of 'to' was read as the number {item!r}",
                        'quote each phone number: ["+15551230001", ...]',
                    )
                raise ChatIdError(f"each member of 'to' must be a phone or email, got {item!r}")
        return _normalize_list(to, region, notes)
    raise ChatIdError(f"'to' must be {TO_FORMS}")


def _normalize_list(
    items: list[str], region: str | None = None, notes: list[Phone] | None = None
) -> str:
    members = sorted({_member(i, region, notes) for i in items if i.strip()})
    if not members:
        raise ChatIdError("'to' lists no phone or email")
    return ",".join(members)


def url_path(chat: str) -> str:
    """`/chats/<url-encoded chat id>/messages` (+ as %2B, @ as %40, comma as %2C)."""
    return f"/chats/{quote(chat, safe='')}/messages"
