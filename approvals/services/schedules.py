"""Schedules, their writes: each tick of a published definition's cron schedule starts one
request (what Celery beat runs every SCHEDULE_SWEEP_SECONDS).

Exactly once per tick: a tick is taken by inserting its `ScheduleFiring` row, unique on
(workflow, schedule name, tick), in the transaction that starts its request. A second beat,
or a sweep that overlaps the last, inserts the same row, waits for the first transaction and
gets the unique violation: it starts nothing. A rolled-back start frees the tick again.

Catching up: the last tick taken (or, for a schedule never fired, the version's publication)
is where the next sweep counts from. A beat restarted late finds the ticks it missed and, like
anacron, starts one request for the latest of them (`catch_up: true`, the default); with
`catch_up: false` a tick older than SCHEDULE_GRACE_SECONDS is recorded as skipped instead.
The requester is the schedule's `run_as`, else the version's owner (services/triggers.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from approvals import tracing
from approvals.machine.schedules import latest_tick
from approvals.models import (
    Channel,
    DefinitionStatus,
    FiringOutcome,
    Schedule,
    ScheduleFiring,
)
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import start_on
from approvals.services.subflows import reason
from approvals.services.triggers import trigger_requester

logger = logging.getLogger(__name__)


@tracing.service_span("signoff.schedules_fire")
def schedules_fire(*, now: datetime) -> dict[str, int]:
    """Take every due tick of the published versions' schedules; how many of each outcome
    (started, skipped, failed) this sweep took."""
    taken: Counter[str] = Counter()
    schedules = Schedule.objects.filter(
        definition__status=DefinitionStatus.PUBLISHED
    ).select_related("definition", "definition__created_by")
    for schedule in schedules:
        outcome = schedule_fire(schedule=schedule, now=now)
        if outcome is not None:
            taken[outcome] += 1
    return dict(taken)


def schedule_fire(*, schedule: Schedule, now: datetime) -> str | None:
    """Take this schedule's latest due tick, if any and if no one else took it: the
    outcome (started, skipped or failed), or None."""
    definition = schedule.definition
    last = ScheduleFiring.objects.filter(
        workflow_key=definition.key, schedule=schedule.name
    ).aggregate(last=Max("tick"))["last"]
    since = last or definition.published_at or now
    tick = latest_tick(schedule.cron, schedule.tz, after=since, until=now)
    if tick is None:
        return None
    late = now - tick > timedelta(seconds=settings.SCHEDULE_GRACE_SECONDS)
    with transaction.atomic():
        firing = ScheduleFiring(
            workflow_key=definition.key,
            schedule=schedule.name,
            tick=tick,
            fired_at=now,
            outcome=FiringOutcome.SKIPPED if late and not schedule.catch_up else "",
        )
        try:
            with transaction.atomic():
                firing.save(force_insert=True)
        except IntegrityError:
            return None  # another beat took this tick
        if firing.outcome == FiringOutcome.SKIPPED:
            return firing.outcome
        try:
            with transaction.atomic():
                firing.instance = start_on(
                    definition,
                    context=dict(schedule.context or {}),
                    actor=trigger_requester(definition, schedule.run_as),
                    now=now,
                    channel=Channel.SCHEDULE,
                    trigger={
                        "schedule": schedule.name,
                        "tick": tick.isoformat(),
                        "message": f"started by the schedule {schedule.name} "
                        f"({schedule.cron}, {schedule.tz}) for {tick:%Y-%m-%d %H:%M %Z}",
                    },
                )
            firing.outcome = FiringOutcome.STARTED
        except (InvalidInput, Conflict, NotAllowed) as exc:
            firing.outcome = FiringOutcome.FAILED
            firing.error = reason(exc)
            logger.warning(
                "schedule %s of %s: the request for %s could not start: %s",
                schedule.name,
                definition.key,
                tick.isoformat(),
                firing.error,
            )
        firing.save(update_fields=["outcome", "instance", "error"])
        return firing.outcome
