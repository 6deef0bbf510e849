"""Text the database cannot store (NUL, lone surrogates such as "\ud800") is a 400 naming the
field, never a 500 from the database driver; nothing is written."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent, Decision, TaskStatus, WorkflowInstance
from approvals.storable import NUL_MESSAGE, SURROGATE_MESSAGE
from tests.approvals.flows import publish, review_flow

pytestmark = pytest.mark.django_db

# JSON escapes, as a client sends them: a lone surrogate cannot even be encoded as UTF-8.
LONE = "\\ud800"


def post_json(client, path: str, body: str):
    return client.post(path, body, content_type="application/json")


@pytest.mark.parametrize(
    ("context", "fields"),
    [
        (f'{{"title": "{LONE}", "amount": 1}}', {"context.title": [SURROGATE_MESSAGE]}),
        ('{"title": "a\\udfffb", "amount": 1}', {"context.title": [SURROGATE_MESSAGE]}),
        (
            f'{{"title": "t", "amount": 1, "tags": ["ok", "{LONE}"]}}',
            {"context.tags[1]": [SURROGATE_MESSAGE]},
        ),
        (
            f'{{"title": "t", "amount": 1, "vendor": {{"{LONE}": 1}}}}',
            {
                "context.vendor": [
                    "A key is not storable: text may not contain surrogate characters "
                    "(U+D800 to U+DFFF), which are not Unicode."
                ]
            },
        ),
        ('{"title": "t", "amount": 1, "note": "a\\u0000b"}', {"context.note": [NUL_MESSAGE]}),
    ],
)
def test_start_with_text_that_cannot_be_stored_is_400_naming_the_field(
    api, requester, context, fields
):
    publish(review_flow())
    response = post_json(
        api(requester), "/api/v1/workflows/review/instances/", f'{{"context": {context}}}'
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert not WorkflowInstance.objects.exists()


def test_a_surrogate_in_the_title_or_business_key_is_400(api, requester):
    publish(review_flow())
    for field in ("title", "business_key"):
        body = f'{{"context": {{"title": "t", "amount": 1}}, "{field}": "x{LONE}"}}'
        response = post_json(api(requester), "/api/v1/workflows/review/instances/", body)
        assert response.status_code == 400, response.content
        assert list(response.json()["fields"]) == [field]
    assert not WorkflowInstance.objects.exists()


def test_event_data_with_a_surrogate_is_400_naming_the_field(api, awaiting_payment, integrator):
    events = AuditEvent.objects.filter(instance=awaiting_payment).count()
    response = post_json(
        api(integrator),
        f"/api/v1/instances/{awaiting_payment.pk}/events/",
        f'{{"event": "PAYMENT_RECEIVED", "data": {{"reference": "{LONE}"}}}}',
    )
    assert response.status_code == 400, response.content
    assert response.json()["fields"] == {"data.reference": [SURROGATE_MESSAGE]}
    awaiting_payment.refresh_from_db()
    assert awaiting_payment.state == "awaiting_payment"
    assert AuditEvent.objects.filter(instance=awaiting_payment).count() == events


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"decision": "APPROVE", "data": {{"why": "{LONE}"}}}}', "data.why"),
        (f'{{"decision": "REJECT", "comment": "no{LONE}"}}', "comment"),
    ],
)
def test_a_decision_with_a_surrogate_is_400_naming_the_field(api, review, reviewer, body, field):
    task = review.tasks.get()
    response = post_json(api(reviewer), f"/api/v1/tasks/{task.pk}/decide/", body)
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == [field]
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    assert not Decision.objects.exists()


def test_a_delegation_to_a_surrogate_name_is_400(api, review, reviewer):
    task = review.tasks.get()
    response = post_json(
        api(reviewer), f"/api/v1/tasks/{task.pk}/delegate/", f'{{"to": "rob{LONE}"}}'
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == ["to"]
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_the_outsider_gets_404_whatever_the_text(api, review, outsider):
    task = review.tasks.get()
    response = post_json(
        api(outsider),
        f"/api/v1/tasks/{task.pk}/decide/",
        f'{{"decision": "APPROVE", "data": {{"why": "{LONE}"}}}}',
    )
    assert response.status_code == 404
    assert not Decision.objects.exists()
