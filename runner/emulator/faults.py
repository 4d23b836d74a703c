"""Latency and fault draws: one seeded ``random.Random`` for the whole run, so a run replays.

A scripted fault list (``fault_script``) is consumed first, one entry per API request, so a
test can say exactly "the first attempt gets a 503, the second is accepted".
"""

from __future__ import annotations

import random

from runner.emulator.config import FAULT_NAMES, EmulatorConfig


class Faults:
    def __init__(self, config: EmulatorConfig) -> None:
        self.rng = random.Random(config.seed)
        self.configure(config)

    def configure(
        self, config: EmulatorConfig, reseed: bool = False, rescript: bool = True
    ) -> None:
        """Apply ``config``; the script restarts only when asked (a new script, or a reset)."""
        self.config = config
        if rescript:
            self.script = list(config.fault_script)
        self.table = [(name, getattr(config, "p_" + name)) for name in FAULT_NAMES]
        self.total = sum(p for _, p in self.table)
        if reseed:
            self.rng = random.Random(config.seed)

    def draw(self, is_send: bool) -> tuple[str | None, float]:
        """(fault name or None, latency in seconds) for the next API request."""
        cfg = self.config
        delay = cfg.latency_ms
        if cfg.jitter_ms:
            delay += self.rng.random() * cfg.jitter_ms
        if not is_send and cfg.fault_scope == "send":
            return None, delay / 1000.0
        if self.script:
            return self.script.pop(0) or None, delay / 1000.0
        if not self.total:
            return None, delay / 1000.0
        u = self.rng.random()
        for name, p in self.table:
            if u < p:
                return name, delay / 1000.0
            u -= p
        return None, delay / 1000.0
