"""The report tells the run's state (issue 16.7), the HTML reads right (issue 17.5), and a rate
is shown only when it means something, never above the limit the run was held to (17.2)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runner.report.build import run_rate
from runner.report.data import build_report, render
from runner.report.model import Histogram, Latency
from runner.report.reporters.html import donut_svg, histogram_svg
from runner.store.journal import (
    ACCEPTED,
    EXPIRED,
    FAILED,
    SCHEDULED,
    Attempt,
    Journal,
    Mark,
    Outcome,
)

CHATS = [f"+1555810{i:04d}" for i in range(4)]


def journal_with(
    tmp_path: Path,
    statuses: list[str],
    *,
    stop: str | None = None,
    counts: dict | None = None,
    finished: bool = True,
) -> Journal:
    """A journal of one run whose `hello` requests ended in ``statuses`` (one per chat)."""
    j = Journal(tmp_path / "j.sqlite")
    run_id = j.start_run(
        "c",
        1,
        {"rate_per_second": 5},
        {
            "requests": len(statuses),
            "messages": len(statuses),
            "steps": {"hello": {"requests": len(statuses), "messages": len(statuses)}},
        },
    )
    ops = []
    for i, status in enumerate(statuses):
        if status in (SCHEDULED, EXPIRED):
            ops.append(
                Mark(
                    f"k{i}",
                    CHATS[i],
                    "hello",
                    1,
                    i,
                    0,
                    1,
                    status=status,
                    error_code=None,
                    error_message=None,
                    content_hash="h",
                    run_id=run_id,
                    now=1.0,
                )
            )
            continue
        ops.append(Attempt(f"k{i}", CHATS[i], "hello", 1, i, 0, 1, "h", run_id, 1.0))
        ops.append(
            Outcome(
                f"k{i}",
                status,
                message_id=f"m{i}" if status == ACCEPTED else None,
                error_code="bad" if status == FAILED else None,
                now=2.0,
            )
        )
    j.apply(ops)
    if finished:
        j.finish_run(
            run_id,
            counts or {"http_requests": 2, "duration_s": 0.007, "next_due": 1_900_000_000.0},
            0,
            stop,
        )
    return j


@pytest.mark.parametrize(
    "statuses,stop,finished,state,pill",
    [
        ([ACCEPTED] * 4, None, True, "finished", "finished"),
        (
            [ACCEPTED, ACCEPTED, SCHEDULED, SCHEDULED],
            None,
            True,
            "waiting",
            "waiting on its schedule; next due 2030-03-17T17:46:40Z",
        ),
        ([ACCEPTED, ACCEPTED, ACCEPTED, FAILED], None, True, "failed", "finished with failures"),
        ([ACCEPTED, ACCEPTED, ACCEPTED, EXPIRED], None, True, "failed", "finished with failures"),
        ([ACCEPTED, ACCEPTED], "interrupted", True, "stopped", "stopped early"),
        ([ACCEPTED], None, False, "stopped", "stopped early"),
    ],
)
def test_the_state_is_told_in_json_and_html(tmp_path, statuses, stop, finished, state, pill):
    with journal_with(tmp_path, statuses, stop=stop, finished=finished) as j:
        rep = build_report(j)
    assert rep["state"]["name"] == state
    page = render(rep, "html")
    shown = re.search(r'<span class="pill (\w+)">([^<]*)</span>', page)
    assert shown is not None and shown.group(2).startswith(pill)
    # A drip with nothing failed is never painted as a failure.
    assert (shown.group(1) == "bad") == (state == "failed")
    if state == "waiting":
        assert "everything due was sent; the rest waits on its schedule" in render(rep, "text")
    line = re.search(r'<p class="state">([^<]*)</p>', page).group(1)
    for word in ("scheduled", "expired", "recipients suppressed"):
        assert word in line


def test_the_untracked_hint_names_the_campaign_file(tmp_path):
    with journal_with(tmp_path, [ACCEPTED] * 4) as j:
        rep = build_report(j)
    page = render(rep, "html", file="campaigns/my spring.yaml")
    assert "campaign track &#x27;campaigns/my spring.yaml&#x27;" in page
    assert "track FILE" not in page
    assert "campaign track 'campaigns/my spring.yaml'" in render(
        rep, "text", file="campaigns/my spring.yaml"
    )
    assert "`campaign track c.yaml`" in render(rep, "markdown", file="c.yaml")


class _Table(HTMLParser):
    """Each table's rows as lists of (tag, class) per cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("th", "td"):
            self.tables[-1][-1].append((tag, dict(attrs).get("class") or ""))


def test_failure_headers_line_up_with_their_cells(tmp_path):
    with journal_with(tmp_path, [ACCEPTED, FAILED, FAILED, ACCEPTED]) as j:
        rep = build_report(j)
    parser = _Table()
    parser.feed(render(rep, "html"))
    failures = parser.tables[-1]
    head, row = failures[0], failures[1]
    assert len(head) == len(row) == 4
    # Text columns (error, steps, e.g.) are left-aligned in the header as in the cells.
    for (_, head_cls), (_, cell_cls) in zip(head[2:], row[2:], strict=True):
        assert head_cls == cell_cls == "t"


def test_an_empty_donut_says_no_data():
    empty = donut_svg({"imessage": 0, "sms": 0, "rcs": 0, "unknown": 0, "pending": 0})
    assert "no data yet" in empty and "iMessage</text>" not in empty and ">-<" not in empty


def test_close_percentiles_get_labels_that_do_not_overlap():
    svg = histogram_svg(Latency(7, 1.50, 1.52, 2.5, Histogram(1.0, (1, 4, 2))))
    labels = re.findall(r'<text x="([\d.]+)" y="([\d.]+)"[^>]*>(p\d\d [^<]*)</text>', svg)
    assert [t for _, _, t in labels] == ["p50 1.50 s", "p95 1.52 s"]
    (x1, y1, t1), (x2, y2, _) = labels
    # Same row: the second starts after the first ends (11 px type is under 7 px a glyph).
    assert y1 == y2 and float(x2) >= float(x1) + 7 * len(t1)


@pytest.mark.parametrize(
    "sent,duration,rate",
    [
        (2, 0.007, None),  # two requests: no rate to speak of
        (19, 10.0, None),
        (30, 0.5, None),
        (100, 19.9, 4.97),  # --rate 5: 99 intervals in 19.9 s, never above 5/s
        (21, 4.0, 5.0),
    ],
)
def test_a_rate_is_shown_only_when_it_means_something(sent, duration, rate):
    assert run_rate(sent, duration) == rate


def test_a_short_run_prints_no_rate(tmp_path):
    with journal_with(tmp_path, [ACCEPTED, ACCEPTED]) as j:
        rep = build_report(j)
    assert rep["run"]["achieved_rate"] is None and rep["run"]["rate_limit"] == 5
    assert "requests/s" not in render(rep, "text") and "requests/s" not in render(rep, "markdown")
    with journal_with(
        tmp_path / "b", [ACCEPTED] * 4, counts={"http_requests": 101, "duration_s": 20.0}
    ) as j:
        text = render(build_report(j), "text")
    assert "101 HTTP requests in 20.0 s, 5.0 requests/s (limited to 5/s)" in text
