"""The insights in a real browser: the overview, the heat map with its legend and a click on a
step, a CSV download, and the replay slider on a request; all under the strict CSP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import publish, review_flow
from tests.browser.test_phones_and_accessibility import axe_problems
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history(db):
    publish(review_flow(sla="PT2H"))
    rita = UserFactory(username="rita", first_name="Rita", last_name="Requester")
    rob = UserFactory(username="rob", groups=[GroupFactory(name="manager")])
    owner = UserFactory(username="olive", first_name="Olive", last_name="Owner")
    owner.user_permissions.add(Permission.objects.get(codename="view_insights"))
    start = timezone.now() - timedelta(hours=5)
    done = instance_start(
        definition_key="review", context={"title": "Desk", "amount": 5}, actor=rita, now=start
    )
    task = done.tasks.get()
    task_claim(task_id=task.pk, actor=rob, now=start + timedelta(hours=1))
    task_decide(task_id=task.pk, event="APPROVE", actor=rob, now=start + timedelta(hours=3))
    instance_start(
        definition_key="review", context={"title": "Chair", "amount": 5}, actor=rita, now=start
    )
    return done


def test_overview_heat_map_csv_and_replay(login, live_server, history, screenshots):
    page = login("olive", TEST_PASSWORD)
    page.click("nav >> text=Insights")
    page.wait_for_url("**/insights/")
    assert page.locator("#overview-figures").is_visible()
    assert page.locator(".chart-card svg").count() >= 2
    assert axe_problems(page) == []

    page.click(".insights-workflows >> text=review")
    page.wait_for_url("**/insights/review/")
    heat = page.locator("#heatmap svg")
    assert heat.is_visible()
    assert "median time here 3h" in heat.inner_html()
    legend = page.locator("#heat-legend")
    assert legend.is_visible() and "3h" in legend.inner_text()
    # The step's colour is the legend's, and not the diagram's plain fill.
    page.screenshot(path=str(screenshots / "insights-workflow.png"), full_page=True)
    fill = page.eval_on_selector(
        "#heatmap .hm-link[data-state=review] .sd-box", "e => getComputedStyle(e).fill"
    )
    assert fill not in ("rgb(255, 255, 255)", "")

    with page.expect_download() as caught:
        page.click("#csv-steps")
    csv_text = Path(caught.value.path()).read_text(encoding="utf-8")
    assert csv_text.splitlines()[0].startswith("state,visits,tasks,wait_p50_s")
    assert csv_text.splitlines()[1].startswith("review,2,2,3600")

    page.click("#heatmap .hm-link[data-state=review]")
    page.wait_for_url("**/insights/review/waiting/?state=review")
    assert "Chair" in page.locator("#waiting").inner_text()
    assert "Desk" not in page.locator("#waiting").inner_text()


def test_replay_slider(login, live_server, history, screenshots):
    page = login("rita", TEST_PASSWORD)
    page.goto(f"{live_server.url}/requests/{history.pk}/")
    page.click("#replay-link")
    page.wait_for_url("**/replay/?seq=1")
    assert "No task was open." in page.locator("#replay-tasks").inner_text()
    # Move the slider to event 3 (the claim): the page shows rob holding the task.
    page.eval_on_selector(
        "#replay-seq",
        "e => { e.value = 3; e.dispatchEvent(new Event('input')); "
        "e.dispatchEvent(new Event('change')); }",
    )
    page.wait_for_url("**/replay/?seq=3")
    assert "rob" in page.locator("#replay-tasks").inner_text()
    assert "review" in page.locator("#replay-states").inner_text()
    assert page.locator("#replay-diagram .sd-active").count() >= 1
    page.screenshot(path=str(screenshots / "replay.png"), full_page=True)
    page.click("#replay-points >> text=/^5\\./")
    page.wait_for_url("**/replay/?seq=5")
    assert "approved" in page.locator("#replay-states").inner_text()
    assert axe_problems(page) == []
