"""The definitions admin: import, validation, diagram, publish, export."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from approvals.models import DefinitionStatus, WorkflowDefinition
from tests.approvals.flows import publish, review_flow
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GOOD = """
id: tiny
title: Tiny
initial: review
states:
  review:
    meta: {task: {roles: [manager]}}
    on: {APPROVE: done}
  done: {type: final}
"""


def test_outsiders_are_refused(client, outsider):
    client.force_login(outsider)
    for url in (
        reverse("admin:approvals_workflowdefinition_changelist"),
        reverse("admin:approvals_definition_import"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = UserFactory(username="stan", is_staff=True)  # staff, but no permissions
    client.force_login(staff)
    assert client.get(reverse("admin:approvals_definition_import")).status_code == 403


def test_import_then_publish_then_export(staff_client, reviewer):
    response = staff_client.post(reverse("admin:approvals_definition_import"), {"text": GOOD})
    definition = WorkflowDefinition.objects.get(key="tiny")
    assert response.status_code == 302 and definition.status == DefinitionStatus.DRAFT

    page = staff_client.get(
        reverse("admin:approvals_workflowdefinition_change", args=[definition.pk])
    )
    assert b'id="definition-valid"' in page.content
    assert b"<svg" in page.content

    publish_url = reverse("admin:approvals_definition_publish", args=[definition.pk])
    assert staff_client.get(publish_url).status_code == 405  # no GET changes state
    staff_client.post(publish_url)
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.PUBLISHED

    exported = staff_client.get(
        reverse("admin:approvals_definition_export", args=[definition.pk]) + "?format=yaml"
    )
    assert exported["Content-Disposition"] == 'attachment; filename="tiny-v1.yaml"'
    assert b"id: tiny" in exported.content


def test_bad_import_shows_the_problems_and_creates_nothing(staff_client):
    response = staff_client.post(
        reverse("admin:approvals_definition_import"),
        {"text": GOOD.replace("APPROVE: done", "APPROVE: dnoe")},
    )
    assert response.status_code == 200
    assert b"unknown target" in response.content and b"dnoe" in response.content
    assert not WorkflowDefinition.objects.exists()


@pytest.mark.parametrize("depth", [100_000, 200])
def test_import_of_a_deeply_nested_definition_shows_an_error_not_a_500(staff_client, depth):
    text = '{"id": "deep", "title": "Deep", "meta": ' + "[" * depth + "]" * depth + "}"
    response = staff_client.post(reverse("admin:approvals_definition_import"), {"text": text})
    assert response.status_code == 200
    assert b"nested too deeply" in response.content or b"levels deep" in response.content
    assert not WorkflowDefinition.objects.exists()


@pytest.mark.parametrize(
    ("escaped", "message"),
    [
        ("\\u0000", b"Text may not contain NUL characters."),
        ("\\ud800", b"Text may not contain surrogate characters"),
    ],
)
def test_import_of_text_the_database_cannot_store_is_an_error_not_a_500(
    staff_client, reviewer, escaped, message
):
    text = GOOD.replace("title: Tiny", f'title: "Tiny {escaped}"')
    response = staff_client.post(reverse("admin:approvals_definition_import"), {"text": text})
    assert response.status_code == 200
    assert b"title: " + message in response.content
    assert not WorkflowDefinition.objects.exists()


def test_published_definition_is_read_only_and_new_version_makes_a_draft(staff_client):
    v1 = publish(review_flow())
    page = staff_client.get(reverse("admin:approvals_workflowdefinition_change", args=[v1.pk]))
    assert b'name="title"' not in page.content  # read-only
    staff_client.post(reverse("admin:approvals_definition_new_version", args=[v1.pk]))
    draft = WorkflowDefinition.objects.get(key="review", version=2)
    assert draft.status == DefinitionStatus.DRAFT
    assert draft.states.count() == v1.states.count()


def draft_change(staff_client) -> tuple[str, dict[str, str]]:
    """A new draft of review_flow: its change page's URL and the data its form posts as is."""
    v1 = publish(review_flow())
    staff_client.post(reverse("admin:approvals_definition_new_version", args=[v1.pk]))
    draft = WorkflowDefinition.objects.get(key="review", version=2)
    url = reverse("admin:approvals_workflowdefinition_change", args=[draft.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if isinstance(v, str)}
    data.update({"title": "Review", "initial": "review", "form_schema": "{}", "settings": "{}"})
    for formset in staff_client.get(url).context["inline_admin_formsets"]:
        fs = formset.formset
        data.update(
            {
                f"{fs.prefix}-TOTAL_FORMS": str(len(fs.forms)),
                f"{fs.prefix}-INITIAL_FORMS": str(len(fs.forms)),
                f"{fs.prefix}-MIN_NUM_FORMS": "0",
                f"{fs.prefix}-MAX_NUM_FORMS": "1000",
            }
        )
        for i, f in enumerate(fs.forms):
            for name, field in f.fields.items():
                value = f.initial.get(name, field.initial)
                if hasattr(value, "pk"):
                    value = value.pk
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                data[f"{fs.prefix}-{i}-{name}"] = "" if value is None else value
    return url, data


def test_draft_with_a_broken_guard_is_refused_at_save(staff_client):
    url, data = draft_change(staff_client)
    data["transitions-0-guard"] = "amount <"
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert b"syntax error" in response.content.lower()


def test_draft_with_a_guard_over_the_budget_is_refused_at_save(staff_client):
    url, data = draft_change(staff_client)
    digits = "[0,1,2,3,4,5,6,7,8,9]"
    data["transitions-0-guard"] = (
        f"{digits}.all(a, {digits}.all(b, {digits}.all(c, {digits}.all(d, d > a))))"
    )
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert b"macros nested more than 3 deep" in response.content


@pytest.mark.parametrize(
    ("field", "depth", "message"),
    [
        ("states-0-meta", 100_000, b"nested too deeply"),
        ("states-0-meta", 200, b"nested more than 64 levels deep"),
        ("form_schema", 100_000, b"nested too deeply"),
        ("transitions-0-assign", 200, b"nested more than 64 levels deep"),
    ],
)
def test_deeply_nested_json_in_a_draft_is_a_form_error_not_a_500(
    staff_client, field, depth, message
):
    url, data = draft_change(staff_client)
    data[field] = '{"a": ' + "[" * depth + "]" * depth + "}"
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert message in response.content
    assert WorkflowDefinition.objects.get(key="review", version=2).title == "Review"


@pytest.mark.parametrize(
    ("escaped", "message"),
    [
        ("\\u0000", b"a.b: Text may not contain NUL characters."),
        ("\\ud800", b"a.b: Text may not contain surrogate characters"),
    ],
)
def test_text_the_database_cannot_store_in_a_draft_is_a_form_error(staff_client, escaped, message):
    url, data = draft_change(staff_client)
    data["states-0-meta"] = f'{{"a": {{"b": "x{escaped}"}}}}'
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert message in response.content


def test_unknown_definition_actions_are_404(staff_client):
    for name in ("publish", "new_version", "retire"):
        url = reverse(f"admin:approvals_definition_{name}", args=[424242])
        assert staff_client.post(url).status_code == 404


def test_adding_a_key_that_has_a_draft_is_a_form_error(staff_client):
    v1 = publish(review_flow())
    staff_client.post(reverse("admin:approvals_definition_new_version", args=[v1.pk]))
    response = staff_client.post(
        reverse("admin:approvals_workflowdefinition_add"),
        {
            "key": "review",
            "title": "Again",
            "initial": "review",
            "form_schema": "{}",
            "settings": "{}",
            **{
                f"{p}-{k}": v
                for p in ("states", "transitions")
                for k, v in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))
            },
        },
    )
    assert response.status_code == 200
    assert b"already exists: edit it instead" in response.content
    assert WorkflowDefinition.objects.filter(key="review").count() == 2


def test_published_definitions_cannot_be_deleted(staff_client):
    v1 = publish(review_flow())
    url = reverse("admin:approvals_workflowdefinition_delete", args=[v1.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert WorkflowDefinition.objects.filter(pk=v1.pk).exists()


def test_a_state_row_of_the_wrong_shape_is_a_form_error():
    from approvals.admin.definitions import StateForm

    form = StateForm(
        data={
            "position": 0,
            "path": "review",
            "type": "atomic",
            "task": "[1]",
            "entry": '"notify"',
            "exit": "[]",
            "invoke": "null",
            "meta": "[]",
        }
    )
    assert not form.is_valid()
    assert set(form.errors) >= {"task", "entry", "meta"}
