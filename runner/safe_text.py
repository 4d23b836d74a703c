"""The one place that makes text from a campaign, a data file or a server safe for where it goes.

Everything a pull request or an API answer controls is hostile input: file names, ids, template
text, error messages. Each sink has its own dangers, and one function per sink:

- a terminal or a CI job log (``terminal``, ``one_line``): control characters (ESC, OSC 52's
  BEL, CR, bidi overrides) are shown as ``\\uXXXX`` escapes, and no line can start with ``::``
  or hold ``##[`` (GitHub runs such lines as workflow commands: ``::add-mask::``,
  ``::stop-commands::``, ``::error file=...``). The escapes are JSON escapes, so a JSON document
  passed through ``terminal`` still parses to the same values;
- a workflow command's data and properties (``command_data``, ``command_property``): the
  toolkit's percent escapes;
- markdown for a pull-request comment or a step summary (``md_text``, ``md_code``): markup
  escaped, no raw HTML (so no ``<!--`` that hides the rest, no image that loads), @-mentions
  that do not ping, code spans that the text cannot close, one line each;
- ``$GITHUB_OUTPUT``/``$GITHUB_ENV`` (``github_output``): ``name=value`` or a heredoc whose
  delimiter is not in the value, so a value cannot add a line of its own.
"""

from __future__ import annotations

import re
import secrets

# Control characters (Unicode category Cc: C0, DEL, C1), bidi overrides and isolates (Trojan
# Source) and the Unicode line/paragraph separators: each shown as an escape. Cc is exactly
# \x00-\x1f and \x7f-\x9f, so a character class finds them at C speed.
_INVISIBLE = "\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff"
_CONTROLS = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_INVISIBLE}]")
_CONTROLS_BUT_LINES = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_INVISIBLE}]")  # keeps \t, \n
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    return _NAMED.get(ch) or f"\\u{ord(ch):04x}"


def _escape_controls(text: str, keep: str) -> str:
    return (_CONTROLS_BUT_LINES if keep else _CONTROLS).sub(_escape_char, text)


# GitHub's runner reads a line as a command when, after leading white space, it starts with
# "::" (v2), or when it holds "##[" anywhere (v1).
_COMMAND_START = re.compile(r"^([^\S\n]*):(?=:)", re.MULTILINE)


def _no_commands(text: str) -> str:
    if "::" not in text and "##[" not in text:
        return text
    return _COMMAND_START.sub(r"\1\\u003a", text.replace("##[", "#\\u0023["))


def terminal(text: str) -> str:
    """Multi-line output for a terminal or a job log: newlines and tabs kept, every other
    control character escaped, no line a workflow command."""
    return _no_commands(_escape_controls(text, keep="\n\t"))


def one_line(text: object) -> str:
    """One value (a name, an id, a server's message) inside a line: newlines escaped too."""
    return _no_commands(_escape_controls(str(text), keep=""))


def styled_terminal(text: str) -> str:
    """``terminal`` for output that holds the runner's own colours: SGR sequences
    (``ESC[...m``) kept, every other control escaped. The values inside were made safe with
    ``one_line`` before they were styled."""
    parts = re.split(r"(\x1b\[[0-9;]*m)", text)
    return _no_commands(
        "".join(p if i % 2 else _escape_controls(p, keep="\n\t") for i, p in enumerate(parts))
    )


def command_data(text: str) -> str:
    """A workflow command's message (after the second ``::``): percent escapes of the toolkit
    (actions/toolkit command.ts), control characters escaped, no ``##[``."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _escape_controls(text, keep="").replace("##[", "#\\u0023[")


def command_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``)."""
    return command_data(text).replace(":", "%3A").replace(",", "%2C")


_MD_SPECIAL = str.maketrans(
    {c: "\\" + c for c in "\\`*_[]!#|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}
)


def _flat(text: str) -> str:
    """One line: any line break is a space, other control characters escaped."""
    text = re.sub(r"\r\n|[\r\n\u0085\u2028\u2029]", " ", text)
    return _escape_controls(text, keep="")


def md_text(text: object) -> str:
    """Campaign text as markdown data: no markup (links, images, emphasis, tables), no HTML
    (``<`` is ``&lt;``), an @-mention that does not ping (a zero-width space after the @),
    on one line."""
    return _flat(str(text)).translate(_MD_SPECIAL).replace("@", "@\u200b")


def md_code(text: object, *, in_table: bool = False) -> str:
    """``text`` as an inline code span that nothing inside can close: the fence is one backtick
    longer than the longest run of backticks in the text. Inside a table, ``|`` is escaped
    (GitHub splits cells on it even in code)."""
    body = _flat(str(text))
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    if body.startswith(("`", " ")) or body.endswith(("`", " ")):
        body = f" {body} "
    if in_table:
        body = body.replace("|", "\\|")
    return f"{fence}{body}{fence}" if body else "` `"


_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def github_output(name: str, value: str) -> str:
    """One entry for ``$GITHUB_OUTPUT`` or ``$GITHUB_ENV``: ``name=value`` for a plain
    one-line value, else a heredoc with a random delimiter the value does not hold."""
    if not _OUTPUT_NAME.match(name):
        raise ValueError(f"not a safe output name: {name!r}")
    if not re.search(r"[\r\n\u0085\u2028\u2029]", value):
        return f"{name}={value}\n"
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value:
            return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
