"""What each person chose for each kind of notification: the channels beside the in-app one,
at once or in a digest, and when they are quiet. A person's row for a kind wins over the
organisation's default row for it (admin: Accounts > Notification defaults), which wins over
the built-in default: every channel, at once, never quiet.

Read for the recipients of one commit in two queries (their rows, their time zones and
schedules); the organisation's defaults are kept per process."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.models import Delivery, NotificationPreference, NotificationSchedule
from approvals.caching import ProcessCache
from approvals.models import NotificationKind
from approvals.notify.schedule import Schedule, days_of


@dataclass(frozen=True)
class Choice:
    email: bool = True
    slack: bool = True
    teams: bool = True
    delivery: str = Delivery.IMMEDIATE

    @property
    def digest(self) -> bool:
        return self.delivery != Delivery.IMMEDIATE


BUILT_IN = Choice()
# Escalations are never held by quiet hours (they are what quiet hours must not hide).
URGENT_KINDS = frozenset({NotificationKind.ESCALATION})


def _choice(row: NotificationPreference) -> Choice:
    return Choice(email=row.email, slack=row.slack, teams=row.teams, delivery=row.delivery)


_defaults = ProcessCache(
    lambda: {
        row.kind: _choice(row) for row in NotificationPreference.objects.filter(user__isnull=True)
    },
    models=[NotificationPreference],
)


def organisation_default(kind: str) -> Choice:
    return _defaults.get().get(kind, BUILT_IN)


def choices_for(user_ids: Iterable[int]) -> dict[tuple[int, str], Choice]:
    """(user id, kind) -> the person's own choice, for the kinds they chose something for;
    `choice()` fills in the rest."""
    ids = set(user_ids)
    if not ids:
        return {}
    return {
        (row.user_id, row.kind): _choice(row)
        for row in NotificationPreference.objects.filter(user_id__in=ids)
    }


def choice(chosen: dict[tuple[int, str], Choice], user_id: int, kind: str) -> Choice:
    return chosen.get((user_id, kind)) or organisation_default(kind)


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def schedules_for(
    user_ids: Iterable[int], *, zones: dict[int, str] | None = None
) -> dict[int, Schedule]:
    """Each person's time zone (theirs, else the site's; given, or read), digest time and
    quiet time."""
    ids = set(user_ids)
    if not ids:
        return {}
    if zones is None:
        zones = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "time_zone"))
    rows = {row.user_id: row for row in NotificationSchedule.objects.filter(user_id__in=ids)}
    schedules: dict[int, Schedule] = {}
    for user_id in ids:
        zone = zone_of(zones.get(user_id, ""))
        row = rows.get(user_id)
        schedules[user_id] = (
            Schedule(
                zone=zone,
                digest_time=row.digest_time,
                quiet_from=row.quiet_from,
                quiet_until=row.quiet_until,
                quiet_days=days_of(row.quiet_days),
            )
            if row is not None
            else Schedule(zone=zone)
        )
    return schedules
