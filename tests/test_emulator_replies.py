"""Automatic replies of the emulator (--reply-rate, --reply-text, --reply-after, --reply-rule):
which messages are answered, that the answers arrive on the emulator clock exactly like
POST /__emulator/reply, and the rehearsal loop send → STOP replies → `campaign optouts`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.emulator import EmulatorConfig, ManualClock
from runner.emulator.control import ControlError
from runner.emulator.options import OPTIONS, build_config
from runner.emulator.replies import ReplyPlan, parse_rule
from runner.emulator.state import State

pytest_plugins = ["emulator_fixtures"]

PHONES = [f"+1555700{i:04d}" for i in range(80)]


# -- which messages get a reply ----------------------------------------------------------------


def test_a_rule_splits_at_the_first_rate_so_the_text_may_hold_colons():
    assert parse_rule("^Hi=0.25:STOP") == {"pattern": "^Hi", "rate": 0.25, "text": "STOP"}
    assert parse_rule("code=1:Yes: at 10=2:30") == {
        "pattern": "code",
        "rate": 1.0,
        "text": "Yes: at 10=2:30",
    }
    assert parse_rule("x=.5:") == {"pattern": "x", "rate": 0.5, "text": ""}


@pytest.mark.parametrize(
    "raw, says",
    [
        ("no rate here", "REGEX=RATE:TEXT"),
        ("a=1.5:STOP", "between 0 and 1"),
        ("(unclosed=0.1:STOP", "pattern '(unclosed': missing )"),  # split fine, the regex is not
    ],
)
def test_bad_rules_are_refused_with_the_reason(raw, says):
    with pytest.raises(ValueError, match="reply rule") as err:
        parse_rule(raw)
    assert says in str(err.value)


def test_the_draw_is_stable_and_near_the_rate():
    plan = ReplyPlan(7, 0.3, "", [])
    answers = [plan.reply_to(p, f"key-{p}", 0, "hello") for p in PHONES * 5]
    again = [ReplyPlan(7, 0.3, "", []).reply_to(p, f"key-{p}", 0, "hello") for p in PHONES * 5]
    assert answers == again
    share = sum(a is not None for a in answers[:80]) / 80
    assert 0.15 < share < 0.45
    assert set(answers) == {None, "Yes please"}  # the default text
    other_seed = [ReplyPlan(8, 0.3, "", []).reply_to(p, f"key-{p}", 0, "hello") for p in PHONES]
    assert other_seed != answers[:80]


def test_the_first_matching_rule_sets_rate_and_text():
    plan = ReplyPlan(1, 0.0, "Sure", ["code=1:STOP", "code|Hi=1:Thanks", "^Bye=0:never"])
    assert plan.reply_to("+1", "k", 0, "your code: X") == "STOP"
    assert plan.reply_to("+1", "k", 0, "Hi there") == "Thanks"
    assert plan.reply_to("+1", "k", 0, "Bye now") is None
    assert plan.reply_to("+1", "k", 0, "anything else") is None  # base rate 0
    assert ReplyPlan(1, 1.0, "Sure", ["^x=1:"]).reply_to("+1", "k", 0, "x") == "Sure"


# -- the settings ------------------------------------------------------------------------------


def test_flags_build_the_config():
    values = {o.field: None for o in OPTIONS}
    values.update(
        reply_rate="0.1",
        reply_text="yes please",
        reply_after_s="5",
        reply_rules=("code=0.05:STOP", "^Hi=0.2:Yes"),
    )
    cfg = build_config(values)
    assert (cfg.reply_rate, cfg.reply_text, cfg.reply_after_s) == (0.1, "yes please", 5.0)
    assert cfg.reply_rules == [
        {"pattern": "code", "rate": 0.05, "text": "STOP"},
        {"pattern": "^Hi", "rate": 0.2, "text": "Yes"},
    ]
    values.update(reply_rules=("nonsense",))
    with pytest.raises(ValueError, match="--reply-rule: reply rule 'nonsense'"):
        build_config(values)
    values.update(reply_rules=(), reply_rate="2")
    with pytest.raises(ValueError, match="reply_rate must be a number between 0 and 1"):
        build_config(values)


def test_the_emulator_command_refuses_a_bad_rule_in_one_line():
    result = CliRunner().invoke(main, ["emulator", "--port", "0", "--reply-rule", "x=9:STOP"])
    assert result.exit_code == 1
    assert "between 0 and 1" in result.output and not isinstance(result.exception, Exception)


def test_rules_can_be_set_over_http(emulator):
    got = emulator.configure(reply_rules=["STOP me=1:STOP"], reply_after_s=2)
    assert got["reply_rules"] == [{"pattern": "STOP me", "rate": 1.0, "text": "STOP"}]
    with emulator.client() as c:
        r = c.post("/chats/%2B15557000001/messages", json={"text": "STOP me if you can"})
        assert r.status_code == 202
    [sent] = emulator.messages()
    assert [x["text"] for x in sent["replies"]] == ["STOP"]
    with pytest.raises(ControlError, match="rate must be a number between 0 and 1"):
        emulator.configure(reply_rules=[{"pattern": "x", "rate": 3}])


# -- arrival on the emulator clock -------------------------------------------------------------


def _state(**settings) -> tuple[State, ManualClock]:
    clock = ManualClock(1_800_000_000.0)
    cfg = EmulatorConfig(
        clock=clock,
        sent_after_ms=0,
        delivered_after_ms=1000,
        delivery_jitter_ms=0,
        share_imessage=1,
        share_sms=0,
        share_rcs=0,
        **settings,
    )
    return State(cfg), clock


def test_a_reply_arrives_reply_after_seconds_after_delivery_like_a_manual_one():
    state, clock = _state(reply_rate=1.0, reply_text="yes please", reply_after_s=30)
    state.send("+15557000001", {"text": "Hi"}, "k1")
    inbound = {"direction": "inbound"}
    assert state.list_messages("+15557000001", inbound)["messages"] == []
    clock.advance(30.5)  # delivered at +1 s, answered 30 s later
    assert state.list_messages("+15557000001", inbound)["messages"] == []
    clock.advance(1)
    [auto] = state.list_messages("+15557000001", inbound)["messages"]
    assert auto["time_sent"] == 1_800_000_031_000 and auto["text"] == "yes please"
    manual = state.receive("+15557000001", "by hand")
    [_, by_hand] = state.list_messages("+15557000001", inbound)["messages"][::-1]
    assert set(auto) == set(by_hand) and auto["internal_id"] == by_hand["internal_id"]
    assert by_hand["message_id"] == manual["message_id"]
    assert state.stats_dict()["inbound"] == 2


def test_undelivered_messages_get_no_reply_and_text_lists_are_drawn_per_message():
    state, clock = _state(reply_rate=1.0, p_delivery_failed=1.0, reply_after_s=0)
    state.send("+15557000002", {"text": "Hi"}, "k1")
    clock.advance(5)
    assert state.stats_dict()["inbound"] == 0
    state, clock = _state(reply_rules=["^A=1:got A", "^B=0:never"], reply_after_s=0)
    state.send("+15557000003", {"text": ["A1", "B1", "A2"]}, "k2")
    clock.advance(5)
    texts = [
        m["text"]
        for m in state.list_messages("+15557000003", {"direction": "inbound", "sort": "asc"})[
            "messages"
        ]
    ]
    assert texts == ["got A", "got A"]


def test_a_replayed_request_is_not_answered_twice(emulator):
    emulator.configure(reply_rate=1.0, reply_after_s=0)
    with emulator.client() as c:
        for _ in range(3):
            c.post(
                "/chats/%2B15557000004/messages",
                json={"text": "Hi"},
                headers={"Idempotency-Key": "same"},
            )
    emulator.advance(5)
    assert emulator.stats()["inbound"] == 1


# -- the loop: send → the emulator answers STOP to a share → optouts records exactly those -------


def test_send_then_automatic_stops_then_optouts_records_exactly_those_chats(
    tmp_path, make_emulator, campaign_cli
):
    (tmp_path / "people.csv").write_text("phone\n" + "\n".join(PHONES) + "\n")
    (tmp_path / "optouts.txt").write_text("")
    campaign = tmp_path / "c.yaml"
    campaign.write_text("""\
version: 1
id: reply-loop
recipients: {file: people.csv, to: phone}
suppress: [optouts.txt]
steps:
  - id: hello
    text: "Hi {{ recipient }}, 20% off this week"
""")
    emu = make_emulator(
        EmulatorConfig(
            seed=5,
            reply_rate=0.3,
            reply_text="Yes please",
            reply_after_s=120,
            reply_rules=["20% off=0.25:STOP"],
        )
    )
    env = emu.env()
    sent = campaign_cli(
        "send",
        str(campaign),
        "--yes",
        "--state",
        str(tmp_path / "st"),
        "--no-progress",
        "--rate",
        "unlimited",
        env=env,
    )
    assert sent.returncode == 0, sent.stderr
    stopped = {m["chat"] for m in emu.messages() if any(r["text"] == "STOP" for r in m["replies"])}
    assert 8 <= len(stopped) <= 32  # about a quarter of 80; the rule beat the base rate
    assert all(r["text"] == "STOP" for m in emu.messages() for r in m["replies"])
    # The emulator is local: no pace (the defaults are for the real API).
    fast = ("--rate", "1000", "--concurrency", "16")
    early = campaign_cli(
        "optouts", str(campaign), "--state", str(tmp_path / "st"), "--export", *fast, env=env
    )
    assert early.returncode == 0, early.stderr
    assert (tmp_path / "optouts.txt").read_text().strip() == ""  # not arrived yet
    emu.advance(125)
    r = campaign_cli(
        "optouts", str(campaign), "--state", str(tmp_path / "st"), "--export", *fast, env=env
    )
    assert r.returncode == 0, r.stderr
    recorded = {
        line.split()[0]
        for line in (tmp_path / "optouts.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert recorded == stopped
    assert emu.stats()["inbound"] == len(stopped)
