"""A validated definition compiled for the engine: states by path, transitions with compiled
guards, task specs with parsed durations. Pure Python; built once per published version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from approvals.machine.calendar import BusinessCalendar, parse_calendar
from approvals.machine.durations import parse_duration
from approvals.machine.expressions import (
    Expression,
    ExpressionError,
    compile_expression,
    evaluate_guard,
)

APPROVE = "APPROVE"
OUTCOMES = ("completed", "rejected", "cancelled")


@dataclass(frozen=True)
class Transition:
    source: str
    trigger: str  # on | always | after | onDone | invoke.onDone | invoke.onError
    event: str
    delay: str
    target: str | None  # absolute path; None stays in the source state
    guard: Expression | None
    assign: tuple[tuple[str, Expression], ...]
    position: int

    @property
    def label(self) -> str:
        return self.event or (f"after {self.delay}" if self.delay else self.trigger)


@dataclass(frozen=True)
class TaskSpec:
    roles: tuple[str, ...]
    requester: bool
    rule: str  # any | all | quorum
    quorum: int
    sla: timedelta | None
    remind: tuple[timedelta, ...]
    escalate_to: tuple[str, ...]
    forbid_requester: bool
    label: str

    @property
    def approvals_needed(self) -> int:
        if self.rule == "all":
            return len(self.roles)
        if self.rule == "quorum":
            return self.quorum
        return 1


@dataclass(frozen=True)
class Invoke:
    src: str
    input: Mapping[str, Any]
    max_attempts: int
    backoff: str
    delay: timedelta


@dataclass
class State:
    path: str
    name: str
    parent: str | None
    type: str
    description: str = ""
    initial: str | None = None  # absolute path of the initial child (compound)
    children: list[str] = field(default_factory=list)
    entry: tuple[str, ...] = ()
    exit: tuple[str, ...] = ()
    invoke: Invoke | None = None
    task: TaskSpec | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    on: dict[str, list[Transition]] = field(default_factory=dict)
    always: list[Transition] = field(default_factory=list)
    after: dict[str, list[Transition]] = field(default_factory=dict)
    on_done: list[Transition] = field(default_factory=list)
    invoke_done: list[Transition] = field(default_factory=list)
    invoke_error: list[Transition] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.type == "final"

    @property
    def is_parallel(self) -> bool:
        return self.type == "parallel"

    @property
    def outcome(self) -> str:
        """How an instance ending here ends: meta.outcome, completed by default."""
        return str(self.meta.get("outcome", "completed"))

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or self.name.replace("_", " ").capitalize())


class GuardError(Exception):
    """A guard or assign expression failed at run time."""


class Statechart:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.key: str = config["id"]
        self.title: str = config["title"]
        self.form: Mapping[str, Any] = config.get("form") or {"type": "object"}
        self.settings: Mapping[str, Any] = config.get("settings") or {}
        self.calendar: BusinessCalendar | None = parse_calendar(self.settings.get("calendar"))
        self.states: dict[str, State] = {}
        for name, node in config["states"].items():
            self._add_state(name, node, parent=None)
        self.initial: str = config["initial"]
        self.has_timers = any(state.after for state in self.states.values())

    def _add_state(self, name: str, node: Mapping[str, Any], parent: str | None) -> None:
        path = f"{parent}.{name}" if parent else name
        children = node.get("states") or {}
        state_type = node.get("type") or ("compound" if children else "atomic")
        state = State(
            path=path,
            name=name,
            parent=parent,
            type=state_type,
            description=node.get("description", ""),
            entry=tuple(as_list(node.get("entry"))),
            exit=tuple(as_list(node.get("exit"))),
            meta={k: v for k, v in (node.get("meta") or {}).items() if k != "task"},
        )
        if node.get("initial"):
            state.initial = f"{path}.{node['initial']}"
        task = (node.get("meta") or {}).get("task")
        if task:
            state.task = _task_spec(task)
        invoke = node.get("invoke")
        if invoke:
            retry = invoke.get("retry") or {}
            state.invoke = Invoke(
                src=invoke["src"],
                input=invoke.get("input") or {},
                max_attempts=int(retry.get("max_attempts", 3)),
                backoff=retry.get("backoff", "exponential"),
                delay=parse_duration(retry.get("delay", "PT10S")),
            )
            state.invoke_done = self._transitions(
                path, parent, "invoke.onDone", "", "", invoke.get("onDone")
            )
            state.invoke_error = self._transitions(
                path, parent, "invoke.onError", "", "", invoke.get("onError")
            )
        for event, spec in (node.get("on") or {}).items():
            state.on[event] = self._transitions(path, parent, "on", event, "", spec)
        state.always = self._transitions(path, parent, "always", "", "", node.get("always"))
        for delay, spec in (node.get("after") or {}).items():
            state.after[str(delay)] = self._transitions(path, parent, "after", "", str(delay), spec)
        state.on_done = self._transitions(path, parent, "onDone", "", "", node.get("onDone"))
        self.states[path] = state
        for child_name, child in children.items():
            state.children.append(f"{path}.{child_name}")
            self._add_state(child_name, child, parent=path)

    def _transitions(
        self, source: str, parent: str | None, trigger: str, event: str, delay: str, spec: Any
    ) -> list[Transition]:
        result = []
        for position, item in enumerate(as_list(spec)):
            if isinstance(item, str):
                item = {"target": item}
            target = item.get("target")
            result.append(
                Transition(
                    source=source,
                    trigger=trigger,
                    event=event,
                    delay=delay,
                    # Targets name siblings of the owning state (see docs/definition-format.md).
                    target=(f"{parent}.{target}" if parent else target) if target else None,
                    guard=compile_expression(item["guard"]) if item.get("guard") else None,
                    assign=tuple(
                        (name, compile_expression(str(expr)))
                        for name, expr in (item.get("assign") or {}).items()
                    ),
                    position=position,
                )
            )
        return result

    # Queries the engine asks.

    def deadline(self, start: datetime, duration: timedelta) -> datetime:
        """`start` plus a task duration (sla, remind): working time under the definition's
        business calendar, plain time without one."""
        if self.calendar is None:
            return start + duration
        return self.calendar.add(start, duration)

    def state(self, path: str) -> State:
        return self.states[path]

    def region_initial_leaf(self, region: str) -> str:
        initial = self.states[region].initial
        assert initial is not None, f"region {region} has no initial state"
        return initial

    def regions(self, parallel: str) -> list[str]:
        return list(self.states[parallel].children)

    def events_of(self, paths: Iterable[str]) -> list[str]:
        """Events accepted by these active states (and their parallel parents), in order."""
        seen: dict[str, None] = {}
        for path in paths:
            for event in self.states[path].on:
                seen.setdefault(event, None)
        return list(seen)

    @staticmethod
    def select(
        candidates: Iterable[Transition],
        context: Mapping[str, Any],
        event: Mapping[str, Any] | None,
    ) -> Transition | None:
        """The first candidate whose guard holds (XState's order), or None."""
        for candidate in candidates:
            if candidate.guard is None:
                return candidate
            try:
                if evaluate_guard(candidate.guard, context, event):
                    return candidate
            except ExpressionError as exc:
                raise GuardError(
                    f"guard '{candidate.guard.source}' of {candidate.source} "
                    f"({candidate.label}) failed: {exc}"
                ) from exc
        return None

    @staticmethod
    def assign(
        transition: Transition, context: Mapping[str, Any], event: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        updated = dict(context)
        for name, expression in transition.assign:
            try:
                # Every expression sees the context as it was before this transition.
                updated[name] = expression.evaluate(context, event)
            except ExpressionError as exc:
                raise GuardError(
                    f"assign {name} = '{expression.source}' of {transition.source} "
                    f"({transition.label}) failed: {exc}"
                ) from exc
        return updated


def as_list(value: Any) -> list[Any]:
    """A value the file format allows as one item or a list, as a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _task_spec(task: Mapping[str, Any]) -> TaskSpec:
    rule = task.get("rule", "any")
    quorum = 1
    if isinstance(rule, Mapping):
        quorum = int(rule["quorum"])
        rule = "quorum"
    sla = task.get("sla")
    return TaskSpec(
        roles=tuple(task.get("roles") or ()),
        requester=bool(task.get("requester", False)),
        rule=rule,
        quorum=quorum,
        sla=parse_duration(sla) if sla else None,
        remind=tuple(parse_duration(r) for r in task.get("remind") or ()),
        escalate_to=tuple(task.get("escalate_to") or ()),
        forbid_requester=bool(task.get("forbid_requester", True)),
        label=str(task.get("label", "")),
    )
