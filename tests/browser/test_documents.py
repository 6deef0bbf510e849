"""The documents journey in a real browser: a quote, changes requested, v2, the diff, the
approval that names v2, the audit with both hashes; and a question in the discussion."""

from __future__ import annotations

import hashlib
import re

import pytest

from approvals.models import ArtifactVersion, Decision, Task
from tests.approvals.flows import publish, review_flow
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

V1 = b"Supplier: Acme\nChairs: 10\nPrice: 3,100 EUR\n"
V2 = b"Supplier: Acme\nChairs: 10\nPrice: 2,750 EUR\nDelivery: free\n"


@pytest.fixture
def quote_flow(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    flow = review_flow()
    flow["form"]["meta"] = {"artifacts": {"quote": {"required": True, "types": ["text/*"]}}}
    flow["states"]["review"]["meta"]["artifacts"] = {"quote": {"required": True}}
    publish(flow)
    manager = GroupFactory(name="manager")
    UserFactory(username="rita", first_name="Rita", last_name="Requester")
    UserFactory(username="rob", first_name="Rob", last_name="Reviewer", groups=[manager])


def test_quote_changes_v2_diff_approve_and_the_audit(login, live_server, quote_flow, tmp_path):
    (tmp_path / "quote.txt").write_bytes(V1)
    (tmp_path / "quote-v2.txt").write_bytes(V2)
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/new/review/")
    rita.fill("input[name=title]", "Office chairs")
    rita.fill("input[name=amount]", "3100")
    rita.set_input_files("input[name=artifact_quote]", str(tmp_path / "quote.txt"))
    rita.click("text=Submit request")
    rita.wait_for_url(re.compile(r".*/requests/\d+/$"))
    assert "quote.txt" in rita.locator("#documents").inner_text()

    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    rob.click("text=Office chairs")
    documents = rob.locator("#documents").inner_text()
    assert "v1" in documents and hashlib.sha256(V1).hexdigest() in documents
    rob.fill("textarea[name=comment]", "Ask Acme for a better price.")
    rob.click("button[value=REQUEST_CHANGES]")
    rob.wait_for_url("**/inbox/**")

    task = Task.objects.get(for_requester=True, status__in=["open", "claimed"])
    rita.goto(f"{live_server.url}/tasks/{task.pk}/")
    rita.fill("#artifact-name", "quote")
    rita.set_input_files("#artifact-file", str(tmp_path / "quote-v2.txt"))
    rita.fill("#artifact-note", "2,750 with free delivery")
    rita.click("text=Add document")
    rita.wait_for_function(
        "() => document.querySelector('.messages')?.textContent.includes('quote v2')"
    )
    rita.click("button[value=RESUBMIT]")
    rita.wait_for_url(re.compile(r".*/(requests|inbox)/.*"))

    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    rob.click("text=Office chairs")
    rob.click("#documents .diff-form button")
    rob.wait_for_url("**/diff/**")
    assert any("2,750 EUR" in t for t in rob.locator("#diff .diff-add").all_inner_texts())
    assert any("3,100 EUR" in t for t in rob.locator("#diff .diff-del").all_inner_texts())
    rob.go_back()
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")

    v1, v2 = ArtifactVersion.objects.order_by("number")
    decision = Decision.objects.get(event="APPROVE")
    assert decision.artifact_versions == [{"name": "quote", "version": 2, "sha256": v2.sha256}]
    rita.goto(f"{live_server.url}/requests/{task.instance_id}/")
    history = rita.locator("#timeline").inner_text()
    assert v1.sha256 in history and v2.sha256 in history
    assert "approved (with quote v2)" in history


def test_a_question_for_the_requester(login, live_server, quote_flow, tmp_path):
    (tmp_path / "quote.txt").write_bytes(V1)
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/new/review/")
    rita.fill("input[name=title]", "Desk lamps")
    rita.fill("input[name=amount]", "90")
    rita.set_input_files("input[name=artifact_quote]", str(tmp_path / "quote.txt"))
    rita.click("text=Submit request")
    rita.wait_for_url(re.compile(r".*/requests/\d+/$"))
    request_url = rita.url

    rob = login("rob", TEST_PASSWORD)
    rob.goto(request_url)
    rob.fill("#comment-body", "Which **cost centre**, @rita?")
    rob.check("#comment-question")
    rob.click("#comment-form button")
    rob.wait_for_function("() => document.querySelector('#discussion strong')")

    rita.goto(f"{live_server.url}/inbox/")
    assert "Desk lamps" in rita.locator("#questions-for-you").inner_text()
    rita.goto(request_url)
    rita.click("#discussion details summary >> text=Reply")
    rita.fill("#discussion details textarea", "CC-42")
    rita.click("#discussion details button")
    rita.wait_for_function(
        "() => document.querySelector('#discussion').textContent.includes('question, answered')"
    )
    rita.goto(f"{live_server.url}/inbox/")
    assert rita.locator("#questions-for-you").count() == 0
