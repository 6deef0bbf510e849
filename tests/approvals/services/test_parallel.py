"""Parallel states: one branch per region, the join, and leaving early."""

from __future__ import annotations

import pytest

from approvals.models import Branch, InstanceStatus, TaskStatus
from approvals.services.audit import verify_instances
from approvals.services.errors import Conflict
from approvals.services.instances import instance_send_event, instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, parallel_flow, publish
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def picker(db):
    return UserFactory(username="pia", groups=[GroupFactory(name="warehouse")])


@pytest.fixture
def instance(requester):
    publish(parallel_flow())
    return instance_start(definition_key="fulfil", context={}, actor=requester, now=NOW)


def test_entering_opens_a_branch_per_region(instance):
    branches = {b.region: b.state for b in instance.branches.all()}
    assert branches == {
        "fulfillment.inventory": "fulfillment.inventory.picking",
        "fulfillment.shipping": "fulfillment.shipping.label",
    }
    task = instance.tasks.get()
    assert task.state == "fulfillment.inventory.picking"
    assert task.branch.region == "fulfillment.inventory"


def test_regions_move_independently_and_join_on_done(instance, picker, operator):
    task_decide(task_id=instance.tasks.get().pk, event="PICKED", actor=picker, now=NOW)
    instance.refresh_from_db()
    assert instance.state == "fulfillment"
    assert instance.branches.get(region="fulfillment.inventory").state.endswith("packed")

    instance = instance_send_event(
        instance_id=instance.pk, event="LABEL_CREATED", actor=operator, now=NOW
    )
    assert instance.state == "shipped"
    assert instance.status == InstanceStatus.COMPLETED
    assert not Branch.objects.filter(instance=instance, closed_at__isnull=True).exists()
    assert list(verify_instances([instance])) == []


def test_event_on_the_parallel_node_leaves_every_region(instance, operator, picker):
    instance = instance_send_event(instance_id=instance.pk, event="CANCEL", actor=operator, now=NOW)
    assert (instance.state, instance.status) == ("cancelled", InstanceStatus.CANCELLED)
    assert instance.tasks.get().status == TaskStatus.CANCELLED
    with pytest.raises(Conflict, match="accepts no events"):
        instance_send_event(instance_id=instance.pk, event="LABEL_CREATED", actor=operator, now=NOW)


def test_accepted_events_cover_every_region_and_the_node(instance, operator):
    with pytest.raises(Conflict) as exc:
        instance_send_event(instance_id=instance.pk, event="NOPE", actor=operator, now=NOW)
    assert exc.value.accepted_events == ["PICKED", "LABEL_CREATED", "CANCEL"]
