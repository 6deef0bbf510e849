"""Values as people read them, one way everywhere: a request's fields by their schema (enum
titles, amounts with thousands separators and their currency, dates), and moments in one
format with the time zone, the reader's own (their profile's, activated while their page
renders by `reader_time_zone`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.http import HttpRequest
from django.utils import dateformat, timezone
from django.utils.dateparse import parse_date, parse_datetime

from approvals.machine.words import enum_title, format_number
from approvals.sensitive import MASK, is_masked

# One format for a moment, everywhere a person reads one: "3 Dec 2026, 14:36 CET".
MOMENT_FORMAT = "j M Y, H:i T"
DAY_FORMAT = "j M Y"
# Number fields that hold money, shown with the request's currency field beside them.
MONEY_NAMES = re.compile(r"amount|price|cost|total|budget|value", re.IGNORECASE)
CURRENCY_FIELD = "currency"


def reader_time_zone(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the page renders in its reader's time zone (their profile's; the
    site's when they chose none). workflow_app.middleware.UserTimeZone ends it with the
    response."""
    user = getattr(request, "user", None)
    zone = getattr(user, "time_zone", "") if user is not None else ""
    if zone:
        try:
            timezone.activate(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
    return {}


def moment(value: datetime | None) -> str:
    """A moment in the active time zone, with its abbreviation."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return dateformat.format(value, MOMENT_FORMAT)


def day(value: date | None) -> str:
    """A day ('3 Dec 2026'); a moment's day in the active time zone."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return dateformat.format(value, DAY_FORMAT)


def field_value(
    name: str, value: Any, form: Mapping[str, Any], context: Mapping[str, Any]
) -> str | None:
    """A request field's value as text (None when empty): an enum's title, a number with
    separators (and the currency of the request for an amount), a date, yes/no."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping) and is_masked(value):
        # A sensitive field as the audit trail keeps it (its hash): never shown as data.
        return MASK
    properties = form.get("properties") or {}
    prop = properties.get(name) if isinstance(properties, Mapping) else None
    prop = prop if isinstance(prop, Mapping) else {}
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float):
        text = format_number(value)
        if prop.get("enum") is not None or prop.get("oneOf") is not None:
            return enum_title(prop, value)
        currency = context.get(CURRENCY_FIELD) if name != CURRENCY_FIELD else None
        if isinstance(currency, str) and currency and MONEY_NAMES.search(name):
            if isinstance(value, float) and not value.is_integer():
                text = f"{value:,.2f}"
            return f"{text} {currency}"
        return text
    if isinstance(value, str):
        if prop.get("enum") is not None or prop.get("oneOf") is not None:
            return enum_title(prop, value)
        if prop.get("format") == "date" and (parsed := parse_date(value)) is not None:
            return day(parsed)
        if prop.get("format") == "date-time":
            parsed_moment = _moment_or_none(value)
            if parsed_moment is not None:
                return moment(parsed_moment)
        return value
    if isinstance(value, list):
        items = prop.get("items") if isinstance(prop.get("items"), Mapping) else {}
        item_form = {"properties": {name: items}}
        shown = [field_value(name, v, item_form, {}) for v in value]
        return ", ".join(s for s in shown if s) or None
    return str(value)


def _moment_or_none(value: str) -> datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:
        return None
