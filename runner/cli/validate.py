"""`campaign validate PATH...`: every layer of every campaign file, in text, JSON or GitHub annotations."""

from __future__ import annotations

import json
import sys

import click

from runner import exitcodes
from runner.cli import console
from runner.cli._base import user_errors
from runner.planning.validate import validate_paths
from runner.report.diagnostics import format_github, format_text


@click.command(epilog="""\b
Exit codes:
  0  every file is valid (warnings allowed)
  1  some file is invalid, or a path cannot be read
""")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, json for tools, github for workflow annotations")
@user_errors()
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check campaign files (or folders of them): schema, API rules, and every recipient rendered.

    Exit code 0 when every file is valid (warnings allowed), 1 otherwise.
    """
    results = validate_paths(paths)
    ok = all(r.valid for r in results)
    if fmt == "json":
        click.echo(json.dumps({"schema_version": 1, "valid": ok, "files": [r.to_dict() for r in results]},
                              indent=2, ensure_ascii=False))
    elif fmt == "github":
        for r in results:
            for p in r.problems:
                click.echo(format_github(p))
        click.echo(f"{sum(r.valid for r in results)} of {len(results)} campaign file(s) valid")
    else:
        color = console.use_color(sys.stdout)
        for r in results:
            for p in r.problems:
                click.echo(format_text(p, color=color))
            if r.valid and r.summary:
                s = r.summary
                mark = click.style("✓", fg="green") if color else "ok"
                click.echo(f"{mark} {r.file}: {s['recipients']:,} recipients, {s['steps']} steps, "
                           f"{s['requests']:,} requests, {s['messages']:,} messages")
            elif not r.valid:
                n = len(r.errors)
                mark = click.style("✗", fg="red") if color else "FAIL"
                click.echo(f"{mark} {r.file}: {n} error{'s' if n != 1 else ''}")
    sys.exit(exitcodes.OK if ok else exitcodes.FAILED)
