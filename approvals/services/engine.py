"""The interpreter: moves one locked instance through its statechart.

A `Run` lives for one service call inside its transaction. It collects audit events and outbox
messages and writes each kind in one INSERT at the end, with the instance row, so a transition
costs a handful of queries whatever it touches. The outbox messages then go to their
subscribers (`subscribers.py`) in the same transaction. Callers (the services in this package)
lock the instance, build a Run, call `start`/`fire`/`end`, then `commit`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django_fsm import ConcurrentTransition

from accounts.absences import local_day, resolve_assignee
from approvals import logcontext, metrics, tracing
from approvals.machine.durations import DurationError
from approvals.machine.expressions import Budget, ExpressionError
from approvals.machine.statechart import (
    WITHDRAW,
    GuardError,
    Invoke,
    State,
    Statechart,
    TaskSpec,
    Transition,
)
from approvals.machine.walker import Walker
from approvals.models import (
    LIVE_TASK_STATUSES,
    Branch,
    CallbackStatus,
    CallbackToken,
    Decision,
    InstanceStatus,
    OutboxMessage,
    Task,
    TaskKind,
    TaskRule,
    TaskStatus,
    Timer,
    WorkflowInstance,
)
from approvals.outbox.subscribers import Batch, fan_out
from approvals.roles import role_ids_by_name, role_members
from approvals.sensitive import mask_value, masked
from approvals.services.audit import AuditTrail
from approvals.services.definitions import statechart_for
from approvals.services.errors import Conflict
from approvals.services.locking import lock_live_children

logger = logging.getLogger(__name__)


# Outbox topics of sub-workflow steps (approvals/services/subflows.py): a parent's step starts
# its child after commit; a child's end is told to its parent after commit.
SUBFLOW_START = "subflow.start"
SUBFLOW_ENDED = "subflow.ended"
# A request that ended in a final state with `on_complete_start` starts that workflow after
# commit (approvals/services/triggers.py).
COMPLETION_START = "trigger.complete_start"


class Run(Walker):
    """A walk of the statechart (approvals/machine/walker.py) stored in the database."""

    def __init__(
        self,
        instance: WorkflowInstance,
        chart: Statechart,
        *,
        actor: Any,
        channel: str,
        now: datetime,
    ) -> None:
        self.instance = instance
        self.chart = chart
        logcontext.bind_instance(instance.pk)
        tracing.annotate(workflow=chart.key, instance=instance.pk, from_state=instance.state)
        self._trace_context: dict[str, str] | None = None
        self.actor = actor
        self.channel = channel
        self.now = now
        self.audit = AuditTrail(instance)
        self.outbox: list[OutboxMessage] = []
        self.fields: set[str] = set()
        self.microsteps = 0
        # Every guard and assign of this call draws on one budget: the row lock is held for
        # at most its time of evaluation, however many expressions the call tries.
        self.budget = Budget()
        self._branches: dict[str, Branch] | None = None
        # States whose only live task this run has just closed (rule any keeps one live task
        # per state), so leaving them needs no cancelling UPDATE.
        self.settled_states: set[str] = set()
        # The tasks this run opened or changed and their role ids, handed to the subscribers.
        self.tasks: dict[int, Task] = {}
        self.task_roles: dict[int, list[int]] = {}
        # Set by a withdrawal: the request ends as that, whatever its final state's outcome.
        self.ends_as: str | None = None
        # Set by `end`: the request stops where it is, ending as this (its children learn why).
        self.stopping_as: str | None = None
        # Set when this request is a child cancelled by its parent: the parent needs no word.
        self.cancelled_by_parent = False

    # ----- bookkeeping

    def record(
        self,
        event: str,
        *,
        from_state: str = "",
        to_state: str = "",
        task: Task | None = None,
        data: Mapping[str, Any] | None = None,
        actor: Any = ...,
    ) -> int:
        entry = self.audit.append(
            event=event,
            at=self.now,
            channel=self.channel,
            actor=self.actor if actor is ... else actor,
            from_state=from_state,
            to_state=to_state,
            task_id=task.pk if task is not None else None,
            data=data,
        )
        self.fields.update({"audit_seq", "audit_head"})
        return entry.seq

    def emit(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        key: str,
        available_at: datetime | None = None,
    ) -> None:
        if topic != SUBFLOW_ENDED:
            # A child's output goes to its parent's context, which seals it by its own form.
            payload = masked(payload, self.audit.sensitive)
        self.outbox.append(
            OutboxMessage(
                topic=topic,
                instance_id=self.instance.pk,
                payload=dict(payload),
                idempotency_key=f"{self.instance.pk}:{self.audit.instance.audit_seq}:{key}",
                created_at=self.now,
                available_at=available_at or self.now,
                trace_context=self.trace_context,
            )
        )

    @property
    def trace_context(self) -> dict[str, str]:
        """The service call's span, stored with each message for the delivery's span."""
        if self._trace_context is None:
            self._trace_context = tracing.carrier()
        return self._trace_context

    def commit(self) -> WorkflowInstance:
        """Write what the run collected. Instance last: its conditional UPDATE is the
        ConcurrentTransitionMixin check that nobody moved it meanwhile."""
        metrics.count_run(
            self.chart.key,
            events=self.audit.pending,
            messages=self.outbox,
            tasks=self.tasks,
            now=self.now,
        )
        self.audit.flush()
        if self.outbox:
            fan_out(
                Batch(
                    OutboxMessage.objects.bulk_create(self.outbox),
                    instance=self.instance,
                    actor=self.actor,
                    tasks=self.tasks,
                    task_roles=self.task_roles,
                )
            )
            self.outbox = []
        self.instance.version += 1
        self.instance.updated_at = self.now
        self.fields.update({"version", "updated_at"})
        if self.fields & {"title", "business_key"}:
            self._refresh_search_text()
        try:
            self.instance.save(update_fields=sorted(self.fields))
        except ConcurrentTransition:
            # The row lock makes this unreachable; should it happen, refuse rather than 500.
            raise Conflict(
                "the request changed meanwhile; reload and try again",
                current_state=self.instance.state,
            ) from None
        self.fields = set()
        return self.instance

    def touch(self, task: Task, role_ids: list[int] | None = None) -> None:
        """Note a task this run opened or changed (and its roles, where known), so that the
        subscribers find it without reading it again."""
        self.tasks[task.pk] = task
        if role_ids is not None:
            self.task_roles[task.pk] = role_ids

    # ----- the walker's hooks

    def refused(
        self, message: str, *, current_state: str = "", accepted_events: Iterable[str] = ()
    ) -> Exception:
        return Conflict(message, current_state=current_state, accepted_events=accepted_events)

    def _note_target(self, target: str | None) -> None:
        tracing.annotate(to_state=target)

    def _open_branch(self, region: str, leaf: str) -> Branch:
        return Branch.objects.create(
            instance=self.instance, region=region, state=leaf, opened_at=self.now
        )

    def _move_branch(self, branch: Branch, target: str) -> None:
        branch.move_to(target)
        branch.save(update_fields=["state"])

    def _close_branch(self, branch: Branch) -> None:
        branch.closed_at = self.now
        branch.save(update_fields=["closed_at"])

    def _recorded_event_data(
        self, transition: Transition, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """An event whose data an `assign` writes into a sensitive field may carry that value
        under any name: all of its data but the comment is kept as hashes."""
        if not {name for name, _ in transition.assign} & self.audit.sensitive:
            return dict(data)
        return {
            key: value if key == "comment" else mask_value(value, hashed=True)
            for key, value in data.items()
        }

    def _expression_failed(self, exc: GuardError) -> str:
        """Over its budget, an expression fails whatever the data: the log tells whoever
        maintains the definition."""
        if exc.over_budget:
            definition = self.instance.definition
            logger.warning(
                "request %s (%s version %s): %s",
                self.instance.pk,
                definition.key,
                definition.version,
                exc,
            )
        return super()._expression_failed(exc)

    # ----- where the instance is

    @property
    def branches(self) -> dict[str, Branch]:
        if self._branches is None:
            self._branches = {
                b.region: b for b in self.instance.branches.filter(closed_at__isnull=True)
            }
        return self._branches

    # ----- public moves

    def start(self, trigger: Mapping[str, Any] | None = None) -> None:
        """Enter the initial state of a just-created instance (created in that state);
        `trigger` says what started it where a start trigger did (schedule, hook, the end
        of another request), for its audit trail."""
        initial = self.instance.state
        seq = self.record(
            "instance.started",
            to_state=initial,
            data={
                "context": self.instance.context,
                "title": self.instance.title,
                **({"parent": self.instance.parent_id} if self.instance.parent_id else {}),
                **({"trigger": dict(trigger)} if trigger else {}),
            },
        )
        self.emit("instance.started", {"state": initial}, key="started")
        self._enter_top(initial, visit=seq)

    def withdraw(self, data: Mapping[str, Any]) -> None:
        """The requester stops the request, one way whatever the page: by the state's own
        WITHDRAW where it has one, else straight to the definition's withdrawn state (its entry
        actions run, as on any arrival), else ended where it is. It ends as withdrawn."""
        self.ends_as = InstanceStatus.WITHDRAWN
        if WITHDRAW in self.accepted_events():
            self.fire(WITHDRAW, data)
            return
        target = self.chart.withdrawn_state
        if target is None:
            self.end(InstanceStatus.WITHDRAWN, event="instance.withdrawn", data=dict(data))
            return
        jump = Transition(
            source=self.instance.state,
            trigger="on",
            event=WITHDRAW,
            delay="",
            target=target,
            guard=None,
            assign=(),
            position=-1,
        )
        self._take(jump, data)

    def end(self, outcome: str, *, event: str, data: Mapping[str, Any]) -> None:
        """Stop where it is (withdraw, cancel): close tasks and timers, set the status."""
        top = self.instance.state
        self.stopping_as = self.ends_as or outcome
        self._exit_top(top)
        self._finish(outcome, event=event, data=data)

    def _activate(self, state: State, *, branch: Branch | None, visit: int) -> None:
        if state.task is not None:
            self._create_tasks(state, branch=branch, visit=visit)
        if state.after:
            Timer.objects.bulk_create(
                [
                    Timer(
                        instance=self.instance,
                        branch=branch,
                        state=state.path,
                        visit=visit,
                        delay=delay,
                        due_at=self.now + self._delay(delay),
                    )
                    for delay in state.after
                ]
            )
        if state.invoke is not None and state.invoke.subflow is not None:
            self.emit(
                SUBFLOW_START,
                {
                    "state": state.path,
                    "visit": visit,
                    "src": state.invoke.src,
                    "step": f"{self.instance.pk}:{visit}:{state.path}:{state.invoke.src}",
                },
                key=f"subflow:{state.path}",
            )
        elif state.invoke is not None:
            self.emit(
                "action.invoke",
                {
                    "state": state.path,
                    "visit": visit,
                    "src": state.invoke.src,
                    "input": dict(state.invoke.input),
                    "max_attempts": state.invoke.max_attempts,
                    "backoff": state.invoke.backoff,
                    "delay_seconds": state.invoke.delay.total_seconds(),
                    **self._waits(state.invoke),
                    # One idempotency key per step visit, kept across retries.
                    "step": f"{self.instance.pk}:{visit}:{state.path}:{state.invoke.src}",
                },
                key=f"invoke:{state.path}",
            )

    @staticmethod
    def _waits(invoke: Invoke) -> dict[str, float]:
        """A callback step's waits, in seconds (approvals/services/callbacks.py)."""
        waits = {"timeout_seconds": invoke.timeout, "heartbeat_seconds": invoke.heartbeat}
        return {key: wait.total_seconds() for key, wait in waits.items() if wait is not None}

    def _deactivate(self, state: State, *, branch: Branch | None) -> None:
        if (
            state.task is not None or state.invoke is not None
        ) and state.path not in self.settled_states:
            # The tasks of a state being left are cancelled together, in one UPDATE of the
            # same transaction as the move (an invoke state may hold a manual-review task).
            cancelled = Task.objects.filter(
                instance=self.instance, state=state.path, status__in=LIVE_TASK_STATUSES
            ).update(status=TaskStatus.CANCELLED, closed_at=self.now)
            if cancelled:
                self.emit(
                    "task.cancelled",
                    {"state": state.path, "count": cancelled},
                    key=f"cancel:{state.path}",
                )
        if state.after:
            Timer.objects.filter(
                instance=self.instance,
                state=state.path,
                fired_at__isnull=True,
                cancelled_at__isnull=True,
            ).update(cancelled_at=self.now)
        if state.invoke is not None and state.invoke.subflow and state.invoke.cancel_children:
            self._cancel_children(state)
        if state.invoke is not None and state.invoke.timeout is not None:
            # A callback step left: its token reports nothing any more.
            CallbackToken.objects.filter(
                instance=self.instance, state=state.path, status=CallbackStatus.WAITING
            ).update(status=CallbackStatus.CLOSED)

    def _cancel_children(self, state: State) -> None:
        """Leaving a sub-workflow step (a decision, a timer, a cancel or withdrawal of this
        request) cancels the children it still runs, and theirs in turn, each audited with
        the cause, in this transaction."""
        ending = self.stopping_as or self.ends_as
        if ending is not None:
            cause = f"its parent request #{self.instance.pk} was {ending}"
        else:
            cause = f"its parent request #{self.instance.pk} left the step '{state.label}'"
        for child in lock_live_children(parent_id=self.instance.pk, state=state.path):
            run = Run(
                child,
                statechart_for(child.definition),
                actor=self.actor,
                channel=self.channel,
                now=self.now,
            )
            run.cancelled_by_parent = True
            run.end(
                InstanceStatus.CANCELLED,
                event="instance.cancelled",
                data={"reason": f"cancelled because {cause}", "parent": self.instance.pk},
            )
            run.commit()
            logcontext.bind_instance(self.instance.pk)
            self.record(
                "subflow.cancelled",
                to_state=state.path,
                data={"child": child.pk, "reason": f"sub-request #{child.pk} cancelled: {cause}"},
            )

    def _delay(self, delay: str) -> timedelta:
        try:
            return self.chart.delay(delay, self.instance.context)
        except DurationError as exc:
            raise Conflict(
                f"the timer after {delay} cannot start: {exc}", current_state=self.instance.state
            ) from None

    def _run_actions(self, names: Iterable[str], state: State, phase: str) -> None:
        for name in names:
            self.emit(
                "action.run",
                {"state": state.path, "action": name, "phase": phase},
                key=f"{phase}:{state.path}:{name}",
            )

    # ----- tasks

    def _create_tasks(self, state: State, *, branch: Branch | None, visit: int) -> None:
        assert state.task is not None
        spec = self._from_context(state.task)
        due_at = self.chart.deadline(self.now, spec.sla) if spec.sla else None
        next_remind = self.chart.deadline(self.now, min(spec.remind)) if spec.remind else None
        common = dict(
            branch=branch,
            state=state.path,
            visit=visit,
            label=spec.label or state.label,
            created_at=self.now,
            due_at=due_at,
            next_remind_at=next_remind,
            sla_started_at=self.now if due_at or next_remind else None,
        )
        if spec.requester:
            tasks = [
                self.new_task(
                    **common,
                    for_requester=True,
                    forbid_requester=False,
                    assignee=self.instance.requester,
                    status=TaskStatus.CLAIMED,
                    claimed_at=self.now,
                )
            ]
            groups_per_task: list[list[str]] = [[]]
        elif spec.rule == "all":
            common["forbid_requester"] = spec.forbid_requester
            tasks = [self.new_task(**common, rule=TaskRule.ALL) for _ in spec.roles]
            groups_per_task = [[role] for role in spec.roles]
        elif spec.rule == "everyone":
            common["forbid_requester"] = spec.forbid_requester
            tasks = [
                self.new_task(
                    **common,
                    rule=TaskRule.EVERYONE,
                    assignee_id=member,
                    status=TaskStatus.CLAIMED,
                    claimed_at=self.now,
                )
                for member in self._everyone_in(spec, state.path)
            ]
            groups_per_task = [list(spec.roles) for _ in tasks]
        else:
            common["forbid_requester"] = spec.forbid_requester
            rule = TaskRule.QUORUM if spec.rule == "quorum" else TaskRule.ANY
            manager = self._manager_for(spec, state.path)
            if manager is not None:
                assignee_id, absent_id, assigned_as = manager
                tasks = [
                    self.new_task(
                        **common,
                        rule=rule,
                        assignee_id=assignee_id,
                        on_behalf_of_id=absent_id,
                        assigned_as=assigned_as,
                        status=TaskStatus.CLAIMED,
                        claimed_at=self.now,
                    )
                ]
            else:
                tasks = [self.new_task(**common, rule=rule) for _ in range(spec.approvals_needed)]
            groups_per_task = [list(spec.roles) for _ in tasks]
        created = Task.objects.bulk_create(tasks)
        self._link_groups(created, groups_per_task)
        self._exclude(created, self._deciders_of(self.chart.segregated_from(state.path)))
        for task, groups in zip(created, groups_per_task, strict=True):
            self.record(
                "task.created",
                to_state=state.path,
                task=task,
                data={
                    "roles": groups,
                    "assignee": task.assignee_id,
                    "due_at": task.due_at.isoformat() if task.due_at else None,
                    **self._org_chart_data(task),
                },
            )
            self.emit(
                "task.created",
                {
                    "task": task.pk,
                    "state": state.path,
                    "roles": groups,
                    "assignee": task.assignee_id,
                },
                key=f"task:{task.pk}",
            )

    def _manager_for(self, spec: TaskSpec, state_path: str) -> tuple[int, int | None, str] | None:
        """For a step that goes to a manager: (assignee, the absent manager they cover for or
        None, why: "manager of Alice Anders"). None where the org chart has no one who may
        decide it (no manager, inactive, the requester, kept out by four eyes): the roles do."""
        if not spec.assignee and not spec.manager_of:
            return None
        if spec.assignee:
            below = self.instance.requester
        else:
            username = self.instance.context.get(spec.manager_of)
            below = (
                get_user_model().objects.filter(username=username).first()
                if isinstance(username, str) and username
                else None
            )
        chain = []
        person = below
        for _ in range(spec.skip_levels + 1):
            person = person.manager if person is not None else None
            if person is None:
                return None
            chain.append(person)
        if not person.is_active or (
            spec.forbid_requester and person.pk == self.instance.requester_id
        ):
            return None
        if person.pk in self._deciders_of(self.chart.segregated_from(state_path)):
            return None
        why = f"manager of {below}"
        if spec.skip_levels:
            why = f"manager of {chain[-2]}, {spec.skip_levels + 1} levels above {below}"
        assignee_id, absent_id = resolve_assignee(person.pk, local_day(self.now))
        return assignee_id, absent_id, why

    @staticmethod
    def _org_chart_data(task: Task) -> dict[str, Any]:
        """For the audit: whom the org chart gave the task to and why, by username."""
        if not task.assigned_as:
            return {}
        ids = [task.assignee_id, task.on_behalf_of_id]
        names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
        data = {"assigned_to": names[task.assignee_id], "assigned_as": task.assigned_as}
        if task.on_behalf_of_id:
            data["on_behalf_of"] = names[task.on_behalf_of_id]
        return data

    def _everyone_in(self, spec: TaskSpec, state_path: str) -> list[int]:
        """The active members of a step's roles, each once, the requester left out where the
        step forbids them; a step no one could decide is refused rather than left stuck."""
        ids = self._role_ids(set(spec.roles))
        members = set().union(*role_members(set(ids.values())).values())
        if spec.forbid_requester:
            members.discard(self.instance.requester_id)
        # Under four eyes, a member who decided a step this one is segregated from is not asked.
        members -= self._deciders_of(self.chart.segregated_from(state_path))
        if not members:
            raise Conflict(
                f"every member of {', '.join(spec.roles)} must approve this step, but there is "
                "no one who may; an admin must add members",
                current_state=self.instance.state,
            )
        return sorted(members)

    # ----- four eyes

    def _deciders_of(self, states: frozenset[str]) -> set[int]:
        """Who decided any of these steps of this request, in their own right or covering."""
        if not states:
            return set()
        return set(
            Decision.objects.filter(
                task__instance=self.instance, task__state__in=states
            ).values_list("actor_id", flat=True)
        )

    def _exclude(self, tasks: list[Task], user_ids: set[int]) -> None:
        if not user_ids or not tasks:
            return
        through = Task.excluded_users.through
        through.objects.bulk_create(
            [through(task_id=t.pk, user_id=u) for t in tasks for u in user_ids],
            ignore_conflicts=True,
        )

    def exclude_decider(self, task: Task, user_id: int) -> None:
        """`user_id` decided `task`: the live tasks of this request's other steps that are
        segregated from its step may no longer be decided by them (parallel steps)."""
        if not self.chart.segregates:
            return
        live = Task.objects.filter(instance=self.instance, status__in=LIVE_TASK_STATUSES).exclude(
            state=task.state
        )
        self._exclude(
            [t for t in live if task.state in self.chart.segregated_from(t.state)], {user_id}
        )

    def new_task(self, *, label: str, **fields: Any) -> Task:
        """An unsaved task of this request, carrying its definition and its search words."""
        return Task(
            instance=self.instance,
            definition_id=self.instance.definition_id,
            search_text=Task.search_text_for(self.instance, label),
            label=label,
            **fields,
        )

    def _refresh_search_text(self) -> None:
        """The request's title or reference changed: every task of it searches by the new one."""
        tasks = Task.objects.filter(instance=self.instance)
        for label in set(tasks.values_list("label", flat=True)):
            tasks.filter(label=label).update(search_text=Task.search_text_for(self.instance, label))

    def _link_groups(self, tasks: list[Task], groups_per_task: list[list[str]]) -> None:
        names = {name for names in groups_per_task for name in names}
        ids = self._role_ids(names) if names else {}
        for task, task_names in zip(tasks, groups_per_task, strict=True):
            self.touch(task, [ids[name] for name in task_names])
        if not names:
            return
        through = Task.candidate_groups.through
        through.objects.bulk_create(
            [
                through(task_id=task.pk, group_id=ids[name])
                for task, task_names in zip(tasks, groups_per_task, strict=True)
                for name in task_names
            ]
        )

    def _role_ids(self, names: set[str]) -> dict[str, int]:
        ids = role_ids_by_name(names)
        missing = names - set(ids)
        if missing:
            raise Conflict(
                f"role(s) {', '.join(sorted(missing))} no longer exist; "
                "an admin must recreate them",
                current_state=self.instance.state,
            )
        return ids

    def copy_task(self, task: Task, *, role_ids: list[int] | None = None, **changes: Any) -> Task:
        """A successor of a live task (delegation, reassignment, escalation): the same step,
        deadline and roles unless `changes` / `role_ids` say otherwise."""
        fields: dict[str, Any] = dict(
            branch_id=task.branch_id,
            state=task.state,
            visit=task.visit,
            label=task.label,
            for_requester=task.for_requester,
            forbid_requester=task.forbid_requester,
            rule=task.rule,
            previous=task,
            escalation_level=task.escalation_level,
            created_at=self.now,
            due_at=task.due_at,
            next_remind_at=task.next_remind_at,
            kind=task.kind,
            sla_started_at=task.sla_started_at,
            reminders_sent=task.reminders_sent,
            breached_at=task.breached_at,
        )
        fields.update(changes)
        successor = self.new_task(**fields)
        successor.save(force_insert=True)
        if role_ids is None:
            role_ids = list(task.candidate_groups.values_list("pk", flat=True))
        if role_ids:
            # A new row has no links yet: one INSERT, without set()'s read of the current ones.
            through = Task.candidate_groups.through
            through.objects.bulk_create(
                [through(task_id=successor.pk, group_id=role_id) for role_id in role_ids]
            )
        if self.chart.segregated_from(task.state):
            self._exclude([successor], set(task.excluded_users.values_list("pk", flat=True)))
        self.touch(task)
        self.touch(successor, role_ids)
        return successor

    def roles_of(self, task: Task) -> list[str]:
        """The roles a task is offered to: from the definition where its level says which
        (successors keep their predecessor's roles), read otherwise."""
        if task.for_requester:
            return []
        spec = self.chart.state(task.state).task
        if spec is not None and task.kind == TaskKind.DECISION:
            if task.escalation_level and task.escalation_level <= len(spec.escalate_to):
                return [spec.escalate_to[task.escalation_level - 1]]
            if task.escalation_level == 0 and task.rule != TaskRule.ALL and not spec.roles_from:
                return sorted(spec.roles)
        return sorted(task.candidate_groups.values_list("name", flat=True))

    def siblings_pending(self, task: Task) -> bool:
        """Other approvals this visit still needs (rules all and quorum)."""
        return (
            Task.objects.filter(
                instance=self.instance,
                state=task.state,
                visit=task.visit,
                status__in=LIVE_TASK_STATUSES,
            )
            .exclude(pk=task.pk)
            .exists()
        )

    # ----- the end

    def _finish(self, outcome: str, *, event: str, data: Mapping[str, Any]) -> None:
        outcome = self.ends_as or outcome
        self.instance.finish(outcome)
        self.instance.completed_at = self.now
        self.fields.update({"status", "completed_at"})
        if self.chart.has_timers:
            Timer.objects.filter(
                instance=self.instance, fired_at__isnull=True, cancelled_at__isnull=True
            ).update(cancelled_at=self.now)
        self.record(
            event,
            from_state=self.instance.state,
            to_state=self.instance.state,
            data={**data, "outcome": outcome},
        )
        self.emit(
            "instance.completed",
            {"outcome": outcome, "state": self.instance.state},
            key="completed",
        )
        if self.instance.parent_id is not None and not self.cancelled_by_parent:
            self._tell_parent(outcome)
        final = self.chart.state(self.instance.state)
        if event == "instance.completed" and final.complete_start is not None:
            self.emit(
                COMPLETION_START,
                {"state": final.path, "workflow": str(final.complete_start.workflow)},
                key="complete-start",
            )

    def _tell_parent(self, outcome: str) -> None:
        """A child's end goes to its parent after commit (`subflows.subflow_ended` locks the
        parent by id then): never the parent's lock inside the child's transaction."""
        payload: dict[str, Any] = {
            "parent": self.instance.parent_id,
            "parent_state": self.instance.parent_state,
            "parent_visit": self.instance.parent_visit,
            "parent_index": self.instance.parent_index,
            "outcome": outcome,
            "state": self.instance.state,
            "output": {},
        }
        final = self.chart.state(self.instance.state)
        if outcome == InstanceStatus.COMPLETED and final.is_final:
            try:
                payload["output"] = {
                    name: expression.evaluate(self.instance.context, None, budget=self.budget)
                    for name, expression in final.output
                }
            except ExpressionError as exc:
                payload["output_error"] = f"its output could not be computed: {exc}"
        self.emit(SUBFLOW_ENDED, payload, key="subflow-ended")
