"""The engine's refusals in the definition's words: never a guard, a state's path or an
event as written."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from approvals.services.errors import Conflict
from approvals.services.instances import instance_send_event, instance_start
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db


def test_an_event_the_step_does_not_take_names_the_step(requester, admin_user):
    flow = review_flow()
    flow["states"]["review"]["meta"]["label"] = "Manager approval"
    publish(flow)
    instance = instance_start(
        definition_key="review", context={"title": "x", "amount": 1}, actor=requester, now=NOW
    )
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict) as exc:
        instance_send_event(
            instance_id=instance.pk, event="PAYMENT_RECEIVED", actor=admin_user, now=NOW
        )
    assert exc.value.message == "Payment received is not possible at Manager approval"
    assert AuditEvent.objects.count() == before
