"""Admin for notifications: read-only, for admins to see what was told to whom (imported by
approvals.admin)."""

from __future__ import annotations

from django.contrib import admin

from approvals.admin.base import ReadOnlyAdmin
from approvals.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "recipient", "kind", "text", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("recipient__username", "text")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient", "instance", "task", "actor", "message")
