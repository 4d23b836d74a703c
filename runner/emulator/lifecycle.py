"""Who can be reached how, and when each message is sent and delivered.

Both are derived from the seed and the contact or message id alone (a hash, not the shared
fault ``Random``), so a contact always has the same reach and a message's fate does not depend
on which requests happened to arrive before it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from runner.emulator.config import EmulatorConfig

_SCALE = float(1 << 32)


def uniforms(seed: int, label: str, n: int) -> list[float]:
    """``n`` stable numbers in [0, 1) for ``label`` under ``seed``."""
    digest = hashlib.blake2b(f"{seed}|{label}".encode(), digest_size=4 * n).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "big") / _SCALE for i in range(n)]


@dataclass(frozen=True, slots=True)
class Reach:
    kind: str  # "phone" | "email"
    imessage: bool
    sms: bool
    protocol: str | None  # what a message to this contact travels as; None = unreachable


def contact_reach(config: EmulatorConfig, contact: str, kind: str) -> Reach:
    u_reach, u_proto = uniforms(config.seed, "contact:" + contact, 2)
    unreachable = contact in config.unreachable or u_reach < config.p_unreachable
    if kind == "email":
        # Email addresses are only reachable through iMessage.
        return Reach("email", not unreachable, False, None if unreachable else "imessage")
    if unreachable:
        return Reach("phone", False, False, None)
    total = config.share_imessage + config.share_sms + config.share_rcs
    x = u_proto * total
    if x < config.share_imessage:
        return Reach("phone", True, True, "imessage")
    if x < config.share_imessage + config.share_sms:
        return Reach("phone", False, True, "sms")
    return Reach("phone", False, True, "rcs")


@dataclass(frozen=True, slots=True)
class Fate:
    sent_at: float  # emulator seconds
    done_at: float
    outcome: str  # "delivered" | "failed"
    protocol: str  # protocol once sent
    error: str | None


UNREACHABLE_ERROR = "Recipient is not reachable over iMessage, SMS or RCS"


def message_fate(config: EmulatorConfig, message_id: str, t0: float, protocol: str | None) -> Fate:
    """When a message accepted at ``t0`` is sent and settles, and how."""
    u_sent, u_done, u_fail = uniforms(config.seed, "msg:" + message_id, 3)
    jitter = config.delivery_jitter_ms
    sent_at = t0 + (config.sent_after_ms + u_sent * jitter) / 1000.0
    done_at = max(sent_at, t0 + (config.delivered_after_ms + u_done * jitter) / 1000.0)
    if protocol is None:
        return Fate(sent_at, done_at, "failed", "unknown", UNREACHABLE_ERROR)
    if u_fail < config.p_delivery_failed:
        return Fate(sent_at, done_at, "failed", protocol, config.delivery_error)
    return Fate(sent_at, done_at, "delivered", protocol, None)
