"""Start-up cost of the CLI: commands load lazily, so the commands that never talk to the API
(validate, plan, preview, --help, --version) load no HTTP client, no SQLite and no emulator, and
no geocoder data unless a recipient's number needs it (a campaign of 555 numbers never does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.cli._base import COMMANDS

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN = str(REPO / "campaigns" / "spring-sale.yaml")
# rich draws the progress bars of send and track only: the offline commands never load it.
# phonenumbers' geocoder data costs ~0.4 s of CPU to load; only a valid US number needs it.
HEAVY = (
    "httpx",
    "sqlite3",
    "_sqlite3",
    "runner.http",
    "runner.emulator",
    "runner.store.journal",
    "rich",
    "phonenumbers.geocoder",
    "phonenumbers.geodata",
)

# Runs the CLI in a fresh interpreter and prints, as JSON, the heavy modules it loaded.
PROBE = """
import json, sys
from runner.cli import main
try:
    main(sys.argv[1:], prog_name="campaign")
except SystemExit:
    pass
heavy = sys.argv[0]
print(json.dumps(sorted(m for m in sys.modules
                        if any(m == h or m.startswith(h + ".") for h in {heavy}))))
""".replace("{heavy}", repr(HEAVY))


def loaded_heavy_modules(*args: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["validate", CAMPAIGN],
        ["plan", CAMPAIGN, "--format", "json"],
        ["preview", CAMPAIGN, "--to", "+15551230001"],
        ["--help"],
        ["--version"],
    ],
    ids=["validate", "plan", "preview", "help", "version"],
)
def test_offline_commands_load_no_http_sqlite_or_emulator(args, tmp_path):
    assert loaded_heavy_modules(*args, cwd=tmp_path) == []


def test_the_probe_does_see_heavy_modules_when_a_command_loads_them(tmp_path):
    # `report` opens the journal (SQLite): the probe must notice, or the test above proves nothing.
    assert "sqlite3" in loaded_heavy_modules(
        "report", CAMPAIGN, "--state", str(tmp_path), cwd=tmp_path
    )


def test_plan_with_an_earlier_journal_still_reads_it(tmp_path):
    """`plan --state` with a journal loads SQLite (only then) and annotates the plan."""
    from runner.campaign.load import load_campaign
    from runner.store.journal import Journal

    campaign = load_campaign(CAMPAIGN)
    Journal.for_campaign(tmp_path, campaign.id).close()
    result = CliRunner().invoke(
        main, ["plan", CAMPAIGN, "--format", "json", "--state", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "journal" in json.loads(result.output)


def test_help_lists_every_command_with_its_own_short_help():
    ctx = click.Context(main)
    out = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    for name, (module, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.callback.__module__ == module
        # The lazy table repeats the command's first sentence, which --help then shows.
        assert short == command.get_short_help_str(limit=10**6)
        assert f"  {name}  " in out and short in out


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["sned", CAMPAIGN])
    assert result.exit_code == 2 and "No such command 'sned'" in result.output
