"""Issue 16.3: opt-out replies as the law and carriers read them. The FCC's seven words (and
STOPALL, OPTOUT), matched trimmed, case-folded and without punctuation, as the whole reply or
its start; a stop phrase anywhere ("please stop texting me") opts out too; a campaign's own
`optout_words`; a reply with a stop word elsewhere is held for a person (listed masked); the
suppression file exported through a symlink, never a chat twice."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from runner.audience.mask import reply_excerpt
from runner.campaign.load import load_campaign
from runner.cli import main
from runner.consent.match import Meaning, Reading, read_reply
from runner.errors import CampaignError
from runner.run.optouts import Exported, export, stop_word, stop_words
from runner.store.journal import ACCEPTED, Attempt, Journal, Outcome
from runner.store.ledger import Ledger
from runner.store.paths import journal_path, ledger_path

pytest_plugins = ["emulator_fixtures"]

A, B, C, D, E = (f"+1555123000{i}" for i in range(1, 6))


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP.", "STOP"),
        ("stop please", "STOP"),
        ("Stop!!", "STOP"),
        (" QUIT\n", "QUIT"),
        ("StopAll", "STOPALL"),
        ("END", "END"),
        ("revoke", "REVOKE"),
        ("Revoke consent.", "REVOKE"),
        ("opt out", "OPT OUT"),
        ("OPT-OUT", "OPT OUT"),
        ("Opt out, thanks", "OPT OUT"),
        ("OPTOUT", "OPTOUT"),
        ("cancel.", "CANCEL"),
        ("unsubscribe me", "UNSUBSCRIBE"),
        ("«Stop»", "STOP"),
        ("ＳＴＯＰ", "STOP"),  # quotes and full-width letters fold too
    ],
)
def test_a_reply_that_is_or_starts_with_a_stop_word_opts_out(text, word):
    assert read_reply(text) == Reading(Meaning.OPT_OUT, word)
    assert stop_word(text) == word


@pytest.mark.parametrize(
    ("text", "word"),
    [
        # Changed on purpose with the consent ledger: a stop phrase anywhere is an opt-out.
        ("please stop texting me", "STOP TEXTING"),
        ("Could you STOP MESSAGING me?", "STOP MESSAGING"),
    ],
)
def test_a_stop_phrase_anywhere_opts_out(text, word):
    assert read_reply(text) == Reading(Meaning.OPT_OUT, word)
    assert stop_word(text) == word


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("I want to opt-out", "OPT OUT"),
        ("can I cancel my order?", "CANCEL"),
        ("don't stop", "STOP"),
    ],
)
def test_a_stop_word_elsewhere_is_held(text, word):
    assert read_reply(text) == Reading(Meaning.HOLD, word)
    assert stop_word(text) is None


@pytest.mark.parametrize(
    "text", ["hello", "stopping by later", "unstoppable", "endless fun", "", " ", "!!!", None, 7]
)
def test_other_replies_mean_nothing(text):
    assert read_reply(text) is None


def test_a_campaign_adds_its_own_words():
    words = stop_words(["Arrêt", "no más", "  "])
    assert read_reply("ARRÊT.", words) == Reading(Meaning.OPT_OUT, "ARRÊT")
    assert read_reply("No más, gracias", words) == Reading(Meaning.OPT_OUT, "NO MÁS")
    assert read_reply("stop", words) == Reading(Meaning.OPT_OUT, "STOP")  # the standard words stay
    assert read_reply("No más", stop_words()) is None
    assert stop_word("no más", words) == "NO MÁS" and stop_word("no más") is None


def test_reply_excerpt_masks_phones_and_emails_and_cuts():
    text = reply_excerpt("call me at +1 555 123 4567 or ada@example.com, not stop " + "x" * 300)
    assert "555 123" not in text and "4567" in text and "ada@" not in text
    assert "a•••@example.com" in text and len(text) <= 160


CAMPAIGN = """\
version: 1
id: words
recipients:
  - to: "+15551230001"
suppress: [lists/optouts.txt]
optout_words: [arrêt, "no más"]
steps:
  - id: hello
    text: "hi"
"""


def test_the_campaign_field_is_loaded_and_checked(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "optouts.txt").write_text("", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    assert load_campaign(tmp_path / "c.yaml").optout_words == ["arrêt", "no más"]
    (tmp_path / "bad.yaml").write_text(
        CAMPAIGN.replace('[arrêt, "no más"]', '[""]'), encoding="utf-8"
    )
    with pytest.raises(CampaignError, match=r"bad\.yaml:6:.*must not be empty"):
        load_campaign(tmp_path / "bad.yaml")


def test_export_writes_through_a_symlink_and_never_twice(tmp_path):
    # A shared list elsewhere in the repository (files a campaign names stay inside it).
    (tmp_path / ".git").mkdir()
    shared = tmp_path / "shared" / "optouts.txt"
    shared.parent.mkdir()
    shared.write_text(f"{E}\n", encoding="utf-8")
    (tmp_path / "camp").mkdir()
    link = tmp_path / "camp" / "optouts.txt"
    link.symlink_to(shared)
    camp = str(tmp_path / "camp" / "c.yaml")
    t = 1_700_000_000_000
    added = export(
        link, [Exported(A, "QUIT", t + 5), Exported(A, "STOP", t), Exported(E, "STOP", t)], camp
    )
    assert [(o.chat, o.word) for o in added] == [(A, "STOP")]  # the first opt-out of the chat
    assert link.is_symlink() and link.resolve() == shared
    assert shared.read_text().splitlines() == [E, f"{A}  # opted out 2023-11-14 via STOP"]
    assert export(link, [Exported(A, "END", t + 9)], camp) == []
    assert shared.read_text().count(A) == 1


def sent_to(state, chats):
    now = time.time() - 5
    ops = []
    for i, chat in enumerate(chats):
        ops += [
            Attempt(f"k{i}", chat, "hello", 1, i, 0, 1, "h", None, now),
            Outcome(f"k{i}", ACCEPTED, message_id=f"m{i}", http_status=202, now=now),
        ]
    with Journal(journal_path(state, "words")) as j:
        j.apply(ops)


def standings(state) -> dict[str, tuple[str, str | None]]:
    with Ledger(ledger_path(state)) as ledger:
        return {s.chat: (s.state.value, s.event.word) for s in ledger.standing_rows()}


def test_optouts_reads_new_words_and_holds_replies_for_review(tmp_path, make_emulator):
    emu = make_emulator()
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "optouts.txt").write_text("", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    state = tmp_path / "st"
    sent_to(state, [A, B, C, D, E])
    emu.reply(A, "STOP.")
    emu.reply(B, "stop please")
    emu.reply(C, "Opt-Out")
    emu.reply(D, "Arrêt!")
    emu.reply(E, f"can I cancel my order? this is {E}'s phone")
    env = {"BLOOIO_API_KEY": emu.api_key, "BLOOIO_BASE_URL": emu.base_url}
    args = ["optouts", str(tmp_path / "c.yaml"), "--state", str(state), "--rate", "500"]
    dry = CliRunner().invoke(main, [*args, "--dry-run", "--format", "json"], env=env)
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert [(o["chat"], o["word"]) for o in doc["opted_out"]] == [
        ("+1555•••0001", "STOP"),
        ("+1555•••0002", "STOP"),
        ("+1555•••0003", "OPT OUT"),
        ("+1555•••0004", "ARRÊT"),
    ]
    assert E not in dry.stdout
    assert standings(state) == {}  # a dry run records nothing
    assert (tmp_path / "lists" / "optouts.txt").read_text() == ""  # nor writes the file

    text = CliRunner().invoke(main, args, env=env)
    assert text.exit_code == 0, text.output
    assert "recorded 4 new opt-outs in the consent ledger" in text.stdout
    assert "1 chat held" in text.stdout and "campaign optouts review" in text.stdout
    assert "can I cancel my order? this is +1555•••0005's phone" in text.stdout
    assert E not in text.stdout
    assert standings(state) == {
        A: ("opted_out", "STOP"),
        B: ("opted_out", "STOP"),
        C: ("opted_out", "OPT OUT"),
        D: ("opted_out", "ARRÊT"),
        E: ("held", "CANCEL"),
    }
    assert (tmp_path / "lists" / "optouts.txt").read_text() == ""  # no --export: file untouched

    exported = CliRunner().invoke(main, [*args, "--export"], env=env)
    assert exported.exit_code == 0, exported.output
    assert "exported 4 opt-outs to" in exported.stdout
    recorded = (tmp_path / "lists" / "optouts.txt").read_text()
    # Held is not opted out: E is not exported.
    assert [line.split()[0] for line in recorded.splitlines()] == [A, B, C, D]


def test_a_dry_run_lists_the_holds_it_would_record(tmp_path, make_emulator):
    emu = make_emulator()
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "optouts.txt").write_text("", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    state = tmp_path / "st"
    sent_to(state, [E])
    emu.reply(E, f"can I cancel my order? this is {E}'s phone")
    env = {"BLOOIO_API_KEY": emu.api_key, "BLOOIO_BASE_URL": emu.base_url}
    dry = CliRunner().invoke(
        main,
        [
            "optouts",
            str(tmp_path / "c.yaml"),
            "--state",
            str(state),
            "--rate",
            "500",
            "--dry-run",
            "--format",
            "json",
        ],
        env=env,
    )
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    (held,) = doc["held"]
    assert held["chat"] == "+1555•••0005" and held["word"] == "CANCEL"
    assert "+1555•••0005's phone" in held["text"] and E not in dry.stdout
    assert standings(state) == {}
