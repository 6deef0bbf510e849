"""Walking a statechart: which transition an event takes, what leaving and entering states
means (parallel regions, `always`, joins, final states), in XState's order.

One implementation for the engine (approvals/services/engine.py, which stores every step in the
database) and the scenario runner (approvals/machine/scenarios.py, which keeps it in memory).
A `Walker` is given an instance-like object (`state`, `context`, `is_active`, `move_to`) and
leaves what a step does to the world to its subclass: the hooks below record the step, open and
close tasks and timers, keep the parallel regions and refuse what cannot be done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from approvals.machine.durations import DurationError, context_duration
from approvals.machine.expressions import Budget
from approvals.machine.statechart import GuardError, State, Statechart, TaskSpec, Transition
from approvals.machine.words import event_label, refusal

# An `always` chain longer than this is a loop in the definition, not a process.
MAX_MICROSTEPS = 100


class Walker:
    """The pure part of a run. Subclasses set `instance`, `chart`, `budget`, `microsteps`,
    `fields` and `_branches` and implement the hooks."""

    instance: Any
    chart: Statechart
    budget: Budget
    microsteps: int
    fields: set[str]
    branches: dict[str, Any]  # region -> an object with `.state`, the region's active leaf

    # ----- hooks

    def refused(
        self, message: str, *, current_state: str = "", accepted_events: Iterable[str] = ()
    ) -> Exception:
        """The exception a refused step raises (nothing is kept of the call)."""
        raise NotImplementedError

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
        """Note a step; returns its sequence number (a visit of a state is the number of the
        step that entered it)."""
        raise NotImplementedError

    def emit(self, topic: str, payload: Mapping[str, Any], *, key: str) -> None:
        """Tell the world (the engine's outbox)."""

    def _note_target(self, target: str | None) -> None:
        """A transition is about to be taken to `target`."""

    def _open_branch(self, region: str, leaf: str) -> Any:
        raise NotImplementedError

    def _move_branch(self, branch: Any, target: str) -> None:
        raise NotImplementedError

    def _close_branch(self, branch: Any) -> None:
        raise NotImplementedError

    def _activate(self, state: State, *, branch: Any, visit: int) -> None:
        """`state` was entered: open its tasks, start its timers and its automated action."""
        raise NotImplementedError

    def _deactivate(self, state: State, *, branch: Any) -> None:
        """`state` is being left: cancel its live tasks and its pending timers."""
        raise NotImplementedError

    def _run_actions(self, names: Iterable[str], state: State, phase: str) -> None:
        """The entry or exit actions of `state`."""

    def _finish(self, outcome: str, *, event: str, data: Mapping[str, Any]) -> None:
        """The request ends (a final state, a withdrawal, a cancellation)."""
        raise NotImplementedError

    # ----- the context

    def _from_context(self, spec: TaskSpec) -> TaskSpec:
        """The step's roles and SLA where the definition names a context field for them
        (roles_from, sla_from), read from this request."""
        if not spec.roles_from and not spec.sla_from:
            return spec
        context = self.instance.context
        changes: dict[str, Any] = {}
        if spec.roles_from:
            roles = context.get(spec.roles_from)
            if (
                not isinstance(roles, list)
                or not roles
                or not all(isinstance(r, str) and r for r in roles)
            ):
                raise self.refused(
                    f"the field {spec.roles_from} must hold a list of role names",
                    current_state=self.instance.state,
                )
            changes["roles"] = tuple(dict.fromkeys(roles))
        if spec.sla_from and context.get(spec.sla_from) is not None:
            try:
                changes["sla"] = context_duration(context, spec.sla_from)
            except DurationError as exc:
                raise self.refused(str(exc), current_state=self.instance.state) from None
        return replace(spec, **changes)

    def set_context(self, context: dict[str, Any]) -> None:
        if context != self.instance.context:
            self.instance.context = context
            self.fields.add("context")

    # ----- where the instance is

    def active_leaves(self) -> list[str]:
        top = self.chart.state(self.instance.state)
        if top.is_parallel:
            return [b.state for b in self.branches.values()]
        return [top.path]

    def active_paths(self) -> list[str]:
        """Leaves first, then the parallel node: events are tried in that order."""
        top = self.instance.state
        leaves = self.active_leaves()
        return leaves if leaves == [top] else [*leaves, top]

    def accepted_events(self) -> list[str]:
        if not self.instance.is_active:
            return []
        return self.chart.events_of(self.active_paths())

    # ----- public moves

    def fire(
        self,
        event: str,
        data: Mapping[str, Any] | None,
        *,
        sources: Iterable[str] | None = None,
        task: Any = None,
    ) -> Transition:
        """Take the first enabled transition for `event` from `sources` (default: everything
        active). Refused when the state does not accept the event or no guard holds."""
        if not self.instance.is_active:
            raise self.refused(
                f"the request is {self.instance.status}; it accepts no events",
                current_state=self.instance.state,
            )
        paths = list(sources) if sources is not None else self.active_paths()
        candidates = [t for p in paths for t in self.chart.state(p).on.get(event, [])]
        if not candidates:
            raise self.refused(
                f"{event_label(event)} is not possible at {self.describe_state()}",
                current_state=self.instance.state,
                accepted_events=self.accepted_events(),
            )
        chosen = self._select(candidates, data)
        if chosen is None:
            raise self.refused(
                refusal(
                    event,
                    [(t.description, t.guard.source if t.guard else None) for t in candidates],
                    self.chart.form,
                ),
                current_state=self.instance.state,
                accepted_events=self.accepted_events(),
            )
        self._take(chosen, data, task=task)
        return chosen

    def take_first(
        self,
        candidates: list[Transition],
        data: Mapping[str, Any] | None,
        *,
        task: Any = None,
    ) -> Transition | None:
        """Take the first enabled one of these transitions (`after`, `invoke.onDone`/`onError`),
        or none when no guard holds."""
        chosen = self._select(candidates, data)
        if chosen is not None:
            self._take(chosen, data, task=task)
        return chosen

    def _expression_failed(self, exc: GuardError) -> str:
        """The refusal's message. Over its budget, an expression fails whatever the data: that
        is the definition's fault, not the request's."""
        if not exc.over_budget:
            return str(exc)
        return f"{exc}; nothing was changed: an administrator must simplify the definition"

    def describe_state(self) -> str:
        """Where the request is, as its definition names the steps ("Manager approval")."""
        return ", ".join(self.chart.state(leaf).label for leaf in self.active_leaves())

    # ----- transitions

    def _select(
        self, candidates: list[Transition], data: Mapping[str, Any] | None
    ) -> Transition | None:
        try:
            return self.chart.select(candidates, self.instance.context, data, budget=self.budget)
        except GuardError as exc:
            raise self.refused(
                self._expression_failed(exc),
                current_state=self.instance.state,
                accepted_events=self.accepted_events(),
            ) from None

    def _recorded_event_data(
        self, transition: Transition, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The event's data as the trail records it."""
        return dict(data)

    def _take(
        self, transition: Transition, data: Mapping[str, Any] | None, *, task: Any = None
    ) -> None:
        self.microsteps += 1
        if self.microsteps > MAX_MICROSTEPS:
            raise self.refused(
                f"more than {MAX_MICROSTEPS} steps in a row from "
                f"{transition.source}: the definition loops",
                current_state=self.instance.state,
            )
        if transition.assign:
            try:
                self.set_context(
                    self.chart.assign(transition, self.instance.context, data, budget=self.budget)
                )
            except GuardError as exc:
                raise self.refused(
                    self._expression_failed(exc), current_state=self.instance.state
                ) from None
        self._note_target(transition.target)
        audit_data: dict[str, Any] = {"trigger": transition.trigger}
        if transition.event:
            audit_data["event"] = transition.event
        if transition.delay:
            audit_data["after"] = transition.delay
        if data:
            audit_data["data"] = self._recorded_event_data(transition, data)
        if transition.assign:
            audit_data["assigned"] = {n: self.instance.context.get(n) for n, _ in transition.assign}

        source = self.chart.state(transition.source)
        if transition.target is None:
            self.record(
                "transition",
                from_state=source.path,
                to_state=source.path,
                task=task,
                data=audit_data,
            )
            return
        if source.parent is not None:
            branch = self.branches[source.parent]
            self._exit_leaf(branch.state, branch)
            seq = self.record(
                "transition",
                from_state=source.path,
                to_state=transition.target,
                task=task,
                data=audit_data,
            )
            self._move_branch(branch, transition.target)
            self._enter_leaf(transition.target, branch, visit=seq)
            return
        from_state = self.instance.state
        self._exit_top(from_state)
        seq = self.record(
            "transition",
            from_state=from_state,
            to_state=transition.target,
            task=task,
            data=audit_data,
        )
        self.instance.move_to(transition.target)
        self.fields.add("state")
        self.emit(
            "instance.state_changed", {"from": from_state, "to": transition.target}, key="state"
        )
        self._enter_top(transition.target, visit=seq)

    # ----- entering and leaving states

    def _enter_top(self, path: str, *, visit: int) -> None:
        state = self.chart.state(path)
        self._run_actions(state.entry, state, "entry")
        if state.is_final:
            self._finish(state.outcome, event="instance.completed", data={"state": path})
            return
        if state.is_parallel:
            self._branches = {}
            for region in self.chart.regions(path):
                leaf = self.chart.region_initial_leaf(region)
                branch = self._open_branch(region, leaf)
                self._branches[region] = branch
                self._enter_leaf(leaf, branch, visit=visit, join=False)
            self._try_join(state)
            return
        self._activate(state, branch=None, visit=visit)
        self._follow_always(state)

    def _enter_leaf(self, path: str, branch: Any, *, visit: int, join: bool = True) -> None:
        state = self.chart.state(path)
        self._run_actions(state.entry, state, "entry")
        if state.is_final:
            if join:
                self._try_join(self.chart.state(self.instance.state))
            return
        self._activate(state, branch=branch, visit=visit)
        self._follow_always(state)

    def _follow_always(self, state: State) -> None:
        if not state.always or not self._is_current(state.path):
            return
        chosen = self._select(state.always, None)
        if chosen is not None:
            self._take(chosen, None)

    def _is_current(self, path: str) -> bool:
        return self.instance.is_active and path in self.active_leaves()

    def _try_join(self, parallel: State) -> None:
        """A parallel state is done when every region rests in a final state."""
        if not self.instance.is_active or self.instance.state != parallel.path:
            return
        if all(self.chart.state(b.state).is_final for b in self.branches.values()):
            chosen = self._select(parallel.on_done, None)
            if chosen is not None:
                self._take(chosen, None)

    def _exit_top(self, path: str) -> None:
        state = self.chart.state(path)
        if state.is_parallel:
            for branch in list(self.branches.values()):
                self._exit_leaf(branch.state, branch)
                self._close_branch(branch)
            self._branches = {}
        else:
            self._deactivate(state, branch=None)
        self._run_actions(state.exit, state, "exit")

    def _exit_leaf(self, path: str, branch: Any) -> None:
        state = self.chart.state(path)
        self._deactivate(state, branch=branch)
        self._run_actions(state.exit, state, "exit")
