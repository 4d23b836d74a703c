"""Which variant of a step a recipient gets: a stable weighted hash, the same on every run and
machine.

Two levels, as Redis Cluster hashes keys to slots and Ceph objects to placement groups:

1. a chat's **slot**: CRC-16/XMODEM (Redis Cluster's slot hash) of (campaign id, step id, chat
   id), modulo 16,384 slots; a CRC spreads similar keys (numbers in a row) evenly;
2. a slot's **variant**: weighted rendezvous hashing (weighted highest random weight). Each
   variant has a stream of uniform numbers u in (0, 1), one per slot, read from SHAKE-256 of
   (campaign id, step id, variant id); in each slot the variant with the highest score
   ``-weight / ln(u)`` wins. A variant wins a slot with probability weight / sum of weights,
   and a variant's numbers do not depend on the other variants, so:

   - reordering the variants moves no chat;
   - raising one weight moves slots (and their chats) only *to* that variant, lowering it
     moves them only *from* it, and only as many as the change in share (50/50 → 60/40 moves
     about 10% of chats, all from the shrinking variant to the growing one);
   - adding a variant moves only the slots it wins; removing one moves only its own.

Why slots: a rendezvous draw per recipient costs a hash per variant, which was most of what
variants added to a plan. With slots, each variant's numbers for all 16,384 slots come from one
SHAKE-256 call and the winner of every slot is settled when the step is loaded (about 6 ms for
two variants); a recipient then costs one CRC and a table look-up, whatever the number of
variants. The price is granularity: a share is a whole number of slots, so a 50/50 split lands
within about ±0.4 points of 50% (one standard deviation over the slots), besides the
recipients' own chance. ``plan`` shows the split as it is.

Python's ``hash()`` is salted per process, so it is never used here; CRC-16, SHAKE-256 and
IEEE-754 ``log`` give the same answer everywhere. The variant is not part of the idempotency
key: a recipient whose assignment changes after getting the step is not sent it again.
"""

from __future__ import annotations

import binascii
import hashlib
import math
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache

from runner.campaign.load import Step

SLOTS = 1 << 14
# A double in [1, 2) whose 52 fraction bits are random, minus this, is strictly inside (0, 1),
# exactly: (d - 1) + 2**-53 is a multiple of 2**-53 below 1, which a double holds.
_OFFSET = 1.0 - 2.0**-53
# A big-endian double's second byte: the exponent's low 4 bits (all set, for 2**0) and the top 4
# fraction bits (kept).
_SECOND_BYTE = bytes(0xF0 | (b & 0x0F) for b in range(256))


def _column(seed: str, weight: float) -> list[float]:
    """One variant's score in every slot, ``-weight / ln(u)``, its numbers u read from the
    SHAKE-256 stream of ``seed``: 8 bytes per slot, made a double in [1, 2) by setting the
    sign and exponent bits (52 random bits each), all in a few bulk operations."""
    raw = bytearray(hashlib.shake_256(seed.encode()).digest(8 * SLOTS))
    raw[0::8] = b"\x3f" * SLOTS
    raw[1::8] = raw[1::8].translate(_SECOND_BYTE)
    log, neg = math.log, -weight
    return [neg / log(d - _OFFSET) for d in struct.unpack(f">{SLOTS}d", raw)]


class Assigner:
    """One step's variants, ready to assign chats: every slot's winner is settled here, and the
    CRC of the (campaign id, step id) prefix is kept and continued per chat."""

    __slots__ = ("_chat_crc", "_scores", "_table")

    def __init__(
        self, campaign_id: str, step_id: str, variants: Sequence[tuple[str, float]]
    ) -> None:
        prefix = f"{campaign_id}\x1f{step_id}\x1f"
        self._chat_crc = binascii.crc_hqx(prefix.encode(), 0)
        self._scores = [_column(prefix + vid, float(weight)) for vid, weight in variants]
        # The winner of each slot (ties: the first listed).
        self._table = [row.index(max(row)) for row in zip(*self._scores, strict=True)]

    def slot(self, chat: str) -> int:
        """The chat's slot, 0 ≤ slot < SLOTS."""
        return binascii.crc_hqx(chat.encode(), self._chat_crc) & (SLOTS - 1)

    def scores(self, slot: int) -> list[float]:
        """Each variant's score in one slot (the highest wins)."""
        return [column[slot] for column in self._scores]

    def choose(
        self,
        chat: str,
        _crc: Callable[[bytes, int], int] = binascii.crc_hqx,
        _mask: int = SLOTS - 1,
    ) -> int:
        """The index of the variant this chat gets; plan calls it once per recipient and step
        (the CRC function and mask are bound as defaults: no global look-ups in that loop)."""
        return self._table[_crc(chat.encode(), self._chat_crc) & _mask]


def step_assigner(campaign_id: str, step: Step) -> Assigner:
    """The assignment of a step with variants (its views' ids and weights)."""
    return Assigner(campaign_id, step.id, [(v.variant or "", v.weight) for v in step.variants])


@lru_cache(maxsize=32)
def _assigner(campaign_id: str, step_id: str, variants: tuple[tuple[str, float], ...]) -> Assigner:
    return Assigner(campaign_id, step_id, variants)


def choose(campaign_id: str, step_id: str, chat: str, variants: Sequence[tuple[str, float]]) -> int:
    """The index in ``variants`` of the variant this chat gets (ties: the first listed)."""
    return _assigner(campaign_id, step_id, tuple((v, float(w)) for v, w in variants)).choose(chat)
