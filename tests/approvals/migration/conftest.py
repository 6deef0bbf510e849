"""Two versions of one small flow and requests running on the first."""

from __future__ import annotations

import copy
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import WorkflowDefinition, WorkflowInstance
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow
from tests.factories import UserFactory


def renamed_flow(**task: Any) -> dict[str, Any]:
    """review_flow whose review step is called manager_review, with a director step after it
    from 10,000 up."""
    flow = review_flow(**task)
    states = flow["states"]
    states["manager_review"] = states.pop("review")
    flow["initial"] = "manager_review"
    states["manager_review"]["on"]["APPROVE"] = [
        {"target": "director", "guard": "amount >= 10000"},
        {"target": "approved"},
    ]
    states["changes"]["on"]["RESUBMIT"]["target"] = "manager_review"
    states["director"] = {
        "meta": {"task": {"roles": ["director"]}},
        "on": {"APPROVE": "approved", "REJECT": "rejected"},
    }
    return flow


def next_version(config: dict[str, Any]) -> WorkflowDefinition:
    """Publish `config` as the next version of its key (the current one is retired)."""
    return publish(copy.deepcopy(config))


def start(requester, n: int = 1, amount: int = 500) -> list[WorkflowInstance]:
    return [
        instance_start(
            definition_key="review",
            context={"title": f"r{i}", "amount": amount},
            actor=requester,
            now=NOW,
        )
        for i in range(n)
    ]


def migrate(*args: str) -> tuple[str, str]:
    """Run migrate_instances; its (stdout, stderr). Raises CommandError on a non-zero exit."""
    out, err = StringIO(), StringIO()
    call_command("migrate_instances", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    """Run migrate_instances expecting a non-zero exit: its error and what it listed."""
    err = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("migrate_instances", *args, stdout=StringIO(), stderr=err)
    return f"{caught.value}\n{err.getvalue()}"


@pytest.fixture
def rita(db: None):
    return UserFactory(username="rita", first_name="Rita", last_name="Requester")


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client
