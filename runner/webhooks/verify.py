"""A webhook's signature, checked before its body is parsed.

Blooio signs each delivery with ``X-Blooio-Signature: t=<unix seconds>,v1=<hex>``, where v1 is
HMAC-SHA256 with the subscription's signing secret over the bytes ``{t}.{raw body}``. A delivery
is accepted when one v1 matches one of the secrets (several during a rotation), compared in
constant time, and ``t`` is within five minutes of now either way (an old delivery replayed by
someone who captured it is refused). Pure: header, body, secrets and clock in, a verdict out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum

TOLERANCE_S = 300
SIGNATURE_HEADERS = ("x-blooio-signature", "blooio-signature")


class Check(StrEnum):
    OK = "ok"
    MISSING = "no signature header"
    MALFORMED = "the signature header is not t=...,v1=..."
    STALE = "signed more than 5 minutes ago"
    FUTURE = "signed more than 5 minutes in the future"
    MISMATCH = "the signature does not match any secret"


def signature(secret: str, t: int, body: bytes) -> str:
    """The v1 value for ``body`` signed at ``t`` (the emulator and the tests sign with it)."""
    return hmac.new(
        secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256
    ).hexdigest()


def header_value(secret: str, t: int, body: bytes) -> str:
    return f"t={t},v1={signature(secret, t, body)}"


def verify(header: str | None, body: bytes, secrets: Sequence[str], now: float) -> Check:
    if not header:
        return Check.MISSING
    t: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            t = int(value)
        elif name == "v1" and value:
            sigs.append(value.strip())
    if t is None or not sigs:
        return Check.MALFORMED
    if now - t > TOLERANCE_S:
        return Check.STALE
    if t - now > TOLERANCE_S:
        return Check.FUTURE
    expected = [signature(s, t, body) for s in secrets if s]
    # Every pair compared, so the time taken says nothing about which secret or byte differed.
    ok = False
    for want in expected:
        for got in sigs:
            ok |= hmac.compare_digest(want.encode("ascii"), got.encode("ascii", "replace"))
    return Check.OK if ok else Check.MISMATCH
