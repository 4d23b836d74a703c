"""The sandbox refuses what a hostile campaign in a pull request could use to exhaust a CI
runner, and still renders what real campaigns write."""

from __future__ import annotations

import time

import pytest
from jinja2.exceptions import SecurityError

from runner.campaign.templates import MAX_OUTPUT, compile_condition, compile_text, environment

CTX = {**environment().globals, "name": "Ada", "code": ""}


@pytest.mark.parametrize(
    "source",
    [
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
    ],
)
def test_hostile_templates_are_refused_before_they_allocate(source):
    with pytest.raises(SecurityError):
        compile_text(source).render(dict(CTX))


@pytest.mark.parametrize(
    "source,expected",
    [
        ("Hi {{ name }}", "Hi Ada"),
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ 2 ** 10 }}", "1024"),
        ("{{ name | center(7) }}", "  Ada  "),
        ("{{ 'hello world foo' | truncate(9) }}", "hello..."),
        ("{{ '%05d' | format(42) }}", "00042"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ code or 'none' }}", "none"),
    ],
)
def test_ordinary_templates_render(source, expected):
    assert compile_text(source).render(dict(CTX)) == expected


def test_output_just_under_the_bound_renders():
    n = MAX_OUTPUT // 100_000
    source = "{% for i in range(N) %}{{ 'x' * 100000 }}{% endfor %}".replace("N", str(n))
    out = compile_text(source).render(dict(CTX))
    assert len(out) == MAX_OUTPUT


@pytest.mark.parametrize(
    "source,expected",
    [
        ("code is defined", True),
        ("{{ code is defined }}", True),
        ("missing is defined", False),
        ("code != ''", False),
        ("name == 'Ada'", True),
    ],
)
def test_conditions_bare_or_braced(source, expected):
    assert compile_condition(source)(dict(CTX)) is expected


def test_a_null_value_is_an_error_not_the_word_none():
    from jinja2.exceptions import UndefinedError

    with pytest.raises(UndefinedError, match="null"):
        compile_text("Hi {{ name }}").render({**CTX, "name": None})
    assert compile_text("Hi {{ name or 'there' }}").render({**CTX, "name": None}) == "Hi there"


def test_a_template_that_loops_for_ever_is_stopped_by_the_time_budget(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from runner.campaign.templates import RENDER_BUDGET_SECONDS, TimeBudget
    from runner.cli import main

    # The default budget, shortened: this checks that validate applies it and says so, not its
    # length (2 s of spinning CPU). The budget's own tests count its clock's reads.
    assert TimeBudget().seconds == RENDER_BUDGET_SECONDS
    monkeypatch.setattr(TimeBudget.__init__, "__defaults__", (0.05, time.monotonic))

    (tmp_path / "c.yaml").write_text(
        'version: 1\nid: loop\nrecipients: [{to: "+15551230001"}]\nsteps:\n  - id: a\n'
        '    text: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}'
        '{% endfor %}x"\n'
    )
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "c.yaml")])
    assert result.exit_code == 1
    assert "rendering took longer than" in result.output and not isinstance(
        result.exception, Exception
    )


def test_tilde_and_plus_joins_are_bounded():
    big = "x" * 600_000
    with pytest.raises(SecurityError):
        compile_text("{{ big ~ big }}").render({**CTX, "big": big})
    with pytest.raises(SecurityError):
        compile_text("{{ big + big }}").render({**CTX, "big": big})
    assert (
        compile_text("{{ name ~ '!' }} {{ name + '?' }} {{ 1 + 2 }}").render(dict(CTX))
        == "Ada! Ada? 3"
    )


class _Ticks:
    """A clock that advances one second each time it is read: the budget's checks are counted,
    not timed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
        # The same range object iterated again: no call per outer iteration to check in.
        "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}x",
        # A string, not a range: the loop guard covers every iterable.
        "{% for a in big %}{% for b in big %}{% endfor %}{% endfor %}x",
        "{% for a in big if a %}{{ loop.index if false }}{% for b in big %}{% endfor %}{% endfor %}x",
    ],
)
def test_an_endless_loop_stops_at_the_budget(source):
    from runner.campaign.templates import TimeBudget

    clock = _Ticks()
    with pytest.raises(SecurityError, match="rendering took longer than 50 s"):
        with TimeBudget(50, clock=clock):
            compile_text(source).render({**CTX, "big": "x" * 100_000})
    assert 50 < clock.now < 60  # stopped at the first check past the deadline


def test_the_budget_installs_no_signal_and_leaves_nothing_behind():
    """The budget once used SIGALRM, a process-wide handler and timer (a timer left armed
    killed a CI run with 'Alarm clock'); it now only reads a clock while a render runs."""
    import signal

    from runner.campaign.templates import TimeBudget, loop_guard

    handler = signal.getsignal(signal.SIGALRM)
    with TimeBudget(0.5):
        assert compile_text("{% for i in range(3) %}{{ i }}{% endfor %}").render(dict(CTX)) == "012"
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    items = [1, 2]
    assert loop_guard(items) is items  # no budget active: loops run unguarded


def test_a_recipient_variable_cannot_switch_the_loop_guard_off():
    from runner.campaign.templates import TimeBudget

    clock = _Ticks()
    with pytest.raises(SecurityError, match="rendering took longer"):
        with TimeBudget(5, clock=clock):
            compile_text("{% for i in range(100000) %}{% endfor %}").render(
                {**CTX, "loop_guard": list, "t_1": list}
            )


def test_a_template_that_assigns_never_shares_its_context():
    from runner.campaign.templates import fast_context

    ctx = dict(CTX)
    shared = fast_context(ctx)
    setter = compile_text("{% set x = 'leak' %}{{ x }}")
    reader = compile_text("{{ x is defined }}")
    assert not setter.shareable and reader.shareable
    assert setter.render(ctx, shared) == "leak"
    assert reader.render(ctx, shared) == "False"
