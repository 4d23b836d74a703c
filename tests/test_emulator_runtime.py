"""The emulator's HTTP layer and the ways to run it: thread, child process, CLI command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig, run_in_process

pytest_plugins = ["emulator_fixtures"]

SEND = "POST /v2/api/chats/%2B15551230001/messages HTTP/1.1\r\nHost: x\r\n"


def _raw(port: int, payload: bytes, expect: int) -> list[tuple[int, dict, bytes]]:
    """Send raw bytes on one connection and read ``expect`` responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        buf = b""
        out = []
        while len(out) < expect:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return out
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            length = int(headers.get("content-length", 0))
            while len(buf) < length:
                buf += sock.recv(65536)
            out.append((int(lines[0].split()[1]), headers, buf[:length]))
            buf = buf[length:]
        return out


def _send_bytes(body: dict, key: str, extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    return (
        SEND + f"Authorization: Bearer test-key\r\nIdempotency-Key: {key}\r\n{extra}"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def test_keep_alive_and_pipelining_on_one_connection(emulator):
    payload = b"".join(_send_bytes({"text": f"m{i}"}, f"k{i}") for i in range(3))
    answers = _raw(emulator.port, payload, 3)
    assert [a[0] for a in answers] == [202, 202, 202]
    assert all(a[1]["content-type"] == "application/json" for a in answers)
    assert emulator.stats()["messages_accepted"] == 3


def test_chunked_body_and_connection_close(emulator):
    data = json.dumps({"text": "chunked"}).encode()
    chunked = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    head = (
        SEND + "Authorization: Bearer test-key\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    ((code, headers, body),) = _raw(emulator.port, head + chunked, 1)
    assert code == 202 and headers["connection"] == "close"
    assert emulator.messages()[0]["body"] == {"text": "chunked"}


def test_malformed_requests_get_errors_not_hangs(emulator):
    assert _raw(emulator.port, b"NONSENSE\r\n\r\n", 1)[0][0] == 400
    big = (SEND + "Authorization: Bearer test-key\r\nContent-Length: 999999999\r\n\r\n").encode()
    assert _raw(emulator.port, big, 1)[0][0] == 413
    with emulator.client() as client:
        assert client.get("/nowhere").status_code == 404
        assert client.delete("/me/numbers").status_code == 405
        r = client.get(f"{emulator.root_url}/other")
        assert r.status_code == 404 and r.json()["error"] == "ApiError"


def test_thread_emulator_stops_and_frees_its_port(make_emulator):
    emu = make_emulator()
    port = emu.port
    emu.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_process_emulator_serves_and_stops():
    with run_in_process(EmulatorConfig(api_key="proc-key", p_503=0.0)) as emu:
        assert emu.api_key == "proc-key"
        with emu.client() as client:
            r = client.post("/chats/%2B15551230001/messages", json={"text": "x"})
        assert r.status_code == 202
        assert emu.stats()["messages_accepted"] == 1
        assert emu.env() == {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": "proc-key"}
        proc = emu.process
    assert proc.poll() is not None


def _start_cli(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, int]:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 15
    while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, int(port_file.read_text()) if port_file.exists() else 0


def test_cli_command_announces_url_and_key_and_stops_on_ctrl_c(tmp_path):
    proc, port = _start_cli(
        ["--api-key", "rehearsal", "--fault-503", "1", "--retry-after", "0.05"], tmp_path
    )
    try:
        assert port, proc.stderr.read() if proc.poll() is not None else "no port"
        ((code, _, body),) = _raw(
            port,
            (SEND + "Authorization: Bearer rehearsal\r\nContent-Length: 2\r\n\r\n{}").encode(),
            1,
        )
        assert code == 503 and json.loads(body)["message"] == "No active number available"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/v2/api" in out
    # A key the user chose is never printed (it may be a real one); the default one is.
    assert "rehearsal" not in out and "BLOOIO_API_KEY='<the key given with --api-key>'" in out
    assert "Traceback" not in err


def test_cli_rejects_bad_settings_without_a_traceback(tmp_path):
    proc, port = _start_cli(["--fault-500", "2"], tmp_path)
    out, err = proc.communicate(timeout=15)
    assert port == 0 and proc.returncode == 1
    assert "between 0 and 1" in out + err and "Traceback" not in err


def test_module_entry_point_rejects_bad_settings():
    proc = subprocess.run(
        [sys.executable, "-m", "runner.emulator", "--port", "0", "--latency-ms", "-5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "latency_ms" in proc.stderr
