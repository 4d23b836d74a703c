"""A row's country as a CRM writes it ("France", "FR", "Deutschland", "United States") -> the
ISO 3166 alpha-2 region its national phone numbers belong to.

The names are libphonenumber's own (the `phonenumbers` package's geocoder locale table: each
region's name in English and some 40 other languages), so the table is maintained with the
numbering plans; a few everyday spellings it lacks are added below.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import phonenumbers

# Spellings people and CRMs use that the locale table does not hold.
_ALIASES = {
    "usa": "US",
    "u s a": "US",
    "u s": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "uae": "AE",
    "holland": "NL",
    "the netherlands": "NL",
    "czechia": "CZ",
    "south korea": "KR",
    "korea": "KR",
    "russia": "RU",
    "viet nam": "VN",
}


def _key(name: str) -> str:
    """Case, accents and punctuation ignored: "Etats-Unis", "États Unis" and "etats unis" alike."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(c if c.isalnum() else " " for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


def _locale_data() -> dict[str, dict[str, str]]:
    """phonenumbers' table of region names, read alone: importing it the usual way first runs
    the geodata package's __init__, which loads 19 MB of geocoding data (a second of start-up)."""
    import importlib.util
    from pathlib import Path

    path = Path(phonenumbers.__file__).parent / "geodata" / "locale.py"
    spec = importlib.util.spec_from_file_location("_runner_phonenumbers_locale", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a packaging change upstream
        from phonenumbers.geodata.locale import LOCALE_DATA

        return LOCALE_DATA
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "phonenumbers.geodata"  # its one relative import: ..util
    spec.loader.exec_module(module)
    return module.LOCALE_DATA


@cache
def _names() -> dict[str, str]:
    LOCALE_DATA = _locale_data()  # noqa: N806 - the library's name for it
    english: dict[str, str] = {}
    other: dict[str, str | None] = {}
    for region, names in LOCALE_DATA.items():
        if region not in phonenumbers.SUPPORTED_REGIONS:
            continue
        for lang, name in names.items():
            for _ in range(5):  # "*aa": the same name as language aa (bounded: a cycle)
                if not name.startswith("*"):
                    break
                name = names.get(name[1:], "")
            if not name or name.startswith("*"):
                continue
            key = _key(name)
            if lang == "aa":  # the table's default, English
                english[key] = region
            elif other.get(key, region) != region:
                other[key] = None  # two regions' names in different languages: ambiguous
            else:
                other[key] = region
    table = {k: v for k, v in other.items() if v is not None}
    table.update(english)
    table.update(_ALIASES)
    return table


def region_of_country(value: str) -> str | None:
    """The region of a country cell (an ISO alpha-2 code or a country name), None if unknown."""
    text = value.strip()
    if len(text) == 2 and text.upper() in phonenumbers.SUPPORTED_REGIONS:
        return text.upper()
    return _names().get(_key(text))


def country_code(region: str) -> int:
    """The calling code of a region (FR -> 33); regions sharing one (US, CA) share it."""
    return phonenumbers.country_code_for_region(region)
