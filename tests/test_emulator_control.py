"""Rehearsing replies: the emulator's control endpoints are discoverable (banner, --help, 405
answers that say what is expected) and `campaign emulator reply` makes a recipient answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.emulator import control

pytest_plugins = ["emulator_fixtures"]

CHAT = "+15551230001"
NUMBERS = ["+15550000001", "+15550000002"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _send(emu, chat: str, from_number: str) -> None:
    with emu.client() as client:
        r = client.post(
            f"/chats/{chat.replace('+', '%2B')}/messages",
            json={"text": "hello", "from_number": from_number},
        )
    assert r.status_code == 202, r.text


def _inbound(emu, chat: str) -> list[dict]:
    with emu.client() as client:
        r = client.get(
            f"/chats/{chat.replace('+', '%2B')}/messages", params={"direction": "inbound"}
        )
    assert r.status_code == 200, r.text
    return r.json()["messages"]


# -- the server's answers ------------------------------------------------------------------


def test_every_declared_endpoint_is_routed(emulator):
    # Each endpoint, called with the method and example body the docs show, answers 200.
    _send(emulator, CHAT, "+15551234567")
    assert len(emulator.messages()) == 1
    with httpx.Client(base_url=emulator.root_url, trust_env=False) as client:
        for endpoint in control.ENDPOINTS:
            if endpoint.name == "reset":
                continue  # last, below: it would undo the config change
            r = client.request(endpoint.method, endpoint.path, json=endpoint.body)
            assert r.status_code == 200, (endpoint, r.text)
        assert client.post("/__emulator/reset", json={}).status_code == 200
    assert emulator.config()["p_500"] == 0.1  # reset keeps settings, forgets messages
    assert emulator.messages() == []


def test_wrong_method_says_which_method_and_body_the_endpoint_expects(emulator):
    with httpx.Client(base_url=emulator.root_url, trust_env=False) as client:
        r = client.get("/__emulator/reply")
        assert r.status_code == 405
        assert r.headers["allow"] == "POST"
        body = r.json()
        assert "use POST" in body["message"] and '"text": "STOP"' in body["message"]
        (expected,) = body["expected"]
        assert expected["method"] == "POST" and expected["path"] == "/__emulator/reply"
        assert set(expected["body"]) == {"chat", "text"}

        r = client.post("/__emulator/stats", json={})
        assert r.status_code == 405 and r.headers["allow"] == "GET"
        assert r.json()["expected"] == [{"method": "GET", "path": "/__emulator/stats"}]

        r = client.put("/__emulator/config", json={})
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert [e["method"] for e in r.json()["expected"]] == ["GET", "POST"]

        r = client.get("/__emulator/nope")
        assert r.status_code == 404 and "allow" not in r.headers
        assert "/__emulator/reply" in r.json()["message"]


def test_a_reply_goes_to_the_number_that_last_wrote_to_the_chat(make_emulator):
    emu = make_emulator(numbers=NUMBERS)
    _send(emu, CHAT, NUMBERS[0])
    _send(emu, CHAT, NUMBERS[1])
    assert emu.reply(CHAT, "STOP")["internal_id"] == NUMBERS[1]
    (msg,) = _inbound(emu, CHAT)
    assert msg["internal_id"] == NUMBERS[1] and msg["text"] == "STOP"
    # A chat nobody wrote to answers the account's first number; to_number always wins.
    assert emu.reply("+15551230009", "hi")["internal_id"] == NUMBERS[0]
    got = control.call(
        emu.root_url, "POST", "reply", {"chat": CHAT, "text": "x", "to_number": NUMBERS[0]}
    )
    assert got["internal_id"] == NUMBERS[0]


def test_a_group_reply_goes_to_the_groups_sending_number(make_emulator):
    emu = make_emulator(numbers=NUMBERS)
    group = emu.create_group([CHAT, "+15551230002"])
    _send(emu, group, NUMBERS[1])
    got = emu.reply(group, "STOP", sender="+15551230002")
    assert got["internal_id"] == NUMBERS[1] and got["chat_id"] == group


# -- what people read ----------------------------------------------------------------------


def _assert_documents_every_endpoint(text: str) -> None:
    for endpoint in control.ENDPOINTS:
        assert f"{endpoint.method:<4} {endpoint.path}" in text, endpoint
    assert "curl -s -X POST http://127.0.0.1:8765/__emulator/reply" in text
    assert '{"chat": "+15551230001", "text": "STOP"}' in text
    assert "campaign emulator reply --to" in text


def test_help_documents_the_control_endpoints_and_how_to_stop():
    result = CliRunner().invoke(main, ["emulator", "--help"])
    assert result.exit_code == 0, result.output
    _assert_documents_every_endpoint(result.output)
    assert "kill %1" in result.output and "kill PID" in result.output
    assert "--port" in result.output and "reply" in result.output


def test_banner_documents_the_control_endpoints_and_the_pid():
    text = control.banner(8765, "k", 4242)
    _assert_documents_every_endpoint(text)
    assert "export BLOOIO_BASE_URL=http://127.0.0.1:8765/v2/api" in text
    assert "export BLOOIO_API_KEY=k" in text
    assert "kill 4242" in text and "kill %1" in text


def test_the_server_prints_the_banner_and_answers_the_reply_command(tmp_path: Path):
    # The real foreground command in a child process: its banner, then the reply command
    # (in-process) against it, then Ctrl-C.
    port_file = tmp_path / "port"
    code = "from runner.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "emulator", "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert port_file.exists(), proc.stderr.read() if proc.poll() is not None else "no port"
        port = int(port_file.read_text())
        url = f"http://127.0.0.1:{port}"
        result = CliRunner().invoke(
            main, ["emulator", "reply", "--to", CHAT, "--text", "STOP", "--url", url + "/v2/api"]
        )
        assert result.exit_code == 0, result.output
        with httpx.Client(trust_env=False) as client:
            r = client.get(
                f"{url}/v2/api/chats/%2B15551230001/messages",
                headers={"Authorization": "Bearer test-key"},
            )
        assert [(m["direction"], m["text"]) for m in r.json()["messages"]] == [("inbound", "STOP")]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"(PID {proc.pid})" in out and f"kill {proc.pid}" in out
    assert "POST /__emulator/reply" in out and f"--url {url}" in out


# -- campaign emulator reply ---------------------------------------------------------------


def test_reply_command_records_a_stop(make_emulator):
    emu = make_emulator(numbers=NUMBERS)
    _send(emu, CHAT, NUMBERS[1])
    result = CliRunner().invoke(
        main, ["emulator", "reply", "--to", CHAT, "--text", "STOP", "--url", emu.root_url]
    )
    assert result.exit_code == 0, result.output
    (msg,) = _inbound(emu, CHAT)
    assert msg["text"] == "STOP" and msg["internal_id"] == NUMBERS[1]
    assert msg["message_id"] in result.output and NUMBERS[1] in result.output


def test_reply_command_finds_the_emulator_through_blooio_base_url(emulator):
    result = CliRunner().invoke(
        main,
        ["emulator", "reply", "--to", CHAT, "--text", "stop"],
        env={"BLOOIO_BASE_URL": emulator.base_url},
    )
    assert result.exit_code == 0, result.output
    assert [m["text"] for m in _inbound(emulator, CHAT)] == ["stop"]


def test_reply_command_passes_sender_and_to_number(make_emulator):
    emu = make_emulator(numbers=NUMBERS)
    group = emu.create_group([CHAT, "+15551230002"])
    result = CliRunner().invoke(
        main,
        [
            "emulator",
            "reply",
            "--to",
            group,
            "--text",
            "STOP",
            "--sender",
            "+15551230002",
            "--to-number",
            NUMBERS[1],
            "--url",
            emu.root_url,
        ],
    )
    assert result.exit_code == 0, result.output
    (msg,) = _inbound(emu, group)
    assert msg["sender"] == "+15551230002" and msg["internal_id"] == NUMBERS[1]


def test_reply_command_without_an_emulator_fails_in_one_line():
    url = f"http://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(
        main, ["emulator", "reply", "--to", CHAT, "--text", "STOP", "--url", url]
    )
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert f"no emulator answers at {url}" in result.output
    assert not isinstance(result.exception, Exception)


@pytest.mark.parametrize(
    "url", ["https://api.blooio.com/v2/api", "http://10.0.0.5:8765", "ftp://127.0.0.1:8765"]
)
def test_reply_command_refuses_urls_off_this_machine(url):
    result = CliRunner().invoke(
        main, ["emulator", "reply", "--to", CHAT, "--text", "STOP", "--url", url]
    )
    assert result.exit_code == 1
    assert url in result.output and not isinstance(result.exception, Exception)


def test_reply_command_refuses_a_live_blooio_base_url():
    result = CliRunner().invoke(
        main,
        ["emulator", "reply", "--to", CHAT, "--text", "STOP"],
        env={"BLOOIO_BASE_URL": "https://api.blooio.com/v2/api"},
    )
    assert result.exit_code == 1
    assert "BLOOIO_BASE_URL" in result.output and "not on this machine" in result.output


def test_reply_command_reports_what_the_emulator_refused(emulator):
    result = CliRunner().invoke(
        main,
        ["emulator", "reply", "--to", "not a chat", "--text", "STOP", "--url", emulator.root_url],
    )
    assert result.exit_code == 1
    assert "refused the reply" in result.output and "(400)" in result.output


def test_server_options_do_not_go_with_the_reply_subcommand():
    result = CliRunner().invoke(
        main, ["emulator", "--latency-ms", "5", "reply", "--to", CHAT, "--text", "STOP"]
    )
    assert result.exit_code == 1 and "--latency-ms" in result.output


def test_emulator_without_a_subcommand_is_still_the_server():
    # Bad settings are refused before anything listens: the server path, in-process.
    result = CliRunner().invoke(main, ["emulator", "--port", "0", "--fault-500", "2"])
    assert result.exit_code == 1 and "between 0 and 1" in result.output


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://127.0.0.1:8765/v2/api", "http://127.0.0.1:8765"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:8765/v2/api/chats", "http://[::1]:8765"),
        ("http://127.0.0.2:80", "http://127.0.0.2:80"),
    ],
)
def test_loopback_root(url, root):
    assert control.loopback_root(url) == root
