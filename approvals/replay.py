"""A request's history replayed: the request as it was just after audit event `seq`,
read from the trail alone. Nothing is re-run: no guard, no assign, no action. The definition is
consulted only for its shape (which states are regions of a parallel state and where a region
starts), which the engine does not write into the trail because it never varies.

How each event moves the picture (the engine's own order, approvals/services/engine.py):

- `instance.started`: the initial state, the context as submitted;
- `transition`: leaving a state closes its open tasks (the engine cancels them in the same
  transaction, without an event of their own), entering a parallel state opens each region at
  its initial leaf; `assigned` values enter the context;
- `task.created` / `claimed` / `unclaimed` / `decided` / `delegated` / `reassigned` /
  `escalated` and an operator's `action.retried|skipped|cancelled`: the open tasks and who holds
  them; a decision's `changed` fields (the requester's edits) enter the context;
- `action.completed`: the step's output enters the context under the state's name;
- `instance.completed` / `cancelled` / `withdrawn`: nothing is open any more.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from approvals.machine.statechart import Statechart
from approvals.models import AuditEvent, WorkflowInstance
from approvals.services.definitions import statechart_for

ENDS = ("instance.completed", "instance.cancelled", "instance.withdrawn")
TASK_CLOSES = ("task.decided", "action.retried", "action.skipped", "action.cancelled")
REPLACES = ("task.delegated", "task.reassigned", "task.escalated")


class NoSuchPoint(ValueError):
    pass


@dataclass
class OpenTask:
    id: int
    state: str
    assignee: str | None
    roles: list[str]


@dataclass
class Snapshot:
    seq: int
    at: datetime
    event: str
    status: str
    states: list[str]
    open_tasks: list[OpenTask]
    context: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "states": self.states,
            "open_tasks": [
                {"id": t.id, "state": t.state, "assignee": t.assignee, "roles": t.roles}
                for t in self.open_tasks
            ],
            "context": self.context,
        }


@dataclass
class _Picture:
    chart: Statechart
    usernames: dict[int, str]
    top: str = ""
    branches: dict[str, str] = field(default_factory=dict)
    tasks: dict[int, OpenTask] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    status: str = "active"

    def enter_top(self, path: str) -> None:
        self.top = path
        self.branches = {}
        state = self.chart.states.get(path)
        if state is not None and state.is_parallel:
            for region in self.chart.regions(path):
                self.branches[region] = self.chart.region_initial_leaf(region)

    def close_tasks_in(self, path: str) -> None:
        prefix = path + "."
        for task_id in [
            t.id for t in self.tasks.values() if t.state == path or t.state.startswith(prefix)
        ]:
            del self.tasks[task_id]

    def states(self) -> list[str]:
        return [*self.branches.values(), self.top] if self.branches else [self.top]

    def apply(self, event: AuditEvent) -> None:
        data = event.data or {}
        kind = event.event
        if kind == "instance.started":
            self.context = copy.deepcopy(data.get("context") or {})
            self.enter_top(event.to_state)
        elif kind == "transition":
            for name, value in (data.get("assigned") or {}).items():
                self.context[name] = copy.deepcopy(value)
            if event.from_state == event.to_state:
                return
            source = self.chart.states.get(event.from_state)
            if source is not None and source.parent is not None:
                self.close_tasks_in(event.from_state)
                self.branches[source.parent] = event.to_state
            else:
                self.close_tasks_in(event.from_state)
                self.enter_top(event.to_state)
        elif kind == "task.created" and event.task_id is not None:
            assignee = data.get("assignee")
            self.tasks[event.task_id] = OpenTask(
                event.task_id,
                event.to_state,
                self.usernames.get(assignee) if isinstance(assignee, int) else None,
                list(data.get("roles") or []),
            )
        elif kind == "task.claimed" and event.task_id in self.tasks:
            self.tasks[event.task_id].assignee = event.actor_name or None
        elif kind == "task.unclaimed" and event.task_id in self.tasks:
            self.tasks[event.task_id].assignee = None
        elif kind in TASK_CLOSES and event.task_id is not None:
            for name, change in (data.get("changed") or {}).items():
                if isinstance(change, list) and len(change) == 2:
                    self.context[name] = copy.deepcopy(change[1])
            self.tasks.pop(event.task_id, None)
        elif kind in REPLACES and event.task_id is not None:
            before = self.tasks.pop(data.get("from_task"), None)
            roles = data.get("roles") if kind == "task.escalated" else None
            self.tasks[event.task_id] = OpenTask(
                event.task_id,
                event.to_state,
                None if kind == "task.escalated" else data.get("to"),
                list(roles if roles is not None else (before.roles if before else [])),
            )
        elif kind == "action.completed":
            state = self.chart.states.get(event.to_state)
            if state is not None:
                self.context[state.name] = copy.deepcopy(data.get("output"))
        elif kind == "instance.migrated":
            # Moved to another version: its states as the event names them, its tasks kept
            # (in their new states) or closed.
            self.top = event.to_state
            self.branches = dict(data.get("branches") or {})
            for task_id in data.get("tasks_closed") or []:
                self.tasks.pop(task_id, None)
            for task_id, state in data.get("tasks_kept") or []:
                if task_id in self.tasks:
                    self.tasks[task_id].state = state
            self.context.update(copy.deepcopy(data.get("defaults") or {}))
        elif kind in ENDS:
            self.tasks = {}
            self.status = data.get("outcome") or kind.split(".")[1]


def points(instance: WorkflowInstance) -> list[AuditEvent]:
    """The trail's events, oldest first: the points in time one may replay to."""
    return list(instance.audit_events.order_by("seq"))


def snapshot_at(instance: WorkflowInstance, seq: int) -> Snapshot:
    """The request just after its audit event `seq` (1 is the start)."""
    if not 1 <= seq <= instance.audit_seq:
        raise NoSuchPoint(f"seq must be between 1 and {instance.audit_seq}")
    events = list(instance.audit_events.filter(seq__lte=seq).order_by("seq"))
    ids = {
        e.data.get("assignee")
        for e in events
        if e.event == "task.created" and isinstance(e.data.get("assignee"), int)
    }
    usernames = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    picture = _Picture(statechart_for(instance.definition), usernames)
    for event in events:
        picture.apply(event)
    last = events[-1]
    return Snapshot(
        seq=last.seq,
        at=last.at,
        event=last.event,
        status=picture.status,
        states=picture.states(),
        open_tasks=sorted(picture.tasks.values(), key=lambda t: t.id),
        context=picture.context,
    )
