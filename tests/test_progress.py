"""What `send` and `track` show while they work, and colour: a rich bar on a terminal (drawn
here on a forced-terminal rich console), plain lines in logs (CliRunner has no terminal), the
default pace in the summary, the 401 hint, and NO_COLOR / --color / --no-color."""

from __future__ import annotations

import io
import re
import subprocess
import textwrap
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from runner.cli import console as colour
from runner.cli import main
from runner.cli.progress import SendProgress, TrackProgress, terminal_console
from runner.run.send import RunStats
from runner.run.track import TrackStats

pytest_plugins = ["emulator_fixtures"]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def has_colour(text: str) -> bool:
    """Whether any style sets a foreground colour (bold alone is not colour, as NO_COLOR says)."""
    return any(
        code.isdigit() and (30 <= int(code) <= 38 or 90 <= int(code) <= 97)
        for params in SGR.findall(text)
        for code in params.split(";")
    )


def terminal(*, color: bool = True) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(
        file=out, force_terminal=True, width=150, no_color=not color, highlight=False
    ), out


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_send_draws_a_rich_bar_with_every_counter():
    console, out = terminal()
    clock = Clock()
    progress = SendProgress(200, console=console, clock=clock)
    stats = RunStats(started=clock.now)
    progress.tick(stats)
    assert "0/200" in out.getvalue() and "-/s" in out.getvalue()  # no rate from 0 s of run
    clock.now += 2
    stats.accepted, stats.failed, stats.retrying = 48, 2, 3
    progress.tick(stats)
    frame = ANSI.sub("", out.getvalue().split("\r")[-1])
    assert "━" in frame  # rich's bar, not a hand-drawn line
    assert "50/200" in frame and "accepted 48" in frame and "failed 2" in frame
    assert "retrying 3" in frame and "25.0/s" in frame and "ETA 6 s" in frame
    assert has_colour(out.getvalue())  # coloured counters on a colour terminal
    progress.finish(stats)
    last = ANSI.sub("", out.getvalue()).rstrip().split("\r")[-1]
    assert last.startswith("sent") and "50/200" in last and "ETA" not in last


def test_a_bar_without_colour_when_colour_is_off():
    console, out = terminal(color=False)
    progress = SendProgress(10, console=console)
    stats = RunStats(accepted=4, failed=1)
    progress.tick(stats)
    progress.finish(stats)
    assert "━" in out.getvalue() and "accepted 4" in out.getvalue()
    assert not has_colour(out.getvalue())


def test_in_logs_send_prints_a_plain_line_now_and_then(capsys):
    progress = SendProgress(1000, console=None)  # every max(100, 1000 // 20) = 100 requests
    stats = RunStats()
    for done in range(0, 1001, 10):
        stats.accepted = done
        progress.tick(stats)
    progress.finish(stats)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and all("\r" not in ln and "\x1b" not in ln for ln in lines)
    assert lines[0].startswith("100/1,000  accepted 100  failed 0  retrying 0")


def test_waiting_is_one_label_on_a_terminal_and_one_line_a_minute_in_logs(capsys):
    clock = Clock()
    plain = SendProgress(5, console=None, clock=clock)
    for _ in range(150):  # send --wait with a message due every second for 150 s
        plain.waiting(1.0)
        clock.now += 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(ln.startswith("waiting 1 s (until ") for ln in lines)

    console, out = terminal()
    bar = SendProgress(5, console=console, clock=clock)
    bar.tick(RunStats(accepted=2))
    bar.waiting(90)
    frame = ANSI.sub("", out.getvalue().split("\r")[-1])
    assert frame.startswith("waiting 90 s (until ") and "2/5" in frame
    assert "\n" not in out.getvalue().rstrip("\n")  # redrawn in place, not one line per wait


def test_track_draws_a_bar_on_a_terminal_and_lines_in_logs(capsys):
    stats = TrackStats(total=40)
    stats.open = 10
    console, out = terminal()
    bar = TrackProgress(console=console)
    bar.tick(stats)
    bar.finish()
    frame = ANSI.sub("", out.getvalue())
    assert "━" in frame and "30/40 final  in flight 10" in frame
    TrackProgress(console=None).tick(stats)
    assert capsys.readouterr().err.startswith("30/40 final  in flight 10  polls 0")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_rich_console_only_for_a_terminal_and_without_colour_under_no_color(monkeypatch):
    assert terminal_console(io.StringIO()) is None  # a log file or a pipe: plain lines
    monkeypatch.delenv("NO_COLOR", raising=False)
    console = terminal_console(FakeTty())
    assert console is not None and not console.no_color
    monkeypatch.setenv("NO_COLOR", "1")
    console = terminal_console(FakeTty())
    assert console is not None and console.no_color


def test_colour_follows_the_terminal_unless_no_color_or_a_flag_decides(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour.use_color(FakeTty()) and not colour.use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour.use_color(FakeTty())
    with click.Context(main, color=True):  # --color
        assert colour.use_color(io.StringIO())
    monkeypatch.delenv("NO_COLOR")
    with click.Context(main, color=False):  # --no-color
        assert not colour.use_color(FakeTty())
    assert colour.resolve(None) is None and colour.resolve(False) is False


@pytest.fixture
def invalid_campaign(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nid: bad\nrecipients: []\nsteps: []\n", encoding="utf-8")
    return path


def _validate(args: list[str], env: dict[str, str | None]) -> str:
    # color=True: CliRunner then keeps styles unless the command itself turns colour off.
    result = CliRunner().invoke(main, args, env=env, color=True)
    assert result.exit_code == 1
    return result.output


def test_no_color_and_the_color_flags_decide_colour_everywhere(invalid_campaign):
    path = str(invalid_campaign)
    coloured = _validate(["--color", "validate", path], {"NO_COLOR": None})
    assert "\x1b[" in coloured and "error" in coloured
    for args, env in (
        (["validate", path], {"NO_COLOR": "1"}),
        (["--no-color", "validate", path], {"NO_COLOR": None}),
    ):
        plain = _validate(args, env)
        assert "\x1b[" not in plain and "error: " in plain and "FAIL " in plain
    # --color wins over NO_COLOR (the user asked on this very command line)
    assert "\x1b[" in _validate(["--color", "validate", path], {"NO_COLOR": "1"})


def _campaign(
    folder: Path, steps: str = 'steps:\n  - id: hello\n    text: "Hi"\n', send: str = ""
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "c.yaml"
    path.write_text(
        'version: 1\nid: pace\nsender: {from_number: "+15551234567"}\n'
        'recipients:\n  - to: "+15553000001"\n  - to: "+15553000002"\n' + steps + send,
        encoding="utf-8",
    )
    return path


def _send(
    emulator, campaign: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess:
    env = {"BLOOIO_BASE_URL": emulator.base_url, "BLOOIO_API_KEY": key or emulator.api_key}
    result = CliRunner().invoke(
        main,
        ["send", str(campaign), "--yes", "--state", str(campaign.parent / "st"), *args],
        env=env,
    )
    if isinstance(result.exception, Exception):
        raise result.exception
    return subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr)


def test_the_summary_names_the_default_pace_and_how_to_change_it(emulator, tmp_path):
    r = _send(emulator, _campaign(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert "rate 10/s (default; set send.rate_per_second or --rate)" in r.stderr
    # no terminal: no bar and no escape codes, and a 2-request run prints no progress line
    assert "\x1b" not in r.stderr and "\r" not in r.stderr and "━" not in r.stderr
    r = _send(emulator, _campaign(tmp_path / "b", send="send: {rate_per_second: 4}\n"))
    assert "rate 4/s  " in r.stderr and "default" not in r.stderr
    r = _send(emulator, _campaign(tmp_path / "c"), "--rate", "unlimited")
    assert "rate unlimited  " in r.stderr
    for bad in ("0", "-2"):
        r = _send(emulator, _campaign(tmp_path / "d"), "--rate", bad)
        assert r.returncode == 1 and "positive number of requests per second" in r.stderr
    r = _send(emulator, _campaign(tmp_path / "e"), "--rate", "fast")
    assert r.returncode == 2 and "'fast' is not a number of requests per second" in r.stderr


def test_a_refused_key_names_the_variable_and_the_url(emulator, tmp_path):
    r = _send(emulator, _campaign(tmp_path / "a"), key="bl_wrong_key")
    assert r.returncode == 3
    assert "refused (401)" in r.stdout + r.stderr
    assert f"hint: check BLOOIO_API_KEY: the API at {emulator.base_url} refused it" in r.stderr
    assert "bl_wrong_key" not in r.stdout + r.stderr


def test_send_wait_says_it_waits_once_a_minute_in_logs(emulator, tmp_path):
    steps = textwrap.dedent("""\
        steps:
          - id: one
            text: "One"
          - id: two
            delay: 1s
            text: "Two"
          - id: three
            delay: 1s
            text: "Three"
        """)
    started = time.monotonic()
    r = _send(emulator, _campaign(tmp_path / "w", steps=steps), "--wait", "--rate", "unlimited")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started >= 2  # it did wait twice, about a second each time
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("waiting ")]) == 1
    assert emulator.stats()["messages_accepted"] == 6


def test_track_reach_and_optouts_name_the_variable_and_the_url_on_a_refused_key(emulator, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "optouts.txt").write_text("", encoding="utf-8")
    campaign = _campaign(tmp_path / "a", send="suppress: [optouts.txt]\n")
    assert _send(emulator, campaign).returncode == 0
    env = {"BLOOIO_BASE_URL": emulator.base_url, "BLOOIO_API_KEY": "bl_wrong_key"}
    state = ["--state", str(campaign.parent / "st")]
    for args in (
        ["track", str(campaign), *state],
        ["reach", str(campaign), *state],
        ["optouts", str(campaign), *state],
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 3, (args, result.output)
        assert "BLOOIO_API_KEY" in result.stderr and emulator.base_url in result.stderr, args
        assert "bl_wrong_key" not in result.output


def test_closing_a_bar_midway_shows_the_cursor_again():
    console, out = terminal()
    progress = SendProgress(10, console=console)
    progress.tick(RunStats(accepted=3))
    assert "\x1b[?25l" in out.getvalue() and "\x1b[?25h" not in out.getvalue()  # hidden
    progress.close()
    progress.close()  # idempotent
    assert out.getvalue().endswith("\x1b[?25h")
