"""The campaign JSON Schema and the example campaigns that document the format.

The schema is what editors use to complete and explain campaign files, so it is checked for
completeness (every property titled, described and constrained) as well as correctness. The
examples are the format's living documentation: they must validate, render for every
recipient, obey the API rules and, together, show every feature of the format.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas" / "campaign.schema.json"
CAMPAIGNS = ROOT / "campaigns"
EXAMPLES = sorted(CAMPAIGNS.glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/campaign.schema.json"
EFFECTS = {
    "slam",
    "loud",
    "gentle",
    "invisible-ink",
    "echo",
    "spotlight",
    "balloons",
    "confetti",
    "love",
    "lasers",
    "fireworks",
    "celebration",
    "none",
}
URL = re.compile(r"^https?://\S+$")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the schema itself --------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema.get("$id")
    Draft202012Validator.check_schema(schema)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The node merged over the target of its local $ref (siblings of $ref win)."""
    if "$ref" not in node:
        return node
    target: Any = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(schema, target), **{k: v for k, v in node.items() if k != "$ref"}}


def _walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, node in _walk(schema):
        # "properties" as a keyword, not a property that happens to be called so
        if (
            isinstance(node, dict)
            and isinstance(node.get("properties"), dict)
            and not path.endswith("/properties")
        ):
            for name, prop in node["properties"].items():
                found.append((f"{path}/properties/{name}", prop))
    return found


def test_every_property_has_title_description_and_a_constraint(schema: dict[str, Any]) -> None:
    props = _properties(schema)
    assert len(props) > 50  # the walk really reaches nested $defs
    bad = []
    for path, prop in props:
        if not (prop.get("title") and prop.get("description")):
            bad.append(f"{path}: title/description")
        full = _resolve(schema, prop)
        constrained = any(k in full for k in ("enum", "pattern", "examples", "const")) or (
            full.get("type") in ("object", "array") and ("items" in full or "properties" in full)
        )
        if not constrained:
            bad.append(f"{path}: no enum/pattern/examples/const")
    assert bad == []


def test_every_object_with_properties_rejects_unknown_keys(schema: dict[str, Any]) -> None:
    open_objects = [
        path
        for path, node in _walk(schema)
        if isinstance(node, dict)
        and isinstance(node.get("properties"), dict)
        and not path.endswith("/properties")
        and node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_schema_examples_are_valid_for_their_own_property(schema: dict[str, Any]) -> None:
    # Editors offer `examples` as completions: a wrong one would teach users a mistake.
    resolver_root = Draft202012Validator(schema)
    for path, prop in _properties(schema):
        full = _resolve(schema, prop)
        sub = {k: v for k, v in full.items() if k not in ("title", "description", "examples")}
        sub_validator = resolver_root.evolve(schema={**sub, "$defs": schema["$defs"]})
        for example in full.get("examples", []):
            errors = [e.message for e in sub_validator.iter_errors(example)]
            assert errors == [], f"{path}: example {example!r}: {errors}"


def test_effect_enum_lists_the_13_api_names(schema: dict[str, Any]) -> None:
    effect = schema["$defs"]["step"]["properties"]["effect"]
    assert set(effect["anyOf"][0]["enum"]) == EFFECTS


# --- wrong documents are rejected where they are wrong -------------------------------------


def _minimal() -> dict[str, Any]:
    return {
        "version": 1,
        "id": "demo",
        "recipients": [{"to": "+15551230001"}],
        "steps": [{"id": "hello", "text": "Hi"}],
    }


def _set(doc: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


def test_minimal_campaign_is_valid(validator: Draft202012Validator) -> None:
    assert list(validator.iter_errors(_minimal())) == []


WRONG = [
    # (what, path to set, value, expected error path, expected validator)
    ("typo key in a step", ("steps", 0, "efect"), "confetti", ["steps", 0], "additionalProperties"),
    ("typo key at top", ("recipent",), [], [], "additionalProperties"),
    ("bad campaign id", ("id",), "Spring Sale", ["id"], "pattern"),
    ("campaign id too long", ("id",), "a" * 65, ["id"], "pattern"),
    ("version 2", ("version",), 2, ["version"], "const"),
    ("empty steps", ("steps",), [], ["steps"], "minItems"),
    ("step without id", ("steps", 0), {"text": "Hi"}, ["steps", 0], "required"),
    ("bad step id", ("steps", 0, "id"), "-hello", ["steps", 0, "id"], "pattern"),
    ("empty recipients", ("recipients",), [], ["recipients"], "minItems"),
    ("empty text list", ("steps", 0, "text"), [], ["steps", 0, "text"], "minItems"),
    ("revision 0", ("revision",), 0, ["revision"], "minimum"),
    ("bad delay", ("steps", 0, "delay"), "2 days", ["steps", 0, "delay"], "pattern"),
    (
        "long preview title",
        ("steps", 0, "link_preview"),
        {"title": "x" * 201},
        ["steps", 0, "link_preview", "title"],
        "maxLength",
    ),
    (
        "negative part_index",
        ("steps", 0, "reply_to"),
        {"guid": "g", "part_index": -1},
        ["steps", 0, "reply_to", "part_index"],
        "minimum",
    ),
    (
        "zero rate",
        ("send",),
        {"rate_per_second": 0},
        ["send", "rate_per_second"],
        "exclusiveMinimum",
    ),
    ("concurrency too high", ("send",), {"concurrency": 2000}, ["send", "concurrency"], "maximum"),
    (
        "window hour 24",
        ("schedule",),
        {"window": {"start": "24:00", "end": "06:00"}},
        ["schedule", "window", "start"],
        "pattern",
    ),
    (
        "long day name",
        ("schedule",),
        {"window": {"start": "09:00", "end": "17:00", "days": ["monday"]}},
        ["schedule", "window", "days", 0],
        "anyOf",
    ),  # the names in any case (issue 25)
    (
        "not_before without offset",
        ("schedule",),
        {"not_before": "2026-12-01T14:00:00"},
        ["schedule", "not_before"],
        "pattern",
    ),
    (
        "from_number without +",
        ("sender",),
        {"from_number": "15551234567"},
        ["sender", "from_number"],
        "pattern",
    ),
    (
        "empty from_number pool",
        ("sender",),
        {"from_number": []},
        ["sender", "from_number"],
        "minItems",
    ),
    (
        "pool member without +",
        ("sender",),
        {"from_number": ["+15551234567", "15551234568"]},
        ["sender", "from_number", 1],
        "pattern",
    ),
    # The value's type picks the branch (if/then), so errors point inside what the user meant.
    (
        "unquoted phone read as a number",
        ("recipients", 0, "to"),
        15551230001,
        ["recipients", 0, "to"],
        "type",
    ),
    (
        "unquoted phone in a chat list",
        ("recipients", 0, "to"),
        [15551230001, "+15551230002"],
        ["recipients", 0, "to", 0],
        "type",
    ),
    ("recipients is a bare file name", ("recipients",), "vip.csv", ["recipients"], "type"),
    (
        "typo in recipients file",
        ("recipients",),
        {"file": "vip.csv", "too": "phone"},
        ["recipients"],
        "additionalProperties",
    ),
    (
        "unknown recipients file format",
        ("recipients",),
        {"file": "x.txt", "format": "xls"},
        ["recipients", "format"],
        "enum",
    ),
    (
        "typo in an attachment",
        ("steps", 0, "attachments"),
        [{"url": "https://cdn.example.com/a.pdf", "nme": "a.pdf"}],
        ["steps", 0, "attachments", 0],
        "additionalProperties",
    ),
    ("variable name with a dash", ("vars",), {"first-name": "Ada"}, ["vars"], "pattern"),
    ("number in a text list", ("steps", 0, "text"), ["Hi", 3], ["steps", 0, "text", 1], "type"),
]


@pytest.mark.parametrize("what,path,value,where,kind", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_documents_are_rejected_at_the_right_path(
    validator: Draft202012Validator, what: str, path: tuple, value: Any, where: list, kind: str
) -> None:
    errors = list(validator.iter_errors(_set(_minimal(), path, value)))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [(where, kind)], what


def test_typo_error_names_the_unknown_key(validator: Draft202012Validator) -> None:
    (err,) = validator.iter_errors(_set(_minimal(), ("steps", 0, "efect"), "confetti"))
    assert "'efect'" in err.message


@pytest.mark.parametrize(
    "path,value",
    [
        # Left to the runner on purpose (it reports them once, with hints): see the schema's
        # descriptions. A pattern here would report the same mistake twice, worse worded.
        (("recipients", 0, "to"), "not-a-phone"),
        (("steps", 0, "effect"), "Invisible Ink"),
        (("steps", 0, "parts"), [{"text": "a", "url": "https://cdn.example.com/a.png"}]),
        (("steps", 0, "reply_to"), {}),
        (("steps", 0, "attachments"), ["https://cdn.example.com/{{ code }}.png"]),
    ],
)
def test_rules_left_to_the_runner_pass_the_schema(
    validator: Draft202012Validator, path: tuple, value: Any
) -> None:
    doc = _set(_minimal(), path, value)
    if path[-1] == "parts":
        doc["steps"][0]["effect"] = "confetti"  # effect x parts: also the runner's rule
    assert list(validator.iter_errors(doc)) == []


# --- the example campaigns ---------------------------------------------------------------


def test_there_are_at_least_four_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_validates_against_the_schema(validator: Draft202012Validator, path: Path) -> None:
    errors = [(list(e.absolute_path), e.message) for e in validator.iter_errors(load(path))]
    assert errors == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_self_documenting_and_safe(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == MODELINE
    assert sum(1 for line in text.splitlines() if "#" in line) >= 10  # explained by comments
    # only reserved example domains, only fictitious +1555 numbers
    for domain in re.findall(r"[\w.-]+@([\w-]+(?:\.[\w-]+)+)|https?://([\w.-]+)", text):
        host = domain[0] or domain[1]
        assert re.search(r"(^|\.)example\.(com|org)$", host), host
    for m in re.finditer(r"\+\d{8,15}", text):
        assert m.group().startswith("+1555"), m.group()
        assert text[m.start() - 1] == '"', f"{m.group()} must be quoted"


def _chat_values(doc: dict[str, Any], base: Path) -> list[Any]:
    return [r["to"] for r in _recipients(doc, base)]


def _recipients(doc: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    """The recipients as {to, vars}, read the way the design page describes."""
    spec = doc["recipients"]
    if isinstance(spec, list):
        return [{"to": r["to"], "vars": r.get("vars") or {}} for r in spec]
    file = base / spec["file"]
    column = spec.get("to", "to")
    fmt = spec.get("format") or file.suffix.lstrip(".")
    if fmt == "csv":
        # A spreadsheet's export: a byte-order mark, rows of empty cells (skipped), headers
        # written as people write them ("First Name" is the variable first_name).
        with file.open(newline="", encoding="utf-8-sig") as fh:
            rows = [
                row for row in csv.DictReader(fh) if any((v or "").strip() for v in row.values())
            ]
        name = (
            {h: re.sub(r"\W+", "_", h.strip().lower()).strip("_") for h in rows[0]} if rows else {}
        )
        if column not in name:
            column = next(
                h for h, n in name.items() if n == re.sub(r"\W+", "_", column.lower()).strip("_")
            )
        rows = [{(k if k == column else name[k]): v for k, v in row.items()} for row in rows]
    else:
        rows = [
            json.loads(line)
            for line in file.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    return [
        {"to": row[column], "vars": {k: v for k, v in row.items() if k != column}} for row in rows
    ]


_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_NOT_TEMPLATES = {"id", "when", "delay", "step"}


def _render(value: Any, ctx: dict[str, Any], key: str = "") -> Any:
    if isinstance(value, str) and key not in _NOT_TEMPLATES:
        return _ENV.from_string(value).render(ctx)
    if isinstance(value, list):
        return [_render(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, ctx, k) for k, v in value.items()}
    return value


def _when(expr: str, ctx: dict[str, Any]) -> bool:
    expr = expr.strip()
    if expr.startswith("{{") and expr.endswith("}}"):
        expr = expr[2:-2]
    return bool(_ENV.compile_expression(expr.strip(), undefined_to_none=False)(**ctx))


def _messages(step: dict[str, Any]) -> int:
    parts = step.get("parts") or []
    if any("link_preview" in p for p in parts):
        return len(parts)
    return len(step["text"]) if isinstance(step.get("text"), list) else 1


def _check_rules(step: dict[str, Any], earlier: dict[str, dict[str, Any]]) -> list[str]:
    """The design page's "rules checked before anything is sent", on a rendered step."""
    out = []
    parts = step.get("parts") or []
    batch = any("link_preview" in p for p in parts)
    effect = str(step.get("effect", "none")).lower().replace(" ", "-")
    if effect not in EFFECTS:
        out.append(f"unknown effect {effect}")
    if parts and effect != "none":
        out.append("effect with parts")
    if not any(k in step for k in ("text", "parts", "attachments")):
        out.append("no content")
    for p in parts:
        if ("text" in p) == ("url" in p):
            out.append("part needs text xor url")
        if "mention" in p and "text" not in p:
            out.append("mention without text")
        if "name" in p and "url" not in p:
            out.append("name without url")
        if batch and not (set(p) <= {"text", "link_preview"} and URL.match(p.get("text", ""))):
            out.append("batch part is not a single URL")
        if "url" in p and not URL.match(p["url"]):
            out.append(f"part url {p['url']}")
    rt = step.get("reply_to")
    if rt is not None:
        if isinstance(step.get("text"), list) or batch:
            out.append("reply_to with a multi-message step")
        if not any(k in rt for k in ("step", "message_id", "guid")):
            out.append("empty reply_to")
        if "step" in rt and (rt["step"] not in earlier or _messages(earlier[rt["step"]]) != 1):
            out.append(f"reply_to target {rt['step']}")
    if "link_preview" in step and not URL.match(step.get("text", "")):
        out.append("link_preview on a text that is not one URL")
    previews = [step.get("link_preview") or {}] + [p.get("link_preview") or {} for p in parts]
    for lp in previews:
        if len(lp.get("title", "")) > 200:
            out.append("preview title too long")
        if "image_url" in lp and not lp["image_url"].startswith("https://"):
            out.append("image_url not https")
    for a in step.get("attachments") or []:
        if not URL.match(a if isinstance(a, str) else a["url"]):
            out.append(f"attachment {a}")
    if (
        sum(
            len(t)
            for t in (
                [step["text"]] if isinstance(step.get("text"), str) else step.get("text") or []
            )
        )
        > 10_000
    ):
        out.append("text over 10,000 characters")
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_renders_for_every_recipient_and_obeys_the_api_rules(path: Path) -> None:
    doc = load(path)
    ids = [s["id"] for s in doc["steps"]]
    assert len(ids) == len(set(ids)), "step ids are unique"
    recipients = _recipients(doc, path.parent)
    assert recipients
    sent = 0
    for r in recipients:
        ctx = {"recipient": r["to"], **(doc.get("vars") or {}), **r["vars"]}
        earlier: dict[str, dict[str, Any]] = {}
        for step in doc["steps"]:
            if "when" in step and not _when(step["when"], ctx):
                continue
            # A step with variants: every variant, as the step it sends, obeys the rules.
            shared = {k: v for k, v in step.items() if k != "variants"}
            versions = [
                {**shared, **{k: v for k, v in variant.items() if k not in ("id", "weight")}}
                for variant in step.get("variants") or [shared]
            ]
            for version in versions:
                rendered = _render(version, ctx)
                assert _check_rules(rendered, earlier) == [], (path.name, r["to"], step["id"])
            earlier[step["id"]] = _render(versions[0], ctx)
            sent += 1
    assert sent > len(recipients)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_files_it_names_exist(path: Path) -> None:
    doc = load(path)
    if isinstance(doc["recipients"], dict):
        assert (path.parent / doc["recipients"]["file"]).is_file()
    for file in doc.get("suppress") or []:
        assert (path.parent / file).is_file()


def _window_crosses_midnight(schedule: dict[str, Any]) -> bool:
    window = schedule.get("window") or {}
    return bool(window) and window["end"] < window["start"]


def test_examples_together_show_every_feature() -> None:
    docs = {p.name: load(p) for p in EXAMPLES}
    steps = [s for d in docs.values() for s in d["steps"]]
    parts = [p for s in steps for p in s.get("parts") or []]
    attachments = [a for s in steps for a in s.get("attachments") or []]
    chats = [c for p in EXAMPLES for c in _chat_values(docs[p.name], p.parent)]
    files = [d["recipients"] for d in docs.values() if isinstance(d["recipients"], dict)]
    schedules = [d["schedule"] for d in docs.values() if "schedule" in d]
    whens = [s["when"].strip() for s in steps if "when" in s]
    pools = [
        d["sender"]["from_number"]
        for d in docs.values()
        if isinstance((d.get("sender") or {}).get("from_number"), list)
    ]
    jsonl = [CAMPAIGNS / f["file"] for f in files if f["file"].endswith(".jsonl")]
    suppress = [CAMPAIGNS / s for d in docs.values() for s in d.get("suppress") or []]
    features = {
        "inline recipients": any(isinstance(d["recipients"], list) for d in docs.values()),
        "csv with a named to column": any(
            f["file"].endswith(".csv") and f.get("to", "to") != "to" for f in files
        ),
        "jsonl with a blank line": any("\n\n" in f.read_text(encoding="utf-8") for f in jsonl),
        "multi-recipient chat": any(isinstance(c, list) and len(c) > 1 for c in chats),
        "email recipient": any(isinstance(c, str) and "@" in c for c in chats),
        "group id": any(isinstance(c, str) and c.startswith("grp_") for c in chats),
        "campaign vars": any(d.get("vars") for d in docs.values()),
        "recipient vars": any(
            isinstance(d["recipients"], list) and d["recipients"][0].get("vars")
            for d in docs.values()
        ),
        "spaced effect name": any(" " in str(s.get("effect", "")) for s in steps),
        "text list": any(isinstance(s.get("text"), list) for s in steps),
        "part text": any("text" in p and "link_preview" not in p for p in parts),
        "part url + name": any("url" in p and "name" in p for p in parts),
        "part mention": any("mention" in p for p in parts),
        "attachment string": any(isinstance(a, str) for a in attachments),
        "attachment url+name": any(isinstance(a, dict) and "name" in a for a in attachments),
        "link preview on a text": any("link_preview" in s for s in steps),
        "url-balloon batch": any(
            any("link_preview" in p for p in s.get("parts") or []) for s in steps
        ),
        "reply_to step": any("step" in (s.get("reply_to") or {}) for s in steps),
        "reply_to message_id": any("message_id" in (s.get("reply_to") or {}) for s in steps),
        "reply_to guid": any("guid" in (s.get("reply_to") or {}) for s in steps),
        "when bare": any(not w.startswith("{{") for w in whens),
        "when in braces": any(w.startswith("{{") for w in whens),
        "sender defaults": any(
            {"use_typing_indicator", "share_contact"} & set(d.get("sender", {}))
            for d in docs.values()
        ),
        "send settings": any(d.get("send") for d in docs.values()),
        "suppress file with comments": any(
            f.read_text(encoding="utf-8").lstrip().startswith("#") for f in suppress
        ),
        "timezone": any("timezone" in s for s in schedules),
        "timezone_var": any("timezone_var" in s for s in schedules),
        "window across midnight": any(
            _window_crossing for _window_crossing in map(_window_crosses_midnight, schedules)
        ),
        "window days": any("days" in (s.get("window") or {}) for s in schedules),
        "not_before/not_after": any({"not_before", "not_after"} <= set(s) for s in schedules),
        "from_number pool": any(len(p) > 1 for p in pools),
        "step delay": any("delay" in s for s in steps),
        "revision": any(d.get("revision", 1) > 1 for d in docs.values()),
    }
    assert [name for name, shown in features.items() if not shown] == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_runner_validates_the_example(path: Path) -> None:
    from click.testing import CliRunner

    from runner.cli import main

    result = CliRunner().invoke(main, ["validate", "--format", "json", str(path)])
    report = json.loads(result.output)
    errors = [e for f in report["files"] for e in f["errors"]]
    assert result.exit_code == 0, errors
    assert report["valid"] is True
