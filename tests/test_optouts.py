"""`campaign optouts`: stop-word replies read from the API are recorded, once, in the state's
consent ledger; `--export` writes the ledger's opt-outs into the first suppression file. Pure
parts with plain data; HTTP against the emulator or a mock transport."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from runner.audience.suppress import load_suppression
from runner.cli import main
from runner.consent.match import vocabulary_data
from runner.consent.standing import EventKind, Standing
from runner.emulator import EmulatorConfig
from runner.errors import CampaignError, StoppedEarly
from runner.run.consent import events_of
from runner.run.optouts import (
    SKEW_MS,
    ChatToCheck,
    Exported,
    collect,
    export,
    stop_word,
    stop_words,
)
from runner.run.replies import chat_windows
from runner.store.backend import open_journal
from runner.store.journal import (
    ACCEPTED,
    PENDING,
    Attempt,
    Journal,
    Mark,
    Outcome,
)
from runner.store.ledger import Ledger
from runner.store.paths import journal_path, ledger_path
from runner.store.state import open_state

pytest_plugins = ["emulator_fixtures"]

SECRET = "sk_live_DO_NOT_PRINT_7f3a9c2e1b4d"
A, B, C, D, E = (f"+1555123000{i}" for i in range(1, 6))
DAY_MS = 86_400_000
OUT, HELD = EventKind.OPTED_OUT, EventKind.HELD
WORDS = stop_words()


# -- stop words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop \n", "StopAll", "unsubscribe", "CANCEL", "end", "Quit", "\tQUIT\t"],
)
def test_stop_words(text):
    assert stop_word(text) == text.strip().upper()


def test_spelled_out_letters_are_joined():
    # Changed on purpose with the consent ledger: "s t o p" is STOP spelled out.
    assert stop_word("s t o p") == "STOP" and stop_word("S.T.O.P") == "STOP"


@pytest.mark.parametrize(
    "text", ["don't stop", "", "   ", None, 42, "STOPP", "the end", "...", "stopping by later"]
)
def test_not_stop_words(text):
    assert stop_word(text) is None


def test_the_carrier_words_are_all_there():
    # The FCC's seven (47 CFR 64.1200(a)(10)), STOPALL, and the one-word OPTOUT.
    words = {t.text for t in vocabulary_data().opt_out_words}
    assert words == {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPT OUT",
        "OPTOUT",
    }
    assert set(WORDS.words) == words
    assert all(t.sources for t in vocabulary_data().opt_out_words)  # each says where it is from


# -- which chats, since when ----------------------------------------------------------------


def _attempted(journal) -> None:
    """B at 200 s; A at 150 s and (its outcome unknown) at 100 s; a group at 300 s (the API
    answered with its group id) and at 250 s; E only marked, never sent."""
    group = f"{C},{D}"
    ops = [
        Attempt("b", B, "s", 1, 0, 0, 1, "h", None, 200.0),
        Attempt("a1", A, "s", 1, 1, 0, 1, "h", None, 150.0),
        Attempt("a2", A, "s", 1, 1, 1, 1, "h", None, 100.0),
        Attempt("g1", group, "s", 1, 2, 0, 1, "h", None, 300.0),
        Attempt("g2", group, "s", 1, 2, 1, 1, "h", None, 250.0),
        Mark(
            "e",
            E,
            "s",
            1,
            3,
            0,
            1,
            status="failed",
            error_code="x",
            error_message=None,
            content_hash="h",
            run_id=None,
            now=300.0,
        ),
    ]
    ops += [
        Outcome("b", ACCEPTED, message_id="mb", now=201.0),
        Outcome("a2", PENDING, now=101.0),
        Outcome("g1", ACCEPTED, message_id="mg", group_id="grp_abc", now=301.0),
    ]
    journal.apply(ops)


def _checks(journal, since_ms=None, size=2) -> list[ChatToCheck]:
    return [c for page in chat_windows(journal, since_ms, size=size).pages for c in page]


def test_chats_to_check_from_first_attempts(state: str):
    with open_journal(open_state(state), "c") as j:
        _attempted(j)
        windows = chat_windows(j)
        assert windows.count == 3
        assert _checks(j) == [
            ChatToCheck(A, A, 100_000 - SKEW_MS),
            ChatToCheck(B, B, 200_000 - SKEW_MS),
            ChatToCheck(f"{C},{D}", "grp_abc", 250_000 - SKEW_MS),
        ]


def test_since_replaces_the_first_send(tmp_path):
    with Journal(tmp_path / "c.sqlite") as j:
        _attempted(j)
        assert _checks(j, since_ms=5)[0] == ChatToCheck(A, A, 5)


# -- what a reply means ---------------------------------------------------------------------


def msg(text, t, sender=None, direction="inbound"):
    return {"text": text, "time_sent": t, "sender": sender, "direction": direction}


def found(events):
    return [(e.chat, e.kind, e.word, e.at_ms) for e in events]


def read(chat, messages):
    return events_of(chat, messages, WORDS, campaign="c", step="hello")


def test_one_to_one_opt_outs_are_all_recorded():
    reading = read(A, [msg("hi", 1), msg("Cancel", 5), msg("STOP", 9)])
    # Every opt-out is an event (the ledger keeps the history); the cursor is the newest reply.
    assert found(reading.events) == [(A, OUT, "CANCEL", 5), (A, OUT, "STOP", 9)]
    assert reading.cursor_ms == 8
    assert {(e.campaign, e.step, e.excerpt) for e in reading.events[:1]} == {
        ("c", "hello", "Cancel")
    }
    # An outbound message is no reply, a sender in a 1:1 chat changes nothing.
    assert read(A, [msg("STOP", 3, direction="outbound")]).events == []
    assert found(read(A, [msg("stop", 3, sender=B)]).events) == [(A, OUT, "STOP", 3)]


def test_group_suppresses_only_the_member_who_wrote_it():
    reading = read(
        f"{C},{D},bob@example.com",
        [
            msg("stop", 1, sender=D),
            msg("ok", 2, sender=C),
            msg("END", 3, sender="Bob@Example.com "),
        ],
    )
    assert found(reading.events) == [(D, OUT, "STOP", 1), ("bob@example.com", OUT, "END", 3)]


def test_group_message_without_sender_suppresses_the_chat():
    assert found(read(f"{C},{D}", [msg("stop", 1)]).events) == [(f"{C},{D}", OUT, "STOP", 1)]


def test_opt_out_date_is_the_utc_day_of_the_reply():
    assert Exported(A, "STOP", 1_795_651_200_000 - 1).date == "2026-11-25"
    assert Exported(A, "STOP", 1_795_651_200_000).date == "2026-11-26"


# -- exporting ------------------------------------------------------------------------------


def test_export_appends_sorted_with_a_comment(tmp_path):
    path = tmp_path / "optouts.txt"
    path.write_text("# opt-outs\n+15551230009", encoding="utf-8")  # no final newline
    t = 1_795_651_200_000
    added = export(
        path, [Exported(B, "STOP", t), Exported(A, "QUIT", t + DAY_MS)], str(tmp_path / "c.yaml")
    )
    assert [o.chat for o in added] == [A, B]
    assert path.read_text() == (
        "# opt-outs\n+15551230009\n"
        f"{A}  # opted out 2026-11-27 via QUIT\n"
        f"{B}  # opted out 2026-11-26 via STOP\n"
    )
    s, problems = load_suppression([path.name], tmp_path, str(tmp_path / "c.yaml"))
    assert problems == [] and s.entries == {"+15551230009", A, B}


def test_export_twice_writes_nothing_new(tmp_path):
    path = tmp_path / "optouts.txt"
    path.write_text(f"{A}\nada@example.com  # by phone\n", encoding="utf-8")
    before = path.read_text()
    camp = str(tmp_path / "c.yaml")
    assert (
        export(path, [Exported(A, "STOP", 0), Exported("ada@example.com", "STOP", 0)], camp) == []
    )
    assert path.read_text() == before
    added = export(path, [Exported(B, "STOP", 0)], camp)
    assert len(added) == 1
    after = path.read_text()
    assert export(path, [Exported(B, "STOP", 0)], camp) == []
    assert path.read_text() == after


def test_export_group_fallback_is_held_when_a_member_is(tmp_path):
    path = tmp_path / "optouts.txt"
    path.write_text(f"{D}\n", encoding="utf-8")
    assert export(path, [Exported(f"{C},{D}", "STOP", 0)], str(tmp_path / "c.yaml")) == []


def test_export_into_a_csv_keeps_it_a_csv(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text("name,to,reason\nBob,+15551230009,staff\n", encoding="utf-8")
    export(path, [Exported(A, "STOP", 1_795_651_200_000)], str(tmp_path / "c.yaml"))
    assert path.read_text() == (
        f"name,to,reason\nBob,+15551230009,staff\n,{A},opted out 2026-11-26 via STOP\n"
    )
    s, problems = load_suppression([path.name], tmp_path, str(tmp_path / "c.yaml"))
    assert problems == [] and s.entries == {"+15551230009", A}


def test_export_creates_a_missing_file_but_not_a_missing_folder(tmp_path):
    path = tmp_path / "new.txt"
    export(path, [Exported(A, "STOP", 0)], str(tmp_path / "c.yaml"))
    assert path.read_text() == f"{A}  # opted out 1970-01-01 via STOP\n"
    with pytest.raises(CampaignError, match="folder does not exist"):
        export(tmp_path / "nope" / "x.txt", [Exported(A, "STOP", 0)], str(tmp_path / "c.yaml"))


def test_export_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "optouts.txt"
    path.write_text(f"{A}\n", encoding="utf-8")
    would = export(
        path,
        [Exported(A, "STOP", 0), Exported(B, "STOP", 0)],
        str(tmp_path / "c.yaml"),
        dry_run=True,
    )
    assert [o.chat for o in would] == [B] and path.read_text() == f"{A}\n"
    assert list(tmp_path.iterdir()) == [path]


# -- reading replies over HTTP (mock transport) ---------------------------------------------


class FakeApi:
    """Inbound messages per chat id, served with pagination; scripted statuses first."""

    def __init__(self, chats: dict[str, list[dict]], script: list[tuple[int, dict]] | None = None):
        self.chats = chats
        self.script = list(script or [])
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        if self.script:
            status, headers = self.script.pop(0)
            return httpx.Response(status, headers=headers, json={"error": "scripted"})
        chat = request.url.path.split("/")[-2]  # decoded by httpx
        if chat not in self.chats:
            return httpx.Response(404, json={"error": "Chat not found"})
        q = request.url.params
        assert q["direction"] == "inbound" and q["sort"] == "asc"
        rows = [m for m in self.chats[chat] if m["time_sent"] > int(q["since"])]
        offset, limit = int(q.get("offset", 0)), int(q["limit"])
        return httpx.Response(
            200,
            json={
                "messages": rows[offset : offset + limit],
                "pagination": {"limit": limit, "offset": offset, "total": len(rows)},
            },
        )


def run_collect(api: FakeApi, checks: list[ChatToCheck], **kw):
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    result = asyncio.run(
        collect(
            checks,
            base_url="http://api.test/v2/api",
            api_key=SECRET,
            transport=httpx.MockTransport(api),
            sleep=sleep,
            rate_per_second=None,
            **kw,
        )
    )
    return result, sleeps


def test_collect_paginates_with_offset():
    history = [msg(f"hello {i}", 1000 + i) for i in range(450)] + [msg("STOP", 5000)]
    api = FakeApi({A: history, B: [msg("fine", 10)]})
    result, _ = run_collect(api, [ChatToCheck(A, A, 0), ChatToCheck(B, B, 0)])
    assert found(result.events) == [(A, OUT, "STOP", 5000)]
    assert result.cursors == {A: 4999, B: 9}  # where the next reading of each chat starts
    offsets = [int(r.url.params["offset"]) for r in api.calls if A in r.url.path]
    assert offsets == [0, 200, 400]
    assert result.replies == 452 and result.requests == 4


def test_collect_uses_the_since_and_the_url_encoded_chat():
    api = FakeApi({"bob@example.com": [msg("STOP", 10), msg("stop", 30)]})
    result, _ = run_collect(api, [ChatToCheck("bob@example.com", "bob@example.com", 20)])
    assert found(result.events) == [("bob@example.com", OUT, "STOP", 30)]
    assert "/chats/bob%40example.com/messages" in str(api.calls[0].url)


def test_collect_retries_429_and_5xx_honouring_retry_after():
    api = FakeApi({A: [msg("stop", 1)]}, script=[(429, {"Retry-After": "3"}), (503, {}), (500, {})])
    result, sleeps = run_collect(api, [ChatToCheck(A, A, 0)])
    assert found(result.events) == [(A, OUT, "STOP", 1)] and result.failed == []
    assert len(sleeps) == 3 and sleeps[0] >= 3.0
    assert all(s <= 8.0 for s in sleeps[1:])


def test_collect_gives_up_after_bounded_attempts():
    api = FakeApi({A: [msg("stop", 1)], B: [msg("stop", 2)]}, script=[(503, {})] * 5)
    result, sleeps = run_collect(api, [ChatToCheck(A, A, 0), ChatToCheck(B, B, 0)], concurrency=1)
    assert result.failed == [(A, "HTTP 503")]
    assert found(result.events) == [(B, OUT, "STOP", 2)]
    assert A not in result.cursors  # not read: its cursor stays where it was
    assert len(sleeps) == 4  # five attempts, four waits


def test_collect_network_errors_are_retried_and_reported_redacted():
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError(f"boom {request.headers['authorization']}", request=request)

    result, _ = run_collect(handler, [ChatToCheck(A, A, 0)], max_attempts=3)
    assert len(calls) == 3
    # What failed, as the client words it, with the key cut out of the error's text.
    assert result.failed == [(A, "ConnectError: boom Bearer ***")]
    assert SECRET not in repr(result)


def test_collect_unknown_chat_is_counted_not_failed():
    result, _ = run_collect(FakeApi({}), [ChatToCheck(A, A, 0)])
    assert (result.not_found, result.failed, result.events) == (1, [], [])


def test_collect_401_stops_everything():
    api = FakeApi({A: []}, script=[(401, {})])
    with pytest.raises(StoppedEarly) as info:
        run_collect(api, [ChatToCheck(A, A, 0)])
    assert SECRET not in str(info.value)


def test_collect_one_person_across_chats():
    api = FakeApi({A: [msg("quit", 50)], "grp_1": [msg("STOP", 10, sender=A)]})
    result, _ = run_collect(api, [ChatToCheck(A, A, 0), ChatToCheck(f"{A},{B}", "grp_1", 0)])
    # Both replies are A's (the group's written by A); the ledger keeps both events, and the
    # export writes one line per person, with the first opt-out.
    assert sorted(found(result.events)) == [(A, OUT, "QUIT", 50), (A, OUT, "STOP", 10)]
    assert result.cursors == {A: 49, f"{A},{B}": 9}


def test_collect_names_the_campaign_and_the_step_answered():
    from runner.store.ledger import Contact

    api = FakeApi({A: [msg("stop", 5)], B: [msg("can I cancel?", 6)]})
    contacts = {A: Contact(A, A, 0, 0, "optout-test", "hello", None)}
    result, _ = run_collect(
        api, [ChatToCheck(A, A, 0), ChatToCheck(B, B, 0)], campaign="optout-test", contacts=contacts
    )
    assert sorted((e.chat, e.kind, e.campaign, e.step) for e in result.events) == [
        (A, OUT, "optout-test", "hello"),
        (B, HELD, "optout-test", None),
    ]


# -- the command against the emulator -------------------------------------------------------

CAMPAIGN = """\
version: 1
id: optout-test
recipients:
  - to: "+15551230001"
  - to: "+15551230002"
  - to: ["+15551230003", "+15551230004"]
  - to: "Eve@Example.com"
suppress:
  - lists/optouts.txt
  - lists/other.txt
steps:
  - id: hello
    text: "hi"
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "optouts.txt").write_text("# opt-outs\n+15551230009\n", encoding="utf-8")
    (tmp_path / "lists" / "other.txt").write_text("", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return tmp_path


def sent(state: Path, chats: list[str], *, at: float | None = None, groups: dict | None = None):
    """A journal as `send` leaves it: one accepted request per chat."""
    now = time.time() if at is None else at
    ops = []
    for i, chat in enumerate(chats):
        key = f"k{i}"
        ops.append(Attempt(key, chat, "hello", 1, i, 0, 1, "h", None, now))
        ops.append(
            Outcome(
                key,
                ACCEPTED,
                message_id=f"m{i}",
                group_id=(groups or {}).get(chat),
                http_status=202,
                now=now,
            )
        )
    with Journal(journal_path(state, "optout-test")) as j:
        j.apply(ops)


def optouts_cmd(project: Path, emu, *args: str, key: str | None = None):
    env = {
        "BLOOIO_API_KEY": key if key is not None else emu.api_key,
        "BLOOIO_BASE_URL": emu.base_url,
    }
    return CliRunner().invoke(
        main,
        [
            "optouts",
            str(project / "c.yaml"),
            "--state",
            str(project / "st"),
            "--rate",
            "200",
            *args,
        ],
        env=env,
    )


def lines(project: Path) -> list[str]:
    return (project / "lists" / "optouts.txt").read_text().splitlines()


def opted_out(project: Path) -> dict[str, str | None]:
    """The ledger's opt-outs: chat -> the word shown."""
    path = ledger_path(project / "st")
    if not path.is_file():
        return {}
    with Ledger(path) as ledger:
        return {s.chat: s.event.word for s in ledger.standing_rows(Standing.OPTED_OUT)}


def events_in(project: Path) -> list[tuple[str, EventKind, str | None]]:
    path = ledger_path(project / "st")
    if not path.is_file():
        return []
    with Ledger(path) as ledger:
        return [(e.chat, e.kind, e.word) for e in ledger.events()]


def test_optouts_end_to_end(project, make_emulator):
    emu = make_emulator(EmulatorConfig(api_key=SECRET))
    group = emu.create_group([C, D])
    sent(
        project / "st",
        [A, B, f"{C},{D}", "eve@example.com"],
        at=time.time() - 5,
        groups={f"{C},{D}": group},
    )
    at = emu.reply(A, "  Stop ")["time_sent"]
    at_b = emu.reply(B, "please stop texting me")["time_sent"]  # a stop phrase: an opt-out
    emu.reply(group, "UNSUBSCRIBE", sender=D)
    emu.reply(group, "haha", sender=C)
    emu.reply("eve@example.com", "end")
    emu.reply("+15551230007", "STOP")  # never messaged by this campaign: not read
    before = lines(project)
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0, result.output
    assert opted_out(project) == {
        A: "STOP",
        B: "STOP TEXTING",
        D: "UNSUBSCRIBE",
        "eve@example.com": "END",
    }
    assert "recorded 4 new opt-outs in the consent ledger" in result.output
    assert "+1555•••0001" in result.output and "e•••@example.com" in result.output
    assert A not in result.output and "eve@example.com" not in result.output
    assert SECRET not in result.output
    assert lines(project) == before  # without --export the file is not touched

    result = optouts_cmd(project, emu, "--export")
    assert result.exit_code == 0, result.output
    today = Exported(A, "STOP", at).date  # the day of the reply (UTC)
    assert lines(project) == [
        "# opt-outs",
        "+15551230009",
        f"{A}  # opted out {today} via STOP",
        f"{B}  # opted out {Exported(B, 'X', at_b).date} via STOP TEXTING",
        f"{D}  # opted out {today} via UNSUBSCRIBE",
        f"eve@example.com  # opted out {today} via END",
    ]
    assert "exported 4 opt-outs to" in result.output and "optouts.txt" in result.output
    assert "recorded 0 new opt-outs" in result.output and "4 already opted out" in result.output
    assert (project / "lists" / "other.txt").read_text() == ""
    # Only GETs: nothing was sent.
    assert emu.stats()["send_requests"] == 0


def test_optouts_json_names_what_it_found(project, make_emulator):
    emu = make_emulator()
    sent(project / "st", [A, B], at=time.time() - 5)
    emu.reply(A, "STOP")
    emu.reply(B, "don't stop")
    result = optouts_cmd(project, emu, "--format", "json", "--export")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["chats_checked"], doc["replies_read"], doc["already_opted_out"]) == (2, 2, 0)
    assert [(o["chat"], o["word"], o["campaign"], o["step"]) for o in doc["opted_out"]] == [
        ("+1555•••0001", "STOP", "optout-test", "hello")
    ]
    assert [(h["chat"], h["word"], h["text"]) for h in doc["held"]] == [
        ("+1555•••0002", "STOP", "don't stop")
    ]
    assert [(o["chat"], o["word"]) for o in doc["exported"]] == [("+1555•••0001", "STOP")]
    assert doc["suppression_file"].endswith("optouts.txt") and doc["failed"] == []
    assert doc["ledger"] == str(ledger_path(project / "st"))
    assert lines(project)[-1].startswith(f"{A}  # opted out ")  # held is not exported


def test_optouts_twice_adds_nothing(project, make_emulator):
    emu = make_emulator()
    sent(project / "st", [A, B], at=time.time() - 5)
    emu.reply(A, "STOP")
    assert optouts_cmd(project, emu, "--export").exit_code == 0
    first = lines(project)
    first_events = events_in(project)
    assert first_events == [(A, OUT, "STOP")]
    emu.reply(A, "STOP")  # again, later
    at = emu.reply(B, "quit")["time_sent"]
    result = optouts_cmd(project, emu, "--show-recipients", "--export")
    assert result.exit_code == 0, result.output
    assert lines(project) == first + [f"{B}  # opted out {Exported(B, 'QUIT', at).date} via QUIT"]
    assert "recorded 1 new opt-out " in result.output and B in result.output
    assert "1 already opted out" in result.output and "exported 1 opt-out " in result.output
    # The first STOP, read again, is not recorded again; the second is a reply of its own.
    assert events_in(project) == [(A, OUT, "STOP"), (A, OUT, "STOP"), (B, OUT, "QUIT")]
    again = optouts_cmd(project, emu, "--export")
    assert again.exit_code == 0, again.output
    assert "recorded 0 new opt-outs" in again.output and "exported 0 opt-outs" in again.output
    assert len(events_in(project)) == 3
    assert len(lines(project)) == len(set(lines(project))) == 4


def test_optouts_paginates_against_the_emulator(project, make_emulator):
    emu = make_emulator()
    sent(project / "st", [A], at=time.time() - 5)
    for i in range(205):
        emu.reply(A, f"message {i}")
    emu.reply(A, "CANCEL")
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0, result.output
    assert "206 replies read" in result.output and "(2 requests" in result.output
    assert opted_out(project) == {A: "CANCEL"}


def test_optouts_ignores_replies_before_the_first_send(project, make_emulator):
    emu = make_emulator()
    emu.reply(A, "STOP")
    sent(project / "st", [A], at=time.time() + 3600)  # first sent an hour from now
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0 and "recorded 0 new opt-outs" in result.output
    assert opted_out(project) == {}
    # --since reaches further back than the first send.
    result = optouts_cmd(project, emu, "--since", "1d")
    assert result.exit_code == 0 and "recorded 1 new opt-out " in result.output
    assert opted_out(project) == {A: "STOP"}


def test_optouts_survives_transient_errors(project, make_emulator):
    emu = make_emulator(EmulatorConfig(fault_script=["503", "429"], retry_after_s=0.0))
    sent(project / "st", [A], at=time.time() - 5)
    emu.reply(A, "STOP")
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0, result.output
    assert "(3 requests" in result.output and opted_out(project) == {A: "STOP"}


def test_optouts_unreadable_chats_exit_3_and_keep_what_was_found(project, make_emulator):
    emu = make_emulator(EmulatorConfig(fault_script=["500"] * 3, retry_after_s=0.0))
    sent(project / "st", [A, B], at=time.time() - 5)
    emu.reply(B, "STOP")
    # One request in flight at a time: A's three attempts take the three scripted faults.
    result = optouts_cmd(project, emu, "--concurrency", "1", "--max-attempts", "3", "--export")
    assert result.exit_code == 3, result.output
    assert "could not read +1555•••0001: HTTP 500" in result.output
    assert opted_out(project) == {B: "STOP"}
    assert lines(project)[-1].startswith(B)


def test_optouts_bad_key_stops_with_exit_3(project, make_emulator):
    emu = make_emulator(EmulatorConfig(api_key="the-right-one"))
    sent(project / "st", [A], at=time.time() - 5)
    emu.reply(A, "STOP")
    before = lines(project)
    result = optouts_cmd(project, emu, "--export", key=SECRET)
    assert result.exit_code == 3
    assert "401" in result.output and SECRET not in result.output
    assert lines(project) == before and events_in(project) == []


def test_optouts_needs_the_key(project, make_emulator):
    emu = make_emulator()
    sent(project / "st", [A])
    result = optouts_cmd(project, emu, key="")
    assert result.exit_code == 1
    assert "BLOOIO_API_KEY" in result.output and not isinstance(result.exception, Exception)


def test_optouts_export_needs_a_suppress_file(project, make_emulator):
    emu = make_emulator()
    sent(project / "st", [A], at=time.time() - 5)
    emu.reply(A, "STOP")
    path = project / "c.yaml"
    path.write_text(CAMPAIGN.replace("suppress:\n  - lists/optouts.txt\n  - lists/other.txt\n", ""))
    result = optouts_cmd(project, emu, "--export")
    assert result.exit_code == 1
    assert "no `suppress` file" in result.output and "suppress:" in result.output
    assert not isinstance(result.exception, Exception)
    assert emu.stats()["requests"] == 0 and events_in(project) == []
    # Without --export the campaign needs no suppression file: the ledger records.
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0, result.output
    assert opted_out(project) == {A: "STOP"}


def test_optouts_without_a_journal_has_nothing_to_do(project, make_emulator):
    emu = make_emulator()
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0
    assert "no journal" in result.output and "recorded" not in result.output
    assert emu.stats()["requests"] == 0


def test_optouts_without_a_journal_creates_no_state(project, make_emulator):
    emu = make_emulator()
    assert optouts_cmd(project, emu).exit_code == 0
    assert not (project / "st").exists()


def test_optouts_dry_run_writes_nothing(project, make_emulator):
    emu = make_emulator()
    sent(project / "st", [A], at=time.time() - 5)
    emu.reply(A, "STOP")
    before = lines(project)
    result = optouts_cmd(project, emu, "--dry-run", "--export")
    assert result.exit_code == 0, result.output
    assert "would record 1 new opt-out " in result.output
    assert "would export 1 opt-out " in result.output
    assert lines(project) == before and events_in(project) == []
    # Nor are the ledger's contacts synced from the journal.
    with Ledger(ledger_path(project / "st")) as ledger:
        assert ledger.contacts() == {}


def test_optouts_marked_rows_are_not_messaged_chats(project, make_emulator):
    emu = make_emulator()
    with Journal(journal_path(project / "st", "optout-test")) as j:
        j.apply(
            [
                Mark(
                    "k",
                    A,
                    "hello",
                    1,
                    0,
                    0,
                    1,
                    status="failed",
                    error_code="previous_step_failed",
                    error_message="x",
                    content_hash="h",
                    run_id=None,
                    now=time.time() - 5,
                )
            ]
        )
    emu.reply(A, "STOP")
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0 and "checked 0 chats" in result.output
    assert events_in(project) == []


def test_optouts_after_a_real_send_then_send_skips_them(project, make_emulator):
    """The whole loop: send, a recipient replies STOP, optouts, the next plan leaves it out."""
    emu = make_emulator()
    env = emu.env()
    campaign = str(project / "c.yaml")
    state = str(project / "st")
    first = CliRunner().invoke(main, ["send", campaign, "--yes", "--state", state], env=env)
    assert first.exit_code == 0, first.output
    emu.reply(B, "Stop")
    result = CliRunner().invoke(main, ["optouts", campaign, "--state", state], env=env)
    assert result.exit_code == 0, result.output
    assert opted_out(project) == {B: "STOP"}
    plan = CliRunner().invoke(main, ["plan", campaign, "--format", "json", "--state", state])
    doc = json.loads(plan.stdout)
    assert doc["suppressed"] == 1 and doc["consent"] == {"opted_out": 1, "held": 0}
    # Another campaign of the same state does not message B either.
    (project / "c2.yaml").write_text(
        CAMPAIGN.replace("id: optout-test", "id: optout-two"), encoding="utf-8"
    )
    sends = emu.stats()["send_requests"]
    second = CliRunner().invoke(
        main, ["send", str(project / "c2.yaml"), "--yes", "--state", state], env=env
    )
    assert second.exit_code == 0, second.output
    assert emu.stats()["send_requests"] == sends + 3  # A, the group, Eve: not B
    assert [m["chat"] for m in emu.messages()].count(B) == 1  # the first campaign's only


def test_optouts_group_without_a_group_id_in_the_journal(project, make_emulator):
    emu = make_emulator()
    group = emu.create_group([D, C])
    sent(project / "st", [f"{C},{D}"], at=time.time() - 5)  # e.g. the outcome was never stored
    emu.reply(group, "stop", sender=C)
    result = optouts_cmd(project, emu)
    assert result.exit_code == 0, result.output
    assert opted_out(project) == {C: "STOP"}


@pytest.mark.parametrize("since", ["yesterday", "2026-11-01T00:00:00", "2 weeks"])
def test_optouts_bad_since_is_a_clear_error(project, make_emulator, since):
    emu = make_emulator()
    sent(project / "st", [A])
    result = optouts_cmd(project, emu, "--since", since)
    assert result.exit_code == 1
    assert (
        "--since" in result.output
        and "7d" in result.output
        and not isinstance(result.exception, Exception)
    )
    assert emu.stats()["requests"] == 0
