"""Audit bundles asked for on the auditor's page: the request (a row, and a Celery task queued
after commit) and the build (approvals/audit_export/bundle.py), which records its progress on
the row as it goes and keeps the finished bundle through Django's storage."""

from __future__ import annotations

import logging
import secrets
import tempfile
from datetime import datetime
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from approvals.audit_export.bundle import FileUnreadable, Scope, write_bundle
from approvals.audit_export.signing import SigningKeyMissing, private_key
from approvals.models import AuditExport, AuditExportStatus
from approvals.outbox.dispatch import queue_after_commit
from approvals.services.errors import Conflict, NotAllowed

logger = logging.getLogger(__name__)

PERMISSION = "approvals.export_audit"
PREFIX = "audit-exports"
BUILD_TASK = "approvals.tasks.build_audit_export"


def may_export_audit(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(PERMISSION))


def may_download(user: Any, export: AuditExport) -> bool:
    """Whoever asked for it, or anyone who may export."""
    return bool(
        user.is_authenticated
        and user.is_active
        and (export.requested_by_id == user.pk or may_export_audit(user))
    )


def audit_export_request(*, scope: Scope, actor: Any, now: datetime) -> AuditExport:
    """Ask for a bundle of `scope`; a worker builds it (`audit_export_build`)."""
    if not may_export_audit(actor):
        raise NotAllowed("only auditors (permission approvals.export_audit) may export the trail")
    scope.check()
    try:
        private_key()
    except SigningKeyMissing as exc:
        raise Conflict(str(exc)) from None
    with transaction.atomic():
        export = AuditExport.objects.create(
            requested_by=actor,
            created_at=now,
            instance_id=scope.instance_id,
            workflow_key=scope.workflow_key,
            since=scope.since,
            until=scope.until,
            include_files=scope.include_files,
            total=scope.instances().count(),
        )
        queue_after_commit(BUILD_TASK, [(export.pk,)])
    return export


def scope_of(export: AuditExport) -> Scope:
    return Scope(
        instance_id=export.instance_id,
        workflow_key=export.workflow_key,
        since=export.since,
        until=export.until,
        include_files=export.include_files,
    )


def _claim(export_id: int, now: datetime) -> AuditExport | None:
    with transaction.atomic():
        export = AuditExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status != AuditExportStatus.QUEUED:
            return None  # a message delivered twice builds it once
        export.status = AuditExportStatus.RUNNING
        export.save(update_fields=["status"])
    return export


def audit_export_build(*, export_id: int, now: datetime) -> AuditExport | None:
    """Build a queued bundle: its progress on the row batch by batch, then the file in storage.
    A failure is recorded on the row (the page shows it), never half a bundle."""
    export = _claim(export_id, now)
    if export is None:
        return None

    def progress(done: int, total: int, events: int) -> None:
        AuditExport.objects.filter(pk=export_id).update(done=done, total=total, events=events)

    try:
        with tempfile.TemporaryFile() as target:
            summary = write_bundle(scope_of(export), target, now=now, progress=progress)
            target.seek(0)
            name = f"{PREFIX}/{export.pk}-{secrets.token_hex(8)}.zip"
            key = default_storage.save(name, File(target, name=name))
            size = default_storage.size(key)
    except (SigningKeyMissing, FileUnreadable) as exc:
        return _failed(export, str(exc))
    except Exception as exc:
        logger.exception("audit export %s failed", export.pk)
        return _failed(export, f"the export failed ({exc.__class__.__name__}); ask again")
    AuditExport.objects.filter(pk=export.pk).update(
        status=AuditExportStatus.DONE,
        done=summary.requests,
        total=summary.requests,
        events=summary.events,
        storage_key=key,
        size=size,
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    return export


def _failed(export: AuditExport, message: str) -> AuditExport:
    AuditExport.objects.filter(pk=export.pk).update(
        status=AuditExportStatus.FAILED, error=message[:500], finished_at=timezone.now()
    )
    export.refresh_from_db()
    return export
