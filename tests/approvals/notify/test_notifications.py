"""Who is told what, in the transaction of the change; the notifications page."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from approvals.models import Notification, NotificationKind, OutboxMessage, WorkflowInstance
from approvals.outbox import subscribers
from approvals.services.instances import instance_start, instance_withdraw
from approvals.services.task_work import task_claim, task_decide, task_delegate
from tests.approvals.flows import NOW, multi_flow, publish, review_flow
from tests.approvals.notify.helpers import emit_sla, told
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(requester, reviewer, reviewer2):
    publish(review_flow())
    return instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=requester,
        now=NOW,
    )


def live_task(instance):
    return instance.tasks.get(status__in=["open", "claimed"])


def test_a_new_task_tells_every_member_of_its_role_and_nobody_else(
    instance, requester, reviewer, reviewer2, outsider
):
    task = live_task(instance)
    for user in (reviewer, reviewer2):
        assert told(user) == [("task_new", "New task: Review for “Laptop”")]
        note = Notification.objects.get(recipient=user)
        assert (note.instance_id, note.task_id) == (instance.pk, task.pk)
        assert note.topic == "task.created"
        assert note.read_at is None and note.created_at == NOW
    assert told(requester) == [] and told(outsider) == []


def test_the_requester_in_the_role_is_not_told_of_a_task_they_may_not_decide(requester):
    requester.groups.add(GroupFactory(name="manager"))
    publish(review_flow())
    instance_start(
        definition_key="review", context={"title": "Own", "amount": 1}, actor=requester, now=NOW
    )
    assert told(requester) == []


def test_a_claim_tells_the_other_candidates_only(instance, reviewer, reviewer2, requester):
    task_claim(task_id=live_task(instance).pk, actor=reviewer, now=NOW)
    assert told(reviewer2)[-1] == ("task_claimed", "Rob Reviewer took Review for “Laptop”")
    assert [k for k, _ in told(reviewer)] == ["task_new"]
    assert told(requester) == []


def test_a_final_decision_is_one_notification_to_the_requester(instance, reviewer, requester):
    task_decide(task_id=live_task(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    assert told(requester) == [
        (
            "completed",
            "Rob Reviewer approved the Review step of “Laptop”; your request was approved",
        )
    ]
    note = Notification.objects.get(recipient=requester)
    assert note.actor == reviewer and note.data["decision"] == "APPROVE"
    assert note.task_id == instance.tasks.get().pk, "links to the decided task"
    assert note.data["outcome"] == "completed"


def test_a_rejection_says_so(instance, reviewer, requester):
    task_decide(
        task_id=live_task(instance).pk, event="REJECT", comment="no", actor=reviewer, now=NOW
    )
    assert told(requester) == [("completed", "Rob Reviewer rejected your request “Laptop”")]


def test_changes_requested_tells_the_requester_once_with_a_link_to_their_task(
    instance, reviewer, requester
):
    task_decide(
        task_id=live_task(instance).pk,
        event="REQUEST_CHANGES",
        comment="add a quote",
        actor=reviewer,
        now=NOW,
    )
    own_task = live_task(instance)
    assert own_task.assignee == requester
    assert told(requester) == [
        ("decision", "Rob Reviewer asked for changes on your request “Laptop”")
    ]
    assert Notification.objects.get(recipient=requester).task_id == own_task.pk


def test_the_requester_withdrawing_tells_nobody_themselves(instance, requester):
    instance_withdraw(instance_id=instance.pk, actor=requester, now=NOW)
    assert told(requester) == []


def test_delegation_tells_the_delegate(instance, reviewer, outsider):
    task_delegate(task_id=live_task(instance).pk, to_user_id=outsider.pk, actor=reviewer, now=NOW)
    assert told(outsider) == [
        ("task_delegated", "Rob Reviewer delegated Review for “Laptop” to you")
    ]


def test_reminders_and_escalations_tell_the_candidates(instance, reviewer, reviewer2):
    task = live_task(instance)
    emit_sla(task, "task.reminded")
    emit_sla(task, "task.escalated", level=1)
    assert told(reviewer)[1:] == [
        ("reminder", "Reminder: Review for “Laptop” is waiting for you"),
        ("escalation", "Escalated to you: Review for “Laptop”"),
    ]
    assert Notification.objects.get(recipient=reviewer, kind="escalation").data["level"] == 1


def test_all_rule_tells_each_role_of_its_own_task(requester, reviewer):
    security = UserFactory(username="sid", groups=[GroupFactory(name="security")])
    publish(multi_flow("all", ["manager", "security"]))
    instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    assert [k for k, _ in told(reviewer)] == ["task_new"]
    assert [k for k, _ in told(security)] == ["task_new"]


def test_a_rolled_back_change_tells_nobody(monkeypatch, requester, reviewer):
    publish(review_flow())

    @subscribers.subscribe("task.created")
    def explode(messages):
        raise RuntimeError("later subscriber failed")

    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            instance_start(
                definition_key="review",
                context={"title": "Desk", "amount": 1},
                actor=requester,
                now=NOW,
            )
    finally:
        subscribers._subscribers["task.created"].remove(explode)
    assert not WorkflowInstance.objects.exists()
    assert not Notification.objects.exists() and not OutboxMessage.objects.exists()


def test_notifications_are_pushed_only_after_commit(
    django_capture_on_commit_callbacks, requester, reviewer
):
    publish(review_flow())
    with django_capture_on_commit_callbacks() as callbacks:
        instance_start(
            definition_key="review",
            context={"title": "Desk", "amount": 1},
            actor=requester,
            now=NOW,
        )
    assert callbacks, "the push waits for the commit"


# ----- the page


def login(client, user):
    client.force_login(user)
    return client


def test_the_page_lists_mine_newest_first_with_the_unread_count(client, instance, reviewer):
    task_claim(task_id=live_task(instance).pk, actor=reviewer, now=NOW)
    page = login(client, reviewer).get(reverse("notifications"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "(1 unread)" in html and "New task: Review for “Laptop”" in html
    assert "data-unread-count>1<" in html.replace(" hidden", "")


def test_the_page_needs_a_login_and_shows_nobody_else_s(client, instance, outsider):
    assert client.get(reverse("notifications")).status_code == 302
    page = login(client, outsider).get(reverse("notifications"))
    assert "Laptop" not in page.content.decode()


def test_mark_one_read_then_all(client, instance, reviewer):
    emit_sla(live_task(instance), "task.reminded")
    first, _ = Notification.objects.filter(recipient=reviewer).order_by("pk")
    login(client, reviewer)
    answer = client.post(
        reverse("notifications_mark_read"), {"ids": [first.pk]}, HTTP_ACCEPT="application/json"
    )
    assert answer.json() == {"unread": 1}
    first.refresh_from_db()
    assert first.read_at is not None
    answer = client.post(reverse("notifications_mark_read"), {"all": "1"})
    assert answer.status_code == 302
    assert not Notification.objects.filter(recipient=reviewer, read_at__isnull=True).exists()
    assert Notification.objects.filter(recipient=reviewer).count() == 2, "kept, not deleted"


def test_marking_someone_else_s_notification_changes_nothing(client, instance, reviewer, outsider):
    note = Notification.objects.get(recipient=reviewer)
    login(client, outsider)
    answer = client.post(
        reverse("notifications_mark_read"), {"ids": [note.pk]}, HTTP_ACCEPT="application/json"
    )
    assert answer.json() == {"unread": 0}
    assert client.post(reverse("notification_open", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.read_at is None


def test_bad_input_is_refused_clearly(client, instance, reviewer):
    login(client, reviewer)
    url = reverse("notifications_mark_read")
    assert client.post(url, {"ids": ["x"]}).status_code == 400
    assert client.post(url, {}).status_code == 400
    assert client.get(url).status_code == 405
    assert Notification.objects.filter(recipient=reviewer, read_at__isnull=True).count() == 1


def test_open_marks_read_and_goes_to_the_task_page(client, instance, reviewer):
    note = Notification.objects.get(recipient=reviewer)
    answer = login(client, reviewer).post(reverse("notification_open", args=[note.pk]))
    assert answer.status_code == 302 and answer.url == f"/tasks/{note.task_id}/"
    note.refresh_from_db()
    assert note.read_at is not None
    # A GET changes nothing: link scanners and unfurlers fetch links.
    assert client.get(reverse("notification_open", args=[note.pk])).status_code == 405


def test_mark_read_is_csrf_protected(instance, reviewer):
    from django.test import Client

    client = login(Client(enforce_csrf_checks=True), reviewer)
    assert client.post(reverse("notifications_mark_read"), {"all": "1"}).status_code == 403
    assert Notification.objects.filter(recipient=reviewer, read_at__isnull=True).exists()


def test_the_kinds_are_the_documented_ones():
    assert {k.value for k in NotificationKind} == {
        "task_new",
        "task_claimed",
        "task_delegated",
        "decision",
        "reminder",
        "escalation",
        "completed",
        "mention",
        "question",
        "comment",
    }
