"""A/B variants of a step (issue 15 item 1): stable weighted assignment, keys without the
variant, rules per variant with lines, plan split and previews, the journal's variant column."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import runner
from runner.campaign.load import load_campaign
from runner.cli import main
from runner.errors import CampaignError
from runner.planning.planner import JournalOverlay, Planner, iter_plan
from runner.planning.request import PlannedRequest
from runner.planning.variants import SLOTS, Assigner, choose
from runner.store.journal import _MIGRATIONS, Attempt, Journal, Mark

pytest_plugins = ["emulator_fixtures"]


def write(folder: Path, variants: str, *, rows: int = 40, extra_steps: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.csv").write_text(
        "phone,first_name,code\n" + "".join(f"+1555720{i:04d},P{i},C{i}\n" for i in range(rows))
    )
    file = folder / "c.yaml"
    file.write_text(
        'version: 1\nid: ab-test\nsender: {from_number: "+15551234567"}\n'
        "recipients: {file: people.csv, to: phone}\n"
        "steps:\n  - id: hello\n    variants:\n" + variants + extra_steps
    )
    return file


TWO = (
    '      - {id: short, weight: 50, text: "Hi {{ first_name }}"}\n'
    '      - {id: code, weight: 50, text: "{{ first_name }}, your code: {{ code }}"}\n'
)

CHATS = [f"+1555{i:07d}" for i in range(10_000)]


def test_assignment_is_the_same_in_other_processes_and_hash_seeds():
    variants = [("a", 1.0), ("b", 2.0), ("c", 3.5)]
    here = [choose("camp", "hello", chat, variants) for chat in CHATS[:2000]]
    code = (
        "import json,sys; from runner.planning.variants import choose; "
        "print(json.dumps([choose('camp', 'hello', c, [('a', 1.0), ('b', 2.0), ('c', 3.5)]) "
        "for c in json.load(sys.stdin)]))"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(CHATS[:2000]),
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert json.loads(done.stdout) == here
    # Pinned values: a change of the derivation would move live recipients between variants.
    assert here[:12] == [2, 2, 1, 2, 1, 1, 2, 2, 2, 1, 1, 2]
    # The split follows the weights.
    shares = Counter(here)
    assert abs(shares[2] / len(here) - 3.5 / 6.5) < 0.04
    assert abs(shares[0] / len(here) - 1.0 / 6.5) < 0.03


@settings(max_examples=60, deadline=None)
@given(
    campaign=st.text(min_size=1, max_size=20),
    step=st.text(min_size=1, max_size=20),
    chat=st.text(min_size=1, max_size=30),
    weights=st.lists(st.floats(min_value=0.01, max_value=1000), min_size=2, max_size=5),
)
def test_assignment_is_a_function_of_its_inputs_and_ignores_order(campaign, step, chat, weights):
    variants = [(f"v{i}", w) for i, w in enumerate(weights)]
    picked = variants[choose(campaign, step, chat, variants)][0]
    assert variants[choose(campaign, step, chat, list(variants))][0] == picked
    # Reordering the variants moves no chat.
    reordered = list(reversed(variants))
    assert reordered[choose(campaign, step, chat, reordered)][0] == picked


def test_a_variants_numbers_do_not_depend_on_the_other_variants():
    alone = Assigner("camp", "hello", [("a", 1.0), ("b", 1.0)])
    more = Assigner("camp", "hello", [("c", 5.0), ("b", 1.0), ("a", 1.0)])
    for slot in (0, 1, 777, SLOTS - 1):
        assert alone.scores(slot)[0] == more.scores(slot)[2]
        assert alone.scores(slot)[1] == more.scores(slot)[1]


def test_a_chat_slot_is_crc16_xmodem_of_campaign_step_and_chat():
    import binascii

    assert binascii.crc_hqx(b"123456789", 0) == 0x31C3  # CRC-16/XMODEM's check value
    assigner = Assigner("camp", "hello", [("a", 1.0), ("b", 2.0)])
    assert [assigner.slot(c) for c in CHATS[:6]] == [14998, 10935, 6868, 2805, 14866, 10803]
    assert (
        assigner.slot(CHATS[0])
        == binascii.crc_hqx(b"camp\x1fhello\x1f" + CHATS[0].encode(), 0) % SLOTS
    )
    # Chats of one slot get one variant; the variant is the slot's highest score.
    same = [c for c in CHATS if assigner.slot(c) == assigner.slot(CHATS[0])]
    assert len(same) > 1
    scores = assigner.scores(assigner.slot(CHATS[0]))
    assert {assigner.choose(c) for c in same} == {scores.index(max(scores))}


def test_shares_follow_the_weights_within_the_slots_granularity():
    chats = [f"+4479{i:08d}" for i in range(0, 10**8, 1_000)]  # 100,000 numbers
    variants = [("a", 60.0), ("b", 30.0), ("c", 10.0)]
    assigner = Assigner("spring", "hello", variants)
    shares = Counter(assigner.choose(c) for c in chats)
    # One standard deviation over 16,384 slots is at most 0.4 points; allow five.
    for i, (_, weight) in enumerate(variants):
        assert abs(shares[i] / len(chats) - weight / 100) < 0.02
    # Slots are filled evenly, even by numbers in a row: few slots empty (a CRC is linear, so
    # regular numbers leave a few percent of slots out), none with three times its share.
    per_slot = Counter(assigner.slot(c) for c in chats)
    assert len(per_slot) > 0.95 * SLOTS and max(per_slot.values()) < 3 * len(chats) / SLOTS


def test_reweighting_moves_only_the_share_it_must():
    before = [choose("camp", "hello", c, [("a", 50), ("b", 50)]) for c in CHATS]
    after = [choose("camp", "hello", c, [("a", 60), ("b", 40)]) for c in CHATS]
    moved = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    # 50/50 -> 60/40: about 10% of chats move, every one from the shrinking b to the growing a.
    assert 0.08 < len(moved) / len(CHATS) < 0.12
    assert set(moved) == {(1, 0)}
    # Adding a variant takes chats only into the new one.
    third = [choose("camp", "hello", c, [("a", 50), ("b", 50), ("c", 25)]) for c in CHATS]
    assert all(y == x or y == 2 for x, y in zip(before, third, strict=True))
    assert 0.17 < third.count(2) / len(CHATS) < 0.23


def test_keys_do_not_change_when_variants_do(tmp_path):
    first = load_campaign(write(tmp_path / "a", TWO))
    edited = load_campaign(
        write(
            tmp_path / "b",
            (
                '      - {id: short, weight: 90, text: "Hello {{ first_name }}!"}\n'
                '      - {id: other, weight: 10, text: "Yo"}\n'
                '      - {id: third, weight: 5, parts: [{text: "x"}]}\n'
            ),
        )
    )
    reqs_a = list(iter_plan(first))
    reqs_b = list(iter_plan(edited))
    assert [r.key for r in reqs_a] == [r.key for r in reqs_b]
    assert {r.variant for r in reqs_a} == {"short", "code"}
    assert [r.variant for r in reqs_a] != [r.variant for r in reqs_b]


def test_a_variant_switch_is_not_older_content():
    class Row:
        def __init__(self, variant, chash):
            self.chat, self.step, self.revision, self.status = (
                "+15551230001",
                "hello",
                1,
                "accepted",
            )
            self.content_hash, self.finished_at, self.last_attempt_at = chash, 1.0, 1.0
            self.variant = variant

    class Reader:
        def __init__(self, row):
            self.row = row

        def lookup(self, keys):
            return {k: self.row for k in keys}

        def entries(self, revision=None):
            return [self.row]

    req = PlannedRequest(
        "+15551230001", "hello", "k", "POST", "/p", {"text": "new"}, 1, variant="code"
    )
    switched = JournalOverlay(Reader(Row("short", "old")), revision=1).run(iter([req]))
    assert (switched.other_variant, switched.older_content, switched.resends) == (1, 0, False)
    assert "another variant" in " ".join(switched.warnings())
    edited = JournalOverlay(Reader(Row("code", "old")), revision=1).run(iter([req]))
    assert (edited.other_variant, edited.older_content) == (0, 1)


def problems_of(file: Path) -> list:
    with pytest.raises(CampaignError) as err:
        load_campaign(file)
    return err.value.problems


def test_rules_apply_per_variant_with_lines(tmp_path):
    file = write(
        tmp_path / "c",
        (
            '      - {id: short, weight: 1, text: "Hi"}\n'
            "      - id: pic\n"
            "        weight: 1\n"
            "        effect: confetti\n"
            '        parts: [{text: "a"}, {url: "https://x.example/a.png"}]\n'
            '      - {id: short, weight: 2, text: "again"}\n'
        ),
    )
    found = {(p.path, p.line): p.message for p in problems_of(file)}
    assert ("steps[0].variants[1].effect", 11) in found
    assert "not allowed with parts" in found[("steps[0].variants[1].effect", 11)]
    dup = next(m for (path, _), m in found.items() if path == "steps[0].variants[2].id")
    assert "used twice" in dup


@pytest.mark.parametrize(
    "variants, path, words",
    [
        ('      - {id: a, weight: 1, text: "x"}\n', "steps[0].variants", "at least 2"),
        (
            '      - {id: a, weight: 0, text: "x"}\n      - {id: b, weight: 1, text: "y"}\n',
            "steps[0].variants[0].weight",
            "0",
        ),
        (
            '      - {id: a, weight: 1}\n      - {id: b, weight: 1, text: "y"}\n',
            "steps[0].variants[0]",
            "no content",
        ),
    ],
)
def test_variant_shapes_are_checked(tmp_path, variants, path, words):
    problems = problems_of(write(tmp_path / "c", variants))
    assert any(p.path == path and words in p.message for p in problems), problems


def test_content_beside_variants_is_refused(tmp_path):
    file = write(tmp_path / "c", TWO + '    text: "also"\n')
    problems = problems_of(file)
    assert any(p.path == "steps[0].text" and "variants" in p.message for p in problems)


def test_reply_to_a_step_with_variants(tmp_path):
    ok = write(
        tmp_path / "ok", TWO, extra_steps="  - {id: nudge, text: Last, reply_to: {step: hello}}\n"
    )
    reqs = list(iter_plan(load_campaign(ok)))
    assert {r.reply_to_step for r in reqs if r.step == "nudge"} == {"hello"}
    fans = write(
        tmp_path / "bad",
        '      - {id: a, weight: 1, text: "x"}\n      - {id: b, weight: 1, text: ["x", "y"]}\n',
        extra_steps="  - {id: nudge, text: Last, reply_to: {step: hello}}\n",
    )
    problems = problems_of(fans)
    assert any(
        p.path == "steps[1].reply_to.step" and "several messages" in p.message for p in problems
    )
    own = write(
        tmp_path / "own",
        '      - {id: a, weight: 1, text: "x"}\n'
        '      - {id: b, weight: 1, text: ["x", "y"]}\n'
        "    reply_to: {message_id: msg_1}\n",
    )
    problems = problems_of(own)
    assert any(p.path == "steps[0].variants[1].text" and "text list" in p.message for p in problems)


def test_render_errors_name_the_variant(tmp_path):
    file = write(
        tmp_path / "c",
        '      - {id: a, weight: 1, text: "x"}\n      - {id: b, weight: 1, text: "{{ nope }}"}\n',
    )
    done = CliRunner().invoke(main, ["validate", str(file)])
    assert done.exit_code == 1
    assert "steps[0].variants[1].text" in done.output and "c.yaml:9" in done.output


def test_plan_shows_the_split_and_one_recipient_of_each(tmp_path):
    file = write(tmp_path / "c", TWO)
    planner = Planner(load_campaign(file), previews=1)
    reqs = list(planner.requests())
    planner.raise_if_invalid()
    split = planner.summary.steps["hello"].variants
    assert split == dict(Counter(r.variant for r in reqs)) and sum(split.values()) == 40
    assert {item.get("variant") for p in planner.summary.previews for item in p["steps"]} == {
        "short",
        "code",
    }
    assert len(planner.summary.previews) == 2
    text = CliRunner().invoke(main, ["plan", str(file), "--previews", "1"]).stdout
    assert f"hello / short{'':<15}{split['short']:>8,}" in text
    assert "(variant code" in text and "(variant short" in text
    md = CliRunner().invoke(main, ["plan", str(file), "--format", "markdown"]).stdout
    assert f"| `hello` | `code` | {split['code']} |" in md
    out = tmp_path / "plan.jsonl"
    assert CliRunner().invoke(main, ["plan", str(file), "--out", str(out)]).exit_code == 0
    lines = [json.loads(ln) for ln in out.read_text().splitlines()[1:]]
    assert all(ln["variant"] in ("short", "code") for ln in lines)


def test_plan_lines_of_plain_steps_have_no_variant(tmp_path):
    file = write(tmp_path / "c", TWO, extra_steps="  - {id: after, text: Bye}\n")
    reqs = list(iter_plan(load_campaign(file)))
    assert all("variant" not in r.to_json_obj() for r in reqs if r.step == "after")
    assert all(r.to_json_obj()["variant"] == r.variant for r in reqs if r.step == "hello")


def test_preview_names_the_recipients_variant(tmp_path):
    file = write(tmp_path / "c", TWO)
    reqs = list(iter_plan(load_campaign(file)))
    first = reqs[0]
    text = CliRunner().invoke(main, ["preview", str(file), "--to", first.recipient]).stdout
    assert f"# step hello (variant {first.variant})" in text
    page = (
        CliRunner()
        .invoke(main, ["preview", str(file), "--to", first.recipient, "--format", "html"])
        .stdout
    )
    assert f'<span class="chip">variant {first.variant}</span>' in page


def test_journal_records_the_variant(tmp_path):
    with Journal(tmp_path / "j.sqlite") as j:
        j.apply(
            [
                Attempt("k1", "+15551230001", "hello", 1, 0, 0, 1, "h", 1, 1.0, variant="short"),
                Attempt("k2", "+15551230001", "bye", 1, 0, 1, 1, "h", 1, 1.0),
                Mark(
                    "k3",
                    "+15551230002",
                    "hello",
                    1,
                    1,
                    0,
                    1,
                    status="scheduled",
                    error_code="not_due",
                    error_message="",
                    content_hash="h",
                    run_id=1,
                    now=1.0,
                    variant="code",
                ),
            ]
        )
        found = j.lookup(["k1", "k2", "k3"])
        assert (found["k1"].variant, found["k2"].variant, found["k3"].variant) == (
            "short",
            None,
            "code",
        )


def test_an_older_journal_gains_the_variant_column(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for version in range(1, 4):
        db.executescript(_MIGRATIONS[version])
    db.execute("PRAGMA user_version = 3")
    db.execute(
        "INSERT INTO requests (key, chat, step, status) VALUES ('k', '+15551230001', 'hello', 'accepted')"
    )
    db.commit()
    db.close()
    with Journal(path) as j:
        assert j.lookup(["k"])["k"].variant is None


def test_send_records_variants_and_reweighting_sends_nothing_again(emulator, tmp_path):
    file = write(tmp_path / "c", TWO, rows=20)
    state = tmp_path / "st"
    out = runner.send(
        file,
        state_dir=state,
        base_url=emulator.base_url,
        api_key=emulator.api_key,
        rate="unlimited",
    )
    assert out.result.stats.accepted == 20
    reqs = list(iter_plan(load_campaign(file)))
    with Journal(next(state.rglob("*.sqlite"))) as j:
        rows = j.lookup([r.key for r in reqs])
        assert {r.key: r.variant for r in reqs} == {k: e.variant for k, e in rows.items()}
    write(
        tmp_path / "c",
        '      - {id: short, weight: 95, text: "Hi {{ first_name }}"}\n'
        '      - {id: code, weight: 5, text: "{{ first_name }}, your code: {{ code }}"}\n',
        rows=20,
    )
    doc = json.loads(
        CliRunner()
        .invoke(main, ["plan", str(file), "--format", "json", "--state", str(state)])
        .stdout
    )
    assert doc["journal"]["accepted"] == 20 and doc["journal"]["older_content"] == 0
    assert doc["journal"]["other_variant"] > 0
    again = runner.send(
        file,
        state_dir=state,
        base_url=emulator.base_url,
        api_key=emulator.api_key,
        rate="unlimited",
    )
    assert again.result.stats.http_requests == 0


def test_report_counts_each_variants_own_messages(emulator, tmp_path):
    # One variant sends a single text, the other a text list of two: the step's planned and
    # accepted messages are each recipient's own variant's, not the first variant's.
    file = write(
        tmp_path / "c",
        '      - {id: one, weight: 50, text: "Hi {{ first_name }}"}\n'
        '      - {id: two, weight: 50, text: ["Hi {{ first_name }}", "Code {{ code }}"]}\n',
        rows=30,
    )
    state = tmp_path / "st"
    out = runner.send(
        file,
        state_dir=state,
        base_url=emulator.base_url,
        api_key=emulator.api_key,
        rate="unlimited",
    )
    reqs = list(iter_plan(load_campaign(file)))
    expected = sum(r.messages for r in reqs)
    assert {r.messages for r in reqs} == {1, 2} and out.result.stats.accepted == 30
    result = CliRunner().invoke(
        main, ["report", str(file), "--format", "json", "--state", str(state)]
    )
    assert result.exit_code == 0, result.output
    step = json.loads(result.stdout)["steps"]["hello"]
    assert step["messages"] == step["messages_accepted"] == expected
