"""encode_sorted writes what json.dumps(sort_keys=True, compact, UTF-8) writes."""

from __future__ import annotations

import json

import pytest

from runner.planning.jsonenc import encode_sorted

CASES = [
    {
        "text": 'Hi \u00e9 \u2713 \u2028 "q" \\ \n',
        "effect": "confetti",
        "n": 1,
        "f": 1.5,
        "big": 10**30,
        "b": True,
        "z": None,
        "l": [1, {"b": 2, "a": []}],
        "t": (1, 2),
        "parts": [{"text": "a"}],
    },
    {"x": float("nan"), "y": float("inf")},
    {2: "int keys", 1: 1},
    [],
    "plain",
]


@pytest.mark.parametrize("obj", CASES)
def test_same_text_as_json_dumps(obj):
    expected = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert encode_sorted(obj) == expected


def test_a_circular_body_fails_each_time_and_leaves_no_trace():
    loop: list = []
    loop.append(loop)
    for _ in range(2):
        with pytest.raises(ValueError, match="Circular"):
            encode_sorted({"a": loop})
    body = {"a": [1]}
    assert encode_sorted(body) == '{"a":[1]}'
