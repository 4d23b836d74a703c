"""The docs stay true: README.md is a short front door (a line budget); docs/cli.md is what the
commands' own help says (regenerated and compared); every command line README and the docs
show parses with the real CLI; every relative link points at a file and heading that exist;
the Python API page's examples run; the examples pin the action and hooks instead of naming a
placeholder."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runner.cli import reference
from runner.cli._base import main
from runner.emulator import EmulatorConfig, ManualClock

pytest_plugins = ["emulator_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_BUDGET = 250
# Pages whose shell examples this test holds to the CLI (the others' owners keep theirs).
CHECKED_COMMANDS = [
    README,
    *(
        DOCS / n
        for n in (
            "campaign-format.md",
            "sending.md",
            "tracking.md",
            "git-and-ci.md",
            "optouts.md",
            "exports.md",
            "architecture.md",
            "compliance.md",
        )
    ),
]


def pages() -> list[Path]:
    return [README, ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def test_readme_stays_within_its_line_budget():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_BUDGET, (
        f"README.md has {lines} lines, over its {README_BUDGET}: "
        "move the detail to a page under docs/ and link it"
    )


def test_readme_keeps_the_two_setup_commands_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    for command in ("pip install -e '.[test]'", "pytest"):
        assert re.search(rf"^{re.escape(command)}$", ci, re.M), command
        assert re.search(rf"^{re.escape(command)}\s", readme, re.M), command


@pytest.mark.parametrize("page", [README, DOCS / "campaign-format.md"], ids=lambda p: p.name)
def test_the_example_campaign_is_valid(page: Path, tmp_path: Path, campaign_cli):
    example = re.search(
        r"^```yaml\n(version: 1.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S
    )
    assert example is not None
    (tmp_path / "c.yaml").write_text(example.group(1), encoding="utf-8")
    (tmp_path / "vip.csv").write_text("Mobile Phone,first_name\n(555) 123-4567,Ada\n")
    (tmp_path / "suppression").mkdir()
    (tmp_path / "suppression" / "optouts.txt").write_text("")
    done = campaign_cli("validate", "c.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^ok c.yaml: ", done.stdout, re.M), done.stdout


def test_the_cli_reference_is_what_the_commands_say():
    checked_in = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert reference.MARKER in checked_in, (
        f"docs/cli.md lost its marker: run `{reference.REGENERATE}`"
    )
    assert checked_in == reference.rewrite(checked_in), (
        f"docs/cli.md differs from the commands' --help: run `{reference.REGENERATE}`"
    )


def test_each_commands_section_is_its_help_as_a_terminal_shows_it():
    # The generator's own contexts against a real invocation: `campaign WORDS --help`.
    text = (DOCS / "cli.md").read_text(encoding="utf-8").split(reference.MARKER, 1)[1]
    for path, _ in reference.commands():
        shown = CliRunner().invoke(
            main, [*path.split(), "--help"], prog_name="campaign", terminal_width=reference.WIDTH
        )
        assert shown.exit_code == 0, shown.output
        title = f"campaign {path}".strip()
        assert f"## `{title}`\n\n```text\n{shown.output.rstrip()}\n```\n" in text, (
            f"docs/cli.md's `{title}` is not its --help: run `{reference.REGENERATE}`"
        )


def test_the_cli_reference_has_every_command_and_option():
    # Independent of the generator's own walk: every option a user can type appears under its
    # command's heading (so a generator that dropped some would fail here, not only drift).
    text = (DOCS / "cli.md").read_text(encoding="utf-8").split(reference.MARKER, 1)[1]
    sections = dict(re.findall(r"^## `(campaign[a-z ]*)`\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for path, command in reference.commands():
        title = f"campaign {path}".strip()
        assert title in sections, title
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for flag in (*param.opts, *param.secondary_opts):
                    assert flag in sections[title], (title, flag)


def _command_lines(path: Path) -> list[tuple[int, str]]:
    """`campaign ...` lines of the page's sh/shell/bash/console code blocks, with line numbers."""
    found, fence = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            continue
        text = line.strip().removeprefix("$ ")
        if fence in ("sh", "shell", "bash", "console") and text.startswith("campaign "):
            found.append((number, text))
    return found


def _resolve(words: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The command the words name, the words that named it, and the rest (its arguments)."""
    command: click.Command = main
    named: list[str] = []
    rest = list(words)
    ctx = click.Context(main, info_name="campaign")
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            break
        named.append(rest.pop(0))
        command = sub
    return command, named, rest


@pytest.mark.parametrize("page", CHECKED_COMMANDS, ids=lambda p: p.name)
def test_every_command_line_shown_parses(page: Path):
    if not page.exists():
        pytest.skip(f"{page.name} is not written yet")
    for number, line in _command_lines(page):
        words = shlex.split(line, comments=True)
        for stop in ("&", "|", ">", ">>", "&&", ";"):
            if stop in words:
                words = words[: words.index(stop)]
        command, named, args = _resolve(words[1:])
        where = f"{page.name}:{number}: {line}"
        if isinstance(command, click.Group) and not named:
            pytest.fail(f"{where}: no such command")
        declared = {f for p in command.params for f in (*p.opts, *p.secondary_opts)}
        for word in args:
            flag = word.split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in declared, f"{where}: `campaign {' '.join(named)}` has no {flag}"
        try:
            # Arguments are parsed and converted, nothing runs: files need not exist here.
            command.make_context(" ".join(["campaign", *named]), args, resilient_parsing=False)
        except click.BadParameter as err:
            if "does not exist" not in err.format_message():
                pytest.fail(f"{where}: {err.format_message()}")
        except click.UsageError as err:
            pytest.fail(f"{where}: {err.format_message()}")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings (outside code blocks)."""
    out: set[str] = set()
    fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"#{1,6} (.*)", line)):
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            slug = text.replace(" ", "-")
            n = 1
            while slug in out:  # GitHub numbers repeated headings: x, x-1, x-2
                slug = f"{text.replace(' ', '-')}-{n}"
                n += 1
            out.add(slug)
    return out


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page: Path):
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, fragment = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: link to {target}: no such file"
        if fragment and dest.suffix == ".md":
            assert fragment in _anchors(dest), f"{page.name}: link to {target}: no such heading"


def test_the_python_api_examples_run(tmp_path: Path, monkeypatch, make_emulator):
    blocks = re.findall(
        r"^```python\n(.*?)^```", (DOCS / "python-api.md").read_text("utf-8"), re.M | re.S
    )
    assert len(blocks) >= 4
    # The emulator's own clock, fixed on a weekday afternoon: the legal hours of the
    # recipients' places do not depend on when the suite runs.
    emu = make_emulator(EmulatorConfig(groups=["*"], clock=ManualClock(1_780_000_000.0)))
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    (tmp_path / "plans").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("BLOOIO_API_KEY", "BLOOIO_BASE_URL", "RUNNER_STATE"):
        monkeypatch.delenv(name, raising=False)
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, 1):
        code = block.replace("http://127.0.0.1:8765/v2/api", emu.base_url)
        code = code.replace("http://127.0.0.1:8765", emu.base_url.removesuffix("/v2/api"))
        code = code.replace('"test-key"', repr(emu.api_key))
        exec(compile(code, f"docs/python-api.md block {number}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "plans" / "spring-sale.jsonl").is_file()
    assert emu.stats()["messages_accepted"] > 0


def test_the_python_api_page_names_every_public_name():
    import runner

    table = (DOCS / "python-api.md").read_text("utf-8").split("## Every public name", 1)[1]
    missing = [n for n in runner.__all__ if not re.search(rf"`{re.escape(n)}[`(]", table)]
    assert missing == [], f"docs/python-api.md's table lacks {missing}"


def test_git_and_ci_lists_every_input_and_output_of_the_action():
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    page = (DOCS / "git-and-ci.md").read_text(encoding="utf-8")
    for name, spec in action["inputs"].items():
        default = f"`{spec['default']}`" if spec.get("default") else "(empty)"
        assert f"| `{name}` | {default} |" in page, name
    for name in action["outputs"]:
        assert f"| `{name}` |" in page, name


PIN = re.compile(r"(?:uses:\s*|repo:\s*https://github\.com/)([\w.-]+/runner)(?:@(\S+))?")


def test_the_action_and_hooks_are_pinned_not_placeholders():
    files = [
        ROOT / ".pre-commit-hooks.yaml",
        *sorted((ROOT / "examples").glob("*")),
        *sorted(DOCS.glob("*.md")),
        README,
    ]
    pinned = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "OWNER/" not in text, f"{path.name}: the OWNER placeholder (see docs/git-and-ci.md)"
        for line in text.splitlines():
            for m in PIN.finditer(line):
                rev = re.search(r"rev:\s*(\S+)", text[text.index(line) :])
                ref = m.group(2) or (rev.group(1) if "repo:" in line and rev else "unpinned")
                assert re.fullmatch(r"v\d+\.\d+\.\d+|[0-9a-f]{40}|<40-hex", ref), (path.name, line)
                pinned += 1
    assert pinned >= 3
