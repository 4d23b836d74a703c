"""The schemas ship inside the wheel, and both a wheel install and an editable install find them.

A hatchling `force-include` of a missing path is skipped silently and an editable install may
not see force-included files, so both are checked for real (offline: no build isolation, the
venv borrows this environment's packages).
"""

from __future__ import annotations

import subprocess
import sys
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
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_carries_the_schemas(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "runner/schemas/campaign.schema.json" in names
    assert "runner/cli/validate.py" in names


def test_wheel_install_validates_the_examples(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    target = tmp_path / "site"
    # Installed into its own folder, first on the path, so the repo's editable install
    # cannot be what answers.
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import runner.campaign.schema as s; "
            "print(s.schema_path()); from runner.cli import main; "
            "main(['validate', sys.argv[2]], prog_name='campaign')")
    proc = subprocess.run([str(py), "-c", code, str(target), str(ROOT / "campaigns")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(str(target)) and first.endswith("runner/schemas/campaign.schema.json")
