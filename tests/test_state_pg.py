"""Issue 24: a team shares one state. `campaign` commands in process against the emulator, with
the state in a folder and in a PostgreSQL database (tests/pg_cluster.py starts a throwaway one).

Send, track and report the same on both backends; two clones sending one campaign through one
database re-send nothing and honour each other's opt-outs; a second run refuses naming the
holder and `state unlock` frees a stuck one; the database restarting mid-run stops the run
(exit 3) and the next run loses and duplicates nothing; the password is in no output."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig
from runner.store.backend import open_journal
from runner.store.pgconn import safe_label, scrub
from runner.store.state import PgState, open_state

pytest_plugins = ["emulator_fixtures"]

KEY = "sk_state_NEVER_PRINTED_24"
FAST = ("--rate", "unlimited", "--no-progress", "--backoff-base", "0", "--backoff-cap", "0")


def write(folder: Path, cid: str, chats: list[str], steps: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    recipients = "".join(f'  - to: "{c}"\n' for c in chats)
    body = "".join(f'  - id: {s}\n    text: "{s} from {cid}"\n' for s in steps)
    path = folder / f"{cid}.yaml"
    path.write_text(f"version: 1\nid: {cid}\nrecipients:\n{recipients}steps:\n{body}")
    return path


def chats(n: int, base: int = 0) -> list[str]:
    return [f"+1555240{base + i:04d}" for i in range(n)]


class Team:
    """One emulator, one state (folder or URL); every command's output checked for secrets."""

    def __init__(self, cli, emu, state: str) -> None:
        self.cli, self.emu, self.state = cli, emu, state
        self.env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}

    def run(self, *args: str, cwd: Path | None = None, state: str | None = None):
        result = self.cli(*args, "--state", state or self.state, env=self.env, cwd=cwd)
        out = result.stdout + result.stderr
        assert KEY not in out and "Passw0rd" not in out and "Traceback" not in out
        return result

    def send(self, campaign: Path, *more: str, cwd: Path | None = None):
        return self.run("send", str(campaign), "--yes", *FAST, *more, cwd=cwd)

    def sent(self) -> list[str]:
        return [m["key"] for m in self.emu.messages()]


@pytest.fixture
def team(campaign_cli, make_emulator, state):
    return Team(campaign_cli, make_emulator(EmulatorConfig(api_key=KEY, seed=24)), state)


def test_send_track_report_the_same_on_both_backends(team, tmp_path):
    campaign = write(tmp_path, "e2e", chats(12), ["hello"])
    first = team.send(campaign)
    assert first.returncode == 0, first.stderr
    assert len(team.sent()) == len(set(team.sent())) == 12
    again = team.send(campaign)  # resumes from the journal: nothing left to send
    assert again.returncode == 0 and len(team.sent()) == 12
    tracked = team.run(
        "track",
        str(campaign),
        "--first-poll",
        "0.02",
        "--poll-cap",
        "0.1",
        "--no-progress",
        "--rate",
        "unlimited",
        "--timeout",
        "20",
    )
    assert tracked.returncode == 0, tracked.stderr
    report = team.run("report", str(campaign), "--format", "json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["totals"]["accepted"] == 12 and doc["runs"] == 2
    plan = team.run("plan", str(campaign), "--format", "json")
    assert plan.returncode == 0, plan.stderr


def test_two_clones_share_one_database(campaign_cli, make_emulator, pg_url, tmp_path):
    team = Team(campaign_cli, make_emulator(EmulatorConfig(api_key=KEY, seed=24)), pg_url)
    people = chats(3)
    a = write(tmp_path / "laptop-a", "drip", people, ["welcome"])
    assert team.send(a, cwd=a.parent).returncode == 0
    team.emu.reply(people[0], "STOP")
    # Laptop B: its own clone (the reminder added), no folder state of its own.
    b = write(tmp_path / "laptop-b", "drip", people, ["welcome", "reminder"])
    done = team.send(b, cwd=b.parent)
    assert done.returncode == 0, done.stderr
    texts = [(m["chat"], m["body"]["text"]) for m in team.emu.messages()]
    assert sum(1 for _, t in texts if t.startswith("welcome")) == 3  # no welcome twice
    assert sorted(c for c, t in texts if t.startswith("reminder")) == people[1:]  # A's STOP
    assert team.emu.stats()["duplicates"] == 0
    assert not (b.parent / ".runner").exists() and not (a.parent / ".runner").exists()


def test_a_second_run_refuses_naming_the_holder_and_unlock_frees_a_stuck_one(
    campaign_cli, make_emulator, pg_url, tmp_path
):
    team = Team(campaign_cli, make_emulator(EmulatorConfig(api_key=KEY, seed=24)), pg_url)
    campaign = write(tmp_path, "locked", chats(2), ["hello"])
    stuck = open_journal(PgState(pg_url), "locked", lock="send")  # another machine's run
    try:
        refused = team.send(campaign)
        assert refused.returncode == 3
        assert socket.gethostname() in refused.stderr and "lock id" in refused.stderr
        lock_id = stuck._lock.lock_id
        assert f"--lock-id {lock_id}" in refused.stderr and team.sent() == []
        wrong = team.run("state", "unlock", "locked", "--lock-id", str(lock_id + 1))
        assert wrong.returncode == 1 and "does not hold lock id" in wrong.stderr
        freed = team.run("state", "unlock", "locked", "--lock-id", str(lock_id))
        assert freed.returncode == 0, freed.stderr
        for _ in range(200):  # the server ends the stuck session asynchronously
            done = team.send(campaign)
            if done.returncode != 3:
                break
            time.sleep(0.01)
        assert done.returncode == 0, done.stderr
        assert len(team.sent()) == 2
    finally:
        stuck.close()  # its connection is gone: closing says nothing


def test_the_database_restarting_mid_run_stops_it_and_the_next_run_is_exact(
    campaign_cli, make_emulator, pg_cluster, pg_url, tmp_path
):
    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=24, latency_ms=5))
    team = Team(campaign_cli, emu, pg_url)
    campaign = write(tmp_path, "restart", chats(80), ["hello"])

    def restart_once_sending() -> None:
        deadline = time.monotonic() + 20
        while emu.stats()["send_requests"] < 10 and time.monotonic() < deadline:
            time.sleep(0.002)
        pg_cluster.restart_immediate()

    fault = threading.Thread(target=restart_once_sending)
    fault.start()
    stopped = team.send(campaign, "--concurrency", "2", "--rate", "200")
    fault.join()
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "state database" in stopped.stderr and "127.0.0.1" in stopped.stderr
    assert 0 < len(team.sent()) < 80
    resumed = team.send(campaign)
    assert resumed.returncode == 0, resumed.stderr
    keys = team.sent()
    assert emu.stats()["duplicates"] == 0 and len(keys) == len(set(keys)) == 80


def test_connection_errors_name_host_and_port_and_never_the_password(
    campaign_cli, pg_cluster, pg_url, tmp_path
):
    campaign = write(tmp_path, "c", chats(1), ["hello"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    down = campaign_cli(
        "report", str(campaign), "--state", f"postgresql://runner:Passw0rd-down@127.0.0.1:{port}/x"
    )
    assert down.returncode == 3
    assert f"host 127.0.0.1 port {port}" in down.stderr and "Passw0rd" not in down.stderr
    wrong = campaign_cli(
        "report",
        str(campaign),
        "--state",
        pg_url.replace(":s3cret-pg-Passw0rd@", ":Passw0rd-wrong@"),
    )
    assert wrong.returncode == 1 and "password authentication failed" in wrong.stderr
    assert "Passw0rd" not in wrong.stdout + wrong.stderr
    # libpq's conventions: the password from PGPASSWORD, not the URL.
    db = pg_url.rsplit("/", 1)[1]
    found = campaign_cli(
        "report",
        str(campaign),
        "--state",
        pg_cluster.url(db, password=False),
        env={"PGPASSWORD": "s3cret-pg-Passw0rd"},
    )
    assert found.returncode == 1 and "no journal for campaign 'c'" in found.stderr
    assert "Passw0rd" not in found.stderr


def test_labels_and_errors_drop_the_password_wherever_the_url_holds_it():
    url = "postgresql://ada:pa%40ss@db.example:6432/team?sslmode=require&password=q2"
    assert safe_label(url) == "postgresql://ada@db.example:6432/team"
    assert scrub("failed for pa@ss and q2 and pa%40ss", url) == "failed for *** and *** and ***"
    assert "pa@ss" not in repr(PgState(url)) and "q2" not in repr(PgState(url))


def test_status_lists_every_campaign_of_the_state(team, tmp_path):
    empty = team.run("status", "--format", "json")
    assert empty.returncode == 0 and json.loads(empty.stdout)["campaigns"] == []
    people = chats(3)
    assert team.send(write(tmp_path, "alpha", people, ["hello"])).returncode == 0
    assert team.send(write(tmp_path, "beta", people[:1], ["hi"])).returncode == 0
    team.emu.reply(people[1], "STOP")
    assert team.run("optouts", str(tmp_path / "alpha.yaml")).returncode == 0
    listed = team.run("status", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert "Passw0rd" not in doc["state"]
    rows = {c["campaign"]: c for c in doc["campaigns"]}
    assert list(rows) == ["alpha", "beta"]
    assert (rows["alpha"]["state"], rows["alpha"]["requests"], rows["alpha"]["opted_out"]) == (
        "finished",
        {"accepted": 3},
        1,
    )
    assert rows["beta"]["requests"] == {"accepted": 1} and rows["beta"]["opted_out"] == 0
    text = team.run("status")
    assert "alpha: finished; accepted 3" in text.stdout and "opted out 1" in text.stdout
    with open_journal(open_state(team.state), "alpha", lock="send"):  # a run in progress
        running = json.loads(team.run("status", "--format", "json").stdout)["campaigns"][0]
    assert running["state"] == "running" and running["holder"]


def test_state_import_moves_a_laptop_with_nothing_sent_again(
    campaign_cli, make_emulator, pg_url, tmp_path
):
    team = Team(campaign_cli, make_emulator(EmulatorConfig(api_key=KEY, seed=24)), pg_url)
    laptop = str(tmp_path / "laptop-state")
    people = chats(4)
    first = write(tmp_path / "a", "drip", people, ["welcome"])
    assert team.run("send", str(first), "--yes", *FAST, state=laptop).returncode == 0
    team.emu.reply(people[0], "STOP")
    assert team.run("optouts", str(first), state=laptop).returncode == 0
    for _ in range(2):  # twice is once
        moved = team.cli("state", "import", laptop, "--to", pg_url)
        assert moved.returncode == 0, moved.stderr
        assert "imported drip: 4 requests" in moved.stdout and "Passw0rd" not in moved.stdout
    doc = json.loads(team.run("report", str(first), "--format", "json").stdout)
    before = json.loads(team.run("report", str(first), "--format", "json", state=laptop).stdout)
    assert doc["totals"] == before["totals"] and doc["runs"] == before["runs"] == 1
    assert {**doc["consent"], "ledger": None} == {**before["consent"], "ledger": None}
    assert doc["consent"]["ledger"] == safe_label(pg_url)
    second = write(tmp_path / "b", "drip", people, ["welcome", "reminder"])
    assert team.send(second).returncode == 0
    texts = [(m["chat"], m["body"]["text"]) for m in team.emu.messages()]
    assert sum(1 for _, t in texts if t.startswith("welcome")) == 4
    assert sorted(c for c, t in texts if t.startswith("reminder")) == people[1:]
    # The database now knows a newer run than the laptop: importing the laptop again is refused.
    stale = team.cli("state", "import", laptop, "--to", pg_url)
    assert stale.returncode == 1 and "newer" in stale.stderr
    assert "Passw0rd" not in stale.stdout + stale.stderr


def test_without_postgresql_ci_fails_where_a_developer_skips(monkeypatch):
    from pg_cluster import missing_postgres

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="postgresql-15"):
        missing_postgres()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        missing_postgres()


def test_the_password_is_stored_nowhere_in_the_database(
    campaign_cli, make_emulator, pg_url, tmp_path
):
    team = Team(campaign_cli, make_emulator(EmulatorConfig(api_key=KEY, seed=24)), pg_url)
    assert team.send(write(tmp_path, "kept", chats(2), ["hello"])).returncode == 0
    import psycopg

    with psycopg.connect(team.state) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                assert "Passw0rd" not in repr(row), table


def test_sigkill_mid_send_against_postgresql_never_duplicates_or_loses(
    campaign_cli, make_emulator, pg_url, tmp_path
):
    """As tests/test_send_e2e.py's SIGKILL rounds, with the journal in PostgreSQL: a `send`
    process killed mid-run (its session ends, the advisory lock with it), then resumed: the
    emulator saw every key once. One round: a process's start-up is most of its cost."""
    from test_send_e2e import send_process, write_campaign

    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=24, latency_ms=3, jitter_ms=3))
    campaign = write_campaign(tmp_path, 20)  # two steps: 40 requests
    proc = send_process(emu, campaign, pg_url, "--rate", "200", key=KEY, wait=False)
    deadline = time.monotonic() + 30
    while emu.stats()["send_requests"] < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.003)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    assert "Passw0rd" not in err and KEY not in err
    assert 0 < len(emu.messages()) < 40  # killed while sending, not before or after
    team = Team(campaign_cli, emu, pg_url)
    for _ in range(200):  # the server ends the killed process's session asynchronously
        done = team.send(campaign)
        if done.returncode != 3:
            break
        time.sleep(0.01)
    assert done.returncode == 0, done.stderr
    keys = team.sent()
    assert emu.stats()["duplicates"] == 0 and len(keys) == len(set(keys)) == 40
