"""A definition's schedules: each tick starts one request as the schedule's service account;
a beat restarted late starts the missed tick once (catch_up) or skips it (catch_up: false)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.machine.loader import dump_document, load_document
from approvals.models import (
    AuditEvent,
    Channel,
    FiringOutcome,
    Schedule,
    ScheduleFiring,
    WorkflowInstance,
)
from approvals.services.definitions import definition_config, definition_new_version
from approvals.services.schedules import schedules_fire
from tests.approvals.triggers.conftest import publish_at
from tests.approvals.triggers.flows import MONDAY_8_PARIS, report_flow

pytestmark = pytest.mark.django_db


def test_a_tick_starts_one_request_as_the_service_account(weekly, bot):
    assert schedules_fire(now=MONDAY_8_PARIS - timedelta(minutes=1)) == {}
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(seconds=20)) == {"started": 1}
    # The next sweeps find the tick taken.
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(seconds=50)) == {}
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(days=1)) == {}

    request = WorkflowInstance.objects.get()
    assert request.requester == bot
    assert request.context == {"team": "ops"}
    assert (request.state, request.created_at) == ("review", MONDAY_8_PARIS + timedelta(seconds=20))
    started = AuditEvent.objects.get(instance=request, event="instance.started")
    assert started.channel == Channel.SCHEDULE
    assert started.data["trigger"]["schedule"] == "schedule-1"
    assert started.data["trigger"]["tick"] == "2026-11-02T08:00:00+01:00"
    firing = ScheduleFiring.objects.get()
    assert (firing.outcome, firing.instance, firing.tick) == (
        FiringOutcome.STARTED,
        request,
        MONDAY_8_PARIS,
    )


def test_the_next_week_is_the_next_tick(weekly):
    schedules_fire(now=MONDAY_8_PARIS)
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(days=7)) == {"started": 1}
    assert ScheduleFiring.objects.count() == WorkflowInstance.objects.count() == 2


def test_a_beat_restarted_late_starts_the_missed_tick_once(weekly):
    # Beat was down from Sunday to Tuesday: Monday's tick is started when it comes back...
    late = MONDAY_8_PARIS + timedelta(days=1, hours=3)
    assert schedules_fire(now=late) == {"started": 1}
    assert schedules_fire(now=late + timedelta(minutes=1)) == {}
    # ...and, down three weeks, the ticks missed give one request (for the latest), not three.
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(days=22)) == {"started": 1}
    ticks = list(ScheduleFiring.objects.order_by("tick").values_list("tick", flat=True))
    assert ticks == [MONDAY_8_PARIS, MONDAY_8_PARIS + timedelta(days=21)]
    assert WorkflowInstance.objects.count() == 2


def test_catch_up_false_skips_a_missed_tick_and_takes_the_next(bot, reviewer):
    publish_at(
        report_flow(
            {
                "cron": "0 8 * * MON",
                "tz": "Europe/Paris",
                "context": {"team": "ops"},
                "catch_up": False,
                "run_as": "report-bot",
            }
        )
    )
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(hours=5)) == {"skipped": 1}
    assert not WorkflowInstance.objects.exists()
    assert ScheduleFiring.objects.get().outcome == FiringOutcome.SKIPPED
    # On time (within SCHEDULE_GRACE_SECONDS), the next tick starts its request.
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(days=7, seconds=30)) == {"started": 1}


def test_the_tick_follows_the_time_zone_across_daylight_saving(bot, reviewer):
    # Paris leaves summer time on 25 October 2026: 08:00 was 06:00 UTC the Monday before.
    publish_at(
        report_flow(
            {
                "cron": "0 8 * * MON",
                "tz": "Europe/Paris",
                "context": {"team": "a"},
                "run_as": "report-bot",
            }
        ),
        "2026-10-18T00:00:00+00:00",
    )
    schedules_fire(now=MONDAY_8_PARIS - timedelta(days=7, hours=1))
    assert ScheduleFiring.objects.get().tick.isoformat() == "2026-10-19T06:00:00+00:00"


def test_a_schedule_whose_requester_is_gone_records_why(weekly, bot):
    bot.is_active = False
    bot.save()
    assert schedules_fire(now=MONDAY_8_PARIS) == {"failed": 1}
    firing = ScheduleFiring.objects.get()
    assert "report-bot is not an active user" in firing.error
    assert not WorkflowInstance.objects.exists()


def test_without_run_as_the_owner_is_the_requester(reviewer, admin_user):
    definition = publish_at(report_flow())
    type(definition).objects.filter(pk=definition.pk).update(created_by=admin_user)
    assert schedules_fire(now=MONDAY_8_PARIS) == {"started": 1}
    assert WorkflowInstance.objects.get().requester == admin_user


def test_only_published_versions_fire_and_a_new_version_counts_on(weekly, admin_user):
    schedules_fire(now=MONDAY_8_PARIS)
    draft = definition_new_version(definition_id=weekly.pk, actor=admin_user)
    assert draft.schedules.count() == 1
    # The draft's copy of the schedule does not fire; the published one's tick is taken.
    assert schedules_fire(now=MONDAY_8_PARIS + timedelta(minutes=1)) == {}
    assert WorkflowInstance.objects.count() == 1


def test_the_file_round_trips(weekly):
    config = definition_config(weekly)
    assert config["schedule"] == [
        {
            "name": "schedule-1",
            "cron": "0 8 * * MON",
            "tz": "Europe/Paris",
            "context": {"team": "ops"},
            "run_as": "report-bot",
        }
    ]
    assert load_document(dump_document(config, fmt="yaml")) == config
    row = Schedule.objects.get()
    assert (row.definition, row.catch_up) == (weekly, True)
