"""The review action against a hostile pull request (issue 22, items 1, 2, 5, 6, 11): file
names that would hide the rest of the comment, a committed symlink where a plan goes, a
comment that only looks like the bot's, a campaign too big for one comment. runner.review
runs in this process, as action/campaign-review.sh runs it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from runner import limits, review

CAMPAIGN = (
    'version: 1\nid: {id}\nrecipients: [{{to: "+15553000001"}}, {{to: "+15553000002"}}]\n'
    "steps:\n{steps}"
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def steps(n: int, text: str = "Hi there") -> str:
    return "".join(f'  - id: s{i}\n    text: "{text} {i}"\n' for i in range(n))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "campaigns").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    monkeypatch.chdir(repo)
    for name, value in {
        "CAMPAIGNS": "campaigns",
        "PLANS_DIR": "plans",
        "RUNNER_STATE": ".runner",
        "REVIEW_DIR": str(tmp_path / "review"),
        "DIFF_BASE": "",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "summary.md").write_text("")
    return repo


def run(repo: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str, str]:
    code = review.main([])
    out = capsys.readouterr().out
    tmp = repo.parent
    return (
        code,
        out,
        (tmp / "summary.md").read_text(encoding="utf-8"),
        (tmp / "review" / "comment.md").read_text(encoding="utf-8"),
    )


def test_a_file_name_cannot_hide_the_rest_of_the_comment(repo: Path, capsys, monkeypatch) -> None:
    (repo / "campaigns" / "0\n<!--\n.yaml").write_text(CAMPAIGN.format(id="evil", steps=steps(1)))
    (repo / "campaigns" / "b.yaml").write_text(CAMPAIGN.format(id="b", steps=steps(1)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "campaigns" / "b.yaml").write_text(
        CAMPAIGN.format(id="b", steps=steps(1)).replace("revision", "x").replace("id: s0", "id: t0")
    )
    monkeypatch.setenv("DIFF_BASE", "HEAD")
    code, out, summary, comment = run(repo, capsys)
    assert code == 0, out
    for text in (summary, comment):
        outside_code = re.sub(r"(`+).*?\1", "", text.replace(review.MARKER, ""))
        assert "<!--" not in outside_code and "<!--" in text  # only inside code spans
        assert not any(line.lstrip().startswith("<!--") for line in text.splitlines()[1:])
    assert "`campaigns/0 <!-- .yaml`" in comment
    assert "new step: " not in comment and "| `t0` | added |" in comment


def test_plans_are_never_written_through_a_symlink(repo: Path, capsys, tmp_path: Path) -> None:
    (repo / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(id="c", steps=steps(1)))
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (repo / "plans").mkdir()
    (repo / "plans" / review.plan_name("campaigns/c.yaml")).symlink_to(outside)
    code, out, summary, _ = run(repo, capsys)
    assert outside.read_text() == "precious\n"
    assert code == 1 and "is a symlink" in out and "plan failed" in summary


def test_a_committed_journal_symlink_is_not_opened(repo: Path, capsys, tmp_path: Path) -> None:
    (repo / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(id="c", steps=steps(1)))
    outside = tmp_path / "outside.sqlite"
    outside.write_bytes(b"precious")
    (repo / ".runner").mkdir()
    (repo / ".runner" / "c.sqlite").symlink_to(outside)
    code, out, summary, _ = run(repo, capsys)
    assert code == 1 and "is a symlink" in out and "plan failed" in summary
    assert outside.read_bytes() == b"precious"


def test_a_plans_folder_that_is_a_symlink_is_refused(repo: Path, capsys, tmp_path: Path) -> None:
    (repo / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(id="c", steps=steps(1)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "plans").symlink_to(elsewhere)
    code, out, _, _ = run(repo, capsys)
    assert code == 1 and "symlink" in out and list(elsewhere.iterdir()) == []


def test_a_campaign_symlinked_from_outside_is_not_read(repo: Path, capsys, tmp_path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("version: 1\nid: TOKEN-abc123\n")
    (repo / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(id="c", steps=steps(1)))
    (repo / "campaigns" / "s.yaml").symlink_to(secret)
    code, out, summary, comment = run(repo, capsys)
    assert code == 1 and "TOKEN-abc123" not in out + summary + comment


def test_plan_names_cannot_collide() -> None:
    names = {
        review.plan_name(p)
        for p in (
            "campaigns/a__b.yaml",
            "campaigns/a/b.yaml",
            "campaigns/a/b.yml",
            "campaigns/a%2Fb.yaml",
            "./campaigns/x.yaml",
            "campaigns/x.yaml",
            "campaigns/" + "x" * 300 + ".yaml",
            "campaigns/" + "x" * 300 + "y.yaml",
        )
    }
    assert len(names) == 7  # ./campaigns/x.yaml is campaigns/x.yaml
    assert all("/" not in n and not n.startswith(".") and len(n.encode()) <= 200 for n in names)


def test_only_the_bots_own_comment_is_edited() -> None:
    comments = [
        json.dumps({"id": 1, "login": "mallory", "body": review.MARKER + " hi"}),
        json.dumps({"id": 2, "login": "github-actions[bot]", "body": "unrelated"}),
        json.dumps({"id": 3, "login": "github-actions[bot]", "body": review.MARKER}),
        "not json",
    ]
    assert review.own_comment(comments, "github-actions[bot]") == 3
    assert review.own_comment(comments[:2], "github-actions[bot]") is None


def test_the_action_picks_the_comment_by_author() -> None:
    step = (Path(__file__).resolve().parent.parent / "action.yml").read_text()
    assert 'own-comment "$me"' in step and "startswith" not in step


def test_a_huge_review_is_cut_with_would_send_again_first(repo: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_COMMENT_CHARS", 4_000)
    monkeypatch.setattr(limits, "MAX_SUMMARY_BYTES", 6_000)
    (repo / "campaigns" / "big.yaml").write_text(CAMPAIGN.format(id="big", steps=steps(60)))
    (repo / "campaigns" / "small.yaml").write_text(CAMPAIGN.format(id="small", steps=steps(1)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "campaigns" / "big.yaml").write_text(
        CAMPAIGN.format(id="big", steps=steps(60, "Hello"))
    )
    (repo / "campaigns" / "small.yaml").write_text(
        CAMPAIGN.format(id="small", steps=steps(1)).replace(
            "version: 1\n", "version: 1\nrevision: 2\n"
        )
    )
    monkeypatch.setenv("DIFF_BASE", "HEAD")
    code, _, summary, comment = run(repo, capsys)
    assert code == 0
    assert len(comment) <= 4_000 and len(summary.encode()) <= 6_000
    for text in (comment, summary):
        head = text.split("\n### ", 1)[0]
        # what would be sent again is at the top, the biggest first
        assert re.search(r"\| `campaigns/small\.yaml` \| \*\*2\*\* \|", head), head
        assert "Cut to stay under GitHub's limit" in text
        assert text.count("<details>") == text.count("</details>")
    full = (repo.parent / "review" / "comment-full.md").read_text()
    assert len(full) > 4_000 and "Hello 59" in full


def test_a_plans_folder_outside_the_repository_is_refused(
    repo: Path, capsys, monkeypatch, tmp_path: Path
) -> None:
    (repo / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(id="c", steps=steps(1)))
    monkeypatch.setenv("PLANS_DIR", "../escaped")
    code, out, summary, _ = run(repo, capsys)
    assert code == 1 and "outside the repository" in out
    assert not (tmp_path / "escaped").exists() and "Campaign plan" in summary
