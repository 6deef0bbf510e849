"""Live pages follow documents and comments: an in-transaction outbox subscriber that, after
commit, tells the request's open pages (its watchers, its requester) that it changed, through
the live push's own entry point (approvals/notify/push.py). They fetch their live part again,
as for any other change. Notifications (mentions, questions) are rows of their own, written by
approvals/services/discussion.py."""

from __future__ import annotations

import functools

from approvals.notify import push
from approvals.outbox.dispatch import after_commit
from approvals.outbox.subscribers import Batch, subscribe

LIVE_TOPICS = ("artifact.version_added", "comment.added", "comment.edited")


@subscribe(*LIVE_TOPICS)
def tell_open_pages(batch: Batch) -> None:
    instance = batch.instance
    events = []
    for message in batch:
        groups = {push.instance_group(message.instance_id)}
        if instance is not None and instance.pk == message.instance_id:
            groups.add(push.user_group(instance.requester_id))
        events.append(
            (
                sorted(groups),
                {
                    "id": message.pk,
                    "topic": message.topic,
                    "instance": message.instance_id,
                    "actor_id": getattr(batch.actor, "pk", None),
                    "at": message.created_at.isoformat(),
                },
            )
        )
    if events:
        after_commit(functools.partial(push.publish, [], events))
