"""The operator's manual review of a failed automated step, on the task page."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.formatting import moment
from approvals.models import FailedAction, InstanceStatus, OutboxMessage, Task, TaskStatus
from approvals.services.automated_steps import failed_action_retry, failed_action_skip
from tests.approvals.flows import NOW
from tests.approvals.services.test_automated_steps import (
    FAILURES,
    _fail_to_review,
    attempt,
    message_of,
    start,
    step_flow,
)
from tests.approvals.views.conftest import snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_failures_left():
    FAILURES.clear()


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


def test_a_handled_review_opens_and_says_who_handled_it(client: Client, requester, operator):
    """Once retried, skipped or cancelled, the review's page (opened later from its
    notification, say) was a 500; it says who handled it and when, like a decided task."""
    when = moment(NOW)
    client.force_login(operator)
    retried = _fail_to_review(requester)
    response = client.post(f"/tasks/{retried.pk}/retry/", {"comment": "the API is back"})
    assert response.status_code == 302 and response["Location"] == f"/tasks/{retried.pk}/"
    page = client.get(f"/tasks/{retried.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Retried by Opal Operator at " in html
    assert 'id="retry"' not in html
    assert "The step is running once more" in html  # its one attempt has not run yet

    skipped = _fail_to_review(requester)
    failed_action_skip(task_id=skipped.pk, event="GIVE_UP", actor=operator, now=NOW)
    html = client.get(f"/tasks/{skipped.pk}/").content.decode()
    assert f"Skipped by Opal Operator at {when}." in html
    # The request ended after a skipped step, and its page says so.
    request_page = client.get(f"/requests/{skipped.instance_id}/").content.decode()
    assert "the step 'Post' was skipped by Opal Operator" in request_page

    cancelled = _fail_to_review(requester)
    client.post(f"/tasks/{cancelled.pk}/cancel/", {"reason": "gone"})
    html = client.get(f"/tasks/{cancelled.pk}/").content.decode()
    assert "Cancelled with the request by Opal Operator at " in html


def test_the_retrys_outcome_shows_on_the_review(client: Client, requester, operator):
    review = _fail_to_review(requester)
    failed_action_retry(task_id=review.pk, actor=operator, now=NOW)
    FAILURES.append(RuntimeError("still down"))
    assert attempt(review.instance) == "failed"
    client.force_login(operator)
    html = client.get(f"/tasks/{review.pk}/").content.decode()
    again = FailedAction.objects.latest("pk").task
    assert "That attempt failed too" in html and "RuntimeError: still down" in html
    assert f'href="/tasks/{again.pk}/"' in html
    # The new review lists every attempt of the step: three, then the operator's one.
    html = client.get(f"/tasks/{again.pk}/").content.decode()
    rows = html.split('id="attempts"')[1].split("</table>")[0].count("<tr><td>")
    assert rows == 4 and "failed 4 times" in html
    failed_action_retry(task_id=again.pk, actor=operator, now=NOW)
    assert attempt(review.instance) == "done"
    html = client.get(f"/tasks/{again.pk}/").content.decode()
    assert "That attempt worked" in html


def test_a_permanent_failure_says_what_to_do(client: Client, requester, operator, settings):
    settings.WEBHOOK_SECRET = ""
    config = step_flow()
    config["settings"] = {"webhook_url": "https://erp.example.com/hooks"}
    config["states"]["post"]["invoke"] = {"src": "webhook", "onDone": "done"}
    instance = start(requester, config)
    assert attempt(instance) == "failed"
    review = Task.objects.get(instance=instance, kind="action_review")
    client.force_login(operator)
    html = client.get(f"/tasks/{review.pk}/").content.decode()
    assert "no WEBHOOK_SECRET is configured" in html and "failed 1 time," in html
    assert "What to do:</strong> Set WEBHOOK_SECRET and restart the worker" in html
    assert "not retried" in html


def test_a_retrying_step_shows_its_attempt_and_when_the_next_is(
    client: Client, requester, operator
):
    instance = start(requester, step_flow())
    FAILURES.append(RuntimeError("timeout"))
    assert attempt(instance) == "retry"
    message = message_of(instance)
    next_at = moment(message.available_at)
    client.force_login(requester)
    html = client.get(f"/requests/{instance.pk}/").content.decode()
    status = html.split('id="status-line"')[1].split("</p>")[0]
    assert f"retrying, attempt 2 of 3, next at {next_at}" in status
    waiting = html.split('id="waiting"')[1].split("</ul>")[0]
    assert "Post</strong>: retrying, attempt 2 of 3" in waiting
    assert "Last attempt: RuntimeError: timeout" in waiting
