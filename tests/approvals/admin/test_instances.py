"""The instances admin: an operator cancels a request and reassigns its task."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import InstanceStatus, TaskStatus
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db


def test_operator_cancels_and_reassigns_from_the_instance_page(
    staff_client, requester, reviewer, outsider
):
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    page = staff_client.get(reverse("admin:approvals_workflowinstance_change", args=[instance.pk]))
    assert b'id="timeline"' in page.content and b"instance.started" in page.content

    staff_client.post(
        reverse("admin:approvals_task_reassign", args=[instance.pk, task.pk]),
        {f"t{task.pk}-to": reviewer.pk},
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert instance.tasks.get(status=TaskStatus.CLAIMED).assignee == reviewer

    outsider_client = Client()
    outsider_client.force_login(outsider)
    refused = outsider_client.post(
        reverse("admin:approvals_instance_cancel", args=[instance.pk]), {"reason": "x"}
    )
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    staff_client.post(
        reverse("admin:approvals_instance_cancel", args=[instance.pk]), {"reason": "duplicate"}
    )
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.CANCELLED
