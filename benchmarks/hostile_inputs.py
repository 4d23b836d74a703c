"""Peak memory and time of each hostile input of issue 22, each in a fresh interpreter.

Every case must end in a located refusal (or a harmless result) well under 300 MB. Prints one
line a case: what it is, how it ended, peak RSS (``resource.getrusage``, the child's own
interpreter included, ~20-40 MB of it) and seconds.

    python benchmarks/hostile_inputs.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

LIMIT_MB = 300

SETUP = {
    "4 steps x 2,000 variants": """
        body = "".join(f"  - id: s{s}\\n    variants:\\n" + "".join(
            f"      - {{id: v{v}, weight: 1, text: t}}\\n" for v in range(2000)) for s in range(4))
        path = TMP / "c.yaml"
        path.write_text('version: 1\\nid: many\\nrecipients: [{to: "+15553000001"}]\\nsteps:\\n' + body)
        from runner.planning.validate import validate_run
        r = validate_run([path]).results[0]
        OUT = r.errors[0].message if r.errors else "accepted"
    """,
    "template replace: 1.6 G characters": """
        path = TMP / "c.yaml"
        path.write_text('version: 1\\nid: bomb\\nrecipients: [{to: "+15553000001"}]\\n'
                        "steps: [{id: a, text: \\"{{ ('a'*40000)|replace('a','a'*40000)|length }}\\"}]\\n")
        from runner.planning.validate import validate_run
        r = validate_run([path]).results[0]
        OUT = r.errors[0].message[-90:]
    """,
    "API answer '[' * 100000": """
        from runner.http.classify import read_response
        from runner.contract import SEND_MESSAGE
        OUT = read_response(200, b"[" * 100000 + b"]" * 100000, {}, 0, SEND_MESSAGE).message
    """,
    "XLSX shared strings: 200 MB in ~200 KB": """
        import zipfile
        from openpyxl import Workbook
        wb = Workbook(); wb.active.append(["to"]); wb.save(TMP / "a.xlsx")
        with zipfile.ZipFile(TMP / "a.xlsx") as src, zipfile.ZipFile(TMP / "b.xlsx", "w", zipfile.ZIP_DEFLATED) as dst:
            for i in src.infolist():
                dst.writestr(i.filename, src.read(i.filename))
            with dst.open("xl/sharedStrings.xml", "w") as fh:
                fh.write(b"<sst><si><t>")
                for _ in range(200):
                    fh.write(b"a" * 1_000_000)
                fh.write(b"</t></si></sst>")
        from runner.audience.xlsx import read_rows
        from runner.errors import CampaignError
        try:
            list(read_rows(str(TMP / "b.xlsx"))[1]); OUT = "read"
        except CampaignError as err:
            OUT = err.problems[0].message + f" (file {(TMP / 'b.xlsx').stat().st_size:,} bytes)"
    """,
    "XLSX 6 MB of empty cells, dimension A1:XFD1048576": """
        import zipfile
        from openpyxl import Workbook
        wb = Workbook(); wb.active.append(["to"]); wb.save(TMP / "a.xlsx")
        cells = "".join(f'<row r="{r}">' + "".join(f'<c r="{c}{r}"/>' for c in ("A", "B", "C", "D", "E"))
                        + "</row>" for r in range(2, 60000))
        sheet = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                 '<dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr">'
                 '<is><t>to</t></is></c></row>' + cells + "</sheetData></worksheet>")
        with zipfile.ZipFile(TMP / "a.xlsx") as src, zipfile.ZipFile(TMP / "b.xlsx", "w", zipfile.ZIP_DEFLATED) as dst:
            for i in src.infolist():
                data = sheet.encode() if i.filename == "xl/worksheets/sheet1.xml" else src.read(i.filename)
                dst.writestr(i.filename, data)
        from runner.audience.xlsx import read_rows
        n = sum(1 for _ in read_rows(str(TMP / "b.xlsx"))[1])
        OUT = f"{n:,} rows read ({len(sheet):,} bytes of sheet XML)"
    """,
    "XLSX 6 MB of cells in column XFD (16,384 wide rows)": """
        import zipfile
        from openpyxl import Workbook
        wb = Workbook(); wb.active.append(["to"]); wb.save(TMP / "a.xlsx")
        cells = "".join(f'<row r="{r}"><c r="XFD{r}"/></row>' for r in range(2, 200000))
        sheet = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                 '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>to</t></is></c></row>'
                 + cells + "</sheetData></worksheet>")
        with zipfile.ZipFile(TMP / "a.xlsx") as src, zipfile.ZipFile(TMP / "b.xlsx", "w", zipfile.ZIP_DEFLATED) as dst:
            for i in src.infolist():
                data = sheet.encode() if i.filename == "xl/worksheets/sheet1.xml" else src.read(i.filename)
                dst.writestr(i.filename, data)
        from runner.audience.xlsx import read_rows
        from runner.errors import CampaignError
        try:
            n = sum(1 for _ in read_rows(str(TMP / "b.xlsx"))[1]); OUT = f"{n:,} rows read"
        except CampaignError as err:
            OUT = f"{err.problems[0].location()}: {err.problems[0].message} ({len(sheet):,} bytes of XML)"
    """,
}


def run(name: str, code: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        program = (
            f"from pathlib import Path\nTMP = Path({tmp!r})\n"
            + textwrap.dedent(code)
            + "\nimport resource\nprint(OUT)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        )
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=600
        )
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"{name}: FAILED\n{proc.stderr}")
        return
    *out, peak = proc.stdout.strip().splitlines()
    mb = int(peak) / 1024
    mark = "ok" if mb < LIMIT_MB else "OVER"
    print(f"{name:<52} {mb:6.0f} MB {seconds:6.2f} s  {mark}  {' '.join(out)[:110]}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    for case, setup in SETUP.items():
        run(case, setup)
