"""Form fields and query strings with lone surrogates are refused before any view, naming the
field; nothing is written. Django decodes query strings and multipart forms with the charset a
request declares, and utf-7 turns plain ASCII into lone surrogates. (It refuses urlencoded
forms in any charset but UTF-8 itself.)"""

from __future__ import annotations

import pytest
from django.test.client import BOUNDARY, encode_multipart

from approvals.models import AuditEvent, Decision, WorkflowInstance
from approvals.services.instances import instance_start
from approvals.storable import SURROGATE_MESSAGE
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db

# "+2AA-" is the lone surrogate U+D800 in UTF-7 ("+" is %2B in a query string).
UTF7_SURROGATE = "+2AA-"
UTF7_FORM = f"multipart/form-data; boundary={BOUNDARY}; charset=utf-7"


def post_utf7(client, path: str, **fields: str):
    # generic(), not post(): post() would re-encode the body into the declared charset.
    return client.generic("POST", path, encode_multipart(BOUNDARY, fields), UTF7_FORM)


@pytest.fixture
def task(requester):
    publish(review_flow())
    instance = instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=requester,
        now=NOW,
    )
    return instance.tasks.get()


def test_a_decision_whose_comment_decodes_to_a_surrogate_is_400_naming_it(client, reviewer, task):
    client.force_login(reviewer)
    events = AuditEvent.objects.count()
    response = post_utf7(
        client, f"/tasks/{task.pk}/decide/", decision="REJECT", comment=f"no{UTF7_SURROGATE}"
    )
    assert response.status_code == 400
    assert "Field &#x27;comment&#x27;" in response.content.decode()
    assert SURROGATE_MESSAGE in response.content.decode()
    assert not Decision.objects.exists()
    assert AuditEvent.objects.count() == events


def test_the_same_form_in_utf8_goes_through(client, reviewer, task):
    client.force_login(reviewer)
    response = client.post(
        f"/tasks/{task.pk}/decide/",
        "decision=REJECT&comment=Trop%20cher%20%C3%A9",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302
    assert Decision.objects.get().comment == "Trop cher é"


def test_a_new_request_whose_title_decodes_to_a_surrogate_is_400(client, requester):
    publish(review_flow())
    client.force_login(requester)
    response = post_utf7(client, "/requests/new/review/", title=f"x{UTF7_SURROGATE}", amount="5")
    assert response.status_code == 400
    assert "Field &#x27;title&#x27;" in response.content.decode()
    assert not WorkflowInstance.objects.exists()


def test_a_query_string_with_a_surrogate_is_400(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/inbox/?q=x%2B2AA-", CONTENT_TYPE=UTF7_FORM)
    assert response.status_code == 400
    assert "Field &#x27;q&#x27;" in response.content.decode()


def test_under_the_api_the_answer_is_the_api_error_shape(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/api/v1/tasks/?scope=%2B2AA-", CONTENT_TYPE=UTF7_FORM)
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "The request has errors.",
        "fields": {"scope": [SURROGATE_MESSAGE]},
    }


def test_an_outsider_is_refused_and_nothing_is_written(client, outsider, task):
    client.force_login(outsider)
    response = post_utf7(
        client, f"/tasks/{task.pk}/decide/", decision="APPROVE", comment=UTF7_SURROGATE
    )
    assert response.status_code == 400
    assert not Decision.objects.exists()
    # Without the bad text, the outsider meets the usual 404.
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    assert response.status_code == 404


def test_a_view_that_reads_the_body_itself_still_can_after_the_check(client, settings):
    # The Slack endpoint verifies its signature over the raw body: checking the form first must
    # not consume it (an unsigned press is a 401, not a 500).
    settings.SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
    response = post_utf7(client, "/slack/interactivity/", payload='{"type": "block_actions"}')
    assert response.status_code == 401
