"""Who approves, from the org chart: a step with `assignee: manager_of_requester` (or
`manager_of: <field>`, `skip_levels`) goes to that manager, says why, and falls back to its
roles where the chart has no one who may decide it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import OutOfOffice
from approvals.history import timeline
from approvals.machine.validation import validate_config
from approvals.models import TaskStatus
from approvals.services.errors import NotAllowed
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def flow(**task: Any) -> dict[str, Any]:
    task = task or {"assignee": "manager_of_requester"}
    return {
        "id": "trip",
        "title": "Trip",
        "initial": "manager_review",
        "form": {
            "type": "object",
            "properties": {"traveller": {"type": "string", "title": "Traveller"}},
        },
        "states": {
            "manager_review": {
                "meta": {
                    "label": "Manager review",
                    "task": {
                        "roles": ["manager"],
                        **(task or {"assignee": "manager_of_requester"}),
                    },
                },
                "on": {"APPROVE": "approved", "REJECT": "rejected"},
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


@pytest.fixture
def chart(db) -> dict[str, Any]:
    """Alice reports to Mark, Mark to Dora; Rob is a manager too, but not Alice's."""
    managers = GroupFactory(name="manager")
    dora = UserFactory(username="dora", first_name="Dora", last_name="Director")
    mark = UserFactory(
        username="mark", first_name="Mark", last_name="Manager", manager=dora, groups=[managers]
    )
    alice = UserFactory(username="alice", first_name="Alice", last_name="Anders", manager=mark)
    rob = UserFactory(username="rob", first_name="Rob", last_name="Reviewer", groups=[managers])
    return {"alice": alice, "mark": mark, "dora": dora, "rob": rob}


def start(requester, config, **context):
    publish(config)
    instance = instance_start(definition_key="trip", context=context, actor=requester, now=NOW)
    return instance, instance.tasks.get()


def test_the_requesters_manager_gets_the_task_and_is_told_why(chart) -> None:
    instance, task = start(chart["alice"], flow())
    assert task.assignee == chart["mark"]
    assert task.status == TaskStatus.CLAIMED
    assert task.assigned_as == "manager of Alice Anders"
    with pytest.raises(NotAllowed, match="assigned to Mark Manager"):
        task_decide(task_id=task.pk, event="APPROVE", actor=chart["rob"], now=NOW)
    task_decide(task_id=task.pk, event="APPROVE", actor=chart["mark"], now=NOW)
    instance.refresh_from_db()
    assert instance.status == "completed"
    story = [e.text for e in timeline(instance)]
    assert "A task for Mark Manager was opened: manager of Alice Anders" in story


def test_skip_levels_goes_further_up(chart) -> None:
    _, task = start(chart["alice"], flow(assignee="manager_of_requester", skip_levels=1))
    assert task.assignee == chart["dora"]
    assert task.assigned_as == "manager of Mark Manager, 2 levels above Alice Anders"


def test_manager_of_a_field_names_the_person(chart, requester) -> None:
    _, task = start(requester, flow(manager_of="traveller"), traveller="alice")
    assert task.assignee == chart["mark"]
    assert task.assigned_as == "manager of Alice Anders"


@pytest.mark.parametrize(
    "change",
    ["no manager", "inactive", "unknown person", "above the top"],
)
def test_without_someone_who_may_decide_the_roles_take_it(chart, requester, change) -> None:
    config, context, who = flow(), {}, chart["alice"]
    if change == "no manager":
        who = requester
    elif change == "inactive":
        chart["mark"].is_active = False
        chart["mark"].save()
    elif change == "unknown person":
        config, context, who = flow(manager_of="traveller"), {"traveller": "nobody"}, requester
    else:
        config = flow(assignee="manager_of_requester", skip_levels=2)
    _, task = start(who, config, **context)
    assert task.assignee is None and task.assigned_as == ""
    assert task.status == TaskStatus.OPEN
    assert [g.name for g in task.candidate_groups.all()] == ["manager"]


def test_a_manager_who_is_the_requester_is_not_asked(chart) -> None:
    # Mark asks for the trip of Alice's manager, himself: the roles decide, not Mark.
    _, task = start(chart["mark"], flow(manager_of="traveller"), traveller="alice")
    assert task.assignee is None


def test_an_absent_manager_is_covered_by_their_substitute(chart) -> None:
    OutOfOffice.objects.create(
        user=chart["mark"],
        substitute=chart["rob"],
        starts_on=NOW.date() - timedelta(days=1),
        ends_on=NOW.date() + timedelta(days=3),
    )
    instance, task = start(chart["alice"], flow())
    assert task.assignee == chart["rob"] and task.on_behalf_of == chart["mark"]
    client = Client()
    client.force_login(chart["rob"])
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "This task went to Mark Manager as manager of Alice Anders." in page
    story = [e.text for e in timeline(instance)]
    assert (
        "A task for Rob Reviewer, covering for Mark Manager, was opened: manager of Alice Anders"
        in story
    )


def test_the_task_page_and_api_say_why(chart) -> None:
    _, task = start(chart["alice"], flow())
    client = Client()
    client.force_login(chart["rob"])
    assert "Mark Manager has this task (manager of Alice Anders)." in (
        client.get(f"/tasks/{task.pk}/").content.decode()
    )
    client.force_login(chart["mark"])
    assert "This task went to you as manager of Alice Anders." in (
        client.get(f"/tasks/{task.pk}/").content.decode()
    )
    assert client.get(f"/api/v1/tasks/{task.pk}/").json()["assigned_as"] == (
        "manager of Alice Anders"
    )


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"assignee": "ceo"}, "expected manager_of_requester"),
        ({"assignee": "manager_of_requester", "manager_of": "traveller"}, "not both"),
        ({"manager_of": "budget"}, "which the form does not have"),
        ({"assignee": "manager_of_requester", "skip_levels": -1}, "from 0 to 5"),
        ({"assignee": "manager_of_requester", "skip_levels": True}, "from 0 to 5"),
        ({"skip_levels": 1}, "goes with assignee"),
        ({"assignee": "manager_of_requester", "rule": "all"}, "has rule any"),
    ],
)
def test_bad_org_chart_keys_are_named(task, message) -> None:
    errors = validate_config(flow(**task))
    assert any(message in str(e) for e in errors), errors


def test_a_task_that_goes_to_a_manager_needs_roles_to_fall_back_on() -> None:
    config = flow()
    del config["states"]["manager_review"]["meta"]["task"]["roles"]
    errors = validate_config(config)
    assert any("needs roles" in str(e) for e in errors), errors


def test_no_circles_in_the_org_chart(chart) -> None:
    dora = chart["dora"]
    dora.manager = chart["alice"]
    with pytest.raises(ValidationError, match="reports to this person"):
        dora.full_clean()
    dora.manager = dora
    with pytest.raises(ValidationError, match="their own manager"):
        dora.full_clean()
