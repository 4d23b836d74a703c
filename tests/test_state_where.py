"""Issue 24 item 5: where the state is when no --state is given. The embedded default is
`.runner/` at the campaign's git root (or its folder outside git), whatever the current folder;
runner.yaml's `state:` comes before it and --state / RUNNER_STATE before that; a `.runner/` a
cwd-relative runner left in a sub-folder is refused with the command that moves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_state_pg import KEY, chats, write

from runner.emulator import EmulatorConfig
from runner.store.paths import journal_path

pytest_plugins = ["emulator_fixtures"]

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


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    return root


@pytest.fixture
def run(campaign_cli, make_emulator):
    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=5))
    env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY, "RUNNER_STATE": None}

    def go(*args: str, cwd: Path, **more: str | None):
        result = campaign_cli(*args, env={**env, **more}, cwd=cwd)
        assert "Traceback" not in result.stderr and KEY not in result.stdout + result.stderr
        return result

    go.emu = emu
    return go


def test_every_command_finds_the_state_at_the_git_root_from_any_folder(repo, run, tmp_path):
    campaign = write(repo / "campaigns" / "spring", "spring", chats(3), ["hello"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sent = run("send", str(campaign), *FAST, cwd=campaign.parent)
    assert sent.returncode == 0, sent.stderr
    assert journal_path(repo / ".runner", "spring").is_file()
    assert not (campaign.parent / ".runner").exists()
    for cwd in (repo, elsewhere, repo / "campaigns"):
        report = run("report", str(campaign), "--format", "json", cwd=cwd)
        assert report.returncode == 0, report.stderr
        assert json.loads(report.stdout)["totals"]["accepted"] == 3
    plan = run("plan", str(campaign), "--format", "json", cwd=elsewhere)
    assert plan.returncode == 0 and json.loads(plan.stdout)["journal"]["accepted"] == 3
    again = run("send", str(campaign), *FAST, cwd=elsewhere)  # resumes: nothing sent twice
    assert again.returncode == 0 and len(run.emu.messages()) == 3
    status = run("status", "--format", "json", cwd=repo / "campaigns" / "spring")
    assert [c["campaign"] for c in json.loads(status.stdout)["campaigns"]] == ["spring"]
    assert run("optouts", str(campaign), cwd=elsewhere).returncode == 0
    tracked = run(
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
        cwd=elsewhere,
    )
    assert tracked.returncode == 0, tracked.stderr
    assert not (elsewhere / ".runner").exists() and not (repo / "campaigns" / ".runner").exists()


def test_a_git_file_marks_the_root_and_outside_git_the_campaigns_folder_holds_it(tmp_path, run):
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n")
    inside = write(worktree / "c", "wtc", chats(1), ["hello"])
    assert run("send", str(inside), *FAST, cwd=tmp_path).returncode == 0
    assert journal_path(worktree / ".runner", "wtc").is_file()
    loose = write(tmp_path / "loose", "loose", chats(1), ["hello"])
    assert run("send", str(loose), *FAST, cwd=worktree).returncode == 0
    assert journal_path(loose.parent / ".runner", "loose").is_file()
    assert not (tmp_path / ".runner").exists()


def test_a_state_left_in_a_sub_folder_is_refused_with_the_command_that_moves_it(repo, run):
    campaign = write(repo / "campaigns", "old", chats(2), ["hello"])
    stray = campaign.parent / ".runner"
    first = run("send", str(campaign), *FAST, "--state", str(stray), cwd=repo)
    assert first.returncode == 0 and len(run.emu.messages()) == 2
    for args in (("report", str(campaign)), ("send", str(campaign), *FAST)):
        refused = run(*args, cwd=campaign.parent)
        assert refused.returncode == 1, refused.stderr
        assert f"mv {stray} {repo / '.runner'}" in refused.stderr
        assert f"--state {stray}" in refused.stderr and "second" in refused.stderr
    assert len(run.emu.messages()) == 2 and not (repo / ".runner").exists()
    stray.rename(repo / ".runner")  # what the hint says
    moved = run("send", str(campaign), *FAST, cwd=campaign.parent)
    assert moved.returncode == 0 and len(run.emu.messages()) == 2


def test_a_newer_campaign_beside_an_old_sub_folder_state_is_refused_too(repo, run):
    """The repository's state already holds journals, a sub-folder's holds this campaign's:
    the repository's would send it again."""
    other = write(repo / "a", "other", chats(1), ["hello"])
    assert run("send", str(other), *FAST, cwd=repo).returncode == 0
    campaign = write(repo / "b", "mine", chats(1), ["hello"])
    assert (
        run(
            "send", str(campaign), *FAST, "--state", str(repo / "b" / ".runner"), cwd=repo
        ).returncode
        == 0
    )
    refused = run("send", str(campaign), *FAST, cwd=repo / "b")
    assert refused.returncode == 1 and "campaign 'mine'" in refused.stderr
    assert f"mv -n {repo / 'b' / '.runner' / 'mine.sqlite'} {repo / '.runner'}/" in refused.stderr
    assert len(run.emu.messages()) == 2
    # A campaign the sub-folder's state never ran is not held up by it.
    third = write(repo / "b", "third", chats(1), ["hello"])
    assert run("send", str(third), *FAST, cwd=repo / "b").returncode == 0


def test_the_policy_state_comes_after_state_and_runner_state(repo, run, tmp_path):
    (repo / "runner.yaml").write_text("state: team-state\n")
    campaign = write(repo / "campaigns", "pol", chats(1), ["hello"])
    assert run("send", str(campaign), *FAST, cwd=tmp_path).returncode == 0
    assert journal_path(repo / "team-state", "pol").is_file()
    env_state = tmp_path / "env-state"
    by_env = run("report", str(campaign), cwd=tmp_path, RUNNER_STATE=str(env_state))
    assert by_env.returncode == 1 and "no journal for campaign 'pol'" in by_env.stderr
    assert str(env_state) in by_env.stderr
    flag = run(
        "report",
        str(campaign),
        "--state",
        str(repo / "team-state"),
        cwd=tmp_path,
        RUNNER_STATE=str(env_state),
    )
    assert flag.returncode == 0, flag.stderr
    assert run("status", cwd=repo / "campaigns").stdout.startswith("pol: finished")


def test_a_password_in_the_policy_state_is_refused_with_the_libpq_ways(repo, run):
    (repo / "runner.yaml").write_text(
        "hours: legal\nstate: postgresql://ops:Hunter2-pw@db.example/campaigns\n"
    )
    campaign = write(repo / "campaigns", "pw", chats(1), ["hello"])
    refused = run("plan", str(campaign), cwd=repo)
    assert refused.returncode == 1
    assert "runner.yaml:2" in refused.stderr and "password" in refused.stderr
    assert "PGPASSWORD" in refused.stderr and "~/.pgpass" in refused.stderr
    assert "Hunter2" not in refused.stdout + refused.stderr
    (repo / "runner.yaml").write_text("state: postgresql://db.example/c?password=Hunter2-pw\n")
    assert run("plan", str(campaign), cwd=repo).returncode == 1
