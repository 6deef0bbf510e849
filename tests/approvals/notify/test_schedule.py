"""Quiet hours and digest times on the reader's clock, across the nights the clocks change:
Europe/Paris (25 Oct 2026 back, 29 Mar 2026 forward) and America/New_York (1 Nov 2026 back,
8 Mar 2026 forward)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from approvals.notify.schedule import Schedule, is_quiet, leaves_at, next_digest, quiet_ends

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def night(zone: ZoneInfo, **more) -> Schedule:
    return Schedule(zone=zone, quiet_from=time(22, 0), quiet_until=time(7, 0), **more)


@pytest.mark.parametrize(
    ("zone", "evening", "wakes"),
    [
        # Paris, clocks back: 22:00 CEST is 20:00 UTC, 07:00 CET the next morning is 06:00 UTC.
        (PARIS, utc(2026, 10, 24, 20, 30), utc(2026, 10, 25, 6, 0)),
        # Paris, clocks forward: 22:00 CET = 21:00 UTC; 07:00 CEST = 05:00 UTC.
        (PARIS, utc(2026, 3, 28, 21, 30), utc(2026, 3, 29, 5, 0)),
        # New York, back: 22:00 EDT = 02:00 UTC; 07:00 EST = 12:00 UTC.
        (NEW_YORK, utc(2026, 11, 1, 2, 30), utc(2026, 11, 1, 12, 0)),
        # New York, forward: 22:00 EST = 03:00 UTC; 07:00 EDT = 11:00 UTC.
        (NEW_YORK, utc(2026, 3, 8, 3, 30), utc(2026, 3, 8, 11, 0)),
    ],
)
def test_the_quiet_night_ends_at_seven_on_the_reader_s_clock(zone, evening, wakes):
    schedule = night(zone)
    assert is_quiet(evening, schedule)
    assert quiet_ends(evening, schedule) == wakes
    assert wakes.astimezone(zone).time() == time(7, 0)
    assert not is_quiet(wakes, schedule)
    # The minute before it ends is still quiet, however long the night was.
    assert is_quiet(wakes - timedelta(minutes=1), schedule)


def test_outside_quiet_hours_things_leave_at_once():
    schedule = night(PARIS)
    noon = utc(2026, 10, 25, 11, 0)
    assert not is_quiet(noon, schedule)
    assert quiet_ends(noon, schedule) is None
    assert leaves_at(noon, schedule) == noon


def test_quiet_days_hold_until_the_first_day_that_is_not():
    # Saturday and Sunday quiet in New York, the weekend the clocks go back.
    schedule = Schedule(zone=NEW_YORK, quiet_days=frozenset({5, 6}))
    saturday = utc(2026, 10, 31, 15, 0)
    assert is_quiet(saturday, schedule)
    assert quiet_ends(saturday, schedule) == utc(2026, 11, 2, 5, 0)  # Monday 00:00 EST


def test_quiet_days_and_hours_together():
    schedule = night(PARIS, quiet_days=frozenset({6}))  # and all of Sunday
    saturday_night = utc(2026, 10, 24, 21, 0)
    # Not at 07:00 on Sunday, a quiet day, nor at midnight, still the night: Monday 07:00 CET.
    assert quiet_ends(saturday_night, schedule) == utc(2026, 10, 26, 6, 0)


def test_a_week_of_quiet_days_is_no_quiet_at_all():
    schedule = Schedule(zone=PARIS, quiet_days=frozenset(range(7)))
    assert not is_quiet(utc(2026, 10, 25, 11, 0), schedule)


@pytest.mark.parametrize(
    ("zone", "made", "due"),
    [
        # Made on the evening before the change, due at 08:00 on the reader's clock after it.
        (PARIS, utc(2026, 10, 24, 18, 0), utc(2026, 10, 25, 7, 0)),  # 08:00 CET
        (PARIS, utc(2026, 10, 23, 18, 0), utc(2026, 10, 24, 6, 0)),  # 08:00 CEST
        (PARIS, utc(2026, 3, 28, 18, 0), utc(2026, 3, 29, 6, 0)),  # 08:00 CEST
        (NEW_YORK, utc(2026, 10, 31, 22, 0), utc(2026, 11, 1, 13, 0)),  # 08:00 EST
        (NEW_YORK, utc(2026, 3, 7, 22, 0), utc(2026, 3, 8, 12, 0)),  # 08:00 EDT
        # Made after today's digest went: tomorrow's.
        (PARIS, utc(2026, 10, 25, 7, 30), utc(2026, 10, 26, 7, 0)),
    ],
)
def test_a_daily_digest_goes_at_its_time_on_the_reader_s_clock(zone, made, due):
    assert next_digest(made, "daily", Schedule(zone=zone)) == due
    assert due.astimezone(zone).time() == time(8, 0)


def test_an_hourly_digest_goes_on_the_hour_through_the_repeated_hour():
    schedule = Schedule(zone=PARIS)
    # 02:10 CEST (00:10 UTC); the clocks then go from 03:00 CEST back to 02:00 CET.
    first = next_digest(utc(2026, 10, 25, 0, 10), "hourly", schedule)
    # 03:00 CEST, which is the moment the clocks show 02:00 CET again.
    assert first == utc(2026, 10, 25, 1, 0)
    second = next_digest(utc(2026, 10, 25, 1, 10), "hourly", schedule)
    assert second == utc(2026, 10, 25, 2, 0)
    assert (second - first).total_seconds() == 3600


def test_a_daily_digest_due_in_quiet_hours_waits_for_their_end():
    schedule = Schedule(
        zone=NEW_YORK, digest_time=time(6, 0), quiet_from=time(22, 0), quiet_until=time(7, 0)
    )
    # 06:00 EST is quiet: the digest goes at 07:00 EST, the morning after the change.
    assert next_digest(utc(2026, 10, 31, 23, 0), "daily", schedule) == utc(2026, 11, 1, 12, 0)


def test_a_digest_time_the_clocks_skip_goes_an_hour_later():
    # 02:30 does not exist in Paris on 29 March 2026: it is read as 03:30 CEST.
    schedule = Schedule(zone=PARIS, digest_time=time(2, 30))
    due = next_digest(utc(2026, 3, 28, 20, 0), "daily", schedule)
    assert due == utc(2026, 3, 29, 1, 30)
    assert due.astimezone(PARIS).time() == time(3, 30)


def test_not_a_digest_is_refused():
    with pytest.raises(ValueError, match="not a digest"):
        next_digest(utc(2026, 1, 1), "weekly", Schedule(zone=PARIS))
