"""For random mappings that pass the checks, every migrated request is in a state of the new
version, its tasks are in states of it, and its audit chain verifies; a request refused is
left as it was."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from approvals.models import LIVE_TASK_STATUSES, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.definitions import definition_import, statechart_for
from approvals.services.errors import InvalidInput
from approvals.services.instances import instance_start
from approvals.services.migration import migration_prepare, migration_run
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

_keys = itertools.count()


def _task(role: str) -> dict[str, Any]:
    return {"meta": {"task": {"roles": [role]}}}


def _old(key: str) -> dict[str, Any]:
    """a → b → fulfil (two regions) → done; b may send it back to c (the requester)."""
    return {
        "id": key,
        "title": "Old",
        "initial": "a",
        "segregation": "none",
        "states": {
            "a": {**_task("manager"), "on": {"APPROVE": "b", "REJECT": "no"}},
            "b": {
                **_task("manager"),
                "on": {"APPROVE": "fulfil", "REJECT": "no", "REQUEST_CHANGES": "c"},
            },
            "c": {"meta": {"task": {"requester": True}}, "on": {"RESUBMIT": "a"}},
            "fulfil": {
                "type": "parallel",
                "states": {
                    "r1": {
                        "initial": "p",
                        "states": {
                            "p": {**_task("manager"), "on": {"APPROVE": "q", "REJECT": "q"}},
                            "q": {"type": "final"},
                        },
                    },
                    "r2": {
                        "initial": "s",
                        "states": {"s": {"on": {"SHIPPED": "t"}}, "t": {"type": "final"}},
                    },
                },
                "onDone": "done",
            },
            "done": {"type": "final"},
            "no": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def _new(key: str) -> dict[str, Any]:
    """Some states kept, some renamed, one step given to another role, one more region state."""
    return {
        "id": key,
        "title": "New",
        "initial": "a",
        "segregation": "none",
        "states": {
            "a": {**_task("manager"), "on": {"APPROVE": "b2", "REJECT": "no", "HOLD": "hold"}},
            "b2": {**_task("director"), "on": {"APPROVE": "fulfil", "REJECT": "no"}},
            "hold": {"on": {"GO": "a"}, "after": {"P3D": "a"}},
            "fulfil": {
                "type": "parallel",
                "states": {
                    "r1": {
                        "initial": "p",
                        "states": {
                            "p": {**_task("manager"), "on": {"APPROVE": "p2", "REJECT": "q"}},
                            "p2": {**_task("director"), "on": {"APPROVE": "q"}},
                            "q": {"type": "final"},
                        },
                    },
                    "r2": {
                        "initial": "s",
                        "states": {"s": {"on": {"SHIPPED": "t"}}, "t": {"type": "final"}},
                    },
                },
                "onDone": "done",
            },
            "done": {"type": "final"},
            "no": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


OLD_STATES = ["a", "b", "c", "fulfil", "fulfil.r1.p", "fulfil.r2.s", "fulfil.r1.q", "zz"]
NEW_STATES = ["a", "b2", "hold", "fulfil", "fulfil.r1.p", "fulfil.r1.p2", "fulfil.r2.s", "no"]
# How far each request goes before the migration: decisions of the manager.
PATHS = [[], ["APPROVE"], ["APPROVE", "REQUEST_CHANGES"], ["APPROVE", "APPROVE"]]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mapping=st.dictionaries(st.sampled_from(OLD_STATES), st.sampled_from(NEW_STATES), max_size=4),
    paths=st.lists(st.sampled_from(range(len(PATHS))), min_size=1, max_size=4),
    recompute=st.booleans(),
)
def test_random_mappings_that_pass_leave_requests_in_the_new_version(
    db: None, mapping: dict[str, str], paths: list[int], recompute: bool
) -> None:
    with transaction.atomic():
        _example(mapping, paths, recompute)
        transaction.set_rollback(True)


def _example(mapping: dict[str, str], paths: list[int], recompute: bool) -> None:
    key = f"prop-{next(_keys)}"
    for role in ("manager", "director"):
        GroupFactory(name=role)
    requester = UserFactory(username="rita")
    manager = UserFactory(username="mo")
    manager.groups.add(*GroupFactory._meta.model.objects.filter(name="manager"))
    definition_import(config=_old(key), actor=None, publish=True, now=timezone.now())
    instances = []
    for path in paths:
        instance = instance_start(definition_key=key, context={}, actor=requester, now=NOW)
        for decision in PATHS[path]:
            task = instance.tasks.get(status__in=LIVE_TASK_STATUSES)
            comment = "fix" if decision == "REQUEST_CHANGES" else ""
            task_decide(task_id=task.pk, event=decision, comment=comment, actor=manager, now=NOW)
        instances.append(instance)
    target = definition_import(config=_new(key), actor=None, publish=True, now=timezone.now())
    chart = statechart_for(target)
    before = {i.pk: (i.definition_id, i.audit_seq) for i in WorkflowInstance.objects.all()}
    try:
        migration = migration_prepare(
            key=key, from_version=1, to_version=2, mapping=mapping, recompute_sla=recompute
        )
    except InvalidInput:
        event("mapping refused")
        after = {i.pk: (i.definition_id, i.audit_seq) for i in WorkflowInstance.objects.all()}
        assert after == before
        return
    result = migration_run(migration, actor=None, now=timezone.now())
    migrated = {plan.instance_id for plan in result.migrated}
    event("some migrated" if migrated else "all refused")
    for instance in WorkflowInstance.objects.filter(pk__in=[i.pk for i in instances]):
        if instance.pk in migrated:
            assert instance.definition_id == target.pk
            assert instance.state in chart.states
            assert not chart.state(instance.state).is_final
            for branch in instance.branches.filter(closed_at__isnull=True):
                assert chart.state(branch.state).parent == branch.region
                assert chart.state(branch.region).parent == instance.state
            for task in instance.tasks.filter(status__in=LIVE_TASK_STATUSES):
                assert task.state in chart.states
                assert task.definition_id == target.pk
        else:
            assert (instance.definition_id, instance.audit_seq) == before[instance.pk]
    assert list(verify_instances(instances)) == []
