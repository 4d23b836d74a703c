"""`campaign validate PATH...`: every layer of every campaign file, in text, JSON or GitHub annotations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runner import exitcodes
from runner.cli import console
from runner.cli._base import policy_option, user_errors
from runner.cli.console import echo
from runner.planning.validate import listing, summary_line, validate_run
from runner.report.diagnostics import format_github, format_text, more_problems
from runner.safe_text import one_line


@click.command(
    epilog="""\b
Exit codes:
  0  every file is valid (warnings allowed)
  1  some file is invalid, or a path cannot be read
"""
)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for workflow annotations",
)
@click.option(
    "--max-problems",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="show at most N problems (text, github); the rest are counted; 0: all",
)
@click.option(
    "--strict",
    is_flag=True,
    help="values YAML changed (02134 read as 1116, yes as true) are errors, not warnings",
)
@policy_option()
@user_errors()
def validate(
    paths: tuple[str, ...], fmt: str, max_problems: int, strict: bool, policy: Path | None
) -> None:
    """Check campaign files (or folders of them): schema, API rules, and every recipient rendered.

    In a folder, only YAML files that are campaigns are checked (the others are listed as
    skipped); a file named on the command line is always checked.
    Exit code 0 when every file is valid (warnings allowed), 1 otherwise.
    """
    run = validate_run(paths, strict=strict, policy=policy)
    results = run.results
    ok = run.valid
    if fmt == "json":
        echo(
            json.dumps(
                {
                    "schema_version": 1,
                    "valid": ok,
                    "files": [r.to_dict() for r in results],
                    "skipped": [str(p) for p in run.skipped],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        sys.exit(0 if ok else 1)
    shown = listing(run, max_problems)
    color = fmt == "text" and sys.stdout.isatty()
    for _r, p in shown.shown:
        if fmt == "github":  # workflow commands on purpose, their data escaped
            click.echo(format_github(p))
        else:
            echo(format_text(p, color=color), styled=True)
    if shown.hidden:
        click.echo(more_problems(shown.hidden, github=fmt == "github"))
    if fmt == "github":
        echo(f"{sum(r.valid for r in results)} of {len(results)} campaign file(s) valid")
    else:
        color = console.use_color(sys.stdout)
        for r in results:
            if r.valid:
                mark = click.style("✓", fg="green") if color else "ok"
            else:
                mark = click.style("✗", fg="red") if color else "FAIL"
            echo(f"{mark} {one_line(summary_line(r))}", styled=True)
    for path in shown.skipped:
        echo(f"skipped {one_line(path)}: not a campaign (no two of version, id, recipients, steps)")
    sys.exit(exitcodes.OK if ok else exitcodes.FAILED)
