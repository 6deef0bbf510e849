"""A validated definition compiled for the engine: states by path, transitions with compiled
guards, task specs with parsed durations. Pure Python; built once per published version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from approvals.machine.calendar import BusinessCalendar, parse_calendar
from approvals.machine.config import (
    ConfigState,
    ConfigTransition,
    SubflowRef,
    Trigger,
    as_list,
    completion_start_of,
    form_of,
    invoke_of,
    join_path,
    meta_of,
    output_of,
    retry_of,
    segregation_of,
    subflow_of,
    target_path,
    task_of,
    task_rule,
    transitions_of,
    walk_states,
)
from approvals.machine.durations import context_duration, is_delay_name, parse_duration
from approvals.machine.expressions import (
    Budget,
    Expression,
    ExpressionError,
    compile_expression,
    evaluate_guard,
)

APPROVE = "APPROVE"
WITHDRAW = "WITHDRAW"
OUTCOMES = ("completed", "rejected", "cancelled", "withdrawn")


@dataclass(frozen=True)
class Transition:
    source: str
    trigger: Trigger
    event: str
    delay: str
    target: str | None  # absolute path; None stays in the source state
    guard: Expression | None
    assign: tuple[tuple[str, Expression], ...]
    position: int
    description: str = ""  # the condition in plain words, for people (machine/words.py)

    @property
    def label(self) -> str:
        return self.event or (f"after {self.delay}" if self.delay else self.trigger)


@dataclass(frozen=True)
class TaskSpec:
    roles: tuple[str, ...]
    requester: bool
    rule: str  # any | all | quorum | everyone
    quorum: int
    sla: timedelta | None
    remind: tuple[timedelta, ...]
    escalate_to: tuple[str, ...]
    forbid_requester: bool
    label: str
    distinct_from: tuple[str, ...] = ()
    # Named where each request says it: the context field holding the roles (a list of role
    # names) or the SLA (an ISO 8601 duration), read when the step opens.
    roles_from: str = ""
    sla_from: str = ""
    # An electronic signature's meaning ("Approved as Director"): deciding asks the signer to
    # re-authenticate, and the decision carries the signature. Empty: no signature.
    signature: str = ""
    # From the org chart: the requester's manager (assignee: manager_of_requester) or the
    # manager of the person a context field names (manager_of), `skip_levels` further up; the
    # step's roles take the task where there is no such person.
    assignee: str = ""
    manager_of: str = ""
    skip_levels: int = 0

    @property
    def approvals_needed(self) -> int:
        """Approvals the step waits for. Under everyone it is as many as the roles had members
        when the step opened (one task each), which the definition cannot know: count the tasks
        the visit opened with instead."""
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
    # A sub-workflow (src "workflow:<key>[@<version>]"): the child's form fields, each from an
    # expression over this request's context; whether leaving the step cancels the child.
    subflow: SubflowRef | None = None
    child_input: tuple[tuple[str, Expression], ...] = ()
    cancel_children: bool = True
    # `foreach`: one child per item of this context list, at most `limit` running at once.
    foreach: str = ""
    limit: int | None = None
    # A callback step (src "callback"): how long it waits for the report, and at most how long
    # between two heartbeats of the outside system.
    timeout: timedelta | None = None
    heartbeat: timedelta | None = None


@dataclass(frozen=True)
class CompletionStart:
    """`on_complete_start` of a final state: the workflow a request ending there starts, its
    form fields each from an expression over the ended request's context."""

    workflow: SubflowRef
    input: tuple[tuple[str, Expression], ...] = ()


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
    # A final state's meta.output: what a child request ending here hands its parent.
    output: tuple[tuple[str, Expression], ...] = ()
    complete_start: CompletionStart | None = None

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
    """A guard or assign expression failed at run time (`over_budget`: it ran out of its
    evaluation budget)."""

    def __init__(self, message: str, *, over_budget: bool = False) -> None:
        super().__init__(message)
        self.over_budget = over_budget


class Statechart:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.key: str = config["id"]
        self.title: str = config["title"]
        self.form: Mapping[str, Any] = form_of(config)
        self.settings: Mapping[str, Any] = config.get("settings") or {}
        self.calendar: BusinessCalendar | None = parse_calendar(self.settings.get("calendar"))
        self.states: dict[str, State] = {}
        for config_state in walk_states(config):
            self._add_state(config_state)
        self.initial: str = config["initial"]
        self.has_timers = any(state.after for state in self.states.values())
        self.withdrawn_state = self._withdrawn_state()
        self.segregation: str = segregation_of(config)
        # Whether any step keeps its deciders from another (four eyes).
        self.segregates = any(self.segregated_from(path) for path in self.states)

    def segregated_from(self, path: str) -> frozenset[str]:
        """The other steps whose deciders may not decide this one (four eyes): those its task
        names in `distinct_from`, and under `segregation: distinct_approvers` every other
        step people decide. The same step on a later visit is not one of them."""
        state = self.states.get(path)
        spec = state.task if state is not None else None
        if spec is None or spec.requester:
            return frozenset()
        steps = set(spec.distinct_from)
        if self.segregation == "distinct_approvers":
            steps |= {
                other.path
                for other in self.states.values()
                if other.task is not None and not other.task.requester
            }
        return frozenset(steps - {path})

    def _withdrawn_state(self) -> str | None:
        """Where the requester's withdrawal ends a request from a state that has no WITHDRAW
        of its own: the top-level final state whose outcome is `withdrawn`, else the one named
        `withdrawn`; None when there is neither."""
        finals = [s for s in self.states.values() if s.parent is None and s.is_final]
        for state in finals:
            if state.outcome == "withdrawn":
                return state.path
        return next((s.path for s in finals if s.name == "withdrawn"), None)

    def _add_state(self, config_state: ConfigState) -> None:
        path, node = config_state.path, config_state.node
        state = State(
            path=path,
            name=config_state.name,
            parent=config_state.parent,
            type=config_state.type,
            description=node.get("description", ""),
            entry=tuple(as_list(node.get("entry"))),
            exit=tuple(as_list(node.get("exit"))),
            meta={k: v for k, v in meta_of(node).items() if k != "task"},
        )
        if node.get("initial"):
            state.initial = join_path(path, node["initial"])
        task = task_of(node)
        if task:
            state.task = _task_spec(task)
        invoke = invoke_of(node)
        if invoke is not None:
            retry = retry_of(invoke)
            subflow = subflow_of(invoke)
            given = invoke.get("input") or {}
            state.invoke = Invoke(
                src=invoke["src"],
                input=given,
                max_attempts=1 if subflow else retry.max_attempts,
                backoff=retry.backoff,
                delay=parse_duration(retry.delay),
                subflow=subflow,
                child_input=tuple(
                    (str(name), compile_expression(str(source))) for name, source in given.items()
                )
                if subflow
                else (),
                cancel_children=invoke.get("cancel_children", True) is not False,
                foreach=str(invoke.get("foreach") or "") if subflow else "",
                limit=invoke["limit"] if isinstance(invoke.get("limit"), int) else None,
                timeout=parse_duration(invoke["timeout"]) if "timeout" in invoke else None,
                heartbeat=parse_duration(invoke["heartbeat"]) if "heartbeat" in invoke else None,
            )
        if config_state.type == "final":
            state.output = tuple(
                (str(name), compile_expression(str(source)))
                for name, source in output_of(node).items()
            )
            found = completion_start_of(node)
            if found is not None:
                state.complete_start = CompletionStart(
                    workflow=found[0],
                    input=tuple(
                        (str(name), compile_expression(str(source)))
                        for name, source in found[1].items()
                    ),
                )
        for spec in transitions_of(node):
            _candidates(state, spec).append(_compile_transition(path, spec))
        self.states[path] = state
        if config_state.parent is not None:
            self.states[config_state.parent].children.append(path)

    # Queries the engine asks.

    def deadline(self, start: datetime, duration: timedelta) -> datetime:
        """`start` plus a task duration (sla, remind): working time under the definition's
        business calendar, plain time without one."""
        if self.calendar is None:
            return start + duration
        return self.calendar.add(start, duration)

    def state(self, path: str) -> State:
        return self.states[path]

    @staticmethod
    def delay(delay: str, context: Mapping[str, Any]) -> timedelta:
        """How long an `after` waits: the delay as written (``P2D``, ``5000``), or for a named
        delay (XState's ``after: {expires_in: ...}``) the duration held by that context field.
        Raises DurationError naming the field when it holds no duration."""
        if not is_delay_name(delay):
            return parse_duration(delay)
        return context_duration(context, delay)

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
        *,
        budget: Budget | None = None,
    ) -> Transition | None:
        """The first candidate whose guard holds (XState's order), or None. The guards draw
        on `budget` (one of their own when None)."""
        for candidate in candidates:
            if candidate.guard is None:
                return candidate
            try:
                if evaluate_guard(candidate.guard, context, event, budget=budget):
                    return candidate
            except ExpressionError as exc:
                raise GuardError(
                    f"guard '{candidate.guard.source}' of {candidate.source} "
                    f"({candidate.label}) failed: {exc}",
                    over_budget=exc.over_budget,
                ) from exc
        return None

    @staticmethod
    def assign(
        transition: Transition,
        context: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        *,
        budget: Budget | None = None,
    ) -> dict[str, Any]:
        updated = dict(context)
        for name, expression in transition.assign:
            try:
                # Every expression sees the context as it was before this transition.
                updated[name] = expression.evaluate(context, event, budget=budget)
            except ExpressionError as exc:
                raise GuardError(
                    f"assign {name} = '{expression.source}' of {transition.source} "
                    f"({transition.label}) failed: {exc}",
                    over_budget=exc.over_budget,
                ) from exc
        return updated


def _candidates(state: State, spec: ConfigTransition) -> list[Transition]:
    """The list of ``state`` that a transition of this trigger (and event or delay) joins."""
    if spec.trigger == "on":
        return state.on.setdefault(spec.event, [])
    if spec.trigger == "after":
        return state.after.setdefault(spec.delay, [])
    return {
        "always": state.always,
        "onDone": state.on_done,
        "invoke.onDone": state.invoke_done,
        "invoke.onError": state.invoke_error,
    }[spec.trigger]


def _compile_transition(source: str, spec: ConfigTransition) -> Transition:
    return Transition(
        source=source,
        trigger=spec.trigger,
        event=spec.event,
        delay=spec.delay,
        target=target_path(source, spec.target) if spec.target else None,
        guard=compile_expression(spec.guard) if spec.guard else None,
        assign=tuple((name, compile_expression(expr)) for name, expr in spec.assign.items()),
        position=spec.position,
        description=spec.description,
    )


def _task_spec(task: Mapping[str, Any]) -> TaskSpec:
    rule, quorum = task_rule(task)
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
        distinct_from=tuple(task.get("distinct_from") or ()),
        roles_from=str(task.get("roles_from") or ""),
        sla_from=str(task.get("sla_from") or ""),
        signature=str((task.get("signature") or {}).get("meaning") or ""),
        assignee=str(task.get("assignee") or ""),
        manager_of=str(task.get("manager_of") or ""),
        skip_levels=int(task.get("skip_levels") or 0),
    )
