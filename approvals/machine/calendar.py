"""Business calendars: deadlines that count working time only.

A definition's ``settings.calendar`` turns its task deadlines (``sla``, ``remind``) into working
time: a day is one working day's hours (``P2D`` with 09:00-17:00 is 16 working hours, so two
business days later at the same time of day), hours and minutes are working hours and minutes.
Weekends (any days not listed), the country's public holidays (the ``holidays`` package) and
extra closed dates are skipped. Arithmetic is done in UTC between the local opening and closing
times of each day, so a daylight-saving change never stretches or shrinks a deadline.

Pure Python, like the rest of ``approvals.machine``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

__all__ = ["BusinessCalendar", "CalendarError", "calendar_problems", "parse_calendar"]

CALENDAR_KEYS = ("timezone", "country", "subdivision", "working_days", "hours", "holidays")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORKING_DAYS = ("mon", "tue", "wed", "thu", "fri")
DEFAULT_HOURS = "09:00-17:00"
_HOURS = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A deadline further than this is a mistake in the definition (or a calendar with no working
# day left), not a deadline; the walk stops there instead of looping.
MAX_DAYS = 3660


class CalendarError(ValueError):
    """A calendar that cannot be used; the message names the key."""


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str
    working_days: frozenset[int]  # 0 = Monday
    opens: time
    closes: time
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def day_length(self) -> timedelta:
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def is_working_day(self, day: date) -> bool:
        if day.weekday() not in self.working_days or day in self.extra_holidays:
            return False
        return not (
            self.country and day in _public_holidays(self.country, self.subdivision, day.year)
        )

    def working_time(self, duration: timedelta) -> timedelta:
        """A definition's duration as working time: whole days are working days."""
        return duration.days * self.day_length + timedelta(
            seconds=duration.seconds, microseconds=duration.microseconds
        )

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of working time after `start` (an aware datetime), in UTC."""
        remaining = self.working_time(duration)
        zone = self.zone
        cursor = start.astimezone(UTC)
        day = start.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            if self.is_working_day(day):
                opens = datetime.combine(day, self.opens, tzinfo=zone).astimezone(UTC)
                closes = datetime.combine(day, self.closes, tzinfo=zone).astimezone(UTC)
                cursor = max(cursor, opens)
                if cursor < closes:
                    available = closes - cursor
                    if remaining <= available:
                        return cursor + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise CalendarError(f"no deadline within {MAX_DAYS} days: the calendar has no working time")


@lru_cache(maxsize=64)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays_lib.country_holidays(country, subdiv=subdivision, years=[year]))


def calendar_problems(value: Any) -> list[tuple[str, str]]:
    """(key, message) for everything wrong with a calendar mapping; empty when usable."""
    if not isinstance(value, Mapping):
        return [("", f"expected a mapping, got {type(value).__name__}")]
    problems: list[tuple[str, str]] = []
    for key in value:
        if key not in CALENDAR_KEYS:
            problems.append((str(key), f"unknown key (use {', '.join(CALENDAR_KEYS)})"))
    zone = value.get("timezone")
    if zone is None:
        problems.append(("timezone", "required: an IANA time zone such as Europe/Paris"))
    elif not isinstance(zone, str) or not _zone_exists(zone):
        problems.append(("timezone", f"unknown time zone {zone!r} (like Europe/Paris)"))
    country = value.get("country")
    subdivision = value.get("subdivision")
    supported = holidays_lib.list_supported_countries()
    if country is not None:
        if not isinstance(country, str) or country.upper() not in supported:
            problems.append(("country", f"no public holidays known for {country!r} (ISO code)"))
        elif subdivision is not None and str(subdivision) not in supported[country.upper()]:
            problems.append(
                ("subdivision", f"{country.upper()} has no subdivision {subdivision!r}")
            )
    elif subdivision is not None:
        problems.append(("subdivision", "needs a country"))
    days = value.get("working_days", DEFAULT_WORKING_DAYS)
    if (
        not isinstance(days, list | tuple)
        or not days
        or any(not isinstance(d, str) or d.lower() not in WEEKDAYS for d in days)
    ):
        problems.append(("working_days", f"expected a non-empty list of {', '.join(WEEKDAYS)}"))
    hours = value.get("hours", DEFAULT_HOURS)
    try:
        _parse_hours(hours)
    except CalendarError as exc:
        problems.append(("hours", str(exc)))
    extra = value.get("holidays", [])
    if not isinstance(extra, list | tuple):
        problems.append(("holidays", "expected a list of dates like '2026-12-24'"))
    else:
        for index, item in enumerate(extra):
            try:
                _parse_date(item)
            except CalendarError as exc:
                problems.append((f"holidays[{index}]", str(exc)))
    return problems


def parse_calendar(value: Any) -> BusinessCalendar | None:
    """The calendar of a definition's settings, or None; CalendarError when invalid."""
    if value is None:
        return None
    problems = calendar_problems(value)
    if problems:
        key, message = problems[0]
        raise CalendarError(f"calendar.{key}: {message}" if key else f"calendar: {message}")
    opens, closes = _parse_hours(value.get("hours", DEFAULT_HOURS))
    country = value.get("country")
    return BusinessCalendar(
        timezone=value["timezone"],
        working_days=frozenset(
            WEEKDAYS.index(d.lower()) for d in value.get("working_days", DEFAULT_WORKING_DAYS)
        ),
        opens=opens,
        closes=closes,
        country=country.upper() if country else None,
        subdivision=str(value["subdivision"]) if value.get("subdivision") is not None else None,
        extra_holidays=frozenset(_parse_date(d) for d in value.get("holidays", [])),
    )


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _parse_hours(value: Any) -> tuple[time, time]:
    match = _HOURS.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarError(f"expected opening hours like '09:00-17:00', got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise CalendarError(f"{value} is not a time range of one day")
    opens = time(h1, m1)
    closes = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
    if closes <= opens:
        raise CalendarError(f"{value}: closing must come after opening")
    return opens, closes


def _parse_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise CalendarError(f"expected a date like '2026-12-24', got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CalendarError(f"{value} is not a date") from None
