"""Admin for Teams: cards read-only, failed ones sent again by a superuser (imported by
approvals.admin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from approvals.admin.base import ReadOnlyAdmin
from approvals.integrations.teams.models import TeamsMessage
from approvals.integrations.teams.services import teams_message_retry


@admin.register(TeamsMessage)
class TeamsMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "recipient",
        "role",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("recipient__username", "last_error", "text")
    list_select_related = ("recipient", "role")
    raw_id_fields = ("notification", "recipient", "role", "instance", "task", "follows")
    actions = ["resend"]

    @admin.action(description="Send the selected failed Teams messages again")
    def resend(self, request: HttpRequest, queryset: QuerySet[TeamsMessage]) -> None:
        count = teams_message_retry(
            ids=list(queryset.values_list("pk", flat=True)), now=timezone.now()
        )
        self.message_user(request, f"{count} Teams message(s) queued again.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("resend", None)
        return actions
