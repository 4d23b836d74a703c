"""A local Blooio v2 API emulator for tests, benchmarks and rehearsals (stdlib only).

    from runner.emulator import EmulatorConfig, run_in_thread

    with run_in_thread(EmulatorConfig(latency_ms=50, p_503=0.1)) as emu:
        ...  # point the runner at emu.base_url with key emu.api_key
        assert emu.stats()["duplicates"] == 0

``run_in_process`` does the same in a child process (``python -m runner.emulator``), and
``campaign emulator`` runs one in the foreground.
"""

from runner.emulator.clock import ManualClock
from runner.emulator.config import FAULT_NAMES, EmulatorConfig
from runner.emulator.runtime import (
    EmulatorHandle,
    ProcessEmulator,
    ThreadEmulator,
    run_in_process,
    run_in_thread,
    serve,
)

__all__ = [
    "FAULT_NAMES",
    "EmulatorConfig",
    "EmulatorHandle",
    "ManualClock",
    "ProcessEmulator",
    "ThreadEmulator",
    "run_in_process",
    "run_in_thread",
    "serve",
]
