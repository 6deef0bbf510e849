"""Admin for what a change writes in its own transaction, all read-only: audit events (what
happened, append-only), outbox messages (the side effects delivered after commit) and the
tombstones of requests deleted at the end of their retention."""

from __future__ import annotations

from django.contrib import admin

from approvals.admin.base import ReadOnlyAdmin
from approvals.models import AuditEvent, OutboxMessage, RetiredRequest


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "instance",
        "seq",
        "at",
        "event",
        "actor_name",
        "channel",
        "from_state",
        "to_state",
    )
    list_filter = ("channel", "event")
    search_fields = ("instance__title",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "topic", "instance", "status", "attempts", "created_at", "last_error")
    list_filter = ("status", "topic")


@admin.register(RetiredRequest)
class RetiredRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "workflow_key", "status", "completed_at", "retired_at", "bundle_key")
    list_filter = ("workflow_key",)
    search_fields = ("id", "bundle_key")
