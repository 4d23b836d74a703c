"""Issue 24 item 6: the action's `mode: send` and the two example workflows that use it, send on
merge (examples/send-on-merge.yml) and drips on a schedule (examples/drip-schedule.yml).

Both workflows are checked against GitHub's workflow schema offline (check-jsonschema's vendored
schemas), their inputs against action.yml's, the `campaign` commands action/campaign-send.sh
runs against the CLI's own options, and the script runs for real once: on merge it sends only
the campaign whose plan changed (exit 4 counted as success)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import yaml

from runner.cli import main
from runner.emulator import EmulatorConfig, run_in_thread

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
SCRIPT = ROOT / "action" / "campaign-send.sh"
ON_MERGE = ROOT / "examples" / "send-on-merge.yml"
SCHEDULE = ROOT / "examples" / "drip-schedule.yml"
KEY = "sk_action_send_NEVER_SHOWN"


def test_the_workflows_match_githubs_schema() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(ON_MERGE),
            str(SCHEDULE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def send_step(workflow: Path) -> tuple[dict, dict]:
    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    (job,) = doc["jobs"].values()
    step = next(s for s in job["steps"] if str(s.get("uses", "")).endswith("/runner@v0.1.0"))
    return doc, job | {"step": step}


def test_both_workflows_send_through_the_action_with_secrets_and_one_concurrency_group() -> None:
    inputs = yaml.safe_load(ACTION.read_text(encoding="utf-8"))["inputs"]
    groups = set()
    for workflow in (ON_MERGE, SCHEDULE):
        doc, job = send_step(workflow)
        given = job["step"]["with"]
        assert set(given) <= set(inputs) and given["mode"] == "send"
        assert given["state"] == "${{ secrets.RUNNER_STATE }}"
        assert given["api-key"] == "${{ secrets.BLOOIO_API_KEY }}"
        assert job["environment"] and doc["permissions"] == {"contents": "read"}
        assert doc["concurrency"]["cancel-in-progress"] is False
        groups.add(doc["concurrency"]["group"])
    assert len(groups) == 1  # a merge's send and a scheduled resume never overlap
    doc, job = send_step(ON_MERGE)
    assert doc[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    assert job["step"]["with"]["changed-since"] == "${{ github.event.before }}"
    assert job["step"]["with"]["require-clean"] == "true"
    doc, job = send_step(SCHEDULE)
    assert doc[True]["schedule"] == [{"cron": "*/15 * * * *"}]
    assert job["step"]["with"]["due-only"] == "true"
    assert "late" in SCHEDULE.read_text() and "journal" in SCHEDULE.read_text()


def test_the_commands_the_action_runs_exist_with_those_flags() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    calls = re.findall(r"^\s*campaign (.+)$", text, re.M)
    assert len(calls) == 2
    ctx = click.Context(main)
    for call in calls:
        words = shlex.split(call.replace('"${clean[@]}"', "--require-clean"))
        command = main.get_command(ctx, words[0])
        assert command is not None, words[0]
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        flags = {w for w in words[1:] if w.startswith("--") and w != "--"}
        assert flags and flags <= known, flags - known
    assert "-m runner.review changed" in text
    action = ACTION.read_text(encoding="utf-8")
    assert "action/campaign-send.sh" in action and "secrets." not in action


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def campaign(repo: Path, cid: str, delay: str | None = None) -> None:
    later = f"  - id: later\n    text: later {cid}\n    delay: {delay}\n" if delay else ""
    (repo / "campaigns" / f"{cid}.yaml").write_text(
        f'version: 1\nid: {cid}\nrecipients:\n  - to: "+15552409001"\n'
        f"steps:\n  - id: first\n    text: first {cid}\n{later}"
    )


def test_the_script_sends_only_what_the_merge_changed_and_counts_exit_4_as_success(
    tmp_path: Path,
) -> None:
    """A true run of action/campaign-send.sh (its `due-only` branch runs `campaign send DIR
    --due-only`, tested in process by tests/test_send_due.py)."""
    repo = tmp_path / "repo"
    (repo / "campaigns").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    campaign(repo, "old")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "old")
    before = head(repo)
    campaign(repo, "new", delay="1d")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "new")
    with run_in_thread(EmulatorConfig(api_key=KEY, seed=7)) as emu:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "CAMPAIGNS": "campaigns",
            "CHANGED_SINCE": before,
            "DUE_ONLY": "false",
            "REQUIRE_CLEAN": "true",
            "RUNNER_STATE": "",
            "BLOOIO_API_KEY": KEY,
            "BLOOIO_BASE_URL": emu.base_url,
        }
        merged = subprocess.run(
            ["bash", str(SCRIPT)], cwd=repo, env=env, capture_output=True, text=True, timeout=120
        )
        out = merged.stdout + merged.stderr
        assert merged.returncode == 0, out  # 4: the later step waits; counted as success
        assert "::notice::everything due was sent" in out and KEY not in out
        assert [m["body"]["text"] for m in emu.messages()] == ["first new"]
    assert (repo / ".runner" / "new.sqlite").is_file()


def test_send_mode_without_a_key_says_which_input(tmp_path: Path) -> None:
    env = {**os.environ, "CAMPAIGNS": "campaigns", "BLOOIO_API_KEY": ""}
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1 and "api-key" in proc.stdout


def test_a_branchs_first_push_sends_every_campaign() -> None:
    from runner.review import changed_campaigns

    files = ["campaigns/a.yaml", "campaigns/b.yaml"]
    assert changed_campaigns(files, "0" * 40) == files  # github.event.before on a new branch
    assert changed_campaigns(files, "") == files
