"""What the runner knows of the Blooio v2 send-message API, in its own words and data.

Every rule the runner checks before sending, and every response it interprets after, reads
its constants from here, so a change of the API is a change of one file.
"""

from __future__ import annotations

import re

DEFAULT_BASE_URL = "https://api.blooio.com/v2/api"

# The API's exact spelling (lowercase, dashes). Users may write any case, spaces or dashes.
EFFECTS = (
    "slam", "loud", "gentle", "invisible-ink",  # bubble effects
    "echo", "spotlight", "balloons", "confetti", "love", "lasers", "fireworks", "celebration",
)
NO_EFFECT = "none"

# Limits the runner enforces before sending (the API documents the title limit; the text
# limit is the runner's own guard against a runaway template).
MAX_TEXT_CHARS = 10_000
MAX_LINK_PREVIEW_TITLE = 200

FINAL_DELIVERY_STATUSES = ("delivered", "failed", "cancelled")

# 4xx `code` values of the send endpoint.
REPLY_TARGET_CODES = (
    "reply_target_invalid", "reply_target_chat_mismatch", "reply_target_device_mismatch",
    "reply_target_expired", "reply_target_not_supported", "reply_target_not_found",
)
CAP_CODES = ("outbound_limit_reached", "new_conversation_limit_reached")
INBOUND_ONLY_CODE = "inbound_only_no_prior_inbound"

# Carriers' standard opt-out words (whole trimmed reply, case-insensitive).
STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")

_EFFECT_LOOKUP = {name.replace("-", ""): name for name in EFFECTS}
_SINGLE_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)


def normalize_effect(name: str) -> str | None:
    """The API spelling of an effect name, ``""`` for none, or None if unknown."""
    squashed = re.sub(r"[\s_-]+", "", name.strip().lower())
    if squashed in ("", NO_EFFECT):
        return ""
    return _EFFECT_LOOKUP.get(squashed)


def is_single_http_url(text: str) -> bool:
    """True when ``text`` is exactly one http(s) URL (what link previews and batches need).
    A URL in its query (`?to=https://...`, common in tracking links) is still one URL."""
    return bool(_SINGLE_URL.match(text))


def is_http_url(text: str, *, https_only: bool = False) -> bool:
    t = text.strip().lower()
    if https_only:
        return t.startswith("https://") and len(t) > len("https://")
    return (t.startswith("http://") and len(t) > 7) or (t.startswith("https://") and len(t) > 8)
