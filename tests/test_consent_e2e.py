"""Issue 21 end to end: consent is state. `campaign` commands in process against the emulator.

A STOP (in any of its spellings) between two steps stops the next step with nothing else run,
in this campaign and in another campaign of the same state; an ambiguous reply holds the chat
until a person releases it; the report's opt-out counts survive `optouts --export`; an
unreadable chat, a refused key or a damaged ledger send nothing and say why."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig

pytest_plugins = ["emulator_fixtures"]

KEY = "sk_consent_NEVER_PRINTED_5e1f"
FAST = ("--rate", "unlimited", "--no-progress", "--backoff-base", "0", "--backoff-cap", "0")

SPELLINGS = [
    "STOP",
    "S\u200bTOP",
    "S\u2060TOP",
    "STO\u00adP",
    "S\u0332T\u0332O\u0332P\u0332",
    "S.T.O.P",
    "S\u0422\u041e\u0420",
    "Remove me",
    "no more texts",
    "please stop texting me",
]


class Rehearsal:
    """One emulator, one state folder, campaigns written into one folder."""

    def __init__(self, campaign_cli, emu, tmp_path: Path) -> None:
        self.cli, self.emu, self.dir = campaign_cli, emu, tmp_path
        self.state = str(tmp_path / "state")
        self.env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}

    def write(
        self, name: str, cid: str, chats: list[str], steps: list[str], extra: str = ""
    ) -> Path:
        recipients = "".join(f'  - to: "{c}"\n' for c in chats)
        body = "".join(f'  - id: {s}\n    text: "{s} from {cid}"\n' for s in steps)
        path = self.dir / name
        path.write_text(f"version: 1\nid: {cid}\n{extra}recipients:\n{recipients}steps:\n{body}")
        return path

    def run(self, *args: str):
        result = self.cli(*args, "--state", self.state, env=self.env)
        assert KEY not in result.stdout + result.stderr
        return result

    def send(self, campaign: Path, *more: str):
        return self.run("send", str(campaign), "--yes", *FAST, *more)

    def sent_to(self, chat: str) -> list[str]:
        return [m["body"]["text"] for m in self.emu.messages() if m["chat"] == chat]

    def reads(self) -> int:
        """Requests that were not sends (reply readings: nothing else runs here)."""
        s = self.emu.stats()
        return s["requests"] - s["send_requests"]


@pytest.fixture
def rehearsal(campaign_cli, make_emulator, tmp_path):
    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=7))
    return Rehearsal(campaign_cli, emu, tmp_path)


def test_a_stop_between_steps_wins_in_this_and_every_campaign_of_the_state(rehearsal):
    r = rehearsal
    stoppers = [f"+1555210{i:04d}" for i in range(len(SPELLINGS))]
    keeper, newcomer = "+15552109998", "+15552109999"
    chats = [*stoppers, keeper]
    welcome = r.write("drip.yaml", "drip", chats, ["welcome"])
    first = r.send(welcome)
    assert first.returncode == 0, first.stderr
    assert r.reads() == 0  # a first send reads nothing
    for chat, text in zip(stoppers, SPELLINGS, strict=True):
        r.emu.reply(chat, text)
    r.emu.reply(keeper, "Yes please!")

    # The team adds the reminder and sends again, with nothing run in between.
    drip = r.write("drip.yaml", "drip", chats, ["welcome", "reminder"])
    before = r.reads()
    second = r.send(drip)
    assert second.returncode == 0, second.stderr
    assert r.reads() - before == len(chats)  # one reading per chat messaged before, no more
    for chat in stoppers:
        assert r.sent_to(chat) == ["welcome from drip"], chat
    assert r.sent_to(keeper) == ["welcome from drip", "reminder from drip"]
    assert (
        f"read the new replies of {len(chats)} chats messaged before ({len(chats)} "
        f"requests): {len(stoppers)} opted out, 0 held"
    ) in second.stderr

    # A second campaign of the same state: the opted-out chats are planned out, the others
    # are read again before this campaign messages them; a new chat is not read.
    promo = r.write("promo.yaml", "promo", [*chats, newcomer], ["offer"])
    plan = r.run("plan", str(promo), "--format", "json")
    assert json.loads(plan.stdout)["consent"] == {"opted_out": len(stoppers), "held": 0}
    before = r.reads()
    third = r.send(promo)
    assert third.returncode == 0, third.stderr
    assert r.reads() - before == 1  # the keeper only
    for chat in stoppers:
        assert "offer from promo" not in r.sent_to(chat)
    assert r.sent_to(newcomer) == ["offer from promo"]
    assert r.emu.stats()["duplicates"] == 0


def test_a_stop_read_by_the_other_campaigns_send(rehearsal):
    """Campaign A messaged the chat; the STOP arrives; campaign B's first send reads it."""
    r = rehearsal
    chat = "+15552200001"
    a = r.write("a.yaml", "alpha", [chat], ["hello"])
    assert r.send(a).returncode == 0
    r.emu.reply(chat, "Stop texting me")
    b = r.write("b.yaml", "beta", [chat], ["promo"])
    sent = r.send(b)
    assert sent.returncode == 0, sent.stderr
    assert r.sent_to(chat) == ["hello from alpha"]
    report = json.loads(r.run("report", str(a), "--format", "json").stdout)
    assert report["consent"]["opted_out"] == 1 and report["schema_version"] == 6


def test_an_ambiguous_reply_holds_until_a_person_releases_it(rehearsal):
    r = rehearsal
    held, other = "+15552300001", "+15552300002"
    c = r.write("c.yaml", "hold", [held, other], ["hello"])
    assert r.send(c).returncode == 0
    r.emu.reply(held, "don't stop, I love these")
    c = r.write("c.yaml", "hold", [held, other], ["hello", "more"])
    sent = r.send(c)
    assert sent.returncode == 0, sent.stderr
    assert r.sent_to(held) == ["hello from hold"] and len(r.sent_to(other)) == 2
    assert "0 opted out, 1 held" in sent.stderr

    report = r.run("report", str(c))
    assert "1 held for review" in report.stdout and "campaign optouts review" in report.stdout
    assert held not in report.stdout and "+1555•••0001" in report.stdout

    listed = r.run("optouts", "review", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [hold] = json.loads(listed.stdout)["held"]
    assert hold["chat"] == "+1555•••0001" and hold["word"] == "STOP"
    assert hold["campaign"] == "hold" and hold["step"] == "hello"
    assert r.send(c).returncode == 0 and len(r.sent_to(held)) == 1  # still held

    bad = r.run("optouts", "review", "--release", "999")
    assert bad.returncode == 1 and "no hold '999'" in bad.stderr
    released = r.run("optouts", "review", "--release", str(hold["id"]), "--by", "dana")
    assert released.returncode == 0, released.stderr
    assert "released: messages resume (by dana)" in released.stdout
    again = r.send(c)
    assert again.returncode == 0, again.stderr
    assert r.sent_to(held) == ["hello from hold", "more from hold"]


def test_a_hold_confirmed_as_an_opt_out(rehearsal):
    r = rehearsal
    chat = "+15552400001"
    c = r.write("c.yaml", "confirm", [chat], ["hello"])
    assert r.send(c).returncode == 0
    r.emu.reply(chat, "can I cancel my order?")
    assert r.run("optouts", str(c)).returncode == 0  # read by optouts this time
    [hold] = json.loads(r.run("optouts", "review", "--format", "json").stdout)["held"]
    done = r.run("optouts", "review", "--opt-out", chat, "--format", "json")
    assert json.loads(done.stdout)["decided"] == [{"chat": "+1555•••0001", "now": "opted_out"}]
    assert json.loads(r.run("optouts", "review", "--format", "json").stdout)["held"] == []
    c = r.write("c.yaml", "confirm", [chat], ["hello", "more"])
    assert r.send(c).returncode == 0
    assert r.sent_to(chat) == ["hello from confirm"]
    assert hold["id"] > 0


def test_report_counts_are_the_same_before_and_after_export(campaign_cli, make_emulator, tmp_path):
    """The 6 -> 0 drop: opt-outs per variant survive the chats moving into the file."""
    emu = make_emulator(
        EmulatorConfig(
            api_key=KEY,
            seed=3,
            sent_after_ms=0,
            delivered_after_ms=0,
            delivery_jitter_ms=0,
            reply_after_s=30,
            reply_rules=["code=0.3:STOP", "^Hi=0.2:STOP"],
        )
    )
    r = Rehearsal(campaign_cli, emu, tmp_path)
    phones = [f"+1555250{i:04d}" for i in range(60)]
    (tmp_path / "optouts.txt").write_text("")
    (tmp_path / "people.csv").write_text("phone\n" + "\n".join(phones) + "\n")
    campaign = tmp_path / "ab.yaml"
    campaign.write_text(
        textwrap.dedent("""\
        version: 1
        id: ab
        suppress: [optouts.txt]
        recipients: {file: people.csv, to: phone}
        steps:
          - id: hello
            variants:
              - {id: short, weight: 50, text: "Hi there, 20% off"}
              - {id: code, weight: 50, text: "Your code: SPRING"}
        """)
    )
    assert r.send(campaign).returncode == 0
    emu.advance(60)
    tracked = r.run(
        "track",
        str(campaign),
        *FAST[:3],
        "--first-poll",
        "0",
        "--poll-cap",
        "0.05",
        "--timeout",
        "20",
    )
    assert tracked.returncode == 0, tracked.stderr

    def counts() -> dict[str, int]:
        doc = json.loads(r.run("report", str(campaign), "--format", "json").stdout)
        return {v["variant"]: v["opted_out"] for v in doc["replies"]["steps"]["hello"]["variants"]}

    stops = {m["chat"] for m in emu.messages() for x in m["replies"] if x["text"] == "STOP"}
    before = counts()
    assert sum(before.values()) == len(stops) and min(before.values()) > 0
    exported = r.run("optouts", str(campaign), "--export", "--rate", "1000")
    assert exported.returncode == 0, exported.stderr
    lines = [ln.split()[0] for ln in (tmp_path / "optouts.txt").read_text().splitlines()]
    assert sorted(lines) == sorted(stops)
    assert counts() == before


def test_an_unreadable_chat_is_not_messaged_and_the_run_resumes(rehearsal):
    r = rehearsal
    chat = "+15552600001"
    c = r.write("c.yaml", "unread", [chat], ["hello"])
    assert r.send(c).returncode == 0
    c = r.write("c.yaml", "unread", [chat], ["hello", "more"])
    r.emu.configure(p_500=1.0)
    failed = r.send(c, "--max-attempts", "2")
    assert failed.returncode == 3, failed.stderr
    assert "their replies could not be read" in failed.stderr
    assert r.sent_to(chat) == ["hello from unread"]
    r.emu.configure(p_500=0.0)
    resumed = r.send(c)
    assert resumed.returncode == 0, resumed.stderr
    assert r.sent_to(chat) == ["hello from unread", "more from unread"]


def test_a_refused_key_while_reading_sends_nothing(rehearsal):
    r = rehearsal
    chat = "+15552700001"
    c = r.write("c.yaml", "refused", [chat], ["hello"])
    assert r.send(c).returncode == 0
    c = r.write("c.yaml", "refused", [chat], ["hello", "more"])
    r.emu.configure(api_key="another-key")
    stopped = r.send(c)
    assert stopped.returncode == 3, stopped.stderr
    assert r.sent_to(chat) == ["hello from refused"]


def test_a_damaged_ledger_stops_the_send_before_anything_is_sent(rehearsal):
    r = rehearsal
    c = r.write("c.yaml", "damaged", ["+15552800001"], ["hello"])
    assert r.send(c).returncode == 0
    ledger = Path(r.state) / "_consent.sqlite"
    ledger.write_bytes(b"\0garbage" * 4096)
    for extra in ("-wal", "-shm"):
        Path(str(ledger) + extra).unlink(missing_ok=True)
    c = r.write("c.yaml", "damaged", ["+15552800001", "+15552800002"], ["hello"])
    before = r.emu.stats()["send_requests"]
    failed = r.send(c)
    assert failed.returncode == 1
    assert "consent ledger" in failed.stderr and "Traceback" not in failed.stderr
    assert r.emu.stats()["send_requests"] == before
