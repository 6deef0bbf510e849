"""Scenarios: a definition's own tests, run in memory.

A scenario (the definition's top-level `scenarios`, docs/definition-format.md#scenarios) starts
a request with a context, takes steps (an event, a decision on a task by a role, time passing)
and says what the request should end with: its state, status, context and open tasks. It runs
on the statechart walker the engine uses (approvals/machine/walker.py), with guards and assign
evaluated by the same expressions, and nothing stored: the tasks, timers and regions live in
this module's objects. Automated actions return the output the scenario declares for their
step (`outputs`), or an empty one, or fail with the error it declares (`failures`, after their
last attempt); entry and exit actions do nothing. Deciding stands for a
decision in memory: a step that requires an electronic signature needs none here, and there
are no people, so out-of-office, the org chart and four eyes do not apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from approvals.machine.durations import DurationError, parse_duration
from approvals.machine.expressions import Budget
from approvals.machine.statechart import APPROVE, WITHDRAW, State, Statechart, Transition
from approvals.machine.validation import REQUESTER_ROLE
from approvals.machine.walker import Walker
from approvals.machine.words import event_label
from approvals.request_schema import form_errors, with_defaults

__all__ = [
    "DEFAULT_START",
    "ScenarioError",
    "ScenarioResult",
    "Simulation",
    "first_difference",
    "run_scenario",
    "run_scenarios",
]

# When a scenario's request starts unless it says (`start_at`): a Monday morning, so that
# business-calendar deadlines read as written.
DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class ScenarioError(Exception):
    """A step the request refuses, or one the scenario got wrong."""


@dataclass
class SimTask:
    number: int
    state: str
    visit: int
    roles: tuple[str, ...]
    requester: bool
    rule: str
    due_at: datetime | None
    level: int = 0
    status: str = "open"  # open | done | cancelled | escalated
    breached: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "roles": sorted(self.roles),
            "level": self.level,
            "requester": self.requester,
        }


@dataclass
class SimTimer:
    state: str
    delay: str
    due_at: datetime
    live: bool = True


@dataclass
class SimBranch:
    region: str
    state: str


@dataclass
class SimInstance:
    """What the walker reads and moves of a request."""

    state: str
    context: dict[str, Any]
    status: str = "active"

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def move_to(self, target: str) -> None:
        self.state = target


@dataclass
class Invocation:
    state: str
    visit: int


class Simulation(Walker):
    """One request walked in memory. `start`, then `send`, `decide` and `advance`; `view` is
    where it stands."""

    def __init__(
        self,
        chart: Statechart,
        context: Mapping[str, Any],
        *,
        now: datetime = DEFAULT_START,
        outputs: Mapping[str, Mapping[str, Any]] | None = None,
        failures: Mapping[str, str] | None = None,
    ) -> None:
        self.chart = chart
        self.instance = SimInstance(state=chart.initial, context=dict(context))
        self.now = now
        self.outputs = dict(outputs or {})
        self.failures = dict(failures or {})
        self.budget = Budget()
        self.microsteps = 0
        self.fields: set[str] = set()
        self._branches: dict[str, SimBranch] = {}
        self.tasks: list[SimTask] = []
        self.timers: list[SimTimer] = []
        self.invocations: list[Invocation] = []
        self.seq = 0
        # Set by the requester's own withdrawal: the request ends as withdrawn.
        self.ends_as: str | None = None
        # What happened, as the audit trail would say it: (event, from, to).
        self.trail: list[tuple[str, str, str]] = []
        # Every transition taken, for the coverage of a definition's scenarios.
        self.taken: list[Transition] = []

    @property
    def branches(self) -> dict[str, SimBranch]:
        return self._branches

    # ----- the walker's hooks

    def refused(
        self, message: str, *, current_state: str = "", accepted_events: Iterable[str] = ()
    ) -> Exception:
        return ScenarioError(message)

    def record(
        self,
        event: str,
        *,
        from_state: str = "",
        to_state: str = "",
        task: Any = None,
        data: Mapping[str, Any] | None = None,
        actor: Any = ...,
    ) -> int:
        self.seq += 1
        self.trail.append((event, from_state, to_state))
        return self.seq

    def _take(
        self, transition: Transition, data: Mapping[str, Any] | None, *, task: Any = None
    ) -> None:
        self.taken.append(transition)
        super()._take(transition, data, task=task)

    def _open_branch(self, region: str, leaf: str) -> SimBranch:
        return SimBranch(region=region, state=leaf)

    def _move_branch(self, branch: SimBranch, target: str) -> None:
        branch.state = target

    def _close_branch(self, branch: SimBranch) -> None:
        pass  # the walker forgets the regions of a parallel state it leaves

    def _activate(self, state: State, *, branch: Any, visit: int) -> None:
        if state.task is not None:
            self._open_tasks(state, visit)
        for delay in state.after:
            try:
                wait = self.chart.delay(delay, self.instance.context)
            except DurationError as exc:
                raise ScenarioError(f"the timer after {delay} cannot start: {exc}") from None
            self.timers.append(SimTimer(state=state.path, delay=delay, due_at=self.now + wait))
        if state.invoke is not None:
            self.invocations.append(Invocation(state=state.path, visit=visit))

    def _deactivate(self, state: State, *, branch: Any) -> None:
        for task in self.tasks:
            if task.state == state.path and task.status == "open":
                task.status = "cancelled"
        for timer in self.timers:
            if timer.state == state.path:
                timer.live = False
        self.invocations = [i for i in self.invocations if i.state != state.path]

    def _finish(self, outcome: str, *, event: str, data: Mapping[str, Any]) -> None:
        self.instance.status = self.ends_as or outcome
        for timer in self.timers:
            timer.live = False
        self.invocations = []
        self.record(event, from_state=self.instance.state, to_state=self.instance.state)

    def _open_tasks(self, state: State, visit: int) -> None:
        assert state.task is not None
        spec = self._from_context(state.task)
        due_at = self.chart.deadline(self.now, spec.sla) if spec.sla else None
        common: dict[str, Any] = {"state": state.path, "visit": visit, "due_at": due_at}
        if spec.requester:
            self._add_task(roles=(), requester=True, rule="any", **common)
        elif spec.rule == "all":
            for role in spec.roles:
                self._add_task(roles=(role,), requester=False, rule="all", **common)
        else:
            # Under everyone, one task stands for the members (there are no people here).
            for _ in range(spec.approvals_needed):
                self._add_task(roles=spec.roles, requester=False, rule=spec.rule, **common)

    def _add_task(self, **fields: Any) -> SimTask:
        task = SimTask(number=len(self.tasks) + 1, **fields)
        self.tasks.append(task)
        self.record("task.created", to_state=task.state)
        return task

    # ----- the moves

    def start(self) -> None:
        initial = self.instance.state
        visit = self.record("instance.started", to_state=initial)
        self._enter_top(initial, visit=visit)
        self._settle()

    def send(self, event: str, data: Mapping[str, Any] | None = None) -> None:
        """An event sent to the request (the API's or the page's buttons)."""
        self.microsteps = 0
        if self.instance.is_active and event not in self.accepted_events():
            raise ScenarioError(self._not_accepted(event))
        self.fire(event, dict(data or {}))
        self._settle()

    def decide(
        self, event: str, as_role: str | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        """A decision on an open task, by someone holding `as_role` (`requester` for the
        requester's own task)."""
        self.microsteps = 0
        if not self.instance.is_active:
            raise ScenarioError(f"the request is {self.instance.status}; no task is open")
        task = self._task_for(as_role)
        accepted = list(self.chart.state(task.state).on)
        if event not in accepted:
            raise ScenarioError(
                f"the step *{self.chart.state(task.state).label}* does not accept "
                f"{event_label(event)} (it accepts {', '.join(accepted) or 'no decision'})"
            )
        task.status = "done"
        self.record("task.decided", to_state=task.state)
        pending = any(
            t.status == "open" and t.state == task.state and t.visit == task.visit
            for t in self.tasks
        )
        if event == WITHDRAW and task.requester:
            # The requester's own "Withdraw" ends the request as withdrawn, as in the engine.
            self.ends_as = "withdrawn"
        if not (event == APPROVE and task.rule != "any" and pending):
            self.fire(event, dict(data or {}), sources=[task.state], task=task)
        self._settle()

    def advance(self, duration: timedelta) -> None:
        """Time passes: the `after` timers and the SLA deadlines that fall due fire in order,
        an overdue task going one level up its `escalate_to` roles (flagged past the last)."""
        until = self.now + duration
        while self.instance.is_active:
            due = self._next_due(until)
            if due is None:
                break
            when, item = due
            self.now = max(self.now, when)
            self.microsteps = 0
            if isinstance(item, SimTask):
                self._escalate(item)
            else:
                item.live = False
                self.take_first(self.chart.state(item.state).after.get(item.delay, []), None)
            self._settle()
        self.now = until

    def _next_due(self, until: datetime) -> tuple[datetime, SimTask | SimTimer] | None:
        # At one instant, escalations come before timers (the SLA sweep's order).
        candidates: list[tuple[datetime, int, int, SimTask | SimTimer]] = []
        for task in self.tasks:
            if task.status == "open" and not task.breached and task.due_at and task.due_at <= until:
                candidates.append((task.due_at, 0, task.number, task))
        for index, timer in enumerate(self.timers):
            if timer.live and timer.due_at <= until:
                candidates.append((timer.due_at, 1, index, timer))
        if not candidates:
            return None
        when, _, _, item = min(candidates, key=lambda c: c[:3])
        return when, item

    def _escalate(self, task: SimTask) -> None:
        spec = self.chart.state(task.state).task
        levels = spec.escalate_to if spec is not None else ()
        if spec is None or spec.sla is None or task.level >= len(levels):
            task.breached = True
            self.record("task.sla_breached", to_state=task.state)
            return
        task.status = "escalated"
        successor = SimTask(
            number=len(self.tasks) + 1,
            state=task.state,
            visit=task.visit,
            roles=(levels[task.level],),
            requester=False,
            rule=task.rule,
            due_at=self.chart.deadline(self.now, spec.sla),
            level=task.level + 1,
        )
        self.tasks.append(successor)
        self.record("task.escalated", to_state=task.state)

    def _settle(self) -> None:
        """Run the automated actions of the steps entered, each returning its stubbed output,
        until the request rests."""
        while self.invocations and self.instance.is_active:
            invocation = self.invocations.pop(0)
            state = self.chart.state(invocation.state)
            if state.path in self.failures:
                self._fail(state, str(self.failures[state.path]))
                continue
            output = dict(self.outputs.get(state.path, {}))
            self.record("action.completed", to_state=state.path)
            self.set_context({**self.instance.context, state.name: output})
            if state.invoke_done:
                moved = self.take_first(state.invoke_done, {"output": output})
                if moved is None:
                    raise ScenarioError(
                        f"the action of *{state.label}* succeeded but none of its onDone "
                        "guards holds"
                    )

    def _fail(self, state: State, error: str) -> None:
        self.record("action.failed", to_state=state.path)
        moved = (
            self.take_first(state.invoke_error, {"error": error}) if state.invoke_error else None
        )
        if moved is None:
            raise ScenarioError(
                f"the action of *{state.label}* failed ({error}) and no onError takes it on: "
                "an operator would review the step"
            )

    # ----- finding the task

    def open_tasks(self) -> list[SimTask]:
        return [t for t in self.tasks if t.status == "open"]

    def _task_for(self, as_role: str | None) -> SimTask:
        tasks = self.open_tasks()
        if not tasks:
            raise ScenarioError(f"no task is open at {self.describe_state()}")
        if as_role is None:
            steps = {t.state for t in tasks}
            if len(steps) > 1:
                raise ScenarioError(
                    "tasks of several steps are open "
                    f"({', '.join(sorted(steps))}): say which with as_role"
                )
            return tasks[0]
        for task in tasks:
            if (as_role == REQUESTER_ROLE and task.requester) or as_role in task.roles:
                return task
        offered = ", ".join(_offered(t) for t in tasks)
        raise ScenarioError(f"no open task is offered to the role {as_role} (open: {offered})")

    def _not_accepted(self, event: str) -> str:
        accepted = self.accepted_events()
        return (
            f"{event_label(event)} is not possible at {self.describe_state()} "
            f"(it accepts {', '.join(accepted) or 'no event'})"
        )

    # ----- where it stands

    def view(self) -> dict[str, Any]:
        leaves = self.active_leaves() if self.instance.is_active else [self.instance.state]
        return {
            "state": self.instance.state,
            "leaves": leaves,
            "status": self.instance.status,
            "context": dict(self.instance.context),
            "tasks": [t.view() for t in self.open_tasks()],
        }


def _offered(task: SimTask) -> str:
    who = "the requester" if task.requester else " or ".join(task.roles)
    return f"{task.state} to {who}"


# ---------------------------------------------------------------------------------------
# Comparing


_MISSING = object()


def first_difference(expect: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """The first place where a run's end differs from what the scenario expects, as
    ``expect.state: expected finance_review, got director_review``; None when it matches.
    Only what `expect` names is compared; context fields it leaves out may hold anything."""
    if "state" in expect:
        wanted = expect["state"]
        if isinstance(wanted, list):
            if sorted(wanted) != sorted(got["leaves"]):
                return _differs("expect.state", sorted(wanted), sorted(got["leaves"]))
        elif wanted != got["state"]:
            return _differs("expect.state", wanted, got["state"])
    if "status" in expect and expect["status"] != got["status"]:
        return _differs("expect.status", expect["status"], got["status"])
    if "context" in expect:
        found = _compare(expect["context"], got["context"], "expect.context")
        if found:
            return found
    if "tasks" in expect:
        wanted_tasks, open_tasks = expect["tasks"], got["tasks"]
        for index, wanted in enumerate(wanted_tasks):
            if index >= len(open_tasks):
                return (
                    f"expect.tasks[{index}]: expected {_task_words(wanted)}, got no such task "
                    f"({len(open_tasks)} open: {_tasks_words(open_tasks)})"
                )
            task = open_tasks[index]
            for key, value in wanted.items():
                mine = sorted(value) if key == "roles" and isinstance(value, list) else value
                if task.get(key) != mine:
                    return _differs(f"expect.tasks[{index}].{key}", mine, task.get(key))
        if len(open_tasks) > len(wanted_tasks):
            extra = open_tasks[len(wanted_tasks) :]
            return (
                f"expect.tasks: expected {len(wanted_tasks)} open task(s), got "
                f"{len(open_tasks)} (also {_tasks_words(extra)})"
            )
    return None


def _compare(wanted: Any, got: Any, path: str) -> str | None:
    if isinstance(wanted, Mapping) and isinstance(got, Mapping):
        for key, value in wanted.items():
            found = _compare(value, got.get(key, _MISSING), f"{path}.{key}")
            if found:
                return found
        return None
    if got is _MISSING:
        return f"{path}: expected {_show(wanted)}, got nothing (no such field)"
    if wanted != got or isinstance(wanted, bool) != isinstance(got, bool):
        return _differs(path, wanted, got)
    return None


def _differs(path: str, wanted: Any, got: Any) -> str:
    return f"{path}: expected {_show(wanted)}, got {_show(got)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def _task_words(task: Mapping[str, Any]) -> str:
    parts = [f"{key} {_show(value)}" for key, value in task.items()]
    return "a task with " + ", ".join(parts) if parts else "a task"


def _tasks_words(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "none"
    return "; ".join(
        f"{t['state']} to {'the requester' if t['requester'] else ', '.join(t['roles'])}"
        for t in tasks
    )


# ---------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    passed: bool
    difference: str = ""  # the first difference or the refused step; empty when passed
    trail: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)
    taken: tuple[Transition, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"PASS {self.name}" if self.passed else f"FAIL {self.name}: {self.difference}"


def run_scenario(chart: Statechart, scenario: Mapping[str, Any]) -> ScenarioResult:
    """Run one (validated) scenario against a compiled statechart, in memory."""
    name = str(scenario.get("name", ""))
    context = with_defaults(chart.form, dict(scenario.get("context") or {}))
    errors = form_errors(chart.form, context)
    if errors:
        problems = "; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items())
        return ScenarioResult(name, False, f"context: does not fit the request form ({problems})")
    simulation = Simulation(
        chart,
        context,
        now=_start_of(scenario),
        outputs=scenario.get("outputs") or {},
        failures=scenario.get("failures") or {},
    )
    try:
        simulation.start()
    except ScenarioError as exc:
        return ScenarioResult(
            name, False, f"start: {exc}", tuple(simulation.trail), tuple(simulation.taken)
        )
    for number, step in enumerate(scenario.get("steps") or [], start=1):
        try:
            _take_step(simulation, step)
        except ScenarioError as exc:
            return ScenarioResult(
                name,
                False,
                f"steps[{number - 1}] ({_step_words(step)}): {exc}",
                tuple(simulation.trail),
                tuple(simulation.taken),
            )
    difference = first_difference(scenario.get("expect") or {}, simulation.view())
    return ScenarioResult(
        name, difference is None, difference or "", tuple(simulation.trail), tuple(simulation.taken)
    )


def run_scenarios(
    chart: Statechart, scenarios: Iterable[Mapping[str, Any]]
) -> list[ScenarioResult]:
    return [run_scenario(chart, scenario) for scenario in scenarios]


def _take_step(simulation: Simulation, step: Mapping[str, Any]) -> None:
    if "advance" in step:
        try:
            duration = parse_duration(step["advance"])
        except DurationError as exc:
            raise ScenarioError(str(exc)) from None
        simulation.advance(duration)
    elif "decide" in step:
        simulation.decide(step["decide"], step.get("as_role"), step.get("data"))
    else:
        simulation.send(step["event"], step.get("data"))


def _step_words(step: Mapping[str, Any]) -> str:
    if "advance" in step:
        return f"advance {step['advance']}"
    if "decide" in step:
        role = f" as {step['as_role']}" if step.get("as_role") else ""
        return f"decide {step['decide']}{role}"
    return f"event {step.get('event')}"


def _start_of(scenario: Mapping[str, Any]) -> datetime:
    start = scenario.get("start_at")
    if isinstance(start, datetime):
        return start
    if isinstance(start, str):
        return datetime.fromisoformat(start)
    return DEFAULT_START


# ---------------------------------------------------------------------------------------
# Coverage


def transition_key(transition: Transition) -> tuple[str, str, str, str, int]:
    return (
        transition.source,
        transition.trigger,
        transition.event,
        transition.delay,
        transition.position,
    )


def all_transitions(chart: Statechart) -> list[Transition]:
    """Every transition of the definition, state by state in the order written."""
    found: list[Transition] = []
    for state in chart.states.values():
        for candidates in state.on.values():
            found.extend(candidates)
        found.extend(state.always)
        for candidates in state.after.values():
            found.extend(candidates)
        found.extend(state.on_done)
        found.extend(state.invoke_done)
        found.extend(state.invoke_error)
    return found


def uncovered(chart: Statechart, results: Iterable[ScenarioResult]) -> list[Transition]:
    """The transitions none of these scenario runs took."""
    taken = {transition_key(t) for result in results for t in result.taken}
    return [t for t in all_transitions(chart) if transition_key(t) not in taken]


def transition_words(transition: Transition) -> str:
    """``manager_review --APPROVE[1]--> finance_review``: where a transition is written."""
    index = f"[{transition.position}]" if transition.position else ""
    return f"{transition.source} --{transition.label}{index}--> {transition.target or '(stays)'}"
