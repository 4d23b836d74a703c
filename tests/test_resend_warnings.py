"""Warn before sending again (issue 16.6): a renamed step, a bumped revision and older content
are counted by `plan --state` and by `send`'s confirmation, which asks with those numbers; and
the prompt's counts are the current plan's (issue 16.5), never "20 of 9" or "-11 requests"."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import runner
from runner.cli import main
from runner.report.words import confirm_question

pytest_plugins = ["emulator_fixtures"]

CHATS = ["+15557100001", "+15557100002", "+15557100003"]


def write(
    folder: Path,
    *,
    step: str = "hello",
    revision: int = 1,
    rows: list[str] = CHATS,
    text: str = "Hi",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.csv").write_text("phone\n" + "".join(f"{r}\n" for r in rows))
    file = folder / "c.yaml"
    file.write_text(
        f"version: 1\nid: again\nrevision: {revision}\n"
        'sender: {from_number: "+15551234567"}\n'
        "recipients: {file: people.csv, to: phone}\n"
        f'steps:\n  - id: {step}\n    text: "{text}"\n'
    )
    return file


class _OnATerminal(types.ModuleType):
    """``sys`` as `send` sees it, with stdin a terminal: the confirmation is asked."""

    def __getattr__(self, name: str):
        return getattr(sys, name)

    stdin = types.SimpleNamespace(isatty=lambda: True)


def send_answering(file: Path, emulator, answer: str, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr("runner.cli.send.sys", _OnATerminal("sys"))
    result = CliRunner().invoke(
        main,
        [
            "send",
            str(file),
            "--state",
            str(file.parent / "st"),
            "--base-url",
            emulator.base_url,
            "--no-progress",
        ],
        input=answer + "\n",
        env={"BLOOIO_API_KEY": emulator.api_key},
    )
    if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def first_send(file: Path, emulator) -> None:
    out = runner.send(
        file,
        state_dir=file.parent / "st",
        base_url=emulator.base_url,
        api_key=emulator.api_key,
        rate="unlimited",
    )
    assert out.result.stats.accepted == len(CHATS)


def plan_json(file: Path) -> dict:
    done = CliRunner().invoke(
        main, ["plan", str(file), "--format", "json", "--state", str(file.parent / "st")]
    )
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_a_renamed_step_is_counted_and_asked_about(emulator, tmp_path, monkeypatch):
    file = write(tmp_path / "c")
    first_send(file, emulator)
    write(tmp_path / "c", step="greet")
    doc = plan_json(file)
    assert doc["journal"]["same_content_other_step"] == 3
    assert doc["journal"]["accepted"] == 0 and doc["journal"]["earlier_revision"] == 0
    text = CliRunner().invoke(main, ["plan", str(file), "--state", str(tmp_path / "c" / "st")])
    assert "got this content under another step id (sent again)  3 recipients" in text.stdout
    code, err = send_answering(file, emulator, "n", monkeypatch)
    assert "3 recipient(s) already got the same content under another step id" in err
    assert "Send 3 requests (3 already got the same content under another step id)?" in err
    assert code == 1 and "nothing sent" in err
    assert emulator.stats()["messages_accepted"] == 3  # nothing left on "n"


def test_a_bumped_revision_is_counted_and_asked_about(emulator, tmp_path, monkeypatch):
    file = write(tmp_path / "c")
    first_send(file, emulator)
    write(tmp_path / "c", revision=2, rows=CHATS[:2])
    assert plan_json(file)["journal"]["earlier_revision"] == 2
    code, err = send_answering(file, emulator, "n", monkeypatch)
    assert "Send 2 requests (2 recipient(s) already got an earlier revision)?" in err
    assert code == 1


def test_resuming_counts_only_the_current_plan(emulator, tmp_path, monkeypatch):
    file = write(tmp_path / "c")
    first_send(file, emulator)
    write(tmp_path / "c", rows=CHATS[:1])  # two rows removed after sending
    code, err = send_answering(file, emulator, "n", monkeypatch)
    assert "resuming: 1 of 1 requests already accepted" in err
    assert "Send 0 requests?" in err
    assert "warning" not in err  # nothing would be sent again


def test_an_unchanged_campaign_warns_of_nothing(emulator, tmp_path):
    file = write(tmp_path / "c")
    first_send(file, emulator)
    j = plan_json(file)["journal"]
    assert j == {
        "accepted": 3,
        "older_content": 0,
        "earlier_revision": 0,
        "same_content_other_step": 0,
    }
    write(tmp_path / "c", text="Hello")  # a fixed text: older content, not sent again
    j = plan_json(file)["journal"]
    assert (j["accepted"], j["older_content"], j["same_content_other_step"]) == (3, 3, 0)


@pytest.mark.parametrize(
    "args,question",
    [
        ((5, 2), "Send 3 requests?"),
        ((5, 9), "Send 0 requests?"),
        (
            (4, 0, 4, 1),
            "Send 4 requests (4 recipient(s) already got an earlier revision; 1 already "
            "got the same content under another step id)?",
        ),
    ],
)
def test_the_question(args, question):
    assert confirm_question(*args) == question
