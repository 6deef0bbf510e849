"""The discussion as read: comments with their replies, and the decisions' comments in the
same thread, marked with the decision, oldest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe

from approvals.machine.words import decision_verb
from approvals.models import Comment, Decision, WorkflowInstance
from approvals.services.discussion import may_edit


@dataclass
class Entry:
    at: datetime
    author: Any
    html: SafeString
    comment: Comment | None = None
    decision: str = ""  # "asked for changes", "approved"... for a decision's comment
    replies: list[Entry] = field(default_factory=list)
    editable: bool = False

    @property
    def is_open_question(self) -> bool:
        return bool(self.comment and self.comment.is_question and not self.comment.answered_at)


def comments(instance: WorkflowInstance) -> list[Comment]:
    return list(
        Comment.objects.filter(instance=instance)
        .select_related("author")
        .prefetch_related("mentions")
        .order_by("created_at", "pk")
    )


def thread(instance: WorkflowInstance, reader: Any, now: datetime) -> list[Entry]:
    entries: dict[int, Entry] = {}
    roots: list[Entry] = []
    for comment in comments(instance):
        entry = Entry(
            at=comment.created_at,
            author=comment.author,
            html=mark_safe(comment.html),  # sanitised by nh3 when it was written
            comment=comment,
            editable=may_edit(reader, comment, now),
        )
        entries[comment.pk] = entry
        parent = entries.get(comment.reply_to_id) if comment.reply_to_id else None
        (parent.replies if parent else roots).append(entry)
    decisions = (
        Decision.objects.filter(task__instance=instance).exclude(comment="").select_related("actor")
    )
    for decision in decisions:
        roots.append(
            Entry(
                at=decision.decided_at,
                author=decision.actor,
                html=mark_safe(linebreaks(escape(decision.comment))),
                decision=decision_verb(decision.event),
            )
        )
    roots.sort(key=lambda e: e.at)
    return roots


def open_questions_for(user: Any) -> list[Comment]:
    """Questions reviewers asked `user` on their requests that they have not answered."""
    return list(
        Comment.objects.filter(instance__requester=user, is_question=True, answered_at__isnull=True)
        .select_related("instance", "author")
        .order_by("created_at")[:20]
    )
