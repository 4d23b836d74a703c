"""Hostile campaigns and a hostile API, through the CLI (issue 22, items 3, 7-10, 12-15):
each is refused with a located error or made harmless; never a traceback (campaign_cli fails
the test on any exception that escapes a command)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.store.journal import Journal
from runner.store.lock import JournalLock
from runner.store.paths import journal_path

pytest_plugins = ["emulator_fixtures"]

HOSTILE_TEXT = "Hi\n::add-mask::secret\n  ::error file=README.md,line=1::approve\n##[add-mask]x"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def no_workflow_command(text: str) -> None:
    for line in re.split(r"\r\n|\r|\n", text):
        assert not re.match(r"\s*::", line), line
        assert "##[" not in line and "\x1b" not in line and "\x07" not in line, line


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_template_text_and_keys_reach_no_log_as_commands(tmp_path: Path, campaign_cli) -> None:
    camp = write(
        tmp_path,
        "c.yaml",
        f"""\
        version: 1
        id: loud
        recipients: [{{to: "+15553000001"}}]
        steps:
          - id: a
            text: {json.dumps(HOSTILE_TEXT)}
        """,
    )
    for args in (
        ("plan", str(camp)),
        ("plan", str(camp), "--format", "markdown"),
        ("preview", str(camp), "--to", "+15553000001"),
    ):
        result = campaign_cli(*args)
        assert result.returncode == 0, result.stderr
        no_workflow_command(result.stdout + result.stderr)
        assert "add-mask" in result.stdout  # shown, escaped, not dropped
    bad_key = write(
        tmp_path,
        "k.yaml",
        """\
        version: 1
        id: loud
        recipients: [{to: "+15553000001"}]
        "x\\n::add-mask::secret\\n##[add-mask]y": 1
        steps: [{id: a, text: hi}]
        """,
    )
    for fmt in ("text", "github"):
        result = campaign_cli("validate", str(bad_key), "--format", fmt)
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        if fmt == "github":  # the annotations are commands on purpose; nothing else is
            lines = [ln for ln in lines if not ln.startswith("::error ")]
        no_workflow_command("\n".join(lines) + result.stderr)


@pytest.mark.parametrize(
    ("campaign_id", "step_ids"), [('"sale\\n"', ["a"]), ("sale", ["hello", '"hello\\n"'])]
)
def test_slugs_are_whole_strings(tmp_path: Path, campaign_cli, campaign_id, step_ids) -> None:
    steps = "".join(f"  - id: {sid}\n    text: hi\n" for sid in step_ids)
    camp = write(
        tmp_path,
        "c.yaml",
        f'version: 1\nid: {campaign_id}\nrecipients: [{{to: "+15553000001"}}]\nsteps:\n{steps}',
    )
    result = campaign_cli("validate", str(camp))
    assert (
        result.returncode == 1
        and "does not have the expected form" in result.stderr + result.stdout
    )


@pytest.mark.parametrize("weight", [".nan", ".inf", "-.inf"])
def test_variant_weights_are_finite_and_positive(tmp_path: Path, campaign_cli, weight) -> None:
    camp = write(
        tmp_path,
        "c.yaml",
        f"""\
        version: 1
        id: ab
        recipients: [{{to: "+15553000001"}}]
        steps:
          - id: a
            variants:
              - {{id: x, weight: {weight}, text: one}}
              - {{id: y, weight: 1, text: two}}
        """,
    )
    result = campaign_cli("validate", str(camp))
    assert result.returncode == 1
    assert re.search(r"c\.yaml:7:\d+: error: .*weight", result.stdout + result.stderr)


def test_duplicate_campaign_ids_name_both_files(tmp_path: Path, campaign_cli) -> None:
    body = 'version: 1\nid: same\nrecipients: [{to: "+15553000001"}]\nsteps: [{id: a, text: hi}]\n'
    first = write(tmp_path / "c", "a.yaml", body)
    second = write(tmp_path / "c" / "sub", "b.yaml", body)
    result = campaign_cli("validate", str(tmp_path / "c"))
    assert result.returncode == 1
    assert f"{second}: error: campaign id 'same' is also the id of {first}" in result.stdout


def test_variant_caps_per_step_and_per_campaign(tmp_path: Path, campaign_cli) -> None:
    def campaign(steps: int, variants: int) -> Path:
        body = "".join(
            f"  - id: s{s}\n    variants:\n"
            + "".join(f"      - {{id: v{v}, weight: 1, text: t}}\n" for v in range(variants))
            for s in range(steps)
        )
        return write(
            tmp_path,
            f"c{steps}x{variants}.yaml",
            f'version: 1\nid: many\nrecipients: [{{to: "+15553000001"}}]\nsteps:\n{body}',
        )

    result = campaign_cli("validate", str(campaign(1, 27)))
    assert result.returncode == 1 and "is too long (at most 26)" in result.stdout + result.stderr
    result = campaign_cli("validate", str(campaign(11, 24)))
    assert (
        result.returncode == 1
        and "264 variants in all: at most 260" in result.stdout + result.stderr
    )
    assert campaign_cli("validate", str(campaign(1, 26))).returncode == 0


def _peak_mb(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; its peak memory (MB) and its stdout."""
    probe = (
        code + "\nimport resource, sys\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *out, peak = proc.stdout.strip().splitlines()
    return int(peak) / 1024, "\n".join(out)


def test_a_template_that_builds_gigabytes_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    files = []
    for n, text in enumerate(
        [
            "{{ ('a'*40000)|replace('a','a'*40000)|length }}",
            "{{ ('a'*40000).replace('a','a'*40000)|length }}",
            "{{ ('a'*3000)|join('b'*3000)|length }}",
            "{% set x = '&'*100000 %}{% set y = x ~ x ~ x ~ x ~ x ~ x ~ x ~ x %}"
            "{{ y|urlencode|urlencode|urlencode|urlencode|length }}",
            "{% set y = 'a'*100000 %}{{ (('%s' * 50000) % ((y,) * 50000))|length }}",
            "{% set y = 'a'*100000 %}{{ ('{0}' * 30000).format(y)|length }}",
        ]
    ):
        files.append(
            str(
                write(
                    tmp_path,
                    f"c{n}.yaml",
                    f"""\
            version: 1
            id: bomb{n}
            recipients: [{{to: "+15553000001"}}]
            steps: [{{id: a, text: {json.dumps(text)}}}]
            """,
                )
            )
        )
    peak, out = _peak_mb(f"""
from runner.planning.validate import validate_run
for r in validate_run({files!r}).results:
    print("\\n".join(p.message for p in r.errors))
""")
    assert out.count("would build a string of") == 6, out
    assert peak < 300, f"{peak:.0f} MB"


# -- a hostile API -------------------------------------------------------------------------
DEEP = b"[" * 100_000 + b"]" * 100_000
OSC52 = "\x1b]52;c;ZXZpbA==\x07\n::add-mask::secret\n##[add-mask]x"


class Hostile(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        if "0002" in self.path and self.command == "POST":
            body = json.dumps({"code": "bad_request", "message": OSC52}).encode()
            status = 400
        else:
            body, status = DEEP, 200
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_api() -> Iterator[dict[str, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "BLOOIO_BASE_URL": f"http://127.0.0.1:{server.server_port}/v2/api",
            "BLOOIO_API_KEY": "test-key",
        }
    finally:
        server.shutdown()
        server.server_close()


TWO = (
    'version: 1\nid: target\nrecipients: [{to: "+15553000001"}, {to: "+15553000002"}]\n'
    "steps: [{id: a, text: hi}]\n"
)


def test_a_deep_or_hostile_answer_fails_that_request_without_a_traceback(
    tmp_path: Path, campaign_cli, hostile_api
) -> None:
    camp = write(tmp_path, "c.yaml", TWO)
    state = tmp_path / "state"
    result = campaign_cli(
        "send",
        str(camp),
        "--yes",
        "--no-progress",
        "--rate",
        "unlimited",
        "--state",
        str(state),
        "--max-attempts",
        "2",
        "--backoff-base",
        "0",
        env=hostile_api,
    )
    assert result.returncode in (1, 3), result.stderr
    no_workflow_command(result.stdout + result.stderr)
    with Journal(journal_path(state, "target")) as journal:
        statuses = {r["status"] for r in journal.rows()} if hasattr(journal, "rows") else None
    assert statuses is None or "sending" not in statuses
    report = campaign_cli("report", str(camp), "--state", str(state))
    no_workflow_command(report.stdout + report.stderr)
    assert "unreadable_answer" in report.stdout  # retried, then left unconfirmed, reason told
    markdown = campaign_cli("report", str(camp), "--state", str(state), "--format", "markdown")
    no_workflow_command(markdown.stdout)
    failure = next(
        ln for ln in markdown.stdout.splitlines() if "bad\\_request" in ln or "bad_request" in ln
    )
    assert "]52;c;" in failure and "add-mas" in failure  # told, escaped, on its own table row


def test_track_and_optouts_survive_a_deep_answer(
    tmp_path: Path, campaign_cli, emulator, hostile_api
) -> None:
    camp = write(tmp_path, "c.yaml", TWO + "suppress: [optouts.txt]\n")
    (tmp_path / "optouts.txt").write_text("")
    state = tmp_path / "state"
    sent = campaign_cli(
        "send",
        str(camp),
        "--yes",
        "--no-progress",
        "--rate",
        "unlimited",
        "--state",
        str(state),
        env=emulator.env(),
    )
    assert sent.returncode == 0, sent.stderr
    tracked = campaign_cli(
        "track",
        str(camp),
        "--state",
        str(state),
        "--no-progress",
        "--max-attempts",
        "1",
        "--first-poll",
        "0",
        "--backoff-base",
        "0",
        "--timeout",
        "20",
        env=hostile_api,
    )
    assert tracked.returncode == 3, tracked.stdout + tracked.stderr
    opted = campaign_cli(
        "optouts",
        str(camp),
        "--state",
        str(state),
        "--max-attempts",
        "1",
        "--dry-run",
        env=hostile_api,
    )
    assert opted.returncode in (0, 3), opted.stdout + opted.stderr
    no_workflow_command(tracked.stdout + tracked.stderr + opted.stdout + opted.stderr)


# -- git, plans, the journal ---------------------------------------------------------------
@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "c.yaml").write_text(
        "version: 1\nid: audited\nrecipients: {file: people.csv, to: phone}\n"
        "steps: [{id: hello, text: Hi}]\n"
    )
    (repo / ".gitignore").write_text("people.csv\n")
    (repo / "people.csv").write_text("phone\n+15553000001\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "campaign")
    return repo


def test_require_clean_refuses_an_ignored_input(repo: Path, campaign_cli, emulator) -> None:
    result = campaign_cli(
        "send",
        str(repo / "c.yaml"),
        "--yes",
        "--no-progress",
        "--state",
        str(repo.parent / "state"),
        "--require-clean",
        env=emulator.env(),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "people.csv" in result.stderr and "untracked or git-ignored" in result.stderr
    assert emulator.stats()["requests"] == 0


def test_a_forged_plan_digest_is_refused(repo: Path, campaign_cli, emulator) -> None:
    plan = repo.parent / "plan.jsonl"
    assert campaign_cli("plan", str(repo / "c.yaml"), "--out", str(plan)).returncode == 0
    head, *rest = plan.read_text().splitlines()
    doc = json.loads(head)
    doc["digest"] = "sha256:" + "0" * 64
    plan.write_text("\n".join([json.dumps(doc)] + rest) + "\n")
    result = campaign_cli(
        "send",
        "--plan",
        str(plan),
        str(repo / "c.yaml"),
        "--yes",
        "--no-progress",
        "--state",
        str(repo.parent / "state"),
        env=emulator.env(),
    )
    assert result.returncode == 1 and "the header was edited" in result.stderr
    assert emulator.stats()["requests"] == 0


def test_a_sent_plan_records_the_digest_recomputed_from_its_inputs(
    repo: Path, campaign_cli, emulator
) -> None:
    plan = repo.parent / "plan.jsonl"
    assert campaign_cli("plan", str(repo / "c.yaml"), "--out", str(plan)).returncode == 0
    planned = json.loads(plan.read_text().splitlines()[0])["digest"]
    result = campaign_cli(
        "send",
        "--plan",
        str(plan),
        str(repo / "c.yaml"),
        "--yes",
        "--no-progress",
        "--state",
        str(repo.parent / "state"),
        env=emulator.env(),
    )
    assert result.returncode == 0, result.stderr
    with Journal.for_campaign(repo.parent / "state", "audited") as journal:
        assert journal.last_run()["plan_digest"] == planned


def test_report_during_a_send_says_it_is_running(tmp_path: Path, campaign_cli, emulator) -> None:
    camp = write(tmp_path, "c.yaml", TWO)
    state = tmp_path / "state"
    assert (
        campaign_cli(
            "send",
            str(camp),
            "--yes",
            "--no-progress",
            "--rate",
            "unlimited",
            "--state",
            str(state),
            env=emulator.env(),
        ).returncode
        == 0
    )
    path = journal_path(state, "target")
    with Journal(path) as journal:
        journal._db.execute("UPDATE runs SET ended_at = NULL")  # as while the send runs
        journal._db.commit()
    with JournalLock(path, "send"):
        running = campaign_cli("report", str(camp), "--state", str(state))
        doc = json.loads(
            campaign_cli("report", str(camp), "--state", str(state), "--format", "json").stdout
        )
    assert "a send is running now" in running.stdout and "did not finish" not in running.stdout
    assert doc["state"]["name"] == "running" and doc["totals"]["accepted"] == 2
    after = campaign_cli("report", str(camp), "--state", str(state))
    assert "did not finish" in after.stdout  # the lock released: the process stopped


def test_diff_markdown_examples_cannot_ping_load_or_close_their_code_span(
    tmp_path: Path, campaign_cli
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    camp = write(
        repo,
        "c.yaml",
        'version: 1\nid: d\nrecipients: [{to: "+15553000001"}]\nsteps: [{id: a, text: Hi}]\n',
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    hostile = "Hi {{ 'x' }}` @octocat <img src=https://evil.example/i.png> ``"
    camp.write_text(camp.read_text().replace("text: Hi", f"text: {json.dumps(hostile)}"))
    result = campaign_cli("diff", str(camp), "--base", "HEAD", "--format", "markdown", cwd=repo)
    assert result.returncode == 0, result.stderr
    after = next(ln for ln in result.stdout.splitlines() if "after:" in ln)
    span = after.split("after: ", 1)[1]
    fence = re.match(r"`+", span).group()
    assert span.endswith(fence) and fence not in span[len(fence) : -len(fence)]
    outside_code = re.sub(r"(`+).*?\1", "", result.stdout)
    assert "<img" not in outside_code and "@octocat" not in outside_code
