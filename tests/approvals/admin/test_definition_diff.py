"""Comparing two versions of a definition: what the list says and what the diagrams mark,
in the admin's Changes page and before publishing; the outsider refused."""

from __future__ import annotations

import copy

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.machine.diagram import render_svg
from approvals.machine.diff import ADDED, CHANGED, REMOVED, definition_diff, mark_diagram
from approvals.machine.validation import canonical_config
from approvals.models import WorkflowDefinition
from approvals.services.definitions import definition_import
from tests.approvals.flows import publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def with_director(flow: dict) -> dict:
    """From Monday, purchases above 5,000 need the director: a step added above a threshold."""
    flow = copy.deepcopy(flow)
    flow["states"]["review"]["on"]["APPROVE"] = [
        {"target": "director", "guard": "amount > 5000"},
        {"target": "approved"},
    ]
    flow["states"]["review"]["meta"]["task"]["sla"] = "P3D"
    flow["states"]["director"] = {
        "meta": {"task": {"roles": ["director"]}},
        "on": {"APPROVE": "approved", "REJECT": "rejected"},
    }
    return flow


def test_the_diff_names_each_change_in_words():
    old = canonical_config(review_flow())
    new = canonical_config(with_director(review_flow()))
    new["retention"] = "P7Y"
    del new["form"]["properties"]["revisions"]
    new["form"]["properties"]["vendor"] = {"type": "string"}
    diff = definition_diff(old, new)
    texts = [change.text for change in diff.changes]
    assert "Definition retention changed: (none) → P7Y" in texts
    assert "Form field vendor added" in texts and "Form field revisions removed" in texts
    assert "State director added" in texts
    assert any(t.startswith("State review changed: task sla (none) → P3D") for t in texts)
    assert "Transition review → director added: APPROVE if amount > 5000" in texts
    assert any(t.startswith("Transition director → approved added") for t in texts)
    assert diff.states == {"director": ADDED, "review": CHANGED}
    assert diff.edges[("review", "director")] == ADDED
    assert ("review", "approved") not in diff.edges  # still APPROVE, now its fallback

    back = definition_diff(new, old)
    assert back.states["director"] == REMOVED
    assert back.edges[("review", "director")] == REMOVED
    assert not definition_diff(old, canonical_config(review_flow()))


def test_the_diagrams_colour_what_changed():
    new = canonical_config(with_director(review_flow()))
    diff = definition_diff(canonical_config(review_flow()), new)
    svg = mark_diagram(render_svg(new), diff.states, diff.edges)
    assert 'data-state="director"' in svg
    assert "df-added" in svg and "df-changed" in svg
    assert "(added in this version)" in svg


@pytest.fixture
def versions(db):
    GroupFactory(name="director")
    first = publish(review_flow())
    draft = definition_import(
        config=with_director(review_flow()), actor=None, publish=False, now=timezone.now()
    )
    return first, draft


def test_the_changes_page_and_the_publish_page_show_the_difference(staff_client, versions):
    first, draft = versions
    page = staff_client.get(reverse("admin:approvals_definition_diff", args=[draft.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "From version 1 to version 2: 5 changes" in html
    assert "state <code>director</code>" in html
    assert 'id="diff-before"' in html and "df-added" in html
    assert (
        staff_client.get(
            reverse("admin:approvals_definition_diff", args=[first.pk]) + "?against=2"
        ).status_code
        == 200
    )
    missing = staff_client.get(
        reverse("admin:approvals_definition_diff", args=[draft.pk]) + "?against=9"
    )
    assert "No version of that number" in missing.content.decode()
    confirm = staff_client.get(reverse("admin:approvals_definition_publish", args=[draft.pk]))
    assert 'id="publish-changes"' in confirm.content.decode()
    assert "See the changes on the diagrams" in confirm.content.decode()


def test_a_lone_version_has_nothing_to_compare(staff_client):
    only = publish(review_flow())
    page = staff_client.get(reverse("admin:approvals_definition_diff", args=[only.pk]))
    assert "the only version of this workflow" in page.content.decode()


def test_the_changes_page_refuses_the_outsider(client, outsider, versions):
    _, draft = versions
    url = reverse("admin:approvals_definition_diff", args=[draft.pk])
    client.force_login(outsider)
    assert client.get(url).status_code == 302
    client.force_login(UserFactory(username="stan", is_staff=True))
    assert client.get(url).status_code == 403
    assert WorkflowDefinition.objects.count() == 2
