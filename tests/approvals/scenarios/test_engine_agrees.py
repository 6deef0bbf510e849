"""A scenario's run in memory ends where the engine ends with the same decisions, stored: the
two share the statechart walker, and this checks the parts around it (task rules, quorum,
the requester's task) agree too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from approvals.machine import canonical_config, load_document
from approvals.machine.scenarios import first_difference, run_scenario
from approvals.machine.statechart import Statechart
from approvals.models import LIVE_TASK_STATUSES, Task, WorkflowInstance
from approvals.services.definitions import definition_import
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.factories import GroupFactory, UserFactory

WORKFLOWS = Path(__file__).resolve().parents[3] / "approvals" / "workflows"


def comparable(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenarios made only of decisions that need no signature and end before an
    automated action (which the worker, not the decision, runs)."""
    signed = {
        path
        for path, state in config["states"].items()
        if ((state.get("meta") or {}).get("task") or {}).get("signature")
    }
    chart = Statechart(config)
    roles_signing = {role for path in signed for role in chart.state(path).task.roles}
    found = []
    for scenario in config["scenarios"]:
        steps = scenario.get("steps") or []
        if scenario.get("outputs") or scenario.get("failures"):
            continue
        if any("decide" not in step or step.get("as_role") in roles_signing for step in steps):
            continue
        if scenario["expect"].get("status") == "completed":
            continue
        found.append(scenario)
    return found


def view_of(instance: WorkflowInstance) -> dict[str, Any]:
    tasks = Task.objects.filter(instance=instance, status__in=LIVE_TASK_STATUSES).order_by("pk")
    return {
        "state": instance.state,
        "leaves": [instance.state],
        "status": instance.status,
        "context": instance.context,
        "tasks": [
            {
                "state": t.state,
                "roles": sorted(t.candidate_groups.values_list("name", flat=True)),
                "level": t.escalation_level,
                "requester": t.for_requester,
            }
            for t in tasks
        ],
    }


def decide_stored(instance: WorkflowInstance, step: dict[str, Any], requester: Any) -> None:
    role = step["as_role"]
    live = Task.objects.filter(instance=instance, status__in=LIVE_TASK_STATUSES).order_by("pk")
    if role == "requester":
        task, actor = live.get(for_requester=True), requester
    else:
        task = live.filter(candidate_groups__name=role).first()
        # Someone new each time: four eyes keeps a decider from another step.
        actor = UserFactory(groups=[GroupFactory(name=role)])
    assert task is not None, f"no live task for {role}"
    task_decide(
        task_id=task.pk,
        event=step["decide"],
        actor=actor,
        now=timezone.now(),
        comment="as the scenario says",
        data=step.get("data"),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("example", ["purchase_order.yaml", "access_request.yaml"])
def test_the_engine_ends_where_the_scenarios_say(example):
    config = canonical_config(
        load_document((WORKFLOWS / example).read_text(encoding="utf-8"), filename=example)
    )
    for role in ("manager", "director", "finance", "security", "operator"):
        GroupFactory(name=role)
    definition_import(config=config, actor=None, publish=True, now=timezone.now())
    scenarios = comparable(config)
    assert len(scenarios) >= 3
    chart = Statechart(config)
    for scenario in scenarios:
        assert run_scenario(chart, scenario).passed
        requester = UserFactory()
        instance = instance_start(
            definition_key=config["id"],
            context=scenario["context"],
            actor=requester,
            now=timezone.now(),
        )
        for step in scenario["steps"]:
            decide_stored(instance, step, requester)
            instance.refresh_from_db()
        assert first_difference(scenario["expect"], view_of(instance)) is None, scenario["name"]
