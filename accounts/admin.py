from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.absences import absence_problems, local_day
from accounts.models import OutOfOffice, Role, User
from accounts.people import choosable_people


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Slack", {"fields": ("slack_user_id",)}),
        ("Microsoft Teams", {"fields": ("teams_webhook_url",)}),
        ("Display", {"fields": ("time_zone",)}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active")

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> Any:
        # The person search of the fields that choose someone (out-of-office's autocomplete)
        # offers only people who can be chosen; the user list itself shows everyone.
        if request.path.endswith("/autocomplete/"):
            queryset = queryset.filter(pk__in=choosable_people())
        return super().get_search_results(request, queryset, search_term)


class RoleInline(admin.StackedInline):
    model = Role
    can_delete = False
    verbose_name_plural = "Role"


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(BaseGroupAdmin):
    inlines = [RoleInline]
    list_display = ("name", "description", "member_count")

    @admin.display(description="description")
    def description(self, group: Group) -> str:
        role = getattr(group, "role", None)
        return role.description if role else ""

    @admin.display(description="members")
    def member_count(self, group: Group) -> int:
        return group.user_set.count()


class OutOfOfficeForm(forms.ModelForm):
    class Meta:
        model = OutOfOffice
        fields = ("user", "substitute", "starts_on", "ends_on", "note")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("user") is None:
            return data
        # The same checks as the profile page: no loops, no overlaps, no periods in the past.
        problems = absence_problems(
            user_id=data["user"].pk,
            substitute_id=data["substitute"].pk if data.get("substitute") else None,
            starts_on=data.get("starts_on"),
            ends_on=data.get("ends_on"),
            today=local_day(timezone.now()),
            exclude_id=self.instance.pk,
        )
        for field, messages in problems.items():
            self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(OutOfOffice)
class OutOfOfficeAdmin(admin.ModelAdmin):
    form = OutOfOfficeForm
    list_display = ("user", "substitute", "starts_on", "ends_on", "note")
    list_filter = ("starts_on",)
    search_fields = ("user__username", "substitute__username")
    list_select_related = ("user", "substitute")
    autocomplete_fields = ("user", "substitute")

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.name in ("user", "substitute"):
            kwargs["queryset"] = choosable_people()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
