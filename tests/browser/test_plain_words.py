"""What people read, in a real browser: pages and messages in plain words, not the engine's."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import OutOfOffice
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, director_flow, multi_flow, publish, review_flow
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def purchase_flow() -> dict:
    """Manager, then a director from 10,000 up (said in a description); changes requested
    time out after 30 days; a notice that may fail."""
    flow = director_flow(sla="P2D")
    flow["states"]["review"]["on"]["APPROVE"][1]["target"] = "notice"
    flow["states"]["director"]["on"]["APPROVE"] = "notice"
    flow["states"]["changes"]["after"] = {"P30D": "withdrawn"}
    flow["states"]["notice"] = {
        "invoke": {
            "src": "notify",
            "input": {"message": "Approved."},
            "onDone": "approved",
            "onError": "approved",
        }
    }
    return flow


@pytest.fixture
def people_and_flow(db):
    publish(purchase_flow())
    manager, director = GroupFactory(name="manager"), GroupFactory(name="director")
    rita = UserFactory(username="rita", first_name="Rita", last_name="Requester")
    people = {
        "rita": rita,
        "rob": UserFactory(
            username="rob", first_name="Rob", last_name="Reviewer", groups=[manager]
        ),
        "dora": UserFactory(
            username="dora", first_name="Dora", last_name="Director", groups=[director]
        ),
    }
    people["instance"] = instance_start(
        definition_key="review",
        context={"title": "Laptop batch", "amount": 12000},
        actor=rita,
        now=NOW,
    )
    return people


def test_the_embedded_default_shows_friendly_error_pages(settings, login, live_server, requester):
    settings.DEBUG = True  # as `launch.py run` with nothing set
    settings.TECHNICAL_ERROR_PAGES = False
    page = login("rita", TEST_PASSWORD)
    response = page.goto(f"{live_server.url}/no-such-page/")
    assert response.status == 404
    text = page.locator("main").inner_text()
    assert "Not found" in text and "Back to your inbox" in text
    assert "URLconf" not in page.content() and "api/v1/" not in page.content()
    page.click("text=Back to your inbox")
    page.wait_for_url("**/inbox/**")


TEXT_SIZES = """() => {
    const svg = document.querySelector('#diagram svg');
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')].map(
        t => parseFloat(getComputedStyle(t).fontSize) * scale);
}"""


def test_the_diagram_reads_in_words_at_the_pages_width(login, live_server, people_and_flow):
    instance = people_and_flow["instance"]
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/requests/{instance.pk}/")
    sizes = rob.evaluate(TEXT_SIZES)
    assert sizes and round(min(sizes), 1) >= 11, sizes
    diagram = " ".join(
        rob.evaluate(
            "() => [...document.querySelectorAll('#diagram svg text')].map(t => t.textContent)"
        )
    )
    assert "Approve (the amount is 10,000 or more)" in diagram
    assert "if it fails" in diagram and "after 30 days" in diagram
    assert "Manager · 2 days" in diagram
    for engine_word in ("invoke", "P30D", "P2D", "APPROVE", "[amount"):
        assert engine_word not in diagram, engine_word
    with rob.context.expect_page() as opened:
        rob.click("#diagram-full")
    full = opened.value
    full.wait_for_load_state()
    assert full.url.endswith(f"/requests/{instance.pk}/diagram/")
    box = full.locator("#diagram svg").bounding_box()
    view_box_width = full.evaluate(
        "() => document.querySelector('#diagram svg').viewBox.baseVal.width"
    )
    assert box["width"] >= view_box_width - 1  # its natural size, not shrunk


def test_the_history_says_what_happened_in_words(login, live_server, people_and_flow):
    instance = people_and_flow["instance"]
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    rob.click("text=Laptop batch")
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/{instance.pk}/")
    history = rita.inner_text("#timeline")
    assert "Rita Requester submitted the request" in history
    assert "A task for a manager was opened." in history
    assert "Rob Reviewer approved" in history
    assert "Sent to Director approval because the amount is 10,000 or more." in history
    assert "Rita Requester opened a task" not in history
    for engine_word in ("→", "(always)", "invoke", "APPROVE", "decided:"):
        assert engine_word not in history, engine_word


def test_a_decision_no_guard_allows_is_not_offered(login, live_server, db):
    flow = review_flow()
    flow["states"]["review"]["on"]["APPROVE"] = [
        {"target": "approved", "guard": "amount < 5000", "description": "the amount is under 5,000"}
    ]
    publish(flow)
    manager = GroupFactory(name="manager")
    rita = UserFactory(username="rita", first_name="Rita", last_name="Requester")
    UserFactory(username="rob", first_name="Rob", last_name="Reviewer", groups=[manager])
    instance = instance_start(
        definition_key="review", context={"title": "Server", "amount": 8000}, actor=rita, now=NOW
    )
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/tasks/{instance.tasks.get().pk}/")
    card = rob.inner_text("#decision")
    assert rob.locator("button[value=APPROVE]").count() == 0
    assert "Approve is not possible now: only when the amount is under 5,000." in card
    assert "guard" not in card and "APPROVE" not in card
    rob.fill("textarea[name=comment]", "Too expensive.")
    rob.click("button[value=REJECT]")
    rob.wait_for_url("**/inbox/**")


def test_notifications_say_what_happened(login, live_server, people_and_flow):
    rita = people_and_flow["rita"]
    for title in ("Desk", "Chair"):
        instance_start(
            definition_key="review", context={"title": title, "amount": 90}, actor=rita, now=NOW
        )
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/notifications/")
    group = rob.locator(".notification-group")
    assert group.locator("summary").inner_text() == "3 new tasks in Review"
    group.locator("summary").click()
    assert "New task: Manager approval for “Laptop batch”" in group.inner_text()

    rob.goto(f"{live_server.url}/tasks/{people_and_flow['instance'].tasks.get().pk}/")
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")
    rob.goto(f"{live_server.url}/notifications/?show=unread")
    unread = rob.inner_text("#notification-card")
    assert "2 new tasks in Review" in unread and "Laptop batch" not in unread

    page = login("rita", TEST_PASSWORD)
    page.goto(f"{live_server.url}/notifications/")
    assert (
        "Rob Reviewer approved the Manager approval step of “Laptop batch”; "
        "it now waits on a director" in page.inner_text("#notification-list")
    )
    assert "your request was approved" not in page.inner_text("#notification-list")


def test_the_cover_sees_covering_for(login, live_server, people_and_flow):
    carl = UserFactory(username="carl", first_name="Carl", last_name="Cover")
    today = timezone.localdate()
    OutOfOffice.objects.create(
        user=people_and_flow["rob"], substitute=carl, starts_on=today, ends_on=today
    )
    page = login("carl", TEST_PASSWORD)
    page.goto(f"{live_server.url}/inbox/?tab=queue")
    row = page.locator(".inbox-row", has_text="Laptop batch")
    assert "covering for Rob Reviewer" in row.inner_text()
    row.locator("a", has_text="Laptop batch").click()
    page.wait_for_url("**/tasks/*/")
    assert "You are covering for Rob Reviewer" in page.inner_text("#decision")


def test_a_resubmission_in_words(login, live_server, people_and_flow):
    instance = people_and_flow["instance"]
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="Please find a cheaper quote.",
        actor=people_and_flow["rob"],
        now=NOW,
    )
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/tasks/{instance.tasks.get(status='claimed').pk}/")
    asked = rita.locator("#changes-asked")
    assert "Rob Reviewer asked for changes" in asked.inner_text()
    assert "Please find a cheaper quote." in asked.inner_text()
    above = rita.evaluate(
        "() => document.getElementById('changes-asked').compareDocumentPosition("
        "document.querySelector('#decide-form input[name=amount]')) & 4"
    )
    assert above  # the comment comes before the fields to edit
    rita.fill("#decide-form input[name=amount]", "9500")
    rita.click("button[value=RESUBMIT]")
    rita.wait_for_url(f"**/requests/{instance.pk}/")

    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/tasks/{instance.tasks.get(status='open').pk}/")
    changes = rob.inner_text("#resubmitted")
    assert "Amount" in changes and "12,000" in changes and "9,500" in changes
    assert "Laptop batch" not in changes


def test_values_and_dates_read_the_same_everywhere(login, live_server, people_and_flow):
    rita = people_and_flow["rita"]
    rita.time_zone = "Asia/Tokyo"
    rita.save()
    page = login("rita", TEST_PASSWORD)
    page.goto(f"{live_server.url}/requests/{people_and_flow['instance'].pk}/")
    assert "12,000" in page.inner_text("[data-field=amount]")
    assert "2 Nov 2026, 18:00 JST" in page.inner_text("#status-line")
    assert "2 Nov 2026, 18:00 JST" in page.inner_text("#timeline")
    page.goto(f"{live_server.url}/accounts/profile/")
    page.select_option("#time-zone select", "Europe/Paris")
    page.click("#time-zone button[type=submit]")
    page.wait_for_url("**/accounts/profile/")
    page.goto(f"{live_server.url}/requests/{people_and_flow['instance'].pk}/")
    assert "2 Nov 2026, 10:00 CET" in page.inner_text("#timeline")


def test_enum_values_read_by_their_titles(login, live_server, db):
    flow = review_flow()
    flow["id"], flow["title"] = "buy", "Buy"
    flow["form"]["properties"]["currency"] = {
        "type": "string",
        "title": "Currency",
        "enum": ["EUR", "USD"],
        "x-enumNames": ["Euro", "US dollar"],
    }
    publish(flow)
    manager = GroupFactory(name="manager")
    UserFactory(username="rita", first_name="Rita", last_name="Requester")
    UserFactory(username="rob", first_name="Rob", last_name="Reviewer", groups=[manager])
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/new/buy/")
    rita.fill("input[name=title]", "Monitor")
    rita.fill("input[name=amount]", "1250")
    rita.select_option("select[name=currency]", label="US dollar")
    rita.click("text=Submit request")
    rita.wait_for_url("**/requests/*/")
    assert rita.inner_text("[data-field=currency]") == "US dollar"
    assert rita.inner_text("[data-field=amount]") == "1,250 USD"


def test_quorum_progress_is_shown(login, live_server, db):
    security = GroupFactory(name="security")
    rita = UserFactory(username="rita", first_name="Rita", last_name="Requester")
    UserFactory(username="sam", first_name="Sam", last_name="Silva", groups=[security])
    UserFactory(username="tina", first_name="Tina", last_name="Tran", groups=[security])
    publish(multi_flow({"quorum": 2}, ["security"]))
    instance = instance_start(definition_key="multi", context={}, actor=rita, now=NOW)
    first, second = instance.tasks.order_by("pk")
    sam = login("sam", TEST_PASSWORD)
    sam.goto(f"{live_server.url}/tasks/{first.pk}/")
    assert sam.inner_text("#progress") == "No approvals yet; 2 needed."
    sam.click("button[value=APPROVE]")
    sam.wait_for_url("**/inbox/**")
    tina = login("tina", TEST_PASSWORD)
    tina.goto(f"{live_server.url}/tasks/{second.pk}/")
    assert tina.inner_text("#progress") == "Sam Silva approved; 1 of 2."
    page = login("rita", TEST_PASSWORD)
    page.goto(f"{live_server.url}/requests/{instance.pk}/")
    assert "Approval: Sam Silva approved; 1 of 2." in page.inner_text("#waiting")
    assert "Sam Silva approved; 1 of 2" in page.inner_text("#timeline")
