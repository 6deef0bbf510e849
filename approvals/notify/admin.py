"""Admin for notifications: read-only, for admins to see what was told to whom (imported by
approvals.admin)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import NotificationPreference
from approvals.admin.base import ReadOnlyAdmin
from approvals.models import Notification, NotificationKind


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "recipient", "kind", "text", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("recipient__username", "text")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient", "instance", "task", "actor", "message")


class WhoseFilter(admin.SimpleListFilter):
    title = "whose"
    parameter_name = "whose"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("default", "The organisation's defaults"), ("person", "A person's own")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "default":
            return queryset.filter(user__isnull=True)
        if self.value() == "person":
            return queryset.filter(user__isnull=False)
        return queryset


class NotificationPreferenceForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=NotificationKind.choices)

    class Meta:
        model = NotificationPreference
        fields = ("user", "kind", "email", "slack", "teams", "delivery")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """A row without a user is the organisation's default for its kind: what everyone who
    chose nothing for that kind gets. People choose their own on their profile."""

    form = NotificationPreferenceForm
    list_display = ("kind", "user", "email", "slack", "teams", "delivery")
    list_filter = (WhoseFilter, "kind", "delivery")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
    ordering = ("user", "kind")
