"""Compile once for every xdist worker (a pytest plugin, loaded by conftest.py).

Each worker collects the whole suite: on a fresh checkout each one rewrote the asserts of the
~100 test modules and compiled runner/ on its own, ~4 s of CPU apiece for the same bytes. When
the whole suite runs under xdist, the controller writes those caches first, on as many processes
as there will be workers, before it starts them: the workers then read the caches (pytest reads
a rewritten module's cache, checked against its source, like Python's own pyc).

pytest has no public call to rewrite a module without importing it, so this uses two functions
of ``_pytest.assertion.rewrite``; if a pytest release moves them, the warm-up is skipped and the
workers compile as before (slower, not wrong).
"""

from __future__ import annotations

import compileall
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from _pytest.assertion import assertstate_key
from _pytest.assertion import rewrite as _pytest_rewrite

_PRIVATE = ("PYC_TAIL", "get_cache_dir", "_read_pyc", "_rewrite_test", "_write_pyc")
TESTS = Path(__file__).resolve().parent
RUNNER = TESTS.parent / "runner"
_config: pytest.Config | None = None  # for the forked compilers (a Config does not pickle)


def _whole_suite(config: pytest.Config) -> bool:
    """Only a run of the whole tests/ folder (the README's `pytest`) is worth the warm-up."""
    args = [Path(a.split("::")[0]).resolve() for a in config.args]
    return bool(args) and all(a == TESTS for a in args)


def _rewrite(config: pytest.Config | None, path: Path) -> None:
    assert config is not None
    cache_dir = _pytest_rewrite.get_cache_dir(path)
    pyc = cache_dir / (path.name[:-3] + _pytest_rewrite.PYC_TAIL)
    if _pytest_rewrite._read_pyc(path, pyc, lambda _message: None) is not None:
        return  # up to date (a rerun)
    cache_dir.mkdir(parents=True, exist_ok=True)
    source_hash, code = _pytest_rewrite._rewrite_test(path, config)
    _pytest_rewrite._write_pyc(config.stash[assertstate_key], code, source_hash, pyc)


def _compile(path: Path) -> None:
    try:
        if path.parent == TESTS:
            _rewrite(_config, path)
        else:
            compileall.compile_file(str(path), quiet=2)
    except Exception:  # a module that fails here fails the same way in its worker, said there
        pass


def pytest_configure(config: pytest.Config) -> None:
    workers = config.getoption("numprocesses", None)
    if (
        os.environ.get("PYTEST_XDIST_WORKER")
        or not isinstance(workers, int)
        or workers < 2
        or sys.dont_write_bytecode
        or config.getoption("assertmode") != "rewrite"
        or not _whole_suite(config)
    ):
        return
    if not all(hasattr(_pytest_rewrite, name) for name in _PRIVATE):
        return
    # The biggest files first, so the processes finish together.
    paths = sorted(
        [*TESTS.glob("test_*.py"), *RUNNER.rglob("*.py")],
        key=lambda p: p.stat().st_size,
        reverse=True,
    )
    global _config
    _config = config  # fork: the children inherit the configured pytest (its assertion settings)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_compile, paths, chunksize=4))
    finally:
        _config = None
