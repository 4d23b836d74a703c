"""Compact JSON with sorted keys and UTF-8 kept, as ``json.dumps(obj, sort_keys=True,
ensure_ascii=False, separators=(",", ":"))`` writes it, for the per-request hot paths (plan
lines, content hashes).

``JSONEncoder.encode`` builds a new C encoder (and a closure) on every call, about a third of
the cost of a small body; here it is built once, with the arguments ``iterencode`` would pass,
so the bytes are the same. Its circular-reference markers are cleared after a failure, as a
fresh encoder would start empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _make_encode() -> Callable[[Any], str]:
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return _ENCODER.encode
    markers: dict[int, Any] = {}
    c_encode = c_make_encoder(
        markers,
        _ENCODER.default,
        json.encoder.encode_basestring,
        None,
        _ENCODER.key_separator,
        _ENCODER.item_separator,
        True,
        False,
        True,
    )
    join = "".join

    def encode(obj: Any) -> str:
        try:
            return join(c_encode(obj, 0))
        except BaseException:
            markers.clear()
            raise

    return encode


encode_sorted: Callable[[Any], str] = _make_encode()
