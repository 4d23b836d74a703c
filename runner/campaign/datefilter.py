"""The `datetime` template filter: a date or time as people write it in a text.

`{{ starts_at | datetime('%A %-d %B, %H:%M') }}` -> "Wednesday 6 March, 09:30". The value may
be a YAML date/datetime or text in ISO 8601 (what CSV and XLSX cells hold: `2024-03-06`,
`2024-03-06T09:30:00`, `2024-03-06 09:30`); the format is strftime's (`%-d`: no leading zero).
Without a format: "6 March 2024, 09:30" (a date alone: "6 March 2024").
"""

from __future__ import annotations

from datetime import date, datetime

from jinja2.exceptions import TemplateRuntimeError

DEFAULT_DATETIME = "%-d %B %Y, %H:%M"
DEFAULT_DATE = "%-d %B %Y"
MAX_FORMAT = 200  # characters of a format: a text's date, not a document


def datetime_filter(value: object, fmt: str | None = None) -> str:
    when = _parse(value)
    if fmt is None:
        fmt = DEFAULT_DATE if not isinstance(when, datetime) else DEFAULT_DATETIME
    if not isinstance(fmt, str) or len(fmt) > MAX_FORMAT:
        raise TemplateRuntimeError(
            f"datetime: the format must be text of at most {MAX_FORMAT} characters"
        )
    try:
        return when.strftime(fmt)
    except ValueError as err:
        raise TemplateRuntimeError(f"datetime: bad format {fmt!r}: {err}") from None


def _parse(value: object) -> date:
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            return (
                datetime.fromisoformat(text)
                if ("T" in text or " " in text or ":" in text)
                else date.fromisoformat(text)
            )
        except ValueError:
            pass
    raise TemplateRuntimeError(
        f"datetime: {str(value)[:40]!r} is not a date or time "
        "(write it as 2024-03-06 or 2024-03-06T09:30)"
    )
