"""Every knob of the emulator in one dataclass, plus the checks that keep a run reproducible.

Probabilities are per API request and drawn from one seeded ``random.Random`` (see
``faults.py``); delivery outcomes and contact capabilities are derived from the seed and the
message or contact alone, so they do not depend on the order requests arrive in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.emulator.replies import DEFAULT_REPLY_TEXT, check_rule, parse_rule

FAULT_NAMES = ("500", "503", "429", "slow", "drop", "accept_then_500")


@dataclass
class EmulatorConfig:
    api_key: str = "test-key"
    seed: int = 0
    port: int = 0  # 0 = pick a free port

    # Latency and faults (each request: base + uniform(0, jitter) ms, then at most one fault).
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    p_500: float = 0.0
    p_503: float = 0.0
    p_429: float = 0.0
    p_slow: float = 0.0
    p_drop: float = 0.0
    p_accept_then_500: float = 0.0
    retry_after_s: float | None = 1.0  # Retry-After on plain 429s; None = no header
    slow_ms: float = 2000.0
    slow_commits: bool = False  # a slow send commits the message before answering late
    fault_scope: str = "all"  # "all" API requests, or only "send" requests
    # Faults forced on the next API requests, in order, before the random draws ("" = none):
    # deterministic scripts for tests ("first attempt 503, then accept").
    fault_script: list[str] = field(default_factory=list)

    # Caps (None = unlimited).
    outbound_limit: int | None = None  # distinct contacts ever messaged, org mode
    new_conversation_cap: int | None = None  # distinct chats started
    plan_id: str = "plan_shared"

    # Numbers of the organisation. A from_number outside the list is accepted and added
    # unless strict_numbers is set (rehearsals use whatever number the campaign names).
    numbers: list[str] = field(default_factory=lambda: ["+15551234567"])
    # Named group chats (grp_...) the account already has; "*" = any grp_ id. Groups made for
    # participant lists are always known.
    groups: list[str] = field(default_factory=list)
    # Messages the account sent before the emulator started (reply_to: {message_id: ...}
    # targets): [{"message_id": "msg_...", "chat": "+1555...", "from_number": optional,
    # "guid": optional, "text": optional}].
    history: list[dict] = field(default_factory=list)
    strict_numbers: bool = False
    inbound_only_numbers: list[str] = field(default_factory=list)
    share_contact_allowed: bool = True

    # Delivery lifecycle: queued -> sent -> delivered | failed.
    sent_after_ms: float = 50.0
    delivered_after_ms: float = 200.0
    delivery_jitter_ms: float = 50.0
    p_delivery_failed: float = 0.0
    delivery_error: str = "Message could not be delivered"

    # Reach of contacts, stable per contact for a given seed.
    share_imessage: float = 0.7
    share_sms: float = 0.25
    share_rcs: float = 0.05
    p_unreachable: float = 0.0
    unreachable: list[str] = field(default_factory=list)

    # Automatic replies (replies.py): a share of accepted messages is answered, drawn from the
    # seed; each reply arrives reply_after_s after its message was delivered (emulator clock).
    reply_rate: float = 0.0
    reply_text: str = DEFAULT_REPLY_TEXT
    reply_after_s: float = 60.0
    # [{"pattern": REGEX, "rate": 0..1, "text": ...}] (or "REGEX=RATE:TEXT"): the first rule
    # whose pattern is found in a message's text sets its rate and reply instead.
    reply_rules: list[Any] = field(default_factory=list)

    # Webhooks (webhooks.py): a subscription made at start (more with POST /webhooks), its
    # signing secret (None: one is made), and the share of deliveries sent twice (a replay).
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_duplicate_rate: float = 0.0

    max_body_bytes: int = 2_000_000
    # Emulator time in epoch seconds; None = wall clock. Not settable over HTTP.
    clock: Callable[[], float] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "clock"
        }

    def updated(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A copy with ``changes`` applied; raises ValueError naming the first bad field."""
        known = {f.name: f for f in dataclasses.fields(self) if f.name != "clock"}
        for name in changes:
            if name not in known:
                raise ValueError(f"unknown setting {name!r}")
        if isinstance(changes.get("reply_rules"), list):
            changes = {
                **changes,
                "reply_rules": [
                    parse_rule(r) if isinstance(r, str) else r for r in changes["reply_rules"]
                ],
            }
        new = dataclasses.replace(self, **changes)
        new.check()
        return new

    def check(self) -> None:
        for name in (
            "p_500",
            "p_503",
            "p_429",
            "p_slow",
            "p_drop",
            "p_accept_then_500",
            "p_delivery_failed",
            "p_unreachable",
            "share_imessage",
            "share_sms",
            "share_rcs",
            "reply_rate",
            "webhook_duplicate_rate",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
        total = sum(getattr(self, f"p_{n}") for n in FAULT_NAMES)
        if total > 1:
            raise ValueError("the fault probabilities add up to more than 1")
        if self.share_imessage + self.share_sms + self.share_rcs <= 0:
            raise ValueError("the protocol shares must not all be 0")
        for name in (
            "latency_ms",
            "jitter_ms",
            "slow_ms",
            "sent_after_ms",
            "delivered_after_ms",
            "delivery_jitter_ms",
            "reply_after_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a number >= 0")
        if self.delivered_after_ms < self.sent_after_ms:
            raise ValueError("delivered_after_ms must not be less than sent_after_ms")
        if self.retry_after_s is not None and (
            not isinstance(self.retry_after_s, int | float) or self.retry_after_s < 0
        ):
            raise ValueError("retry_after_s must be a number >= 0 or null")
        for name in ("outbound_limit", "new_conversation_cap"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an integer >= 0 or null")
        if self.fault_scope not in ("all", "send"):
            raise ValueError("fault_scope must be 'all' or 'send'")
        if not isinstance(self.fault_script, list):
            raise ValueError("fault_script must be a list")
        for name in self.fault_script:
            if name not in FAULT_NAMES and name not in ("", None):
                raise ValueError(f"unknown fault {name!r} in fault_script; one of {FAULT_NAMES}")
        if not isinstance(self.api_key, str) or not self.api_key:
            raise ValueError("api_key must be a non-empty string")
        for name in ("numbers", "inbound_only_numbers", "unreachable"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
        if not isinstance(self.reply_text, str):
            raise ValueError("reply_text must be a string")
        if not isinstance(self.reply_rules, list):
            raise ValueError("reply_rules must be a list")
        for rule in self.reply_rules:
            check_rule(rule)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError("seed must be an integer")
