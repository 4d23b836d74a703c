"""What a text costs if it falls back to SMS: its segments (GSM 03.38 / 3GPP TS 23.038).

GSM-7 carries 160 characters in one segment, 153 a segment when split (the rest is the
concatenation header); a character of the extension table (€ [ ] { } ...) takes two. One
character outside GSM-7 (a curly apostrophe, an emoji) makes the whole text UCS-2: 70 in one
segment, 67 when split, counted in UTF-16 code units (an emoji outside the BMP takes two).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENDED = "^{}\\[~]|€\f"
_NOT_GSM = re.compile("[^" + re.escape(_BASIC.replace("\x1b", "") + _EXTENDED) + "]")
_EXT = re.compile("[" + re.escape(_EXTENDED) + "]")
# ASCII that is not one GSM-7 septet: extension characters (two) and the backtick (none).
ASCII_ODD = re.compile(r"[\[\]{}\\^~|`]")


@dataclass(frozen=True)
class Segments:
    count: int
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    culprit: str | None = None  # the first character that forced UCS-2
    position: int | None = None  # its 1-based position in the text

    def culprit_name(self) -> str:
        if self.culprit is None:
            return ""
        name = unicodedata.name(self.culprit, "")
        code = f"U+{ord(self.culprit):04X}"
        return f"'{self.culprit}' ({code}{' ' + name if name else ''})"


def plain_count(text: str) -> int | None:
    """The segments of plain ASCII text that is all GSM-7 (nearly every message), fast; None
    for any other text (ask `segments`)."""
    if text.isascii() and ASCII_ODD.search(text) is None:
        n = len(text)
        return 1 if n <= 160 else -(-n // 153)
    return None


def segments(text: str) -> Segments:
    """How many SMS segments `text` takes, and in which encoding."""
    bad = _NOT_GSM.search(text)
    if bad is None:
        units = len(text) + len(_EXT.findall(text))
        return Segments(1 if units <= 160 else -(-units // 153), "GSM-7", units)
    units = len(text.encode("utf-16-le")) // 2
    return Segments(
        1 if units <= 70 else -(-units // 67), "UCS-2", units, bad.group(), bad.start() + 1
    )


class SegmentTally:
    """Segments of many texts of one step, counted in batches: nearly every text is plain
    GSM-7 ASCII, which one join, one `isascii` and one regex search check for a whole batch
    (a plan renders a million of them; one Python check each would cost a tenth of the plan)."""

    BATCH = 512

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # the policy's max_segments
        self.texts: list[str] = []
        self.messages = 0
        self.segments = 0
        self.most = 0
        self.over = 0
        self.ucs2: Segments | None = None  # the first text that needed UCS-2

    def add(self, text: str) -> None:
        self.texts.append(text)
        if len(self.texts) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        texts, self.texts = self.texts, []
        if "" in texts:  # a text that rendered empty is no message
            texts = [t for t in texts if t]
        if not texts:
            return
        joined = "\x1f".join(texts)
        if joined.isascii() and ASCII_ODD.search(joined) is None:
            counts = [1 if n <= 160 else -(-n // 153) for n in map(len, texts)]
        else:
            counts = []
            for text in texts:
                seg = segments(text)
                if seg.culprit is not None and self.ucs2 is None:
                    self.ucs2 = seg
                counts.append(seg.count)
        self.messages += len(texts)
        self.segments += sum(counts)
        self.most = max(self.most, max(counts))
        if self.limit:
            self.over += sum(1 for c in counts if c > self.limit)
