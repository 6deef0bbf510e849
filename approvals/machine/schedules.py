"""Cron schedules of a definition: parsing and the ticks between two instants.

A schedule is a five-field cron expression (minute hour day-of-month month day-of-week, as
crontab(5) writes them: ``0 8 * * MON``) read in an IANA time zone (``Europe/Paris``), so
8 o'clock stays 8 o'clock across daylight-saving changes. croniter does the cron arithmetic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

__all__ = ["CRON_FIELDS", "cron_problem", "latest_tick", "next_tick", "tz_problem"]

CRON_FIELDS = 5


def cron_problem(expression: object) -> str | None:
    """Why ``expression`` is not a five-field cron expression, or None."""
    if not isinstance(expression, str) or not expression.strip():
        return "expected a cron expression such as '0 8 * * MON'"
    fields = expression.split()
    if len(fields) != CRON_FIELDS:
        return (
            f"'{expression}' has {len(fields)} field(s); a cron expression has {CRON_FIELDS}: "
            "minute hour day-of-month month day-of-week (like '0 8 * * MON')"
        )
    try:
        croniter(expression)
    except (ValueError, KeyError) as exc:
        return f"'{expression}' is not a valid cron expression: {exc}"
    return None


def tz_problem(name: object) -> str | None:
    """Why ``name`` is not an IANA time zone, or None."""
    if not isinstance(name, str) or not name.strip():
        return "expected a time zone such as 'Europe/Paris' or 'UTC'"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{name}' is not a known time zone (an IANA name such as 'Europe/Paris')"
    return None


def latest_tick(cron: str, tz: str, *, after: datetime, until: datetime) -> datetime | None:
    """The last tick of the schedule in (after, until], or None when there is none."""
    # Ticks fall on whole minutes and croniter's get_prev is strictly before its start: from
    # the minute after `until`'s own, the previous tick is the last one at or before `until`.
    start = until.astimezone(ZoneInfo(tz)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    tick: datetime = croniter(cron, start).get_prev(datetime)
    return tick if tick > after else None


def next_tick(cron: str, tz: str, *, after: datetime) -> datetime:
    """The first tick of the schedule strictly after ``after``."""
    result: datetime = croniter(cron, after.astimezone(ZoneInfo(tz))).get_next(datetime)
    return result
