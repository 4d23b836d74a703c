"""`optouts --export` from two processes at once, into one shared suppression file: every round's
opt-outs end up in the file exactly once (the folder lock, the re-read under it)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from runner.run.optouts import Exported, export

ROUNDS = 50


def _exporter(folder: str, who: int, start: object) -> None:
    path = Path(folder) / "optouts.txt"
    campaign = str(Path(folder) / f"c{who}.yaml")
    start.wait()  # type: ignore[attr-defined]
    for k in range(ROUNDS):
        mine = Exported(f"+1555{who}{k:06d}", "STOP", 1_700_000_000_000 + k)
        shared = Exported(f"+15559{k:06d}", "STOP", 1_700_000_000_000 + k)  # both export it
        export(path, [mine, shared], campaign)


def test_two_exporters_lose_and_double_nothing(tmp_path: Path):
    (tmp_path / "optouts.txt").write_text("# shared opt-outs\n+15550000000\n")
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_exporter, args=(str(tmp_path), who, start)) for who in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "optouts.txt").read_text().splitlines()
    chats = [ln.split()[0] for ln in lines if not ln.startswith("#")]
    expected = {"+15550000000"} | {f"+1555{w}{k:06d}" for w in (1, 2, 9) for k in range(ROUNDS)}
    assert len(chats) == len(set(chats))  # nothing doubled
    assert set(chats) == expected  # nothing lost
    assert lines[0] == "# shared opt-outs"
