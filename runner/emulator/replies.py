"""Automatic replies: which accepted messages a recipient answers, with what, and when.

A rehearsal of the whole loop (send, track, opt-outs, reply rates per variant) needs recipients
who answer without a test calling POST /__emulator/reply for each. Whether a message is answered
is a hash of the seed, its chat, its Idempotency-Key and its index in the request (not the
shared fault ``Random`` and not the message id, which depends on arrival order), so the same
run against the same seed gets the same replies however its requests interleave.

Rules pick replies by the message's text: a variant is told apart by its wording, so
``--reply-rule '^Hi=0.2:Yes'`` and ``--reply-rule 'code=0.05:STOP'`` rehearse two variants
with different reply and opt-out rates.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_REPLY_TEXT = "Yes please"
# REGEX=RATE:TEXT, split at the first `=RATE:` so the reply text may hold `:` and `=`.
_RULE = re.compile(r"^(?P<pattern>.+?)=(?P<rate>\d+(?:\.\d*)?|\.\d+):(?P<text>.*)$", re.S)


def parse_rule(raw: str) -> dict[str, Any]:
    """``'REGEX=RATE:TEXT'`` as a config rule ``{pattern, rate, text}`` (ValueError if not)."""
    m = _RULE.match(raw)
    if not m:
        raise ValueError(f"reply rule {raw!r} is not REGEX=RATE:TEXT (e.g. 'code=0.05:STOP')")
    rule = {"pattern": m.group("pattern"), "rate": float(m.group("rate")), "text": m.group("text")}
    check_rule(rule)
    return rule


def check_rule(rule: Any) -> None:
    if isinstance(rule, str):
        parse_rule(rule)
        return
    if (
        not isinstance(rule, dict)
        or set(rule) - {"pattern", "rate", "text"}
        or "pattern" not in rule
    ):
        raise ValueError("each reply rule is {pattern, rate, text} or 'REGEX=RATE:TEXT'")
    if not isinstance(rule["pattern"], str):
        raise ValueError("a reply rule's pattern must be a string")
    try:
        re.compile(rule["pattern"])
    except re.error as err:
        raise ValueError(f"reply rule pattern {rule['pattern']!r}: {err}") from None
    rate = rule.get("rate", 1.0)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError(f"reply rule {rule['pattern']!r}: rate must be a number between 0 and 1")
    if not isinstance(rule.get("text", ""), str):
        raise ValueError(f"reply rule {rule['pattern']!r}: text must be a string")


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    rate: float
    text: str


class ReplyPlan:
    """The reply settings of one config, compiled once."""

    def __init__(self, seed: int, rate: float, text: str, rules: list[Any]) -> None:
        self.seed = seed
        self.rate = rate
        self.text = text or DEFAULT_REPLY_TEXT
        self.rules: list[_Rule] = []
        for raw in rules:
            rule = parse_rule(raw) if isinstance(raw, str) else raw
            self.rules.append(
                _Rule(
                    re.compile(rule["pattern"]),
                    float(rule.get("rate", 1.0)),
                    rule.get("text") or self.text,
                )
            )

    @property
    def active(self) -> bool:
        return self.rate > 0 or any(r.rate > 0 for r in self.rules)

    def reply_to(self, chat_id: str, key: str | None, index: int, text: str | None) -> str | None:
        """The reply this outbound message gets, or None. The first rule whose pattern is found
        in the text decides; a text no rule matches is answered at the base rate."""
        rate, reply = self.rate, self.text
        body = text or ""
        for rule in self.rules:
            if rule.pattern.search(body):
                rate, reply = rule.rate, rule.text
                break
        if rate <= 0:
            return None
        label = f"reply:{chat_id}|{key if key is not None else body}|{index}"
        return reply if _uniform(self.seed, label) < rate else None


def _uniform(seed: int, label: str) -> float:
    # lifecycle.uniforms' scheme; not imported from there because config.py (which lifecycle
    # needs) checks rules with this module.
    digest = hashlib.blake2b(f"{seed}|{label}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / float(1 << 32)
