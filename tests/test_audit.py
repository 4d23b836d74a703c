"""The audit trail: each run records the git commit, dirty files, plan digest and OS user;
`send --require-clean` refuses uncommitted campaign files; older journals still open."""

from __future__ import annotations

import getpass
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from runner.store import journal as journal_module
from runner.store.journal import Journal

pytest_plugins = ["emulator_fixtures"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "people.csv").write_text("phone\n+15553000001\n+15553000002\n")
    (repo / "c.yaml").write_text("""\
version: 1
id: audited
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi"
""")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "campaign")
    return repo


def send(campaign_cli, emu, repo: Path, *args: str):
    return campaign_cli(
        "send",
        str(repo / "c.yaml"),
        "--yes",
        "--no-progress",
        "--rate",
        "unlimited",
        "--state",
        str(repo.parent / "state"),
        *args,
        env=emu.env(),
    )


def test_a_run_records_commit_user_and_digest(repo, emulator, campaign_cli, tmp_path) -> None:
    report = tmp_path / "r.json"
    result = send(campaign_cli, emulator, repo, "--require-clean", "--report", str(report))
    assert result.returncode == 0, result.stderr
    with Journal.for_campaign(repo.parent / "state", "audited") as journal:
        run = journal.last_run()
    assert run is not None
    assert run["git_commit"] == git(repo, "rev-parse", "HEAD")
    assert run["dirty"] == {"tree": False, "files": []}
    assert run["os_user"] == getpass.getuser() and run["plan_digest"].startswith("sha256:")
    audit = json.loads(report.read_text())["run"]["audit"]
    assert audit["git_commit"] == run["git_commit"] and audit["user"] == run["os_user"]


def test_require_clean_refuses_an_uncommitted_data_file(repo, emulator, campaign_cli) -> None:
    with open(repo / "people.csv", "a") as fh:
        fh.write("+15553000003\n")
    result = send(campaign_cli, emulator, repo, "--require-clean")
    assert result.returncode == 1 and "people.csv" in result.stderr
    assert "uncommitted" in result.stderr and emulator.stats()["requests"] == 0
    # Without the flag it sends, and the run says which file was dirty.
    assert send(campaign_cli, emulator, repo).returncode == 0
    with Journal.for_campaign(repo.parent / "state", "audited") as journal:
        assert journal.last_run()["dirty"] == {"tree": True, "files": ["people.csv"]}


def test_require_clean_refuses_outside_git(tmp_path, emulator, campaign_cli) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "c.yaml").write_text(
        'version: 1\nid: loose\nrecipients: [{to: "+15553000001"}]\nsteps: [{id: a, text: hi}]\n'
    )
    env = {**emulator.env(), "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    args = (
        "send",
        str(folder / "c.yaml"),
        "--yes",
        "--no-progress",
        "--state",
        str(tmp_path / "s"),
    )
    refused = campaign_cli(*args, "--require-clean", env=env)
    assert refused.returncode == 1 and "not in a git repository" in refused.stderr


def test_a_version_2_journal_opens_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        journal_module._MIGRATIONS[1] + journal_module._MIGRATIONS[2] + "PRAGMA user_version = 2;"
    )
    db.execute("INSERT INTO runs (campaign, revision, started_at) VALUES ('old', 1, 1.0)")
    db.commit()
    db.close()
    with Journal(path) as journal:
        assert journal.schema_version == journal_module.SCHEMA_VERSION
        (run,) = journal.runs()
        assert run["campaign"] == "old" and run["git_commit"] is None and run["dirty"] is None
