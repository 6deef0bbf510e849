from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts import sso
from accounts.absences import absence_problems, local_day
from accounts.models import (
    ExternalIdentity,
    KeptRole,
    OutOfOffice,
    ProviderGroupRole,
    Role,
    RoleChange,
    User,
)
from accounts.people import choosable_people


class ExternalIdentityInline(admin.TabularInline):
    """Link an existing account to the provider beforehand by adding its issuer and subject;
    otherwise the first sign-in makes a new account."""

    model = ExternalIdentity
    extra = 0
    fields = ("issuer", "subject", "created_at", "last_sign_in_at")
    readonly_fields = ("created_at", "last_sign_in_at")


class KeptRoleInline(admin.TabularInline):
    model = KeptRole
    extra = 0
    fields = ("role", "note", "created_at")
    readonly_fields = ("created_at",)


class RoleChangeInline(admin.TabularInline):
    """What sign-ins with the identity provider changed: append-only, read here only."""

    model = RoleChange
    extra = 0
    fields = ("at", "summary", "issuer")
    readonly_fields = fields
    can_delete = False
    ordering = ("-at", "-pk")
    max_num = 0

    @admin.display(description="change")
    def summary(self, change: RoleChange) -> str:
        return str(change)

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [ExternalIdentityInline, KeptRoleInline, RoleChangeInline]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Slack", {"fields": ("slack_user_id",)}),
        ("Microsoft Teams", {"fields": ("teams_webhook_url",)}),
        ("Display", {"fields": ("time_zone",)}),
        ("Org chart", {"fields": ("manager",)}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active")
    autocomplete_fields = ("manager",)

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> Any:
        # The person search of the fields that choose someone (out-of-office's autocomplete)
        # offers only people who can be chosen; the user list itself shows everyone.
        if request.path.endswith("/autocomplete/"):
            queryset = queryset.filter(pk__in=choosable_people())
        return super().get_search_results(request, queryset, search_term)

    def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not KeptRole:
            super().save_formset(request, form, formset, change)
            return
        # A kept role is a membership too: keeping it gives it (accounts/sso.py).
        kept = formset.save(commit=False)
        for gone in formset.deleted_objects:
            gone.delete()
        for row in kept:
            sso.keep_role(user=form.instance, role=row.role, note=row.note)


class RoleInline(admin.StackedInline):
    model = Role
    can_delete = False
    verbose_name_plural = "Role"


class ProviderGroupInline(admin.TabularInline):
    model = ProviderGroupRole
    extra = 0
    verbose_name = "identity-provider group giving this role"
    verbose_name_plural = "identity-provider groups giving this role"


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(BaseGroupAdmin):
    inlines = [RoleInline, ProviderGroupInline]
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


@admin.register(ProviderGroupRole)
class ProviderGroupRoleAdmin(admin.ModelAdmin):
    """Which of the identity provider's groups give which role: applied at each sign-in with
    the provider, which also takes a mapped role away from someone no longer in its group."""

    list_display = ("provider_group", "role")
    search_fields = ("provider_group", "role__name")
    list_select_related = ("role",)


@admin.register(RoleChange)
class RoleChangeAdmin(admin.ModelAdmin):
    list_display = ("at", "username", "summary", "issuer")
    search_fields = ("username",)
    date_hierarchy = "at"

    @admin.display(description="change")
    def summary(self, change: RoleChange) -> str:
        return str(change)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
