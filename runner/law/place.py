"""Where a recipient is, from its chat id: time zones and US states, by `phonenumbers`' time-zone
and geocoder data for the number's area code (as the state laws presume: a Florida area code
means Florida, whatever the line).

A number whose area code gives no location (an unassigned code such as 555, a toll-free or
other non-geographic number), an email, or a group with such a member cannot be placed: the
campaign's own zone applies and the plan says how many.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType, timezone

# Full names the geocoder uses for a whole state ("Florida", "Washington State").
US_STATES = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "Washington D.C.",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
}
_BY_NAME = {name.lower(): code for code, name in US_STATES.items()}
_BY_NAME.update({"washington state": "WA", "washington dc": "DC", "district of columbia": "DC"})
_MAX_ZONES = 4  # more zones than this (toll-free numbers list dozens) is no location at all
_NOT_A_PLACE = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.VOIP,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.UAN,
        PhoneNumberType.PAGER,
        PhoneNumberType.VOICEMAIL,
    }
)


@dataclass(frozen=True)
class Place:
    """Where one chat's recipients are. Several zones or states (an area code across zones, a
    group chat) mean the strictest of them applies."""

    zones: tuple[str, ...] = ()  # IANA names; empty: not placed
    states: tuple[str, ...] = ()  # US state codes ("FL"); empty: none known
    us: bool = False  # a US number (the federal rule applies)

    @property
    def placed(self) -> bool:
        return bool(self.zones)


NOWHERE = Place()


def place_of(chat: str) -> Place:
    """The place of a normalised chat id: a phone, or a group of phones (comma-separated)."""
    if "," in chat:
        members = [place_of(m) for m in chat.split(",")]
        if not all(m.placed for m in members):
            return NOWHERE
        return Place(
            tuple(sorted({z for m in members for z in m.zones})),
            tuple(sorted({s for m in members for s in m.states})),
            any(m.us for m in members),
        )
    if not chat.startswith("+"):
        return NOWHERE  # an email
    # In North America the area code and exchange (+1 NPA NXX) decide zone and state; caching
    # by them keeps a million-number audience to a few thousand lookups.
    return _place(chat[:8] + "0000" if chat.startswith("+1") and len(chat) == 12 else chat)


@lru_cache(maxsize=16384)
def _place(number: str) -> Place:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return NOWHERE
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) in _NOT_A_PLACE:
        return NOWHERE
    zones = tuple(z for z in timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")
    if not zones or len(zones) > _MAX_ZONES:
        return NOWHERE
    region = phonenumbers.region_code_for_number(parsed)
    if region != "US":
        return Place(zones)
    # Imported here: the geocoder's data costs ~0.4 s of CPU to load, paid by every `campaign`
    # process otherwise, and only a valid US number (never the 555 numbers of examples) needs it.
    from phonenumbers import geocoder

    state = state_of(geocoder.description_for_number(parsed, "en"))
    return Place(zones, (state,) if state else (), True)


def state_of(description: str) -> str | None:
    """ "Florida" -> FL, "San Francisco, CA" -> CA, "Washington State" -> WA; else None."""
    text = description.strip()
    if not text:
        return None
    head, _, tail = text.rpartition(", ")
    if head and tail in US_STATES:
        return tail
    return _BY_NAME.get(text.lower().replace(".", ""))
