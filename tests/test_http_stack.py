"""The escape hatch: `--http-stack httpx` / RUNNER_HTTP_STACK sends through stock httpx with
the same retries, journal and keys as the fast stack; httpx's own proxy and trust-store
handling from the environment; its failures worded like the fast stack's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from net_fixtures import Proxy, RawServer
from test_network_errors import NO_PROXIES

from runner.emulator import EmulatorConfig
from runner.errors import CampaignError
from runner.http.client import ApiClient
from runner.http.neterror import ConnectFailed
from runner.http.stacks import HttpxStack, Stack, stack_from
from runner.http.transport import FastTransport

pytest_plugins = ["emulator_fixtures"]

KEY = "bl_stack_SECRET_77aa88bb99cc"
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", *NO_PROXIES):
        monkeypatch.delenv(name, raising=False)


def test_stack_from_option_then_environment_then_fast():
    assert stack_from(None, {}) is Stack.FAST
    assert stack_from(None, {"RUNNER_HTTP_STACK": " HTTPX "}) is Stack.HTTPX
    assert stack_from("fast", {"RUNNER_HTTP_STACK": "httpx"}) is Stack.FAST  # the flag wins
    # The CLI spells the names itself (its --help imports no HTTP code): the same ones.
    assert sorted(Stack) == ["fast", "httpx"]
    with pytest.raises(CampaignError, match="--http-stack: unknown HTTP stack 'curl'"):
        stack_from("curl", {})
    with pytest.raises(CampaignError, match="RUNNER_HTTP_STACK: unknown HTTP stack 'aiohttp'"):
        stack_from(None, {"RUNNER_HTTP_STACK": "aiohttp"})


def test_the_client_builds_the_named_stack():
    async def scenario():
        fast = ApiClient("http://127.0.0.1:9", KEY, timeout=1, concurrency=2)
        slow = ApiClient("http://127.0.0.1:9", KEY, timeout=1, concurrency=2, stack="httpx")
        kinds = type(fast.transport), type(slow.transport)
        await fast.aclose()
        await slow.aclose()
        return kinds

    assert asyncio.run(scenario()) == (FastTransport, HttpxStack)


@pytest.mark.parametrize("command", ["send", "track", "reach", "optouts read"])
def test_every_api_command_documents_the_option(campaign_cli, command):
    result = campaign_cli(*command.split(), "--help")
    assert "--http-stack [fast|httpx]" in result.stdout
    assert "RUNNER_HTTP_STACK" in result.stdout


def test_an_invalid_value_is_a_clear_error(campaign_cli, tmp_path):
    campaign = write_campaign(tmp_path)
    flag = campaign_cli(
        "send", str(campaign), "--yes", "--http-stack", "curl", env={"BLOOIO_API_KEY": KEY}
    )
    env = campaign_cli(
        "send", str(campaign), "--yes", env={"BLOOIO_API_KEY": KEY, "RUNNER_HTTP_STACK": "curl"}
    )
    for result in (flag, env):
        assert result.returncode == 2
        assert "'curl' is not one of 'fast', 'httpx'" in result.stderr
    assert "RUNNER_HTTP_STACK" in env.stderr


def write_campaign(folder: Path, n: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"+1555500{i:04d}" for i in range(n))
    (folder / "people.csv").write_text(f"phone\n{rows}\n")
    path = folder / "campaign.yaml"
    path.write_text("""\
version: 1
id: stack
sender: {from_number: "+15551234567"}
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi {{ recipient }}"
  - id: nudge
    text: "Still there?"
    reply_to: {step: hello}
send: {concurrency: 4}
""")
    return path


def test_httpx_stack_sends_the_same_as_the_fast_one(
    campaign_cli, make_emulator, tmp_path, monkeypatch
):
    # Transient faults on both (503s, dropped connections, a commit answered by a 500), so the
    # retry loop and the idempotency keys are exercised on both stacks.
    config = dict(
        api_key=KEY,
        seed=3,
        share_imessage=1.0,
        share_sms=0.0,
        share_rcs=0.0,
        retry_after_s=0.01,
        p_503=0.1,
        p_drop=0.05,
        p_accept_then_500=0.1,
    )
    used = []
    real = HttpxStack.handle_async_request

    async def counting(self, request):
        used.append(request.url.path)
        return await real(self, request)

    monkeypatch.setattr(HttpxStack, "handle_async_request", counting)
    runs = {}
    for how, args, env in (
        ("fast", (), {}),
        ("flag", ("--http-stack", "httpx"), {}),
        ("env", (), {"RUNNER_HTTP_STACK": "httpx"}),
    ):
        emu = make_emulator(EmulatorConfig(**config))
        campaign = write_campaign(tmp_path / how)
        before = len(used)
        result = campaign_cli(
            "send",
            str(campaign),
            "--yes",
            "--state",
            str(tmp_path / how / "state"),
            "--no-progress",
            "--rate",
            "unlimited",
            "--backoff-base",
            "0.01",
            "--backoff-cap",
            "0.05",
            *args,
            env={**NO_PROXIES, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY, **env},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        keys = sorted(m["key"] for m in emu.messages())
        stats = emu.stats()
        assert stats["replays"] + stats["drops"] + sum(stats["errors"].values()) > 0
        runs[how] = (stats["duplicates"], len(keys), keys, len(used) > before)
    assert runs["fast"][:3] == runs["flag"][:3] == runs["env"][:3]
    assert runs["fast"][:2] == (0, 24)  # every key committed once, none lost
    assert [r[3] for r in runs.values()] == [False, True, True]  # which stack carried them


async def _ok(head: bytes, body: bytes) -> bytes:
    return OK


def _get(stack: HttpxStack, url: str) -> httpx.Request:
    return httpx.Request(
        "GET", url, extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), 5.0)}
    )


def test_httpx_stack_trusts_ssl_cert_file_and_tunnels_through_https_proxy(
    ca, server_ctx, tmp_path, monkeypatch
):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))

    async def scenario():
        server, proxy = RawServer(_ok, ssl_context=server_ctx), Proxy()
        async with server.running(), proxy.running():
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
            stack = HttpxStack(2)  # reads the environment when made, as httpx does
            try:
                response = await stack.handle_async_request(
                    _get(stack, f"https://localhost:{server.port}/x")
                )
            finally:
                await stack.aclose()
            return response.json(), proxy.tunnels, server.port

    body, tunnels, port = asyncio.run(scenario())
    assert body == {"ok": True}
    assert tunnels == [f"localhost:{port}".encode()]  # the proxy saw a tunnel, not the request


def test_httpx_stack_words_a_certificate_failure_like_the_fast_one(server_ctx):
    async def scenario():
        server = RawServer(_ok, ssl_context=server_ctx)
        async with server.running():
            stack = HttpxStack(1)
            try:
                with pytest.raises(ConnectFailed) as info:
                    await stack.handle_async_request(
                        _get(stack, f"https://localhost:{server.port}/")
                    )
            finally:
                await stack.aclose()
        return info.value, server.port

    error, port = asyncio.run(scenario())
    assert (error.phase, error.host) == ("tls", f"localhost:{port}")
    assert str(error).startswith(
        f"TLS handshake with localhost:{port} failed: certificate verify failed"
    )
