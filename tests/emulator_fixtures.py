"""Shared pytest helpers for tests that need a Blooio API: a real emulator on loopback.

    pytest_plugins = ["emulator_fixtures"]  # in a test module: registers the fixtures below

``emulator`` is a default emulator (no faults, zero latency, key "test-key");
``make_emulator(**settings)`` starts one with settings. ``emu.client()`` is an httpx client
with the base URL and bearer key set. Everything started is stopped at teardown. (Do not also
import names from this module: pytest then warns it cannot rewrite its asserts.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runner.emulator import EmulatorConfig, ThreadEmulator, run_in_thread


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., ThreadEmulator]]:
    started: list[ThreadEmulator] = []

    def start(config: EmulatorConfig | None = None, **settings: Any) -> ThreadEmulator:
        emu = run_in_thread(config, **settings)
        started.append(emu)
        return emu

    try:
        yield start
    finally:
        for emu in started:
            emu.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., ThreadEmulator]) -> ThreadEmulator:
    return make_emulator()
