"""The schemas ship inside the wheel, and both a wheel install and an editable install find them.

A hatchling `force-include` of a missing path is skipped silently and an editable install may
not see force-included files, so both are checked for real (offline: no build isolation, the
venv borrows this environment's packages).
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_editable_or_source_install_finds_the_schema():
    from runner.campaign.schema import load_schema, schema_path

    path = schema_path()
    assert path.name == "campaign.schema.json" and path.is_file()
    assert load_schema()["$schema"].endswith("2020-12/schema")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # The build backend comes with the test extra; without it this is a set-up error to
    # report, not a reason to skip the check.
    assert importlib.util.find_spec("hatchling"), "install the test extra: pip install -e '.[test]'"
    out = tmp_path_factory.mktemp("wheel")
    # The backend's PEP 517 hook in-process: what `pip wheel --no-build-isolation` calls, less
    # two interpreters' start-up (pip's and the hook runner's), ~0.7 s of CPU.
    import hatchling.build

    with contextlib.chdir(ROOT):
        name = hatchling.build.build_wheel(str(out))
    (whl,) = out.glob("*.whl")
    assert whl.name == name
    return whl


def test_wheel_carries_the_schemas(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "runner/schemas/campaign.schema.json" in names
    assert "runner/cli/validate.py" in names


def _dependency_paths() -> list[str]:
    """Where this interpreter finds the runner's dependencies, offline: its own path, less the
    checkout (ROOT and its folders such as tests/), so only the wheel can answer for `runner`.

    Whether the project is installed in a venv, in the user site or beside a system Python,
    these are the folders that hold httpx, click and the rest. Added by a .pth file they are
    plain folders: their own .pth files (this checkout's editable install) are not run.
    """
    out: list[str] = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.is_dir() and path != ROOT and path.parent != ROOT and str(path) not in out:
            out.append(str(path))
    return out


def test_wheel_install_validates_the_examples(wheel: Path, tmp_path: Path):
    target = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # A fresh venv of the same Python (no system site packages: the base interpreter need not
    # have the dependencies) that sees the installed wheel first, then this environment's
    # dependencies.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    purelib = Path(
        sysconfig.get_path(
            "purelib", scheme="venv", vars={"base": str(env_dir), "platbase": str(env_dir)}
        )
    )
    (purelib / "00-wheel.pth").write_text(f"{target}\n", encoding="utf-8")
    (purelib / "50-deps.pth").write_text("\n".join(_dependency_paths()) + "\n", encoding="utf-8")
    py = env_dir / "bin" / "python"
    code = (
        "import sys, runner, runner.campaign.schema as s; print(runner.__file__); "
        "print(s.schema_path()); from runner.cli import main; "
        "main(['validate', sys.argv[1]], prog_name='campaign')"
    )
    # -I: no PYTHONPATH, no user site, no current folder; the checkout is reachable only
    # through the wheel.
    proc = subprocess.run(
        [str(py), "-I", "-c", code, str(ROOT / "campaigns")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    package, schema = proc.stdout.splitlines()[:2]
    assert Path(package) == target / "runner" / "__init__.py"
    assert Path(schema) == target / "runner" / "schemas" / "campaign.schema.json"
    checked = [line for line in proc.stdout.splitlines()[2:] if line.startswith("ok ")]
    assert sorted(Path(line.split()[1].rstrip(":")).name for line in checked) == sorted(
        p.name for p in (ROOT / "campaigns").glob("*.yaml")
    )
