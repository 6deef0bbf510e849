"""What a transition no longer reads (roles, members, webhook subscriptions, the view
permission) is cached per process; an edit is seen by the next transition."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from approvals import caching
from approvals.models import Notification, WebhookDelivery, WebhookSubscription
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def start(requester, title: str = "Laptop"):
    return instance_start(
        definition_key="review",
        context={"title": title, "amount": 900},
        actor=requester,
        now=NOW,
    )


def test_a_subscription_edit_is_seen_by_the_next_change(requester):
    publish(review_flow())
    hook = WebhookSubscription.objects.create(
        name="ERP", url="http://127.0.0.1:9/", secret="s" * 20, event_types=["instance.started"]
    )
    start(requester, "First")
    assert WebhookDelivery.objects.filter(subscription=hook).count() == 1

    hook.event_types = ["instance.completed"]
    hook.save()
    start(requester, "Second")
    assert WebhookDelivery.objects.filter(subscription=hook).count() == 1

    hook.event_types = ["instance.started"]
    hook.is_active = False
    hook.save()
    start(requester, "Third")
    assert WebhookDelivery.objects.filter(subscription=hook).count() == 1

    added = WebhookSubscription.objects.create(
        name="BI", url="http://127.0.0.1:9/bi", secret="t" * 20, event_types=["instance.started"]
    )
    start(requester, "Fourth")
    assert WebhookDelivery.objects.filter(subscription=added).count() == 1


def test_someone_added_to_a_role_is_told_of_the_next_task_and_a_removed_one_is_not(
    requester, reviewer
):
    publish(review_flow())
    start(requester, "Before")
    newcomer = UserFactory(username="nina")
    manager = Group.objects.get(name="manager")
    newcomer.groups.add(manager)
    start(requester, "After joining")
    reviewer.groups.remove(manager)
    start(requester, "After leaving")

    def titles(user) -> list[str]:
        return list(
            Notification.objects.filter(recipient=user)
            .order_by("pk")
            .values_list("instance__title", flat=True)
        )

    assert titles(newcomer) == ["After joining", "After leaving"]
    assert titles(reviewer) == ["Before", "After joining"]


def test_a_deactivated_member_is_told_nothing(requester, reviewer):
    publish(review_flow())
    start(requester, "Before")
    reviewer.is_active = False
    reviewer.save()
    start(requester, "After")
    assert list(Notification.objects.filter(recipient=reviewer).values_list("text", flat=True)) == [
        "New task: Review for “Before”"
    ]


def test_a_new_role_is_found_when_a_task_names_it(requester, reviewer):
    config = review_flow()
    config["states"]["review"]["on"]["APPROVE"] = "audit"
    config["states"]["audit"] = {"meta": {"task": {"roles": ["auditor"]}}, "on": {"OK": "approved"}}
    GroupFactory(name="auditor")
    publish(config)
    instance = start(requester)
    Group.objects.filter(name="auditor").delete()
    auditor_role = GroupFactory(name="auditor")
    UserFactory(username="aud", groups=[auditor_role])
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=reviewer, now=NOW)
    audit_task = instance.tasks.get(state="audit")
    assert list(audit_task.candidate_groups.values_list("pk", flat=True)) == [auditor_role.pk]


def test_a_change_made_elsewhere_is_seen_once_the_cache_ages(monkeypatch):
    loads: list[int] = []
    cache = caching.ProcessCache(
        lambda: loads.append(1) or len(loads), models=[WebhookSubscription], seconds=60
    )
    clock = [1000.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: clock[0])
    assert (cache.get(), cache.get()) == (1, 1)
    clock[0] += 59
    assert cache.get() == 1
    clock[0] += 2
    assert cache.get() == 2
    WebhookSubscription.objects.create(name="x", url="http://127.0.0.1:9/", secret="s" * 20)
    assert cache.get() == 3
