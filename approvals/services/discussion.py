"""A request's discussion: comments, replies, @mentions, questions to the requester, edits.

Comments change no workflow state; each is an audit event in the request's chain (the edit
keeps the previous words), and the people it concerns get a `Notification` in the same
transaction, pushed to their bell after commit through the live push's entry points.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from approvals.discussion.render import mentioned, render
from approvals.models import Channel, Comment, Notification, NotificationKind, WorkflowInstance
from approvals.notify import push
from approvals.notify.facts import facts_for
from approvals.notify.subscriber import deliver
from approvals.outbox.dispatch import after_commit
from approvals.outbox.subscribers import Batch
from approvals.permissions import can_view_instance, is_active_user
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.locking import lock_instance

MAX_BODY = 10_000


def _clean_body(body: Any) -> str:
    body = (body if isinstance(body, str) else "").strip()
    if not body:
        raise InvalidInput("the comment is empty", {"body": ["Write something."]})
    if len(body) > MAX_BODY:
        raise InvalidInput("the comment is too long", {"body": [f"At most {MAX_BODY} characters."]})
    return body


def _mentioned_users(body: str, instance: WorkflowInstance) -> list[Any]:
    """The people `@mentioned`; each must exist and be able to see the request."""
    names = mentioned(body)
    if not names:
        return []
    users = {
        u.username.lower(): u
        for u in get_user_model().objects.filter(username__in=names, is_active=True)
    }
    unknown = [n for n in names if n.lower() not in users]
    if unknown:
        listed = ", ".join(f"@{n}" for n in unknown)
        raise InvalidInput(
            f"no such user: {listed}",
            {"body": [f"No one is called {listed}; check the spelling."]},
        )
    found = [users[n.lower()] for n in names]
    blind = [u for u in found if not can_view_instance(u, instance)]
    if blind:
        listed = ", ".join(f"@{u.username}" for u in blind)
        raise InvalidInput(
            f"{listed} may not see this request",
            {
                "body": [
                    f"{listed} cannot see this request, so cannot be mentioned; nothing was "
                    "posted. Remove the mention, or ask a colleague who can see it."
                ]
            },
        )
    return found


def _notify(comment: Comment, instance: WorkflowInstance, targets: dict[int, str]) -> None:
    """Notification rows (recipient → kind), pushed to their bells after commit."""
    author = comment.author
    words = {
        NotificationKind.MENTION: f"{author} mentioned you on “{instance.title}”",
        NotificationKind.QUESTION: f"Question for you from {author} on “{instance.title}”",
        NotificationKind.COMMENT: f"{author} commented on your request “{instance.title}”",
    }
    rows = [
        Notification(
            recipient_id=recipient,
            kind=kind,
            topic="comment.added",
            instance=instance,
            actor=author,
            text=words[kind][:300],
            data={
                "comment": comment.pk,
                "workflow": instance.definition.title,
                "state": instance.state,
            },
            created_at=comment.edited_at or comment.created_at,
        )
        for recipient, kind in targets.items()
        if recipient != author.pk
    ]
    if not rows:
        return
    created = Notification.objects.bulk_create(rows)
    # Slack, Teams and e-mail too, as each reader chose for the kind.
    deliver(created, facts_for(Batch(instance=instance), with_members=False))
    names = {author.pk: str(author)}
    pushed = [push.serialize(n, names) for n in created]
    after_commit(functools.partial(push.publish, pushed, []))


def _run(instance: WorkflowInstance, actor: Any, channel: str, now: datetime) -> Run:
    return Run(instance, statechart_for(instance.definition), actor=actor, channel=channel, now=now)


@transaction.atomic
def comment_add(
    *,
    instance_id: int,
    body: Any,
    actor: Any,
    now: datetime,
    reply_to: int | None = None,
    question: bool = False,
    channel: str = Channel.WEB,
) -> Comment:
    """Post a comment (or a reply) on a request's discussion. `question`: a reviewer asks the
    requester; it stays open, and the requester is shown "question for you", until they answer
    (a reply to it, or any comment of theirs without a reply_to answers all open ones)."""
    if not is_active_user(actor):
        raise NotAllowed("sign in to comment")
    body = _clean_body(body)
    instance = lock_instance(instance_id=instance_id)
    if not can_view_instance(actor, instance):
        raise NotAllowed("no such request")
    parent = None
    if reply_to is not None:
        parent = Comment.objects.filter(pk=reply_to, instance=instance).first()
        if parent is None:
            raise InvalidInput(
                "no such comment to reply to",
                {"reply_to": ["Not a comment of this request's discussion."]},
            )
    is_requester = actor.pk == instance.requester_id
    if question and is_requester:
        raise InvalidInput(
            "the requester cannot ask themselves a question",
            {"question": ["Questions are asked of the requester by reviewers."]},
        )
    mentions = _mentioned_users(body, instance)
    comment = Comment.objects.create(
        instance=instance,
        author=actor,
        body=body,
        html=render(body),
        reply_to=parent,
        is_question=question,
        created_at=now,
    )
    comment.mentions.set(mentions)
    answered: list[int] = []
    if is_requester:
        open_questions = Comment.objects.filter(
            instance=instance, is_question=True, answered_at__isnull=True
        )
        if parent is not None:
            open_questions = open_questions.filter(pk=parent.pk)
        answered = list(open_questions.values_list("pk", flat=True))
        if answered:
            Comment.objects.filter(pk__in=answered).update(answered_at=now)
    run = _run(instance, actor, channel, now)
    data = {
        "comment_id": comment.pk,
        "comment": body,
        **({"reply_to": parent.pk} if parent else {}),
        **({"mentions": [u.username for u in mentions]} if mentions else {}),
        **({"question": True} if question else {}),
        **({"answers": answered} if answered else {}),
    }
    run.record("comment.added", data=data)
    run.emit("comment.added", data, key=f"comment:{comment.pk}")
    run.commit()
    targets: dict[int, str] = {}
    if not is_requester:
        targets[instance.requester_id] = (
            NotificationKind.QUESTION if question else NotificationKind.COMMENT
        )
    for user in mentions:
        targets.setdefault(user.pk, NotificationKind.MENTION)
    _notify(comment, instance, targets)
    return comment


def editable_until(comment: Comment) -> datetime:
    return comment.created_at + timedelta(minutes=settings.COMMENT_EDIT_MINUTES)


def may_edit(user: Any, comment: Comment, now: datetime | None = None) -> bool:
    return comment.author_id == getattr(user, "pk", None) and (
        now or timezone.now()
    ) <= editable_until(comment)


@transaction.atomic
def comment_edit(
    *, comment_id: int, body: Any, actor: Any, now: datetime, channel: str = Channel.WEB
) -> Comment:
    """The author changes their words within COMMENT_EDIT_MINUTES; the audit keeps both."""
    body = _clean_body(body)
    found = Comment.objects.filter(pk=comment_id).values_list("instance_id", flat=True).first()
    if found is None:
        raise NotAllowed("no such comment")
    instance = lock_instance(instance_id=found)
    comment = Comment.objects.select_related("author").get(pk=comment_id)
    if not can_view_instance(actor, instance):
        raise NotAllowed("no such comment")
    if comment.author_id != actor.pk:
        raise NotAllowed("only its author can edit a comment")
    if now > editable_until(comment):
        raise NotAllowed(
            f"a comment can be edited for {settings.COMMENT_EDIT_MINUTES} minutes after it was "
            "posted; add a new one instead"
        )
    if body == comment.body:
        return comment
    before = set(comment.mentions.values_list("pk", flat=True))
    mentions = _mentioned_users(body, instance)
    previous = comment.body
    comment.body = body
    comment.html = render(body)
    comment.edited_at = now
    comment.save(update_fields=["body", "html", "edited_at"])
    comment.mentions.set(mentions)
    run = _run(instance, actor, channel, now)
    data = {
        "comment_id": comment.pk,
        "comment": body,
        "previous": previous,
        **({"mentions": [u.username for u in mentions]} if mentions else {}),
    }
    run.record("comment.edited", data=data)
    run.emit("comment.edited", data, key=f"comment-edit:{comment.pk}:{now.isoformat()}")
    run.commit()
    _notify(
        comment,
        instance,
        {u.pk: NotificationKind.MENTION for u in mentions if u.pk not in before},
    )
    return comment
