"""Column names as people write them: `First Name`, `E-mail`, `Mobile Phone` become the
template variables `first_name`, `e_mail`, `mobile_phone`.

A header that is already a variable name (`first_name`, `firstName`) stays reachable under its
own spelling too, so campaigns written against the exact header keep working.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

_NON_WORD = re.compile(r"\W+")
_IDENTIFIER = re.compile(r"^[^\W\d]\w*$")


def normalize_column(name: str) -> str:
    """`First Name` -> `first_name`: lower case, every run of non-word characters one `_`."""
    return _NON_WORD.sub("_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class Columns:
    """A header row: each column's original text and the variable names it is reachable by."""

    header: tuple[str, ...]  # as written (trimmed)
    names: tuple[str, ...]  # the normalised variable name of each column
    # Every variable name a template may use -> the header it comes from.
    spellings: Mapping[str, str]

    def index(self, wanted: str) -> int | None:
        """The column `recipients.to` names, in either spelling."""
        if wanted in self.header:
            return self.header.index(wanted)
        key = normalize_column(wanted)
        return self.names.index(key) if key in self.names else None

    def variables(self, row: Sequence[str], skip: Container[int] = ()) -> dict[str, str]:
        """The template variables of one row (``skip``: the chat id columns)."""
        return {name: row[j] for j, name in self._targets() if j not in skip and j < len(row)}

    def _targets(self) -> tuple[tuple[int, str], ...]:
        # (column index, variable name) pairs, an identifier header under both its spellings;
        # computed once per file, not per row.
        cached = self.__dict__.get("_pairs")
        if cached is None:
            pairs = []
            for j, (name, head) in enumerate(zip(self.names, self.header, strict=True)):
                pairs.append((j, name))
                if head != name and _IDENTIFIER.match(head):
                    pairs.append((j, head))
            cached = tuple(pairs)
            object.__setattr__(self, "_pairs", cached)
        return cached


class ColumnClash(ValueError):
    """Two header cells that become the same variable name."""

    def __init__(self, first: str, second: str, name: str) -> None:
        super().__init__(f"the columns '{first}' and '{second}' both become the variable '{name}'")
        self.hint = "rename one of them in the header row"


def read_header(header: Iterable[str]) -> Columns:
    """The Columns of a header row; raises ColumnClash when two cells normalise alike."""
    cells = tuple(h.strip() for h in header)
    names: list[str] = []
    first: dict[str, str] = {}
    spellings: dict[str, str] = {}
    for j, cell in enumerate(cells):
        name = normalize_column(cell) or f"column_{j + 1}"
        if name in first:
            raise ColumnClash(first[name], cell, name)
        first[name] = cell
        names.append(name)
        spellings[name] = cell
        if cell != name and _IDENTIFIER.match(cell):
            spellings[cell] = cell
    return Columns(header=cells, names=tuple(names), spellings=spellings)


def closest(
    name: str, available: Iterable[str], columns: Mapping[str, str] | None = None
) -> str | None:
    """ "first_name (column 'First Name')" for an undefined ``name``, or None when nothing is close."""
    pool = list(available)
    best = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not best:
        target = normalize_column(name)
        best = [p for p in pool if normalize_column(p) == target][:1]
    if not best:
        return None
    found = best[0]
    origin = (columns or {}).get(found)
    if origin is not None and origin != found:
        return f"{found} (column '{origin}')"
    return found
