"""Exports as tools save them (issue 25): each plans as saved, every usable row used, no row
given another country's number, and validate says how the file was read.

The files in tests/exports/ are byte-for-byte what the tools write (BOMs, quoting, code pages,
title rows, footers); none was edited by hand to suit the runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.campaign.load import load_campaign
from runner.planning.planner import Planner

EXPORTS = Path(__file__).parent / "exports"


def plan(tmp_path: Path, name: str, recipients: str, text: str = "Hi") -> Planner:
    shutil.copy(EXPORTS / name, tmp_path / name)
    path = tmp_path / "c.yaml"
    path.write_text(
        f"version: 1\nid: export\nrecipients:\n  file: {name}\n{recipients}"
        f'steps:\n  - id: hello\n    text: "{text}"\n',
        encoding="utf-8",
    )
    planner = Planner(load_campaign(path))
    planner.run()
    return planner


def chats(planner: Planner) -> list[str]:
    from runner.audience.recipients import iter_recipients

    c = planner.campaign
    return [r.chat for r in iter_recipients(c.doc, c.source) if r.problem is None]


HUBSPOT = [
    "+14158675301",
    "+12128675303",
    "+447911123456",
    "+16465550199",
    "+33612345678",
    "+919876543210",
    "+12128675304",
    "+447911123457",
    "+436641234567",
    "+14158675302",
    "+31612345678",
    "+16048675309",
    "+14158675306",
]

CASES = {
    # name: (recipients settings, chats planned, rows skipped for no number, excluded, read as)
    "hubspot-contacts.csv": (
        "  to: [Mobile Phone Number, Phone Number]\n  country: Country/Region\n  default_region: US\n"
        "  exclude_when: sms_opt_out in ['true', 'yes', '1']\n",
        HUBSPOT,
        1,
        1,
        None,
    ),
    "zoho-contacts.csv": (
        "  to: [Mobile, Phone]\n  country: Mailing Country\n  default_region: US\n"
        "  exclude_when: email_opt_out == 'true'\n",
        HUBSPOT,
        1,
        1,
        None,
    ),
    "salesforce-report.csv": (
        "  to: [Mobile, Phone]\n  country: Mailing Country\n",
        [
            "+14158675301",
            "+12128675303",
            "+33612345678",
            "+447911123456",
            "+436641234567",
            "+31612345678",
            "+919876543210",
            "+16048675309",
            "+14158675306",
        ],
        1,
        0,
        "4 footer rows skipped (from row 13)",
    ),
    "salesforce-report-cp1252.csv": (
        "  to: [Mobile, Phone]\n  country: Mailing Country\n",
        [
            "+14158675301",
            "+12128675303",
            "+33612345678",
            "+447911123456",
            "+436641234567",
            "+31612345678",
            "+919876543210",
            "+16048675309",
            "+14158675306",
        ],
        1,
        0,
        "read as cp1252, 2 footer rows skipped (from row 13)",
    ),
    "excel-title-rows.xlsx": (
        "  to: Mobile Phone\n  country: Country\n  default_region: US\n",
        ["+14158675301", "+12128675303", "+33612345678", "+436641234567"],
        1,
        0,
        "header on row 4",
    ),
    "excel-one-title-row.xlsx": (
        "  to: Mobile Phone\n  country: Country\n",
        ["+14158675301", "+33612345678", "+919876543210"],
        0,
        0,
        "header on row 2, 1 footer row skipped (from row 7)",
    ),
    "excel-europe-semicolon.csv": (
        "  to: Mobil\n  country: Land\n  default_region: DE\n  exclude_when: kein_sms == 'ja'\n",
        ["+4915123456789", "+33612345678", "+491701234567", "+436641234567", "+41791234567"],
        1,
        1,
        "read as cp1252, semicolon-delimited",
    ),
    "excel-france-semicolon.csv": (
        "  to: Portable\n  country: Pays\n",
        ["+33612345678", "+32470123456", "+41791234567"],
        0,
        0,
        "read as cp1252, semicolon-delimited",
    ),
    "excel-unicode-text.txt": (
        "  to: Mobile\n  country: Country\n",
        ["+14158675301", "+33612345678", "+34612345678", "+919876543210"],
        0,
        0,
        "read as UTF-16, tab-delimited",
    ),
    "excel-unicode-title.txt": (
        "  to: Mobile\n  country: Country\n",
        ["+14158675301", "+33612345678", "+34612345678", "+919876543210"],
        0,
        0,
        "read as UTF-16, tab-delimited, header on row 3",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_export_plans_as_saved_with_every_usable_row(tmp_path: Path, name: str):
    settings, expected, no_chat, excluded, read_as = CASES[name]
    planner = plan(tmp_path, name, settings)
    assert planner.collector.errors == [], planner.collector.errors
    s = planner.summary
    assert chats(planner) == expected  # in file order: no row got another country's number
    assert s.recipients == len(expected) - excluded
    assert (s.no_chat, s.excluded, s.read_as) == (no_chat, excluded, read_as)


def test_the_european_export_keeps_its_accents(tmp_path: Path):
    from runner.audience.recipients import iter_recipients

    planner = plan(tmp_path, "excel-europe-semicolon.csv", "  to: Mobil\n  country: Land\n")
    c = planner.campaign
    names = [r.vars["vorname"] for r in iter_recipients(c.doc, c.source)]
    assert names[:5] == ["Jürgen", "Françoise", "Sören", "Zoë", "Renée"]


def test_validate_says_how_the_file_was_read(tmp_path: Path, campaign_cli):
    plan(tmp_path, "excel-unicode-title.txt", "  to: Mobile\n  country: Country\n")
    result = campaign_cli("validate", str(tmp_path / "c.yaml"))
    assert result.returncode == 0, result.stdout
    assert "read as UTF-16, tab-delimited, header on row 3" in result.stdout
