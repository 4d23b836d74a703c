"""Recipients from an .xlsx workbook: streamed (read-only), first sheet or `sheet:`, problems
located as `file.xlsx[Sheet]:row`, cells as Excel shows them (no 15551234567.0, dates ISO)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook

from runner.audience.xlsx import cell_text
from runner.campaign.load import load_campaign
from runner.errors import CampaignError
from runner.planning.planner import Planner, dump_line, iter_plan

ROOT = Path(__file__).resolve().parent.parent


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def campaign(
    tmp_path: Path, extra: str = "", text: str = "Hi {{ first_name }}, since {{ joined }}"
) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nid: xlsx\nrecipients:\n  file: audience.xlsx\n  to: Mobile Phone\n"
        f"{extra}steps:\n  - id: hello\n    text: '{text}'\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    "value,text",
    [
        (15551234567, "15551234567"),
        (15551234567.0, "15551234567"),
        (1.5551234567e10, "15551234567"),
        (19.99, "19.99"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (True, "TRUE"),
        (None, ""),
        (dt.datetime(2026, 3, 1), "2026-03-01"),
        (dt.datetime(2026, 3, 1, 9, 30), "2026-03-01T09:30:00"),
        (dt.date(2026, 3, 1), "2026-03-01"),
        (dt.time(9, 30), "09:30:00"),
        ("  Ada ", "Ada"),
    ],
)
def test_cell_text_is_what_excel_shows(value: object, text: str):
    assert cell_text(value) == text


def test_numeric_phone_cells_and_dates(tmp_path: Path):
    workbook(
        tmp_path / "audience.xlsx",
        {
            "Sheet1": [
                ["First Name", "Mobile Phone", "Joined"],
                ["Ada", 12125550101, dt.datetime(2026, 3, 1)],
                ["Ben", 1.3125550102e10, dt.date(2025, 12, 24)],
            ]
        },
    )
    reqs = list(iter_plan(load_campaign(campaign(tmp_path, "  default_region: US\n"))))
    assert [(r.recipient, r.body["text"]) for r in reqs] == [
        ("+12125550101", "Hi Ada, since 2026-03-01"),
        ("+13125550102", "Hi Ben, since 2025-12-24"),
    ]


def test_problems_are_located_at_sheet_and_row(tmp_path: Path):
    rows: list[list] = [["First Name", "Mobile Phone", "Joined"]]
    rows += [[f"P{i}", f"+1212555{i:04d}", "x"] for i in range(100, 135)]
    rows.append(["Bad", "555123", "x"])  # row 37
    workbook(tmp_path / "audience.xlsx", {"Sheet1": rows})
    planner = Planner(load_campaign(campaign(tmp_path, "  default_region: US\n")))
    planner.run()
    [p] = planner.problems
    assert (
        p.file == f"{tmp_path / 'audience.xlsx'}[Sheet1]"
        and p.line == 37
        and "too short" in p.message
    )
    assert p.location().endswith("audience.xlsx[Sheet1]:37")


def test_sheet_option_and_missing_sheet(tmp_path: Path):
    workbook(
        tmp_path / "audience.xlsx",
        {
            "Notes": [["nothing here"]],
            "Customers": [
                ["First Name", "Mobile Phone", "Joined"],
                ["Ada", "+12125550101", "2026"],
            ],
        },
    )
    [req] = list(iter_plan(load_campaign(campaign(tmp_path, "  sheet: Customers\n"))))
    assert req.body["text"] == "Hi Ada, since 2026"
    planner = Planner(load_campaign(campaign(tmp_path, "  sheet: Clients\n")))
    with pytest.raises(CampaignError) as info:
        planner.run()
    [p] = info.value.problems
    assert "no sheet 'Clients'" in p.message and "Customers" in (p.hint or "")


def test_the_first_sheet_by_default_and_empty_rows_skipped(tmp_path: Path):
    workbook(
        tmp_path / "audience.xlsx",
        {
            "Export": [
                [],
                ["First Name", "Mobile Phone", "Joined"],
                ["Ada", "+12125550101", "x"],
                [None, None, None],
                ["Ben", "+12125550102", "y"],
            ]
        },
    )
    planner = Planner(load_campaign(campaign(tmp_path)))
    planner.run()
    assert (
        planner.problems == []
        and planner.summary.recipients == 2
        and planner.summary.empty_rows == 1
    )


def test_not_a_workbook_is_a_located_error(tmp_path: Path):
    (tmp_path / "audience.xlsx").write_bytes(b"First Name,Mobile Phone\n")
    planner = Planner(load_campaign(campaign(tmp_path)))
    with pytest.raises(CampaignError) as info:
        planner.run()
    assert "cannot read the workbook" in info.value.problems[0].message


def test_the_example_export_as_xlsx_plans_exactly_like_its_csv(tmp_path: Path):
    """campaigns/crm-export-welcome.yaml with its CSV saved as a workbook: same requests."""
    folder = tmp_path / "c"
    shutil.copytree(ROOT / "campaigns", folder)
    source = folder / "crm-export-welcome.yaml"
    expected = [dump_line(r) for r in list(iter_plan(load_campaign(source)))]
    with open(folder / "data" / "crm-export.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    workbook(folder / "data" / "crm-export.xlsx", {"Sheet1": rows})
    source.write_text(
        source.read_text(encoding="utf-8").replace("data/crm-export.csv", "data/crm-export.xlsx"),
        encoding="utf-8",
    )
    assert [dump_line(r) for r in list(iter_plan(load_campaign(source)))] == expected


def test_a_missing_to_column_is_located_at_the_header_row(tmp_path: Path):
    workbook(
        tmp_path / "audience.xlsx",
        {"Sheet1": [[], [], ["First Name", "Phone"], ["Ada", "+12125550101"]]},
    )
    planner = Planner(load_campaign(campaign(tmp_path)))
    with pytest.raises(CampaignError) as info:
        planner.run()
    [p] = info.value.problems
    assert p.line == 3 and "no column 'Mobile Phone'" in p.message and p.file.endswith("[Sheet1]")
