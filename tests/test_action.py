"""The GitHub composite action (action.yml) and the example workflow that uses it.

The files are checked against check-jsonschema's vendored GitHub schemas (a test dependency;
offline: the schemas ship in the package); the action's script runs for real on a git
repository made in tmp_path, with the `campaign` of this environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
SCRIPT = ROOT / "action" / "campaign-review.sh"
WORKFLOW = ROOT / "examples" / "github-workflow.yml"


@pytest.mark.parametrize(
    ("path", "schema"), [(ACTION, "vendor.github-actions"), (WORKFLOW, "vendor.github-workflows")]
)
def test_files_match_the_github_schemas(path: Path, schema: str) -> None:
    # check-jsonschema's own click command, in-process (a subprocess added only its start-up).
    from check_jsonschema import main as check_jsonschema

    result = CliRunner().invoke(check_jsonschema, ["--builtin-schema", schema, str(path)])
    assert result.exit_code == 0, result.output


def test_action_declares_what_it_uses_and_needs_no_key() -> None:
    text = ACTION.read_text(encoding="utf-8")
    action = yaml.safe_load(text)
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    assert used and used <= set(action["inputs"])
    assert "secrets." not in text
    review = next(s for s in action["runs"]["steps"] if s.get("id") == "review")
    assert review["env"]["BLOOIO_API_KEY"] == ""
    assert "pull-requests: write" in text  # the comment's permission is documented
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["review"]["steps"]
    review = next(s for s in steps if s.get("id") == "review")
    assert review["uses"].endswith("/runner@v0.1.0")
    assert set(review["with"]) <= set(action["inputs"]) and review["with"]["campaigns"]
    assert "BLOOIO_API_KEY:" not in WORKFLOW.read_text()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def run_script(repo: Path, tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    summary = tmp / "summary.md"
    summary.write_text("")
    full = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "REVIEW_DIR": str(tmp / "review"),
        "PLANS_DIR": "plans",
        "RUNNER_STATE": ".runner",
        "CAMPAIGNS": "campaigns",
        **env,
    }
    full.pop("BLOOIO_API_KEY", None)
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=repo, env=full, capture_output=True, text=True, timeout=120
    )
    return proc, summary.read_text(encoding="utf-8")


def test_the_script_validates_plans_and_diffs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "campaigns").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    camp = repo / "campaigns" / "hello.yaml"
    camp.write_text(
        'version: 1\nid: hello\nrecipients: [{to: "+15553000001"}, {to: "+15553000002"}]\n'
        'steps: [{id: a, text: "Hi there"}]\n'
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    camp.write_text(camp.read_text().replace("Hi there", "Hello there"))
    proc, summary = run_script(repo, tmp_path, DIFF_BASE="HEAD")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| `a` | kept | 0 | 0 | 0 | 2 | 0 | 2 |" in summary
    head = json.loads((repo / "plans" / "campaigns%2Fhello.yaml.jsonl").read_text().splitlines()[0])
    assert head["campaign"] == "hello" and head["requests"] == 2
    comment = (tmp_path / "review" / "comment.md").read_text()
    assert comment.startswith("<!-- campaign-runner-review -->") and "Hello there" in comment

    camp.write_text(camp.read_text().replace("text:", "txet:"))
    proc, summary = run_script(repo, tmp_path)
    assert proc.returncode == 1
    assert "::error file=campaigns/hello.yaml" in proc.stdout and "plan failed" in summary


def test_a_runner_package_in_the_pull_request_is_never_imported(tmp_path: Path) -> None:
    """The checkout is the pull request's: its own runner/ must not replace the installed one
    (``python -m`` would put the working directory first on sys.path)."""
    repo = tmp_path / "repo"
    (repo / "campaigns").mkdir(parents=True)
    (repo / "runner").mkdir()
    owned = tmp_path / "owned"
    payload = f"open({str(owned)!r}, 'w').write('pwned')\n"
    for name in ("__init__.py", "review.py", "__main__.py"):
        (repo / "runner" / name).write_text(payload)
    (repo / "sitecustomize.py").write_text(payload)
    git(repo, "init", "-q", "-b", "main")
    (repo / "campaigns" / "c.yaml").write_text(
        'version: 1\nid: c\nrecipients: [{to: "+15553000001"}]\nsteps: [{id: a, text: hi}]\n'
    )
    proc, summary = run_script(repo, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not owned.exists() and "Campaign plan" in summary
