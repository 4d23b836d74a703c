"""Network failures say what failed (host, phase, reason) where a person reads them: send's
summary, the journal's error column, track's summary, and the note that a proxy is in use."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest

from runner.cli.progress import network_summary, track_summary
from runner.http.client import ApiClient
from runner.run.track import TrackResult, TrackStats

KEY = "bl_net_SECRET_0a1b2c3d4e5f"
NO_PROXIES = {
    name: None
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "RUNNER_HTTP_STACK",
    )
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_campaign(folder: Path, n: int = 2) -> Path:
    rows = "\n".join(f"+1555400{i:04d}" for i in range(n))
    (folder / "people.csv").write_text(f"phone\n{rows}\n")
    path = folder / "campaign.yaml"
    path.write_text("""\
version: 1
id: neterr
sender: {from_number: "+15551234567"}
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi {{ recipient }}"
""")
    return path


def send(campaign_cli, tmp_path: Path, base_url: str, *args: str, **env: str | None):
    campaign = write_campaign(tmp_path)
    return campaign_cli(
        "send",
        str(campaign),
        "--yes",
        "--state",
        str(tmp_path / "state"),
        "--no-progress",
        "--base-url",
        base_url,
        "--max-attempts",
        "2",
        "--backoff-base",
        "0.01",
        "--backoff-cap",
        "0.02",
        *args,
        env={**NO_PROXIES, "BLOOIO_API_KEY": KEY, **env},
    )


@pytest.mark.parametrize("stack", ["fast", "httpx"])
def test_send_to_a_closed_port_names_host_phase_and_reason(campaign_cli, tmp_path, stack):
    port = closed_port()
    result = send(campaign_cli, tmp_path, f"http://127.0.0.1:{port}/v2/api", "--http-stack", stack)
    assert result.returncode == 3  # stopped, resumable
    out = result.stdout + result.stderr
    expected = f"connecting to 127.0.0.1:{port} failed: Connection refused"
    # The report's pending line and this run's tally both give the reason, not only a count.
    assert f"network_error 2 (most: {expected})" in out
    assert f"this run: network_error 4 tries (most: {expected})" in out
    assert KEY not in out
    db = sqlite3.connect(tmp_path / "state" / "neterr.sqlite")
    try:
        rows = db.execute("SELECT status, error_code, error_message FROM requests").fetchall()
    finally:
        db.close()
    assert rows == [("pending", "network_error", expected)] * 2


def test_a_proxy_in_use_is_named_in_the_send_header(campaign_cli, tmp_path):
    proxy, target = closed_port(), closed_port()
    base = f"http://127.0.0.1:{target}/v2/api"
    result = send(
        campaign_cli,
        tmp_path,
        base,
        "--max-attempts",
        "1",
        HTTP_PROXY=f"http://user:pw-SECRET@127.0.0.1:{proxy}",
    )
    assert f"to {base}  via proxy 127.0.0.1:{proxy}  rate" in result.stderr
    assert (
        f"via proxy 127.0.0.1:{proxy}: reaching 127.0.0.1:{target} through the proxy failed"
        in result.stdout
    )
    assert "pw-SECRET" not in result.stdout + result.stderr

    # NO_PROXY covering the emulator's address: direct, and no note.
    (tmp_path / "direct").mkdir()
    direct = send(
        campaign_cli,
        tmp_path / "direct",
        base,
        "--max-attempts",
        "1",
        HTTP_PROXY=f"http://127.0.0.1:{proxy}",
        NO_PROXY="127.0.0.1,localhost",
    )
    assert "via proxy" not in direct.stdout + direct.stderr
    assert f"connecting to 127.0.0.1:{target} failed" in direct.stdout


def test_network_summary_gives_the_commonest_reason():
    assert network_summary(Counter()) is None
    errors = Counter({"DNS lookup of a:443 failed: x": 1, "connecting to b:443 failed: y": 3})
    assert network_summary(errors) == "network_error 4 tries (most: connecting to b:443 failed: y)"


def test_track_summary_names_network_failures():
    stats = TrackStats(
        total=3,
        open=3,
        polls=5,
        poll_errors=5,
        network_errors=Counter({"connecting to h:443 failed: Connection refused": 5}),
    )
    line = track_summary(TrackResult(stats, None, 1.0))
    assert line.endswith(
        "; network_error 5 polls (most: connecting to h:443 failed: Connection refused)"
    )
    assert "network_error" not in track_summary(TrackResult(TrackStats(total=1), None, 1.0))


def test_the_clients_own_deadline_names_the_host():
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async def scenario():
        async with ApiClient(
            "http://127.0.0.1:9/v2/api",
            KEY,
            timeout=0.05,
            concurrency=1,
            transport=httpx.MockTransport(hang),
        ) as api:
            return await api.request("GET", "/chats")

    exchange = asyncio.run(scenario())
    assert exchange.status is None
    assert exchange.error == "no answer from 127.0.0.1:9 within 0.05 s"
