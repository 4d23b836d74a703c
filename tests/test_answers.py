"""HELP answered once per chat per day, an opt-out confirmed once (runner.run.answers): which
answers are due (pure), and sending them against the emulator through `optouts` and `send`,
never twice."""

from __future__ import annotations

import json
from pathlib import Path

import runner
from runner.consent.standing import EventKind
from runner.planning.keys import answer_key
from runner.run.answers import ANSWER_WINDOW_MS, AnswerKind, AnswerTexts, answers_due
from runner.states import RequestStatus
from runner.store.ledger import AnswerRow, RecordedEvent, existing_ledger

pytest_plugins = ["emulator_fixtures"]

A, B = "+15552900001", "+15552900002"
DAY = 86_400_000
NOW = 1_800_000_000_000
TEXTS = AnswerTexts(
    "Acme: help at acme.example/help. Reply STOP to cancel.", "Acme: you are unsubscribed."
)


def ev(i: int, chat: str, kind: EventKind, at: int, source: str = "reply") -> RecordedEvent:
    return RecordedEvent(i, chat, kind, at, None, None, None, None, source, f"m{i}", None, 0.0)


def test_help_once_per_chat_per_day_and_only_recent():
    events = [
        ev(1, A, EventKind.HELP, NOW - 1000),
        ev(2, A, EventKind.HELP, NOW - 500),
        ev(3, B, EventKind.HELP, NOW - ANSWER_WINDOW_MS - 1),  # too old: history
        ev(4, f"{A},{B}", EventKind.HELP, NOW),
    ]  # a group: never answered
    due = answers_due(events, {}, TEXTS, NOW)
    assert [(a.chat, a.kind, a.event_id) for a in due] == [(A, AnswerKind.HELP, 1)]
    assert due[0].key == answer_key("help", A, "2027-01-15")
    # Tomorrow's HELP is another answer.
    later = [*events, ev(5, A, EventKind.HELP, NOW + DAY)]
    assert len(answers_due(later, {}, TEXTS, NOW + DAY)) == 1
    assert answers_due(events, {}, AnswerTexts(), NOW) == []  # no text: nothing owed


def test_the_first_opt_out_is_confirmed_once():
    events = [
        ev(1, A, EventKind.OPTED_OUT, NOW - 10),
        ev(2, A, EventKind.OPTED_IN, NOW - 5),
        ev(3, A, EventKind.OPTED_OUT, NOW - 1),
        ev(4, B, EventKind.OPTED_OUT, NOW - 1, source="review"),
    ]  # a person's decision
    [due] = answers_due(events, {}, TEXTS, NOW)
    assert (due.chat, due.kind, due.event_id) == (A, AnswerKind.OPTOUT_CONFIRMATION, 1)
    done = {
        due.key: AnswerRow(
            key=due.key,
            chat=A,
            kind="optout_confirmation",
            event_id=1,
            status=RequestStatus.ACCEPTED,
            attempts=1,
            message_id="m",
            error=None,
            last_at=0,
        )
    }
    assert answers_due(events, done, TEXTS, NOW) == []
    pending = {
        due.key: AnswerRow(
            key=due.key,
            chat=A,
            kind="optout_confirmation",
            event_id=1,
            status=RequestStatus.PENDING,
            attempts=1,
            message_id=None,
            error="network_error",
            last_at=0,
        )
    }
    assert len(answers_due(events, pending, TEXTS, NOW)) == 1  # tried again
    old = [
        ev(1, A, EventKind.OPTED_OUT, NOW - ANSWER_WINDOW_MS - 1),
        ev(2, A, EventKind.OPTED_OUT, NOW),
    ]
    assert answers_due(old, {}, TEXTS, NOW) == []  # the first opt-out is history


def _campaign(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        f'version: 1\nid: answers\nrecipients:\n  - to: "{A}"\n  - to: "{B}"\n'
        "steps:\n  - id: hello\n    text: Hi there\n"
    )
    return path


def test_optouts_and_send_answer_what_is_owed_never_twice(
    tmp_path: Path, make_emulator, campaign_cli
):
    emu = make_emulator()
    state = tmp_path / "st"
    api = {"base_url": emu.base_url, "api_key": emu.api_key}
    campaign = _campaign(tmp_path)
    runner.send(campaign, state_dir=state, rate="unlimited", **api)
    emu.reply(A, "HELP")
    emu.reply(B, "STOP")
    got = runner.collect_optouts(campaign, state_dir=state, rate=1000, answers=TEXTS, **api)
    assert (got.answered.help, got.answered.confirmations) == (1, 1)

    def texts_to(chat: str) -> list[str]:
        return [m["body"].get("text") for m in emu.messages() if m["chat"] == chat]

    assert texts_to(A) == ["Hi there", TEXTS.help_text]
    assert texts_to(B) == ["Hi there", TEXTS.optout_confirmation]
    # Read again by optouts, and by a send of a new step: nothing is answered twice, even a
    # second HELP the same day; B (opted out) gets nothing more.
    emu.reply(A, "help?")
    again = runner.collect_optouts(campaign, state_dir=state, rate=1000, answers=TEXTS, **api)
    assert (again.answered.help, again.answered.confirmations) == (0, 0)
    campaign.write_text(campaign.read_text() + "  - id: more\n    text: More news\n")
    with runner.run.session.SendSession.open(
        campaign, state_dir=state, rate="unlimited", answers=TEXTS, **api
    ) as session:
        session.run()
        assert (session.answered.help, session.answered.confirmations) == (0, 0)
    assert texts_to(A) == ["Hi there", TEXTS.help_text, "More news"]
    assert texts_to(B) == ["Hi there", TEXTS.optout_confirmation]
    assert emu.stats()["duplicates"] == 0
    with existing_ledger(state) as ledger:
        assert ledger is not None
        rows = sorted((a.chat, a.kind, a.status) for a in ledger.answers().values())
    assert rows == [(A, "help", "accepted"), (B, "optout_confirmation", "accepted")]
    report = campaign_cli("report", str(campaign), "--state", str(state), "--format", "json")
    consent = json.loads(report.stdout)["consent"]
    assert (consent["help_answered"], consent["optouts_confirmed"]) == (1, 1)
