"""Phone numbers as people write them (`(555) 123-4567`, `+1 555 123 4567`, `5551234567`),
turned into E.164 with `phonenumbers` (Google's libphonenumber rules, not ours).

Used only when a campaign names `recipients.default_region`; without it a phone must already
be E.164 (chatids.py). An impossible number (wrong length for its country) is an error with the
library's reason; a possible number the numbering plan does not assign (the fictional 555
range) is accepted with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

# ISO 3166-1 alpha-2 codes the library knows numbering plans for ("US", "GB", "DE", ...).
REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)

# What a phone number may contain as typed in a spreadsheet: digits, spaces, + ( ) . - /
# and an extension; anything else (letters) is not a phone number at all.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{4,}(?:\s*(?:x|ext\.?|#)\s*\d+)?$", re.IGNORECASE)

_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code does not exist",
    ValidationResult.TOO_SHORT: "it is too short",
    ValidationResult.TOO_LONG: "it is too long",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "it is a local number without an area code",
}


class PhoneError(ValueError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    warning: str | None = None  # set when the number is possible but not assigned
    extension: str | None = None  # "123" of "… x123": dropped, a text cannot reach it


def looks_like_phone(text: str) -> bool:
    return bool(_PHONE_LIKE.match(text.strip()))


def region_problem(region: object) -> str | None:
    """None when ``region`` is a region code the library knows; otherwise what is wrong."""
    if isinstance(region, str) and region.upper() in REGIONS:
        return None
    return f"'{region}' is not an ISO 3166 alpha-2 region code with a phone numbering plan"


def normalize_phone(text: str, region: str) -> Phone:
    """``text`` in E.164 (national numbers read in ``region``), or PhoneError with the reason."""
    region = region.upper()
    example = phonenumbers.example_number(region)
    like = (
        (
            f" (a {region} number: '{phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)}' "
            f"or '{phonenumbers.format_number(example, PhoneNumberFormat.E164)}')"
        )
        if example
        else ""
    )
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as err:
        raise PhoneError(
            f"'{text}' is not a phone number ({_parse_reason(err)})",
            f"write the number with its area code{like}",
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        # The number's own country (a +44 number read with region US is British), by its
        # country code when the number is too malformed to match one of its regions.
        country = phonenumbers.region_code_for_number(
            number
        ) or phonenumbers.region_code_for_country_code(number.country_code or 0)
        raise PhoneError(
            f"'{text}' cannot be a phone number: {_REASONS.get(reason, 'impossible')} "
            f"for {country} (read with default_region {region})",
            f"check the digits{like}; a number of another country starts with + and its country code",
        )
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    extension = number.extension or None
    if phonenumbers.is_valid_number(number):
        return Phone(e164, extension=extension)
    # The message must not quote the number: repeated warnings are grouped by their text.
    return Phone(
        e164,
        "possible but not assigned in its country's numbering plan (a fictional or unused range)",
        extension,
    )


def _parse_reason(err: NumberParseException) -> str:
    return {
        NumberParseException.INVALID_COUNTRY_CODE: "no valid country code",
        NumberParseException.NOT_A_NUMBER: "not a number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_LONG: "too long",
    }.get(err.error_type, str(err))
