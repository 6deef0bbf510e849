"""Admin for start triggers' records: the ticks schedules took (read only), so an operator
sees a tick that failed and why. Schedules themselves are an inline of their definition, and
inbound hooks are with the webhooks (integrations/webhooks/admin.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import ScheduleFiring


@admin.register(ScheduleFiring)
class ScheduleFiringAdmin(admin.ModelAdmin):
    list_display = ("workflow_key", "schedule", "tick", "outcome", "instance", "fired_at")
    list_filter = ("outcome", "workflow_key")
    search_fields = ("workflow_key", "schedule", "error")
    readonly_fields = (
        "workflow_key",
        "schedule",
        "tick",
        "fired_at",
        "outcome",
        "instance",
        "error",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
