"""The operator's manual review of a failed automated step, on the task page."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import InstanceStatus, OutboxMessage, TaskStatus
from tests.approvals.services.test_automated_steps import _fail_to_review
from tests.approvals.views.conftest import snapshot

pytestmark = pytest.mark.django_db


def test_the_page_shows_the_error_and_the_ways_on(client: Client, requester, operator):
    review = _fail_to_review(requester)
    client.force_login(operator)
    html = client.get(f"/tasks/{review.pk}/").content.decode()
    assert "An automated step failed" in html and "test_flaky" in html and "down" in html
    assert "failed 3 times" in html
    assert 'id="retry"' in html and '<option value="GIVE_UP">' in html
    assert 'value="APPROVE"' not in html and "Delegate" not in html


def test_retry_queues_the_step_again(client: Client, requester, operator):
    review = _fail_to_review(requester)
    client.force_login(operator)
    before = OutboxMessage.objects.filter(topic="action.invoke").count()
    response = client.post(f"/tasks/{review.pk}/retry/", {"comment": "the API is back"})
    assert response.status_code == 302
    assert OutboxMessage.objects.filter(topic="action.invoke").count() == before + 1
    review.refresh_from_db()
    assert review.status == TaskStatus.DONE and review.failed_action.resolution == "retried"


def test_skip_with_an_event_and_bad_choices(client: Client, requester, operator):
    review = _fail_to_review(requester)
    client.force_login(operator)
    before = snapshot()
    bad = client.post(f"/tasks/{review.pk}/skip/", {"event": "APPROVE"})
    assert (
        bad.status_code == 400 and "Choose one of: onDone, GIVE_UP, FAIL." in bad.content.decode()
    )
    assert snapshot() == before
    client.post(f"/tasks/{review.pk}/skip/", {"event": "GIVE_UP"})
    review.instance.refresh_from_db()
    assert review.instance.state == "abandoned"


def test_cancel_needs_a_reason(client: Client, requester, operator):
    review = _fail_to_review(requester)
    client.force_login(operator)
    before = snapshot()
    response = client.post(f"/tasks/{review.pk}/cancel/", {"reason": " "})
    assert response.status_code == 400 and "Say why it is cancelled." in response.content.decode()
    assert snapshot() == before
    client.post(f"/tasks/{review.pk}/cancel/", {"reason": "the carrier is gone"})
    review.instance.refresh_from_db()
    assert review.instance.status == InstanceStatus.CANCELLED


def test_outsiders_and_the_requester_are_refused(client: Client, requester, operator, outsider):
    review = _fail_to_review(requester)
    before = snapshot()
    client.force_login(outsider)
    for action, data in [
        ("retry", {}),
        ("skip", {"event": "GIVE_UP"}),
        ("cancel", {"reason": "x"}),
    ]:
        assert client.post(f"/tasks/{review.pk}/{action}/", data).status_code == 404
    client.force_login(requester)
    assert client.post(f"/tasks/{review.pk}/retry/").status_code == 403
    assert snapshot() == before
