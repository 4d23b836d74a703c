"""Layer 1 of validation: the campaign's JSON Schema, with errors a person can act on."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from runner.campaign.loader import value_warnings
from runner.errors import Problem, did_you_mean
from runner.source.document import Document, PathT, format_path

SCHEMA_NAME = "campaign.schema.json"


def schema_path(name: str = SCHEMA_NAME) -> Path:
    """Where the schema is: inside the wheel (runner/schemas) or, in a source checkout or an
    editable install, at the top of the repository (schemas/)."""
    here = Path(__file__).resolve().parent.parent  # runner/
    for candidate in (here / "schemas" / name, here.parent / "schemas" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} is missing from this installation of runner")


@lru_cache(maxsize=4)
def load_schema(name: str = SCHEMA_NAME) -> dict[str, Any]:
    return json.loads(schema_path(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _validator(name: str = SCHEMA_NAME) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _deepest(err: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the branch error that says most about what the user meant."""
    while err.context:
        inner = best_match(err.context)
        if inner is None:
            break
        err = inner
    return err


# Where a value is meant as text a template prints or the API receives: campaign vars, a
# recipient's vars, a step's content.
_TEXT_FIELDS = frozenset(
    {"text", "attachments", "parts", "link_preview", "from_number", "reply_to"}
)


def meant_as_text(path: PathT) -> bool:
    if len(path) >= 2 and path[0] == "vars":
        return True
    if len(path) >= 4 and path[0] == "recipients" and path[2] == "vars":
        return True
    return len(path) >= 3 and path[0] == "steps" and path[2] in _TEXT_FIELDS


def yaml_value_warnings(doc: Document) -> list[Problem]:
    """Values YAML 1.1 changed (vars: {zip: 02134} is 1116) where a person meant text."""
    return value_warnings(doc, meant_as_text)


def validate_schema(doc: Document, name: str = SCHEMA_NAME) -> list[Problem]:
    """Every schema problem of a document, located; `name`: the schema (campaign or policy)."""
    problems: list[Problem] = []
    for err in sorted(
        _validator(name).iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        problems.extend(_explain(doc, err))
    return problems


def _explain(doc: Document, err: ValidationError) -> list[Problem]:
    path = tuple(err.absolute_path)
    kind = err.validator
    if kind in ("oneOf", "anyOf") and err.context:
        inner = _deepest(err)
        if inner is not err and len(inner.absolute_path) >= len(err.absolute_path):
            return _explain(doc, inner)
    schema = err.schema if isinstance(err.schema, dict) else {}
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        out = []
        extra = (
            [k for k in err.instance if k not in allowed] if isinstance(err.instance, dict) else []
        )
        for key in extra:
            guess = did_you_mean(str(key), allowed)
            message = f"unknown key '{key}'" + (f" — did you mean '{guess}'?" if guess else "")
            hint = (
                f"rename it to '{guess}'"
                if guess
                else f"allowed here: {', '.join(allowed)}"
                if allowed
                else "remove it"
            )
            out.append(doc.problem(path + (key,), message, hint, key=True, layer="schema"))
        return out
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [
            doc.problem(
                path,
                f"missing required key '{missing}'" + _where(path),
                _describe(schema.get("properties", {}).get(missing, {})),
                layer="schema",
            )
        ]
    if kind == "type":
        want: Any = err.validator_value
        wants = [want] if isinstance(want, str) else list(want)
        names = " or ".join(_TYPE_NAMES.get(w, w) for w in wants)
        type_hint = _describe(schema)
        if (
            "string" in wants
            and isinstance(err.instance, (int, float))
            and not isinstance(err.instance, bool)
        ):
            type_hint = "quote the value: YAML read it as a number"
        return [
            doc.problem(
                path, f"expected {names}, got {_type_of(err.instance)}", type_hint, layer="schema"
            )
        ]
    if kind in ("enum", "const"):
        choices: list[Any] = (
            err.validator_value
            if kind == "enum"  # type: ignore[assignment]
            else [err.validator_value]
        )
        guess = did_you_mean(str(err.instance), [str(c) for c in choices])
        message = f"{err.instance!r} is not allowed here" + (
            f" — did you mean '{guess}'?" if guess else ""
        )
        return [
            doc.problem(
                path, message, "use one of: " + ", ".join(map(str, choices)), layer="schema"
            )
        ]
    if kind == "pattern":
        return [
            doc.problem(
                path,
                f"{err.instance!r} does not have the expected form",
                _describe(schema) or f"it must match {err.validator_value}",
                layer="schema",
            )
        ]
    if kind == "minItems" and isinstance(err.validator_value, int) and err.validator_value > 1:
        return [
            doc.problem(
                path,
                f"needs at least {err.validator_value} items",
                _describe(schema),
                layer="schema",
            )
        ]
    if kind in ("minItems", "minLength", "minProperties"):
        return [doc.problem(path, "must not be empty", _describe(schema), layer="schema")]
    if kind in ("maxLength", "maxItems"):
        return [
            doc.problem(
                path,
                f"is too long (at most {err.validator_value})",
                _describe(schema),
                layer="schema",
            )
        ]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return [
            doc.problem(
                path,
                f"{err.instance!r} is out of range ({kind} {err.validator_value})",
                _describe(schema),
                layer="schema",
            )
        ]
    return [doc.problem(path, err.message, _describe(schema), layer="schema")]


def _where(path: tuple) -> str:
    return f" in {format_path(path)}" if path else ""


def _describe(schema: dict[str, Any]) -> str | None:
    """A hint from the schema's own words: its description's first sentence and an example."""
    if not isinstance(schema, dict):
        return None
    desc = (schema.get("description") or "").strip().split("\n")[0]
    if ". " in desc:
        desc = desc.split(". ")[0] + "."
    examples = schema.get("examples")
    if examples:
        ex = json.dumps(examples[0], ensure_ascii=False)
        desc = f"{desc} Example: {ex}".strip()
    return desc or None
