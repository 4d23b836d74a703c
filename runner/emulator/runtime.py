"""Ways to run the emulator: in a background thread, in a child process, or in the foreground.

Handles talk to the control endpoints over HTTP, so a thread and a process look the same to a
test or benchmark. Every start waits a bounded time; every stop joins what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from runner.emulator import control
from runner.emulator.app import App
from runner.emulator.config import EmulatorConfig
from runner.http.server import HOST, Server

START_TIMEOUT_S = 15.0


class EmulatorHandle:
    """A running emulator: its URLs plus the control endpoints as methods."""

    def __init__(self, port: int, api_key: str) -> None:
        self.port = port
        self.api_key = api_key
        self.root_url = f"http://{HOST}:{port}"
        self.base_url = self.root_url + "/v2/api"

    def _control(self, method: str, name: str, data: dict[str, Any] | None = None) -> Any:
        return control.call(self.root_url, method, name, data)

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")

    def messages(self) -> list[dict[str, Any]]:
        return self._control("GET", "messages")["messages"]

    def config(self) -> dict[str, Any]:
        return self._control("GET", "config")

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._control("POST", "config", changes)

    def reply(self, chat: str, text: str, sender: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"chat": chat, "text": text}
        if sender is not None:
            data["sender"] = sender
        return self._control("POST", "reply", data)

    def advance(self, seconds: float) -> int:
        """Move the emulator's clock forward; returns its new time in ms."""
        return self._control("POST", "advance", {"seconds": seconds})["now_ms"]

    def clock(self) -> float:
        """The emulator's clock, epoch seconds."""
        return self._control("GET", "clock")["now_ms"] / 1000

    def create_group(self, participants: list[str]) -> str:
        return self._control("POST", "groups", {"participants": participants})["group_id"]

    def reset(self) -> None:
        self._control("POST", "reset", {})

    def client(self, timeout: float = 10.0, **kwargs: Any) -> Any:
        """An ``httpx.Client`` for the API, base URL and bearer key set (close it after use)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        kwargs.setdefault("trust_env", False)  # loopback: ignore proxy settings
        return httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, **kwargs)

    def env(self) -> dict[str, str]:
        """The environment a runner subprocess needs to talk to this emulator."""
        return {"BLOOIO_BASE_URL": self.base_url, "BLOOIO_API_KEY": self.api_key}


class ThreadEmulator(EmulatorHandle):
    """The emulator on its own event loop in a daemon thread; a context manager."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.app = App(config)
        self._server = Server(self.app, self.app.config.max_body_bytes)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blooio-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {self._error!r}")
        super().__init__(self._server.port, config.api_key)

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.start(self.app.config.port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        hooks = loop.create_task(self.app.webhooks.run(), name="emulator-webhooks")
        try:
            loop.run_forever()
        finally:
            hooks.cancel()
            loop.run_until_complete(self._server.close())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ThreadEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(config: EmulatorConfig | None = None, **changes: Any) -> ThreadEmulator:
    """Start an emulator in a background thread: ``with run_in_thread() as emu: ...``."""
    config = config or EmulatorConfig()
    if changes:
        config = config.updated(changes)
    return ThreadEmulator(config)


class ProcessEmulator(EmulatorHandle):
    """The emulator as ``python -m runner.emulator`` in a child process; a context manager."""

    def __init__(self, config: EmulatorConfig) -> None:
        fields = config.to_dict()
        fields.pop("port")
        fd, port_file = tempfile.mkstemp(prefix="emulator-port-")
        os.close(fd)
        os.unlink(port_file)  # the child writes it once it listens
        self._port_file = port_file
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runner.emulator",
                "--port",
                str(config.port),
                "--port-file",
                port_file,
                "--config-json",
                json.dumps(fields),
                "--quiet",
            ],
            stdin=subprocess.DEVNULL,
        )
        port = self._wait_for_port()
        super().__init__(port, config.api_key)

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited with code {self.process.returncode}")
            with contextlib.suppress(FileNotFoundError, ValueError):
                with open(self._port_file) as fh:
                    return int(fh.read().strip())
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("the emulator did not report its port in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._port_file)

    def __enter__(self) -> ProcessEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_process(config: EmulatorConfig | None = None, **changes: Any) -> ProcessEmulator:
    """Start an emulator in a child process (own CPU, like a real server): a context manager."""
    config = config or EmulatorConfig()
    if changes:
        config = config.updated(changes)
    return ProcessEmulator(config)


def shown_key(config: EmulatorConfig) -> str:
    # A key the user chose may be a real one (reused in a shell history, a CI log): only the
    # emulator's own default is printed.
    if config.api_key == EmulatorConfig().api_key:
        return config.api_key
    return "'<the key given with --api-key>'"


def serve(
    config: EmulatorConfig,
    port_file: str | None = None,
    announce: Callable[[str], None] | None = print,
) -> None:
    """Run in the foreground until SIGINT/SIGTERM (Ctrl-C)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, port_file, announce))


async def _serve(
    config: EmulatorConfig, port_file: str | None, announce: Callable[[str], None] | None
) -> None:
    app = App(config)
    server = Server(app, app.config.max_body_bytes)
    port = await server.start(config.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(port))
        os.replace(tmp, port_file)  # readers never see a half-written port
    if announce:
        announce(control.banner(port, shown_key(config), os.getpid(), HOST))
    hooks = asyncio.create_task(app.webhooks.run(), name="emulator-webhooks")
    try:
        await stop.wait()
    finally:
        hooks.cancel()
        await server.close()
