"""Deterministic Idempotency-Keys, and the content hash that tells a fixed text from the one sent.

A key depends only on the campaign id, its revision, the step id, the normalised chat id and
the message's index within the step: never on content, a clock or randomness. So a re-run
after a crash sends nothing twice, and fixing a typo half-way sends the fixed text only to
those who have not had the step yet. Bump `revision` to send again on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from runner.planning.jsonenc import encode_sorted

KEY_PREFIX = "rnr1-"  # versioned, so a future change of derivation cannot collide with this one


def idempotency_key(
    campaign_id: str, revision: int, step_id: str, chat: str, index: int = 0
) -> str:
    """The Idempotency-Key of message ``index`` of step ``step_id`` to ``chat`` (normalised):
    the derivation itself, public as ``runner.idempotency_key`` (a journal row or the API's
    records can be found by it). A printable key of 45 characters (the API sets no limit; 64
    is our own bound); the planner's ``step_keys`` gives the same keys faster."""
    # \x1f (unit separator) cannot appear in slugs or chat ids, so fields cannot run together.
    material = f"{campaign_id}\x1f{revision}\x1f{step_id}\x1f{chat}\x1f{index}".encode()
    return KEY_PREFIX + hashlib.sha256(material).hexdigest()[:40]


def step_keys(campaign_id: str, revision: int, step_id: str) -> Callable[[str, int], str]:
    """``idempotency_key`` for one step, as a function of (chat, index): the same keys, with
    the hash of the fields every recipient shares computed once (the planner's hot loop)."""
    shared = hashlib.sha256(f"{campaign_id}\x1f{revision}\x1f{step_id}\x1f".encode())
    copy = shared.copy

    def key(chat: str, index: int = 0) -> str:
        h = copy()
        h.update(f"{chat}\x1f{index}".encode())
        return KEY_PREFIX + h.hexdigest()[:40]

    return key


def content_hash(body: dict[str, Any]) -> str:
    """A stable hash of a request body, so a plan can tell who received older content of a step.

    The key does not change when a text is fixed; this hash does. The journal stores it for
    each attempt, and ``plan`` compares it with the hash of the planned body.
    """
    # reply_to is left out: it is resolved at send time and is not content.
    content = {k: v for k, v in body.items() if k != "reply_to"}
    canonical = encode_sorted(content)  # json.dumps(sort_keys, compact, UTF-8), cheaper
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def answer_key(kind: str, chat: str, period: str = "") -> str:
    """The key of an answer the runner owes a chat (a HELP reply: ``period`` is its UTC day, so
    one answer a day; an opt-out's one confirmation: no period, so one ever). The fields cannot
    meet a campaign's: "answer" and ``kind`` stand where a campaign id and revision stand."""
    material = f"answer\x1f{kind}\x1f{chat}\x1f{period}".encode()
    return KEY_PREFIX + hashlib.sha256(material).hexdigest()[:40]
