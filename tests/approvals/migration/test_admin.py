"""The migration in the admin: outsiders refused, a dry run that writes nothing, then migrate."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from approvals.models import AuditEvent, WorkflowInstance
from tests.approvals.flows import publish, review_flow
from tests.approvals.migration.conftest import next_version, renamed_flow, start
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(rita):
    v1 = publish(review_flow())
    instances = start(rita, 2)
    v2 = next_version(renamed_flow())
    return v1, v2, instances


def _url(definition) -> str:
    return reverse("admin:approvals_definition_migrate", args=[definition.pk])


FORM = {"to_version": "2", "mapping": "review=manager_review\n", "only": ""}


def test_outsiders_are_refused(client, outsider, versions):
    v1, _, _ = versions
    client.force_login(outsider)
    response = client.post(_url(v1), {**FORM, "migrate": "1"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = UserFactory(username="stan", is_staff=True)  # staff, but no permissions
    client.force_login(staff)
    assert client.get(_url(v1)).status_code == 403
    # May edit definitions, but not change requests: still refused.
    staff.user_permissions.add(Permission.objects.get(codename="change_workflowdefinition"))
    client.force_login(UserFactory(username="stan"))
    assert client.post(_url(v1), {**FORM, "migrate": "1"}).status_code == 403
    assert not AuditEvent.objects.filter(event="instance.migrated").exists()


def test_a_dry_run_shows_the_plan_and_writes_nothing(staff_client, versions):
    v1, _, (first, _) = versions
    events = AuditEvent.objects.count()

    page = staff_client.post(_url(v1), {**FORM, "dry_run": "1"}).content.decode()

    assert "Dry run: nothing was changed" in page
    assert f"#{first.pk} r0: migrated from v1 to v2 (review → manager_review)" in page
    assert f"task #{first.tasks.get().pk} kept in manager_review" in page
    assert AuditEvent.objects.count() == events
    assert set(WorkflowInstance.objects.values_list("definition_id", flat=True)) == {v1.pk}


def test_a_refused_mapping_is_shown_and_changes_nothing(staff_client, versions):
    v1, _, _ = versions

    page = staff_client.post(
        _url(v1), {**FORM, "mapping": "review=nowhere", "migrate": "1"}
    ).content.decode()

    assert "v2 has no state &#x27;nowhere&#x27;" in page
    assert set(WorkflowInstance.objects.values_list("definition_id", flat=True)) == {v1.pk}


def test_bad_mapping_syntax_is_a_form_error(staff_client, versions):
    v1, _, _ = versions

    page = staff_client.post(_url(v1), {**FORM, "mapping": "review", "migrate": "1"}).content

    assert b"is not old_state=new_state" in page
    assert not AuditEvent.objects.filter(event="instance.migrated").exists()


def test_migrate_moves_the_requests(staff_client, admin_user, versions):
    v1, v2, instances = versions
    assert (
        b'id="migrate-link"'
        in staff_client.get(
            reverse("admin:approvals_workflowdefinition_change", args=[v1.pk])
        ).content
    )

    response = staff_client.post(_url(v1), {**FORM, "migrate": "1"}, follow=True)

    assert b"2 request(s) migrated from v1 to v2, 0 left as they are." in response.content
    for instance in instances:
        instance.refresh_from_db()
        assert (instance.definition, instance.state) == (v2, "manager_review")
        event = instance.audit_events.get(event="instance.migrated")
        assert (event.actor, event.channel) == (admin_user, "admin")
