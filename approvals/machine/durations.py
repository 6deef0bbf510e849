"""Durations in definitions: ISO 8601 (``P2D``, ``PT4H``, ``PT0.5S``) or whole milliseconds.

Years and months are refused: their length depends on the calendar, and an SLA stored as a
``due_at`` must be computable from the start time alone. Weeks and days are taken as 7 and
1 times 24 hours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

__all__ = [
    "DURATION_UNITS",
    "DurationError",
    "context_duration",
    "duration_from_parts",
    "duration_parts",
    "format_duration",
    "is_delay_name",
    "parse_duration",
    "parse_period",
]


class DurationError(ValueError):
    """A duration that cannot be used: malformed, ambiguous, zero or negative."""


_ISO = re.compile(
    r"""
    (?P<sign>[-+])?
    P
    (?:(?P<years>\d+(?:[.,]\d+)?)Y)?
    (?:(?P<months>\d+(?:[.,]\d+)?)M)?
    (?:(?P<weeks>\d+(?:[.,]\d+)?)W)?
    (?:(?P<days>\d+(?:[.,]\d+)?)D)?
    (?:T
        (?:(?P<hours>\d+(?:[.,]\d+)?)H)?
        (?:(?P<minutes>\d+(?:[.,]\d+)?)M)?
        (?:(?P<seconds>\d+(?:[.,]\d+)?)S)?
    )?
    """,
    re.VERBOSE,
)
_MILLISECONDS = re.compile(r"[-+]?\d+")
_FIELDS = ("weeks", "days", "hours", "minutes", "seconds")


def parse_duration(value: str | int) -> timedelta:
    """Parse an ISO 8601 duration or a number of milliseconds (XState's ``after: {5000: x}``).

    Raises DurationError (a ValueError) with a message meant for the person who wrote it.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DurationError(
            f"expected an ISO 8601 duration like 'P2D' or 'PT4H', or whole milliseconds; "
            f"got {type(value).__name__}"
        )
    if isinstance(value, int):
        return _milliseconds(value, str(value))
    text = value.strip()
    if _MILLISECONDS.fullmatch(text):
        return _milliseconds(int(text), text)
    match = _ISO.fullmatch(text.upper())
    if match is None or text.upper().endswith("T") or text.upper().lstrip("+-") == "P":
        raise DurationError(
            f"'{value}' is not a duration; use ISO 8601 like 'P2D', 'PT4H', 'P1DT12H', "
            f"'PT0.5S', or whole milliseconds like 5000"
        )
    parts = match.groupdict()
    if parts["years"] is not None or parts["months"] is not None:
        raise DurationError(f"{value} is ambiguous (years and months vary in length); use days")
    for field in _FIELDS[:-1]:
        if parts[field] is not None and not parts[field].isdigit():
            raise DurationError(f"{value}: only the seconds may have a fraction")
    amounts = {
        field: float(parts[field].replace(",", "."))
        for field in _FIELDS
        if parts[field] is not None
    }
    try:
        result = timedelta(**amounts)
    except OverflowError:
        raise DurationError(f"{value} is too long") from None
    if parts["sign"] == "-" and result:
        raise DurationError(f"{value} is negative; durations must be longer than zero")
    if not result:
        raise DurationError(f"{value} is zero; durations must be longer than zero")
    return result


def _milliseconds(number: int, text: str) -> timedelta:
    if number <= 0:
        raise DurationError(f"{text} milliseconds: durations must be longer than zero")
    try:
        return timedelta(milliseconds=number)
    except OverflowError:
        raise DurationError(f"{text} milliseconds is too long") from None


def format_duration(td: timedelta) -> str:
    """The canonical ISO 8601 form: days, then hours, minutes and seconds (``P1DT12H``).

    Weeks are written as days so that one duration has exactly one spelling. Zero is
    ``PT0S``; a negative duration gets a leading ``-``.
    """
    if td < timedelta(0):
        return "-" + format_duration(-td)
    days = td.days
    seconds = td.seconds
    micro = td.microseconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    out = "P"
    if days:
        out += f"{days}D"
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or micro:
        if micro:
            time += f"{seconds}.{micro:06d}".rstrip("0") + "S"
        else:
            time += f"{seconds}S"
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"


# The units an editor offers for a duration, as the ISO 8601 it writes for a whole number of
# them. Under a business calendar a day is one working day and hours and minutes are working
# time, so days are never converted to hours: "2 business days" stays P2D.
DURATION_UNITS = {"minutes": "PT{}M", "hours": "PT{}H", "days": "P{}D"}
_UNIT_FORMS = {
    "minutes": re.compile(r"PT(\d+)M"),
    "hours": re.compile(r"PT(\d+)H"),
    "days": re.compile(r"P(\d+)D"),
}


def duration_parts(value: str) -> tuple[int, str] | None:
    """A duration as (amount, unit) when it is a whole number of one unit (``P2D`` is
    ``(2, "days")``), else None: ``P1DT12H`` or milliseconds are kept as written."""
    text = value.strip().upper()
    for unit, form in _UNIT_FORMS.items():
        match = form.fullmatch(text)
        if match and int(match.group(1)) > 0:
            return int(match.group(1)), unit
    return None


def duration_from_parts(amount: int, unit: str) -> str:
    """The ISO 8601 duration of a whole, positive number of a unit (``(2, "days")``: P2D)."""
    if unit not in DURATION_UNITS:
        raise DurationError(f"unknown unit {unit!r}; use {', '.join(DURATION_UNITS)}")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise DurationError(f"expected a whole number of {unit} of at least 1, got {amount!r}")
    value = DURATION_UNITS[unit].format(amount)
    parse_duration(value)
    return value


def is_delay_name(delay: str) -> bool:
    """A named delay (a context field's name) rather than a duration: a name that does not
    read as one."""
    if not DELAY_NAME.fullmatch(str(delay)) or _DURATION_LIKE.match(str(delay)):
        return False
    try:
        parse_duration(str(delay))
    except DurationError:
        return True
    return False


DELAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}")
# A duration mistyped (P2M, P0D, PT) is a duration's error, never a field's name.
_DURATION_LIKE = re.compile(r"[Pp](?:[Tt]|[0-9])")


def context_duration(context: Mapping[str, Any], field_name: str) -> timedelta:
    """The ISO 8601 duration a context field holds (named delays, sla_from)."""
    value = context.get(field_name)
    if value is None:
        raise DurationError(f"the field {field_name} holds no duration")
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise DurationError(f"the field {field_name}: {exc}") from None


_PERIOD = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
)


def parse_period(value: Any) -> relativedelta:
    """A calendar period (``P7Y``, ``P18M``, ``P90D``): whole years, months, weeks and days,
    counted on the calendar (seven years after 29 February is 28 February), as retention is
    written in law. Raises DurationError with a message for the person who wrote it."""
    if not isinstance(value, str):
        raise DurationError(
            f"expected an ISO 8601 period like 'P7Y' or 'P90D', got {type(value).__name__}"
        )
    match = _PERIOD.fullmatch(value.strip().upper())
    if match is None or value.strip().upper() == "P":
        raise DurationError(
            f"'{value}' is not a period; use whole years, months, weeks or days in ISO 8601, "
            "like 'P7Y', 'P18M' or 'P90D'"
        )
    amounts = {unit: int(amount) for unit, amount in match.groupdict().items() if amount}
    if not any(amounts.values()):
        raise DurationError(f"{value} is zero; a period must be longer than zero")
    if amounts.get("years", 0) > 1000:
        raise DurationError(f"{value} is too long")
    return relativedelta(**amounts)
