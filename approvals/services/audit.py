"""The hash-chained, keyed audit trail (invariant 3).

Each event's hash is SHA-256 over the canonical JSON of its content and the previous event's
hash, so editing, deleting or reordering any event breaks every later link. The hash is public
arithmetic, though: someone who can write to the database could edit an event and recompute
every later hash. So each event also carries `mac`, HMAC-SHA256 of its hash with
AUDIT_CHAIN_KEY, a key kept outside the database, and `mac_key_id`, which key made it (so a
rotated key's events still verify, with AUDIT_CHAIN_PREVIOUS_KEYS). Events written before the key
existed have no MAC and verify by their hashes alone.

Events are collected during a service call and written in one INSERT inside the same transaction
as the change.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.db.models import F

from approvals import audit_chain
from approvals.models import AuditEvent, WorkflowInstance
from approvals.sensitive import masked


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    # What is hashed must be exactly what the JSON column gives back.
    return json.loads(json.dumps(dict(data), default=str))


def event_body(event: AuditEvent) -> dict[str, Any]:
    """The event's hashed fields (approvals/audit_chain.py holds the one definition)."""
    return audit_chain.event_body(
        instance=event.instance_id,
        seq=event.seq,
        at=event.at,
        actor=event.actor_id,
        actor_name=event.actor_name,
        channel=event.channel,
        event=event.event,
        from_state=event.from_state,
        to_state=event.to_state,
        task=event.task_id,
        data=event.data,
        prev=event.prev_hash,
    )


def event_hash(event: AuditEvent) -> str:
    return audit_chain.body_hash(event_body(event))


@functools.lru_cache(maxsize=16)
def audit_key_id(key: str) -> str:
    """A key's public name, stored beside each MAC so that verification picks the key that made
    it; it tells nothing about the key."""
    return hashlib.sha256(b"signoff audit chain key id:" + key.encode()).hexdigest()[:16]


def event_mac(key: str, event_hash: str) -> str:
    return hmac.new(key.encode(), event_hash.encode(), hashlib.sha256).hexdigest()


class AuditTrail:
    """Appends events to one locked instance's chain; `flush` writes them."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self.instance = instance
        self.pending: list[AuditEvent] = []
        # The trail never holds a sensitive field's plaintext, only its hash.
        self.sensitive = instance.sensitive_names()

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
            data=_json_safe(masked(data or {}, self.sensitive, hashed=True)),
            prev_hash=self.instance.audit_head,
        )
        record.hash = event_hash(record)
        key = settings.AUDIT_CHAIN_KEY
        record.mac = event_mac(key, record.hash)
        record.mac_key_id = audit_key_id(key)
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


@dataclass(frozen=True)
class ChainKeys:
    """The keys a verification holds, by key id: AUDIT_CHAIN_KEY and AUDIT_CHAIN_PREVIOUS_KEYS."""

    current_id: str
    by_id: Mapping[str, str]

    @classmethod
    def configured(cls) -> ChainKeys:
        keys = [*settings.AUDIT_CHAIN_PREVIOUS_KEYS, settings.AUDIT_CHAIN_KEY]
        return cls(audit_key_id(settings.AUDIT_CHAIN_KEY), {audit_key_id(k): k for k in keys})


def unknown_key_problem(key_id: str, keys: ChainKeys) -> str:
    return (
        f"a MAC made with key {key_id or '(none)'}, which is neither AUDIT_CHAIN_KEY "
        f"(key {keys.current_id}) nor one of AUDIT_CHAIN_PREVIOUS_KEYS"
    )


@dataclass(frozen=True)
class ChainResult:
    """One instance's chain as read with the head the instance recorded (`recorded_seq`,
    `recorded_head`): its first broken link if any, how many events predate the key
    (`unkeyed`), and how many have a MAC made with a key this verification does not hold, by
    key id (`unknown_keys`): those verify by hash only, and are not verified."""

    instance_id: int
    recorded_seq: int
    recorded_head: str
    events: int
    broken: BrokenLink | None
    unkeyed: int
    unknown_keys: Mapping[str, int]
    keys: ChainKeys

    @property
    def problem(self) -> str | None:
        if self.broken:
            return self.broken.problem
        if self.unknown_keys:
            return "its events have " + unknown_key_problem(min(self.unknown_keys), self.keys)
        return None


def verify_chain(
    events: Iterable[AuditEvent],
    *,
    instance_id: int,
    recorded_seq: int,
    recorded_head: str,
    keys: ChainKeys,
) -> ChainResult:
    """Verify one instance's chain against the head the instance recorded."""
    previous = ""
    expected_seq = 1
    unkeyed = 0
    unknown: dict[str, int] = {}
    keyed_before = False

    def result(broken: BrokenLink | None) -> ChainResult:
        return ChainResult(
            instance_id,
            recorded_seq,
            recorded_head,
            expected_seq - 1,
            broken,
            unkeyed,
            unknown,
            keys,
        )

    for event in events:
        if event.seq != expected_seq:
            return result(
                BrokenLink(instance_id, expected_seq, None, f"missing (found #{event.seq} next)")
            )
        if event.prev_hash != previous:
            return result(
                BrokenLink(
                    instance_id,
                    event.seq,
                    event.pk,
                    "prev_hash does not match the previous event's hash",
                )
            )
        if event_hash(event) != event.hash:
            return result(
                BrokenLink(
                    instance_id, event.seq, event.pk, "content does not match its hash (edited)"
                )
            )
        if not event.mac:
            if keyed_before:
                # Once the key exists every event is written with a MAC.
                return result(
                    BrokenLink(
                        instance_id,
                        event.seq,
                        event.pk,
                        "has no MAC although the events before it have one (its MAC was removed)",
                    )
                )
            unkeyed += 1
        else:
            keyed_before = True
            key = keys.by_id.get(event.mac_key_id)
            if key is None:
                unknown[event.mac_key_id] = unknown.get(event.mac_key_id, 0) + 1
            elif not hmac.compare_digest(event_mac(key, event.hash), event.mac):
                return result(
                    BrokenLink(
                        instance_id,
                        event.seq,
                        event.pk,
                        "MAC does not match its hash (rewritten by someone without the audit key)",
                    )
                )
        previous = event.hash
        expected_seq += 1
    if expected_seq - 1 != recorded_seq or previous != recorded_head:
        return result(
            BrokenLink(
                instance_id,
                expected_seq,
                None,
                f"chain ends at #{expected_seq - 1} but the instance recorded "
                f"#{recorded_seq} (events deleted)",
            )
        )
    return result(None)


# Instances whose chains are read in one statement; their events are held in memory meanwhile.
CHECK_BATCH = 200


def check_chains(
    instances: Iterable[WorkflowInstance | int], *, keys: ChainKeys | None = None
) -> Iterator[ChainResult]:
    """Verify the chains of these instances (objects or ids), in the order given.

    Each chain is read in the same statement as the head its instance recorded (a join), so
    both come from one snapshot, on PostgreSQL and SQLite alike: a change committed meanwhile is
    wholly in the read or wholly out of it. Reading the instance first and its events after
    would see, on a busy system, events the instance row read earlier did not know of yet, and
    report a chain that merely grew as broken."""
    keys = keys or ChainKeys.configured()
    batch: list[int] = []
    for instance in instances:
        batch.append(instance if isinstance(instance, int) else instance.pk)
        if len(batch) == CHECK_BATCH:
            yield from _check_batch(batch, keys)
            batch = []
    if batch:
        yield from _check_batch(batch, keys)


def _check_batch(instance_ids: list[int], keys: ChainKeys) -> Iterator[ChainResult]:
    # Read before the events: an instance is created with its first events, so one seen here
    # has them committed, and finding none below means they were deleted, not yet to come.
    heads = {
        pk: (seq, head)
        for pk, seq, head in WorkflowInstance.objects.filter(pk__in=instance_ids).values_list(
            "pk", "audit_seq", "audit_head"
        )
    }
    events = (
        AuditEvent.objects.filter(instance_id__in=instance_ids)
        .annotate(recorded_seq=F("instance__audit_seq"), recorded_head=F("instance__audit_head"))
        .order_by("instance_id", "seq")
    )
    chains = {
        instance_id: list(chain)
        for instance_id, chain in groupby(events.iterator(), key=attrgetter("instance_id"))
    }
    for instance_id in instance_ids:
        chain = chains.get(instance_id, [])
        if chain:
            recorded_seq, recorded_head = chain[0].recorded_seq, chain[0].recorded_head
        elif instance_id in heads:
            recorded_seq, recorded_head = heads[instance_id]
        else:
            continue
        yield verify_chain(
            chain,
            instance_id=instance_id,
            recorded_seq=recorded_seq,
            recorded_head=recorded_head,
            keys=keys,
        )


def verify_instances(instances: Iterable[WorkflowInstance | int]) -> Iterator[BrokenLink]:
    """Every chain that does not verify: a broken link, or events keyed with an unknown key."""
    for result in check_chains(instances):
        if result.problem:
            yield result.broken or BrokenLink(result.instance_id, 1, None, result.problem)
