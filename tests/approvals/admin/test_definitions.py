"""The definitions admin: import, validation, diagram, publish, export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.forms import MultipleChoiceField, MultiWidget
from django.urls import reverse
from django.utils import timezone

from approvals.models import DefinitionStatus, StateDefinition, WorkflowDefinition
from approvals.services.definitions import definition_config, definition_import
from tests.approvals.flows import publish, review_flow
from tests.factories import GroupFactory, UserFactory

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
    asked = staff_client.get(publish_url)  # the confirmation: nothing changes yet
    assert asked.status_code == 200 and b'id="confirm-publish"' in asked.content
    assert b'id="publish-no-warnings"' in asked.content
    staff_client.post(publish_url)  # a POST that is not the confirmation's asks again
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.DRAFT
    staff_client.post(publish_url, {"post": "yes"})
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
    assert (
        b"Step <em>Review</em>: the <em>Approve</em> arrow points to <em>dnoe</em>, which does "
        b"not exist; did you mean <em>done</em>? (states.review.on.APPROVE)"
    ) in response.content
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


def draft_change(staff_client, **task: Any) -> tuple[str, dict[str, Any]]:
    """A new draft of review_flow: its change page's URL and the data its form posts as is."""
    v1 = publish(review_flow(**task))
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
                if isinstance(field.widget, MultiWidget):
                    for n, part in enumerate(field.widget.decompress(value)):
                        data[f"{fs.prefix}-{i}-{name}_{n}"] = part
                    continue
                if isinstance(field, MultipleChoiceField):
                    data[f"{fs.prefix}-{i}-{name}"] = value or []
                    continue
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
            "entry": '"notify"',
            "exit": "[]",
            "invoke": "[1]",
            "meta": "[]",
            "task_roles": ["manager"],
            "task_rule": "quorum",
            "task_sla_0": "two",
            "task_sla_1": "days",
            "task_remind_0_0": "0",
            "task_remind_0_1": "hours",
            "task_remind_1_0": "P1M",
            "task_remind_1_1": "iso",
        }
    )
    form.fields["task_roles"].choices = [("manager", "manager")]
    assert not form.is_valid()
    assert form.errors["task_quorum"] == ["The quorum rule needs N, the number of approvals."]
    assert form.errors["task_sla"] == ["Expected a whole number of days, got 'two'."]
    assert form.errors["task_remind_0"] == [
        "Expected a whole number of hours of at least 1, got 0."
    ]
    assert "ambiguous" in form.errors["task_remind_1"][0]
    assert set(form.errors) >= {"invoke", "entry", "meta"}


RICH_TASK = {
    "rule": {"quorum": 2},
    "sla": "P1DT12H",
    "remind": ["PT4H", "P1D"],
    "escalate_to": ["director"],
    "forbid_requester": False,
    "label": "Check it",
}


def test_posting_the_editor_unchanged_keeps_every_task_as_it_was(staff_client):
    url, data = draft_change(staff_client, **RICH_TASK)
    draft = WorkflowDefinition.objects.get(key="review", version=2)
    before = definition_config(draft)
    response = staff_client.post(url, data)
    assert response.status_code == 302
    assert definition_config(draft) == before
    assert draft.states.get(path="review").task == {"roles": ["manager"], **RICH_TASK}


def test_the_everyone_rule_is_kept_as_it_was_written(staff_client):
    url, data = draft_change(staff_client, rule={"everyone": True})
    assert data[f"{row(data, 'review')}task_rule"] == "everyone"
    assert staff_client.post(url, data).status_code == 302
    task = StateDefinition.objects.get(definition__version=2, path="review").task
    assert task["rule"] == {"everyone": True}


def row(data: dict[str, Any], path: str) -> str:
    return next(k for k, v in data.items() if k.endswith("-path") and v == path)[: -len("path")]


def test_the_task_fields_write_the_task_in_the_format(staff_client):
    url, data = draft_change(staff_client)
    GroupFactory(name="director")
    review = row(data, "review")
    data.update(
        {
            f"{review}task_roles": ["manager", "director"],
            f"{review}task_rule": "all",
            f"{review}task_sla_0": "2",
            f"{review}task_sla_1": "days",
            f"{review}task_remind_0_0": "4",
            f"{review}task_remind_0_1": "hours",
            f"{review}task_escalate_0": "director",
            f"{review}task_forbid_requester": "",
        }
    )
    assert staff_client.post(url, data).status_code == 302
    task = StateDefinition.objects.get(definition__version=2, path="review").task
    assert task == {
        "roles": ["manager", "director"],
        "rule": "all",
        "sla": "P2D",
        "remind": ["PT4H"],
        "escalate_to": ["director"],
        "forbid_requester": False,
    }
    data[f"{review}task_rule"] = "everyone"
    assert staff_client.post(url, data).status_code == 302
    task = StateDefinition.objects.get(definition__version=2, path="review").task
    assert task["rule"] == "everyone"
    changes = row(data, "changes")
    data.update({f"{review}task_roles": [], f"{changes}task_requester": "on"})
    assert staff_client.post(url, data).status_code == 302
    assert StateDefinition.objects.get(definition__version=2, path="review").task is None


def test_a_bad_duration_is_a_form_error_and_changes_nothing(staff_client):
    url, data = draft_change(staff_client, sla="P2D")
    review = row(data, "review")
    data.update({f"{review}task_sla_0": "2.5", f"{review}task_sla_1": "hours"})
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert b"Expected a whole number of hours, got &#x27;2.5&#x27;." in response.content
    assert StateDefinition.objects.get(definition__version=2, path="review").task["sla"] == "P2D"


def test_the_change_page_offers_the_roles_the_steps_and_the_live_check(staff_client):
    url, _ = draft_change(staff_client)
    page = staff_client.get(url).content.decode()
    assert '<option value="manager" selected>manager</option>' in page
    assert '<option value="withdrawn">withdrawn</option>' in page  # a target to choose
    assert 'class="guard-input"' in page and "data-check-url=" in page
    assert "js/definition_editor.js" in page


def check_guard(client: Any, definition: WorkflowDefinition, guard: str) -> Any:
    url = reverse("admin:approvals_definition_check_guard", args=[definition.pk])
    return client.get(url, {"guard": guard})


@pytest.mark.parametrize(
    ("guard", "ok", "message"),
    [
        ("amount < 1000", True, "✔ The engine can read this guard."),
        ("revisions > 2 && event.urgent", True, "✔ The engine can read this guard."),
        ("", True, "No guard: the arrow is always taken."),
        ("title < 1000", False, "cannot compare string and int with '<'"),
        ("amount <", False, "Syntax error"),
        (
            "amout < 1000",
            False,
            "Amout is not a field of the request (did you mean amount?); "
            "the fields are: amount, revisions, title.",
        ),
        (
            "[1,2,3,4,5,6,7,8,9].all(a, [1,2].all(b, [1].all(c, [1].all(d, d > a))))",
            False,
            "Macros nested more than 3 deep",
        ),
    ],
)
def test_the_live_guard_check_answers_in_words(staff_client, guard, ok, message):
    definition = publish(review_flow())
    answer = check_guard(staff_client, definition, guard).json()
    assert answer["ok"] is ok
    assert message in answer["message"]


def test_the_live_guard_check_refuses_outsiders(client, outsider):
    definition = publish(review_flow())
    response = check_guard(client, definition, "amount < 1")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(outsider)
    response = check_guard(client, definition, "amount < 1")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(UserFactory(username="stan", is_staff=True))  # staff, no permission
    assert check_guard(client, definition, "amount < 1").status_code == 403
    url = reverse("admin:approvals_definition_check_guard", args=[definition.pk])
    client.force_login(UserFactory(username="sue", is_staff=True, is_superuser=True))
    assert client.post(url, {"guard": "x"}).status_code == 405
    assert (
        client.get(reverse("admin:approvals_definition_check_guard", args=[9999])).status_code
        == 404
    )


def test_publishing_warns_of_decisions_a_guard_can_block(staff_client):
    config = review_flow()
    config["states"]["review"]["meta"]["label"] = "Manager approval"
    config["states"]["review"]["on"]["APPROVE"] = {"target": "approved", "guard": "amount < 1000"}
    publish({**config, "id": "other"})  # creates the roles
    definition = definition_import(config=config, actor=None, now=timezone.now())
    url = reverse("admin:approvals_definition_publish", args=[definition.pk])
    page = staff_client.get(url).content.decode()
    assert (
        "In <em>Manager approval</em>, <em>Approve</em> can be blocked by its guard "
        "`amount &lt; 1000` and no other arrow takes APPROVE then"
    ) in page
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.DRAFT


def test_publishing_a_broken_draft_shows_its_problems_and_no_publish_button(staff_client):
    draft_change(staff_client)
    draft = WorkflowDefinition.objects.get(key="review", version=2)
    draft.transitions.filter(event="APPROVE").update(target="nowhere")
    page = staff_client.get(reverse("admin:approvals_definition_publish", args=[draft.pk]))
    assert b"<em>Approve</em> arrow points to <em>nowhere</em>" in page.content
    assert b'id="confirm-publish"' not in page.content
    response = staff_client.post(
        reverse("admin:approvals_definition_publish", args=[draft.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == DefinitionStatus.DRAFT


def test_the_publish_confirmation_refuses_outsiders(client, outsider):
    GroupFactory(name="manager")
    definition = definition_import(config=review_flow(), actor=None, now=timezone.now())
    url = reverse("admin:approvals_definition_publish", args=[definition.pk])
    for user in (None, outsider, UserFactory(username="stan", is_staff=True)):
        if user is not None:
            client.force_login(user)
        asked, posted = client.get(url), client.post(url, {"post": "yes"})
        assert asked.status_code in (302, 403) and posted.status_code in (302, 403)
        if asked.status_code == 302:
            assert "/admin/login/" in asked["Location"]
    definition.refresh_from_db()
    assert definition.status == DefinitionStatus.DRAFT


def test_no_box_is_pre_filled_with_null(staff_client):
    url, _ = draft_change(staff_client)
    page = staff_client.get(url).content.decode()
    assert ">null</textarea>" not in page and ">\nnull</textarea>" not in page


def test_a_published_step_shows_its_task_in_words(staff_client):
    v1 = publish(review_flow(sla="P2D", remind=["PT4H"]))
    page = staff_client.get(reverse("admin:approvals_workflowdefinition_change", args=[v1.pk]))
    assert b"Decided by manager; rule any; SLA P2D; reminders PT4H." in page.content
    assert b"No task: nobody decides here." in page.content


def test_only_a_draft_is_offered_for_publishing(staff_client):
    v1 = publish(review_flow())
    response = staff_client.get(reverse("admin:approvals_definition_publish", args=[v1.pk]))
    assert response.status_code == 302
    page = staff_client.get(response["Location"]).content.decode()
    assert "is not a draft; only drafts can be published" in page
