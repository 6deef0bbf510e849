"""Every send after commit goes through here.

`after_commit` schedules a call for when the current transaction commits (at once outside
one); `queue` hands Celery tasks to the broker. A broker that is down loses nothing: the rows
the transaction wrote stay due, and the sweep (`outbox.sweep`) sends them again. So an error
here is logged, in this one place, and never raised into the code that committed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def after_commit(func: Callable[[], Any]) -> None:
    """Run `func` once the transaction commits; its failure is logged, never raised."""
    transaction.on_commit(_Logged(func))


class _Logged:
    """`func`, its failure logged here rather than by on_commit(robust=True): Django's log of a
    failure reads func.__qualname__, which a partial lacks, and that AttributeError escaped
    after the commit (a 500 for a committed decision) and dropped the callbacks queued after."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[], Any]) -> None:
        self.func = func

    def __call__(self) -> None:
        try:
            self.func()
        except Exception:
            logger.exception("after commit, %s failed; the sweep sends it again", self.name)

    @property
    def name(self) -> str:
        func = self.func
        if isinstance(func, functools.partial):
            return f"{getattr(func.func, '__qualname__', func.func)}{tuple(func.args)!r}"
        return getattr(func, "__qualname__", None) or repr(func)

    def __repr__(self) -> str:
        return f"after_commit({self.func!r})"


def queue(task: str, calls: Iterable[Sequence[Any]], *, countdown: float | None = None) -> int:
    """Send one message to the Celery task of that name per argument tuple; returns how many
    the broker took. By name, so that what writes rows never imports the workers' code."""
    sent = 0
    try:
        celery_task = current_app.tasks[task]
    except KeyError:
        logger.warning("could not queue %s: no such task; the sweep will", task)
        return 0
    for args in calls:
        try:
            celery_task.apply_async(tuple(args), countdown=countdown)
        except Exception as error:  # the broker, not our data: the sweep sends it again
            logger.warning("could not queue %s%s (%r); the sweep will", task, tuple(args), error)
        else:
            sent += 1
    return sent


def queue_after_commit(
    task: str, calls: Iterable[Sequence[Any]], *, countdown: float | None = None
) -> None:
    calls = [tuple(args) for args in calls]
    if calls:
        # A partial, not a lambda: what is pending after commit reads as what it sends.
        after_commit(functools.partial(queue, task, calls, countdown=countdown))
