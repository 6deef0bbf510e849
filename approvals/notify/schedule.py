"""When a notification may leave: quiet hours and days, and digest times, in the reader's own
time zone. Pure functions of a moment and a `Schedule`; every comparison is between aware
moments, so a day of 23 or 25 hours (a DST change) shifts nothing by an hour.

- Quiet hours `quiet_from` to `quiet_until` (crossing midnight when `quiet_until` is earlier) and
  whole quiet days: what would leave then waits for the first moment that is not quiet.
- A daily digest leaves at `digest_time` on the reader's clock; an hourly one on the hour.
  A digest due in quiet time waits for its end too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HOURLY = "hourly"
DAILY = "daily"
# A week where every day is quiet would hold everything for ever: such a week is not quiet.
WEEK = 7


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    digest_time: time = time(8, 0)
    quiet_from: time | None = None
    quiet_until: time | None = None
    quiet_days: frozenset[int] = field(default_factory=frozenset)

    @property
    def has_quiet_time(self) -> bool:
        hours = self.quiet_from is not None and self.quiet_from != self.quiet_until
        return hours or 0 < len(self.quiet_days) < WEEK


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day, as a moment. A time that the day skips (02:30 when clocks
    go forward) is read with the offset before the change, i.e. an hour later on the clock."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def is_quiet(moment: datetime, schedule: Schedule) -> bool:
    if not schedule.has_quiet_time:
        return False
    local = moment.astimezone(schedule.zone)
    if len(schedule.quiet_days) < WEEK and local.weekday() in schedule.quiet_days:
        return True
    start, end = schedule.quiet_from, schedule.quiet_until
    if start is None or end is None or start == end:
        return False
    clock = local.time().replace(tzinfo=None)
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def quiet_ends(moment: datetime, schedule: Schedule) -> datetime | None:
    """The first moment after `moment` that is not quiet; None when `moment` is not quiet."""
    if not is_quiet(moment, schedule):
        return None
    local_day = moment.astimezone(schedule.zone).date()
    for offset in range(WEEK + 2):
        day = local_day + timedelta(days=offset)
        candidates = [_at(day, time(0), schedule.zone)]
        if schedule.quiet_until is not None:
            candidates.append(_at(day, schedule.quiet_until, schedule.zone))
        for candidate in sorted(candidates):
            if candidate > moment and not is_quiet(candidate, schedule):
                return candidate
    return None


def leaves_at(moment: datetime, schedule: Schedule) -> datetime:
    """When something that would leave at `moment` leaves: then, or when the quiet ends."""
    return quiet_ends(moment, schedule) or moment


def next_digest(moment: datetime, delivery: str, schedule: Schedule) -> datetime:
    """When the digest that a notification made at `moment` goes in leaves."""
    local = moment.astimezone(schedule.zone)
    if delivery == HOURLY:
        hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        due = hour + timedelta(hours=1)
    elif delivery == DAILY:
        due = _at(local.date(), schedule.digest_time, schedule.zone)
        if due <= moment:
            due = _at(local.date() + timedelta(days=1), schedule.digest_time, schedule.zone)
    else:
        raise ValueError(f"not a digest: {delivery!r}")
    return leaves_at(due, schedule)


def days_of(value: Iterable[int] | None) -> frozenset[int]:
    return frozenset(int(d) for d in value or () if 0 <= int(d) < WEEK)
