"""Load a YAML campaign file into plain Python data, keeping the source position of every node.

Safety first: only YAML's standard scalar types are constructed (no python tags), duplicate
keys are errors, the file size and the number of nodes after alias expansion are capped (so an
alias bomb is refused after a bounded amount of work), and every problem points at a line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from runner.errors import CampaignError, Problem
from runner.source.document import Document, PathT, format_path
from runner.source.paths import PathError, read_capped

MAX_FILE_BYTES = 10 * 1024 * 1024
# A real campaign has a few hundred nodes; an inline list of 100k recipients a few hundred
# thousand. A billion-laughs document reaches any cap within microseconds of work per node.
MAX_NODES = 2_000_000

# YAML 1.1 reads these as timestamps; campaigns want the text (ISO strings, validated later).
_KEEP_AS_TEXT = {"tag:yaml.org,2002:timestamp"}
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}


class _Loader(yaml.SafeLoader):
    """SafeLoader that composes only; construction is ours (see ``_Builder``)."""


_TAG_HINT = "remove the tag: campaigns use plain YAML values only (no python or custom tags)"


_MAX_SURPRISES = 10_000
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_EXPONENT = re.compile(r"[eE][-+]?[0-9]+$")
_HEX = re.compile(r"^[-+]?0x[0-9a-fA-F_]+$")


def _surprise(node: yaml.ScalarNode, value: Any) -> str | None:
    """Why YAML 1.1 read this plain scalar as a value its writer likely meant as text, or None."""
    text = node.value
    if isinstance(value, bool):
        if text.lower() not in ("true", "false"):
            return f"YAML 1.1 reads {text} as {'true' if value else 'false'}"
        return None
    if isinstance(value, int):
        if _SEXAGESIMAL.match(text):
            return f"YAML 1.1 reads {text} as base-60, the number {value}"
        if _LEADING_ZERO.match(text):
            return f"YAML 1.1 reads a leading 0 as octal: {text} becomes the number {value}"
        if _HEX.match(text):
            return f"YAML reads {text} as hexadecimal, the number {value}"
        return None
    if isinstance(value, float):
        if _SEXAGESIMAL.match(text):
            return f"YAML 1.1 reads {text} as base-60, the number {value:g}"
        if _EXPONENT.search(text):
            return f"YAML reads {text} as a number in exponent form ({value:g})"
    return None


def value_warnings(doc: Document, roots: Callable[[PathT], bool]) -> list[Problem]:
    """A located warning for each value YAML changed (02134, yes, 1:30, 1e5) under the paths
    ``roots`` accepts: where a person meant text (variables, message content)."""
    out = []
    for path, (text, why) in doc.surprises.items():
        if not roots(path):
            continue
        key = path[-1]
        quoted = f'{key}: "{text}"' if isinstance(key, str) else f'"{text}"'
        out.append(
            doc.problem(
                path,
                f"{format_path(path)}: {why}, not the text '{text}'",
                f"quote it to keep the text: {quoted}",
                layer="yaml",
                severity="warning",
            )
        )
    return out


def _short_tag(tag: str) -> str:
    return (
        "!!" + tag.removeprefix("tag:yaml.org,2002:")
        if tag.startswith("tag:yaml.org,2002:")
        else tag
    )


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


# YAML counts NEL, LS, PS and a lone CR as line breaks; editors, grep and GitHub count "\n".
_OTHER_BREAKS = re.compile("[\x85\u2028\u2029]|\r(?!\n)")


class _Lines:
    """Line and column of a character offset, counted on "\n" only."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def __call__(self, node: yaml.Node) -> tuple[int, int]:
        index = node.start_mark.index
        line = bisect.bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1


class _Builder:
    def __init__(self, loader: _Loader, file: str, text: str = "") -> None:
        self.loader = loader
        self.mark = _Lines(text) if _OTHER_BREAKS.search(text) else _mark
        self.file = file
        self.count = 0
        self.positions: dict[PathT, tuple[int, int]] = {}
        self.key_positions: dict[PathT, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.block_scalars: set[PathT] = set()
        self.surprises: dict[PathT, tuple[str, str]] = {}

    def fail(self, node: yaml.Node, path: PathT, message: str, hint: str | None = None) -> None:
        line, col = self.mark(node)
        self.problems.append(
            Problem(
                message,
                file=self.file,
                line=line,
                column=col,
                path=format_path(path),
                hint=hint,
                layer="yaml",
            )
        )

    def build(self, node: yaml.Node, path: PathT) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise CampaignError(
                Problem(
                    f"the document expands to more than {MAX_NODES:,} values (an alias bomb?)",
                    file=self.file,
                    line=self.mark(node)[0],
                    column=self.mark(node)[1],
                    hint="remove the repeated anchors/aliases (&name / *name)",
                    layer="yaml",
                )
            )
        # Positions of deep alias expansions would be the anchor's; record each path once.
        if len(self.positions) < MAX_NODES:
            self.positions[path] = self.mark(node)
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node, path)
            if node.style is None and len(self.surprises) < _MAX_SURPRISES:
                why = _surprise(node, value)
                if why is not None:
                    self.surprises[path] = (node.value, why)
            return value
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.fail(node, path, f"unsupported YAML tag {_short_tag(node.tag)}", _TAG_HINT)
                return None
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self.fail(node, path, f"unsupported YAML tag {_short_tag(node.tag)}", _TAG_HINT)
                return None
            return self.mapping(node, path)
        self.fail(node, path, "unsupported YAML node")  # pragma: no cover - yaml has 3 kinds
        return None

    def scalar(self, node: yaml.ScalarNode, path: PathT) -> Any:
        if node.style in ("|", ">"):
            self.block_scalars.add(path)
        if node.tag in _KEEP_AS_TEXT:
            return node.value
        if node.tag not in _PLAIN_TAGS:
            self.fail(node, path, f"unsupported YAML tag {_short_tag(node.tag)}", _TAG_HINT)
            return None
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self.fail(node, path, f"unsupported YAML tag {_short_tag(node.tag)}", _TAG_HINT)
            return None
        except ValueError as err:  # e.g. an integer of more than 4,300 digits
            self.fail(node, path, f"cannot read this value: {err}", "use a shorter value")
            return None

    def mapping(self, node: yaml.MappingNode, path: PathT) -> dict:
        result: dict = {}
        merged: dict = {}
        seen: dict[Any, yaml.Node] = {}
        # Merged keys first, wherever `<<` stands: the mapping's own keys (and their
        # positions) must win over the anchor's.
        is_merge = "tag:yaml.org,2002:merge"
        ordered = [kv for kv in node.value if kv[0].tag == is_merge] + [
            kv for kv in node.value if kv[0].tag != is_merge
        ]
        for key_node, value_node in ordered:
            if key_node.tag == is_merge:
                # `<<: *defaults` — merged keys are defaults, the mapping's own keys win.
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self.fail(src, path, "a merge key (<<) must refer to a mapping")
                        continue
                    for k, v in self.mapping(src, path).items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(
                    key_node, path, "a mapping key must be a plain value, not a list or mapping"
                )
                continue
            key = self.scalar(key_node, path)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                self.fail(key_node, path, f"unsupported mapping key {key!r}")
                continue
            if not isinstance(key, str):
                key = str(key_node.value)
            if key in seen:
                first = self.mark(seen[key])[0]
                self.fail(
                    key_node,
                    path + (key,),
                    f"duplicate key '{key}' (first defined on line {first})",
                    "remove one of them: YAML would silently keep only the last",
                )
                continue
            seen[key] = key_node
            self.key_positions[path + (key,)] = self.mark(key_node)
            result[key] = self.build(value_node, path + (key,))
        for k, v in merged.items():
            result.setdefault(k, v)
        return result


_HUGE = 10**12


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """How many values the node becomes once aliases are expanded, computed on the alias
    graph (each distinct node once), so a billion-laughs document costs microseconds."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        return _HUGE  # a recursive alias: infinite once expanded
    active.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size = min(_HUGE, size + _expanded_size(child, memo, active))
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size = min(
                _HUGE, size + _expanded_size(k, memo, active) + _expanded_size(v, memo, active)
            )
    active.discard(key)
    memo[key] = size
    return size


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


_KEY = re.compile(r"^(\s*)(?:-\s+)?([^\s#:][^:#]*?)\s*:(?:\s|$)")
_OPENS_QUOTE = re.compile(r"""^\s*(?:-\s+)?(?:[^\s#:'"][^:#]*?\s*:\s+)?(["'])""")


def _key_at(line_text: str) -> tuple[int, str] | None:
    m = _KEY.match(line_text)
    return (m.start(2), m.group(2).strip()) if m else None


def _unclosed_quote(lines: list[str], upto: int) -> tuple[int, int] | None:
    """The first line (0-based) before ``upto`` whose value opens a quote it does not close,
    with the quote's column: YAML then reads on, lines further, to the next quote."""
    for n in range(min(upto + 1, len(lines))):
        m = _OPENS_QUOTE.match(lines[n])
        if not m:
            continue
        quote, rest = m.group(1), lines[n][m.end() :]
        closed = (
            re.search(r'(?<!\\)"', rest)
            if quote == '"'
            else re.search(r"'", rest.replace("''", ""))
        )
        if not closed:
            return n, m.end()
    return None


def explain_syntax_error(err: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """A YAML syntax error in plain words, located where the problem starts (the line a quote
    opens, the key out of line), with the parser's own text kept after the sentence."""
    mark = err.problem_mark or err.context_mark
    parser = err.problem or str(err)
    if err.context:
        parser = f"{parser} ({err.context})"
    line, col = _line_col(text, mark.index) if mark is not None else (None, None)
    lines = text.split("\n")
    plain, hint = "", "check indentation, colons and quotes around this line"
    problem, context = err.problem or "", err.context or ""
    if "\t" in problem or "'\\t'" in problem:
        plain = "tabs cannot indent YAML"
        hint = "indent with spaces only (set your editor to insert spaces for Tab)"
    elif "quoted scalar" in context and err.context_mark is not None:
        line, col = _line_col(text, err.context_mark.index)
        plain = "this quote is never closed"
        hint = 'close the quote at the end of the value; inside "..." write a quote as \\" (or use \'...\')'
    elif line is not None:
        quote = _unclosed_quote(lines, line - 1)
        if quote is not None and quote[0] < line - 1:
            line, col = quote[0] + 1, quote[1]
            plain = "this quote is not closed on its line, so YAML reads on to the next quote"
            hint = 'close the quote at the end of the value; inside "..." write a quote as \\" (or use \'...\')'
        else:
            here = _key_at(lines[line - 1]) if line - 1 < len(lines) else None
            above = next(
                (
                    _key_at(lines[n])
                    for n in range(line - 2, -1, -1)
                    if lines[n].strip()
                    and not lines[n].lstrip().startswith("#")
                    and _key_at(lines[n])
                ),
                None,
            )
            if (
                here is not None
                and above is not None
                and here[0] != above[0]
                and (
                    "mapping values are not allowed" in problem or "expected <block end>" in problem
                )
            ):
                more = "more" if here[0] > above[0] else "less"
                plain = (
                    f"the key '{here[1]}' is out of line: indented {here[0]} space(s), "
                    f"{more} than the key '{above[1]}' above it ({above[0]})"
                )
                hint = (
                    f"indent '{here[1]}' like the other keys of its mapping; a key belongs to the "
                    f"mapping whose keys it lines up with"
                )
                col = here[0] + 1
            elif "mapping values are not allowed" in problem:
                plain = "a ': ' inside a plain value"
                hint = "quote the value when it contains ': ' (text: \"Note: ...\")"
    message = (
        f"YAML syntax error: {plain} (the parser says: {parser})"
        if plain
        else f"YAML syntax error: {parser}"
    )
    return Problem(message, file=file, line=line, column=col, hint=hint, layer="yaml")


def load_text(text: str, file: str) -> Document:
    """Parse ``text`` (the content of ``file``) into a Document; raises CampaignError."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise CampaignError(
            Problem(
                f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
                file=file,
                layer="yaml",
                hint="move recipients to a CSV or JSONL file (recipients: {file: ...})",
            )
        )
    loader = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        raise CampaignError(explain_syntax_error(err, text, file)) from None
    except yaml.reader.ReaderError as err:
        line, col = _line_col(text, err.position)
        raise CampaignError(
            Problem(
                f"YAML error: unacceptable character {err.character!r} ({err.reason})",
                file=file,
                line=line,
                column=col,
                layer="yaml",
                hint="remove the control character (copied from another program?)",
            )
        ) from None
    except yaml.YAMLError as err:
        raise CampaignError(Problem(f"YAML error: {err}", file=file, layer="yaml")) from None
    except RecursionError:
        raise CampaignError(
            Problem("the document is nested too deeply", file=file, layer="yaml")
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise CampaignError(
            Problem(
                "the file is empty",
                file=file,
                line=1,
                column=1,
                layer="yaml",
                hint="a campaign needs at least version, id, recipients and steps",
            )
        )
    total = _expanded_size(root, {}, set())
    if total > MAX_NODES:
        raise CampaignError(
            Problem(
                f"the document expands to {'more than ' if total == _HUGE else ''}{min(total, _HUGE):,} "
                f"values through aliases, over the {MAX_NODES:,} limit (an alias bomb?)",
                file=file,
                line=1,
                column=1,
                layer="yaml",
                hint="remove the repeated anchors/aliases (&name / *name)",
            )
        )
    builder = _Builder(loader, file, text)
    try:
        data = builder.build(root, ())
    except RecursionError:
        raise CampaignError(
            Problem("the document is nested too deeply", file=file, layer="yaml")
        ) from None
    if builder.problems:
        raise CampaignError(builder.problems)
    return Document(
        data=data,
        file=file,
        positions=builder.positions,
        key_positions=builder.key_positions,
        block_scalars=builder.block_scalars,
        surprises=builder.surprises,
    )


def load_file(path: str | Path) -> Document:
    """Read and parse a campaign file. Only a regular file is read, and at most
    MAX_FILE_BYTES + 1 bytes of it: `stat` sizes lie (/proc) and a device never ends."""
    try:
        raw = read_capped(path, MAX_FILE_BYTES)
    except PathError as err:
        raise CampaignError(
            Problem(f"cannot read file: {err.message}", file=str(path), hint=err.hint, layer="yaml")
        ) from None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        raise CampaignError(
            Problem(
                f"cannot read file: {getattr(err, 'strerror', None) or err}",
                file=str(path),
                hint="check the path",
            )
        ) from None
    if raw is None:
        raise CampaignError(
            Problem(
                f"the file is over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit",
                file=str(path),
                layer="yaml",
                hint="move recipients to a CSV or JSONL file (recipients: {file: ...})",
            )
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CampaignError(
            Problem(
                f"the file is not UTF-8 text (byte {err.start})",
                file=str(path),
                layer="yaml",
                hint="save it as UTF-8",
            )
        ) from None
    # Path.read_text's universal newlines, which positions and block scalars were counted with.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return load_text(text, str(path))
