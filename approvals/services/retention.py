"""Retention: a workflow's finished requests are kept for its `retention` period (the file's
top-level `retention: P7Y`, counted from each request's end), then archived into a signed audit
bundle, as `export_audit` writes one, kept through Django's storage, and deleted, leaving a
tombstone (approvals.models.RetiredRequest) with the head of their chain and the bundle's
place. A legal hold keeps a request until it is released.

The period that applies is the one of the workflow's published version, whichever version a
request ran on: a policy changed today applies to the requests already kept. A request is
deleted only once its sub-requests are (they point at it), and never while its chain does not
verify: a broken chain is evidence, kept for whoever investigates it.

Each batch is archived first, then its requests deleted in one transaction, under their row
locks, each once checked again: still finished, expired, not held, and its chain head the one
in the bundle. A request that fails the check stays (it is in a bundle no tombstone names,
which is harmless); the next run takes it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from approvals.audit_chain import MANIFEST
from approvals.audit_export.bundle import Scope, write_bundle
from approvals.machine.durations import parse_period
from approvals.models import (
    ArtifactVersion,
    AuditEvent,
    Channel,
    Comment,
    DefinitionStatus,
    FailedAction,
    InstanceStatus,
    RetiredRequest,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.services.audit_exports import may_export_audit
from approvals.services.definitions import RETENTION, statechart_for
from approvals.services.engine import Run
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.locking import lock_instance, lock_instances

logger = logging.getLogger(__name__)

HOLD_PERMISSION = "approvals.hold_legal"
PREFIX = "retention"
CHUNK = 1024 * 1024
MAX_REASON = 500


# ----- legal holds


def may_hold(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(HOLD_PERMISSION))


def may_see_retention(user: Any) -> bool:
    """Records managers and auditors: the retention page, and deleted requests' tombstones."""
    return may_hold(user) or may_export_audit(user)


@transaction.atomic
def legal_hold_place(
    *, instance_id: int, reason: Any, actor: Any, now: datetime, channel: str = Channel.WEB
) -> WorkflowInstance:
    """Keep a request past its retention period until the hold is released."""
    if not may_hold(actor):
        raise NotAllowed("no such request")
    reason = _reason(reason)
    instance = lock_instance(instance_id=instance_id)
    if instance.legal_hold:
        raise Conflict(
            f"request #{instance.pk} is already under legal hold: {instance.legal_hold_reason}"
        )
    instance.legal_hold = True
    instance.legal_hold_reason = reason
    return _record(instance, "legal_hold.placed", reason, actor, channel, now)


@transaction.atomic
def legal_hold_release(
    *, instance_id: int, reason: Any, actor: Any, now: datetime, channel: str = Channel.WEB
) -> WorkflowInstance:
    """End a legal hold; the request is deleted at the next retention run if it expired."""
    if not may_hold(actor):
        raise NotAllowed("no such request")
    reason = _reason(reason)
    instance = lock_instance(instance_id=instance_id)
    if not instance.legal_hold:
        raise Conflict(f"request #{instance.pk} is not under legal hold")
    instance.legal_hold = False
    instance.legal_hold_reason = ""
    return _record(instance, "legal_hold.released", reason, actor, channel, now)


def _reason(reason: Any) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise InvalidInput(
            "say why (the reason is kept in the audit trail)", {"reason": ["Required."]}
        )
    if len(text) > MAX_REASON:
        raise InvalidInput(
            f"the reason is longer than {MAX_REASON} characters",
            {"reason": [f"At most {MAX_REASON} characters."]},
        )
    return text


def _record(
    instance: WorkflowInstance, event: str, reason: str, actor: Any, channel: str, now: datetime
) -> WorkflowInstance:
    run = Run(instance, statechart_for(instance.definition), actor=actor, channel=channel, now=now)
    run.record(event, data={"reason": reason})
    run.fields.update({"legal_hold", "legal_hold_reason"})
    return run.commit()


# ----- which requests are due


@dataclass(frozen=True)
class Policy:
    workflow_key: str
    retention: str
    cutoff: datetime  # requests that ended at or before it are due


def policies(*, now: datetime, workflow_key: str = "") -> list[Policy]:
    """The retention of each workflow whose published version declares one."""
    published = WorkflowDefinition.objects.filter(status=DefinitionStatus.PUBLISHED)
    if workflow_key:
        published = published.filter(key=workflow_key)
    found = []
    for key, stored in published.order_by("key").values_list("key", "settings"):
        retention = (stored or {}).get(RETENTION)
        if retention:
            found.append(Policy(key, retention, now - parse_period(retention)))
    return found


def expired(policy: Policy) -> QuerySet[WorkflowInstance]:
    """The workflow's requests that ended at or before the policy's cutoff (held or not)."""
    return WorkflowInstance.objects.filter(
        workflow_key=policy.workflow_key, completed_at__lte=policy.cutoff
    ).exclude(status=InstanceStatus.ACTIVE)


def _deletable(requests: QuerySet[WorkflowInstance]) -> QuerySet[WorkflowInstance]:
    children = WorkflowInstance.objects.filter(parent=OuterRef("pk"))
    return requests.filter(legal_hold=False).exclude(Exists(children))


# ----- the run


@dataclass
class WorkflowReport:
    workflow_key: str
    retention: str
    cutoff: datetime
    expired: int = 0
    held: int = 0
    waiting_for_children: int = 0
    deleted: int = 0
    kept: list[str] = field(default_factory=list)  # why a checked request was not deleted
    bundles: list[str] = field(default_factory=list)


def apply_retention(
    *, now: datetime, workflow_key: str = "", dry_run: bool = False
) -> list[WorkflowReport]:
    """Archive and delete every request past its workflow's retention (see the module's
    docstring); `dry_run` only counts."""
    reports = []
    for policy in policies(now=now, workflow_key=workflow_key):
        requests = expired(policy)
        report = WorkflowReport(policy.workflow_key, policy.retention, policy.cutoff)
        report.expired = requests.count()
        report.held = requests.filter(legal_hold=True).count()
        report.waiting_for_children = (
            requests.filter(legal_hold=False).count() - _deletable(requests).count()
        )
        if not dry_run:
            for batch in _batches(_deletable(requests)):
                _archive_and_delete(policy, batch, report, now)
        reports.append(report)
    return reports


def _batches(requests: QuerySet[WorkflowInstance]) -> Iterator[list[int]]:
    """The ids in batches of RETENTION_BATCH, by id, each read after the last was handled."""
    last = 0
    while True:
        batch = list(
            requests.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.RETENTION_BATCH]
        )
        if not batch:
            return
        yield batch
        last = batch[-1]


@dataclass(frozen=True)
class _Archived:
    head_seq: int
    head_hash: str
    chain_check: str


def _archive_and_delete(
    policy: Policy, ids: list[int], report: WorkflowReport, now: datetime
) -> None:
    with tempfile.TemporaryFile() as bundle:
        write_bundle(Scope(instance_ids=tuple(ids), include_files=True), bundle, now=now)
        archived = _manifest_heads(bundle)
        digest = _sha256(bundle)
        name = (
            f"{PREFIX}/{policy.workflow_key}/{now:%Y%m%dT%H%M%SZ}-{ids[0]}-"
            f"{secrets.token_hex(4)}.zip"
        )
        bundle.seek(0)
        key = default_storage.save(name, File(bundle, name=name))
    kept = _retire(ids, archived, policy=policy, key=key, digest=digest, now=now)
    for pk, problem in kept.items():
        report.kept.append(f"#{pk}: {problem}")
        logger.warning("retention kept request %s: %s", pk, problem)
    deleted = len(ids) - len(kept)
    if deleted:
        report.deleted += deleted
        report.bundles.append(key)
        logger.info(
            "retention archived %s request(s) of %s into %s", deleted, policy.workflow_key, key
        )
    else:
        default_storage.delete(key)  # no tombstone names it


def _manifest_heads(bundle: IO[bytes]) -> dict[int, _Archived]:
    bundle.seek(0)
    heads = {}
    with zipfile.ZipFile(bundle) as zf, zf.open(MANIFEST) as manifest:
        next(manifest)  # the header
        for line in manifest:
            entry = json.loads(line)
            heads[entry["request"]] = _Archived(
                entry["head_seq"], entry["head_hash"], entry["chain_check"]
            )
    return heads


def _sha256(handle: IO[bytes]) -> str:
    handle.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _retire(
    ids: list[int],
    archived: dict[int, _Archived],
    *,
    policy: Policy,
    key: str,
    digest: str,
    now: datetime,
) -> dict[int, str]:
    """Delete the archived requests of a batch, leaving their tombstones, in one transaction
    under their row locks; what kept each request that was not deleted."""
    kept: dict[int, str] = {}
    with transaction.atomic():
        locked = lock_instances(instance_ids=ids)
        parents = set(
            WorkflowInstance.objects.filter(parent__in=ids).values_list("parent_id", flat=True)
        )
        tombstones = []
        for pk in ids:
            instance = locked.get(pk)
            problem = (
                "deleted meanwhile"
                if instance is None
                else _kept_because(instance, archived.get(pk), policy, pk in parents)
            )
            if problem:
                kept[pk] = problem
                continue
            tombstones.append(
                RetiredRequest(
                    id=instance.pk,
                    workflow_key=instance.workflow_key,
                    definition_version=instance.definition.version,
                    status=instance.status,
                    created_at=instance.created_at,
                    completed_at=instance.completed_at,
                    retention=policy.retention,
                    retired_at=now,
                    head_seq=instance.audit_seq,
                    head_hash=instance.audit_head,
                    bundle_key=key,
                    bundle_sha256=digest,
                )
            )
        if tombstones:
            RetiredRequest.objects.bulk_create(tombstones)
            gone = [t.pk for t in tombstones]
            files = list(
                ArtifactVersion.objects.filter(artifact__instance__in=gone).values_list(
                    "storage_key", flat=True
                )
            )
            _delete_rows(gone)
            transaction.on_commit(lambda: _delete_files(files))
    return kept


def _kept_because(
    instance: WorkflowInstance, archived: _Archived | None, policy: Policy, has_children: bool
) -> str:
    """Why an archived request must stay after all, or ""."""
    if archived is None:
        return "not in the archive"
    if not archived.chain_check.startswith("verified"):
        return f"its audit chain does not verify ({archived.chain_check})"
    if (instance.audit_seq, instance.audit_head) != (archived.head_seq, archived.head_hash):
        return "it changed after it was archived"
    if instance.legal_hold:
        return "placed under legal hold meanwhile"
    if instance.status == InstanceStatus.ACTIVE or instance.completed_at is None:
        return "active again"
    if instance.completed_at > policy.cutoff:
        return "not expired"
    if has_children:
        return "it has sub-requests"
    return ""


def _delete_rows(ids: list[int]) -> None:
    """The requests and all that hangs on them. Their audit events go first: the database lets
    them go now that the tombstones exist; then what points at rows with PROTECT (failed
    actions at their task and message, replies at their comment, versions at their parent)."""
    AuditEvent.objects.filter(instance__in=ids).delete()
    FailedAction.objects.filter(instance__in=ids).delete()
    _delete_leaves_first(Comment.objects.filter(instance__in=ids), "replies")
    _delete_leaves_first(ArtifactVersion.objects.filter(artifact__instance__in=ids), "children")
    WorkflowInstance.objects.filter(pk__in=ids).delete()


def _delete_leaves_first(rows: QuerySet[Any], children: str) -> None:
    while rows.exists():
        deleted, _ = rows.filter(**{f"{children}__isnull": True}).delete()
        if not deleted:
            raise RuntimeError(f"{rows.model.__name__} rows point at each other in a cycle")


def _delete_files(keys: list[str]) -> None:
    for key in keys:
        try:
            default_storage.delete(key)
        except OSError:
            # The orphan sweep removes it later (approvals/services/artifacts.py).
            logger.warning("retention could not delete the stored file %s", key)


# ----- tombstones


def bundle_problem(tombstone: RetiredRequest) -> str | None:
    """Whether the archive a tombstone names is still in storage, byte for byte."""
    try:
        with default_storage.open(tombstone.bundle_key, "rb") as handle:
            digest = _sha256(handle)
    except OSError as exc:
        return f"its archive {tombstone.bundle_key} cannot be read ({exc.__class__.__name__})"
    if digest != tombstone.bundle_sha256:
        return f"its archive {tombstone.bundle_key} changed (SHA-256 {digest})"
    return None
