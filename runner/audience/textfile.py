"""Text files as tools save them: the encoding (a byte-order mark, UTF-16 "Unicode text", a
Windows code page) and the CSV delimiter (`,` `;` tab `|`) are found, not assumed.

UTF-8 is tried first and streamed a line at a time, so a bad byte is reported at its line; a
file that is not UTF-8 is named by `charset-normalizer` from its first bytes (Excel's Western
"CSV" is cp1252, preferred when it reads as well as the library's first pick, which may be a
neighbouring code page that turns "è" into "č").
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from runner.errors import CampaignError, Problem
from runner.source.paths import PathError, open_regular

_SAMPLE = 256 * 1024  # bytes read to name the encoding
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with a byte-order mark"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {
    ",": "comma-delimited",
    ";": "semicolon-delimited",
    "\t": "tab-delimited",
    "|": "pipe-delimited",
}
_SAVE_HINT = "save it as UTF-8 (in a spreadsheet: CSV UTF-8)"


@dataclass(frozen=True)
class TextFile:
    """A file's lines (line ends kept, for csv) and the encoding they were read with."""

    lines: Iterator[str]
    encoding: str  # as a person reads it: "UTF-8", "UTF-16", "cp1252", ...

    @property
    def plain(self) -> bool:
        """UTF-8 (a byte-order mark included): nothing worth saying about how it was read."""
        return self.encoding.startswith("UTF-8")


def open_text(
    path: str, layer: str = "recipients", shown: str | None = None, *, utf8: bool = False
) -> TextFile:
    """The lines of a regular file in its encoding; CampaignError when it cannot be read.
    ``utf8``: the format is UTF-8 by definition (JSON Lines): nothing is guessed."""
    name = shown or path
    try:
        fh = open_regular(path)
    except PathError as err:
        raise CampaignError(Problem(err.message, file=name, layer=layer, hint=err.hint)) from None
    except (OSError, ValueError) as err:
        raise CampaignError(
            Problem(
                f"cannot read file: {getattr(err, 'strerror', None) or err}",
                file=name,
                layer=layer,
                hint="check the path",
            )
        ) from None
    try:
        sample = fh.read(_SAMPLE)
        fh.seek(0)
    except OSError as err:
        fh.close()
        raise CampaignError(
            Problem(
                f"cannot read file: {err.strerror or err}",
                file=name,
                layer=layer,
                hint="check the path",
            )
        ) from None
    if utf8:
        return TextFile(_utf8_lines(fh, name, layer), "UTF-8")
    for bom, codec, label in _BOMS:
        if sample.startswith(bom):
            if codec == "utf-8-sig":
                return TextFile(_utf8_lines(fh, name, layer), label)
            return TextFile(_codec_lines(fh, codec, name, layer), label)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < _SAMPLE)
    except UnicodeDecodeError:
        pass
    else:
        if b"\x00" not in sample[:4096]:
            return TextFile(_utf8_lines(fh, name, layer), "UTF-8")
    guessed = guess_codec(sample)
    if guessed is None:
        fh.close()
        raise CampaignError(
            Problem(
                "the file is not text in any encoding the runner can tell",
                file=name,
                line=1,
                layer=layer,
                hint=f"is it a spreadsheet saved in another format? {_SAVE_HINT}",
            )
        )
    label = "UTF-16" if guessed.startswith("utf_16") else guessed
    return TextFile(_codec_lines(fh, guessed, name, layer), label)


def guess_codec(sample: bytes) -> str | None:
    """The encoding charset-normalizer reads ``sample`` in, cp1252 when it reads as well."""
    from charset_normalizer import from_bytes  # its models load on first use: only for such files

    results = list(from_bytes(sample))
    if not results:
        return None
    least = min(r.chaos for r in results)
    # Asked alone, as the library's list may leave it out when a neighbour reads the same.
    western = from_bytes(sample, cp_isolation=["cp1252"]).best()
    if western is not None and western.chaos <= least + 0.01:
        return "cp1252"
    best = from_bytes(sample).best()
    return best.encoding if best is not None else results[0].encoding


def _utf8_lines(fh: BinaryIO, name: str, layer: str) -> Iterator[str]:
    """Decoded a line at a time, so a bad byte is reported at its line (a text-mode file
    reports only that some chunk failed)."""
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CampaignError(
                    Problem(
                        f"the file is not UTF-8 text (byte {raw[err.start]:#04x} at column {err.start + 1})",
                        file=name,
                        line=lineno,
                        column=err.start + 1,
                        layer=layer,
                        hint=f"the first part of the file read as UTF-8, this line does not: {_SAVE_HINT}",
                    )
                ) from None


def _codec_lines(fh: BinaryIO, codec: str, name: str, layer: str) -> Iterator[str]:
    with fh:
        text = io.TextIOWrapper(fh, encoding=codec, newline="")
        lineno = 0
        try:
            for lineno, line in enumerate(text, start=1):  # noqa: B007 - read after the loop
                yield line.lstrip("\ufeff") if lineno == 1 else line
        except UnicodeDecodeError:
            raise CampaignError(
                Problem(
                    f"the file does not read as {codec} after line {lineno}",
                    file=name,
                    line=lineno + 1,
                    layer=layer,
                    hint=_SAVE_HINT,
                )
            ) from None


def sniff_delimiter(lines: list[str], is_header: Callable[[list[str]], bool] | None = None) -> str:
    """The delimiter of a CSV from its first lines: the one whose split finds the header (the
    row ``is_header`` accepts) with the most cells; else the one splitting most lines alike."""
    best: tuple[int, int, int] | None = None
    choice = ","
    for rank, delim in enumerate(DELIMITERS):
        try:
            rows = [r for r in csv.reader(lines, delimiter=delim) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        found = 0
        if is_header is not None:
            found = next((len(r) for r in rows if is_header(r)), 0)
        widths: dict[int, int] = {}
        for r in rows:
            if len(r) > 1:
                widths[len(r)] = widths.get(len(r), 0) + 1
        alike = max(widths.values(), default=0)
        score = (found, alike, -rank)
        if best is None or score > best:
            best, choice = score, delim
    return choice
