"""In-transaction subscribers to the engine's outbox messages.

Every change a service makes ends in `Run.commit`, which writes the run's outbox messages and
then hands them to the functions subscribed to their topics, in the same transaction. A
subscriber turns messages into rows of its own (notifications, webhook deliveries, object
permissions) with one bulk query, and asks `outbox.dispatch` for any work outside the database
after commit, so a rolled-back change leaves nothing behind and a slow outside service never
holds a row lock.

    @subscribe("task.created", "task.delegated")
    def notify_reviewers(batch: Batch) -> None: ...

A `Batch` is the list of saved messages of one commit together with what the run already holds
(the locked instance, the actor, the tasks it opened or changed and their roles), so that a
subscriber does not read again what the run has in memory.

Subscribers are registered when their module is imported, from an `AppConfig.ready`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from approvals.models import OutboxMessage, Task, WorkflowInstance


class Batch(list[OutboxMessage]):
    """The saved outbox messages of one commit, in the order written, and their context."""

    def __init__(
        self,
        messages: Iterable[OutboxMessage] = (),
        *,
        instance: WorkflowInstance | None = None,
        actor: Any = None,
        tasks: dict[int, Task] | None = None,
        task_roles: dict[int, list[int]] | None = None,
    ) -> None:
        super().__init__(messages)
        self.instance = instance
        self.actor = actor
        # The tasks the run opened or changed, as they are now, and the role (group) ids each
        # is offered to where the run knows them.
        self.tasks = tasks or {}
        self.task_roles = task_roles or {}

    def subset(self, messages: Iterable[OutboxMessage]) -> Batch:
        return Batch(
            messages,
            instance=self.instance,
            actor=self.actor,
            tasks=self.tasks,
            task_roles=self.task_roles,
        )


Subscriber = Callable[[Batch], None]

# A subscriber for ANY_TOPIC receives every message.
ANY_TOPIC = "*"

_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(*topics: str) -> Callable[[Subscriber], Subscriber]:
    if not topics:
        raise ValueError("subscribe() needs at least one topic (or ANY_TOPIC)")

    def decorator(func: Subscriber) -> Subscriber:
        for topic in topics:
            if func not in _subscribers[topic]:
                _subscribers[topic].append(func)
        return func

    return decorator


def fan_out(batch: Batch) -> None:
    """Call each subscriber once with the messages of its topics, in the order written."""
    selected: dict[Subscriber, list[OutboxMessage]] = {}
    for message in batch:
        for func in (*_subscribers.get(message.topic, ()), *_subscribers.get(ANY_TOPIC, ())):
            selected.setdefault(func, []).append(message)
    for func, messages in selected.items():
        func(batch.subset(messages))
