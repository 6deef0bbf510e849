"""The engine reads roles_from, sla_from and named delays from the request when a step opens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.models import Timer
from approvals.services.errors import Conflict
from approvals.services.instances import instance_start
from approvals.services.sla import sla_sweep
from tests.approvals.flows import NOW, publish
from tests.approvals.machine.test_context_fields_in_steps import flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(finance, reviewer):
    return publish(flow())


def test_the_step_takes_its_roles_sla_and_timer_from_the_request(published, requester) -> None:
    instance = instance_start(
        definition_key="ask",
        context={"roles": ["finance", "manager"], "sla": "PT2H", "expires_in": "PT3H"},
        actor=requester,
        now=NOW,
    )
    task = instance.tasks.get()
    assert sorted(task.candidate_groups.values_list("name", flat=True)) == ["finance", "manager"]
    assert task.due_at == NOW + timedelta(hours=2)
    timer = Timer.objects.get(instance=instance)
    assert (timer.delay, timer.due_at) == ("expires_in", NOW + timedelta(hours=3))
    sla_sweep(now=NOW + timedelta(hours=3, seconds=1))
    instance.refresh_from_db()
    assert (instance.state, instance.status) == ("timed_out", "cancelled")


def test_no_sla_when_the_field_is_left_out(published, requester) -> None:
    instance = instance_start(
        definition_key="ask",
        context={"roles": ["finance"], "expires_in": "PT3H"},
        actor=requester,
        now=NOW,
    )
    assert instance.tasks.get().due_at is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"roles": [], "expires_in": "PT1H"}, "list of role names"),
        ({"roles": ["nobody"], "expires_in": "PT1H"}, "nobody no longer exist"),
        ({"roles": ["finance"]}, "the timer after expires_in cannot start"),
        ({"roles": ["finance"], "expires_in": "PT1H", "sla": "soon"}, "the field sla"),
    ],
)
def test_a_request_without_usable_fields_is_refused_whole(published, requester, context, message):
    with pytest.raises(Conflict, match=message):
        instance_start(definition_key="ask", context=context, actor=requester, now=NOW)
    assert not Timer.objects.exists()
