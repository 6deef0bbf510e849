"""Business calendars: working days and hours, public holidays, time zones."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from approvals.machine import validate_config
from approvals.machine.calendar import CalendarError, calendar_problems, parse_calendar
from approvals.machine.durations import parse_duration

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def add(calendar: dict, start: datetime, duration: str) -> datetime:
    result = parse_calendar(calendar).add(start, parse_duration(duration))
    assert result.tzinfo is not None
    return result.astimezone(PARIS)


OFFICE = {"timezone": "Europe/Paris", "country": "FR", "hours": "09:00-17:00"}


def test_two_business_days_from_a_friday_afternoon_end_on_tuesday():
    # Friday 2026-11-06 15:00 -> Monday 15:00 is one business day, Tuesday 15:00 two.
    assert add(OFFICE, paris(2026, 11, 6, 15), "P2D") == paris(2026, 11, 10, 15)
    assert add(OFFICE, paris(2026, 11, 6, 15), "P1D") == paris(2026, 11, 9, 15)


def test_working_hours_carry_over_the_weekend():
    # 4 working hours from Friday 15:00: 2 on Friday, 2 on Monday morning.
    assert add(OFFICE, paris(2026, 11, 6, 15), "PT4H") == paris(2026, 11, 9, 11)


def test_start_outside_hours_counts_from_the_next_opening():
    assert add(OFFICE, paris(2026, 11, 7, 12), "PT1H") == paris(2026, 11, 9, 10)  # Saturday
    assert add(OFFICE, paris(2026, 11, 9, 7), "PT1H") == paris(2026, 11, 9, 10)  # before 9
    assert add(OFFICE, paris(2026, 11, 9, 18), "PT1H") == paris(2026, 11, 10, 10)  # after 17
    # Exactly a working day from the opening ends at the closing, the same day.
    assert add(OFFICE, paris(2026, 11, 9, 9), "P1D") == paris(2026, 11, 9, 17)


def test_public_holidays_of_the_country_are_skipped():
    # Wednesday 2026-11-11 is Armistice Day in France: closed.
    assert add(OFFICE, paris(2026, 11, 10, 10), "P1D") == paris(2026, 11, 12, 10)
    # Without a country it is an ordinary Wednesday.
    plain = {"timezone": "Europe/Paris"}
    assert add(plain, paris(2026, 11, 10, 10), "P1D") == paris(2026, 11, 11, 10)
    # Christmas and Boxing day differ by country: the UK closes on both.
    uk = {"timezone": "Europe/London", "country": "GB", "subdivision": "ENG"}
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 12, 24, 10, tzinfo=london)
    # Thu 24th -> Fri 25th (Christmas), Mon 28th (Boxing Day substitute) -> Tue 29th.
    assert add(uk, start, "P1D").astimezone(london) == datetime(2026, 12, 29, 10, tzinfo=london)


def test_extra_closed_dates_and_working_days():
    calendar = {**OFFICE, "holidays": ["2026-11-12"], "working_days": ["mon", "tue", "thu"]}
    # Tue 10 -> (Wed not working, Wed 11 also a holiday, Thu 12 closed) -> Mon 16.
    assert add(calendar, paris(2026, 11, 10, 10), "P1D") == paris(2026, 11, 16, 10)


def test_time_zones_and_daylight_saving():
    # The same UTC start is a different local time, so a different deadline.
    start = datetime(2026, 11, 9, 16, 30, tzinfo=UTC)  # 17:30 in Paris, 11:30 in New York
    new_york = {"timezone": "America/New_York", "country": "US"}
    assert add(OFFICE, start, "PT1H") == paris(2026, 11, 10, 10)
    ny = parse_calendar(new_york).add(start, timedelta(hours=1))
    assert ny == datetime(2026, 11, 9, 17, 30, tzinfo=UTC)
    # Across the end of summer time (Sunday 2026-10-25 in Paris): Friday 16:00 + 2 working
    # hours is Monday 10:00 local, one hour later in UTC terms than the week before.
    assert add(OFFICE, paris(2026, 10, 23, 16), "PT2H") == paris(2026, 10, 26, 10)
    assert add(OFFICE, paris(2026, 10, 23, 16), "PT2H").utcoffset() == timedelta(hours=1)


def test_without_a_calendar_days_are_plain_days():
    from approvals.machine.statechart import Statechart

    config = {"id": "x", "title": "X", "initial": "a", "states": {"a": {"type": "final"}}}
    start = paris(2026, 11, 6, 15)
    assert Statechart(config).deadline(start, timedelta(days=2)) == start + timedelta(days=2)
    with_calendar = Statechart({**config, "settings": {"calendar": OFFICE}})
    assert with_calendar.deadline(start, timedelta(days=2)) == paris(2026, 11, 10, 15)


@pytest.mark.parametrize(
    ("calendar", "key", "message"),
    [
        ({}, "timezone", "required"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"timezone": "UTC", "country": "XX"}, "country", "no public holidays"),
        ({"timezone": "UTC", "country": "DE", "subdivision": "ZZ"}, "subdivision", "no subdiv"),
        ({"timezone": "UTC", "subdivision": "BY"}, "subdivision", "needs a country"),
        ({"timezone": "UTC", "working_days": []}, "working_days", "non-empty"),
        ({"timezone": "UTC", "working_days": ["monday"]}, "working_days", "non-empty"),
        ({"timezone": "UTC", "hours": "9-5"}, "hours", "like '09:00-17:00'"),
        ({"timezone": "UTC", "hours": "17:00-09:00"}, "hours", "closing must come after"),
        ({"timezone": "UTC", "holidays": ["2026-02-30"]}, "holidays[0]", "not a date"),
        ({"timezone": "UTC", "holidays": "2026-12-24"}, "holidays", "list of dates"),
        ({"timezone": "UTC", "hourz": "09:00-17:00"}, "hourz", "unknown key"),
    ],
)
def test_bad_calendars_are_refused_with_the_key(calendar, key, message):
    problems = calendar_problems(calendar)
    assert any(k == key and message in m for k, m in problems), problems
    with pytest.raises(CalendarError, match=re.escape(f"calendar.{key}")):
        parse_calendar(calendar)


def test_validation_reports_calendar_problems_at_their_place():
    config = {
        "id": "x",
        "title": "X",
        "initial": "a",
        "settings": {"calendar": {"timezone": "Nowhere/Town", "hours": "late"}},
        "states": {"a": {"type": "final"}},
    }
    problems = validate_config(config)
    assert any(
        p.startswith("The business calendar: unknown time zone")
        and p.endswith("(settings.calendar.timezone)")
        for p in problems
    )
    assert any(
        p.startswith("The business calendar: expected opening hours")
        and p.endswith("(settings.calendar.hours)")
        for p in problems
    )
    assert validate_config({**config, "settings": {"calendar": OFFICE}}) == []
    assert validate_config({**config, "settings": {"calendar": "FR"}}) == [
        "The business calendar: expected a mapping, got str (settings.calendar)"
    ]
