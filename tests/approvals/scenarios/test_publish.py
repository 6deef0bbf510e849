"""Publishing is refused while a scenario fails: in the service, the admin and the command;
scenarios are kept through import, export and new versions."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from approvals.machine import dump_document, load_document
from approvals.models import DefinitionStatus, WorkflowDefinition
from approvals.services.definitions import (
    definition_config,
    definition_import,
    definition_new_version,
    definition_publish,
)
from approvals.services.errors import InvalidInput
from tests.approvals.admin.test_definitions import draft_change
from tests.approvals.scenarios.helpers import APPROVED, RESUBMITTED, WRONG, flow_with
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

REFUSAL = (
    "Review (v1, draft) cannot be published: the scenario 'expects the wrong end' fails: "
    "expect.state: expected approved, got rejected"
)


@pytest.fixture(autouse=True)
def roles():
    GroupFactory(name="manager")
    GroupFactory(name="director")


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def draft(*scenarios) -> WorkflowDefinition:
    return definition_import(config=flow_with(*scenarios), actor=None, now=timezone.now())


def test_the_service_refuses_to_publish_while_a_scenario_fails():
    definition = draft(APPROVED, WRONG)
    with pytest.raises(InvalidInput) as refused:
        definition_publish(definition_id=definition.pk, actor=None, now=timezone.now())
    assert refused.value.message == REFUSAL
    assert refused.value.field_errors == {
        "scenarios": ["FAIL expects the wrong end: expect.state: expected approved, got rejected"]
    }
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.DRAFT


def test_passing_scenarios_publish():
    definition = draft(APPROVED, RESUBMITTED)
    published = definition_publish(definition_id=definition.pk, actor=None, now=timezone.now())
    assert published.status == DefinitionStatus.PUBLISHED


def test_import_workflow_publish_is_refused_and_writes_nothing(tmp_path):
    path = tmp_path / "review.yaml"
    path.write_text(dump_document(flow_with(APPROVED, WRONG), fmt="yaml"), encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("import_workflow", str(path), "--publish", stdout=StringIO())
    assert REFUSAL in str(refused.value)
    assert "FAIL expects the wrong end" in str(refused.value)
    assert not WorkflowDefinition.objects.filter(key="review").exists()


def test_the_admin_shows_the_failing_scenario_and_refuses_to_publish(staff_client):
    definition = draft(APPROVED, WRONG)
    url = reverse("admin:approvals_definition_publish", args=[definition.pk])
    asked = staff_client.get(url)
    assert asked.status_code == 200
    page = asked.content.decode()
    assert 'id="definition-problems"' in page
    assert "Scenario <em>expects the wrong end</em> fails: expect.state: expected approved, " in (
        page
    )
    assert 'id="confirm-publish"' not in page
    response = staff_client.post(url, {"post": "yes"}, follow=True)
    assert escape(REFUSAL) in response.content.decode()
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.DRAFT


def test_outsiders_cannot_reach_the_publish_page(client, outsider):
    definition = draft(APPROVED)
    url = reverse("admin:approvals_definition_publish", args=[definition.pk])
    client.force_login(outsider)
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(UserFactory(username="stan", is_staff=True))  # staff, no permission
    assert client.post(url, {"post": "yes"}).status_code == 403
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.DRAFT


def test_scenarios_survive_import_export_and_a_new_version():
    definition = definition_import(
        config=flow_with(APPROVED, RESUBMITTED), actor=None, publish=True, now=timezone.now()
    )
    config = definition_config(definition)
    assert [s["name"] for s in config["scenarios"]] == [
        "a manager approves",
        "sent back and resubmitted",
    ]
    assert "scenarios" not in config.get("settings", {})
    out = StringIO()
    call_command("export_workflow", "review", stdout=out)
    assert load_document(out.getvalue(), filename="x.yaml")["scenarios"] == config["scenarios"]
    # Importing the export again is the same published version.
    again = definition_import(
        config=load_document(out.getvalue(), filename="x.yaml"), actor=None, now=timezone.now()
    )
    assert again.pk == definition.pk
    v2 = definition_new_version(definition_id=definition.pk, actor=None)
    assert definition_config(v2)["scenarios"] == config["scenarios"]


def test_the_definition_page_lists_each_scenario_with_its_result(staff_client):
    definition = draft(APPROVED, WRONG)
    page = staff_client.get(
        reverse("admin:approvals_workflowdefinition_change", args=[definition.pk])
    ).content.decode()
    assert 'id="definition-scenarios"' in page
    assert "✔ a manager approves" in page
    assert "✘ expects the wrong end: expect.state: expected approved, got rejected" in page
    assert 'id="publish-link"' not in page
    passing = definition_import(config=flow_with(APPROVED), actor=None, now=timezone.now())
    page = staff_client.get(
        reverse("admin:approvals_workflowdefinition_change", args=[passing.pk])
    ).content.decode()
    assert "✔ a manager approves" in page and 'id="publish-link"' in page


def test_a_drafts_scenarios_are_edited_as_yaml_on_its_page(staff_client):
    url, data = draft_change(staff_client)
    text = dump_document({"scenarios": [APPROVED, WRONG]}, fmt="yaml")
    response = staff_client.post(url, {**data, "scenarios": text, "_continue": "1"}, follow=True)
    page = response.content.decode()
    assert "Scenario expects the wrong end fails: expect.state: expected approved, got " in page
    draft = WorkflowDefinition.objects.get(key="review", version=2)
    assert [s["name"] for s in definition_config(draft)["scenarios"]] == [
        "a manager approves",
        "expects the wrong end",
    ]
    form = staff_client.get(url).context["adminform"].form
    assert "scenarios" not in form.initial["settings"]
    assert load_document(form.initial["scenarios"], filename="x.yaml") == {
        "scenarios": [APPROVED, WRONG]
    }
    # Text that is not a list of scenarios is a form error; nothing is saved.
    bad = staff_client.post(url, {**data, "scenarios": "name: x"})
    assert bad.status_code == 200
    assert "Write the scenarios as in a file" in bad.content.decode()
    hidden = staff_client.post(url, {**data, "settings": '{"scenarios": []}'})
    assert "Scenarios go in the Scenarios field below" in hidden.content.decode()
    draft.refresh_from_db()
    assert len(draft.settings["scenarios"]) == 2


def test_a_published_definition_shows_its_scenarios_read_only(staff_client):
    definition = definition_import(
        config=flow_with(APPROVED), actor=None, publish=True, now=timezone.now()
    )
    response = staff_client.get(
        reverse("admin:approvals_workflowdefinition_change", args=[definition.pk])
    )
    page = response.content.decode()
    assert 'name="scenarios"' not in page
    assert "a manager approves" in page and "✔ a manager approves" in page
