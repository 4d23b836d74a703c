"""Masking of chat ids for reports and logs: enough to tell recipients apart, not to contact them.

Phones keep the country-code prefix and the last four digits (``+1555•••0001``), emails keep the
first character and the domain (``a•••@example.com``); a multi-recipient chat masks each member.
Group ids (``grp_…``) are account-internal handles, not personal data, so they stay readable.
"""

from __future__ import annotations

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
