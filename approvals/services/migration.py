"""Migration of running requests from one version of a workflow to another.

A published version is immutable and its requests normally finish on it (invariant 5); a
migration is the one deliberate exception, asked for by an operator with a mapping of states
(`old_state=new_state`, identity where a state keeps its path). It is planned first, read-only,
for every active request of the old version: what each active state becomes, which open tasks
are kept (assignee, history and due date kept, the due date recomputed on request), closed or
opened, which `after` timers are kept, cancelled or started. A request that does not pass the
checks is left untouched and listed with the reason. Each request is then migrated in its own
transaction, on its locked row, re-planned on what the lock shows, with an `instance.migrated`
audit event on its chain ("migrated from v3 to v4 (manager_review → manager_review)").

A migration moves a request; it does not take transitions: entry and exit actions, `always` and
automated steps do not run, so a state that holds an automated step must keep its path and its
action, and no state may be mapped into one that would have to start an automated step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from approvals import tracing
from approvals.machine.statechart import State, Statechart, TaskSpec
from approvals.models import (
    LIVE_TASK_STATUSES,
    Branch,
    Channel,
    DefinitionStatus,
    InstanceStatus,
    Task,
    TaskKind,
    TaskStatus,
    Timer,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.request_schema import form_errors, with_defaults
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import Conflict, InvalidInput
from approvals.services.locking import lock_instance

MIGRATED = "instance.migrated"
SLA_KEPT = "kept"
SLA_RECOMPUTED = "recomputed"


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """`old_state=new_state` items as a dict; InvalidInput names the item that is not one."""
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = str(item).partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new or "=" in new:
            raise InvalidInput(
                f"mapping '{item}' is not old_state=new_state",
                {"map": [f"'{item}': write it as old_state=new_state."]},
            )
        if old in mapping and mapping[old] != new:
            raise InvalidInput(
                f"mapping names '{old}' twice ({mapping[old]}, {new})",
                {"map": [f"'{old}' is mapped twice."]},
            )
        mapping[old] = new
    return mapping


@dataclass(frozen=True)
class Migration:
    """A checked request to move the active requests of `source` to `target`."""

    source: WorkflowDefinition
    target: WorkflowDefinition
    source_chart: Statechart
    target_chart: Statechart
    mapping: Mapping[str, str]
    only: frozenset[int] | None = None
    recompute_sla: bool = False

    def new_path(self, old: str) -> str:
        return self.mapping.get(old, old)

    @property
    def words(self) -> str:
        return f"v{self.source.version} to v{self.target.version}"


def _refuse(message: str, where: str = "map") -> InvalidInput:
    return InvalidInput(message, {where: [message[:1].upper() + message[1:] + "."]})


def migration_prepare(
    *,
    key: str,
    from_version: int,
    to_version: int,
    mapping: Mapping[str, str] | None = None,
    only: Iterable[int] | None = None,
    recompute_sla: bool = False,
) -> Migration:
    """The versions and the mapping, checked: InvalidInput names what is wrong (a version that
    does not exist or is not published, the same version twice, a state either version lacks,
    a mapping between states of different kinds). Reads only."""
    versions = {d.version: d for d in WorkflowDefinition.objects.filter(key=key)}
    if not versions:
        raise _refuse(f"no workflow definition with the key '{key}'", "workflow")
    known = ", ".join(str(v) for v in sorted(versions))
    for flag, number in (("from", from_version), ("to", to_version)):
        if number not in versions:
            raise _refuse(f"{key} has no version {number} (it has {known})", flag)
    if from_version == to_version:
        raise _refuse(f"--from and --to are both version {from_version}; nothing to migrate", "to")
    source, target = versions[from_version], versions[to_version]
    if source.status == DefinitionStatus.DRAFT:
        raise _refuse(f"{key} v{from_version} is a draft; it has no requests", "from")
    if target.status != DefinitionStatus.PUBLISHED:
        raise _refuse(
            f"{key} v{to_version} is {target.status}; requests move only to the published version",
            "to",
        )
    migration = Migration(
        source=source,
        target=target,
        source_chart=statechart_for(source),
        target_chart=statechart_for(target),
        mapping=dict(mapping or {}),
        only=frozenset(only) if only is not None else None,
        recompute_sla=recompute_sla,
    )
    for old, new in migration.mapping.items():
        problem = _mapping_problem(migration, old, new)
        if problem:
            raise _refuse(f"--map {old}={new}: {problem}")
    return migration


def _kind(chart: Statechart, path: str) -> str:
    state = chart.state(path)
    if state.parent is None:
        return "a parallel state" if state.is_parallel else "a top-level state"
    if state.type == "compound":
        return "a region"
    return "a state inside a region"


def _mapping_problem(migration: Migration, old: str, new: str) -> str:
    source, target = migration.source_chart, migration.target_chart
    if old not in source.states:
        return f"v{migration.source.version} has no state '{old}'"
    if new not in target.states:
        return f"v{migration.target.version} has no state '{new}'"
    old_kind, new_kind = _kind(source, old), _kind(target, new)
    if old_kind == "a region":
        return "a region is not mapped itself; map the states inside it"
    if old_kind != new_kind:
        return f"'{old}' is {old_kind} but '{new}' is {new_kind}"
    if target.state(new).is_final and not source.state(old).is_final:
        return f"'{new}' is a final state; a migration does not end requests"
    return ""


# ----- the plan of one request


@dataclass
class TaskChange:
    task_id: int
    old_state: str
    new_state: str
    assignee: str
    due_at: datetime | None
    new_due_at: datetime | None = None
    new_remind_at: datetime | None = None


@dataclass
class RequestPlan:
    """What migrating one request does, or why it cannot be migrated (`problem`)."""

    instance_id: int
    title: str
    version_words: str
    moves: list[tuple[str, str]] = field(default_factory=list)
    top: tuple[str, str] = ("", "")
    branches: dict[int, tuple[str, str]] = field(default_factory=dict)  # branch id: region, leaf
    kept: list[TaskChange] = field(default_factory=list)
    closed: list[TaskChange] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)  # states whose tasks open anew
    timers_kept: list[int] = field(default_factory=list)
    timers_cancelled: list[int] = field(default_factory=list)
    timers_started: list[tuple[str, str, int | None]] = field(default_factory=list)
    sla: str = SLA_KEPT
    context: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    @property
    def summary(self) -> str:
        """ "migrated from v3 to v4 (manager_review → manager_review)"."""
        moves = ", ".join(f"{old} → {new}" for old, new in self.moves)
        return f"migrated from {self.version_words} ({moves})"

    def lines(self) -> list[str]:
        """The plan in words, one line each, for the dry run."""
        head = f"#{self.instance_id} {self.title}"
        if self.problem:
            return [f"{head}: refused: {self.problem}"]
        lines = [f"{head}: {self.summary}"]
        for change in self.kept:
            due = "no due date"
            if self.sla == SLA_RECOMPUTED:
                due = f"due {_when(change.due_at)} → {_when(change.new_due_at)} (SLA recomputed)"
            elif change.due_at:
                due = f"due {_when(change.due_at)} (SLA kept)"
            lines.append(
                f"  task #{change.task_id} kept in {change.new_state} "
                f"({change.assignee or 'unassigned'}, {due})"
            )
        for change in self.closed:
            lines.append(f"  task #{change.task_id} in {change.old_state} closed")
        for state in self.opened:
            lines.append(f"  a task opens in {state}")
        if self.timers_cancelled:
            lines.append(f"  {len(self.timers_cancelled)} time limit(s) cancelled")
        for state, delay, _ in self.timers_started:
            lines.append(f"  time limit 'after {delay}' of {state} starts now")
        for name, value in self.defaults.items():
            lines.append(f"  field {name} gets its default {value!r}")
        return lines

    @property
    def headline(self) -> str:
        return self.lines()[0]

    @property
    def details(self) -> list[str]:
        return [line.strip() for line in self.lines()[1:]]

    def audit_data(self, migration: Migration) -> dict[str, Any]:
        return {
            "from_version": migration.source.version,
            "to_version": migration.target.version,
            "moves": [list(move) for move in self.moves],
            "branches": {region: leaf for region, leaf in self.branches.values()},
            "tasks_kept": [[c.task_id, c.new_state] for c in self.kept],
            "tasks_closed": [c.task_id for c in self.closed],
            "sla": self.sla,
            **({"defaults": self.defaults} if self.defaults else {}),
            "message": self.summary,
        }


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else "none"


def _same_work(old: TaskSpec, new: TaskSpec) -> bool:
    """Whether a live task of the old step is still the new step's task: the same people are
    asked the same way. Otherwise it is closed and the new step's tasks open."""
    return (
        old.requester == new.requester
        and old.rule == new.rule
        and old.approvals_needed == new.approvals_needed
        and set(old.roles) == set(new.roles)
        and old.roles_from == new.roles_from
        and (old.assignee, old.manager_of, old.skip_levels)
        == (new.assignee, new.manager_of, new.skip_levels)
    )


def plan_request(
    migration: Migration,
    instance: WorkflowInstance,
    *,
    branches: list[Branch],
    tasks: list[Task],
    timers: list[Timer],
    now: datetime,
) -> RequestPlan:
    """What migrating this request would do, computed from its rows (read-only)."""
    plan = RequestPlan(instance.pk, instance.title, migration.words)
    try:
        _plan_states(migration, instance, branches, plan)
        _plan_context(migration, instance, plan)
        _plan_tasks(migration, instance, tasks, plan, now)
        _plan_timers(migration, timers, plan)
    except _Refused as exc:
        plan.problem = str(exc)
    return plan


class _Refused(Exception):
    pass


def _plan_states(
    migration: Migration, instance: WorkflowInstance, branches: list[Branch], plan: RequestPlan
) -> None:
    source, target = migration.source_chart, migration.target_chart
    top = instance.state
    new_top = migration.new_path(top)
    if new_top not in target.states:
        raise _Refused(
            f"its state '{top}' does not exist in v{migration.target.version}; "
            f"map it with --map {top}=<state of v{migration.target.version}>"
        )
    old_state, new_state = source.state(top), target.state(new_top)
    if old_state.is_parallel != new_state.is_parallel or new_state.parent is not None:
        raise _Refused(f"'{top}' and '{new_top}' are not the same kind of state")
    if new_state.is_final:
        raise _Refused(f"'{new_top}' is a final state; a migration does not end requests")
    plan.top = (top, new_top)
    plan.moves.append((top, new_top))
    _check_step(migration, old_state, new_state)
    if not old_state.is_parallel:
        return
    regions: dict[str, str] = {}
    for branch in branches:
        leaf = migration.new_path(branch.state)
        if leaf not in target.states:
            raise _Refused(
                f"its state '{branch.state}' does not exist in v{migration.target.version}; "
                f"map it with --map {branch.state}=<state of v{migration.target.version}>"
            )
        region = target.state(leaf).parent
        if region is None or target.state(region).parent != new_top:
            raise _Refused(f"'{leaf}' is not inside a region of '{new_top}'")
        if region in regions:
            raise _Refused(f"'{regions[region]}' and '{branch.state}' would both be in {region}")
        if source.state(branch.state).is_final != target.state(leaf).is_final:
            raise _Refused(f"'{branch.state}' and '{leaf}' differ in being final")
        _check_step(migration, source.state(branch.state), target.state(leaf))
        regions[region] = branch.state
        plan.branches[branch.pk] = (region, leaf)
        plan.moves.append((branch.state, leaf))
    missing = [r for r in target.regions(new_top) if r not in regions]
    if missing:
        raise _Refused(
            f"no state of it is mapped into the region(s) {', '.join(missing)} of "
            f"'{new_top}' in v{migration.target.version}"
        )


def _check_step(migration: Migration, old: State, new: State) -> None:
    """Automated steps are neither moved nor started by a migration."""
    if old.invoke is not None and (
        new.invoke is None or new.invoke.src != old.invoke.src or new.path != old.path
    ):
        raise _Refused(
            f"'{old.path}' runs the automated step {old.invoke.src}; it must keep its path and "
            "its action in the new version"
        )
    if new.invoke is not None and old.invoke is None:
        raise _Refused(
            f"'{new.path}' runs the automated step {new.invoke.src}, which a migration does "
            "not start"
        )


def _plan_context(migration: Migration, instance: WorkflowInstance, plan: RequestPlan) -> None:
    form = migration.target_chart.form
    context = with_defaults(form, instance.context)
    errors = form_errors(form, context)
    if errors:
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in sorted(errors.items()))
        raise _Refused(f"its data does not fit the form of v{migration.target.version}: {details}")
    plan.context = context
    plan.defaults = {k: v for k, v in context.items() if k not in instance.context}


def _plan_tasks(
    migration: Migration,
    instance: WorkflowInstance,
    tasks: list[Task],
    plan: RequestPlan,
    now: datetime,
) -> None:
    source, target = migration.source_chart, migration.target_chart
    moved = dict(plan.moves)
    plan.sla = SLA_RECOMPUTED if migration.recompute_sla else SLA_KEPT
    by_state: dict[str, list[Task]] = {}
    for task in tasks:
        if task.state not in moved:
            new = migration.new_path(task.state)
            if new not in target.states:
                raise _Refused(
                    f"its open task #{task.pk} is in '{task.state}', which "
                    f"v{migration.target.version} does not have; map it with --map"
                )
            moved[task.state] = new
        by_state.setdefault(task.state, []).append(task)
    for old_path, new_path in moved.items():
        old_spec = source.state(old_path).task if old_path in source.states else None
        new_spec = target.state(new_path).task
        live = by_state.get(old_path, [])
        keep = (
            old_spec is not None and new_spec is not None and _same_work(old_spec, new_spec)
        ) or (old_spec is None and new_spec is None)
        for task in live:
            change = TaskChange(
                task.pk,
                old_path,
                new_path,
                str(task.assignee) if task.assignee_id else "",
                task.due_at,
            )
            if keep or task.kind != TaskKind.DECISION:
                if migration.recompute_sla:
                    _recompute(target, new_spec, task, change, now)
                plan.kept.append(change)
            else:
                plan.closed.append(change)
        # A step whose work changed opens the new step's tasks, as entering it would.
        if new_spec is not None and old_path in dict(plan.moves) and not keep:
            plan.opened.append(new_path)


def _recompute(
    chart: Statechart, spec: TaskSpec | None, task: Task, change: TaskChange, now: datetime
) -> None:
    """The task's deadlines as the new step sets them, counted from when its SLA started."""
    anchor = task.sla_started_at or task.created_at
    change.new_due_at = chart.deadline(anchor, spec.sla) if spec and spec.sla else None
    reminders = sorted(chart.deadline(anchor, r) for r in (spec.remind if spec else ()))
    ahead = [at for at in reminders if at > now]
    change.new_remind_at = ahead[0] if ahead else None


def _plan_timers(migration: Migration, timers: list[Timer], plan: RequestPlan) -> None:
    source, target = migration.source_chart, migration.target_chart
    moved = dict(plan.moves)
    for timer in timers:
        new = moved.get(timer.state)
        if new is not None and timer.delay in target.state(new).after:
            plan.timers_kept.append(timer.pk)
        else:
            plan.timers_cancelled.append(timer.pk)
    branch_of = {leaf: pk for pk, (_, leaf) in plan.branches.items()}
    for old, new in plan.moves:
        for delay in target.state(new).after:
            # A delay the old state had runs on (or has fired); only a new one starts.
            if delay not in source.state(old).after:
                plan.timers_started.append((new, delay, branch_of.get(new)))


# ----- reading and migrating


def _rows(
    migration: Migration, instance: WorkflowInstance
) -> tuple[list[Branch], list[Task], list[Timer]]:
    """The request's open branches, live tasks and pending timers (those its versions can
    have: no query for branches outside a parallel state, nor for timers where neither
    version has any)."""
    branches: list[Branch] = []
    if migration.source_chart.state(instance.state).is_parallel:
        branches = list(instance.branches.filter(closed_at__isnull=True).order_by("pk"))
    tasks = list(
        instance.tasks.filter(status__in=LIVE_TASK_STATUSES)
        .select_related("assignee")
        .order_by("pk")
    )
    timers: list[Timer] = []
    if migration.source_chart.has_timers or migration.target_chart.has_timers:
        timers = list(
            instance.timers.filter(fired_at__isnull=True, cancelled_at__isnull=True).order_by("pk")
        )
    return branches, tasks, timers


def candidates(migration: Migration) -> Any:
    """The active requests of the old version the migration is about, in id order."""
    queryset = WorkflowInstance.objects.filter(
        definition=migration.source, status=InstanceStatus.ACTIVE
    ).order_by("pk")
    if migration.only is not None:
        queryset = queryset.filter(pk__in=migration.only)
    return queryset


def migration_plan(migration: Migration, *, now: datetime) -> list[RequestPlan]:
    """The dry run: each candidate request's plan. Writes nothing."""
    return [
        plan_request(migration, instance, **_rows_by_name(migration, instance), now=now)
        for instance in candidates(migration).select_related("definition")
    ]


def _rows_by_name(migration: Migration, instance: WorkflowInstance) -> dict[str, Any]:
    branches, tasks, timers = _rows(migration, instance)
    return {"branches": branches, "tasks": tasks, "timers": timers}


@tracing.service_span("signoff.instance_migrate")
@transaction.atomic
def instance_migrate(
    *,
    migration: Migration,
    instance_id: int,
    actor: Any,
    now: datetime,
    channel: str = Channel.SYSTEM,
) -> RequestPlan | None:
    """Migrate one request on its locked row: its plan as carried out, None when it is no
    longer an active request of the old version (moved on or migrated meanwhile). Conflict,
    with nothing written, when it does not pass the checks."""
    instance = lock_instance(instance_id=instance_id)
    if instance.definition_id != migration.source.pk or not instance.is_active:
        return None
    branches, tasks, timers = _rows(migration, instance)
    plan = plan_request(migration, instance, branches=branches, tasks=tasks, timers=timers, now=now)
    if plan.problem:
        raise Conflict(plan.problem, current_state=instance.state)
    _carry_out(migration, instance, plan, branches, tasks, actor=actor, channel=channel, now=now)
    return plan


def _carry_out(
    migration: Migration,
    instance: WorkflowInstance,
    plan: RequestPlan,
    branches: list[Branch],
    tasks: list[Task],
    *,
    actor: Any,
    channel: str,
    now: datetime,
) -> None:
    target = migration.target_chart
    old_top, new_top = plan.top
    instance.definition = migration.target
    run = Run(instance, target, actor=actor, channel=channel, now=now)
    run.fields.add("definition")
    run.set_context(plan.context)
    seq = run.record(
        MIGRATED, from_state=old_top, to_state=new_top, data=plan.audit_data(migration)
    )
    if new_top != old_top:
        instance.move_to(new_top)
        run.fields.add("state")
        run.emit("instance.state_changed", {"from": old_top, "to": new_top}, key="state")
    by_id = {b.pk: b for b in branches}
    for pk, (region, leaf) in plan.branches.items():
        branch = by_id[pk]
        if (branch.region, branch.state) != (region, leaf):
            branch.region = region
            branch.move_to(leaf)
            branch.save(update_fields=["region", "state"])
    _carry_out_tasks(run, plan, {t.pk: t for t in tasks}, now)
    _carry_out_timers(run, plan, seq, now)
    branch_by_leaf = {leaf: by_id[pk] for pk, (_, leaf) in plan.branches.items()}
    for path in plan.opened:
        run._create_tasks(target.state(path), branch=branch_by_leaf.get(path), visit=seq)
    run.commit()


def _carry_out_tasks(run: Run, plan: RequestPlan, tasks: dict[int, Task], now: datetime) -> None:
    target = run.chart
    for change in plan.kept:
        task = tasks[change.task_id]
        task.state = change.new_state
        task.definition_id = run.instance.definition_id
        fields = ["state", "definition"]
        if plan.sla == SLA_RECOMPUTED:
            task.due_at, task.next_remind_at = change.new_due_at, change.new_remind_at
            fields += ["due_at", "next_remind_at"]
        spec = target.state(change.new_state).task
        label = (spec.label if spec else "") or target.state(change.new_state).label
        if task.kind == TaskKind.DECISION and label != task.label:
            task.label = label
            task.search_text = Task.search_text_for(run.instance, label)
            fields += ["label", "search_text"]
        task.save(update_fields=fields)
        run.touch(task)
    closed = [c.task_id for c in plan.closed]
    if closed:
        Task.objects.filter(pk__in=closed, status__in=LIVE_TASK_STATUSES).update(
            status=TaskStatus.CANCELLED, closed_at=now
        )
        for state in sorted({c.old_state for c in plan.closed}):
            count = sum(1 for c in plan.closed if c.old_state == state)
            run.emit("task.cancelled", {"state": state, "count": count}, key=f"cancel:{state}")


def _carry_out_timers(run: Run, plan: RequestPlan, seq: int, now: datetime) -> None:
    moved = dict(plan.moves)
    for timer in Timer.objects.filter(pk__in=plan.timers_kept):
        new = moved[timer.state]
        if new != timer.state:
            Timer.objects.filter(pk=timer.pk).update(state=new)
    if plan.timers_cancelled:
        Timer.objects.filter(pk__in=plan.timers_cancelled).update(cancelled_at=now)
    if plan.timers_started:
        Timer.objects.bulk_create(
            [
                Timer(
                    instance=run.instance,
                    branch_id=branch_id,
                    state=state,
                    visit=seq,
                    delay=delay,
                    due_at=now + run._delay(delay),
                )
                for state, delay, branch_id in plan.timers_started
            ]
        )


@dataclass
class MigrationResult:
    migrated: list[RequestPlan] = field(default_factory=list)
    refused: list[RequestPlan] = field(default_factory=list)


def migration_run(
    migration: Migration, *, actor: Any, now: datetime, channel: str = Channel.SYSTEM
) -> MigrationResult:
    """Migrate every candidate request, each in its own transaction; those that fail a check
    are left untouched and listed with the reason. A second run finds nothing to do."""
    result = MigrationResult()
    ids = list(candidates(migration).values_list("pk", flat=True))
    titles = dict(WorkflowInstance.objects.filter(pk__in=ids).values_list("pk", "title"))
    for instance_id in ids:
        try:
            plan = instance_migrate(
                migration=migration, instance_id=instance_id, actor=actor, now=now, channel=channel
            )
        except Conflict as exc:
            result.refused.append(
                RequestPlan(instance_id, titles[instance_id], migration.words, problem=exc.message)
            )
            continue
        if plan is not None:
            result.migrated.append(plan)
    return result
