"""Values YAML 1.1 silently changes (02134 -> 1116, yes -> true, 1:30 -> 90, 1.5e+3 -> 1500.0)
where a person meant text: located warnings, errors with `validate --strict`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.campaign.load import load_campaign
from runner.campaign.loader import load_text
from runner.campaign.schema import yaml_value_warnings
from runner.cli import main

CAMPAIGN = """\
version: 1
id: yaml-surprises
vars:
  zip: 02134
  store_hours: 9:30
  ok_word: "yes"
recipients:
  - to: "+12125550101"
    vars: {first_name: Ada, opted_in: yes, ref: 6.02e+23, plain: 12, code: 0x1F}
steps:
  - id: hello
    text: "Hi {{ first_name }}, zip {{ zip }}"
"""


@pytest.mark.parametrize(
    "value,why",
    [
        ("02134", "octal"),
        ("0755", "octal"),
        ("yes", "as true"),
        ("No", "as false"),
        ("on", "as true"),
        ("OFF", "as false"),
        ("1:30", "base-60"),
        ("1:30:00", "base-60"),
        ("1.5e+3", "exponent"),
        ("0x1F", "hexadecimal"),
    ],
)
def test_surprising_plain_scalars_are_warned(value: str, why: str):
    doc = load_text(f"vars:\n  v: {value}\n", "c.yaml")
    [w] = yaml_value_warnings(doc)
    assert why in w.message and f"'{value}'" in w.message
    assert (w.line, w.column, w.severity, w.path) == (2, 6, "warning", "vars.v")
    assert w.hint == f'quote it to keep the text: v: "{value}"'


@pytest.mark.parametrize(
    "value", ["12", "1.5", "true", "false", "'02134'", '"yes"', "0", "-3", "1_000"]
)
def test_ordinary_values_are_not_warned(value: str):
    assert yaml_value_warnings(load_text(f"vars:\n  v: {value}\n", "c.yaml")) == []


def test_only_where_text_is_meant():
    doc = load_text(
        "revision: 02\nsend: {rate: 1:30}\nvars: {a: yes}\nrecipients:\n  - to: x\n    vars: {b: 010}\n"
        "steps:\n  - id: a\n    text: [yes]\n    use_typing_indicator: yes\n",
        "c.yaml",
    )
    assert sorted(w.path for w in yaml_value_warnings(doc)) == [
        "recipients[0].vars.b",
        "steps[0].text[0]",
        "vars.a",
    ]


def test_campaign_loads_with_the_warnings(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    c = load_campaign(path)
    assert c.vars["zip"] == 1116  # YAML's reading, unchanged: the warning says so
    assert sorted((w.line, w.path) for w in c.warnings) == [
        (4, "vars.zip"),
        (5, "vars.store_hours"),
        (9, "recipients[0].vars.code"),
        (9, "recipients[0].vars.opted_in"),
        (9, "recipients[0].vars.ref"),
    ]


def test_validate_warns_and_strict_fails(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    plain = CliRunner().invoke(main, ["validate", str(path)])
    assert plain.exit_code == 0, plain.output
    assert (
        f"{path}:4:8: warning: vars.zip: YAML 1.1 reads a leading 0 as octal: 02134 becomes the number 1116"
        in plain.output
    )
    strict = CliRunner().invoke(main, ["validate", "--strict", str(path)])
    assert strict.exit_code == 1
    assert (
        f"{path}:4:8: error: vars.zip" in strict.output
        and f"FAIL {path}: 5 errors" in strict.output
    )


def test_the_example_campaigns_have_no_such_value():
    root = Path(__file__).resolve().parent.parent / "campaigns"
    for path in sorted(root.glob("*.yaml")):
        assert [w for w in load_campaign(path).warnings if w.layer == "yaml"] == [], path
