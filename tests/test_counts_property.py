"""Counts that add up (issue 16.5), as a property: after any sequence of send, edit (rows,
steps, texts, a renamed step, a new revision), opt-out, suppression and track against the
emulator, the report's identities hold and the send prompt never asks for a negative count.

Bounded (a few examples of a few operations) so that it costs seconds, not minutes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runner
from runner.campaign.load import load_campaign
from runner.consent.standing import Standing
from runner.emulator import run_in_thread
from runner.planning.current import current_plan
from runner.planning.planner import JournalOverlay, Planner, iter_plan
from runner.report.data import build_report
from runner.store.journal import Journal
from runner.store.ledger import existing_ledger

pytest_plugins = ["emulator_fixtures"]

CHATS = [f"+1555700{i:04d}" for i in range(6)]
OPS = (
    "send",
    "send",
    "track",
    "optout",
    "suppress",
    "drop_row",
    "add_row",
    "toggle_follow",
    "toggle_delay",
    "rename",
    "retext",
    "bump_revision",
)
_ids = itertools.count()


class Scenario:
    """One campaign folder whose file the operations rewrite."""

    def __init__(self, folder: Path, emulator: Any) -> None:
        self.folder, self.emu = folder, emulator
        self.id = f"prop{next(_ids)}"
        self.rows = list(CHATS[:4])
        self.first, self.text, self.revision = "hello", "Hi", 1
        self.follow, self.delay = True, True
        folder.mkdir(parents=True)
        (folder / "optouts.txt").write_text("")
        self.write()

    @property
    def file(self) -> Path:
        return self.folder / "c.yaml"

    def consent(self) -> dict[str, Standing]:
        with existing_ledger(self.state) as ledger:
            return ledger.standings() if ledger is not None else {}

    @property
    def state(self) -> Path:
        return self.folder / "state"

    def write(self) -> None:
        (self.folder / "people.csv").write_text("phone\n" + "".join(f"{r}\n" for r in self.rows))
        steps = f'  - id: {self.first}\n    text: "{self.text}"\n'
        if self.follow:
            steps += '  - id: follow\n    text: "More"\n' + (
                "    delay: 1h\n" if self.delay else ""
            )
        self.file.write_text(
            f"version: 1\nid: {self.id}\nrevision: {self.revision}\n"
            'sender: {from_number: "+15551234567"}\n'
            "recipients: {file: people.csv, to: phone}\nsuppress: [optouts.txt]\n"
            f"steps:\n{steps}"
        )

    def apply(self, op: str, pick: int) -> None:
        chat = CHATS[pick % len(CHATS)]
        api = {"base_url": self.emu.base_url, "api_key": self.emu.api_key}
        if op == "send":
            runner.send(
                self.file,
                state_dir=self.state,
                rate="unlimited",
                backoff_base=0,
                backoff_cap=0,
                **api,
            )
        elif op == "track" and (self.state / f"{self.id}.sqlite").is_file():
            runner.track(self.file, state_dir=self.state, timeout=2.0, first_poll=0.0, **api)
        elif op == "optout":
            self.emu.reply(chat, "STOP")
            runner.collect_optouts(self.file, state_dir=self.state, rate=1000, **api)
        elif op == "suppress":
            with open(self.folder / "optouts.txt", "a") as fh:
                fh.write(chat + "\n")
        elif op == "drop_row" and chat in self.rows and len(self.rows) > 1:
            self.rows.remove(chat)
        elif op == "add_row" and chat not in self.rows:
            self.rows.append(chat)
        elif op == "toggle_follow":
            self.follow = not self.follow
        elif op == "toggle_delay":
            self.delay = not self.delay
        elif op == "rename":
            self.first = "greet" if self.first == "hello" else "hello"
        elif op == "retext":
            self.text = "Hello" if self.text == "Hi" else "Hi"
        elif op == "bump_revision":
            self.revision += 1
        self.write()


def numbers(doc: Any) -> list[int]:
    """Every integer in a JSON document (ids and timestamps are strings or floats)."""
    if isinstance(doc, bool):
        return []
    if isinstance(doc, int):
        return [doc]
    if isinstance(doc, dict):
        return [n for v in doc.values() for n in numbers(v)]
    if isinstance(doc, list):
        return [n for v in doc for n in numbers(v)]
    return []


def check_identities(s: Scenario) -> None:
    journal_file = s.state / f"{s.id}.sqlite"
    if not journal_file.is_file():
        return
    campaign = load_campaign(s.file)
    # Opt-outs live in the state's consent ledger: every plan of the state leaves them out.
    consent = s.consent()
    current = current_plan(campaign, consent)
    planner = Planner(campaign, consent=consent)
    planner.run()
    planner.raise_if_invalid()
    plan = planner.summary
    with Journal(journal_file) as journal:
        if journal.last_run() is None:
            return
        rep = build_report(journal, current=current)
        overlay = JournalOverlay(journal, campaign.revision).run(
            iter_plan(campaign, consent=consent)
        )
        rows = sum(1 for _ in journal.entries(rep["revision"]))
    t, o = rep["totals"], rep["outside_plan"]
    assert min(numbers(rep)) >= 0, rep
    assert (
        t["accepted"] + t["failed"] + t["pending"] + t["scheduled"] + t["expired"] == t["requests"]
    )
    assert t["messages_accepted"] <= t["messages"]
    assert rep["delivery"]["messages"]["accepted"] <= rep["delivery"]["messages"]["planned"]
    for step in rep["steps"].values():
        assert (
            step["accepted"]
            + step["failed"]
            + step["pending"]
            + step["scheduled"]
            + step["expired"]
            == step["requests"]
        )
        assert step["messages_accepted"] <= step["messages"]
    # The prompt: what is left to send of the current plan, never negative.
    assert 0 <= overlay.accepted <= plan.requests
    if rep["revision"] == campaign.revision:
        # The report describes the file's revision: its totals are the current plan's keys,
        # and every journal row is either one of them or on the "outside the plan" line.
        assert o is not None and t["requests"] == plan.requests == current.requests
        assert overlay.accepted == t["accepted"]
        assert o["accepted"] + o["suppressed"] + o["removed"] == o["requests"]
        not_attempted = sum(p["count"] for p in rep["pending"] if p["reason"] == "not_attempted")
        assert rows == t["requests"] - not_attempted + o["requests"]
        # A chat suppressed after its first step is counted as suppressed, not scheduled.
        with Journal(journal_file) as journal:
            for e in journal.entries(rep["revision"]):
                if current.is_suppressed(e.chat) and e.status != "accepted":
                    assert not current.has(e.key)


@pytest.fixture(scope="module")
def fast_emulator() -> Iterator[Any]:
    """One emulator for every example (each example has its own campaign id, so its keys
    never meet another's); messages are delivered at once so that track has answers."""
    emu = run_in_thread(None, sent_after_ms=0, delivered_after_ms=0, delivery_jitter_ms=0)
    try:
        yield emu
    finally:
        emu.stop()


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 5)), min_size=1, max_size=7))
def test_report_identities_hold_after_any_sequence(ops, fast_emulator, tmp_path_factory):
    s = Scenario(tmp_path_factory.mktemp("prop") / "c", fast_emulator)
    for op, pick in [("send", 0), *ops]:
        s.apply(op, pick)
        check_identities(s)


def test_the_seen_case_adds_up(emulator, tmp_path):
    """The case from the issue: send, a STOP, optouts, send again; then a step removed."""
    s = Scenario(tmp_path / "c", emulator)
    s.delay = False
    s.write()
    s.apply("send", 0)
    s.apply("optout", 1)
    s.apply("send", 0)
    check_identities(s)
    with Journal(s.state / f"{s.id}.sqlite") as journal:
        rep = build_report(journal, current=current_plan(load_campaign(s.file), s.consent()))
    assert rep["totals"]["requests"] == 6 and rep["totals"]["accepted"] == 6
    assert rep["outside_plan"] == {
        "requests": 2,
        "accepted": 2,
        "messages_accepted": 2,
        "suppressed": 0,
        "removed": 0,
    }
    assert rep["totals"]["messages_accepted"] == 6 == rep["totals"]["messages"]
    s.apply("toggle_follow", 0)
    with Journal(s.state / f"{s.id}.sqlite") as journal:
        rep = build_report(journal, current=current_plan(load_campaign(s.file), s.consent()))
    assert (rep["totals"]["requests"], rep["totals"]["accepted"]) == (3, 3)
    assert rep["outside_plan"]["requests"] == 5


def test_a_chat_suppressed_after_its_first_step_is_suppressed_not_scheduled(emulator, tmp_path):
    s = Scenario(tmp_path / "c", emulator)  # follow waits 1 h after hello
    s.apply("send", 0)
    with Journal(s.state / f"{s.id}.sqlite") as journal:
        before = build_report(journal, current=current_plan(load_campaign(s.file)))
    assert before["totals"]["scheduled"] == 4 and before["state"]["name"] == "waiting"
    s.apply("suppress", 2)
    with Journal(s.state / f"{s.id}.sqlite") as journal:
        rep = build_report(journal, current=current_plan(load_campaign(s.file)))
    assert rep["totals"]["scheduled"] == 3 and rep["totals"]["requests"] == 6
    assert rep["outside_plan"]["suppressed"] == 1 and rep["outside_plan"]["accepted"] == 1
    assert rep["state"]["suppressed_after_sending"] == 1
