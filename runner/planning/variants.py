"""Which variant of a step a recipient gets: a stable weighted hash, the same on every run and
machine.

Weighted rendezvous hashing (weighted highest random weight): for each variant, a uniform
number u in (0, 1) is drawn from SHA-256 of (campaign id, step id, chat id, variant id), and the
variant with the highest score ``-weight / ln(u)`` wins. A variant wins with probability
weight / sum of weights, and each chat's scores do not depend on the other variants, so:

- reordering the variants moves no chat;
- raising one weight moves chats only *to* that variant, lowering it moves chats only *from*
  it, and only as many as the change in share (50/50 → 60/40 moves about 10% of chats, all from
  the shrinking variant to the growing one);
- adding a variant moves only the chats it wins; removing one moves only its own chats.

Python's ``hash()`` is salted per process, so it is never used here; SHA-256 and IEEE-754
``log`` give the same answer everywhere. The variant is not part of the idempotency key: a
recipient whose assignment changes after getting the step is not sent it again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

_SCALE = 2.0 ** -53


def variant_scores(campaign_id: str, step_id: str, chat: str,
                   variants: Sequence[tuple[str, float]]) -> list[float]:
    """Each variant's score for one chat (the highest wins); ``variants`` are (id, weight)."""
    prefix = hashlib.sha256(f"{campaign_id}\x1f{step_id}\x1f{chat}\x1f".encode())
    out = []
    for vid, weight in variants:
        h = prefix.copy()
        h.update(vid.encode())
        # 53 bits (a double's precision, so exact), offset by half a step: u is strictly
        # inside (0, 1), so ln(u) < 0.
        u = ((int.from_bytes(h.digest()[:8], "big") >> 11) + 0.5) * _SCALE
        out.append(-weight / math.log(u))
    return out


def choose(campaign_id: str, step_id: str, chat: str, variants: Sequence[tuple[str, float]]) -> int:
    """The index in ``variants`` of the variant this chat gets (ties: the first listed)."""
    scores = variant_scores(campaign_id, step_id, chat, variants)
    return max(range(len(scores)), key=scores.__getitem__)
