"""What a verified webhook says, as a typed event; what it cannot be read as, as a refusal with
its status and reason. Pure: bytes in.

v2 events (`event`: message.received, .sent, .delivered, .failed, .read) carry `message_id`,
`external_id` (the chat's phone or email), `protocol` and `timestamp` (ms); a received message
adds `text` and `received_at`. The v4 API wraps events as `{id, type, created_at,
organization_id, data}`: recognised and acknowledged (202) with the reason, never stored, so a
subscription pointed at v4 is visible in the listener's log instead of silently misread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from runner.audience.chatids import ChatIdError, normalize_chat


class EventType(StrEnum):
    RECEIVED = "message.received"
    SENT = "message.sent"
    DELIVERED = "message.delivered"
    FAILED = "message.failed"
    READ = "message.read"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    type: EventType
    message_id: str
    chat: str  # normalised
    protocol: str | None
    at_ms: int  # received_at for a reply, else the webhook's timestamp
    text: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 400: the sender should not retry as is; 202: taken, nothing stored
    reason: str


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse(body: bytes) -> WebhookEvent | Refusal:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return Refusal(400, "the body is not JSON")
    if not isinstance(doc, dict):
        return Refusal(400, "the body is not a JSON object")
    if "data" in doc and "type" in doc and "event" not in doc:
        return Refusal(
            202,
            "a v4 event envelope: the runner reads v2 webhooks (subscribe the "
            "v2 API's POST /webhooks); nothing stored",
        )
    raw_type = doc.get("event")
    try:
        kind = EventType(str(raw_type))
    except ValueError:
        return Refusal(202, f"unknown event {str(raw_type)[:40]!r}: nothing stored")
    mid, chat = doc.get("message_id"), doc.get("external_id")
    if not isinstance(mid, str) or not mid or not isinstance(chat, str) or not chat:
        return Refusal(400, "message_id and external_id are required")
    try:
        normalised = normalize_chat(chat)
    except ChatIdError:
        return Refusal(400, "external_id is not a phone, email or group id")
    at = _int(doc.get("received_at")) if kind is EventType.RECEIVED else None
    at = at if at is not None else _int(doc.get("timestamp")) or 0
    text = doc.get("text") if isinstance(doc.get("text"), str) else None
    protocol = doc.get("protocol") if isinstance(doc.get("protocol"), str) else None
    error = doc.get("error")
    error_text = (
        error
        if isinstance(error, str)
        else (json.dumps(error)[:200] if isinstance(error, dict) else None)
    )
    return WebhookEvent(kind, mid, normalised, protocol, at, text, error_text)
