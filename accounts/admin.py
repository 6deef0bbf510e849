from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group

from accounts.models import Role, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Slack", {"fields": ("slack_user_id",)}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active")


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
