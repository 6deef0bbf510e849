"""Admin for Slack: messages read-only, failed ones retried by a superuser; interactions
read-only (imported by approvals.admin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from approvals.admin.base import ReadOnlyAdmin
from approvals.integrations.slack.services import slack_message_retry
from approvals.models import SlackInteraction, SlackMessage


@admin.register(SlackMessage)
class SlackMessageAdmin(ReadOnlyAdmin):
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
    raw_id_fields = ("notification", "recipient", "role", "instance", "task")
    actions = ["retry_now"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Try the selected failed messages again now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[SlackMessage]) -> None:
        count = slack_message_retry(
            ids=list(queryset.values_list("pk", flat=True)), now=timezone.now()
        )
        self.message_user(request, f"{count} message(s) queued again.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("retry_now", None)
        return actions


@admin.register(SlackInteraction)
class SlackInteractionAdmin(ReadOnlyAdmin):
    list_display = ("id", "slack_user_id", "user", "task", "event", "outcome", "received_at")
    list_filter = ("outcome",)
    search_fields = ("slack_user_id", "user__username", "detail")
    raw_id_fields = ("user", "task")
