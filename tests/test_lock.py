"""Issue 16.4: one run per journal. `send`, `track` and `optouts` hold an exclusive lock on
`<id>.lock` beside the journal for their lifetime; a second one refuses at once naming the
holder's PID (exit 3). `report` and `plan --state` take no lock and read one snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from runner.store.journal import ACCEPTED, Attempt, Journal, Outcome
from runner.store.lock import JournalBusy, JournalLock, lock_path
from runner.store.paths import journal_path

CAMPAIGN = """\
version: 1
id: locked
recipients:
  - to: "+15551230001"
  - to: "+15551230002"
suppress: [optouts.txt]
steps:
  - id: hello
    text: "hi"
"""
ENV = {"BLOOIO_API_KEY": "k_lock_test", "BLOOIO_BASE_URL": "http://127.0.0.1:9/v2/api"}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "optouts.txt").write_text("", encoding="utf-8")
    with Journal(journal_path(tmp_path / "st", "locked")) as j:  # as an earlier send left it
        run = j.start_run("locked", 1, {}, {"requests": 2})
        j.apply(
            [
                Attempt("k0", "+15551230001", "hello", 1, 0, 0, 1, "h", run, 1.0),
                Outcome("k0", ACCEPTED, message_id="m0", http_status=202, now=1.0),
            ]
        )
        j.finish_run(run, {"requests": 2, "accepted": 1}, 0, None)
    return tmp_path


def test_a_second_open_for_writing_refuses_and_names_the_holder(tmp_path):
    path = tmp_path / "c.sqlite"
    with Journal(path, lock="send"):
        assert lock_path(path) == tmp_path / "c.lock"
        assert lock_path(path).read_text().strip() == str(os.getpid())
        # flock locks belong to an open file description: a second open conflicts, even here.
        with pytest.raises(JournalBusy) as err:
            Journal(path, lock="track")
        assert err.value.exit_code == 3
        assert f"process {os.getpid()}" in str(err.value)
        with Journal(path) as reader:  # readers need no lock
            assert reader.runs() == []
    with Journal(path, lock="send"):  # released on close
        pass


def test_a_lock_held_by_another_process(tmp_path):
    path = tmp_path / "c.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys
        from runner.store.lock import JournalLock
        lock = JournalLock({str(path)!r}).acquire()
        print("held", flush=True)
        sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JournalBusy, match=f"process {holder.pid} "):
            JournalLock(path).acquire()
    finally:
        holder.communicate("")  # the holder exits: the kernel drops its lock
    with JournalLock(path) as lock:
        assert lock.held


@pytest.mark.parametrize("command", ["send", "track", "optouts"])
def test_writers_refuse_while_a_run_holds_the_journal(campaign_cli, project, command):
    before = journal_path(project / "st", "locked").read_bytes()
    extra = ["--yes"] if command == "send" else []
    with JournalLock(journal_path(project / "st", "locked")):
        out = campaign_cli(
            command, str(project / "c.yaml"), "--state", str(project / "st"), *extra, env=ENV
        )
    assert out.returncode == 3, out.stderr
    assert f"process {os.getpid()} is running on this journal" in out.stderr
    assert "Traceback" not in out.stderr
    assert journal_path(project / "st", "locked").read_bytes() == before


def test_readers_work_while_a_run_holds_the_journal(campaign_cli, project):
    with JournalLock(journal_path(project / "st", "locked")):
        report = campaign_cli(
            "report", str(project / "c.yaml"), "--state", str(project / "st"), "--format", "json"
        )
        plan = campaign_cli("plan", str(project / "c.yaml"), "--state", str(project / "st"))
    assert report.returncode == 0, report.stderr
    assert plan.returncode == 0, plan.stderr


def test_a_snapshot_does_not_see_a_commit_made_meanwhile(tmp_path):
    path = tmp_path / "c.sqlite"
    with Journal(path, lock="send") as writer, Journal(path) as reader:
        writer.apply([Attempt("k0", "+15551230001", "hello", 1, 0, 0, 1, "h", None, 1.0)])
        with reader.snapshot():
            assert len(list(reader.entries())) == 1
            writer.apply([Attempt("k1", "+15551230002", "hello", 1, 1, 0, 1, "h", None, 1.0)])
            assert len(list(reader.entries())) == 1  # one consistent state throughout
        assert len(list(reader.entries())) == 2
