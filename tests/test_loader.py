"""The YAML loader: positions of every value, and refusal (never a traceback, never code run)
of duplicate keys, tags, alias bombs, oversized files and garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.campaign import loader
from runner.campaign.loader import load_file, load_text
from runner.errors import CampaignError
from runner.source.document import format_path


def problems_of(text: str) -> list[tuple[int | None, int | None, str]]:
    with pytest.raises(CampaignError) as info:
        load_text(text, "c.yaml")
    return [(p.line, p.column, p.message) for p in info.value.problems]


def test_values_and_keys_keep_their_line_and_column():
    doc = load_text("version: 1\nsteps:\n  - id: hello\n    text: 'Hi'\n", "c.yaml")
    assert doc.data == {"version": 1, "steps": [{"id": "hello", "text": "Hi"}]}
    assert doc.locate(("steps", 0, "text")) == (4, 11)
    assert doc.locate(("steps", 0, "text"), key=True) == (4, 5)
    assert doc.locate(("steps", 0)) == (3, 5)


def test_locate_falls_back_to_the_nearest_ancestor():
    doc = load_text("steps:\n  - id: hello\n", "c.yaml")
    assert doc.locate(("steps", 0, "parts", 3, "text")) == (2, 5)
    assert doc.locate(("nowhere",)) == (1, 1)


def test_problem_carries_file_line_and_json_path():
    doc = load_text("steps:\n  - id: hello\n    text: Hi\n", "c.yaml")
    p = doc.problem(("steps", 0, "text"), "bad", "fix it")
    assert (p.file, p.line, p.column, p.path, p.hint) == (
        "c.yaml",
        3,
        11,
        "steps[0].text",
        "fix it",
    )


def test_format_path():
    assert format_path(("steps", 2, "parts", 0, "text")) == "steps[2].parts[0].text"
    assert format_path(()) == ""


def test_positions_survive_crlf_and_a_byte_order_mark():
    doc = load_text("\ufeffa: 1\r\nb: 2\r\n", "c.yaml")
    assert doc.data == {"a": 1, "b": 2}
    assert doc.locate(("b",)) == (2, 4)


def test_timestamps_stay_text():
    doc = load_text("not_before: 2026-12-01T14:00:00Z\nday: 2026-12-01\n", "c.yaml")
    assert doc.data == {"not_before": "2026-12-01T14:00:00Z", "day": "2026-12-01"}


def test_merge_keys_are_defaults_the_mapping_overrides():
    doc = load_text("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  y: 3\n", "c.yaml")
    assert doc.data["e"] == {"x": 1, "y": 3}


def test_non_string_keys_become_their_source_text():
    doc = load_text("1: a\ntrue: b\n", "c.yaml")
    assert doc.data == {"1": "a", "true": "b"}


def test_every_duplicate_key_is_reported_with_the_first_line():
    assert problems_of("a: 1\nb: 2\na: 3\na: 4\n") == [
        (3, 1, "duplicate key 'a' (first defined on line 1)"),
        (4, 1, "duplicate key 'a' (first defined on line 1)"),
    ]


def test_duplicate_keys_inside_a_step():
    [(line, _col, message)] = problems_of("steps:\n  - id: a\n    text: x\n    text: y\n")
    assert line == 4 and "duplicate key 'text'" in message


@pytest.mark.parametrize(
    "value, tag",
    [
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ('!!python/object/apply:os.system ["true"]', "!!python/object/apply:os.system"),
        ("!!python/object/new:os.system [true]", "!!python/object/new:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!!python/module:os ''", "!!python/module:os"),
        ("!custom 3", "!custom"),
        ("!!set {a, b}", "!!set"),
        ("!<tag:yaml.org,2002:python/object:os.system> {}", "!!python/object:os.system"),
    ],
)
def test_tags_are_refused_at_their_line(value: str, tag: str):
    [(line, col, message)] = problems_of(f"version: 1\nvars:\n  x: {value}\n")
    assert (line, col) == (3, 6)
    assert message == f"unsupported YAML tag {tag}"


def test_python_apply_tag_runs_nothing(tmp_path: Path):
    target = tmp_path / "made-by-yaml"
    problems_of(f'x: !!python/object/apply:os.mkdir ["{target}"]\n')
    assert not target.exists()


def test_custom_tag_directive_is_refused():
    [(line, _col, message)] = problems_of("%TAG ! tag:evil.example,2000:\n---\na: !x 1\n")
    assert line == 3 and message.startswith("unsupported YAML tag")


BILLION_LAUGHS = (
    "\n".join(
        ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [
            f"{n}: &{n} [{', '.join(['*' + p] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ]
    )
    + "\n"
)


def test_alias_bomb_is_refused_before_anything_is_built(monkeypatch: pytest.MonkeyPatch):
    built = []
    original = loader._Builder.build
    monkeypatch.setattr(
        loader._Builder, "build", lambda self, *a: built.append(1) or original(self, *a)
    )
    [(line, _col, message)] = problems_of(BILLION_LAUGHS)
    assert line == 1
    assert "alias bomb" in message
    assert built == []  # refused from the alias graph, without expanding it


def test_recursive_alias_is_refused():
    [(_line, _col, message)] = problems_of("loop: &loop [*loop]\n")
    assert "alias bomb" in message


def test_node_cap_boundary(monkeypatch: pytest.MonkeyPatch):
    # root + key a + list (1 + 9 items) + key b + list b (1 + n aliases of 10 values)
    monkeypatch.setattr(loader, "MAX_NODES", 100)
    items = ", ".join(["1"] * 9)

    def doc(n: int) -> str:
        return f"a: &a [{items}]\nb: [{', '.join(['*a'] * n)}]\n"

    assert load_text(doc(8), "c.yaml").data["b"][7] == [1] * 9  # 4 + 10 + 1 + 80 = 95 values
    assert "alias bomb" in problems_of(doc(9))[0][2]  # 105 values


def test_moderate_reuse_of_an_anchor_is_fine():
    text = "d: &d {use_typing_indicator: true}\n" + "".join(f"s{i}: *d\n" for i in range(50))
    assert load_text(text, "c.yaml").data["s49"] == {"use_typing_indicator": True}


def test_size_limit_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 64)
    body = "version: 1\n# padding\n"
    exact = tmp_path / "exact.yaml"
    exact.write_text(body + "#" * (64 - len(body) - 1) + "\n", encoding="utf-8")
    assert exact.stat().st_size == 64
    assert load_file(exact).data == {"version": 1}
    over = tmp_path / "over.yaml"
    over.write_bytes(exact.read_bytes() + b"\n")
    with pytest.raises(CampaignError) as info:
        load_file(over)
    assert "limit" in info.value.problems[0].message
    assert "CSV or JSONL" in (info.value.problems[0].hint or "")
    with pytest.raises(CampaignError):
        load_text(over.read_text(encoding="utf-8"), "over.yaml")


def test_a_real_file_over_10_mb_is_refused_without_parsing(tmp_path: Path):
    big = tmp_path / "big.yaml"
    with big.open("w", encoding="utf-8") as fh:
        fh.write("version: 1\nvars:\n")
        line = "  k{:07d}: " + "x" * 60 + "\n"
        for i in range(10 * 1024 * 1024 // 70 + 10):
            fh.write(line.format(i))
    assert big.stat().st_size > 10 * 1024 * 1024
    with pytest.raises(CampaignError) as info:
        load_file(big)
    [p] = info.value.problems
    assert "over the 10 MB limit" in p.message and p.file == str(big)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \n", b"# only a comment\n"])
def test_empty_files(tmp_path: Path, content: bytes):
    f = tmp_path / "empty.yaml"
    f.write_bytes(content)
    with pytest.raises(CampaignError) as info:
        load_file(f)
    [p] = info.value.problems
    assert p.message == "the file is empty" and p.line == 1


def test_not_utf8(tmp_path: Path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(CampaignError) as info:
        load_file(f)
    assert "not UTF-8" in info.value.problems[0].message


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_paths(tmp_path: Path, name: str):
    with pytest.raises(CampaignError) as info:
        load_file(tmp_path / name)
    assert "cannot read file" in info.value.problems[0].message


def test_control_characters_are_a_located_error_not_a_crash():
    [(line, _col, message)] = problems_of('version: 1\ntext: "Hi \x1b[1mthere"\n')
    assert line == 2
    assert "unacceptable character" in message


def test_deep_nesting_is_an_error_not_a_recursion_crash():
    [(_line, _col, message)] = problems_of("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in message


@pytest.mark.parametrize(
    "text",
    [
        "a: b: c",
        "- - x\n  y: 1",
        "{",
        "]",
        "*a",
        "%YAML 2.0\n---\na: 1",
        ":",
        "a: *",
        "\t",
        'a: "\\xZZ"',
        "a: [1, 2",
        "---\na: 1\n---\nb: 2\n",
        "? [1, 2]\n: x\n",
        "a: &x 1\nb: *y\n",
        "a: 1\n  b: 2\n",
        pytest.param("\x00", marks=()),
        pytest.param("a: \x7f", marks=()),
    ],
)
def test_garbage_is_a_located_campaign_error(text: str):
    problems = problems_of(text)
    assert problems
    assert all(line is not None and line >= 1 for line, _c, _m in problems)
