"""The data that flows between the pipeline's steps: plan → execute → journal → report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One HTTP request the runner would send: the unit of planning, sending and journalling.

    ``path`` is relative to the API base URL and already URL-encoded
    (``/chats/%2B15551230001/messages``). ``body`` is the exact JSON body, except that when
    ``reply_to_step`` is set the executor adds ``reply_to: {"message_id": ...}`` from the
    journal (the parent's id is only known once that step was accepted).
    """

    recipient: str  # normalised chat id ("+15551230001", "a@b.com", "+1555...,+1555...")
    step: str  # step id
    key: str  # Idempotency-Key
    method: str
    path: str
    body: dict[str, Any]
    messages: int  # how many messages this request creates (text list n, batch k, else 1)
    reply_to_step: str | None = None
    recipient_index: int = 0  # position of the recipient in the campaign (0-based)
    step_index: int = 0  # position of the step in the campaign (0-based)
    zone: str | None = None  # the recipient's IANA time zone when the campaign has a schedule
    variant: str | None = None  # the variant's id, for a step with variants (never in the key)

    def to_json_obj(self) -> dict[str, Any]:
        """The stable `plan --out` line shape of the design page."""
        obj: dict[str, Any] = {
            "recipient": self.recipient,
            "step": self.step,
            "key": self.key,
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "messages": self.messages,
        }
        if self.reply_to_step is not None:
            obj["reply_to_step"] = self.reply_to_step
        if self.variant is not None:
            obj["variant"] = self.variant
        return obj
