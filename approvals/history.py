"""A request's audit trail told as a story, for the people who follow it.

Each line says what happened in words: a person's lines start with their name ("Bob Baker
approved; 1 of 2", "… on behalf of Carol Chen"), and what the engine did on its own is
credited to nobody ("A task for a manager was opened", "Sent to Director approval because the
amount is 10,000 or more"). Conditions come from the transition's `description`, else a simple
guard read in words (approvals/machine/words.py); never a guard, a trigger or an event name.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from approvals.formatting import moment
from approvals.machine.config import field_label
from approvals.machine.statechart import Statechart, Transition
from approvals.machine.words import (
    condition_sentence,
    decision_verb,
    duration_words,
    event_label,
    roles_phrase,
)
from approvals.models import AuditEvent, WorkflowDefinition, WorkflowInstance
from approvals.services import signatures
from approvals.services.definitions import statechart_for
from approvals.services.migration import MIGRATED

OUTCOME_SENTENCES = {
    "completed": "The request is complete",
    "rejected": "The request was rejected",
    "cancelled": "The request was cancelled",
    "withdrawn": "The request was withdrawn",
    "failed": "The request stopped: an automated step failed",
}
# The operator's answers to a failed automated step (action.<resolution>).
RESOLUTION_TEXT = {
    "retried": "retried the automated step {step}",
    "skipped": "skipped the automated step {step}",
    "cancelled": "cancelled the request at the automated step {step}",
}


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    at: datetime
    actor: str  # the person's name; "" where the engine did it on its own
    channel: str
    text: str  # after the name, or a whole sentence where there is no person
    comment: str
    kind: str  # a CSS hook: start, move, task, decision, end
    signature: str = ""  # "Signed by … on …: <meaning>" for a signed decision


def timeline(instance: WorkflowInstance) -> list[TimelineEntry]:
    """The audit trail told as a story, oldest first."""
    chart = statechart_for(instance.definition)
    events = list(instance.audit_events.select_related("actor").order_by("seq"))
    story = _Story(chart, instance, _names(events))
    return [story.entry(event) for event in events]


def _names(events: list[AuditEvent]) -> dict[str, str]:
    """The names of the people the events name by username (on behalf of, delegated to)."""
    usernames = {
        str(value)
        for event in events
        for key in ("on_behalf_of", "to", "previous_assignee", "assigned_to")
        if (value := (event.data or {}).get(key))
    }
    users = get_user_model().objects.filter(username__in=usernames)
    return {u.username: str(u) for u in users}


class _Story:
    def __init__(self, chart: Statechart, instance: WorkflowInstance, names: dict[str, str]):
        self.chart = chart
        self.instance = instance
        self.names = names
        self.approvals: dict[tuple[str, int | None], int] = {}
        self.visits: dict[int, int | None] = dict(instance.tasks.values_list("pk", "visit"))
        # Under rule everyone a step needs one approval per task it opened with.
        self.opened = Counter(
            instance.tasks.filter(previous__isnull=True).values_list("state", "visit")
        )

    def label(self, path: str) -> str:
        return self.chart.state(path).label if path in self.chart.states else path

    def name(self, username: Any) -> str:
        return self.names.get(str(username), str(username)) if username else ""

    def entry(self, event: AuditEvent) -> TimelineEntry:
        person = str(event.actor) if event.actor else event.actor_name or ""
        actor, text, kind = self.describe(event, person)
        return TimelineEntry(
            seq=event.seq,
            at=event.at,
            actor=actor,
            channel=event.channel,
            text=text,
            comment=said(event),
            kind=kind,
            signature=signatures.describe(signature)
            if (signature := (event.data or {}).get("signature"))
            else "",
        )

    def describe(self, event: AuditEvent, person: str) -> tuple[str, str, str]:
        """(who, what, kind): who is '' where the engine acted on its own."""
        data = event.data or {}
        behalf = (
            f" on behalf of {self.name(data['on_behalf_of'])}" if data.get("on_behalf_of") else ""
        )
        name = event.event
        step = self.label(event.to_state)
        if name == "instance.started" and data.get("parent"):
            return "", f"Started by a step of request #{data['parent']}", "start"
        if name == "instance.started" and isinstance(data.get("trigger"), dict):
            text = str(data["trigger"].get("message") or "started by a start trigger")
            return "", text[:1].upper() + text[1:], "start"
        if name == "instance.started":
            return person, "submitted the request", "start"
        if name in ("trigger.started", "trigger.failed"):
            text = str(data.get("message") or data.get("error") or "")
            return "", text[:1].upper() + text[1:], "task"
        if name in ("subflow.started", "subflow.ended", "subflow.cancelled", "subflow.failed"):
            text = str(data.get("message") or data.get("reason") or data.get("error") or "")
            return "", text[:1].upper() + text[1:], "task"
        if name == "transition":
            return "", self.moved(event, data), "move"
        if name == "task.created":
            return "", self.task_opened(data), "task"
        if name == "task.claimed":
            return person, f"took the task{behalf}", "task"
        if name == "task.unclaimed":
            return person, "gave the task back to the queue", "task"
        if name == "task.decided":
            return person, self.decided(event, data, behalf), "decision"
        if name == "task.delegated":
            return person, f"delegated the task to {self.name(data.get('to'))}{behalf}", "task"
        if name == "task.reassigned":
            to = self.name(data.get("to")) or "the roles' queue"
            return person, f"gave the task to {to}{behalf}", "task"
        if name == "task.escalated":
            roles = roles_phrase(data.get("roles") or []) or "the next level"
            return "", f"The deadline passed: the task went to {roles}", "task"
        if name == "task.reminded":
            return "", "A reminder was sent: the task is waiting", "task"
        if name == "task.sla_breached":
            return "", "The deadline passed at the last level; the task was flagged", "task"
        if name == "action.completed":
            return "", f"The automated step {step} finished", "task"
        if name == "action.failed":
            return "", f"The automated step {step} failed: {data.get('error', '')}", "task"
        if name.startswith("action.") and name[7:] in RESOLUTION_TEXT:
            return person, RESOLUTION_TEXT[name[7:]].format(step=step), "task"
        if name == "artifact.version_added":
            return person, self.artifact_added(data), "document"
        if name in ("comment.added", "comment.edited", "comment.answered"):
            return person, COMMENT_TEXT[name], "comment"
        if name == "signature.failed":
            text = "tried to sign and gave a wrong password or code"
            if data.get("locked_until"):
                until = datetime.fromisoformat(data["locked_until"])
                text += f"; signing is locked until {moment(until)}"
            return person, text, "task"
        if name == "legal_hold.placed":
            return (
                person,
                "placed the request under legal hold: it is kept past its retention",
                "task",
            )
        if name == "legal_hold.released":
            return person, "released the legal hold", "task"
        if name == "timer.failed":
            return "", f"A time limit in {step} could not be applied", "task"
        if name == MIGRATED:
            return person, self.migrated(data), "move"
        if name == "instance.withdrawn" and person:
            return person, "withdrew the request", "end"
        if name == "instance.cancelled" and person:
            return person, "cancelled the request", "end"
        if name.startswith("instance."):
            outcome = data.get("outcome") or name.split(".", 1)[1]
            return "", OUTCOME_SENTENCES.get(outcome, "The request ended"), "end"
        return "", event_label(name), "task"

    def migrated(self, data: Mapping[str, Any]) -> str:
        """An operator moved the request to another version: each state's old and new name,
        the old one as the old version calls it."""
        old = WorkflowDefinition.objects.filter(
            key=self.instance.definition.key, version=data.get("from_version")
        ).first()
        old_chart = statechart_for(old) if old is not None else None

        def old_label(path: str) -> str:
            if old_chart is not None and path in old_chart.states:
                return old_chart.state(path).label
            return path

        moves = ", ".join(
            f"{old_label(before)} → {self.label(after)}"
            for before, after in data.get("moves") or []
        )
        text = (
            f"Moved from version {data.get('from_version')} to version "
            f"{data.get('to_version')} of the workflow"
        )
        return f"{text} ({moves})" if moves else text

    def moved(self, event: AuditEvent, data: Mapping[str, Any]) -> str:
        target = event.to_state
        transition = self.transition_of(event, data)
        reason = self.reason(transition, data)
        if target == event.from_state:
            text = f"Stayed at {self.label(target)}"
        elif target in self.chart.states and self.chart.state(target).is_final:
            text = f"Ended at {self.label(target)}"
        else:
            text = f"Sent to {self.label(target)}"
        return f"{text} {reason}" if reason else text

    def reason(self, transition: Transition | None, data: Mapping[str, Any]) -> str:
        trigger = data.get("trigger")
        if transition is not None:
            because = condition_sentence(
                transition.description,
                transition.guard.source if transition.guard else None,
                self.chart.form,
            )
            if because:
                return f"because {because}"
        if trigger == "after":
            return f"after {duration_words(data.get('after', ''))}"
        if trigger == "invoke.onError":
            return "because the automated step failed"
        if trigger == "onDone":
            return "once every part was done"
        return ""

    def transition_of(self, event: AuditEvent, data: Mapping[str, Any]) -> Transition | None:
        """The definition's transition this event took: of its source, trigger, event or
        delay, the first one to its target (events before descriptions existed included)."""
        source = event.from_state
        if source not in self.chart.states:
            return None
        state = self.chart.state(source)
        trigger = data.get("trigger")
        candidates: list[Transition] = {
            "on": state.on.get(str(data.get("event", "")), []),
            "after": state.after.get(str(data.get("after", "")), []),
            "always": state.always,
            "onDone": state.on_done,
            "invoke.onDone": state.invoke_done,
            "invoke.onError": state.invoke_error,
        }.get(str(trigger), [])
        target = None if event.to_state == source else event.to_state
        for transition in candidates:
            if transition.target == target:
                return transition
        return None

    def task_opened(self, data: Mapping[str, Any]) -> str:
        if data.get("review_of"):
            return (
                f"A task for {roles_phrase(data.get('roles') or ['operator'])} was opened: "
                "review the failed automated step"
            )
        if data.get("assigned_as"):
            covering = (
                f", covering for {self.name(data['on_behalf_of'])},"
                if data.get("on_behalf_of")
                else ""
            )
            return (
                f"A task for {self.name(data.get('assigned_to'))}{covering} was opened: "
                f"{data['assigned_as']}"
            )
        if data.get("assignee") and data.get("assignee") == self.instance.requester_id:
            return f"A task for {self.instance.requester} was opened"
        roles = roles_phrase(data.get("roles") or [])
        return f"A task for {roles} was opened" if roles else "A task was opened"

    def decided(self, event: AuditEvent, data: Mapping[str, Any], behalf: str) -> str:
        decision = str(data.get("decision", ""))
        text = decision_verb(decision) + behalf
        changed = data.get("changed")
        if changed:
            titles = sorted(field_label(self.chart.form, f) for f in changed)
            text += f", changing {', '.join(titles)}"
        seen = data.get("artifacts")
        if isinstance(seen, list) and seen:
            text += (
                " (with " + ", ".join(f"{a.get('name')} v{a.get('version')}" for a in seen) + ")"
            )
        progress = self.progress(event, decision)
        return f"{text}; {progress}" if progress else text

    def artifact_added(self, data: Mapping[str, Any]) -> str:
        """'added quote v2 (quote.pdf, application/pdf), SHA-256 9f86d08…'."""
        what = f"added {data.get('name')} v{data.get('version')}"
        if data.get("filename"):
            what += f" ({data['filename']}, {data.get('media_type', '')})"
        return f"{what}, SHA-256 {data.get('sha256', '')}"

    def progress(self, event: AuditEvent, decision: str) -> str:
        """'1 of 2' for an approval of a step that needs several (rule all, quorum, everyone)."""
        state = self.chart.states.get(event.to_state)
        spec = state.task if state is not None else None
        if decision != "APPROVE" or spec is None or spec.rule == "any" or spec.requester:
            return ""
        key = (event.to_state, self.visits.get(event.task_id) if event.task_id else None)
        self.approvals[key] = self.approvals.get(key, 0) + 1
        needed = self.opened[key] if spec.rule == "everyone" else spec.approvals_needed
        return f"{self.approvals[key]} of {needed}"


COMMENT_TEXT = {
    "comment.added": "commented",
    "comment.edited": "edited a comment",
    "comment.answered": "answered a question",
}


def said(event: AuditEvent) -> str:
    """The words that go with an event: a comment or reason, or what a step returned."""
    data = event.data or {}
    if event.event == "action.completed":
        return output_text(data.get("output"))
    if event.event == "artifact.version_added":
        return str(data.get("note") or "")
    return str(data.get("comment") or data.get("reason") or "")


def output_text(output: Any) -> str:
    """An automated step's output as lines of text ("message: Your purchase order was..."),
    never a Python dict."""
    if not isinstance(output, dict):
        return "" if output in (None, "", [], {}) else str(output)
    lines = []
    for key, value in output.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        lines.append(f"{key.replace('_', ' ').capitalize()}: {value}")
    return "\n".join(lines)
