"""Issue 16.3: opt-out replies as the law and carriers read them. The FCC's seven words (and
STOPALL, OPTOUT), matched trimmed, case-folded and without punctuation, as the whole reply or
its start; a campaign's own `optout_words`; replies with a stop word elsewhere listed (masked)
for review; the suppression file written through a symlink, never a chat twice."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from runner.campaign.load import load_campaign
from runner.cli import main
from runner.errors import CampaignError
from runner.run.optouts import (
    OPTOUT,
    REVIEW,
    OptOut,
    mask_text,
    read_reply,
    record,
    stop_word,
    stop_words,
)
from runner.store.journal import ACCEPTED, Attempt, Journal, Outcome
from runner.store.paths import journal_path

pytest_plugins = ["emulator_fixtures"]

A, B, C, D, E = (f"+1555123000{i}" for i in range(1, 6))


@pytest.mark.parametrize(("text", "word"), [
    ("STOP.", "STOP"), ("stop please", "STOP"), ("Stop!!", "STOP"), (" QUIT\n", "QUIT"),
    ("StopAll", "STOPALL"), ("END", "END"), ("revoke", "REVOKE"), ("Revoke consent.", "REVOKE"),
    ("opt out", "OPT OUT"), ("OPT-OUT", "OPT OUT"), ("Opt out, thanks", "OPT OUT"),
    ("OPTOUT", "OPTOUT"), ("cancel.", "CANCEL"), ("unsubscribe me", "UNSUBSCRIBE"),
    ("«Stop»", "STOP"), ("ＳＴＯＰ", "STOP"),  # quotes and full-width letters fold too
])
def test_a_reply_that_is_or_starts_with_a_stop_word_opts_out(text, word):
    assert read_reply(text) == (OPTOUT, word)
    assert stop_word(text) == word


@pytest.mark.parametrize(("text", "word"), [
    ("please stop texting me", "STOP"), ("I want to opt-out", "OPT OUT"),
    ("can I cancel my order?", "CANCEL"), ("don't stop", "STOP"),
])
def test_a_stop_word_elsewhere_is_for_review(text, word):
    assert read_reply(text) == (REVIEW, word)
    assert stop_word(text) is None


@pytest.mark.parametrize("text", ["hello", "stopping by later", "unstoppable", "endless fun",
                                  "", " ", "!!!", None, 7])
def test_other_replies_mean_nothing(text):
    assert read_reply(text) is None


def test_a_campaign_adds_its_own_words():
    words = stop_words(["Arrêt", "no más", "  "])
    assert read_reply("ARRÊT.", words) == (OPTOUT, "ARRÊT")
    assert read_reply("No más, gracias", words) == (OPTOUT, "NO MÁS")
    assert read_reply("stop", words) == (OPTOUT, "STOP")  # the standard words stay
    assert read_reply("No más", stop_words()) is None


def test_mask_text_masks_phones_and_emails_and_cuts():
    text = mask_text("call me at +1 555 123 4567 or ada@example.com, not stop " + "x" * 300)
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
    (tmp_path / "bad.yaml").write_text(CAMPAIGN.replace('[arrêt, "no más"]', '[""]'),
                                       encoding="utf-8")
    with pytest.raises(CampaignError, match=r"bad\.yaml:6:.*must not be empty"):
        load_campaign(tmp_path / "bad.yaml")


def test_record_writes_through_a_symlink_and_never_twice(tmp_path):
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
    added = record(link, [OptOut(A, "QUIT", t + 5), OptOut(A, "STOP", t), OptOut(E, "STOP", t)],
                   camp)
    assert [(o.chat, o.word) for o in added] == [(A, "STOP")]
    assert link.is_symlink() and link.resolve() == shared
    assert shared.read_text().splitlines() == [E, f"{A}  # opted out 2023-11-14 via STOP"]
    assert record(link, [OptOut(A, "END", t + 9)], camp) == []
    assert shared.read_text().count(A) == 1


def test_optouts_reads_new_words_and_lists_replies_to_review(tmp_path, make_emulator):
    emu = make_emulator()
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "optouts.txt").write_text("", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    now = time.time() - 5
    ops = []
    for i, chat in enumerate([A, B, C, D, E]):
        ops += [Attempt(f"k{i}", chat, "hello", 1, i, 0, 1, "h", None, now),
                Outcome(f"k{i}", ACCEPTED, message_id=f"m{i}", http_status=202, now=now)]
    with Journal(journal_path(tmp_path / "st", "words")) as j:
        j.apply(ops)
    emu.reply(A, "STOP.")
    emu.reply(B, "stop please")
    emu.reply(C, "Opt-Out")
    emu.reply(D, "Arrêt!")
    emu.reply(E, f"please stop texting me, this is {E}'s phone")
    env = {"BLOOIO_API_KEY": emu.api_key, "BLOOIO_BASE_URL": emu.base_url}
    args = ["optouts", str(tmp_path / "c.yaml"), "--state", str(tmp_path / "st"), "--rate", "500"]
    dry = CliRunner().invoke(main, [*args, "--dry-run", "--format", "json"], env=env)
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert [(o["chat"], o["word"]) for o in doc["added"]] == [
        ("+1555•••0001", "STOP"), ("+1555•••0002", "STOP"), ("+1555•••0003", "OPT OUT"),
        ("+1555•••0004", "ARRÊT")]
    (review,) = doc["review"]
    assert review["chat"] == "+1555•••0005" and review["word"] == "STOP"
    assert E not in dry.stdout and "+1555•••0005's phone" in review["text"]
    assert (tmp_path / "lists" / "optouts.txt").read_text() == ""  # a dry run writes nothing

    text = CliRunner().invoke(main, args, env=env)
    assert text.exit_code == 0, text.output
    assert "added 4 opt-outs" in text.stdout and "1 reply to review" in text.stdout
    assert "please stop texting me" in text.stdout and E not in text.stdout
    recorded = (tmp_path / "lists" / "optouts.txt").read_text()
    assert [line.split()[0] for line in recorded.splitlines()] == [A, B, C, D]
