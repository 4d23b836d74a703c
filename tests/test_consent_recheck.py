"""The consent gate asks the ledger whether another process wrote to it at most every 50 ms,
and less often when asking is slow (a PostgreSQL round trip on a loaded link blocks the event
loop): never more than 2% of the run's time."""

from __future__ import annotations

from runner.consent.standing import Standing
from runner.run.consent import ConsentGate
from runner.run.optouts import stop_words


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowLedger:
    """A ledger whose ``changed_elsewhere`` takes ``cost`` seconds of the clock."""

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock, self.cost = clock, cost
        self.asked = 0
        self.kept: dict[str, Standing] = {}

    def standings(self) -> dict[str, Standing]:
        return dict(self.kept)

    def contacts(self) -> dict:
        return {}

    def changed_elsewhere(self) -> bool:
        self.asked += 1
        self.clock.now += self.cost
        return True


def _asked_in(cost: float, seconds: float, step: float = 0.01) -> int:
    clock = Clock()
    ledger = SlowLedger(clock, cost)
    gate = ConsentGate(ledger, stop_words(), clock=clock)  # type: ignore[arg-type]
    end = clock.now + seconds
    while clock.now < end:
        gate.standing("+15550000001")
        clock.now += step
    return ledger.asked


def test_a_fast_ledger_is_asked_every_50_ms():
    assert 18 <= _asked_in(cost=0.0, seconds=1.0) <= 21


def test_a_slow_ledger_is_asked_less_often_and_costs_at_most_2_percent():
    asked = _asked_in(cost=0.01, seconds=5.0)
    assert 8 <= asked <= 11  # every 0.5 s, not 100 times (every 50 ms)
    assert asked * 0.01 <= 0.02 * 5.0 + 0.01


def test_what_another_process_recorded_is_still_seen():
    clock = Clock()
    ledger = SlowLedger(clock, 0.01)
    gate = ConsentGate(ledger, stop_words(), clock=clock)  # type: ignore[arg-type]
    assert gate.standing("+15550000001") is None
    ledger.kept["+15550000001"] = Standing.OPTED_OUT  # a webhook's opt-out, meanwhile
    clock.now += 0.6
    assert gate.standing("+15550000001") is Standing.OPTED_OUT
