"""Triage in a real browser: my requests paged and filtered, titles and references, key fields
as columns, filters that take what is on screen, and coming back to where one was."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from accounts.demo import ensure_demo_users
from accounts.models import User
from approvals.demo import ensure_demo_workflows
from approvals.models import WorkflowInstance
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import publish, review_flow
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def start(people, title: str, key: str = "review", business_key: str = "", **context):
    return instance_start(
        definition_key=key,
        context={"title": title, "amount": 100, **context},
        business_key=business_key,
        actor=people["rita"],
        now=timezone.now(),
    )


def row_titles(page) -> list[str]:
    return page.locator("#requests-table td.title a").all_inner_texts()


def test_my_requests_pages_searches_and_filters_by_status(login, live_server, people):
    for n in range(30):
        start(people, f"Cable {n:02}")
    answer = start(people, "Docking station", business_key="PO-4711")
    task_decide(
        task_id=answer.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="Which model?",
        actor=people["rob"],
        now=timezone.now(),
    )
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/")
    assert len(row_titles(rita)) == 25
    rita.click("text=Next page →")
    rita.wait_for_url(re.compile(r".*/requests/\?page=2$"))
    assert row_titles(rita) == [f"Cable {n:02}" for n in range(5, -1, -1)]

    rita.goto(f"{live_server.url}/requests/")
    rita.fill("#request-filters input[name=q]", "PO-4711")
    rita.wait_for_function(
        "() => document.querySelectorAll('#requests-table td.title a').length === 1"
    )
    assert row_titles(rita) == ["Docking station"]
    assert "PO-4711" in rita.inner_text("#requests-table")
    assert "q=PO-4711" in rita.url

    rita.fill("#request-filters input[name=q]", "")
    rita.select_option("#request-filters select[name=status]", label="Needs my answer")
    rita.wait_for_function(
        "() => document.querySelectorAll('#requests-table td.title a').length === 1"
    )
    assert row_titles(rita) == ["Docking station"]
    rita.select_option("#request-filters select[name=status]", label="Withdrawn")
    rita.wait_for_function(
        "() => document.querySelector('#requests-table').textContent.includes('None of your')"
    )


@pytest.fixture
def demo(db):
    ensure_demo_users()
    ensure_demo_workflows()
    for user in User.objects.all():
        user.set_password(TEST_PASSWORD)  # tests run with DEBUG off: demo users get none
        user.save()


def test_demo_requests_have_distinct_titles_and_references_are_unique(login, live_server, demo):
    sam = login("sam", TEST_PASSWORD)
    sam.goto(f"{live_server.url}/inbox/?tab=queue&workflow=access-request")
    titles = sam.locator("#inbox-table td.title a").all_inner_texts()
    assert sorted(titles) == [
        "AWS · Administrator · Bob Baker",
        "GitHub · Read and write · Alice Anders",
        "GitHub · Read only · Carol Chen",
    ]
    assert "Access request" in sam.inner_text("#inbox-filters")

    alice = login("alice", TEST_PASSWORD)
    alice.goto(f"{live_server.url}/requests/new/")
    alice.click("text=Access request")
    alice.select_option("select[name=system]", "vpn")
    alice.fill("[name=reason]", "Working from the train on Fridays.")
    alice.fill("input[name=until]", "2027-05-31")
    alice.fill("input[name=request-business_key]", "PO-2026-0101")
    alice.click("text=Submit request")
    # A purchase order holds that reference, not an access request: this one is accepted.
    alice.wait_for_url(re.compile(r".*/requests/\d+/$"))
    assert alice.inner_text("h1") == "VPN · Read only · Alice Anders PO-2026-0101"

    alice.goto(f"{live_server.url}/requests/new/purchase-order/")
    alice.fill("[name=title]", "Second desk order")
    alice.fill("input[name=amount]", "300")
    alice.fill("[name=justification]", "The same desks again.")
    alice.fill("input[name=request-business_key]", "PO-2026-0101")
    alice.click("text=Submit request")
    assert (
        "Another request of this workflow already has the reference 'PO-2026-0101'."
        in alice.inner_text("#request-form")
    )
    assert not WorkflowInstance.objects.filter(title="Second desk order").exists()


def test_one_workflow_s_key_fields_are_columns_and_sort(login, live_server, people):
    flow = review_flow()
    flow.update(id="purchase", title="Purchase", inbox_columns=["amount", "vendor"])
    flow["form"]["properties"]["vendor"] = {"type": "string", "title": "Vendor"}
    flow["form"]["properties"]["amount"]["title"] = "Total amount"
    publish(flow)
    for title, amount, vendor in (("Desks", 4200, "Deskly"), ("Cable", 12, "Cablo")):
        instance_start(
            definition_key="purchase",
            context={"title": title, "amount": amount, "vendor": vendor},
            actor=people["rita"],
            now=timezone.now(),
        )
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue&sort=age")
    assert rob.locator("th.key-column").count() == 0
    assert "Total amount: 4,200" in rob.inner_text("#inbox-table")
    rob.select_option("#inbox-filters select[name=workflow]", "purchase")
    rob.wait_for_function("() => document.querySelectorAll('th.key-column').length === 2")
    assert rob.locator("th.key-column").all_inner_texts() == ["Total amount", "Vendor"]
    assert rob.locator("td[data-column=amount]").all_inner_texts() == ["4,200", "12"]
    # The sort choices follow the workflow: its columns are offered too.
    assert "Total amount ↓" in rob.locator("#filter-sort option").all_inner_texts()
    rob.click("th[data-column=amount] a")
    rob.wait_for_url(re.compile(r".*sort=col%3Aamount.*|.*sort=col:amount.*"))
    assert rob.locator("td[data-column=amount]").all_inner_texts() == ["12", "4,200"]
    rob.click("th[data-column=amount] a")
    rob.wait_for_url(re.compile(r".*sort=-col%3Aamount.*|.*sort=-col:amount.*"))
    assert rob.locator("td[data-column=amount]").all_inner_texts() == ["4,200", "12"]
    assert rob.locator("#filter-sort select").input_value() == "-col:amount"


def test_filters_and_people_pickers_take_what_is_on_screen(login, live_server, people):
    flow = review_flow()
    flow.update(id="routed", title="Routed")
    flow["states"]["review"]["meta"]["label"] = "Manager review"
    publish(flow)
    rita_task = start(people, "Laptop").tasks.get()
    other = UserFactory(username="carol", first_name="Carol", last_name="Chen")
    instance_start(
        definition_key="routed",
        context={"title": "Printer", "amount": 90},
        actor=other,
        now=timezone.now(),
    )
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    step = "#inbox-filters select[name=state]"
    assert rob.locator(f"{step} option").all_inner_texts() == [
        "All",
        "Review / Manager review",
        "Changes",
    ]
    rob.select_option("#inbox-filters select[name=workflow]", "routed")
    rob.wait_for_function(
        "() => [...document.querySelectorAll('#filter-step option')]"
        ".some((o) => o.textContent === 'Manager review')"
    )
    rob.select_option(step, label="Manager review")
    rob.wait_for_function("() => document.querySelectorAll('tr.inbox-row').length === 1")
    assert rob.locator("tr.inbox-row a").first.inner_text() == "Printer"

    # The requester box suggests people by name and filters by the one chosen.
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    box = rob.locator("#inbox-filters input[name=requester]")
    box.press_sequentially("Rit", delay=30)
    rob.wait_for_function(
        "() => document.querySelectorAll('#requester-people option').length === 1"
    )
    assert rob.locator("#requester-people option").get_attribute("value") == "rita"
    # A full name, typed and sent as it is (as without JS), filters too.
    box.fill("Carol Chen")
    box.press("Enter")
    rob.wait_for_function("() => document.querySelectorAll('tr.inbox-row').length === 1")
    assert rob.locator("tr.inbox-row a").first.inner_text() == "Printer"

    # Delegate to a person typed by first name: Mia, the only one.
    rob.goto(f"{live_server.url}/tasks/{rita_task.pk}/")
    rob.fill("input[name=to]", "Mia")
    rob.click("#delegate-form button[type=submit]")
    assert "Delegated to Mia Manager" in rob.locator(".messages").inner_text()

    # Cover while away: the box on the profile suggests people as well, and takes a full name.
    rob.goto(f"{live_server.url}/accounts/profile/")
    cover = rob.locator("input[name=substitute]")
    cover.press_sequentially("Car", delay=30)
    rob.wait_for_function(
        "() => document.querySelectorAll('#id_substitute-people option').length === 1"
    )
    cover.fill("Carol Chen")
    rob.fill("input[name=starts_on]", "2099-01-05")
    rob.fill("input[name=ends_on]", "2099-01-09")
    rob.click("#absence-form button[type=submit]")
    assert "covered by Carol Chen" in rob.inner_text("#out-of-office")


def test_back_to_the_same_inbox_after_deciding_and_approve_and_open_next(
    login, live_server, people
):
    for n in range(28):
        start(people, f"Request {n:02}")
    rob = login("rob", TEST_PASSWORD)
    # Nothing is assigned to rob: the inbox opens on his roles' queue, where the work is.
    assert rob.locator("[data-tab=queue][aria-current=page]").count() == 1
    assert rob.locator("tr.inbox-row").count() == 25
    rob.select_option("#inbox-filters select[name=sort]", "age")
    rob.wait_for_url(re.compile(r".*sort=age.*"))
    rob.click("text=Next page →")
    rob.wait_for_url(re.compile(r".*page=2.*"))
    inbox = rob.url
    assert rob.locator("tr.inbox-row a").all_inner_texts() == [
        "Request 25",
        "Request 26",
        "Request 27",
    ]
    rob.click("text=Request 25")
    rob.click("button[value=APPROVE]")
    rob.wait_for_url(inbox)
    assert "Decided: approve" in rob.inner_text(".messages")
    assert rob.locator("[data-tab=queue][aria-current=page]").count() == 1
    assert rob.locator("tr.inbox-row a").all_inner_texts() == ["Request 26", "Request 27"]

    rob.click("text=Request 26")
    rob.click("#approve-next")
    # The row that came after it in that inbox.
    rob.wait_for_url(re.compile(r".*/tasks/\d+/$"))
    assert rob.locator("h1").inner_text() == "Request 27"
    assert "Decided: approve" in rob.inner_text(".messages")
