"""Masking of chat ids for reports and logs: enough to tell recipients apart, not to contact them.

Phones keep the country-code prefix and the last four digits (``+1555•••0001``), emails keep the
first character and the domain (``a•••@example.com``); a multi-recipient chat masks each member.
Group ids (``grp_…``) are account-internal handles, not personal data, so they stay readable.
"""

from __future__ import annotations

import re

DOT = "•••"


def mask_one(chat_id: str) -> str:
    """Mask one phone number or email; anything else (group ids) is returned unchanged."""
    value = chat_id.strip()
    if "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}{DOT}@{domain}"
    if value.startswith("+"):
        digits = value[1:]
        if len(digits) <= 6:
            # Too short to keep both ends without revealing most of it.
            return f"+{digits[:1]}{DOT}"
        return f"+{digits[:4]}{DOT}{digits[-4:]}"
    return value


def mask_chat(chat_id: str) -> str:
    """Mask a normalised chat id, including comma-separated multi-recipient chats."""
    if "," in chat_id:
        return ",".join(mask_one(part) for part in chat_id.split(","))
    return mask_one(chat_id)


def display_chat(chat_id: str, show: bool) -> str:
    """What a report prints for a recipient: masked unless the user asked to see them."""
    return chat_id if show else mask_chat(chat_id)


# Inside free text (a data line quoted in an error): anything shaped like an email, and runs of
# seven or more digits (with the separators people type) that could be a phone number.
_EMAIL_IN_TEXT = re.compile(r"[^\s'\"<>()\[\],;:]+@[^\s'\"<>()\[\],;:]+")
_DIGITS_IN_TEXT = re.compile(r"\+?\d(?:[\d() .-]*\d){6,}")
EXCERPT_CHARS = 40


def _mask_digits(run: str) -> str:
    digits = "".join(c for c in run if c.isdigit())
    if run.startswith("+"):
        return mask_one("+" + digits)
    return f"{DOT}{digits[-4:]}"


def mask_text(text: str) -> str:
    """``text`` with every email-like and phone-like part masked."""
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_one(m.group()), text)
    return _DIGITS_IN_TEXT.sub(lambda m: _mask_digits(m.group()), text)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """What an error may quote of a data line: masked, control characters shown as '?', and at
    most ``limit`` characters (a line of a file is not the place to print a secret from)."""
    shown = "".join(c if c.isprintable() else "?" for c in mask_text(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def safe_message(message: str, value: str) -> str:
    """An error ``message`` about the data ``value`` with each quoted part of the value (the
    whole, or a member of a comma-separated list) replaced by its excerpt."""
    parts = {value.strip(), *(p.strip() for p in value.split(","))} - {""}
    for part in sorted(parts, key=len, reverse=True):
        message = message.replace(f"'{part}'", f"'{excerpt(part)}'")
    return message


_NOT_DIGITS = re.compile(r"\D")


def mask_hint(hint: str, value: str) -> str:
    """A hint about the data ``value`` masked where it spells the value's number again ("write
    it as '+15551230002'"); a hint that only shows an example number is left as it is."""
    digits = _NOT_DIGITS.sub("", value)
    if len(digits) >= 7 and digits[-7:] in _NOT_DIGITS.sub("", hint):
        return mask_text(hint)
    return hint


REPLY_EXCERPT_CHARS = 160


def reply_excerpt(text: str, limit: int = REPLY_EXCERPT_CHARS) -> str:
    """What the ledger and a review list keep of a reply: one line, phones and emails masked,
    control characters as '?', at most ``limit`` characters."""
    # Written by anyone who can text the number: no control character (an escape sequence, a
    # C1 code) reaches a terminal, log or report from here.
    cut = "".join(c if c.isprintable() else "?" for c in mask_text(" ".join(text.split())))
    return cut if len(cut) <= limit else cut[: limit - 1] + "…"
