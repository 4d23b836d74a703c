"""Where the loader says a value is: lines count only real newlines, and a merged key never
takes the position of the mapping's own key."""

from __future__ import annotations

from runner.campaign.loader import load_text


def test_lines_count_newlines_only_even_with_unicode_line_separators():
    d = load_text('name: "a\u2028b"\nother: 1\n', "f.yaml")
    assert d.locate(("other",)) == (2, 8)


def test_merged_keys_do_not_take_the_position_of_the_mappings_own_keys():
    d = load_text("base: &b\n  x: 1\n  y: 2\nm:\n  y: 3\n  <<: *b\n", "f.yaml")
    assert d.data["m"] == {"y": 3, "x": 1}
    assert d.locate(("m", "y")) == (5, 6)
