"""What the runner knows of the Blooio v2 send-message API, in its own words and data.

Every rule the runner checks before sending, and every response it interprets after, reads
its constants from here, so a change of the API is a change of one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_BASE_URL = "https://api.blooio.com/v2/api"

# The API's exact spelling (lowercase, dashes). Users may write any case, spaces or dashes.
EFFECTS = (
    "slam",
    "loud",
    "gentle",
    "invisible-ink",  # bubble effects
    "echo",
    "spotlight",
    "balloons",
    "confetti",
    "love",
    "lasers",
    "fireworks",
    "celebration",
)
NO_EFFECT = "none"

# Limits the runner enforces before sending (the API documents the title limit; the text
# limit is the runner's own guard against a runaway template).
MAX_TEXT_CHARS = 10_000
MAX_LINK_PREVIEW_TITLE = 200


class DeliveryStatus(StrEnum):
    """A message's delivery status as GET .../status says it (stored as read: a status the
    API adds later is kept as its text)."""

    PENDING = "pending"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLATION_REQUESTED = "cancellation_requested"
    CANCELLED = "cancelled"
    # The runner's, not the API's: the status endpoint answered 404/400 (nothing more to learn).
    NOT_FOUND = "not_found"


# Once a message has one of these statuses it will not change any more.
FINAL_DELIVERY_STATUSES = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.CANCELLED,
)


class CapCode(StrEnum):
    """429 `code` values that are an account cap, not a blip: retrying soon is pointless."""

    OUTBOUND_LIMIT = "outbound_limit_reached"  # the whole account stops
    NEW_CONVERSATION_LIMIT = "new_conversation_limit_reached"  # existing chats may continue


CAP_CODES = frozenset(CapCode)
# Fields of a cap answer worth keeping (the journal's run row and the report show them).
CAP_DETAILS = ("limit", "current", "cap", "mode", "plan_id", "sender_number")

UNAUTHORIZED_STATUS = 401
# Transient whatever the endpoint (with every 5xx, and 1xx/3xx: nothing a request can be
# blamed for; a redirect means a wrong base URL, which a retry will not follow either).
TRANSIENT_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How one endpoint's error statuses read."""

    # The API does not know the thing asked about: asking again will not change that.
    gone: frozenset[int] = frozenset()
    # Whether a 4xx outside ``gone``/401/transient is worth asking again (a read-only status
    # question) or fails the request for good (a send, a listing).
    retry_other_4xx: bool = False
    caps: bool = False  # a 429 may carry a CapCode (only sending counts against the caps)


SEND_MESSAGE = Endpoint(caps=True)  # POST /chats/{chat}/messages
MESSAGE_STATUS = Endpoint(gone=frozenset({400, 404, 410}), retry_other_4xx=True)
CAPABILITIES = Endpoint(gone=frozenset({400, 404, 422}), retry_other_4xx=True)
INBOUND_MESSAGES = Endpoint(gone=frozenset({404}))  # GET /chats/{chat}/messages
WEBHOOKS = Endpoint(gone=frozenset({404}))  # /webhooks and /webhooks/{id}: subscriptions

_EFFECT_LOOKUP = {name.replace("-", ""): name for name in EFFECTS}
_SINGLE_URL = re.compile(r"^https?://[^\s]+\Z", re.IGNORECASE)


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
