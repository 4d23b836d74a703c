"""Issue 16 item 1: every file a campaign names stays inside the campaign's folder tree or its
git repository, only regular files are read, the campaign file is capped by bytes read, and an
error quotes a data line only as a short masked excerpt."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.audience.suppress import load_suppression
from runner.campaign import loader
from runner.campaign.load import load_campaign
from runner.campaign.loader import load_file
from runner.cli import main
from runner.errors import CampaignError
from runner.source.paths import allowed_roots, repository_root

SECRET = "BLOOIO_API_KEY=sk_live_SECRET123"


def campaign(folder: Path, *, suppress: str | None = None, recipients: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "id: confined"]
    if recipients is None:
        lines += ["recipients:", '  - to: "+15551230001"']
    else:
        lines += ["recipients:", f"  file: {recipients!r}"]
    if suppress is not None:
        lines += ["suppress:", f"  - {suppress!r}"]
    lines += ["steps:", "  - id: hello", "    text: Hi"]
    path = folder / "c.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args], env={"BLOOIO_API_KEY": ""})
    assert not isinstance(result.exception, Exception)
    return result.exit_code, result.output


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file next to (not inside) the campaign's folder, holding a secret."""
    path = tmp_path / "secrets.txt"
    path.write_text(f"{SECRET}\n", encoding="utf-8")
    return path


def names_for(outside: Path, folder: Path) -> list[str]:
    """The ways a campaign in ``folder`` could name ``outside``: absolute, `../`, a symlink."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link.txt").symlink_to(outside)
    (folder / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    return [
        str(outside),
        f"../{outside.name}",
        "link.txt",
        f"linked-dir/{outside.name}",
        f"sub/../../{outside.name}",
    ]


def test_a_suppression_file_outside_the_campaign_is_a_located_error(tmp_path: Path, outside: Path):
    folder = tmp_path / "campaign"
    for name in names_for(outside, folder):
        path = campaign(folder, suppress=name)
        code, out = validate("--format", "github", str(path))
        assert code == 1, out
        assert SECRET not in out and "sk_live" not in out
        [line] = [ln for ln in out.splitlines() if ln.startswith("::error ")]
        assert "line=6" in line  # the `- name` item under suppress:
        assert f"'{name}' is outside the campaign" in line
        assert "git repository" in line  # the hint says where files may be


def test_a_recipients_file_outside_the_campaign_is_a_located_error(tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text("to\n+15551230001\n", encoding="utf-8")
    folder = tmp_path / "campaign"
    for name in names_for(data, folder):
        if not name.endswith(".csv"):
            continue  # the symlink named link.txt would be refused for its format first
        path = campaign(folder, recipients=name)
        with pytest.raises(CampaignError) as info:
            load_campaign(path)
        [problem] = info.value.problems
        assert problem.path == "recipients.file" and problem.line == 4
        assert f"'{name}' is outside the campaign" in problem.message


def test_proc_environ_is_refused_without_reading_it(tmp_path: Path):
    path = campaign(tmp_path / "c", suppress="/proc/self/environ")
    code, out = validate("--format", "github", str(path))
    assert code == 1
    assert "'/proc/self/environ' is outside the campaign" in out
    assert "BLOOIO_API_KEY=" not in out and "suppression entry" not in out


def test_files_inside_the_folder_tree_are_read_through_symlinks_too(tmp_path: Path):
    folder = tmp_path / "campaign"
    (folder / "lists").mkdir(parents=True)
    (folder / "lists" / "optouts.txt").write_text("+15551230001\n", encoding="utf-8")
    (folder / "optouts.txt").symlink_to(folder / "lists" / "optouts.txt")
    path = campaign(folder, suppress="optouts.txt")
    s, problems = load_suppression(
        ["optouts.txt", "lists/../lists/optouts.txt", str(folder / "lists" / "optouts.txt")],
        folder,
        str(path),
    )
    assert problems == [] and s.entries == {"+15551230001"}


def test_the_git_repository_holding_the_campaign_is_inside(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "shared").mkdir()
    (repo / "shared" / "optouts.txt").write_text("+15551230001\n", encoding="utf-8")
    (repo / "shared" / "people.csv").write_text("to\n+15551230002\n", encoding="utf-8")
    folder = repo / "campaigns" / "spring"
    path = campaign(
        folder, suppress="../../shared/optouts.txt", recipients="../../shared/people.csv"
    )
    assert repository_root(folder) == repo.resolve()
    assert allowed_roots(path) == [folder.resolve(), repo.resolve()]
    loaded = load_campaign(path)
    s, problems = load_suppression(
        loaded.suppress, loaded.base_dir, loaded.doc.file, loaded.doc.locate
    )
    assert problems == [] and s.entries == {"+15551230001"}
    # Without the repository the same campaign reaches outside its folder.
    (repo / ".git").rmdir()
    with pytest.raises(CampaignError) as info:
        load_campaign(path)
    assert "outside the campaign's folder" in info.value.problems[0].message


def test_a_worktree_git_file_marks_a_repository(tmp_path: Path):
    (tmp_path / ".git").write_text("gitdir: /elsewhere\n", encoding="utf-8")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert repository_root(tmp_path / "a" / "b") == tmp_path


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_fifos_and_folders_are_refused_without_blocking(tmp_path: Path, kind: str):
    folder = tmp_path / "campaign"
    folder.mkdir()
    special = folder / "optouts.txt"
    if kind == "fifo":
        os.mkfifo(special)
    else:
        special.mkdir()
    path = campaign(folder, suppress="optouts.txt")
    _s, [problem] = load_suppression(["optouts.txt"], folder, str(path))
    assert problem.path == "suppress[0]"
    assert "not a regular file" in problem.message
    assert ("a FIFO" if kind == "fifo" else "a folder") in problem.message


def test_a_fifo_swapped_in_after_the_check_is_still_not_read(tmp_path: Path):
    from runner.audience.recipients import text_lines

    fifo = tmp_path / "r.csv"
    os.mkfifo(fifo)
    done = threading.Event()

    def read() -> None:
        with pytest.raises(CampaignError, match="a FIFO, not a regular file"):
            list(text_lines(str(fifo)))
        done.set()

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set(), "opening a FIFO blocked"


def test_a_device_or_fifo_as_the_campaign_file_is_refused(tmp_path: Path):
    code, out = validate("/dev/zero")
    assert code == 1 and "a device, not a regular file" in out
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    with pytest.raises(CampaignError, match="a FIFO, not a regular file"):
        load_file(fifo)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_the_size_cap_counts_bytes_read_not_the_size_stat_reports(monkeypatch: pytest.MonkeyPatch):
    proc = Path("/proc/self/status")
    assert proc.stat().st_size == 0  # what a stat-based cap would see
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 64)
    with pytest.raises(CampaignError) as info:
        load_file(proc)
    assert "over the 0 MB limit" in info.value.problems[0].message


def test_a_bad_data_line_is_quoted_short_and_masked(tmp_path: Path):
    folder = tmp_path / "campaign"
    folder.mkdir()
    long_line = SECRET + "_" + "x" * 200
    (folder / "optouts.txt").write_text(
        f"{long_line}\ncall 555-123-4567 now\nmail ada.lovelace@example.org please\n",
        encoding="utf-8",
    )
    path = campaign(folder, suppress="optouts.txt")
    _s, problems = load_suppression(["optouts.txt"], folder, str(path))
    assert [p.line for p in problems] == [1, 2, 3]
    first, phone, email = (p.message for p in problems)
    assert "x" * 40 not in first and "…" in first
    quoted = first.split("'")[1]
    assert len(quoted) <= 40
    assert "555-123-4567" not in phone and "4567" in phone
    assert "ada.lovelace@" not in email and "@example.org" in email


def test_a_bad_recipients_row_is_quoted_masked(tmp_path: Path):
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "people.csv").write_text("to\n+15551230001\n(555) 123-4567\n", encoding="utf-8")
    path = campaign(folder, recipients="people.csv")
    code, out = validate(str(path))
    assert code == 1
    assert "123-4567" not in out and "•••4567" in out


def test_optouts_refuses_a_suppression_file_outside_the_campaign(tmp_path: Path, outside: Path):
    path = campaign(tmp_path / "campaign", suppress=f"../{outside.name}")
    result = CliRunner().invoke(
        main,
        ["optouts", str(path), "--state", str(tmp_path / "state"), "--export"],
        env={"BLOOIO_API_KEY": "k", "BLOOIO_BASE_URL": "http://127.0.0.1:9"},
    )
    assert result.exit_code != 0
    assert not isinstance(result.exception, Exception)
    assert f"'../{outside.name}' is outside the campaign" in result.output
    assert ":6" in result.output  # located at the suppress entry
    assert outside.read_text(encoding="utf-8") == f"{SECRET}\n"  # never written


def test_optouts_may_create_a_missing_suppression_file_inside(tmp_path: Path):
    from runner.audience.suppress import suppression_target

    path = campaign(tmp_path / "campaign", suppress="lists/new.txt")
    loaded = load_campaign(path)
    assert (
        suppression_target(loaded.doc, loaded.base_dir, loaded.suppress)
        == loaded.base_dir / "lists/new.txt"
    )
