"""`campaign init [DIR]`: a starter campaign that validates, plans and rehearses as written,
and never overwrites a file."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from runner.campaign.schema import load_schema
from runner.campaign.starter import DEFAULT_ID, campaign_id, starter_files
from runner.cli import main

pytest_plugins = ["emulator_fixtures"]

FILES = ("campaign.yaml", "recipients.csv", "suppression.txt", ".schema/campaign.schema.json")


def init(*args: str):
    return CliRunner().invoke(main, ["init", *args])


def test_init_writes_a_campaign_that_validates_and_plans(tmp_path: Path):
    target = tmp_path / "new" / "promo"  # missing folders are created
    result = init(str(target))
    assert result.exit_code == 0, result.output
    for rel in FILES:
        assert (target / rel).is_file(), rel
        assert f"wrote {target / rel}" in result.output
    campaign = str(target / "campaign.yaml")

    validate = CliRunner().invoke(main, ["validate", campaign])
    assert validate.exit_code == 0, validate.output
    assert "2 recipients, 2 steps" in validate.output
    plan = CliRunner().invoke(
        main, ["plan", campaign, "--format", "json", "--state", str(tmp_path / "st")]
    )
    assert plan.exit_code == 0, plan.output
    got = json.loads(plan.stdout)
    assert (got["campaign"], got["recipients"], got["requests"]) == ("promo", 2, 3)


def test_recipients_and_suppression_files(tmp_path: Path):
    assert init(str(tmp_path)).exit_code == 0
    with open(tmp_path / "recipients.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(re.fullmatch(r"\+1555\d{7}", r["phone"]) for r in rows)
    doc = yaml.safe_load((tmp_path / "campaign.yaml").read_text())
    assert doc["recipients"]["file"] == "recipients.csv"
    assert doc["suppress"] == ["suppression.txt"]
    # Only comments: nobody is suppressed until someone opts out.
    lines = (tmp_path / "suppression.txt").read_text().splitlines()
    assert lines and all(line.startswith("#") for line in lines)


def test_schema_comment_points_at_the_packaged_schema_beside_the_campaign(tmp_path: Path):
    assert init(str(tmp_path)).exit_code == 0
    text = (tmp_path / "campaign.yaml").read_text()
    match = re.match(r"# yaml-language-server: \$schema=(\S+)\n", text)
    assert match, text.splitlines()[0]
    schema_file = tmp_path / match.group(1)
    schema = json.loads(schema_file.read_text())
    assert schema == load_schema()
    errors = list(Draft202012Validator(schema).iter_errors(yaml.safe_load(text)))
    assert errors == []


def test_init_prints_the_next_three_commands(tmp_path: Path):
    result = init(str(tmp_path / "promo"))
    out = result.output
    campaign = str(tmp_path / "promo" / "campaign.yaml")
    assert f"1. campaign validate {campaign}" in out
    assert f"2. campaign plan {campaign}" in out
    assert "3. rehearse on the local emulator" in out
    assert "campaign emulator --port 8765 &" in out and "kill %1" in out
    assert "BLOOIO_BASE_URL=http://127.0.0.1:8765/v2/api" in out
    assert f"campaign send {campaign} --yes" in out


def test_init_defaults_to_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = init()
    assert result.exit_code == 0, result.output
    assert sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
    ) == sorted([*FILES, ".gitignore"])
    assert "campaign validate campaign.yaml" in result.output


@pytest.mark.parametrize("existing", FILES)
def test_init_never_overwrites_and_writes_nothing(tmp_path: Path, existing: str):
    (tmp_path / existing).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / existing).write_text("mine\n")
    result = init(str(tmp_path))
    assert result.exit_code == 1
    assert str(tmp_path / existing) in result.output and "never overwrites" in result.output
    assert not isinstance(result.exception, Exception)
    assert (tmp_path / existing).read_text() == "mine\n"
    written = [rel for rel in FILES if (tmp_path / rel).exists()]
    assert written == [existing]


def test_init_names_a_file_standing_where_a_folder_must_go(tmp_path: Path):
    (tmp_path / ".schema").write_text("mine\n")
    result = init(str(tmp_path))
    assert result.exit_code == 1 and str(tmp_path / ".schema") in result.output
    assert not (tmp_path / "campaign.yaml").exists()


def test_init_into_a_file_is_refused(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    result = init(str(tmp_path / "f"))
    assert result.exit_code == 1 and "not a directory" in result.output


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Spring Promo!", "spring-promo"),
        ("vip_2026", "vip_2026"),
        ("___", DEFAULT_ID),
        ("é", DEFAULT_ID),
    ],
)
def test_campaign_id_from_the_folder_name(tmp_path: Path, name: str, slug: str):
    assert campaign_id(tmp_path / name) == slug
    assert f"\nid: {slug} " in starter_files(slug)["campaign.yaml"]


def test_the_printed_rehearsal_works_on_the_emulator(tmp_path: Path, make_emulator):
    """The steps init prints, in-process: send to the emulator, a STOP reply, optouts."""
    emu = make_emulator()
    assert init(str(tmp_path)).exit_code == 0
    campaign, state = str(tmp_path / "campaign.yaml"), str(tmp_path / "st")
    env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": emu.api_key}
    send = CliRunner().invoke(
        main, ["send", campaign, "--yes", "--state", state, "--no-progress"], env=env
    )
    assert send.exit_code == 0, send.output
    assert emu.stats()["messages_accepted"] == 3
    reply = CliRunner().invoke(
        main, ["emulator", "reply", "--to", "+15551230001", "--text", "STOP"], env=env
    )
    assert reply.exit_code == 0, reply.output
    optouts = CliRunner().invoke(main, ["optouts", campaign, "--state", state, "--export"], env=env)
    assert optouts.exit_code == 0, optouts.output
    last = (tmp_path / "suppression.txt").read_text().splitlines()[-1]
    assert last.startswith("+15551230001")


def test_init_keeps_the_state_folder_and_plans_out_of_git(tmp_path: Path):
    # Was: no .gitignore, so `git add -A` took the journal (phone numbers) along.
    import subprocess

    result = init(str(tmp_path))
    assert result.exit_code == 0 and f"wrote {tmp_path / '.gitignore'}" in result.output
    (tmp_path / ".runner").mkdir()
    (tmp_path / ".runner" / "journal.sqlite").write_text("x")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.jsonl").write_text("{}")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert ".runner" not in listed and "plans/" not in listed and "campaign.yaml" in listed


def test_init_keeps_an_existing_gitignore_and_says_what_to_add(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    result = init(str(tmp_path))
    assert result.exit_code == 0
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n"
    assert "add .runner/ and plans/" in result.output
