"""Validating a large .xlsx recipients file: time and peak memory.

Writes a workbook of --rows rows (openpyxl write-only mode: the generator itself stays small)
shaped like a CRM export (`First Name`, `Mobile Phone` as numbers and as formatted text, a date
column, an empty row every 1,000 rows) and a campaign with `default_region: US`, then runs
`campaign validate` on it in a fresh process and reports its wall time and peak RSS
(/usr/bin/time -f %M when present, else the child's ru_maxrss). Streaming (read-only mode)
keeps the peak flat as rows grow; compare --rows 10000 with --rows 100000.

    python benchmarks/xlsx_validate.py                 # 100,000 rows
    python benchmarks/xlsx_validate.py --rows 10000 --keep DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CAMPAIGN = """\
version: 1
id: xlsx-bench
sender:
  from_number: "+15551234571"
recipients:
  file: audience.xlsx
  to: Mobile Phone
  default_region: US
steps:
  - id: hello
    text: "Hi {{ first_name | default('there', true) }}, member since {{ joined }}"
"""


def write_workbook(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Sheet1")
    ws.append(["First Name", "Last Name", "Mobile Phone", "E-mail", "Joined"])
    start = dt.date(2020, 1, 1)
    for i in range(rows):
        if i % 1000 == 999:
            ws.append([None, None, None, None, None])
            continue
        # Valid fictional US numbers: area codes 200-999, 555-01xx; half numeric cells, half text.
        area, line = 200 + (i // 100) % 800, 100 + i % 100
        rest = i // 80000  # keeps the numbers distinct past 80,000 rows (exchange 555 vs 556..)
        phone = int(f"1{area}{555 + rest}0{line}") if i % 2 else f"({area}) {555 + rest}-0{line}"
        ws.append(
            [f"Name{i}", "Doe", phone, f"p{i}@example.com", start + dt.timedelta(days=i % 2000)]
        )
    wb.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="write the workbook and campaign here and keep them")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="xlsx-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        write_workbook(folder / "audience.xlsx", args.rows)
        (folder / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
        size = (folder / "audience.xlsx").stat().st_size
        print(
            f"workbook: {args.rows:,} rows, {size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s"
        )
        cmd = [sys.executable, "-m", "runner", "validate", str(folder / "campaign.yaml")]
        timer = shutil.which("time") if os.path.exists("/usr/bin/time") else None
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        t0 = time.perf_counter()
        if timer:
            proc = subprocess.run(
                ["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env
            )
            peak_kb = int(proc.stderr.strip().splitlines()[-1])
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        elapsed = time.perf_counter() - t0
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:])
        print(
            f"validate: exit {proc.returncode}, {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, "
            f"peak RSS {peak_kb / 1024:.0f} MB"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
