"""Idempotency-Keys: derived only from campaign id, revision, step id, normalised chat id and
message index. Never from content, a clock, randomness or the process (hash seed), so a re-run
on any machine, in any order of recipients, sends nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner import idempotency_key
from runner.cli import main
from runner.planning.keys import step_keys

PRINTABLE_64 = r"^[\x21-\x7e]{1,64}$"

# Known values: if one of these changes, every campaign already sent would be sent again.
PINNED = [
    (
        ("spring-sale-2026", 1, "hello", "+15551230001", 0),
        "rnr1-606e7a2c0f1ad59700eb8a8b4e952a74ba893e63",
    ),
    (
        ("spring-sale-2026", 1, "hello", "+15551230001", 1),
        "rnr1-969f05f6c2d355ef38ef00ccb20c8fc11e4bbb59",
    ),
    (
        ("spring-sale-2026", 2, "hello", "+15551230001", 0),
        "rnr1-53241d0a8add20cddc5f91aef5c81b943ed48893",
    ),
    (
        ("members-renewal-may", 2, "reminder", "+15553000003,+15553000004", 0),
        "rnr1-f9668053164d8858df45d4926738d39b735e6b80",
    ),
    (
        ("store-opening-staff-briefing", 1, "good-luck", "grp_a1b2c3d4e5f6", 0),
        "rnr1-ffcfae585580f73b8c7d2cfc9dd787f53e63233a",
    ),
    (("x", 1, "s", "bob@example.com", 0), "rnr1-ce61d7426ad7d008b70219ce497c26e4d991d2db"),
]


@pytest.mark.parametrize(("args", "key"), PINNED)
def test_known_keys(args: tuple, key: str) -> None:
    assert idempotency_key(*args) == key
    campaign, revision, step, chat, index = args
    assert step_keys(campaign, revision, step)(chat, index) == key  # the planner's shortcut


def test_keys_are_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "import json, sys; from runner import idempotency_key as k; "
        "print(json.dumps([k(*a) for a in json.loads(sys.argv[1])]))"
    )
    args = json.dumps([list(a) for a, _ in PINNED])
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code, args], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [k for _, k in PINNED]


def test_every_input_changes_the_key_and_fields_cannot_run_together() -> None:
    base = ("camp", 1, "step", "+15551230001", 0)
    variants = [
        base,
        ("camp2", 1, "step", "+15551230001", 0),
        ("camp", 2, "step", "+15551230001", 0),
        ("camp", 1, "step2", "+15551230001", 0),
        ("camp", 1, "step", "+15551230002", 0),
        ("camp", 1, "step", "+15551230001", 1),
        # shifting characters between neighbouring fields must not collide
        ("cam", 1, "pstep", "+15551230001", 0),
        ("camp", 11, "tep", "+15551230001", 0),
        ("camp", 1, "step+", "15551230001", 0),
        ("camp", 1, "step", "+1555123000", 10),
    ]
    keys = [idempotency_key(*v) for v in variants]
    assert len(set(keys)) == len(keys)
    assert idempotency_key(*base) == keys[0]  # and the same inputs give the same key


def test_keys_are_printable_and_at_most_64_characters() -> None:
    import re

    odd = [
        "+1" + "9" * 14,
        "a" * 60 + "@" + "b" * 60 + ".com",
        "ünïcödé@exämple.com",
        ",".join(f"+1555123{i:04d}" for i in range(50)),
        "grp_" + "z" * 200,
    ]
    for chat in odd:
        for campaign in ("a", "c" * 64):
            for index in (0, 7, 10**6):
                key = idempotency_key(campaign, 10**9, "s" * 64, chat, index)
                assert re.match(PRINTABLE_64, key), key


# --- keys as the plan produces them --------------------------------------------------------


def _campaign(
    tmp_path: Path,
    name: str,
    *,
    recipients: str,
    revision: int = 1,
    hello_id: str = "hello",
    hello_text: str = "Hi {{ n }}",
) -> Path:
    path = tmp_path / name / "c.yaml"
    path.parent.mkdir(parents=True)
    people = textwrap.indent(textwrap.dedent(recipients).strip(), "  ")
    path.write_text(
        f"version: 1\nid: key-test\nrevision: {revision}\nrecipients:\n{people}\nsteps:\n"
        f'  - {{id: {hello_id}, text: "{hello_text}"}}\n'
        '  - {id: list, text: ["one", "two"]}\n',
        encoding="utf-8",
    )
    return path


RECIPIENTS = """
    - {to: "+15551230001", vars: {n: 1}}
    - {to: "Ada@Example.com", vars: {n: 2}}
    - {to: ["bob@example.com", "+15551230002"], vars: {n: 3}}
    - {to: "grp_abc123", vars: {n: 4}}
    """
REVERSED_AND_RESPELLED = """
    - {to: "grp_abc123", vars: {n: 4}}
    - {to: " +15551230002 , BOB@example.com ", vars: {n: 3}}
    - {to: "  ada@EXAMPLE.com", vars: {n: 2}}
    - {to: "+15551230001 ", vars: {n: 1}}
    """


def _keys(path: Path) -> dict[tuple[str, str], str]:
    out = path.parent / "plan.jsonl"
    result = CliRunner().invoke(
        main, ["plan", str(path), "--out", str(out), "--state", str(path.parent / "state")]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()[1:]]
    return {(o["recipient"], o["step"]): o["key"] for o in lines}


def test_same_keys_in_any_recipient_order_and_spelling(tmp_path: Path) -> None:
    a = _keys(_campaign(tmp_path, "a", recipients=RECIPIENTS))
    b = _keys(_campaign(tmp_path, "b", recipients=REVERSED_AND_RESPELLED))
    assert a == b
    assert len(a) == 8 and len(set(a.values())) == 8
    assert ("+15551230002,bob@example.com", "hello") in a
    assert ("ada@example.com", "hello") in a


def test_text_change_keeps_keys_revision_step_and_chat_change_them(tmp_path: Path) -> None:
    base = _keys(_campaign(tmp_path, "base", recipients=RECIPIENTS))
    typo_fixed = _keys(
        _campaign(tmp_path, "text", recipients=RECIPIENTS, hello_text="Hello {{ n }}!")
    )
    assert typo_fixed == base

    bumped = _keys(_campaign(tmp_path, "rev", recipients=RECIPIENTS, revision=2))
    assert bumped.keys() == base.keys()
    assert not set(bumped.values()) & set(base.values())

    renamed = _keys(_campaign(tmp_path, "step", recipients=RECIPIENTS, hello_id="greeting"))
    for (chat, step), key in base.items():
        if step == "hello":
            assert renamed[(chat, "greeting")] != key
        else:
            assert renamed[(chat, step)] == key  # the other step is untouched

    other_chat = _keys(
        _campaign(
            tmp_path,
            "chat",
            recipients="""
        - {to: "+15551230009", vars: {n: 1}}
        """,
        )
    )
    assert other_chat[("+15551230009", "hello")] not in base.values()
