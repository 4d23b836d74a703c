"""Issue 15 item 2, continued: "0 replied" and "replies never read" are told apart.

`track` records each reply pass in the journal (schema 5, ``reply_passes``), and the report
(schema 5) says when replies were last read and how complete that pass was, or that they were
never read, in which case no reply count or rate is shown as a zero. End to end: `campaign`
commands in process (click's CliRunner, the ``campaign_cli`` fixture) against the emulator."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import httpx

from runner.emulator import EmulatorConfig
from runner.run.track import ReplyOptions, Tracker, TrackOptions
from runner.store import journal as journal_module
from runner.store.journal import SCHEMA_VERSION, Journal

pytest_plugins = ["emulator_fixtures"]

KEY = "test-key"
PHONES = ["+15554200001", "+15554200002", "+15554200003"]


def _campaign(tmp_path: Path, campaign_id: str) -> Path:
    (tmp_path / "people.csv").write_text("phone\n" + "\n".join(PHONES) + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        f"version: 1\nid: {campaign_id}\nrecipients: {{file: people.csv, to: phone}}\n"
        "steps:\n  - id: hello\n    text: Hi there, 20% off today\n"
    )
    return path


def _emulator(make_emulator):
    # Every message is delivered at once and answered 10 s later (emulator clock).
    return make_emulator(
        EmulatorConfig(
            api_key=KEY,
            seed=5,
            sent_after_ms=0,
            delivered_after_ms=0,
            delivery_jitter_ms=0,
            reply_rate=1.0,
            reply_text="Yes please",
            reply_after_s=10,
        )
    )


class Cli:
    """`campaign` against one emulator and one state folder."""

    def __init__(self, campaign_cli, emu, tmp_path: Path) -> None:
        self.run_cli, self.env = campaign_cli, emu.env()
        self.state = str(tmp_path / "st")

    def __call__(self, *args: str) -> object:
        return self.run_cli(*args, "--state", self.state, env=self.env)

    def report(self, campaign: Path, fmt: str) -> str:
        r = self("report", str(campaign), "--format", fmt)
        assert r.returncode == 0, r.stderr
        return r.stdout


FAST = ("--rate", "unlimited", "--no-progress")
TRACK = (*FAST, "--first-poll", "0", "--poll-cap", "0.05", "--timeout", "20")


def _iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _sent(make_emulator, tmp_path: Path, campaign_cli, campaign_id: str) -> tuple:
    """An emulator, a campaign of three chats sent to it, the CLI on both; a minute later
    (emulator clock), so every message is delivered and answered."""
    emu = _emulator(make_emulator)
    campaign = _campaign(tmp_path, campaign_id)
    cli = Cli(campaign_cli, emu, tmp_path)
    assert cli("send", str(campaign), "--yes", *FAST).returncode == 0
    emu.advance(60)
    return emu, campaign, cli


def test_send_track_without_reading_replies_reports_them_never_read(
    make_emulator, tmp_path, campaign_cli
):
    emu = _emulator(make_emulator)
    campaign = _campaign(tmp_path, "never-read")
    cli = Cli(campaign_cli, emu, tmp_path)
    # `send --track` polls delivery only: the messages are delivered, and answered (the
    # emulator's replies are due), but nobody reads the answers.
    sent = cli("send", str(campaign), "--yes", "--track", *FAST)
    assert sent.returncode == 0, sent.stderr
    emu.advance(60)
    assert "Replies: never read for this campaign" in sent.stdout

    doc = json.loads(cli.report(campaign, "json"))
    assert doc["schema_version"] == 6
    rep = doc["replies"]
    assert (rep["read"], rep["last_read_at"], rep["passes"], rep["last_pass"]) == (
        False,
        None,
        0,
        None,
    )
    assert rep["chats_replied"] is None
    [row] = rep["steps"]["hello"]["variants"]
    assert row["delivered"] == len(PHONES)  # what is known stays
    assert row["replied"] is None and row["opted_out"] is None
    assert row["reply_rate"] is None and row["reply_rate_ci95"] is None
    assert row["median_time_to_reply_s"] is None and rep["steps"]["hello"]["comparisons"] == []

    text = cli.report(campaign, "text")
    assert (
        f"Replies: never read for this campaign: no reply counts yet; run campaign track "
        f"{campaign} to read them"
    ) in text
    assert "hello: 3 delivered, replies not read" in text
    assert "0 replied" not in text and "0.0%" not in text
    md = cli.report(campaign, "markdown")
    assert (
        "Replies never read for this campaign" in md
        and "| `hello` | (no variant) | 3 | not read |" in md
    )
    page = cli.report(campaign, "html")
    assert "Replies never read for this campaign" in page and "not read" in page
    assert "Replies to <code>hello</code>" not in page  # no rates drawn as zeros

    # `track --no-replies` reads none either: still never read.
    skipped = cli("track", str(campaign), *TRACK, "--no-replies")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(cli.report(campaign, "json"))["replies"]["read"] is False
    with Journal(Path(cli.state) / "never-read.sqlite") as j:
        assert j.reply_passes() == [] and list(j.replies()) == []


def test_after_track_the_report_says_when_replies_were_last_read(
    make_emulator, tmp_path, campaign_cli
):
    emu, campaign, cli = _sent(make_emulator, tmp_path, campaign_cli, "read-once")
    before = time.time()
    tracked = cli("track", str(campaign), *TRACK)
    after = time.time()
    assert tracked.returncode == 0, tracked.stderr

    with Journal(Path(cli.state) / "read-once.sqlite") as j:
        [p] = j.reply_passes()
    assert before <= p.started_at <= p.ended_at <= after
    assert (p.chats, p.chats_read, p.chats_failed, p.replies_new, p.stop_reason) == (
        3,
        3,
        0,
        3,
        None,
    )
    assert p.requests == 3 and p.complete

    rep = json.loads(cli.report(campaign, "json"))["replies"]
    assert rep["read"] is True and rep["passes"] == 1 and rep["last_read_pass"] == 1
    assert before - 1 <= _iso_seconds(rep["last_read_at"]) <= after
    last = rep["last_pass"]
    assert (
        last["chats"],
        last["chats_read"],
        last["chats_failed"],
        last["chats_not_read"],
        last["replies_new"],
        last["finished"],
        last["complete"],
    ) == (3, 3, 0, 0, 3, True, True)
    [row] = rep["steps"]["hello"]["variants"]
    assert (row["delivered"], row["replied"], row["reply_rate"]) == (3, 3, 1.0)
    assert row["sent_after_last_read"] == 0

    text = cli.report(campaign, "text")
    assert f"last read {rep['last_read_at']}, complete: all 3 chats read" in text
    assert "hello: 3 delivered, 3 replied (100.0%)" in text
    md = cli.report(campaign, "markdown")
    assert f"Replies last read {rep['last_read_at']}, complete: all 3 chats read." in md
    page = cli.report(campaign, "html")
    assert f"Replies last read {rep['last_read_at']}, complete: all 3 chats read." in page
    assert "pill ok'>replies" in page


def test_a_pass_where_some_chats_could_not_be_read_is_reported_partial(
    make_emulator, tmp_path, campaign_cli
):
    emu, campaign, cli = _sent(make_emulator, tmp_path, campaign_cli, "partial")
    # Delivery first (no reply pass), so the next request the emulator answers is a reply read.
    assert cli("track", str(campaign), *TRACK, "--no-replies").returncode == 0
    emu.configure(fault_script=["503"])
    partial = cli("track", str(campaign), *TRACK, "--concurrency", "1", "--max-attempts", "1")
    assert partial.returncode == 3
    assert "1 chat(s) could not be read" in partial.stdout

    rep = json.loads(cli.report(campaign, "json"))["replies"]
    last = rep["last_pass"]
    assert rep["read"] is True and last["finished"] is True and last["complete"] is False
    assert (last["chats"], last["chats_read"], last["chats_failed"]) == (3, 2, 1)
    [row] = rep["steps"]["hello"]["variants"]
    assert row["replied"] == 2  # what was read counts; the failed chat waits for the next pass
    text = cli.report(campaign, "text")
    assert (
        "partial: 2 of 3 chats read, 1 could not be read; the counts may miss some "
        f"replies: run campaign track {campaign} again to read the rest"
    ) in text
    page = cli.report(campaign, "html")
    assert "partial: 2 of 3 chats read" in page and "pill warn'>replies" in page

    # The next pass reads the chat that failed; the report is complete again.
    again = cli("track", str(campaign), *TRACK)
    assert again.returncode == 0, again.stderr
    rep = json.loads(cli.report(campaign, "json"))["replies"]
    assert rep["passes"] == 2 and rep["last_pass"]["complete"] is True
    assert rep["steps"]["hello"]["variants"][0]["replied"] == 3


class _CtrlCOnFirstRead(httpx.AsyncBaseTransport):
    """Passes requests to the emulator; the first reply read is met with what Ctrl-C does
    (runner.run.send.install_signal_handlers: ``request_stop``), while it is in flight."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.tracker: Tracker | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "direction=inbound" in str(request.url) and self.tracker is not None:
            self.tracker.request_stop()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_pass_stopped_by_ctrl_c_is_recorded_and_reported_as_stopped(
    make_emulator, tmp_path, campaign_cli
):
    emu, campaign, cli = _sent(make_emulator, tmp_path, campaign_cli, "stopped")
    transport = _CtrlCOnFirstRead()
    with Journal(Path(cli.state) / "stopped.sqlite", lock="track") as j:
        tracker = Tracker(
            j,
            api_key=KEY,
            revision=1,
            transport=transport,
            options=TrackOptions(
                base_url=emu.base_url,
                concurrency=1,
                rate_per_second=None,
                first_poll=0.0,
                replies=ReplyOptions(),
            ),
        )
        transport.tracker = tracker
        result = asyncio.run(tracker.run())
        [p] = j.reply_passes()
    assert result.stop_reason == "interrupted" and result.exit_code == 3
    # The chat in flight was read and stored; the other two were never started.
    assert (p.chats, p.chats_read, p.chats_failed, p.stop_reason) == (3, 1, 0, "interrupted")
    assert p.ended_at is not None and not p.complete

    rep = json.loads(cli.report(campaign, "json"))["replies"]
    assert rep["read"] is True and rep["last_pass"]["chats_not_read"] == 2
    assert rep["last_pass"]["stop_reason"] == "interrupted"
    text = cli.report(campaign, "text")
    assert (
        "stopped by Ctrl-C: 1 of 3 chats read; the counts may miss some replies: run "
        f"campaign track {campaign} again to read the rest"
    ) in text


def _as_schema_4(path: Path) -> None:
    """What a runner of journal schema 4 leaves: the same tables without ``reply_passes``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("BEGIN; DROP TABLE reply_passes; PRAGMA user_version = 4; COMMIT;")
    db.close()


def test_a_schema_4_journal_is_upgraded_in_place_and_its_replies_still_count(
    make_emulator, tmp_path, campaign_cli
):
    emu, campaign, cli = _sent(make_emulator, tmp_path, campaign_cli, "upgraded")
    assert cli("track", str(campaign), *TRACK).returncode == 0
    path = Path(cli.state) / "upgraded.sqlite"
    _as_schema_4(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    assert "reply_passes" not in {
        r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    db.close()

    # The report opens it: migrated in place, its replies kept; an older runner read them but
    # recorded no pass, so when is known (the replies' read time) and how complete is not.
    rep = json.loads(cli.report(campaign, "json"))["replies"]
    with Journal(path) as j:
        assert j.schema_version == SCHEMA_VERSION == 5 and "reply_passes" in j.tables()
        assert j.reply_passes() == [] and len(list(j.replies())) == 3
        read_at = max(r.now for r in j.replies())
    assert rep["read"] is True and rep["last_pass"] is None and rep["passes"] == 0
    assert abs(_iso_seconds(rep["last_read_at"]) - read_at) < 1
    assert rep["steps"]["hello"]["variants"][0]["replied"] == 3
    assert "by an older runner that did not record how complete" in cli.report(campaign, "text")

    # A new pass after the upgrade is recorded like any other.
    assert cli("track", str(campaign), *TRACK).returncode == 0
    rep = json.loads(cli.report(campaign, "json"))["replies"]
    assert rep["passes"] == 1 and rep["last_pass"]["complete"] is True


def test_migration_5_from_the_scripts_alone(tmp_path):
    """Journals of every older version reach 5 one step at a time, rows intact."""
    for start in (1, 2, 3, 4):
        path = tmp_path / f"v{start}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        for v in range(1, start + 1):
            db.executescript(
                f"BEGIN;{journal_module._MIGRATIONS[v]}PRAGMA user_version = {v};COMMIT;"
            )
        db.execute(
            "INSERT INTO requests (key, chat, step, status) VALUES "
            "('k', '+15550000001', 'hello', 'accepted')"
        )
        db.close()
        with Journal(path) as j:
            assert j.schema_version == 5 and j.reply_passes() == []
            assert [e.key for e in j.entries()] == ["k"]
            pid = j.start_reply_pass(1, 100.0)
            j.apply(
                [
                    journal_module.ReplyPassEnd(
                        pid,
                        chats_read=1,
                        chats_failed=0,
                        requests=1,
                        replies_new=0,
                        stop_reason=None,
                        now=101.0,
                    )
                ]
            )
            [p] = j.reply_passes()
            assert (p.started_at, p.ended_at, p.complete) == (100.0, 101.0, True)


def test_messages_sent_after_the_last_reading_are_said_unread(
    make_emulator, tmp_path, campaign_cli
):
    emu, campaign, cli = _sent(make_emulator, tmp_path, campaign_cli, "later")
    assert cli("track", str(campaign), *TRACK).returncode == 0
    # A second step sent after the reading: its replies are not read yet.
    campaign.write_text(campaign.read_text() + "  - id: again\n    text: Last day today\n")
    assert cli("send", str(campaign), "--yes", *FAST).returncode == 0
    assert cli("track", str(campaign), *TRACK, "--no-replies").returncode == 0
    rep = json.loads(cli.report(campaign, "json"))["replies"]
    [hello] = rep["steps"]["hello"]["variants"]
    [again] = rep["steps"]["again"]["variants"]
    assert hello["sent_after_last_read"] == 0 and again["sent_after_last_read"] == 3
    assert (again["delivered"], again["replied"]) == (3, 0)
    text = cli.report(campaign, "text")
    assert "again: 3 delivered, 0 replied (0.0%)" in text
    assert "3 delivered after the last reading (replies not read yet)" in text
