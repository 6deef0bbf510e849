"""Admin for asks: who may ask each role (the permission per role), and the asks themselves
(read-only: an ask is made by its program, through the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import Ask, AskPermission


@admin.register(AskPermission)
class AskPermissionAdmin(admin.ModelAdmin):
    list_display = ("role", "user_list")
    filter_horizontal = ("users",)
    search_fields = ("role__name", "users__username")

    @admin.display(description="may ask")
    def user_list(self, permission: AskPermission) -> str:
        return ", ".join(sorted(u.username for u in permission.users.all())) or "nobody"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("role").prefetch_related("users")


@admin.register(Ask)
class AskAdmin(admin.ModelAdmin):
    list_display = ("instance", "agent", "action_name", "created_at", "expires_at")
    search_fields = ("agent", "action_name", "instance__title")
    list_select_related = ("instance",)
    readonly_fields = [f.name for f in Ask._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
