"""What a reply means for consent: an opt-out, a hold for a person, an opt-in, a HELP, or
nothing. Pure: text in, a ``Reading`` out.

Carriers and the FCC judge what a person wrote, not the bytes a phone sent, so the reply is
folded before matching (``fold``):

1. NFKC: full-width and styled letters (ＳＴＯＰ, 𝐒𝐓𝐎𝐏) read as plain ones;
2. format characters (Unicode Cf: zero-width space, word joiner, soft hyphen, bidi controls)
   are dropped, and so are combining marks (S̲T̲O̲P̲, and accents: "arrêt" reads "arret");
3. letters that look like Latin ones (Cyrillic "СТОР", Greek "ΤΕΛΟΣ"'s Τ) read as those Latin
   letters, by Unicode's confusables table (the ``confusable_homoglyphs`` package's copy);
4. case-folded; anything not a letter or digit is a space;
5. letters spelled out one by one ("S.T.O.P", "s t o p") are joined into a word.

Then, in this order: a reply that is exactly an opt-in word (START, UNSTOP) opts in; exactly a
HELP word asks for help; one that is, or starts with, a stop word opts out; one that holds a stop
phrase anywhere ("please stop texting me", "remove me") opts out; one that holds a stop word
anywhere else ("don't stop", "non-stop deals?") is held for a person to decide. The words and
phrases, each with its source, are data: ``vocabulary.json`` beside this module.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

# At least this many letters spelled out one by one are read as a word: "S.T.O.P", "E N D".
_SPELLED_MIN = 3
_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me"})


class Meaning(StrEnum):
    """What a reply says about consent (stored in the ledger as these strings)."""

    OPT_OUT = "opted_out"  # never message this chat again, from any campaign of the state
    HOLD = "held"  # a stop word not at the start: nothing more until a person decides
    OPT_IN = "opted_in"  # START / UNSTOP: consent given again
    HELP = "help"  # HELP / INFO: the sender owes an answer (the team policy's help_text)


@dataclass(frozen=True, slots=True)
class Reading:
    meaning: Meaning
    word: str  # the word or phrase that decided it, as the vocabulary writes it ("STOP")


@dataclass(frozen=True, slots=True)
class Term:
    """One entry of the vocabulary: its text as written and the keys of its sources."""

    text: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """The folded words and phrases a reply is matched against, each with how it is shown."""

    stop_words: tuple[tuple[str, str], ...]  # (folded, shown), longest first
    stop_phrases: tuple[tuple[str, str], ...]
    opt_in: dict[str, str]
    help: dict[str, str]

    @property
    def words(self) -> tuple[str, ...]:
        """The stop words as shown (standard and a campaign's own)."""
        return tuple(shown for _, shown in self.stop_words)


# -- folding --------------------------------------------------------------------------------


@functools.cache
def _confusables() -> dict[str, str]:
    """Each non-ASCII character that Unicode's confusables table says looks like an ASCII
    letter or digit, mapped to it. Upper-case letters are preferred: ``fold`` upper-cases before
    mapping, so "С" (Cyrillic) and "с" both become "C"; a prototype reached in two steps counts
    (Greek "Ι" is listed as "l", which is listed as "I")."""
    import confusable_homoglyphs  # the maintained table; loaded only when replies are read

    raw: dict[str, list[dict[str, str]]] = json.loads(
        resources.files(confusable_homoglyphs).joinpath("confusables.json").read_text("utf-8")
    )

    def ascii_of(ch: str) -> list[str]:
        return [
            e["c"]
            for e in raw.get(ch, ())
            if len(e["c"]) == 1 and e["c"].isascii() and e["c"].isalnum()
        ]

    def rank(c: str) -> tuple[int, str]:
        return (0 if c.isupper() else 1 if c.isalpha() else 2, c)

    table: dict[str, str] = {}
    for ch in raw:
        if len(ch) != 1 or ch.isascii():
            continue
        found = set(ascii_of(ch))
        for near in list(found) + [e["c"] for e in raw[ch] if len(e["c"]) == 1]:
            found.update(ascii_of(near))
        if found:
            table[ch] = min(found, key=rank)
    return table


def fold(text: str) -> str:
    """A reply as matching sees it: ``" S\u200bT.O.P! "`` is ``"stop"``, ``"Opt-Out"`` is
    ``"opt out"`` (see the module's docstring for each step)."""
    s = unicodedata.normalize("NFKC", text)
    s = unicodedata.normalize("NFD", s)
    s = "".join(c for c in s if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    if not s.isascii():
        table = _confusables()
        s = "".join(table.get(c, c) for c in s.upper())
    s = unicodedata.normalize("NFC", s).casefold()
    tokens = re.findall(r"[^\W_]+", s)
    return " ".join(_join_spelled(tokens))


def _join_spelled(tokens: list[str]) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    for tok in [*tokens, ""]:
        if len(tok) == 1:
            run.append(tok)
            continue
        if len(run) >= _SPELLED_MIN:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if tok:
            out.append(tok)
    return out


# -- the vocabulary -------------------------------------------------------------------------


@dataclass(frozen=True)
class VocabularyData:
    """``vocabulary.json`` as read: sources and terms (for docs/optouts.md's table and the tests)."""

    sources: dict[str, str]
    opt_out_words: tuple[Term, ...]
    opt_out_phrases: tuple[Term, ...]
    opt_in_words: tuple[Term, ...]
    help_words: tuple[Term, ...]


@functools.cache
def vocabulary_data() -> VocabularyData:
    doc: dict[str, Any] = json.loads(
        resources.files("runner.consent").joinpath("vocabulary.json").read_text("utf-8")
    )

    def terms(name: str) -> tuple[Term, ...]:
        return tuple(Term(t["text"], tuple(t["sources"])) for t in doc[name])

    return VocabularyData(
        dict(doc["sources"]),
        terms("opt_out_words"),
        terms("opt_out_phrases"),
        terms("opt_in_words"),
        terms("help_words"),
    )


def _folded(texts: Iterable[str]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for text in texts:
        key = fold(text)
        if key and key not in seen:
            seen[key] = " ".join(text.split()).upper()
    # Longest first: "stop texting" is found before "stop", "stopall" before "stop".
    return tuple(sorted(seen.items(), key=lambda kv: (-len(kv[0]), kv[0])))


def vocabulary(extra_words: Iterable[str] = ()) -> Vocabulary:
    """The standard vocabulary with a campaign's or team's own stop words added."""
    return _vocabulary(tuple(w for w in extra_words if w and w.strip()))


@functools.cache
def _vocabulary(extra: tuple[str, ...]) -> Vocabulary:
    data = vocabulary_data()
    return Vocabulary(
        stop_words=_folded([*(t.text for t in data.opt_out_words), *extra]),
        stop_phrases=_folded(t.text for t in data.opt_out_phrases),
        opt_in=dict(_folded(t.text for t in data.opt_in_words)),
        help=dict(_folded(t.text for t in data.help_words)),
    )


# -- reading a reply ------------------------------------------------------------------------


def read_reply(text: object, vocab: Vocabulary | None = None) -> Reading | None:
    """What one reply means for consent, or None when it means nothing for it."""
    if not isinstance(text, str):
        return None
    reply = fold(text)
    if not reply:
        return None
    v = vocab if vocab is not None else vocabulary()
    if reply in v.opt_in:
        return Reading(Meaning.OPT_IN, v.opt_in[reply])
    if reply in v.help:
        return Reading(Meaning.HELP, v.help[reply])
    for word, shown in v.stop_words:
        if reply == word or reply.startswith(word + " "):
            return Reading(Meaning.OPT_OUT, shown)
    padded = f" {reply} "
    for phrase, shown in v.stop_phrases:
        if f" {phrase} " in padded:
            return Reading(Meaning.OPT_OUT, shown)
    for word, shown in v.stop_words:
        if f" {word} " in padded:
            return Reading(Meaning.HOLD, shown)
    return None
