"""The README's `pytest` also holds the static checks CI relies on: `mypy` over runner/ (its
configuration in pyproject.toml: strict on planning, store, run and source) `ruff check` and `ruff format --check`.
A type error or a lint finding fails the suite with the tool's own report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_nothing_in_runner():
    # In-process (no second interpreter); the cache beside the checkout makes reruns ~1 s.
    out, err, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(ROOT / "runner"),
        ]
    )
    assert status == 0, out + err


def test_ruff_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "runner", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_would_change_nothing():
    # One layout for every file (pyproject's [tool.ruff]): a diff shows what changed, not style.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "--no-cache",
            "runner",
            "tests",
            "benchmarks",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (
        done.stdout + done.stderr + "\nrun: ruff format runner tests benchmarks"
    )


def test_the_package_says_it_is_typed():
    assert (ROOT / "runner" / "py.typed").is_file()
