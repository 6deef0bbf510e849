"""Random events and task actions over the shipped examples; the invariants hold after each."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from approvals.models import LIVE_TASK_STATUSES, Branch, Task, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.definitions import definition_import, definition_parse, statechart_for
from approvals.services.errors import WorkflowError
from approvals.services.instances import (
    instance_cancel,
    instance_send_event,
    instance_start,
    instance_withdraw,
)
from approvals.services.signatures import SigningCredentials
from approvals.services.task_work import (
    task_claim,
    task_decide,
    task_delegate,
    task_unclaim,
)
from tests.approvals.flows import NOW
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

EXAMPLES = Path(__file__).resolve().parents[3] / "approvals" / "workflows"
ROLES = ["manager", "director", "finance", "operator", "warehouse", "shipping", "security"]
REQUESTS = {
    "purchase-order": st.fixed_dictionaries(
        {
            "title": st.sampled_from(["Laptop", "Chairs"]),
            "amount": st.sampled_from([10, 999.5, 1000, 5000, 20000]),
            "currency": st.just("EUR"),
            "justification": st.just("needed"),
        }
    ),
    "access-request": st.fixed_dictionaries(
        {
            "system": st.sampled_from(["erp", "crm"]),
            "level": st.sampled_from(["read", "admin"]),
            "reason": st.just("project"),
        }
    ),
    "order-fulfillment": st.fixed_dictionaries(
        {
            "customer": st.just("ACME"),
            "items": st.integers(min_value=1, max_value=3),
            "address": st.just("1 Main St"),
        }
    ),
}
EVENTS = st.sampled_from(
    [
        "APPROVE",
        "REJECT",
        "REQUEST_CHANGES",
        "RESUBMIT",
        "WITHDRAW",
        "PICKED",
        "LABEL_CREATED",
        "CANCEL",
        "PAYMENT_RECEIVED",
        "UNKNOWN",
    ]
)
MEMBERS = {
    "alice": [],
    "bob": ["manager"],
    "carol": ["manager"],
    "dave": ["director"],
    "erin": ["finance"],
    "oscar": ["operator", "warehouse", "shipping"],
    "sam": ["security"],
    "otto": [],
}
NAMES = st.sampled_from(sorted(MEMBERS))
PEOPLE: dict[str, object] = {}


class Workflows(RuleBasedStateMachine):
    instances = Bundle("instances")

    def __init__(self) -> None:
        super().__init__()
        # Each run is a savepoint, rolled back in teardown: runs do not see each other.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize()
    def nothing(self) -> None:
        pass

    @rule(target=instances, data=st.data(), key=st.sampled_from(sorted(REQUESTS)))
    def start(self, data: st.DataObject, key: str) -> int | None:
        context = data.draw(REQUESTS[key])
        requester = data.draw(st.sampled_from(["alice", "bob"]))
        return self._try(
            instance_start, definition_key=key, context=context, actor=PEOPLE[requester], now=NOW
        )

    @rule(instance=instances, data=st.data(), event=EVENTS, who=NAMES)
    def decide(self, instance: int | None, data: st.DataObject, event: str, who: str) -> None:
        task = self._pick_task(instance, data)
        if task is not None:
            self._try(
                task_decide,
                task_id=task.pk,
                event=event,
                comment="because",
                actor=PEOPLE[who],
                now=NOW,
                signing=SigningCredentials(password=TEST_PASSWORD),
            )

    @rule(
        instance=instances,
        data=st.data(),
        who=NAMES,
        action=st.sampled_from(["claim", "unclaim", "delegate"]),
    )
    def handle(self, instance: int | None, data: st.DataObject, who: str, action: str) -> None:
        task = self._pick_task(instance, data)
        if task is None:
            return
        if action == "claim":
            self._try(task_claim, task_id=task.pk, actor=PEOPLE[who], now=NOW)
        elif action == "unclaim":
            self._try(task_unclaim, task_id=task.pk, actor=PEOPLE[who], now=NOW)
        else:
            target = data.draw(NAMES)
            self._try(
                task_delegate,
                task_id=task.pk,
                to_user_id=PEOPLE[target].pk,
                actor=PEOPLE[who],
                now=NOW,
            )

    @rule(instance=instances, event=EVENTS, amount=st.sampled_from([0, 100, 10**6]))
    def external(self, instance: int | None, event: str, amount: int) -> None:
        if instance is not None:
            self._try(
                instance_send_event,
                instance_id=instance,
                event=event,
                data={"amount": amount},
                actor=PEOPLE["oscar"],
                now=NOW,
            )

    @rule(instance=instances, how=st.sampled_from(["withdraw", "cancel"]))
    def stop(self, instance: int | None, how: str) -> None:
        if instance is None:
            return
        owner = WorkflowInstance.objects.get(pk=instance).requester
        if how == "withdraw":
            self._try(instance_withdraw, instance_id=instance, actor=owner, now=NOW)
        else:
            self._try(
                instance_cancel, instance_id=instance, actor=PEOPLE["oscar"], reason="test", now=NOW
            )

    @invariant()
    def every_instance_is_consistent(self) -> None:
        for instance in WorkflowInstance.objects.select_related("definition"):
            chart = statechart_for(instance.definition)
            top = chart.state(instance.state)  # KeyError: a state the definition lacks
            assert top.parent is None
            branches = list(Branch.objects.filter(instance=instance, closed_at__isnull=True))
            live = list(Task.objects.filter(instance=instance, status__in=LIVE_TASK_STATUSES))
            if not instance.is_active:
                assert not live, "a finished request has open tasks"
                continue
            assert not top.is_final, "an active request rests in a final state"
            if top.is_parallel:
                assert {b.region for b in branches} == set(chart.regions(top.path))
                active = {b.state for b in branches}
                for b in branches:
                    assert chart.state(b.state).parent == b.region
            else:
                assert not branches
                active = {top.path}
            for task in live:
                assert task.state in active, f"task {task.pk} of {task.state} outlived it"
        assert list(verify_instances(WorkflowInstance.objects.all())) == []

    def _pick_task(self, instance: int | None, data: st.DataObject) -> Task | None:
        if instance is None:
            return None
        tasks = list(Task.objects.filter(instance_id=instance).order_by("pk"))
        return data.draw(st.sampled_from(tasks)) if tasks else None

    @staticmethod
    def _try(service, **kwargs) -> int | None:
        # Refusals are expected (random actors and events); anything else fails the test.
        try:
            result = service(**kwargs)
        except WorkflowError:
            return None
        return getattr(result, "pk", None)


@pytest.mark.django_db
def test_random_walks_keep_the_invariants() -> None:
    for role in ROLES:
        GroupFactory(name=role)
    for path in sorted(EXAMPLES.glob("*.y*ml")):
        config = definition_parse(path.read_text(), filename=path.name)
        definition_import(config=config, actor=None, publish=True, now=NOW)
    for username, roles in MEMBERS.items():
        PEOPLE[username] = UserFactory(
            username=username, groups=[GroupFactory(name=r) for r in roles]
        )
    oscar = PEOPLE["oscar"]
    oscar.is_superuser = True  # the operator may send events and cancel
    oscar.save()
    run_state_machine_as_test(
        Workflows,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
