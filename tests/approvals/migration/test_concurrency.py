"""A decision taken while the request is being migrated, on real PostgreSQL row locks: the
request migrates before the decision or after it, never half."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from approvals.models import Decision, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.migration import migration_prepare, migration_run
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.migration.conftest import next_version, renamed_flow, start

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ROUNDS = 6


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are real only on PostgreSQL")


def test_a_decision_during_the_migration_lands_before_or_after_it(rita, reviewer):
    publish(review_flow())
    instances = start(rita, ROUNDS)
    next_version(renamed_flow())
    migration = migration_prepare(
        key="review", from_version=1, to_version=2, mapping={"review": "manager_review"}
    )
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def decide_all() -> None:
        try:
            barrier.wait()
            for instance in instances:
                task_id = instance.tasks.get().pk
                task_decide(
                    task_id=task_id, event="REQUEST_CHANGES", comment="fix", actor=reviewer, now=NOW
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def migrate_all() -> None:
        try:
            barrier.wait()
            migration_run(migration, actor=None, now=timezone.now())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide_all), threading.Thread(target=migrate_all)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert Decision.objects.count() == ROUNDS
    for instance in WorkflowInstance.objects.filter(pk__in=[i.pk for i in instances]):
        events = list(instance.audit_events.values_list("event", "data"))
        names = [name for name, _ in events]
        migrated = events[names.index("instance.migrated")][1]
        if names.index("instance.migrated") < names.index("task.decided"):
            # Migrated first, then decided on the new version.
            assert migrated["moves"] == [["review", "manager_review"]]
        else:
            # Decided first: the migration found it in the next step.
            assert migrated["moves"] == [["changes", "changes"]]
        assert (instance.definition.version, instance.state) == (2, "changes")
    assert list(verify_instances(instances)) == []
