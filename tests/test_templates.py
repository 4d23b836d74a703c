"""The sandbox refuses what a hostile campaign in a pull request could use to exhaust a CI
runner, and still renders what real campaigns write."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from runner.campaign.templates import MAX_OUTPUT, compile_condition, compile_text, environment

CTX = {**environment().globals, "name": "Ada", "code": ""}


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**9 }}",
    "{{ ['x'] * 10**8 }}",
    "{{ 10 ** 10 ** 10 }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ 'x' | center(1000000000) }}",
    "{{ '%*s' | format(1000000000, 'x') }}",
    "{{ 'x y' | wordwrap(1000000000) }}",
    "{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
])
def test_hostile_templates_are_refused_before_they_allocate(source):
    with pytest.raises(SecurityError):
        compile_text(source).render(dict(CTX))


@pytest.mark.parametrize("source,expected", [
    ("Hi {{ name }}", "Hi Ada"),
    ("{{ 'ab' * 3 }}", "ababab"),
    ("{{ 2 ** 10 }}", "1024"),
    ("{{ name | center(7) }}", "  Ada  "),
    ("{{ 'hello world foo' | truncate(9) }}", "hello..."),
    ("{{ '%05d' | format(42) }}", "00042"),
    ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
    ("{{ code or 'none' }}", "none"),
])
def test_ordinary_templates_render(source, expected):
    assert compile_text(source).render(dict(CTX)) == expected


def test_output_just_under_the_bound_renders():
    n = MAX_OUTPUT // 100_000
    source = "{% for i in range(N) %}{{ 'x' * 100000 }}{% endfor %}".replace("N", str(n))
    out = compile_text(source).render(dict(CTX))
    assert len(out) == MAX_OUTPUT


@pytest.mark.parametrize("source,expected", [
    ("code is defined", True), ("{{ code is defined }}", True), ("missing is defined", False),
    ("code != ''", False), ("name == 'Ada'", True),
])
def test_conditions_bare_or_braced(source, expected):
    assert compile_condition(source)(dict(CTX)) is expected


def test_a_null_value_is_an_error_not_the_word_none():
    from jinja2.exceptions import UndefinedError

    with pytest.raises(UndefinedError, match="null"):
        compile_text("Hi {{ name }}").render({**CTX, "name": None})
    assert compile_text("Hi {{ name or 'there' }}").render({**CTX, "name": None}) == "Hi there"


def test_a_template_that_loops_for_ever_is_stopped_by_the_time_budget(tmp_path):
    from click.testing import CliRunner

    from runner.cli import main

    (tmp_path / "c.yaml").write_text(
        'version: 1\nid: loop\nrecipients: [{to: "+15551230001"}]\nsteps:\n  - id: a\n'
        '    text: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}'
        '{% endfor %}x"\n')
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "c.yaml")])
    assert result.exit_code == 1
    assert "rendering took longer than" in result.output and "Traceback" not in result.output


def test_tilde_and_plus_joins_are_bounded():
    big = "x" * 600_000
    with pytest.raises(SecurityError):
        compile_text("{{ big ~ big }}").render({**CTX, "big": big})
    with pytest.raises(SecurityError):
        compile_text("{{ big + big }}").render({**CTX, "big": big})
    assert compile_text("{{ name ~ '!' }} {{ name + '?' }} {{ 1 + 2 }}").render(dict(CTX)) == "Ada! Ada? 3"


def test_no_timer_outlives_the_renders():
    """A budget timer left armed would deliver SIGALRM later (killing the process once Python
    restores the default handler at exit: CI once failed with 'Alarm clock')."""
    import subprocess
    import sys

    code = ("import time\n"
            "from runner.planning.render import _budget\n"
            "from runner.campaign.templates import compile_text, environment\n"
            "with _budget():\n"
            "    compile_text('{{ 1 + 1 }}').render(dict(environment().globals))\n"
            "time.sleep(2.5)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)


def test_a_template_that_assigns_never_shares_its_context():
    from runner.campaign.templates import fast_context

    ctx = dict(CTX)
    shared = fast_context(ctx)
    setter = compile_text("{% set x = 'leak' %}{{ x }}")
    reader = compile_text("{{ x is defined }}")
    assert not setter.shareable and reader.shareable
    assert setter.render(ctx, shared) == "leak"
    assert reader.render(ctx, shared) == "False"
