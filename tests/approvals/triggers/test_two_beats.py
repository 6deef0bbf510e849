"""Two beats sweeping the same tick at the same moment, each in its own thread and
connection on real PostgreSQL: one request, one firing row, no error."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from approvals.models import ScheduleFiring, WorkflowInstance
from approvals.services.schedules import schedules_fire
from tests.approvals.triggers.flows import MONDAY_8_PARIS

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

BEATS = 4


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are real only on PostgreSQL")


def test_beats_racing_for_one_tick_start_one_request(weekly):
    barrier = threading.Barrier(BEATS)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def beat(offset: int) -> None:
        try:
            barrier.wait()
            results.append(schedules_fire(now=MONDAY_8_PARIS + timedelta(seconds=offset)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat, args=(n,)) for n in range(BEATS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results, key=len) == [{}] * (BEATS - 1) + [{"started": 1}]
    assert WorkflowInstance.objects.count() == 1
    firing = ScheduleFiring.objects.get()
    assert firing.instance == WorkflowInstance.objects.get()
