"""What a reply means for consent (runner.consent.match), both directions, and the vocabulary
as sourced data; where a chat stands after its events (runner.consent.standing)."""

from __future__ import annotations

import pytest

from runner.consent.match import Meaning, Reading, fold, read_reply, vocabulary, vocabulary_data
from runner.consent.standing import EventKind, Standing, Step, standing_after, standing_of

OUT, HOLD, IN, HELP = Meaning.OPT_OUT, Meaning.HOLD, Meaning.OPT_IN, Meaning.HELP


@pytest.mark.parametrize(
    ("text", "word"),
    [
        # The spellings of the issue: each is an opt-out.
        ("S\u200bTOP", "STOP"),  # zero-width space
        ("S\u2060TOP", "STOP"),  # word joiner
        ("STO\u00adP", "STOP"),  # soft hyphen
        ("S\u0332T\u0332O\u0332P\u0332", "STOP"),  # combining low line
        ("S.T.O.P", "STOP"),
        ("s t o p", "STOP"),
        ("S-T-O-P!", "STOP"),
        ("S\u0422\u041e\u0420", "STOP"),  # Cyrillic Т О Р
        ("\u0405TOP", "STOP"),  # Cyrillic Ѕ
        ("QU\u0399T", "QUIT"),  # Greek Ι (listed as "l" in the table, then as "I")
        ("ＳＴＯＰ", "STOP"),
        ("𝐒𝐓𝐎𝐏", "STOP"),
        ("\u202eSTOP\u202c", "STOP"),  # bidi controls
        ("Remove me", "REMOVE ME"),
        ("no more texts", "NO MORE TEXTS"),
        ("please stop texting me", "STOP TEXTING"),
        ("Take me off your list", "TAKE ME OFF"),
        ("ok... LEAVE ME ALONE", "LEAVE ME ALONE"),
        # Words at the start, as before.
        ("STOP.", "STOP"),
        ("stop please", "STOP"),
        (" QUIT\n", "QUIT"),
        ("StopAll", "STOPALL"),
        ("OPT-OUT", "OPT OUT"),
        ("optout", "OPTOUT"),
        ("Revoke consent.", "REVOKE"),
        ("unsubscribe me", "UNSUBSCRIBE"),
        ("«Stop»", "STOP"),
    ],
)
def test_opt_outs(text, word):
    assert read_reply(text) == Reading(OUT, word)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("don't stop", "STOP"),
        ("non-stop deals?", "STOP"),
        ("can I cancel my order?", "CANCEL"),
        ("I want to opt-out", "OPT OUT"),
        ("the end", "END"),
        ("why would I quit now", "QUIT"),
        ("DON'T S\u200bTOP", "STOP"),  # folded first, then judged
    ],
)
def test_a_stop_word_elsewhere_holds(text, word):
    assert read_reply(text) == Reading(HOLD, word)


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "Yes please",
        "stopping by later",
        "unstoppable",
        "endless fun",
        "weekend plans",
        "I'll text you back",
        "send me more texts",
        "a b",
        "a.m. works",
        "",
        "   ",
        "!!!",
        None,
        7,
        "\u200b",
        "stopper",
        "remover",
        "ok no more",
        "cancellation policy?",
    ],
)
def test_replies_that_mean_nothing(text):
    assert read_reply(text) is None


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("START", Reading(IN, "START")),
        ("unstop", Reading(IN, "UNSTOP")),
        ("Help", Reading(HELP, "HELP")),
        ("info?", Reading(HELP, "INFO")),
        ("start sending me deals", None),  # opting in again takes the word alone
        ("help me stop", Reading(HOLD, "STOP")),
    ],
)
def test_opt_in_and_help_are_the_whole_reply(text, reading):
    assert read_reply(text) == reading


def test_a_campaigns_own_words_fold_the_same_way():
    v = vocabulary(["Arrêt", "no más", "  "])
    assert read_reply("ARRET!", v) == Reading(OUT, "ARRÊT")
    assert read_reply("No mas, gracias", v) == Reading(OUT, "NO MÁS")
    assert read_reply("stop", v) == Reading(OUT, "STOP")  # the standard words stay
    assert read_reply("No más", vocabulary()) is None


def test_longer_words_and_phrases_win():
    assert read_reply("stopall now") == Reading(OUT, "STOPALL")
    assert read_reply("opt out") == Reading(OUT, "OPT OUT")  # not "out" anything else


def test_fold():
    assert fold("  S\u200bTOP!  ") == "stop" == fold("S.T.O.P")
    assert fold("Opt-Out") == "opt out"
    assert fold("A.B") == "a b"  # two spelled letters are not a word
    assert fold("I am A B C") == "i am abc"


def test_the_vocabulary_is_sourced_data():
    data = vocabulary_data()
    terms = (*data.opt_out_words, *data.opt_out_phrases, *data.opt_in_words, *data.help_words)
    assert terms and all(t.sources for t in terms)
    assert {s for t in terms for s in t.sources} <= set(data.sources)
    assert all(len(text) > 20 for text in data.sources.values())
    # The carriers' and the FCC's words (47 CFR 64.1200(a)(10)) are all there.
    assert {t.text for t in data.opt_out_words} >= {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPT OUT",
    }


def S(kind: EventKind, at: int, i: int = 0) -> Step:
    return Step(kind, at, i)


@pytest.mark.parametrize(
    ("events", "start", "after"),
    [
        ([S(EventKind.OPTED_OUT, 1)], None, Standing.OPTED_OUT),
        ([S(EventKind.HELD, 1)], None, Standing.HELD),
        ([S(EventKind.HELD, 1), S(EventKind.RELEASED, 2)], None, None),
        ([S(EventKind.OPTED_OUT, 1), S(EventKind.HELD, 2)], None, Standing.OPTED_OUT),
        ([S(EventKind.OPTED_OUT, 1), S(EventKind.RELEASED, 2)], None, Standing.OPTED_OUT),
        ([S(EventKind.OPTED_OUT, 1), S(EventKind.OPTED_IN, 2)], None, None),
        ([S(EventKind.OPTED_IN, 1), S(EventKind.OPTED_OUT, 2)], None, Standing.OPTED_OUT),
        (
            [S(EventKind.OPTED_OUT, 2), S(EventKind.OPTED_IN, 1)],
            None,
            Standing.OPTED_OUT,
        ),  # by time
        ([S(EventKind.HELD, 5, 2), S(EventKind.OPTED_OUT, 5, 1)], None, Standing.OPTED_OUT),
        ([S(EventKind.HELP, 1)], Standing.HELD, Standing.HELD),
        ([], Standing.OPTED_OUT, Standing.OPTED_OUT),
    ],
)
def test_standing_after(events, start, after):
    assert standing_after(events, start) is after


def test_a_member_keeps_a_group():
    standings = {"+15550000001": Standing.HELD, "+15550000002": Standing.OPTED_OUT}
    assert standing_of("+15550000001,+15550000003", standings) is Standing.HELD
    assert standing_of("+15550000001,+15550000002", standings) is Standing.OPTED_OUT
    assert standing_of("+15550000003,+15550000004", standings) is None
    assert standing_of("+15550000003", {}) is None


def test_what_the_ledger_keeps_of_a_reply_holds_no_control_character():
    from runner.audience.mask import reply_excerpt

    kept = reply_excerpt("stop \x1b]52;c;Zm9v\x07 \x9b31m call +15551234567\r\n::add-mask::x")
    assert kept.isprintable() and "\x1b" not in kept and "4567" in kept and "5551234567" not in kept
    assert "\n" not in kept
