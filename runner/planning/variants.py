"""Which variant of a step a recipient gets: a stable weighted hash, the same on every run and
machine.

Two levels, as Redis Cluster hashes keys to slots and Ceph objects to placement groups:

1. a chat's **slot**: CRC-16/XMODEM (Redis Cluster's slot hash) of (campaign id, step id, chat
   id), modulo 4,096 slots; a CRC spreads similar keys (numbers in a row) evenly;
2. a slot's **variant**: weighted rendezvous hashing (weighted highest random weight). For each
   variant, a uniform number u in (0, 1) is drawn from BLAKE2b (8 bytes) of (campaign id,
   step id, slot, variant id), and the variant with the highest score ``-weight / ln(u)``
   wins. A variant wins a slot with probability weight / sum of weights, and each slot's
   scores do not depend on the other variants, so:

   - reordering the variants moves no chat;
   - raising one weight moves slots (and their chats) only *to* that variant, lowering it
     moves them only *from* it, and only as many as the change in share (50/50 → 60/40 moves
     about 10% of chats, all from the shrinking variant to the growing one);
   - adding a variant moves only the slots it wins; removing one moves only its own.

Why slots: the rendezvous draw costs one BLAKE2b per variant, which per recipient was the
larger part of what variants add to a plan; with slots it is made once per slot a plan meets
(4,096 at most per step) and a recipient costs one CRC, whatever the number of variants. The price is granularity: a share is a whole
number of slots, so a 50/50 split lands within about ±0.8 points of 50% (one standard
deviation over the slots), besides the recipients' own chance. ``plan`` shows the split as
it is.

Python's ``hash()`` is salted per process, so it is never used here; CRC-16, BLAKE2b and
IEEE-754 ``log`` give the same answer everywhere. The variant is not part of the idempotency key: a
recipient whose assignment changes after getting the step is not sent it again.
"""

from __future__ import annotations

import binascii
import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.campaign.load import Step

SLOTS = 1 << 12
_SCALE = 2.0 ** -53


class Assigner:
    """One step's variants, ready to assign chats: the CRC of the (campaign id, step id) prefix
    is kept and continued per chat; each slot's variant is drawn once, the first time a chat
    lands in it."""

    __slots__ = ("_chat_crc", "_slot_prefix", "_variants", "_table")

    def __init__(self, campaign_id: str, step_id: str, variants: Sequence[tuple[str, float]]) -> None:
        prefix = f"{campaign_id}\x1f{step_id}\x1f".encode()
        self._chat_crc = binascii.crc_hqx(prefix, 0)
        self._slot_prefix = hashlib.blake2b(prefix + b"slot\x1f", digest_size=8)
        self._variants = [(b"\x1f" + vid.encode(), float(weight)) for vid, weight in variants]
        self._table = [-1] * SLOTS  # slot → variant index, -1 until drawn

    def slot(self, chat: str) -> int:
        """The chat's slot, 0 ≤ slot < SLOTS."""
        return binascii.crc_hqx(chat.encode(), self._chat_crc) & (SLOTS - 1)

    def scores(self, slot: int) -> list[float]:
        """Each variant's score for one slot (the highest wins)."""
        base = self._slot_prefix.copy()
        base.update(slot.to_bytes(2, "big"))
        out = []
        for vid, weight in self._variants:
            h = base.copy()
            h.update(vid)
            # 53 bits (a double's precision, so exact), offset by half a step: u is strictly
            # inside (0, 1), so ln(u) < 0.
            u = ((int.from_bytes(h.digest(), "big") >> 11) + 0.5) * _SCALE
            out.append(-weight / math.log(u))
        return out

    def _draw(self, slot: int) -> int:
        scores = self.scores(slot)
        best = scores.index(max(scores))  # ties: the first listed
        self._table[slot] = best
        return best

    def choose(self, chat: str) -> int:
        """The index of the variant this chat gets; plan calls it once per recipient and step."""
        slot = binascii.crc_hqx(chat.encode(), self._chat_crc) & (SLOTS - 1)
        best = self._table[slot]
        return best if best >= 0 else self._draw(slot)


def step_assigner(campaign_id: str, step: Step) -> Assigner:
    """The assignment of a step with variants (its views' ids and weights)."""
    return Assigner(campaign_id, step.id, [(v.variant or "", v.weight) for v in step.variants])


def choose(campaign_id: str, step_id: str, chat: str, variants: Sequence[tuple[str, float]]) -> int:
    """The index in ``variants`` of the variant this chat gets (ties: the first listed)."""
    return Assigner(campaign_id, step_id, variants).choose(chat)
