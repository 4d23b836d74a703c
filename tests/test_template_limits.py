"""Issue 16 item 8: template limits hold at compile time too (no constant folding outside the
render budget), widths and precisions in format specs and `%` formatting are bounded, and a
CSV header of 200,000 columns is checked in linear time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from runner.audience.recipients import RecipientSource, iter_recipients
from runner.campaign.loader import load_text
from runner.campaign.templates import (
    MAX_NUMBER_ARGUMENT,
    TimeBudget,
    check_format_spec,
    check_percent_format,
    compile_text,
    environment,
)
from runner.errors import CampaignError

WIDE = "999999999"


def render(source: str, **ctx: object) -> str:
    with TimeBudget():
        return compile_text(source).render(dict(ctx))


@pytest.mark.parametrize(
    "source",
    [
        '{{ "%' + WIDE + 'd" % 1 }}',
        '{{ "%.' + WIDE + 'f" % 1.5 }}',
        '{{ "%(a)' + WIDE + 's" % {"a": 1} }}',
        '{{ "%*d" % (' + WIDE + ", 1) }}",
        '{{ "%' + WIDE + 'd"|format(1) }}',
        '{{ "%' + WIDE + 's"|format(n) }}',
        '{{ "{:>' + WIDE + '}".format(n) }}',
        '{{ "{:.' + WIDE + 'f}".format(1.5) }}',
        '{{ "{:{w}}".format(n, w="' + WIDE + '") }}',
        '{{ "{0:0>' + "9" * 50 + '}".format(n) }}',
        '{{ ("{:>' + WIDE + '}"|safe).format(n) }}',
        '{% set x = "%' + WIDE + 'd" % 1 %}{{ x }}',
    ],
)
def test_huge_widths_are_refused_before_allocating(source: str):
    with pytest.raises(SecurityError, match="width or precision"):
        render(source, n=5)


@pytest.mark.parametrize(
    "source, expected",
    [
        ('{{ "%5d|" % n }}', "    5|"),
        ('{{ "%%' + WIDE + '" % () }}', "%" + WIDE),  # an escaped percent sign is no width
        ('{{ "%s and %.2f" % ("a", 2) }}', "a and 2.00"),
        ('{{ "%-4s|"|format(n) }}', "5   |"),
        ('{{ "{0:0>12}".format(n) }}', "000000000005"),
        ('{{ "{:,.2f}".format(1234.5) }}', "1,234.50"),
        ("{{ 17 % 5 }}", "2"),
        ('{{ "{:9>6}".format(1) }}', "999991"),  # a digit fill character
    ],
)
def test_ordinary_formatting_still_works(source: str, expected: str):
    assert render(source, n=5) == expected


def test_the_bounds_are_the_method_argument_bound():
    check_format_spec(f">{MAX_NUMBER_ARGUMENT}")
    check_percent_format(f"%{MAX_NUMBER_ARGUMENT}d", 1)
    with pytest.raises(SecurityError):
        check_format_spec(f">{MAX_NUMBER_ARGUMENT + 1}")
    with pytest.raises(SecurityError):
        check_percent_format(f"%.{MAX_NUMBER_ARGUMENT + 1}f", 1.0)
    with pytest.raises(SecurityError):
        check_format_spec("1" * 5000)  # int() of this would itself be refused


def test_constants_are_not_folded_while_compiling():
    env = environment()
    assert env.optimized is False
    code = env.compile('{{ "ab"|upper }}{{ "%3d" % 7 }}{{ 2 * 3 }}Hi {{ "lit" }}', raw=True)
    # Filters, `%` and arithmetic are computed when rendering (under the sandbox's limits)...
    assert "'AB'" not in code and "'  7'" not in code and "'6'" not in code
    # ...literal text and literals are still written as constants.
    assert "Hi " in code and "lit" in code
    assert render('{{ "ab"|upper }}{{ "%3d" % 7 }}{{ 2 * 3 }}Hi {{ "lit" }}') == "AB  76Hi lit"


def test_validate_under_a_memory_limit_refuses_without_a_traceback(tmp_path: Path):
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        textwrap.dedent(f"""\
        version: 1
        id: wide
        recipients:
          - to: "+15551230001"
        steps:
          - id: percent
            text: '{{{{ "%{WIDE}d" % 1 }}}}'
          - id: method
            text: '{{{{ "{{:>{WIDE}}}".format(1) }}}}'
          - id: filter
            text: '{{{{ "%{WIDE}d"|format(1) }}}}'
        """),
        encoding="utf-8",
    )
    # 512 MB of address space: the folded constant alone used to need 1 GB (and 20 s).
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2**29, 2**29)); "
        "from runner.cli import main; sys.argv = ['campaign', 'validate', sys.argv[1]]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(campaign)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output and "MemoryError" not in output
    assert "width or precision" in output


def header_source(tmp_path: Path, header: list[str], rows: list[list[str]]) -> RecipientSource:
    path = tmp_path / "r.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return RecipientSource(inline=False, file=str(path), format="csv")


DOC = load_text("version: 1\n", "c.yaml")
COLUMNS = 200_000


def test_a_200k_column_header_is_read(tmp_path: Path):
    header = ["to"] + [f"c{i}" for i in range(1, COLUMNS)]
    row = ["+15551230001"] + [str(i) for i in range(1, COLUMNS)]
    [rec] = list(iter_recipients(DOC, header_source(tmp_path, header, [row])))
    assert rec.problem is None and rec.chat == "+15551230001"
    assert len(rec.vars) == COLUMNS - 1 and rec.vars[f"c{COLUMNS - 1}"] == str(COLUMNS - 1)


def test_a_200k_column_header_with_repeats_is_one_short_error(tmp_path: Path):
    header = ["to"] + [f"c{i % (COLUMNS // 2)}" for i in range(1, COLUMNS)]
    with pytest.raises(CampaignError) as info:
        list(iter_recipients(DOC, header_source(tmp_path, header, [])))
    [problem] = info.value.problems
    assert problem.message.startswith(
        "the CSV header repeats column(s) c1, c10, c100, "
    )  # c0 is there once
    assert f"and {COLUMNS // 2 - 1 - 20:,} more" in problem.message
    assert len(problem.message) < 500


def test_a_200k_column_header_without_to_lists_a_few_columns(tmp_path: Path):
    header = [f"column_{i}" for i in range(COLUMNS)]
    with pytest.raises(CampaignError) as info:
        list(iter_recipients(DOC, header_source(tmp_path, header, [])))
    [problem] = info.value.problems
    assert "no column 'to'" in problem.message
    assert f"and {COLUMNS - 20:,} more" in (problem.hint or "") and len(problem.hint or "") < 1000


@pytest.mark.parametrize("pieces", [1, 3, 32, 33, 200])
def test_a_template_output_over_the_cap_is_refused_however_it_is_joined(pieces: int):
    # Up to 32 output pieces without a loop are joined at once and measured; more pieces, or a
    # loop, are counted as they come: the same refusal either way, and the same text under it.
    from runner.campaign.templates import MAX_OUTPUT, base_context

    each = MAX_OUTPUT // pieces + 1
    source = "".join("{{ big }}" for _ in range(pieces))
    ctx = {**base_context({}), "big": "x" * each}
    with pytest.raises(SecurityError, match="renders more than"):
        compile_text(source).render(ctx)
    ctx["big"] = "x" * (MAX_OUTPUT // pieces)
    assert compile_text(source).render(ctx) == ctx["big"] * pieces
    looped = compile_text("{% for i in range(" + str(pieces) + ") %}{{ big }}{% endfor %}")
    assert looped.render(ctx) == ctx["big"] * pieces
    ctx["big"] = "x" * each
    with pytest.raises(SecurityError, match="renders more than"):
        looped.render(ctx)
