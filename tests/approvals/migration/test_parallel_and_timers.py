"""Every region of a parallel state is mapped; `after` timers follow their state."""

from __future__ import annotations

import copy

import pytest

from approvals.models import Branch, Timer, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, parallel_flow, publish, routed_flow
from tests.approvals.migration.conftest import migrate, next_version, refused

pytestmark = pytest.mark.django_db


def _fulfil(rita) -> WorkflowInstance:
    return instance_start(definition_key="fulfil", context={}, actor=rita, now=NOW)


def _renamed_region_state() -> dict:
    flow = parallel_flow()
    inventory = flow["states"]["fulfillment"]["states"]["inventory"]
    inventory["states"]["pick"] = inventory["states"].pop("picking")
    inventory["initial"] = "pick"
    return flow


def test_each_region_moves_with_its_task(rita):
    publish(parallel_flow())
    instance = _fulfil(rita)
    task = instance.tasks.get()
    next_version(_renamed_region_state())

    out, _ = migrate(
        "fulfil",
        "--from",
        "1",
        "--to",
        "2",
        "--map",
        "fulfillment.inventory.picking=fulfillment.inventory.pick",
    )

    assert (
        "(fulfillment → fulfillment, fulfillment.inventory.picking → fulfillment.inventory.pick,"
        " fulfillment.shipping.label → fulfillment.shipping.label)"
    ) in out
    branches = dict(Branch.objects.filter(instance=instance).values_list("region", "state"))
    assert branches == {
        "fulfillment.inventory": "fulfillment.inventory.pick",
        "fulfillment.shipping": "fulfillment.shipping.label",
    }
    task.refresh_from_db()
    assert task.state == "fulfillment.inventory.pick"
    assert list(verify_instances([instance])) == []


def test_a_region_left_without_a_state_is_refused(rita):
    publish(parallel_flow())
    instance = _fulfil(rita)
    flow = parallel_flow()
    flow["states"]["fulfillment"]["states"]["billing"] = {
        "initial": "invoice",
        "states": {"invoice": {"on": {"PAID": "done"}}, "done": {"type": "final"}},
    }
    next_version(flow)

    message = refused("fulfil", "--from", "1", "--to", "2")

    assert "no state of it is mapped into the region(s) fulfillment.billing" in message
    assert WorkflowInstance.objects.get(pk=instance.pk).definition.version == 1


def test_two_regions_cannot_land_in_one(rita):
    publish(parallel_flow())
    _fulfil(rita)
    flow = parallel_flow()
    flow["title"] = "Fulfil, second edition"
    next_version(flow)

    message = refused(
        "fulfil",
        "--from",
        "1",
        "--to",
        "2",
        "--map",
        "fulfillment.shipping.label=fulfillment.inventory.picking",
    )

    assert "would both be in fulfillment.inventory" in message


def _awaiting_payment(rita, finance) -> WorkflowInstance:
    instance = instance_start(definition_key="routed", context={"amount": 10}, actor=rita, now=NOW)
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=finance, now=NOW)
    instance.refresh_from_db()
    assert instance.state == "awaiting_payment"
    return instance


def test_a_timer_of_a_kept_delay_runs_on_and_a_new_delay_starts(rita, finance):
    publish(routed_flow())
    instance = _awaiting_payment(rita, finance)
    (old,) = Timer.objects.filter(instance=instance)
    flow = copy.deepcopy(routed_flow())
    flow["states"]["awaiting_payment"]["after"] = {"P7D": "rejected", "P3D": "rejected"}
    next_version(flow)

    migrate("routed", "--from", "1", "--to", "2")

    old.refresh_from_db()
    assert old.cancelled_at is None
    new = Timer.objects.get(instance=instance, delay="P3D")
    assert new.state == "awaiting_payment"
    assert new.cancelled_at is None
    migrated = instance.audit_events.get(event="instance.migrated")
    assert new.visit == migrated.seq


def test_a_timer_whose_delay_is_gone_is_cancelled(rita, finance):
    publish(routed_flow())
    instance = _awaiting_payment(rita, finance)
    flow = copy.deepcopy(routed_flow())
    flow["states"]["awaiting_payment"]["after"] = {"P3D": "rejected"}
    next_version(flow)

    out, _ = migrate("routed", "--from", "1", "--to", "2", "--dry-run")
    assert "1 time limit(s) cancelled" in out
    assert "time limit 'after P3D' of awaiting_payment starts now" in out
    migrate("routed", "--from", "1", "--to", "2")

    assert Timer.objects.get(instance=instance, delay="P7D").cancelled_at is not None
    assert Timer.objects.get(instance=instance, delay="P3D").cancelled_at is None
