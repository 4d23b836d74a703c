"""Issue 16.11: no credential reaches a summary, journal, report or banner: userinfo in the base
URL is refused, an API error echoing the Authorization header is redacted before it is cut
and stored, and the emulator prints a key only when it chose it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from runner.emulator import EmulatorConfig
from runner.emulator.runtime import shown_key
from runner.errors import CampaignError
from runner.http.client import MAX_ERROR_TEXT, ApiClient, base_url_from
from runner.planning.request import PlannedRequest
from runner.report.data import build_report, render
from runner.run.send import Executor, SendOptions
from runner.store.journal import FAILED, Journal

KEY = "sk_live_SECRET_credential_42"
PASSWORD = "hunter2pass"


@pytest.mark.parametrize(
    "url", [f"http://user:{PASSWORD}@127.0.0.1:9/v2/api", f"https://{PASSWORD}@api.example/v2/api"]
)
def test_userinfo_in_the_base_url_is_refused_without_echoing_it(url, monkeypatch):
    monkeypatch.delenv("BLOOIO_BASE_URL", raising=False)
    with pytest.raises(CampaignError) as err:
        base_url_from(url)
    assert PASSWORD not in str(err.value) and "user name or password" in str(err.value)
    monkeypatch.setenv("BLOOIO_BASE_URL", url)
    with pytest.raises(CampaignError) as err:
        base_url_from(None)
    assert PASSWORD not in str(err.value)


def test_send_refuses_a_base_url_with_a_password(campaign_cli, tmp_path):
    (tmp_path / "c.yaml").write_text(
        "version: 1\nid: c\nrecipients:\n  - to: '+15551230001'\nsteps:\n  - id: hello\n"
        "    text: hi\n",
        encoding="utf-8",
    )
    out = campaign_cli(
        "send",
        str(tmp_path / "c.yaml"),
        "--yes",
        "--state",
        str(tmp_path / "s"),
        env={"BLOOIO_API_KEY": KEY, "BLOOIO_BASE_URL": f"http://u:{PASSWORD}@127.0.0.1:9/v2/api"},
    )
    assert out.returncode == 1
    assert PASSWORD not in out.stdout + out.stderr and "user name or password" in out.stderr
    assert not (tmp_path / "s").exists()


def test_scrub_removes_the_key_and_any_bearer_token():
    api = ApiClient(
        "http://127.0.0.1:9",
        KEY,
        timeout=1,
        concurrency=1,
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
    )
    raw = json.dumps({"code": f"bad Bearer {KEY}", "message": "auth: bearer other_TOKEN_9, x"})
    clean = api.scrub(raw.encode()).decode()
    assert KEY not in clean and "other_TOKEN_9" not in clean
    assert "Bearer ***" in clean and "bearer ***" in clean
    assert api.redact(f"x {KEY} y") == "x *** y"


def echo_auth(request: httpx.Request) -> httpx.Response:
    # The key sits across the cut: a redaction after cutting would keep its first half.
    pad = "x" * (MAX_ERROR_TEXT - 10)
    auth = request.headers["authorization"]
    return httpx.Response(
        400, json={"code": f"invalid header {auth}", "message": f"{pad} you sent {auth}"}
    )


def test_an_error_echoing_the_authorization_header_never_reaches_journal_or_report(tmp_path):
    path = tmp_path / "c.sqlite"
    req = PlannedRequest(
        recipient="+15551230001",
        step="hello",
        key="c:1:hello:+15551230001:0",
        method="POST",
        path="/chats/%2B15551230001/messages",
        body={"text": "hi"},
        messages=1,
        reply_to_step=None,
        recipient_index=0,
        step_index=0,
    )
    with Journal(path) as journal:
        run_id = journal.start_run("c", 1, {}, {})
        ex = Executor(
            journal,
            api_key=KEY,
            run_id=run_id,
            options=SendOptions(base_url="http://api.test/v2/api", max_attempts=1),
            transport=httpx.MockTransport(echo_auth),
        )
        result = asyncio.run(ex.run([req], total=1))
        assert result.stats.failed == 1
        journal.finish_run(run_id, result.counts(), result.exit_code, result.stop_reason)
        (entry,) = list(journal.entries())
        assert entry.status == FAILED and "***" in (entry.error_code or "")
        report = render(build_report(journal), "json") + render(build_report(journal), "text")
    stored = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite-*"))
    for half in (KEY, KEY[:12], KEY[-12:]):
        assert half not in report
        assert half.encode() not in stored


def test_the_emulator_prints_only_a_key_it_chose():
    assert shown_key(EmulatorConfig()) == EmulatorConfig().api_key
    chosen = shown_key(EmulatorConfig(api_key=KEY))
    assert KEY not in chosen and "--api-key" in chosen
