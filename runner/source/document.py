"""A parsed YAML file that knows where each value stands in its source: the one shape every
layer reads campaign and suppression files through, so its problems carry file, line and path.

It lives outside `campaign` and `audience` because both read it (a campaign names recipient
and suppression files; those files are YAML documents too) and neither may import the other
both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.errors import Problem

PathT = tuple[str | int, ...]


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """Parsed YAML plus where each value (and each mapping key) stands in the source."""

    data: Any
    file: str
    positions: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    # Literal/folded (| or >) strings: their text starts on the line after the indicator.
    block_scalars: set[PathT] = field(default_factory=set)
    # Plain scalars YAML 1.1 read as something else than the text written (02134 -> 1116):
    # path -> (the text as written, why).
    surprises: dict[PathT, tuple[str, str]] = field(default_factory=dict)

    def locate(self, path: PathT, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the node at ``path``, or of its nearest ancestor."""
        path = tuple(path)
        if key and path in self.key_positions:
            return self.key_positions[path]
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return (None, None)
            path = path[:-1]

    def problem(
        self,
        path: PathT,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        layer: str = "rules",
        severity: str = "error",
    ) -> Problem:
        line, col = self.locate(path, key=key)
        return Problem(
            message=message,
            file=self.file,
            line=line,
            column=col,
            path=format_path(path),
            hint=hint,
            layer=layer,
            severity=severity,
        )
