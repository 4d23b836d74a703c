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

_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
          "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_EXTENDED = "^{}\\[~]|€\f"
_NOT_GSM = re.compile("[^" + re.escape(_BASIC.replace("\x1b", "") + _EXTENDED) + "]")
_EXT = re.compile("[" + re.escape(_EXTENDED) + "]")


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


def segments(text: str) -> Segments:
    """How many SMS segments `text` takes, and in which encoding."""
    bad = _NOT_GSM.search(text)
    if bad is None:
        units = len(text) + len(_EXT.findall(text))
        return Segments(1 if units <= 160 else -(-units // 153), "GSM-7", units)
    units = len(text.encode("utf-16-le")) // 2
    return Segments(1 if units <= 70 else -(-units // 67), "UCS-2", units, bad.group(),
                    bad.start() + 1)
