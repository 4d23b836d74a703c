"""`campaign plan --out` then `campaign send --plan`: the reviewed plan is what is sent.

The emulator's accepted keys and bodies are compared with the plan file's lines; every
refusal is checked to send nothing (the emulator saw no request)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runner.store.journal import Journal

pytest_plugins = ["emulator_fixtures"]


def make_campaign(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.csv").write_text(
        "phone,name\n+15553000001,Ada\n+15553000002,Bo\n+15553000003,Cy\n"
    )
    (folder / "optouts.txt").write_text("# opted out\n")
    path = folder / "c.yaml"
    path.write_text("""\
version: 1
id: plan-send
sender: {from_number: "+15551234567"}
recipients: {file: people.csv, to: phone}
suppress: [optouts.txt]
steps:
  - id: hello
    text: "Hi {{ name }}"
  - id: bye
    text: "Bye {{ name }}"
""")
    return path


def plan_lines(path: Path) -> tuple[dict, list[dict]]:
    head, *lines = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]
    return head, lines


@pytest.fixture
def planned(tmp_path: Path, campaign_cli) -> tuple[Path, Path]:
    camp = make_campaign(tmp_path / "c")
    out = camp.parent / "plan.jsonl"  # beside the campaign: `send --plan` finds it there
    result = campaign_cli("plan", str(camp), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return camp, out


def send(campaign_cli, emu, state: Path, *args: str):
    return campaign_cli(
        "send",
        *args,
        "--yes",
        "--no-progress",
        "--rate",
        "unlimited",
        "--state",
        str(state),
        env=emu.env(),
    )


def test_header_names_every_input_with_its_digest(planned: tuple[Path, Path]) -> None:
    camp, out = planned
    head, lines = plan_lines(out)
    assert head["plan_format"] == 1 and head["campaign"] == "plan-send" and head["revision"] == 1
    assert (head["requests"], head["messages"]) == (len(lines), 6)
    assert [(i["role"], i["path"]) for i in head["inputs"]] == [
        ("campaign", "c.yaml"),
        ("recipients", "people.csv"),
        ("suppress", "optouts.txt"),
    ]
    assert head["digest"].startswith("sha256:") and "at" not in head


def test_send_from_the_plan_sends_exactly_its_requests(
    planned, emulator, campaign_cli, tmp_path: Path
) -> None:
    camp, out = planned
    result = send(campaign_cli, emulator, tmp_path / "state", "--plan", str(out))
    assert result.returncode == 0, result.stderr
    assert "inputs unchanged" in result.stderr
    _, lines = plan_lines(out)
    assert emulator.stats()["accepted_requests"] == len(lines) == 6
    with Journal.for_campaign(tmp_path / "state", "plan-send") as journal:
        assert [e.key for e in journal.entries(1)] == [ln["key"] for ln in lines]
    # Re-running the same plan resumes: nothing twice.
    again = send(campaign_cli, emulator, tmp_path / "state", str(camp), "--plan", str(out))
    assert again.returncode == 0, again.stderr
    assert emulator.stats()["accepted_requests"] == 6 and emulator.stats()["duplicates"] == 0


@pytest.mark.parametrize("what", ["campaign", "recipients"])
def test_a_changed_input_refuses_and_sends_nothing(
    planned, emulator, campaign_cli, tmp_path: Path, what: str
) -> None:
    camp, out = planned
    if what == "campaign":
        camp.write_text(camp.read_text().replace("Hi {{ name }}", "Hello {{ name }}"))
    else:
        with open(camp.parent / "people.csv", "a") as fh:
            fh.write("+15553000004,Di\n")
    result = send(campaign_cli, emulator, tmp_path / "state", "--plan", str(out))
    assert result.returncode == 1
    assert ("c.yaml changed" if what == "campaign" else "people.csv changed") in result.stderr
    assert emulator.stats()["requests"] == 0


def test_an_opt_out_since_the_plan_wins(planned, emulator, campaign_cli, tmp_path: Path) -> None:
    camp, out = planned
    (camp.parent / "optouts.txt").write_text("+15553000002\n")
    result = send(campaign_cli, emulator, tmp_path / "state", str(camp), "--plan", str(out))
    assert result.returncode == 0, result.stderr
    assert "skipped: 2 planned requests (opted out since the plan)" in result.stderr
    assert emulator.stats()["accepted_requests"] == 4


def test_another_campaign_file_is_refused(planned, emulator, campaign_cli, tmp_path: Path) -> None:
    camp, out = planned
    other = make_campaign(tmp_path / "other")
    other.write_text(other.read_text().replace("Bye", "Ciao"))
    result = send(campaign_cli, emulator, tmp_path / "state", str(other), "--plan", str(out))
    assert result.returncode == 1 and "changed since the plan" in result.stderr
    assert emulator.stats()["requests"] == 0


def test_a_plan_without_a_header_is_refused(tmp_path: Path, emulator, campaign_cli) -> None:
    camp = make_campaign(tmp_path / "c")
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"key": "x"}\n')
    result = send(campaign_cli, emulator, tmp_path / "state", str(camp), "--plan", str(bad))
    assert result.returncode == 1 and "plan_format" in result.stderr


def test_a_tampered_request_line_is_refused_before_sending(
    planned, emulator, campaign_cli, tmp_path: Path
) -> None:
    camp, out = planned
    text = out.read_text(encoding="utf-8").replace('"Bye Cy"', '"Bye Cyrus"')
    out.write_text(text, encoding="utf-8")
    result = send(campaign_cli, emulator, tmp_path / "state", "--plan", str(out))
    assert result.returncode == 1 and "differs in 'body'" in result.stderr
    assert emulator.stats()["requests"] == 0


def test_the_send_spool_round_trips_requests_and_leaves_nothing(tmp_path: Path) -> None:
    from runner.campaign.load import load_campaign
    from runner.errors import CampaignError
    from runner.planning.planner import iter_plan
    from runner.run.spool import spool_plan

    camp = make_campaign(tmp_path / "c")
    state = tmp_path / "state"
    spooled = spool_plan(load_campaign(camp), state)
    summary, spool, skipped = spooled.summary, spooled.spool, spooled.skipped
    try:
        expected = list(iter_plan(load_campaign(camp)))
        assert list(spool) == list(spool) == expected and summary.requests == 6 and skipped == 0
    finally:
        spool.close()
    assert list(state.iterdir()) == []  # anonymous: nothing left behind
    with open(camp.parent / "people.csv", "a") as fh:
        fh.write("not-a-phone,Zed\n")
    with pytest.raises(CampaignError):
        spool_plan(load_campaign(camp), state)
    assert list(state.iterdir()) == []


def test_the_report_reads_the_current_plan_from_the_spool_until_an_input_changes(
    tmp_path: Path,
) -> None:
    # After a send the report needs the campaign's current plan; the spool is that plan (no
    # second rendering) while every input file is as planned, and an edit means planning again.
    from runner.campaign.load import load_campaign
    from runner.planning.current import CurrentPlan, current_plan
    from runner.run.spool import current_plan_of, spool_plan

    def same(a: CurrentPlan, b: CurrentPlan) -> bool:
        return (a.revision, a.keys, a.steps, a.step_messages, a.suppressed) == (
            b.revision,
            b.keys,
            b.steps,
            b.step_messages,
            b.suppressed,
        )

    camp = make_campaign(tmp_path / "c")
    campaign = load_campaign(camp)
    spool = spool_plan(campaign, tmp_path / "state").spool
    try:
        from_spool = current_plan_of(campaign, spool)
        assert same(from_spool, current_plan(campaign)) and from_spool.requests == 6
        assert not from_spool.is_suppressed("+15553000001")
        (camp.parent / "optouts.txt").write_text("+15553000001\n")  # an opt-out during the run
        replanned = current_plan_of(campaign, spool)
        assert same(replanned, current_plan(campaign)) and replanned.requests == 4
        assert replanned.suppressed == 1 and replanned.is_suppressed("+15553000001")
    finally:
        spool.close()


def test_send_plan_finds_the_campaign_the_header_names_from_another_folder(
    tmp_path: Path, campaign_cli
) -> None:
    # The README's `plan campaigns/x.yaml --out plans/x.jsonl`, then `send --plan plans/x.jsonl`
    # from a fresh clone: was "neither next to the plan nor here".
    from runner.planning.planfile import PlanFile, find_campaign

    (tmp_path / ".git").mkdir()  # a clone: the campaign is found in it by its digest
    camp = make_campaign(tmp_path / "campaigns")
    out = tmp_path / "plans" / "x.jsonl"
    assert (
        campaign_cli("plan", "campaigns/c.yaml", "--out", "plans/x.jsonl", cwd=tmp_path).returncode
        == 0
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_campaign(PlanFile.read(out), cwd=elsewhere).resolve() == camp.resolve()


def test_a_ledger_newer_than_the_reviewed_plan_is_accepted_and_wins(
    planned, emulator, campaign_cli, tmp_path: Path
) -> None:
    """The reviewed-plan flow and the opt-out flow agree (issue 21): a STOP recorded in the
    state's consent ledger after review only removes messages, and --require-clean does not
    mind (the ledger is state, not a file under review)."""
    camp, out = planned
    repo = camp.parent
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "campaign"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    state = tmp_path / "state"
    # Step one went out earlier to Bo only (a smaller plan), and Bo answered STOP.
    first = camp.parent / "first.yaml"
    first.write_text(
        camp.read_text()
        .replace("people.csv", "bo.csv")
        .replace('  - id: bye\n    text: "Bye {{ name }}"\n', "")
    )
    (camp.parent / "bo.csv").write_text("phone,name\n+15553000002,Bo\n")
    assert send(campaign_cli, emulator, state, str(first)).returncode == 0
    emulator.reply("+15553000002", "STOP")
    optouts = campaign_cli(
        "optouts", str(first), "--state", str(state), "--rate", "100", env=emulator.env()
    )
    assert optouts.returncode == 0, optouts.stderr
    first.unlink()
    (camp.parent / "bo.csv").unlink()
    before = emulator.stats()["accepted_requests"]
    result = send(campaign_cli, emulator, state, "--plan", str(out), "--require-clean")
    assert result.returncode == 0, result.stderr
    assert "skipped: 2 planned requests (opted out since the plan)" in result.stderr
    assert emulator.stats()["accepted_requests"] - before == 4
    assert not any(
        m["chat"] == "+15553000002" and m["body"]["text"].startswith("Bye")
        for m in emulator.messages()
    )
