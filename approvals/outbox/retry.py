"""The one retry implementation: claim with a lease, back off by policy, give up.

Every kind of delivery that leaves after commit (automated steps, Slack messages, webhook
deliveries) is a row with a status, an attempt count and a due time. A `RetryQueue` names those
columns for one model; the channel says what an attempt does and calls:

- `claim`: one conditional UPDATE that takes a due row for one attempt. It counts the attempt
  and moves the due time one lease ahead, so a duplicate of the same dispatch (a Celery
  redelivery, two sweeps) finds it taken; a worker killed mid-attempt leaves a row whose lease
  runs out, and the sweep hands it out again. A dispatch that carries its attempt number (it
  was handed out as due) claims by that number instead, as a compare-and-set;
- `retry_later`: puts a failed attempt back, due after its `Backoff`;
- `give_up` / `finish`: the final status.

`due` is the sweep's query (FOR UPDATE SKIP LOCKED, so sweeps running at once share the rows
out); `outbox.sweep` runs it for every registered queue and sends what it finds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Model, Q

Seconds = Callable[[], float]


def _zero() -> float:
    return 0.0


@dataclass(frozen=True)
class Backoff:
    """Seconds before the attempt after the `attempt`-th failure: `base` times `factor` to the
    power attempt-1, capped at `cap`; with "equal jitter" (half fixed, half random) so that
    rows failing together do not come back together."""

    base: float
    factor: float = 2.0
    cap: float = 3600.0
    jitter: bool = False

    def seconds(self, attempt: int) -> float:
        delay = min(self.base * self.factor ** max(attempt - 1, 0), self.cap)
        return delay / 2 + random.uniform(0, delay / 2) if self.jitter else delay


@dataclass(frozen=True)
class RetryQueue:
    name: str
    model: type[Model]
    # The Celery task (by its registered name) that makes one attempt of a row.
    task: str
    # The rows that may still be attempted, and the column with when the next attempt may start.
    live: Q
    due_field: str
    # How long a claim holds a row before the attempt counts as lost.
    lease: Seconds
    # Columns a claim sets besides the attempt count and the due time.
    on_claim: Callable[[datetime], Mapping[str, Any]] = field(default=lambda now: {})
    # The sweep leaves rows that fell due less than this ago: they are normally being sent.
    sweep_grace: Seconds = _zero
    # Rows the sweep hands out are leased this long (None: the claim alone dedupes), and the
    # dispatch then carries the attempt number.
    sweep_lease: Seconds | None = None

    def _due_by(self, now: datetime) -> Q:
        return Q(**{f"{self.due_field}__lte": now})

    def claim(self, pk: int, *, now: datetime, attempt: int | None = None) -> bool:
        rows = self.model.objects.filter(self.live, pk=pk)
        rows = (
            rows.filter(self._due_by(now)) if attempt is None else rows.filter(attempts=attempt - 1)
        )
        changes = {
            "attempts": F("attempts") + 1,
            self.due_field: now + timedelta(seconds=self.lease()),
            **self.on_claim(now),
        }
        return rows.update(**changes) == 1

    def claim_many(self, pks: list[int], *, now: datetime) -> list[int]:
        """`claim` for a batch sent together, in one transaction of two statements rather than
        a commit per row: the due rows among `pks` that no other worker holds (SKIP LOCKED)
        are taken for one attempt each. Returns their ids."""
        with transaction.atomic():
            taken = list(
                self.model.objects.select_for_update(skip_locked=True)
                .filter(self.live, self._due_by(now), pk__in=pks)
                .values_list("pk", flat=True)
            )
            if taken:
                self.model.objects.filter(pk__in=taken).update(
                    attempts=F("attempts") + 1,
                    **{self.due_field: now + timedelta(seconds=self.lease())},
                    **self.on_claim(now),
                )
        return taken

    def retry_later(self, pk: int, *, now: datetime, delay: float, **columns: Any) -> None:
        self.model.objects.filter(pk=pk).update(
            **{self.due_field: now + timedelta(seconds=delay)}, **columns
        )

    def due(self, *, now: datetime, limit: int | None = None) -> list[tuple[int, int]]:
        """(id, number of the next attempt) of the rows whose attempt is due."""
        ready = now - timedelta(seconds=self.sweep_grace())
        with transaction.atomic():
            rows = list(
                self.model.objects.select_for_update(skip_locked=True)
                .filter(self.live, self._due_by(ready))
                .order_by(self.due_field, "pk")
                .values_list("pk", "attempts")[: limit or None]
            )
            if rows and self.sweep_lease is not None:
                self.model.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                    **{self.due_field: now + timedelta(seconds=self.sweep_lease())}
                )
        return [(pk, attempts + 1) for pk, attempts in rows]

    def calls(self, handed_out: list[tuple[int, int]]) -> list[tuple[int, ...]]:
        """The task arguments for rows handed out: (id, attempt) where the dispatch carries the
        attempt number, else (id,)."""
        if self.sweep_lease is not None:
            return [(pk, attempt) for pk, attempt in handed_out]
        return [(pk,) for pk, _ in handed_out]


_queues: dict[str, RetryQueue] = {}


def register(queue: RetryQueue) -> RetryQueue:
    _queues[queue.name] = queue
    return queue


def queues() -> list[RetryQueue]:
    return list(_queues.values())
