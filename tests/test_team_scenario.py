"""Issue 24's "Done when", as one scenario: two clones of one campaign repository, whose
runner.yaml names one PostgreSQL state (no password in it: PGPASSWORD, libpq's way).

A sends step 1 of a drip; B's send re-sends nothing and keeps A's delay (the reminder leaves
two days after A's welcome, not after B's run); A's opt-out stops B's reminder; A and B sending
at once: one refuses naming the other (host, PID, lock id); a laptop's folder state imported into the
database: B re-sends nothing of it. (The database restarting mid-run is
test_state_pg.py's test_the_database_restarting_mid_run_stops_it_and_the_next_run_is_exact.)"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from pg_cluster import PASSWORD
from test_state_pg import KEY, chats

from runner.emulator import EmulatorConfig
from runner.store.backend import open_journal
from runner.store.state import PgState

pytest_plugins = ["emulator_fixtures"]

DAY = 86400.0
FAST = (
    "--yes",
    "--rate",
    "unlimited",
    "--no-progress",
    "--backoff-base",
    "0",
    "--backoff-cap",
    "0",
)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def clone(root: Path, url: str, people: list[str]) -> Path:
    """A working folder of the team's repository: runner.yaml and campaigns/."""
    (root / ".git").mkdir(parents=True)
    (root / "runner.yaml").write_text(f"state: {url}\n")
    campaigns = root / "campaigns"
    campaigns.mkdir()
    to = "".join(f'  - to: "{c}"\n' for c in people)
    (campaigns / "drip.yaml").write_text(
        f"version: 1\nid: drip\nrecipients:\n{to}steps:\n"
        "  - id: welcome\n    text: welcome\n"
        "  - id: reminder\n    text: reminder\n    delay: 2d\n"
    )
    (campaigns / "blast.yaml").write_text(
        "version: 1\nid: blast\nrecipients:\n"
        + "".join(f'  - to: "{c}"\n' for c in chats(30, 100))
        + "steps:\n  - id: news\n    text: news\n"
    )
    return root


def test_two_clones_and_one_postgresql_state(
    campaign_cli, make_emulator, pg_cluster, pg_url, tmp_path
):
    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=42))
    url = pg_cluster.url(pg_url.rsplit("/", 1)[1], password=False)  # the password: PGPASSWORD
    env = {
        "BLOOIO_BASE_URL": emu.base_url,
        "BLOOIO_API_KEY": KEY,
        "PGPASSWORD": PASSWORD,
        "RUNNER_STATE": None,
    }
    people = chats(3, 500)
    a, b = clone(tmp_path / "a", url, people), clone(tmp_path / "b", url, people)

    def cli(root: Path, *args: str):
        result = campaign_cli(*args, env=env, cwd=root / "campaigns")
        out = result.stdout + result.stderr
        assert KEY not in out and PASSWORD not in out and "Traceback" not in out
        return result

    def texts() -> list[tuple[str, str]]:
        return sorted((m["body"]["text"], m["chat"]) for m in emu.messages())

    t0 = time.time()
    first = cli(a, "send", "drip.yaml", *FAST, "--now", iso(t0))
    assert first.returncode == 4, first.stderr  # the reminder waits two days
    assert texts() == [("welcome", p) for p in people]

    # B, a day later: nothing sent again, and A's delay holds (not restarted from B's run).
    early = cli(b, "send", "drip.yaml", *FAST, "--now", iso(t0 + DAY))
    assert early.returncode == 4, early.stderr
    assert "resuming: 3 of 6 requests already accepted" in early.stderr
    assert len(emu.messages()) == 3
    assert not (a / ".runner").exists() and not (b / ".runner").exists()

    # A reads a STOP; B's reminder skips that chat.
    emu.reply(people[0], "STOP")
    assert cli(a, "optouts", "drip.yaml").returncode == 0
    late = cli(b, "send", "drip.yaml", *FAST, "--now", iso(t0 + 2 * DAY + 60))
    assert late.returncode == 0, late.stderr
    assert [t for t in texts() if t[0] == "reminder"] == [("reminder", p) for p in people[1:]]
    assert emu.stats()["duplicates"] == 0

    # A and B at once: while A's run holds the campaign, B's send refuses naming it (host, PID,
    # lock id); once A's run is over, B's goes through.
    with open_journal(PgState(pg_url), "blast", lock="send"):  # A's run, in progress
        both = cli(b, "send", "blast.yaml", *FAST)
    assert both.returncode == 3, both.stdout + both.stderr
    assert socket.gethostname() in both.stderr and str(os.getpid()) in both.stderr
    assert "--lock-id" in both.stderr and not any(t == "news" for t, _ in texts())
    assert cli(b, "send", "blast.yaml", *FAST).returncode == 0
    assert sum(1 for t, _ in texts() if t == "news") == 30 and emu.stats()["duplicates"] == 0

    # A laptop that sent on its own folder state moves into the database: nothing re-sent.
    laptop = tmp_path / "laptop-state"
    solo = tmp_path / "solo"
    solo.mkdir()
    (solo / "old.yaml").write_text(
        'version: 1\nid: old\nrecipients:\n  - to: "+15552409999"\n'
        "steps:\n  - id: hi\n    text: hi\n"
    )
    sent = campaign_cli("send", str(solo / "old.yaml"), *FAST, "--state", str(laptop), env=env)
    assert sent.returncode == 0, sent.stderr
    moved = campaign_cli("state", "import", str(laptop), "--to", url, env=env)
    assert moved.returncode == 0 and "imported old: 1 requests" in moved.stdout
    (b / "campaigns" / "old.yaml").write_text((solo / "old.yaml").read_text())
    before = len(emu.messages())
    again = cli(b, "send", "old.yaml", *FAST)
    assert again.returncode == 0 and len(emu.messages()) == before

    listed = json.loads(cli(b, "status", "--format", "json").stdout)
    assert [c["campaign"] for c in listed["campaigns"]] == ["blast", "drip", "old"]
    assert PASSWORD not in listed["state"]
