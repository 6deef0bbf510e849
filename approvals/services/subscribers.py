"""In-transaction subscribers to the engine's outbox messages.

Every change a service makes ends in `Run.commit`, which writes the run's outbox messages and
then hands them to the functions subscribed to their topics, in the same transaction. A
subscriber turns messages into rows of its own (notifications, webhook deliveries, action
runs, object permissions) with one bulk query, and schedules any work outside the database
with `transaction.on_commit`, so a rolled-back change leaves nothing behind and a slow
outside service never holds a row lock.

    @subscribe("task.created", "task.delegated")
    def notify_reviewers(messages: list[OutboxMessage]) -> None: ...

Subscribers are registered when their module is imported, from an `AppConfig.ready`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from approvals.models import OutboxMessage

Subscriber = Callable[[list[OutboxMessage]], None]

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


def fan_out(messages: Iterable[OutboxMessage]) -> None:
    """Call each subscriber once with the messages of its topics, in the order written."""
    batches: dict[Subscriber, list[OutboxMessage]] = {}
    for message in messages:
        for func in (*_subscribers.get(message.topic, ()), *_subscribers.get(ANY_TOPIC, ())):
            batches.setdefault(func, []).append(message)
    for func, batch in batches.items():
        func(batch)
