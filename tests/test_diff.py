"""`campaign diff`: a campaign at a git ref against the working tree, in a real git repository
made in tmp_path (commit, edit, diff). No network, no API key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

CAMPAIGN = """\
version: 1
id: pr-diff
revision: 1
sender: {from_number: "+15551234567"}
recipients: {file: data/people.csv, to: phone}
suppress: [optouts.txt]
steps:
  - id: hello
    text: "Hi {{ name }}, 20% off"
  - id: bye
    text: "Bye {{ name }}"
"""
PEOPLE = "phone,name\n+15553000001,Ada\n+15553000002,Bo\n+15553000003,Cy\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "campaigns" / "data").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "campaigns" / "c.yaml").write_text(CAMPAIGN)
    (repo / "campaigns" / "data" / "people.csv").write_text(PEOPLE)
    (repo / "campaigns" / "optouts.txt").write_text("")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def diff(campaign_cli, repo: Path, *args: str) -> dict:
    result = campaign_cli(
        "diff",
        "campaigns/c.yaml",
        "--format",
        "json",
        *args,
        cwd=repo,
        env={"BLOOIO_API_KEY": None},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def step(doc: dict, name: str) -> dict:
    return next(s for s in doc["steps"] if s["step"] == name)


def test_no_change_is_all_unchanged(repo, campaign_cli) -> None:
    doc = diff(campaign_cli, repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    assert doc["base"] == head and not doc["new"]  # on main: its merge base with main is HEAD
    assert [(s["step"], s["recipients_unchanged"], s["content_changed"]) for s in doc["steps"]] == [
        ("hello", 3, 0),
        ("bye", 3, 0),
    ]


def test_data_and_text_edits_show_who_gets_what(repo, campaign_cli) -> None:
    camp = repo / "campaigns" / "c.yaml"
    camp.write_text(CAMPAIGN.replace("20% off", "25% off") + '  - id: extra\n    text: "PS"\n')
    (repo / "campaigns" / "data" / "people.csv").write_text(
        PEOPLE.replace("+15553000003,Cy\n", "+15553000004,Di\n")
    )
    (repo / "campaigns" / "optouts.txt").write_text("+15553000002\n")
    doc = diff(campaign_cli, repo)
    hello = step(doc, "hello")
    # Ada stays (text changed), Bo opted out, Cy left the list, Di joined.
    assert (hello["recipients_added"], hello["recipients_removed"]) == (1, 2)
    assert (hello["content_changed"], hello["would_not_resend"], hello["would_resend"]) == (1, 1, 0)
    (example,) = hello["examples"]
    assert example["recipient"] == "+1555•••0001"
    assert example["changes"]["text"] == {"before": "Hi Ada, 20% off", "after": "Hi Ada, 25% off"}
    assert step(doc, "bye")["recipients_unchanged"] == 1
    assert doc["steps_added"] == ["extra"] and step(doc, "extra")["recipients_added"] == 2
    assert doc["suppression"]["suppressed_recipients"] == {"before": 0, "after": 1}
    assert not doc["schedule"]["changed"]


def test_a_revision_bump_resends_and_a_removed_step_is_named(repo, campaign_cli) -> None:
    camp = repo / "campaigns" / "c.yaml"
    camp.write_text(
        CAMPAIGN.replace("revision: 1", "revision: 2").replace(
            '  - id: bye\n    text: "Bye {{ name }}"\n', ""
        )
        + "schedule: {not_before: '2030-01-01T09:00:00Z'}\n"
    )
    doc = diff(campaign_cli, repo)
    assert doc["revision"] == {"before": 1, "after": 2}
    assert step(doc, "hello")["would_resend"] == 3 and doc["totals"]["would_resend"] == 3
    assert doc["steps_removed"] == ["bye"] and step(doc, "bye")["recipients_removed"] == 3
    assert doc["schedule"]["changed"]


def test_base_ref_and_markdown(repo, campaign_cli) -> None:
    git(repo, "branch", "base")
    camp = repo / "campaigns" / "c.yaml"
    camp.write_text(CAMPAIGN.replace("Bye", "Ciao"))
    git(repo, "commit", "-qam", "ciao")
    assert step(diff(campaign_cli, repo), "bye")["content_changed"] == 0  # HEAD has it already
    doc = diff(campaign_cli, repo, "--base", "base")
    assert step(doc, "bye")["content_changed"] == 3
    md = campaign_cli(
        "diff", "campaigns/c.yaml", "--base", "base", "--format", "markdown", cwd=repo
    )
    assert md.returncode == 0
    assert (
        "| `bye` | kept | 0 | 0 | 0 | 3 | 0 | 3 |" in md.stdout and "+15553000001" not in md.stdout
    )
    assert "Ciao Ada" in md.stdout


def test_a_new_campaign_and_errors(repo, campaign_cli) -> None:
    new = repo / "campaigns" / "new.yaml"
    new.write_text(CAMPAIGN.replace("pr-diff", "brand-new"))
    result = campaign_cli("diff", "campaigns/new.yaml", "--format", "json", cwd=repo)
    doc = json.loads(result.stdout)
    assert doc["new"] and step(doc, "hello")["recipients_added"] == 3
    bad = campaign_cli("diff", "campaigns/c.yaml", "--base", "no-such-ref", cwd=repo)
    assert bad.returncode == 1 and "unknown git ref 'no-such-ref'" in bad.stderr
    (repo / "campaigns" / "data" / "people.csv").write_text("phone,name\nnot-a-phone,X\n")
    invalid = campaign_cli("diff", "campaigns/c.yaml", cwd=repo)
    assert invalid.returncode == 1 and "people.csv:2" in invalid.stderr


def test_a_feature_branch_is_compared_with_its_merge_base_with_main(repo, campaign_cli) -> None:
    # Was HEAD against the working tree (all zeros) unless --base main was given.
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "campaigns" / "data" / "people.csv").write_text(PEOPLE + "+15553000004,Di\n")
    git(repo, "commit", "-q", "-am", "one more")
    doc = diff(campaign_cli, repo)
    assert step(doc, "hello")["recipients_added"] == 1
    assert doc["base_said"].startswith("the merge base with main (")
    text = campaign_cli("diff", "campaigns/c.yaml", cwd=repo, env={"BLOOIO_API_KEY": None}).stdout
    assert "the merge base with main" in text


def test_rows_excluded_by_exclude_when_are_counted(repo, campaign_cli) -> None:
    (repo / "campaigns" / "data" / "people.csv").write_text(
        "phone,name,Do not text\n+15553000001,Ada,\n+15553000002,Bo,yes\n+15553000003,Cy,\n"
    )
    camp = repo / "campaigns" / "c.yaml"
    camp.write_text(
        CAMPAIGN.replace(
            "recipients: {file: data/people.csv, to: phone}",
            "recipients: {file: data/people.csv, to: phone, "
            "exclude_when: \"do_not_text == 'yes'\"}",
        )
    )
    doc = diff(campaign_cli, repo)
    assert doc["excluded"] == {"recipients": {"before": 0, "after": 1}, "by": "Do not text"}
    assert step(doc, "hello")["recipients_removed"] == 1
    text = campaign_cli("diff", "campaigns/c.yaml", cwd=repo, env={"BLOOIO_API_KEY": None}).stdout
    assert "excluded (Do not text): 0 → 1" in text
