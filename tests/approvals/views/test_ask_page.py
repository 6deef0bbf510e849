"""The task page of an ask: who asked, the proposed action, safe Markdown, the JSON editor."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from approvals.models import AuditEvent, Task
from tests.approvals.asks import agent_account, agent_token, refund_ask

pytestmark = pytest.mark.django_db


@pytest.fixture
def asked(finance):
    token, _ = agent_token(agent_account("finance"))
    return refund_ask(
        token,
        context="# Why\nThe parcel arrived **damaged**. <script>alert(1)</script>"
        "[see](javascript:alert(1)) <img src=x onerror=alert(1)> [order](https://shop.example/1234)",
    )


def test_the_reviewer_sees_who_asked_the_action_and_safe_markdown(client: Client, asked, finance):
    task = asked.tasks.get()
    client.force_login(finance)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert (
        "Asked by agent <strong>refund-bot</strong> on behalf of <strong>Refund Bot</strong>"
        in html
    )
    assert "<code>send_refund</code>" in html
    assert '<th scope="row"><code>amount</code></th><td>120</td>' in html
    assert '<th scope="row"><code>note.reason</code></th><td>damaged</td>' in html
    assert "&quot;amount&quot;: 120" in html  # the raw JSON, escaped
    assert "<h3>Why</h3>" in html and "<strong>damaged</strong>" in html
    assert (
        '<a href="https://shop.example/1234" rel="noopener noreferrer nofollow">order</a>' in html
    )
    assert "<script>alert" not in html and "onerror" not in html and "javascript:" not in html
    assert 'value="APPROVE_WITH_CHANGES"' in html and 'id="arguments-editor"' in html


def test_the_requester_sees_the_ask_on_the_request_page(client: Client, asked):
    client.force_login(asked.requester)
    html = client.get(f"/requests/{asked.pk}/").content.decode()
    assert "Asked by agent <strong>refund-bot</strong>" in html


def test_an_outsider_gets_404(client: Client, asked, outsider):
    client.force_login(outsider)
    assert client.get(f"/tasks/{asked.tasks.get().pk}/").status_code == 404


def test_approving_with_edited_arguments_from_the_page(client: Client, asked, finance):
    task = asked.tasks.get()
    client.force_login(finance)
    edited = {"order": "1234", "amount": 60, "note": {"reason": "damaged"}}
    response = client.post(
        f"/tasks/{task.pk}/decide/",
        {"decision": "APPROVE_WITH_CHANGES", "comment": "", "arguments": json.dumps(edited)},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(instance=asked, event="task.decided")
    assert event.data["arguments"] == edited
    assert event.data["arguments_changes"] == [{"op": "replace", "path": "/amount", "value": 60}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"order": "1234", "amount": 900}', "amount: 900 is greater than the maximum of 500"),
        ('{"amount": 9}', "order: This field is required."),
    ],
)
def test_edited_arguments_are_checked_on_the_server(client: Client, asked, finance, text, message):
    task = asked.tasks.get()
    client.force_login(finance)
    response = client.post(
        f"/tasks/{task.pk}/decide/",
        {"decision": "APPROVE_WITH_CHANGES", "comment": "", "arguments": text},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html, html[html.find("arguments-editor") - 200 :][:1500]
    assert Task.objects.get(pk=task.pk).status == "open"
