"""An electronic signature in Chromium: the director's task page asks for her password, a
wrong one is refused with the attempts left, the right one signs, and the history shows the
signature with its meaning."""

from __future__ import annotations

import pytest
from django.utils import timezone

from approvals.models import Decision
from approvals.services.instances import instance_start
from tests.approvals.flows import publish
from tests.approvals.services.test_signatures import MEANING, signed_flow
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_director_signs_her_approval(login, live_server, screenshots) -> None:
    publish(signed_flow())
    UserFactory(
        username="vera",
        first_name="Vera",
        last_name="Director",
        groups=[GroupFactory(name="director")],
    )
    rita = UserFactory(username="rita", first_name="Rita", last_name="Requester")
    instance = instance_start(
        definition_key="capex",
        context={},
        title="New press line",
        actor=rita,
        now=timezone.now(),
    )
    task = instance.tasks.get()
    page = login("vera", TEST_PASSWORD)
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    card = page.locator("#signature")
    assert MEANING in card.inner_text()
    page.fill("#id_comment", "Within the approved budget.")
    page.fill("#id_password", "not my password")
    page.click("button[value=APPROVE]")
    assert "2 more attempts" in page.locator("#decision").inner_text()
    assert page.input_value("#id_password") == ""  # never sent back
    assert page.input_value("#id_comment") == "Within the approved budget."
    page.fill("#id_password", TEST_PASSWORD)
    page.locator("#decision").screenshot(path=str(screenshots / "signature-1280.png"))
    page.click("button[value=APPROVE]")
    page.wait_for_url("**/inbox/**")
    assert Decision.objects.get(task=task).signature["meaning"] == MEANING
    page.goto(f"{live_server.url}/requests/{instance.pk}/")
    history = page.locator("#timeline").inner_text()
    assert "Signed by Vera Director on" in history and MEANING in history
    assert "tried to sign and gave a wrong password or code" in history
