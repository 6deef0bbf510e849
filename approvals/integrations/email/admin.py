"""Admin for e-mail: messages read-only; failed ones sent again by a superuser (imported by
approvals.admin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from approvals.admin.base import ReadOnlyAdmin
from approvals.integrations.email.models import OutgoingEmail
from approvals.integrations.email.services import email_retry


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "to",
        "subject",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("to", "recipient__username", "subject", "last_error", "message_id")
    list_select_related = ("recipient",)
    raw_id_fields = ("notification", "recipient", "instance", "task")
    actions = ["resend"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Send the selected failed e-mails again")
    def resend(self, request: HttpRequest, queryset: QuerySet[OutgoingEmail]) -> None:
        count = email_retry(ids=list(queryset.values_list("pk", flat=True)), now=timezone.now())
        self.message_user(request, f"{count} e-mail(s) queued again.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("resend", None)
        return actions
