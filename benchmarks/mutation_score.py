"""Mutation score of the pure modules (issue 23: >= 85% killed), with mutmut.

The modules, the tests that pin them and the mutmut options are in pyproject.toml
([tool.mutmut]). This runs `mutmut run` (mutants are made in ./mutants, git-ignored; a rerun
tests only what changed) and prints, per module, the mutants killed, survived and never reached
by a test, and the score: killed / (all - equivalent). Equivalent mutants (a change no test can
see, because the behaviour is the same) are listed in EQUIVALENT below with the reason.

    python benchmarks/mutation_score.py              # run mutmut, then the table (minutes)
    python benchmarks/mutation_score.py --no-run     # the table of the last run
    python benchmarks/mutation_score.py --survivors  # also each survivor's name (`mutmut show NAME`)

Needs `pip install mutmut` (not in the test extra: it is slow, and not part of `pytest`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = (
    "runner.planning.keys",
    "runner.audience.chatids",
    "runner.audience.phones",
    "runner.campaign.schedule",
    "runner.window",
    "runner.consent.match",
)

# mutant -> why no test can tell it from the original (names as `mutmut results` prints them;
# a change to the module renumbers its mutants: check this list against `mutmut show NAME`).
_NEVER_REACHED = (
    "the unreachable AssertionError's message (a window with a day opens within 8 days)"
)
_REASONS_COMPLETE = (
    "_REASONS names every reason but IS_POSSIBLE, which never gets there: the default is never used"
)
# A window opens on a whole minute, so the first open instant of a spring-forward gap is the
# jump itself, a whole second: the bisection's precision and its final rounding cannot show.
_WHOLE_SECOND = "the gap's first open instant is a whole second: bisection precision cannot show"
# Schedule.timing stops at its fixed point, reached within two rounds per zone and hold: a
# larger bound (9 for 8, 3 per hold for 2) only adds rounds that are never run.
_SHORTCUT = (
    "the gate's shortcut for a message nothing can hold: Schedule.timing answers DUE "
    "for it too, only slower"
)
_ROUNDS = "a larger bound on the rounds: the fixed point is reached before either bound"
EQUIVALENT: dict[str, str] = {
    "runner.planning.keys.x_content_hash__mutmut_10": "'UTF-8' and 'utf-8' name one codec",
    "runner.audience.chatids.x__member__mutmut_6": "an email never looks like a phone (looks_like_phone refuses '@'): the email branch "
    "reads it either way",
    "runner.audience.chatids.x_url_path__mutmut_5": "'X' is unreserved: quote never escapes it",
    "runner.audience.phones.x_normalize_phone__mutmut_7": "every region phonenumbers supports has an example number: `if example` is always true",
    "runner.audience.phones.x_normalize_phone__mutmut_16": "the same: the else is never taken",
    "runner.audience.phones.x_normalize_phone__mutmut_35": "a parsed number always has a country code",
    "runner.audience.phones.x_normalize_phone__mutmut_41": _REASONS_COMPLETE,
    "runner.audience.phones.x_normalize_phone__mutmut_43": _REASONS_COMPLETE,
    "runner.audience.phones.x_normalize_phone__mutmut_44": _REASONS_COMPLETE,
    "runner.audience.phones.x_normalize_phone__mutmut_45": _REASONS_COMPLETE,
    "runner.campaign.schedule.x_parse_hhmm__mutmut_16": "an hour that is not digits fails int() with the same ValueError",
    "runner.window.xǁWindowǁnext_open__mutmut_8": "range(9) is range(0, 9)",
    "runner.window.xǁWindowǁnext_open__mutmut_11": "a tenth day is never reached: a window with a day opens within 8",
    "runner.window.xǁWindowǁnext_open__mutmut_26": "astimezone(None) for UTC: the same instants, compared and returned as aware datetimes",
    "runner.window.xǁWindowǁnext_open__mutmut_44": "'>' for '>=': an opening equal to `after` means `after` is inside, returned before",
    "runner.window.xǁWindowǁnext_open__mutmut_46": "the same, outside the gap",
    "runner.window.xǁWindowǁnext_open__mutmut_47": _NEVER_REACHED,
    "runner.window.xǁWindowǁnext_open__mutmut_48": _NEVER_REACHED,
    "runner.window.xǁWindowǁnext_open__mutmut_49": _NEVER_REACHED,
    **{
        f"runner.window.xǁWindowǁ_first_inside__mutmut_{n}": _WHOLE_SECOND
        for n in (5, 7, 12, 19, 25)
    },
    "runner.campaign.schedule.xǁScheduleǁtiming__mutmut_16": _ROUNDS,
    "runner.campaign.schedule.xǁScheduleǁtiming__mutmut_18": _ROUNDS,
    "runner.campaign.schedule.xǁScheduleǁtiming__mutmut_20": _ROUNDS,
    "runner.campaign.schedule.xǁScheduleǁtiming__mutmut_21": "never stopping at the fixed point: the rounds after it change nothing",
    "runner.campaign.schedule.xǁScheduleǁtiming__mutmut_26": "not_before is met in the first round, when the reason is still DUE; t only grows after",
    "runner.campaign.schedule.x_gate_for__mutmut_17": _SHORTCUT,
    "runner.campaign.schedule.x_gate_for__mutmut_37": _SHORTCUT,
    "runner.campaign.schedule.xǁScheduleǁstate__mutmut_4": "'now > not_after': a message at exactly not_after is expired by the check after the waits",
}

_LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[_ǁ]\S+): (?P<status>.+)$")


def results() -> dict[str, dict[str, list[str]]]:
    """module -> status -> mutant names, from `mutmut results --all true`."""
    done = subprocess.run(
        [_mutmut(), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in done.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            out[m["module"]][m["status"]].append(m["name"])
    return out


def _mutmut() -> str:
    found = shutil.which("mutmut") or str(Path(sys.executable).parent / "mutmut")
    if not Path(found).exists():
        sys.exit("mutmut is not installed: pip install mutmut")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-run", action="store_true", help="only read the last run's results")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args()
    if not args.no_run:
        subprocess.run(
            [_mutmut(), "run", "--max-children", str(args.max_children)],
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    found = results()
    print(f"{'module':<28} {'killed':>6} {'survived':>8} {'no test':>7} {'equiv':>5} {'score':>6}")
    for module in MODULES:
        by = found.get(module, {})
        total = sum(len(v) for v in by.values())
        equivalent = [n for v in by.values() for n in v if n in EQUIVALENT]
        killed = len(by.get("killed", [])) + len(by.get("caught by type check", []))
        survived = [n for n in by.get("survived", []) if n not in EQUIVALENT]
        untested = [n for n in by.get("no tests", []) if n not in EQUIVALENT]
        denominator = total - len(equivalent)
        score = f"{killed / denominator:.0%}" if denominator else "-"
        print(
            f"{module.removeprefix('runner.'):<28} {killed:>6} {len(survived):>8} "
            f"{len(untested):>7} {len(equivalent):>5} {score:>6}"
        )
        if args.survivors:
            for name in survived + untested:
                print(f"    {name}")
    for name, why in EQUIVALENT.items():
        print(f"equivalent: {name}: {why}")


if __name__ == "__main__":
    main()
