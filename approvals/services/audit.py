"""The hash-chained audit trail (invariant 3).

Each event's hash is SHA-256 over the canonical JSON of its content and the previous event's
hash, so editing, deleting or reordering any event breaks every later link. Events are collected
during a service call and written in one INSERT inside the same transaction as the change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from approvals.models import AuditEvent, WorkflowInstance


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    # What is hashed must be exactly what the JSON column gives back.
    return json.loads(json.dumps(dict(data), default=str))


def event_hash(event: AuditEvent) -> str:
    body = {
        "instance": event.instance_id,
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor_id,
        "actor_name": event.actor_name,
        "channel": event.channel,
        "event": event.event,
        "from": event.from_state,
        "to": event.to_state,
        "task": event.task_id,
        "data": event.data,
        "prev": event.prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


class AuditTrail:
    """Appends events to one locked instance's chain; `flush` writes them."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self.instance = instance
        self.pending: list[AuditEvent] = []

    @property
    def next_seq(self) -> int:
        return self.instance.audit_seq + 1

    def append(
        self,
        *,
        event: str,
        at: datetime,
        channel: str,
        actor: Any = None,
        from_state: str = "",
        to_state: str = "",
        task_id: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        record = AuditEvent(
            instance_id=self.instance.pk,
            seq=self.next_seq,
            at=at,
            actor_id=getattr(actor, "pk", None),
            actor_name=getattr(actor, "username", ""),
            channel=channel,
            event=event,
            from_state=from_state,
            to_state=to_state,
            task_id=task_id,
            data=_json_safe(data or {}),
            prev_hash=self.instance.audit_head,
        )
        record.hash = event_hash(record)
        self.instance.audit_seq = record.seq
        self.instance.audit_head = record.hash
        self.pending.append(record)
        return record

    def flush(self) -> None:
        if self.pending:
            AuditEvent.objects.bulk_create(self.pending)
            self.pending = []


@dataclass(frozen=True)
class BrokenLink:
    instance_id: int
    seq: int
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event #{self.seq}" + (f" (id {self.event_id})" if self.event_id else "")
        return f"instance {self.instance_id}: {where}: {self.problem}"


def verify_chain(instance: WorkflowInstance, events: Iterable[AuditEvent]) -> BrokenLink | None:
    """The first broken link of one instance's chain, or None when it verifies."""
    previous = ""
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return BrokenLink(instance.pk, expected_seq, None, f"missing (found #{event.seq} next)")
        if event.prev_hash != previous:
            return BrokenLink(
                instance.pk,
                event.seq,
                event.pk,
                "prev_hash does not match the previous event's hash",
            )
        if event_hash(event) != event.hash:
            return BrokenLink(
                instance.pk, event.seq, event.pk, "content does not match its hash (edited)"
            )
        previous = event.hash
        expected_seq += 1
    if expected_seq - 1 != instance.audit_seq or previous != instance.audit_head:
        return BrokenLink(
            instance.pk,
            expected_seq,
            None,
            f"chain ends at #{expected_seq - 1} but the instance recorded "
            f"#{instance.audit_seq} (events deleted)",
        )
    return None


def verify_instances(instances: Iterable[WorkflowInstance]) -> Iterator[BrokenLink]:
    for instance in instances:
        events = AuditEvent.objects.filter(instance=instance).order_by("seq").iterator()
        broken = verify_chain(instance, events)
        if broken:
            yield broken
