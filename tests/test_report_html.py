"""The HTML report: self-contained (nothing fetched, nothing run), masked, charts as inline SVG,
and really rendered by a headless browser when one is installed.

Set REPORT_SCREENSHOT_OUT=docs/report-screenshot.png to keep the browser's picture (that is how
docs/reports.md's screenshot is made).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from chromium import CHROMIUM, SKIP_REASON, png_pixels, screenshot
from report_factory import tiny_report

from runner.emulator import EmulatorConfig, ManualClock, run_in_thread
from runner.report.model import Histogram, Latency
from runner.report.reporters.html import donut_svg, funnel_svg, histogram_svg
from runner.report.reporters.html import render as render_html

KEY = "bl_html_SECRET_4242"


def _campaign(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"+1555600{i:04d}" for i in range(240)] + ["grp_missing1", "grp_missing2"]
    (folder / "people.csv").write_text("phone\n" + "\n".join(rows) + "\n")
    path = folder / "spring.yaml"
    path.write_text("""\
version: 1
id: spring-sale
sender: {from_number: "+15551234567"}
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi {{ recipient }}, 20% off this week"
    effect: confetti
  - id: picks
    text: ["Jackets", "Shoes"]
  - id: last-call
    text: "Last day!"
send: {concurrency: 16}
""")
    return path


@pytest.fixture(scope="module")
def html_report(tmp_path_factory, campaign_cli) -> str:
    """A report of a real send + track through the CLI; the emulator's clock is moved so that
    deliveries spread over simulated minutes and a few are still in flight."""
    tmp = tmp_path_factory.mktemp("html")
    clock = ManualClock(1_780_000_000.0)
    config = EmulatorConfig(
        api_key=KEY,
        seed=21,
        clock=clock,
        p_delivery_failed=0.06,
        p_unreachable=0.03,
        share_imessage=0.62,
        share_sms=0.3,
        share_rcs=0.08,
        sent_after_ms=500,
        delivered_after_ms=2000,
        delivery_jitter_ms=40_000,
    )
    campaign = _campaign(tmp / "c")
    state = tmp / "state"
    with run_in_thread(config) as emu:
        env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}
        sent = campaign_cli(
            "send",
            str(campaign),
            "--yes",
            "--state",
            str(state),
            "--no-progress",
            "--rate",
            "unlimited",
            env=env,
        )
        assert sent.returncode == 1, sent.stderr  # the two unknown groups fail with 404
        clock.advance(38)
        tracked = campaign_cli(
            "track",
            str(campaign),
            "--state",
            str(state),
            "--first-poll",
            "0",
            "--timeout",
            "2",
            "--no-progress",
            "--rate",
            "unlimited",
            env=env,
        )
        assert tracked.returncode == 3, tracked.stderr  # a few still in flight: on purpose
        out = tmp / "report.html"
        r = campaign_cli(
            "report",
            str(campaign),
            "--state",
            str(state),
            "--format",
            "html",
            "--out",
            str(out),
            env=env,
        )
        assert r.returncode == 0, r.stderr
    return out.read_text(encoding="utf-8")


def test_the_page_is_self_contained_and_masked(html_report):
    page = html_report
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    # Nothing to fetch: no src/href attributes and no url() in the CSS.
    assert not re.search(r"\b(src|href)\s*=", page, re.I)
    assert "url(" not in page and "@import" not in page
    assert "http://" not in page and "https://" not in page
    assert "+1555600" not in page and "+1555•••" in page
    assert KEY not in page
    # The four charts, drawn as inline SVG.
    for label in ("Delivery funnel", "Protocol split", "Messages per step", "Delivery times"):
        assert f'aria-label="{label}"' in page
    assert page.count("<svg") >= 4 and page.count("<rect") > 10


def test_charts_are_drawn_from_the_numbers():
    funnel = funnel_svg(
        {
            "planned": 100,
            "accepted": 80,
            "delivered": 50,
            "failed": 10,
            "cancelled": 0,
            "in_flight": 20,
            "never_accepted": 20,
            "untracked": 0,
        }
    )
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', funnel)]
    assert widths[0] > widths[1] > widths[2] > widths[3] > 0  # 100 > 80 > 60 > 50
    assert abs(widths[1] / widths[0] - 0.8) < 0.01 and abs(widths[3] / widths[0] - 0.5) < 0.01
    donut = donut_svg({"imessage": 3, "sms": 1, "rcs": 0, "unknown": 0, "pending": 0})
    assert "75.0%" in donut and donut.count("<path") == 2 and "RCS" not in donut
    assert "No delivered message" in histogram_svg(
        Latency(0, None, None, None, Histogram(None, ()))
    )
    hist = histogram_svg(Latency(7, 1.5, 2.5, 2.9, Histogram(1.0, (1, 4, 2))))
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', hist)]
    assert heights[1] == max(heights) and abs(heights[0] * 4 - heights[1]) < 0.5
    assert "p50 1.50 s" in hist and "p95 2.50 s" in hist


def test_text_is_escaped():
    page = render_html(
        tiny_report(campaign="<b>c</b>", step="<i>s</i>", error="<script>x</script>")
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>c</b>" not in page and "<i>s</i>" not in page


# -- a real browser -------------------------------------------------------------------------
@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_a_real_browser_renders_the_report(html_report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html_report, encoding="utf-8")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    proc = screenshot(page, shot, (1200, 1600), profile)
    assert shot.exists(), proc.stderr[-2000:]
    width, height, sample = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    colours = set(sample)
    # Not blank: the background, text and every chart colour (a blank page has one or two).
    assert len(colours) > 30
    palette = {bytes.fromhex(h) for h in ("1f9d55", "d64545", "0a84ff", "30b94d", "3b82f6")}
    assert palette <= colours, "the charts' colours should be on screen"
    out = os.environ.get("REPORT_SCREENSHOT_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out)
