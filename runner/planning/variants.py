"""Which variant of a step a recipient gets: a stable weighted hash, the same on every run and
machine.

Weighted rendezvous hashing (weighted highest random weight): for each variant, a uniform
number u in (0, 1) is drawn from BLAKE2b (8 bytes) of (campaign id, step id, chat id, variant
id), and the variant with the highest score ``-weight / ln(u)`` wins. A variant wins with
probability weight / sum of weights, and each chat's scores do not depend on the other
variants, so:

- reordering the variants moves no chat;
- raising one weight moves chats only *to* that variant, lowering it moves chats only *from*
  it, and only as many as the change in share (50/50 → 60/40 moves about 10% of chats, all from
  the shrinking variant to the growing one);
- adding a variant moves only the chats it wins; removing one moves only its own chats.

Python's ``hash()`` is salted per process, so it is never used here; BLAKE2b and IEEE-754
``log`` give the same answer everywhere. The variant is not part of the idempotency key: a
recipient whose assignment changes after getting the step is not sent it again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

_SCALE = 2.0 ** -53


class Assigner:
    """One step's variants, ready to assign chats: the BLAKE2b state after the (campaign id,
    step id) prefix is kept and copied per chat, and the chat's own state copied per variant,
    so each byte is hashed once (the same digests as hashing the whole string each time)."""

    __slots__ = ("_prefix", "_variants")

    def __init__(self, campaign_id: str, step_id: str, variants: Sequence[tuple[str, float]]) -> None:
        self._prefix = hashlib.blake2b(f"{campaign_id}\x1f{step_id}\x1f".encode(), digest_size=8)
        self._variants = [(vid.encode(), float(weight)) for vid, weight in variants]

    def _chat_state(self, chat: str) -> hashlib.blake2b:
        h = self._prefix.copy()
        h.update(chat.encode() + b"\x1f")
        return h

    def scores(self, chat: str) -> list[float]:
        """Each variant's score for one chat (the highest wins)."""
        base = self._chat_state(chat)
        out = []
        log, from_bytes = math.log, int.from_bytes
        for vid, weight in self._variants:
            h = base.copy()
            h.update(vid)
            # 53 bits (a double's precision, so exact), offset by half a step: u is strictly
            # inside (0, 1), so ln(u) < 0.
            u = ((from_bytes(h.digest(), "big") >> 11) + 0.5) * _SCALE
            out.append(-weight / log(u))
        return out

    def choose(self, chat: str) -> int:
        """The index of the variant this chat gets (ties: the first listed); ``scores`` in one
        pass, as plan calls it once per recipient and step."""
        base = self._prefix.copy()
        base.update(chat.encode() + b"\x1f")
        log, from_bytes, copy = math.log, int.from_bytes, base.copy
        best, best_score, i = 0, -1.0, 0
        for vid, weight in self._variants:
            h = copy()
            h.update(vid)
            score = -weight / log(((from_bytes(h.digest(), "big") >> 11) + 0.5) * _SCALE)
            if score > best_score:
                best, best_score = i, score
            i += 1
        return best


def variant_scores(campaign_id: str, step_id: str, chat: str,
                   variants: Sequence[tuple[str, float]]) -> list[float]:
    """Each variant's score for one chat (the highest wins); ``variants`` are (id, weight)."""
    return Assigner(campaign_id, step_id, variants).scores(chat)


def choose(campaign_id: str, step_id: str, chat: str, variants: Sequence[tuple[str, float]]) -> int:
    """The index in ``variants`` of the variant this chat gets (ties: the first listed)."""
    return Assigner(campaign_id, step_id, variants).choose(chat)
