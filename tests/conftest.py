"""Shared fixtures: the `campaign` CLI run in this process.

A subprocess pays the interpreter's and the runner's start-up (a third of a second, more on a
loaded machine) and adds nothing when the test is about what a command does. The end-to-end
files keep a few true subprocess tests for what only a process shows: SIGKILL, SIGINT, and what
reaches the terminal.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner


def _write_bytecode() -> None:
    """Python's default, even when the shell sets PYTHONDONTWRITEBYTECODE: every process of the
    run (xdist workers, the dozens of `campaign` subprocesses) compiles runner/ once into its
    __pycache__ (git ignores it) and the workers share pytest's rewritten test modules, instead
    of each process compiling from source: seconds of CPU per run. Called before this file
    imports runner."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the workers and subprocesses started here
    sys.dont_write_bytecode = False  # this process, for what it imports from now on


_write_bytecode()

from runner.cli import main  # noqa: E402  (after _write_bytecode)

# pg_cluster, pg_url: a throwaway PostgreSQL (tests/pg_cluster.py); bytecode_cache: compile once
# for all xdist workers (tests/bytecode_cache.py).
pytest_plugins = ["pg_cluster", "bytecode_cache"]

CampaignCLI = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def campaign_cli() -> CampaignCLI:
    """``campaign_cli(*args, env={...}, cwd=path)`` runs ``campaign *args`` in-process and returns
    what a subprocess would: returncode, stdout, stderr. An exception escaping the command (a
    traceback for a user) fails the test with that exception."""

    def run(
        *args: str, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        with contextlib.chdir(cwd or os.getcwd()):
            result = CliRunner().invoke(main, list(args), env=dict(env or {}), prog_name="campaign")
        if isinstance(result.exception, Exception):
            raise result.exception
        return subprocess.CompletedProcess(
            ["campaign", *args], result.exit_code, result.stdout, result.stderr
        )

    return run


@pytest.fixture
def ca() -> trustme.CA:
    """A private CA made for the test (what a corporate TLS-inspecting proxy would use)."""
    return trustme.CA()


@pytest.fixture
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    """A loopback server's TLS context, its certificate issued by ``ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(params=["folder", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state for the backend-independent tests, as ``--state`` takes it: a folder, or the URL
    of a fresh PostgreSQL database (with its password: no output may show it)."""
    if request.param == "folder":
        return str(tmp_path / "state")
    return request.getfixturevalue("pg_url")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the cores. A third of the suite waits (servers,
    subprocesses, PostgreSQL), so on this 2-core machine 3 workers finished in 57 s what 2 did
    in 76 s, for ~4 s more CPU (one more collection)."""
    return (os.cpu_count() or 1) + 1
