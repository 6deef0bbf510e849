"""Four eyes across a request: who decided one step may not decide another it is segregated
from, in their own right or covering for someone; the inbox does not offer it them."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from accounts.models import OutOfOffice
from approvals.machine.validation import validate_config
from approvals.models import InstanceStatus, Task, WorkflowDefinition
from approvals.selectors import InboxFilters, inbox_tasks
from approvals.services.definitions import definition_config
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide, task_delegate, task_reassign
from tests.approvals.flows import NOW, publish
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def two_steps(**top: Any) -> dict[str, Any]:
    """manager_review → director_review → approved; changes go back to the manager."""
    return {
        "id": "spend",
        "title": "Spend",
        "initial": "manager_review",
        **top,
        "states": {
            "manager_review": {
                "meta": {"label": "Manager review", "task": {"roles": ["manager"]}},
                "on": {"APPROVE": "director_review", "REJECT": "rejected"},
            },
            "director_review": {
                "meta": {"label": "Director review", "task": {"roles": ["director"]}},
                "on": {"APPROVE": "approved", "REQUEST_CHANGES": "manager_review"},
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


@pytest.fixture
def both(db):
    """Dana holds both roles."""
    return UserFactory(
        username="dana",
        first_name="Dana",
        last_name="Both",
        groups=[GroupFactory(name="manager"), GroupFactory(name="director")],
    )


def start(requester, config):
    publish(config)
    return instance_start(definition_key=config["id"], context={}, actor=requester, now=NOW)


def live(instance) -> Task:
    return instance.tasks.get(status__in=["open", "claimed"])


def queue(user) -> list[Task]:
    return list(inbox_tasks(user, "queue", InboxFilters(), NOW))


def test_two_approval_steps_get_distinct_approvers_by_default(requester, both):
    definition = publish(two_steps())
    assert definition.segregation == "distinct_approvers"
    assert "segregation" not in definition_config(definition)  # the default is not written
    instance = instance_start(definition_key="spend", context={}, actor=requester, now=NOW)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    director_task = live(instance)
    assert director_task not in queue(both)
    with pytest.raises(NotAllowed) as refused:
        task_decide(task_id=director_task.pk, event="APPROVE", actor=both, now=NOW)
    assert refused.value.message == (
        "you decided “Manager review” (Approve) of this request; another person must decide "
        "this step (four eyes)"
    )
    director = UserFactory(username="dave", groups=[GroupFactory(name="director")])
    assert director_task in queue(director)
    assert task_decide(task_id=director_task.pk, event="APPROVE", actor=director, now=NOW).moved


def test_a_decision_covering_for_someone_counts_as_the_coverers_own(requester):
    """A director covering for a manager approves the manager step on the manager's behalf;
    the director step is then not theirs to decide."""
    manager = UserFactory(username="bob", groups=[GroupFactory(name="manager")])
    dave = UserFactory(username="dave", first_name="Dave", groups=[GroupFactory(name="director")])
    OutOfOffice.objects.create(
        user=manager, substitute=dave, starts_on=NOW.date(), ends_on=NOW.date() + timedelta(2)
    )
    instance = start(requester, two_steps())
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=dave, now=NOW)
    with pytest.raises(NotAllowed, match="four eyes"):
        task_decide(task_id=live(instance).pk, event="APPROVE", actor=dave, now=NOW)


def test_the_same_step_on_a_later_visit_is_the_same_deciders(requester, both):
    """The manager who approved reviews again after the director asked for changes."""
    director = UserFactory(username="dave", groups=[GroupFactory(name="director")])
    instance = start(requester, two_steps())
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    task_decide(
        task_id=live(instance).pk,
        event="REQUEST_CHANGES",
        comment="split it",
        actor=director,
        now=NOW,
    )
    assert live(instance) in queue(both)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    assert task_decide(task_id=live(instance).pk, event="APPROVE", actor=director, now=NOW).moved


def test_segregation_none_turns_it_off(requester, both):
    instance = start(requester, two_steps(segregation="none"))
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    result = task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    assert result.instance.status == InstanceStatus.COMPLETED
    definition = WorkflowDefinition.objects.get(key="spend")
    assert definition_config(definition)["segregation"] == "none"  # kept: not the default


def test_distinct_from_names_the_steps(requester, both):
    config = two_steps(segregation="none")
    config["states"]["director_review"]["meta"]["task"]["distinct_from"] = ["manager_review"]
    instance = start(requester, config)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    with pytest.raises(NotAllowed, match="“Manager review”"):
        task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)


def test_delegating_or_reassigning_to_an_earlier_decider_is_refused(requester, both, operator):
    director = UserFactory(username="dave", groups=[GroupFactory(name="director")])
    instance = start(requester, two_steps())
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    director_task = live(instance)
    with pytest.raises(InvalidInput, match="Dana Both decided “Manager review”"):
        task_delegate(task_id=director_task.pk, to_user_id=both.pk, actor=director, now=NOW)
    with pytest.raises(InvalidInput, match="four eyes"):
        task_reassign(task_id=director_task.pk, to_user_id=both.pk, actor=operator, now=NOW)
    # Handed on to someone else, the task keeps who may not decide it.
    other = UserFactory(username="dee", groups=[GroupFactory(name="director")])
    successor = task_delegate(
        task_id=director_task.pk, to_user_id=other.pk, actor=director, now=NOW
    )
    assert list(successor.excluded_users.all()) == [both]


def test_parallel_steps_exclude_each_others_deciders_as_they_decide(requester, both):
    config = {
        "id": "checks",
        "title": "Checks",
        "initial": "checks",
        "states": {
            "checks": {
                "type": "parallel",
                "states": {
                    "legal": {
                        "initial": "check",
                        "states": {
                            "check": {
                                "meta": {"task": {"roles": ["manager"]}},
                                "on": {"APPROVE": "done"},
                            },
                            "done": {"type": "final"},
                        },
                    },
                    "money": {
                        "initial": "check",
                        "states": {
                            "check": {
                                "meta": {"task": {"roles": ["director"]}},
                                "on": {"APPROVE": "done"},
                            },
                            "done": {"type": "final"},
                        },
                    },
                },
                "onDone": "approved",
            },
            "approved": {"type": "final"},
        },
    }
    instance = start(requester, config)
    legal = instance.tasks.get(state="checks.legal.check")
    money = instance.tasks.get(state="checks.money.check")
    assert {legal, money} <= set(queue(both))
    task_decide(task_id=legal.pk, event="APPROVE", actor=both, now=NOW)
    assert money not in queue(both)
    with pytest.raises(NotAllowed, match="four eyes"):
        task_decide(task_id=money.pk, event="APPROVE", actor=both, now=NOW)


def test_every_member_rule_leaves_out_an_earlier_decider(requester, both):
    config = two_steps()
    config["states"]["director_review"]["meta"]["task"]["rule"] = "everyone"
    UserFactory(username="dave", groups=[GroupFactory(name="director")])
    instance = start(requester, config)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    assignees = instance.tasks.filter(status="claimed").values_list("assignee__username", flat=True)
    assert list(assignees) == ["dave"]


def test_the_task_page_says_why_and_offers_no_decision(client: Client, requester, both):
    instance = start(requester, two_steps())
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=both, now=NOW)
    client.force_login(both)
    page = client.get(f"/tasks/{live(instance).pk}/").content.decode()
    assert "another person must decide this step" in page
    assert 'name="decision" value="APPROVE"' not in page
    assert client.post(
        f"/tasks/{live(instance).pk}/decide/", {"decision": "APPROVE"}
    ).status_code in (
        403,
        302,
    )
    assert live(instance).status == "open"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(segregation="strict"), "segregation: expected distinct_approvers or"),
        (
            lambda c: c["states"]["director_review"]["meta"]["task"].update(
                distinct_from=["manager_reveiw"]
            ),
            "*manager_reveiw* is not a step people decide",
        ),
        (
            lambda c: c["states"]["director_review"]["meta"]["task"].update(
                distinct_from=["director_review"]
            ),
            "cannot be distinct from itself",
        ),
        (
            lambda c: c["states"]["director_review"]["meta"]["task"].update(
                distinct_from="manager_review"
            ),
            "expected a list of step names",
        ),
    ],
)
def test_bad_four_eyes_settings_are_named(change, message):
    config = copy.deepcopy(two_steps())
    change(config)
    errors = validate_config(config)
    assert any(message in error for error in errors), errors
