"""Admin for what a change writes in its own transaction, both read-only: audit events (what
happened, append-only) and outbox messages (the side effects delivered after commit)."""

from __future__ import annotations

from django.contrib import admin

from approvals.admin.base import ReadOnlyAdmin
from approvals.models import AuditEvent, OutboxMessage


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
