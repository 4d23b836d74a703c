"""Issue 27: Blooio's signed webhooks into the state (`campaign listen`).

Signatures checked before parsing (forged, stale, future, unsigned: 401), bodies read safely
(not JSON, too deep, v4 envelopes, unknown events), and end to end against a listener on
loopback: a delivered status lands in the journal (and track then polls nothing for it), a STOP
lands in the ledger, a replay changes nothing, and a send in progress stops messaging a chat
whose STOP arrives during it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import runner
from runner.consent.standing import Standing
from runner.emulator import EmulatorConfig
from runner.http.server import Server
from runner.run.optouts import stop_words
from runner.store.journal import Journal
from runner.store.ledger import existing_ledger
from runner.store.paths import journal_path
from runner.webhooks.events import EventType, Refusal, WebhookEvent, parse
from runner.webhooks.listener import DEFAULT_PATH, Listener
from runner.webhooks.sink import WebhookSink
from runner.webhooks.verify import Check, header_value, verify

pytest_plugins = ["emulator_fixtures"]

SECRET, OLD = "whsec_current_NEVER_PRINTED", "whsec_old"
NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("header", "secrets", "now", "check"),
    [
        (header_value(SECRET, NOW, b"{}"), [SECRET], NOW, Check.OK),
        (header_value(OLD, NOW, b"{}"), [SECRET, OLD], NOW, Check.OK),  # a rotation: both work
        (header_value(SECRET, NOW, b"{}"), [OLD], NOW, Check.MISMATCH),
        (header_value(SECRET, NOW, b"{ }"), [SECRET], NOW, Check.MISMATCH),  # the body changed
        (header_value(SECRET, NOW - 301, b"{}"), [SECRET], NOW, Check.STALE),
        (header_value(SECRET, NOW + 301, b"{}"), [SECRET], NOW, Check.FUTURE),
        (None, [SECRET], NOW, Check.MISSING),
        ("v1=abc", [SECRET], NOW, Check.MALFORMED),
        (f"t={NOW}", [SECRET], NOW, Check.MALFORMED),
        ("t=1e9,v1=ab", [SECRET], NOW, Check.MALFORMED),
    ],
)
def test_signatures(header, secrets, now, check):
    assert verify(header, b"{}", secrets, now) is check


def _event(kind: str, mid: str, chat: str, **more) -> bytes:
    return json.dumps(
        {
            "event": kind,
            "message_id": mid,
            "external_id": chat,
            "protocol": "imessage",
            "timestamp": NOW * 1000,
            **more,
        }
    ).encode()


def test_bodies():
    e = parse(_event("message.received", "in1", " +15553000001 ", text="STOP", received_at=123))
    assert e == WebhookEvent(EventType.RECEIVED, "in1", "+15553000001", "imessage", 123, "STOP")
    assert isinstance(parse(b"not json"), Refusal) and parse(b"not json").status == 400
    assert parse(b"[" * 100_000 + b"]" * 100_000).status == 400  # no RecursionError
    assert parse(b"[1]").status == 400
    v4 = parse(
        json.dumps(
            {
                "id": "e",
                "type": "message.received",
                "created_at": 1,
                "organization_id": "o",
                "data": {},
            }
        ).encode()
    )
    assert v4.status == 202 and "v4" in v4.reason
    assert parse(_event("message.exploded", "m", "+15553000001")).status == 202
    assert parse(json.dumps({"event": "message.sent"}).encode()).status == 400


class Running:
    """A listener on loopback in its own thread and loop."""

    def __init__(self, state: Path, clock=time.time) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def up() -> int:  # in the loop's thread: SQLite connections stay in theirs
            self.sink = WebhookSink(state, stop_words())
            self.listener = Listener(self.sink, [SECRET], clock=clock)
            self.server = Server(self.listener, self.listener.max_body)
            return await self.server.start(0)

        self.port = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}{DEFAULT_PATH}"

    def post(
        self,
        body: bytes,
        *,
        t: int | None = None,
        secret: str = SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sig = header_value(secret, int(time.time()) if t is None else t, body)
        return httpx.post(
            self.url,
            content=body,
            timeout=10,
            headers={"X-Blooio-Signature": sig, **(headers or {})},
        )

    def stop(self) -> None:
        async def down() -> None:
            await self.listener.close()
            await self.server.close()
            self.sink.close()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Running]:
    running = Running(tmp_path / "st")
    try:
        yield running
    finally:
        running.stop()


def _sent(tmp_path: Path, emu, chats: list[str], cid: str = "hooks") -> Path:
    path = tmp_path / f"{cid}.yaml"
    path.write_text(
        f"version: 1\nid: {cid}\nrecipients:\n"
        + "".join(f'  - to: "{c}"\n' for c in chats)
        + "steps:\n  - id: hello\n    text: Hi\n"
    )
    runner.send(
        path,
        state_dir=tmp_path / "st",
        rate="unlimited",
        base_url=emu.base_url,
        api_key=emu.api_key,
    )
    return path


def test_statuses_and_replies_land_in_the_state_once(tmp_path, make_emulator, listening):
    emu = make_emulator(EmulatorConfig(sent_after_ms=0, delivered_after_ms=3_600_000))
    chats = ["+15553100001", "+15553100002"]
    campaign = _sent(tmp_path, emu, chats)
    ids = {m["chat"]: m["ids"][0] for m in emu.messages()}
    delivered = _event("message.delivered", ids[chats[0]], chats[0])
    assert listening.post(delivered).status_code == 200
    assert listening.post(delivered, headers={"X-Blooio-Replay": "true"}).status_code == 200
    stop = _event("message.received", "in_1", chats[1], text="S\u200bTOP", received_at=NOW * 1000)
    assert listening.post(stop).status_code == 200
    assert listening.post(stop).status_code == 200  # the same event twice
    # Refused: nothing stored.
    forged = _event("message.received", "in_2", chats[0], text="STOP")
    assert listening.post(forged, secret="guess").status_code == 401
    assert listening.post(forged, t=int(time.time()) - 3600).status_code == 401
    assert httpx.post(listening.url, content=forged).status_code == 401
    assert listening.post(b"x" * (1024 * 1024 + 1)).status_code == 413
    assert listening.post(b"{not json").status_code == 400
    unknown_chat = _event("message.received", "in_3", "+15553199999", text="stop")
    assert listening.post(unknown_chat).status_code == 200  # an opt-out from anyone counts

    with existing_ledger(tmp_path / "st") as ledger:
        assert ledger is not None
        assert ledger.standings() == {
            chats[1]: Standing.OPTED_OUT,
            "+15553199999": Standing.OPTED_OUT,
        }
        assert len(list(ledger.events())) == 2
        [row] = ledger.standing_rows(chats=[chats[1]])
        assert (row.event.campaign, row.event.step) == ("hooks", "hello")
    with Journal(journal_path(tmp_path / "st", "hooks")) as j:
        d = {x.message_id: x for x in j.deliveries()}
        assert d[ids[chats[0]]].status == "delivered" and d[ids[chats[0]]].final
        assert not d[ids[chats[1]]].final
    # track asks only about the message no webhook finished (and says how many it saved).
    before = emu.stats()["requests"]
    tracked = runner.track(
        campaign,
        state_dir=tmp_path / "st",
        base_url=emu.base_url,
        api_key=emu.api_key,
        replies=False,
        timeout=0.5,
        first_poll=0.0,
    )
    assert tracked.stats.polls_saved == 1
    assert emu.stats()["requests"] - before == tracked.stats.polls >= 1
    with Journal(journal_path(tmp_path / "st", "hooks")) as j:
        assert j.final_without_polls(1) == 1
    assert SECRET not in str(listening.listener.stats)


def test_a_stop_during_a_send_stops_that_chats_messages(tmp_path, make_emulator, listening):
    """The listener writes the STOP; the running send's gate sees the ledger change within
    its 50 ms re-check and messages that chat no more."""
    emu = make_emulator(EmulatorConfig(latency_ms=15))
    chats = [f"+1555320{i:04d}" for i in range(120)]
    late = chats[-1]
    path = tmp_path / "slow.yaml"
    path.write_text(
        "version: 1\nid: slow\nrecipients:\n"
        + "".join(f'  - to: "{c}"\n' for c in chats)
        + "steps:\n  - id: hello\n    text: Hi\n"
    )

    def stop_soon() -> None:
        time.sleep(0.2)
        body = _event("message.received", "in_late", late, text="STOP", received_at=NOW * 1000)
        assert listening.post(body).status_code == 200

    poster = threading.Thread(target=stop_soon)
    poster.start()
    started = time.monotonic()
    runner.send(
        path,
        state_dir=tmp_path / "st",
        rate="unlimited",
        concurrency=1,
        base_url=emu.base_url,
        api_key=emu.api_key,
    )
    poster.join()
    assert time.monotonic() - started > 1.0  # the send was still running when the STOP came
    sent = {m["chat"] for m in emu.messages()}
    assert late not in sent and len(sent) == len(chats) - 1


def _start_listen(state: Path, port_file: Path) -> subprocess.Popen:
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "listen",
            "--state",
            str(state),
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        env={**os.environ, "BLOOIO_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for _ in range(400):
        if port_file.exists() and port_file.read_text().strip():
            return proc
        time.sleep(0.025)
    proc.kill()
    raise AssertionError("campaign listen did not start")


def test_a_listener_killed_mid_stream_loses_nothing_it_acknowledged(tmp_path: Path):
    """SIGKILL while deliveries are in flight; the sender retries what got no 200 (as Blooio
    does): afterwards every event is in the ledger exactly once."""
    state, port_file = tmp_path / "st", tmp_path / "port"
    chats = [f"+1555330{i:04d}" for i in range(120)]
    bodies = {
        c: _event("message.received", f"in_{c}", c, text="STOP", received_at=NOW * 1000)
        for c in chats
    }
    acked: set[str] = set()
    lock = threading.Lock()

    def post_all(port: int, todo: list[str]) -> None:
        url = f"http://127.0.0.1:{port}{DEFAULT_PATH}"

        def worker(mine: list[str]) -> None:
            with httpx.Client(timeout=5) as client:
                for c in mine:
                    sig = header_value(SECRET, int(time.time()), bodies[c])
                    try:
                        r = client.post(url, content=bodies[c], headers={"X-Blooio-Signature": sig})
                    except httpx.HTTPError:
                        return  # the listener died: the rest waits for the retry
                    if r.status_code == 200:
                        with lock:
                            acked.add(c)

        threads = [threading.Thread(target=worker, args=(todo[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    proc = _start_listen(state, port_file)
    port = int(port_file.read_text())
    feeder = threading.Thread(target=post_all, args=(port, chats))
    feeder.start()
    for _ in range(400):
        if len(acked) >= 30:
            break
        time.sleep(0.005)
    proc.kill()  # SIGKILL, deliveries in flight
    proc.wait(10)
    feeder.join(30)
    killed_at = len(acked)
    assert 30 <= killed_at < len(chats)
    with existing_ledger(state) as ledger:
        assert ledger is not None
        stored = set(ledger.standings())
    assert acked <= stored  # acknowledged means written
    proc = _start_listen(state, port_file)
    try:
        post_all(int(port_file.read_text()), [c for c in chats if c not in acked])  # retries
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)
    assert SECRET not in out[0].decode() + out[1].decode()
    with existing_ledger(state) as ledger:
        assert ledger is not None
        assert set(ledger.standings()) == set(chats)
        assert len(list(ledger.events())) == len(chats)


def test_the_emulator_delivers_signed_webhooks_made_with_campaign_webhook(
    tmp_path: Path, make_emulator, campaign_cli, listening
):
    """The rehearsal end to end: `campaign webhook create` subscribes the listener on the
    emulator (the secret lands in a 0600 file, nowhere else); the emulator then posts the
    lifecycle and a STOP, signed, some twice; the listener stores them; track polls nothing."""
    emu = make_emulator(
        EmulatorConfig(
            sent_after_ms=0, delivered_after_ms=0, delivery_jitter_ms=0, webhook_duplicate_rate=0.5
        )
    )
    secret_file = tmp_path / "secrets" / "webhook.secret"
    made = campaign_cli(
        "webhook", "create", listening.url, "--secret-file", str(secret_file), env=emu.env()
    )
    assert made.returncode == 0, made.stderr
    secret = secret_file.read_text().strip()
    assert secret.startswith("whsec_") and secret not in made.stdout + made.stderr
    assert secret_file.stat().st_mode & 0o777 == 0o600
    listing = campaign_cli("webhook", "list", env=emu.env())
    assert f"wh_0001  all  {listening.url}" in listing.stdout
    listening.listener.secrets = [secret]  # as `BLOOIO_WEBHOOK_SECRET=$(cat file)` would
    chats = ["+15553400001", "+15553400002"]
    campaign = _sent(tmp_path, emu, chats)
    emu.reply(chats[1], "stop please")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with Journal(journal_path(tmp_path / "st", "hooks")) as j:
            if j.final_without_polls(1) == 2 and listening.sink.stats.replies:
                break
        time.sleep(0.05)
    with existing_ledger(tmp_path / "st") as ledger:
        assert ledger is not None and ledger.standings() == {chats[1]: Standing.OPTED_OUT}
    before = emu.stats()["requests"]
    tracked = runner.track(
        campaign,
        state_dir=tmp_path / "st",
        base_url=emu.base_url,
        api_key=emu.api_key,
        replies=False,
        timeout=5,
    )
    assert tracked.stats.polls == 0 and tracked.stats.polls_saved == 2
    assert emu.stats()["requests"] == before
    assert listening.listener.stats.refused == 0
    gone = campaign_cli("webhook", "delete", "wh_0001", env=emu.env())
    assert gone.returncode == 0 and "deleted" in gone.stdout
    missing = campaign_cli("webhook", "delete", "wh_0001", env=emu.env())
    assert missing.returncode == 1 and "no such webhook" in missing.stderr
    outside = campaign_cli(
        "webhook",
        "create",
        "https://example.com/hook",
        "--secret-file",
        str(tmp_path / "x"),
        env=emu.env(),
    )
    assert outside.returncode == 1 and not (tmp_path / "x").exists()
