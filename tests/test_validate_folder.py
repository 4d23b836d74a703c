"""`campaign validate`: a folder's non-campaign YAML is skipped and listed, a named file is
always checked; output reads top to bottom (problems, how many more, the summary last);
--max-problems; a recipient with an invalid chat id still has its templates checked."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from runner.cli import main
from runner.errors import Problem
from runner.planning.validate import FileResult, ValidationRun, listing, looks_like_campaign

GOOD = (
    "version: 1\nid: good\nrecipients:\n  - to: '+12125550101'\nsteps:\n  - id: a\n    text: Hi\n"
)
COMPOSE = "services:\n  web:\n    image: nginx\n    ports: ['80:80']\nversion: '3'\n"


def validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    assert not isinstance(result.exception, Exception)
    return result.exit_code, result.output


def test_looks_like_campaign():
    assert looks_like_campaign(GOOD)
    assert not looks_like_campaign(COMPOSE)  # one of the four keys only
    assert looks_like_campaign("version: 1\nid: lost-its-steps\n")
    assert looks_like_campaign(
        "# yaml-language-server: $schema=../schemas/campaign.schema.json\nfoo: 1\n"
    )
    assert not looks_like_campaign(
        "steps:\n  - id: a\n    version: 1\n"
    )  # nested keys do not count
    assert looks_like_campaign(
        'version: 1\nid: "broken\nsteps: []\n'
    )  # a syntax error is still a campaign


def test_a_folder_skips_yaml_that_is_not_a_campaign(tmp_path: Path):
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE, encoding="utf-8")
    (tmp_path / "no-steps.yaml").write_text(
        "version: 1\nid: no-steps\nrecipients: [{to: '+12125550101'}]\n", encoding="utf-8"
    )
    code, out = validate(str(tmp_path))
    assert code == 1  # the campaign that lost its steps is an error, never skipped
    assert f"FAIL {tmp_path / 'no-steps.yaml'}" in out and f"ok {tmp_path / 'good.yaml'}" in out
    assert f"skipped {tmp_path / 'docker-compose.yml'}: not a campaign" in out
    result = CliRunner().invoke(main, ["validate", "--format", "json", str(tmp_path)])
    assert json.loads(result.stdout)["skipped"] == [str(tmp_path / "docker-compose.yml")]


def test_a_file_named_explicitly_is_always_checked(tmp_path: Path):
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE, encoding="utf-8")
    code, out = validate(str(path))
    assert code == 1 and f"FAIL {path}" in out


def test_a_folder_of_no_campaign_says_what_it_skipped(tmp_path: Path):
    (tmp_path / "docker-compose.yml").write_text(COMPOSE, encoding="utf-8")
    code, out = validate(str(tmp_path))
    assert code == 1 and "no campaign files found" in out and "skipped" in out


def _result(name: str, n: int, hidden: int = 0) -> FileResult:
    return FileResult(
        file=name,
        problems=[Problem(f"p{i}", file=name, line=i + 1) for i in range(n)],
        hidden=hidden,
    )


def test_listing_truncates_in_order_and_counts_the_rest():
    run = ValidationRun([_result("a", 3), _result("b", 4, hidden=2)])
    shown = listing(run, 5)
    assert [(r.file, p.message) for r, p in shown.shown] == [
        ("a", "p0"),
        ("a", "p1"),
        ("a", "p2"),
        ("b", "p0"),
        ("b", "p1"),
    ]
    assert shown.hidden == 2 + 2
    assert len(listing(run, 0).shown) == 7 and listing(run, 0).hidden == 2


def bad_rows(tmp_path: Path, rows: int) -> Path:
    lines = ["to,first_name"] + [f"555{i:04d},Ada" for i in range(rows)]
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nid: many\nrecipients: {file: people.csv}\n"
        "steps:\n  - id: a\n    text: 'Hi {{ firstname }} {{ code }}'\n",
        encoding="utf-8",
    )
    return path


def test_output_reads_top_to_bottom_with_max_problems(tmp_path: Path):
    path = bad_rows(tmp_path, 10)
    code, out = validate("--max-problems", "3", str(path))
    lines = [ln for ln in out.splitlines() if not ln.startswith("    ")]
    assert code == 1
    assert [ln.split(": ")[1] for ln in lines[:3]] == ["error"] * 3
    assert lines[3].endswith("more problems not shown")
    assert lines[-1].startswith(f"FAIL {path}:")  # the summary comes last
    all_lines = [ln for ln in validate(str(path))[1].splitlines() if not ln.startswith("    ")]
    assert int(lines[3].split()[0]) == len(all_lines) - 1 - 3


def test_a_recipient_with_an_invalid_chat_id_still_has_its_templates_checked(tmp_path: Path):
    path = bad_rows(tmp_path, 1)
    code, out = validate("--format", "json", str(path))
    errors = json.loads(
        CliRunner().invoke(main, ["validate", "--format", "json", str(path)]).stdout
    )["files"][0]["errors"]
    assert code == 1
    assert any("E.164" in e["message"] for e in errors)
    assert any("'firstname' is undefined" in e["message"] for e in errors)


def test_github_format_puts_the_count_and_the_summary_last(tmp_path: Path):
    path = bad_rows(tmp_path, 6)
    code, out = validate("--format", "github", "--max-problems", "2", str(path))
    lines = out.splitlines()
    assert code == 1 and [ln.split(" ")[0] for ln in lines[:2]] == ["::error", "::error"]
    assert lines[2].startswith("::notice::") and "more problems not shown" in lines[2]
    assert lines[-1] == "0 of 1 campaign file(s) valid"


def test_the_summary_counts_empty_rows(tmp_path: Path):
    (tmp_path / "people.csv").write_text("to,first_name\n+12125550101,Ada\n,\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nid: e\nrecipients: {file: people.csv}\nsteps:\n  - id: a\n    text: Hi\n",
        encoding="utf-8",
    )
    code, out = validate(str(path))
    assert code == 0 and out.splitlines()[-1].endswith(
        "1 recipients, 1 steps, 1 requests, 1 messages (1 empty row skipped)"
    )
