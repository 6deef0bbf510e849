"""Human work on tasks: claim, unclaim, decide, delegate, reassign."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.absences import local_day, resolve_assignee
from accounts.people import choosable_people
from approvals import tracing
from approvals.formatting import moment
from approvals.links import absolute, task_path
from approvals.machine.statechart import APPROVE, WITHDRAW
from approvals.machine.titles import placeholders, render_title
from approvals.models import (
    Ask,
    Channel,
    Decision,
    FailedAction,
    FailedActionResolution,
    InstanceStatus,
    Task,
    TaskKind,
    TaskRule,
    TaskStatus,
    WorkflowInstance,
)
from approvals.permissions import (
    can_operate,
    can_view_task,
    covering_for,
    four_eyes_refusal,
    task_refusal,
)
from approvals.request_schema import form_errors
from approvals.roles import role_ids_by_name
from approvals.services import signatures
from approvals.services.artifacts import current_versions, require_artifacts
from approvals.services.asks import approved_arguments
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import (
    AlreadyDecided,
    Conflict,
    InvalidInput,
    NotAllowed,
    WorkflowError,
)
from approvals.services.instances import MAX_TITLE
from approvals.services.locking import lock_task

# Saying no, or sending a request back, must tell the requester why.
EVENTS_NEEDING_COMMENT = frozenset({"REJECT", "REQUEST_CHANGES"})
MAX_COMMENT = 5000


@dataclass(frozen=True)
class DecisionResult:
    task: Task
    instance: WorkflowInstance
    moved: bool  # False while an all/quorum rule still waits for other approvals


def _locked_task(
    task_id: int, *, actor: Any, channel: str, now: datetime
) -> tuple[WorkflowInstance, Task, Run]:
    instance, task = lock_task(task_id=task_id, actor=actor)
    run = Run(instance, statechart_for(instance.definition), actor=actor, channel=channel, now=now)
    run.touch(task, list(role_ids_by_name(set(run.roles_of(task))).values()))
    return instance, task, run


def describe_closed(task: Task) -> str:
    """Why a task can no longer be acted on, naming who decided first where someone did."""
    if task.kind == TaskKind.ACTION_REVIEW:
        return _describe_closed_review(task)
    decision = (
        Decision.objects.filter(
            task__instance_id=task.instance_id, task__state=task.state, task__visit=task.visit
        )
        .select_related("actor")
        .order_by("-decided_at")
        .first()
    )
    if decision is not None and task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        when = _when(decision.decided_at)
        return f"already decided by {decision.actor} at {when} ({decision.event})"
    if task.status == TaskStatus.DELEGATED:
        successor = task.successors.select_related("assignee").first()
        return f"delegated to {successor.assignee if successor else 'someone else'}"
    if task.status == TaskStatus.ESCALATED:
        return "escalated to the next level after its deadline passed"
    return f"this task is {task.get_status_display().lower()}; the request has moved on"


# How an operator's answer to a failed step reads ("retried by Oscar Ortiz at ...").
REVIEW_VERBS = {
    FailedActionResolution.RETRIED: "retried",
    FailedActionResolution.SKIPPED: "skipped",
    FailedActionResolution.CANCELLED: "cancelled with the request",
}


def _describe_closed_review(task: Task) -> str:
    """A manual-review task closes without a Decision: by the operator's retry, skip or cancel
    (its FailedAction says who and when), or because the request left the step."""
    failure = FailedAction.objects.filter(task=task).select_related("resolved_by").first()
    if failure is None or not failure.resolution:
        return f"this task is {task.get_status_display().lower()}; the request has moved on"
    who = failure.resolved_by or "an operator"
    when = _when(failure.resolved_at) if failure.resolved_at else ""
    return f"{REVIEW_VERBS[failure.resolution]} by {who}" + (f" at {when}" if when else "")


def _when(at: datetime) -> str:
    return moment(at)


def _require_live(task: Task) -> None:
    if not task.is_live:
        raise AlreadyDecided(describe_closed(task), current_state=task.state)


def _require_allowed(actor: Any, task: Task, instance: WorkflowInstance, now: datetime) -> None:
    refusal = task_refusal(actor, task, instance, local_day(now))
    if refusal:
        raise NotAllowed(refusal)


def _on_behalf_of(actor: Any, task: Task, instance: WorkflowInstance, now: datetime) -> int | None:
    """The absent user `actor` covers for on this task, or None when acting in their own right."""
    if task.assignee_id == actor.pk:
        return task.on_behalf_of_id
    if task.assignee_id is None and task.actor_is_candidate:
        return None
    return covering_for(actor, task, instance, local_day(now))


def _assignee_for(user: Any, now: datetime) -> tuple[Any, Any]:
    """Who receives work meant for `user` today (their substitute while they are away)."""
    assignee_id, absent_id = resolve_assignee(user.pk, local_day(now))
    if absent_id is None:
        return user, None
    return get_user_model().objects.get(pk=assignee_id), user


@tracing.service_span("signoff.task_claim")
@transaction.atomic
def task_claim(*, task_id: int, actor: Any, now: datetime, channel: str = Channel.WEB) -> Task:
    instance, task, run = _locked_task(task_id, actor=actor, channel=channel, now=now)
    _require_live(task)
    if task.assignee_id == actor.pk:
        return task
    if task.assignee_id is not None:
        raise Conflict(f"already claimed by {task.assignee}", current_state=task.state)
    _require_allowed(actor, task, instance, now)
    absent_id = _on_behalf_of(actor, task, instance, now)
    task.claim()
    task.assignee = actor
    task.on_behalf_of_id = absent_id
    task.claimed_at = now
    task.save(update_fields=["status", "assignee", "on_behalf_of", "claimed_at"])
    run.record("task.claimed", task=task, to_state=task.state, data=_behalf_data(absent_id))
    run.emit(
        "task.claimed",
        {"task": task.pk, "assignee": actor.pk, "on_behalf_of": absent_id},
        key=f"claim:{task.pk}",
    )
    run.commit()
    return task


@tracing.service_span("signoff.task_unclaim")
@transaction.atomic
def task_unclaim(*, task_id: int, actor: Any, now: datetime, channel: str = Channel.WEB) -> Task:
    """Give a claimed task back to its roles' queue."""
    _, task, run = _locked_task(task_id, actor=actor, channel=channel, now=now)
    _require_live(task)
    if task.assignee_id is None:
        raise Conflict("this task is not claimed", current_state=task.state)
    if task.assignee_id != actor.pk and not can_operate(actor, "reassign_task"):
        raise NotAllowed(f"only {task.assignee} can give this task back")
    if task.rule == TaskRule.EVERYONE:
        raise Conflict(
            "every member must approve this step, so this task is yours alone; delegate it instead",
            current_state=task.state,
        )
    if task.for_requester or not task.candidate_groups.exists():
        raise Conflict(
            "this task has no queue to go back to; delegate it instead", current_state=task.state
        )
    task.unclaim()
    task.assignee = None
    task.on_behalf_of = None
    task.claimed_at = None
    task.save(update_fields=["status", "assignee", "on_behalf_of", "claimed_at"])
    run.record("task.unclaimed", task=task, to_state=task.state)
    run.emit("task.unclaimed", {"task": task.pk}, key=f"unclaim:{task.pk}")
    run.commit()
    return task


@tracing.service_span("signoff.task_decide")
def task_decide(
    *,
    task_id: int,
    event: str,
    actor: Any,
    now: datetime,
    comment: str = "",
    data: Mapping[str, Any] | None = None,
    form: Mapping[str, Any] | None = None,
    channel: str = Channel.WEB,
    signing: signatures.SigningCredentials | None = None,
) -> DecisionResult:
    """Decide a task with one of its state's events. Under rules all/quorum/everyone an APPROVE
    waits for the other approvals of the visit; any other event fires at once (first decision
    wins).

    `form` is the request's edited fields, accepted on the requester's own tasks (answering
    "changes requested"): validated against the definition's form and written to the context
    before the event is tried, so guards route on the new values. Read-only fields are kept.

    A step that asks for an electronic signature is decided only on the task's page, with
    `signing` (the signer's password, and code where they have an authenticator app): checked
    first, in a transaction of its own, so that a failed attempt stays counted and audited."""
    signer = _signer(task_id=task_id, actor=actor, channel=channel, now=now, signing=signing)
    return _decide(
        task_id=task_id,
        event=event,
        actor=actor,
        now=now,
        comment=comment,
        data=data,
        form=form,
        channel=channel,
        signer=signer,
    )


def _signer(
    *,
    task_id: int,
    actor: Any,
    channel: str,
    now: datetime,
    signing: signatures.SigningCredentials | None,
) -> signatures.Signer | None:
    """Who signs this decision, for a step that asks for a signature (None for one that does
    not); refused off the task's page, without credentials, or with wrong ones."""
    meaning = _signature_meaning(task_id)
    if not meaning:
        return None
    with transaction.atomic():
        instance, task, run = _locked_task(task_id, actor=actor, channel=channel, now=now)
        _require_live(task)
        _require_allowed(actor, task, instance, now)
        if channel != Channel.WEB or signing is None:
            raise NotAllowed(
                f"this step needs your electronic signature ({meaning}); sign it on the "
                f"task's page: {absolute(task_path(task.pk))}"
            )
        attempt = signatures.check(actor, signing, now)
        if attempt.failures:
            data: dict[str, Any] = {"failures": attempt.failures}
            if attempt.locked_until is not None:
                data["locked_until"] = attempt.locked_until.isoformat()
            run.record("signature.failed", task=task, to_state=task.state, data=data)
            run.commit()
    if attempt.signer is None:
        said = f"{attempt.problem[:1].upper()}{attempt.problem[1:]}."
        raise InvalidInput(f"not signed: {attempt.problem}", {attempt.field: [said]})
    return attempt.signer


def _signature_meaning(task_id: int) -> str:
    """The meaning of the signature the task's step asks for; "" for none (or no such task)."""
    task = Task.objects.filter(pk=task_id).select_related("instance__definition").first()
    if task is None:
        return ""
    spec = statechart_for(task.instance.definition).state(task.state).task
    return spec.signature if spec is not None else ""


@transaction.atomic
def _decide(
    *,
    task_id: int,
    event: str,
    actor: Any,
    now: datetime,
    comment: str,
    data: Mapping[str, Any] | None,
    form: Mapping[str, Any] | None,
    channel: str,
    signer: signatures.Signer | None,
) -> DecisionResult:
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(
            "the comment is too long", {"comment": [f"At most {MAX_COMMENT} characters."]}
        )
    if data is not None and not isinstance(data, Mapping):
        raise InvalidInput("decision data must be an object", {"data": ["Must be an object."]})
    instance, task, run = _locked_task(task_id, actor=actor, channel=channel, now=now)
    _require_live(task)
    _require_allowed(actor, task, instance, now)
    if task.kind != TaskKind.DECISION:
        raise Conflict(
            "this task is a failed automated step: retry it, skip it or cancel the request",
            current_state=task.state,
        )
    state = run.chart.state(task.state)
    if event not in state.on:
        raise InvalidInput(
            f"'{event}' is not a decision of this task",
            {"decision": [f"Choose one of: {', '.join(state.on)}."]},
        )
    if not comment and event in EVENTS_NEEDING_COMMENT:
        raise InvalidInput("a comment is required", {"comment": ["Say why (required)."]})
    changed = _apply_form(run, task, form) if form is not None else {}
    arguments = _ask_arguments(instance, event, data)
    # What the decision saw: "approved quote v2" (and no approval without a required one).
    seen = current_versions(instance.pk)
    require_artifacts(run.chart, task.state, event, seen)
    absent_id = _on_behalf_of(actor, task, instance, now)
    if (
        task.rule != TaskRule.ANY
        and Decision.objects.filter(
            task__instance=instance, task__state=task.state, task__visit=task.visit, actor=actor
        ).exists()
    ):
        raise Conflict(
            "you have already decided on this step; another approver is needed",
            current_state=task.state,
        )

    spec = state.task
    signature = (
        signatures.sign(
            signer,
            meaning=spec.signature,
            instance_id=instance.pk,
            task_id=task.pk,
            event=event,
            comment=comment,
            artifacts=seen,
            at=now,
        )
        if signer is not None and spec is not None and spec.signature
        else {}
    )
    Decision.objects.create(
        task=task,
        actor=actor,
        on_behalf_of_id=absent_id,
        event=event,
        comment=comment,
        data=dict(data or {}),
        decided_at=now,
        artifact_versions=seen,
        signature=signature,
    )
    run.exclude_decider(task, actor.pk)
    task.close(TaskStatus.DONE)
    task.assignee = task.assignee or actor
    task.closed_at = now
    task.save(update_fields=["status", "assignee", "closed_at"])
    run.record(
        "task.decided",
        task=task,
        to_state=task.state,
        data={
            "decision": event,
            "comment": comment,
            **({"data": data} if data else {}),
            **({"changed": changed} if changed else {}),
            **arguments,
            **({"artifacts": seen} if seen else {}),
            **({"signature": signature} if signature else {}),
            **_behalf_data(absent_id),
        },
    )
    run.emit(
        "task.decided",
        {"task": task.pk, "decision": event, "actor": actor.pk, "on_behalf_of": absent_id},
        key=f"decided:{task.pk}",
    )
    moved = not (event == APPROVE and task.rule != TaskRule.ANY and run.siblings_pending(task))
    if task.rule == TaskRule.ANY:
        run.settled_states.add(task.state)
    if event == WITHDRAW and actor.pk == instance.requester_id:
        # The requester's own "Withdraw" button ends the request as the request page's does.
        run.ends_as = InstanceStatus.WITHDRAWN
    if moved:
        run.fire(event, data or {}, sources=[task.state], task=task)
    instance = run.commit()
    return DecisionResult(task=task, instance=instance, moved=moved)


@dataclass(frozen=True)
class BulkOutcome:
    task_id: int
    title: str  # the request's title, only where the actor may see it
    ok: bool
    message: str


def task_decide_many(
    *,
    task_ids: list[int],
    event: str,
    actor: Any,
    now: datetime,
    channel: str = Channel.WEB,
) -> list[BulkOutcome]:
    """Decide several tasks with one event, each in its own transaction: one refusal neither
    stops nor undoes the others, and each is reported. A task the actor may not see is "no
    such task", its title untold."""
    outcomes = []
    for task_id in task_ids:
        task = Task.objects.filter(pk=task_id).select_related("instance").first()
        if task is None or not can_view_task(actor, task):
            outcomes.append(BulkOutcome(task_id, f"task {task_id}", False, "no such task"))
            continue
        try:
            task_decide(task_id=task_id, event=event, actor=actor, now=now, channel=channel)
        except WorkflowError as exc:
            outcomes.append(BulkOutcome(task_id, task.instance.title, False, exc.message))
        else:
            outcomes.append(BulkOutcome(task_id, task.instance.title, True, "decided"))
    return outcomes


def _apply_form(run: Run, task: Task, form: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Write the requester's edited fields into the context; return {field: [old, new]}."""
    if not task.for_requester:
        raise InvalidInput(
            "only the requester's own step can change the request",
            {"form": ["The request's fields are not editable at this step."]},
        )
    if not isinstance(form, Mapping):
        raise InvalidInput("the request must be an object of fields", {"form": ["Not an object."]})
    schema = run.chart.form
    properties = schema.get("properties") or {}
    locked = {name for name, prop in properties.items() if prop.get("readOnly")}
    old = run.instance.context
    merged = {**old, **{k: v for k, v in form.items() if k not in locked}}
    errors = form_errors(schema, {k: v for k, v in merged.items() if k in properties})
    if errors:
        raise InvalidInput("the request has errors", errors)
    changed = {k: [old.get(k), v] for k, v in merged.items() if old.get(k) != v}
    run.set_context(merged)
    template = run.instance.definition.title
    if placeholders(template):
        if changed.keys() & set(placeholders(template)):
            run.instance.title = render_title(
                template, merged, str(run.instance.requester), form=run.chart.form
            )
            run.fields.add("title")
        return changed
    title = str(merged.get("title") or "").strip()
    if "title" in changed and title and len(title) <= MAX_TITLE:
        run.instance.title = title
        run.fields.add("title")
    return changed


def _ask_arguments(
    instance: WorkflowInstance, event: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """For an ask's proposed action: the arguments this decision approves and their difference
    from those proposed, for the audit event (services.asks.approved_arguments)."""
    ask = Ask.objects.filter(instance=instance).exclude(action_name="").first()
    if ask is None:
        return {}
    approved, patch = approved_arguments(ask, event, data)
    if approved is None:
        return {}
    return {"arguments": approved, **({"arguments_changes": patch} if patch else {})}


def _behalf_data(absent_id: int | None) -> dict[str, Any]:
    if absent_id is None:
        return {}
    absent = get_user_model().objects.get(pk=absent_id)
    return {"on_behalf_of": absent.username}


def _find_user(user_id: int | None, field: str) -> Any:
    user = choosable_people().filter(pk=user_id).first()
    if user is None:
        raise InvalidInput("no such user", {field: ["Choose an active user."]})
    return user


@tracing.service_span("signoff.task_delegate")
@transaction.atomic
def task_delegate(
    *,
    task_id: int,
    to_user_id: int,
    actor: Any,
    now: datetime,
    comment: str = "",
    channel: str = Channel.WEB,
) -> Task:
    """Hand a task to someone else; the delegator keeps read access (they took part)."""
    delegate = _find_user(to_user_id, "to")
    instance, task, run = _locked_task(task_id, actor=actor, channel=channel, now=now)
    _require_live(task)
    _require_allowed(actor, task, instance, now)
    if delegate.pk == actor.pk:
        raise InvalidInput("you cannot delegate to yourself", {"to": ["Choose someone else."]})
    receiver, absent = _assignee_for(delegate, now)
    if task.forbid_requester and instance.requester_id in (delegate.pk, receiver.pk):
        raise InvalidInput(
            "the requester cannot decide their own request",
            {"to": ["Choose someone other than the requester."]},
        )
    if receiver.pk == actor.pk:
        raise InvalidInput(
            f"{delegate} is away and you cover for them; keep the task instead",
            {"to": ["Choose someone else."]},
        )
    _refuse_four_eyes(task, receiver)
    successor = _replace(
        run,
        task,
        assignee=receiver,
        delegated_by=actor,
        on_behalf_of=absent,
        outcome=TaskStatus.DELEGATED,
    )
    run.record(
        "task.delegated",
        task=successor,
        to_state=task.state,
        data={
            "from_task": task.pk,
            "to": receiver.username,
            "comment": comment,
            **_behalf_data(absent.pk if absent else None),
        },
    )
    run.emit(
        "task.delegated",
        {
            "task": successor.pk,
            "to": receiver.pk,
            "by": actor.pk,
            "on_behalf_of": absent.pk if absent else None,
        },
        key=f"delegate:{successor.pk}",
    )
    run.commit()
    return successor


@tracing.service_span("signoff.task_reassign")
@transaction.atomic
def task_reassign(
    *,
    task_id: int,
    to_user_id: int | None,
    actor: Any,
    now: datetime,
    comment: str = "",
    channel: str = Channel.ADMIN,
) -> Task:
    """An operator moves a task to a person (or, with no one, back to its roles' queue)."""
    if not can_operate(actor, "reassign_task"):
        raise NotAllowed("you may not reassign tasks")
    named = _find_user(to_user_id, "to") if to_user_id is not None else None
    assignee, absent = _assignee_for(named, now) if named is not None else (None, None)
    instance, task, run = _locked_task(task_id, actor=actor, channel=channel, now=now)
    _require_live(task)
    if (
        named is not None
        and task.forbid_requester
        and instance.requester_id in (named.pk, assignee.pk)
    ):
        raise InvalidInput(
            "the requester cannot decide their own request",
            {"to": ["Choose someone other than the requester."]},
        )
    if assignee is None and not task.candidate_groups.exists():
        raise InvalidInput("this task has no roles' queue", {"to": ["Choose a person."]})
    if assignee is not None:
        _refuse_four_eyes(task, assignee)
    successor = _replace(
        run,
        task,
        assignee=assignee,
        delegated_by=None,
        on_behalf_of=absent,
        outcome=TaskStatus.CANCELLED,
    )
    absent_id = absent.pk if absent else None
    run.record(
        "task.reassigned",
        task=successor,
        to_state=task.state,
        data={
            "from_task": task.pk,
            "to": assignee.username if assignee else None,
            "comment": comment,
            **_behalf_data(absent_id),
        },
    )
    run.emit(
        "task.reassigned",
        {
            "task": successor.pk,
            "to": assignee.pk if assignee else None,
            "on_behalf_of": absent_id,
        },
        key=f"reassign:{successor.pk}",
    )
    run.commit()
    return successor


def _refuse_four_eyes(task: Task, receiver: Any) -> None:
    refusal = four_eyes_refusal(receiver, task, who=str(receiver))
    if refusal:
        raise InvalidInput(refusal, {"to": ["Choose someone else."]})


def _replace(
    run: Run, task: Task, *, assignee: Any, delegated_by: Any, on_behalf_of: Any, outcome: str
) -> Task:
    task.close(outcome)
    task.closed_at = run.now
    task.save(update_fields=["status", "closed_at"])
    return run.copy_task(
        task,
        assignee=assignee,
        delegated_by=delegated_by,
        on_behalf_of=on_behalf_of,
        status=TaskStatus.CLAIMED if assignee is not None else TaskStatus.OPEN,
        claimed_at=run.now if assignee is not None else None,
    )
