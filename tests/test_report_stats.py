"""Reply-rate intervals: Wilson for one proportion, Newcombe's method 10 for a difference,
against the published values (Newcombe 1998, Statistics in Medicine 17:873-890, Table II),
and what a comparison says for small samples and intervals spanning 0."""

from __future__ import annotations

import pytest

from runner.report.stats import compare, newcombe, wilson


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
    ],
)
def test_newcombe_method_10_matches_the_papers_table(x1, n1, x2, n2, low, high):
    got = newcombe(x1, n1, x2, n2)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_known_values_and_edges():
    # Newcombe 1998 (the single-proportion paper) example: 81/263 -> 0.2553 to 0.3662.
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=5e-5)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_the_difference_is_antisymmetric():
    low, high = newcombe(12, 40, 30, 50)
    back = newcombe(30, 50, 12, 40)
    assert back == pytest.approx((-high, -low))


def test_what_a_comparison_says():
    assert compare("a", 9, 10, "b", 3, 10).verdict == "too_small"  # clear, but 10 each
    tied = compare("a", 20, 100, "b", 18, 100)
    assert tied.verdict == "no_clear_difference" and tied.low < 0 < tied.high
    clear = compare("a", 40, 100, "b", 10, 100)
    assert clear.verdict == "a_higher" and clear.difference == pytest.approx(0.3)
    assert compare("a", 10, 100, "b", 40, 100).verdict == "b_higher"
    assert clear.to_dict()["ci95"] == [round(clear.low, 4), round(clear.high, 4)]
